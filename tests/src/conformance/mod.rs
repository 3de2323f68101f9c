//! One conformance suite, run against every engine of the local stack: the emulator and real
//! OpenSearch 2.x and 3.x nodes (see `ossnap_local_stack::Engine`).
//!
//! Each engine goes through the same path — register, a snapshot for each event shape,
//! check-status until done, verify from S3 at every depth, retention, delete an index, restore it
//! through the API, equal counts and mappings — answers the same error probes ([`probes`]), runs
//! the deployed workflow once, and has verify catch damage done to its real blobs. What the real
//! engines answered to the probes is recorded ([`Transcript`]) and the emulator held to it.

pub mod probes;
mod transcript;

use std::time::Duration;

use lambda_runtime::{Context, LambdaEvent};
use ossnap_core::config::Environment;
use ossnap_core::event::Invocation;
use ossnap_core::register::{self, RegistrationStatus};
use ossnap_core::retention::{Policy, RetentionInput};
use ossnap_core::status::{self, StatusInput, StatusOutput};
use ossnap_core::{snapshot, Deps, ErrorKind};
use ossnap_local_stack::{Engine, Profile, SnapshotOutcome};
use ossnap_verify::{Depth, Verifier, VerifyInput};
use serde_json::{json, Value};

use crate::stack::{BASE_PATH, SNAPSHOT_ROLE};
use crate::workflow::{Status, Workflow};
use crate::TestStack;
pub use transcript::{Exchange, Transcript};

const INDEX: &str = "logs-2026.11";
const DOCUMENTS: usize = 40;

/// The whole path and the probes on `engine` (`profile` says which generation the emulator
/// answers as); returns what the engine answered to the probes.
pub async fn suite(engine: Engine, profile: Profile) -> Transcript {
    let stack = TestStack::start_with(|config| {
        config.engine = engine;
        config.profile = profile;
    })
    .await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, INDEX, DOCUMENTS).await;
    stack.seed_index(&deps, "orders", 5).await;
    refresh(&deps).await;
    let mapping_before = mappings(&deps, INDEX).await;

    let registered = register::run(&deps, invocation(Default::default()))
        .await
        .unwrap();
    assert_eq!(registered.status, RegistrationStatus::Created, "{engine}");
    assert!(registered.verified_nodes.unwrap() >= 1, "{engine}");
    let again = register::run(&deps, invocation(Default::default()))
        .await
        .unwrap();
    assert_eq!(again.status, RegistrationStatus::Unchanged, "{engine}");

    let snapshots = snapshot_each_event_shape(&deps).await;
    for name in &snapshots {
        let verified = verify(&stack, name, Depth::Structure).await.unwrap();
        assert!(verified.verified, "{engine} {name}");
        assert_eq!(verified.indices, 2, "{engine} {name}");
        assert!(
            verified.blobs > 0 && verified.bytes > 0,
            "{engine} {name}: {verified:?}"
        );
    }
    verify_reads_deeper_at_each_depth(&stack, &snapshots[2]).await;
    verify_reads_compressed_metadata(&stack, &deps).await;

    let policy = Policy {
        min_count: 2,
        max_count: Some(2),
        max_age: None,
        max_deletions: 20,
        dry_run: false,
    };
    let retained = stack
        .retain(&deps, &policy, RetentionInput::default())
        .await
        .unwrap();
    let deleted: Vec<_> = retained
        .deleted
        .iter()
        .map(|d| d.snapshot.clone())
        .collect();
    assert_eq!(
        deleted,
        vec![snapshots[0].clone()],
        "{engine}: {retained:?}"
    );
    let remaining: Vec<String> = deps
        .opensearch
        .get_snapshots(&deps.settings.repository, &["_all"], false)
        .await
        .unwrap()
        .into_iter()
        .map(|info| info.snapshot)
        .collect();
    assert_eq!(remaining, snapshots[1..].to_vec(), "{engine}");

    restore_round_trip(&deps, &snapshots[2], &mapping_before).await;

    let transcript = answer_probes(&stack, &deps, &snapshots[2], profile).await;
    transcript.check_expectations();
    run_the_workflow(&stack).await;
    verify_catches_damage_at_its_depth(&stack, &deps).await;
    transcript
}

/// The deployed state machine, once, with the function binaries as its Lambda functions.
async fn run_the_workflow(stack: &TestStack) {
    let mut workflow = Workflow::start(stack, &[("RETENTION_MAX_COUNT", "2")], None)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let execution = workflow
        .run(
            json!({"scheduled_time": "2026-11-04T02:00:00Z"}),
            Duration::from_millis(500),
            |_| {},
        )
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(execution.status, Status::Succeeded, "{}", stack.engine());
    let verified = execution.output_of("verify").expect("verify answered");
    assert_eq!(verified["snapshot"], "ossnap-20261104-020000");
    assert_eq!(verified["verified"], true);
    let retention = execution
        .output_of("retention")
        .expect("retention answered");
    assert_eq!(
        retention["deleted"][0]["snapshot"],
        "ossnap-20261102-020000"
    );
}

fn invocation<T>(input: T) -> Invocation<T> {
    Invocation {
        input,
        scheduled_time: None,
    }
}

/// One snapshot started by each event shape the functions accept, each followed by check-status
/// until done; returns their names, oldest first.
async fn snapshot_each_event_shape(deps: &Deps) -> Vec<String> {
    let events = [
        // A plain JSON event (console, Step Functions) naming its snapshot.
        json!({"snapshot": "ossnap-20261101-020000", "run_id": "plain"}),
        // An EventBridge scheduled event.
        json!({"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
               "account": "123456789012", "time": "2026-11-02T02:00:00Z", "region": "us-east-1",
               "resources": [], "detail": {}}),
        // EventBridge Scheduler input.
        json!({"scheduled_time": "2026-11-03T02:00:00Z"}),
    ];
    let all_deps = Ok(deps.clone());
    let mut names = Vec::new();
    for event in events {
        let started = snapshot::handle(
            &all_deps,
            LambdaEvent::new(event.clone(), Context::default()),
        )
        .await
        .unwrap_or_else(|error| panic!("{event}: {error}"));
        let report = until_done(deps, &started.snapshot).await;
        assert!(report.healthy, "{}: {report:?}", started.snapshot);
        names.push(started.snapshot);
    }
    assert_eq!(
        names,
        [
            "ossnap-20261101-020000",
            "ossnap-20261102-020000",
            "ossnap-20261103-020000"
        ]
    );
    names
}

async fn until_done(deps: &Deps, snapshot: &str) -> status::SnapshotReport {
    for _ in 0..600 {
        let input = StatusInput {
            repository: None,
            snapshot: Some(snapshot.to_owned()),
        };
        match status::run(deps, invocation(input)).await.unwrap() {
            StatusOutput::Snapshot(report) if report.done => return report,
            StatusOutput::Snapshot(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("expected a snapshot report, got {other:?}"),
        }
    }
    panic!("{snapshot} never finished");
}

async fn verify(
    stack: &TestStack,
    snapshot: &str,
    depth: Depth,
) -> ossnap_core::Result<ossnap_verify::VerifyOutput> {
    let verifier = Verifier::new(
        &Environment::from_pairs(stack.env()),
        stack.local.s3_client(),
        ossnap_core::clock::Clock::without_sleeps(),
    )
    .unwrap();
    let input = VerifyInput {
        repository: None,
        snapshot: Some(snapshot.to_owned()),
        bucket: None,
        base_path: Some(BASE_PATH.to_owned()),
        deep: Some(depth),
        ..VerifyInput::default()
    };
    ossnap_verify::run(&verifier, invocation(input)).await
}

/// A repository registered with `compress: true` keeps its metadata blobs DEFLATE-compressed;
/// verify reads them at every depth.
async fn verify_reads_compressed_metadata(stack: &TestStack, deps: &Deps) {
    let base_path = "clusters/compressed";
    let settings = match stack.engine() {
        Engine::Emulator => json!({"bucket": stack.local.config().bucket, "base_path": base_path,
                                  "role_arn": SNAPSHOT_ROLE, "compress": true}),
        Engine::OpenSearch2 | Engine::OpenSearch3 => json!({
            "location": stack.local.repository_location(Some(base_path)), "compress": true}),
    };
    let kind = if stack.engine() == Engine::Emulator {
        "s3"
    } else {
        "fs"
    };
    deps.opensearch
        .call(
            http::Method::PUT,
            "/_snapshot/compressed",
            &[],
            Some(&json!({"type": kind, "settings": settings})),
        )
        .await
        .unwrap();
    deps.opensearch
        .create_snapshot("compressed", "compressed-1", &json!({"indices": INDEX}))
        .await
        .unwrap();
    let verifier = Verifier::new(
        &Environment::from_pairs(stack.env()),
        stack.local.s3_client(),
        ossnap_core::clock::Clock::without_sleeps(),
    )
    .unwrap();
    for depth in [Depth::Structure, Depth::Full] {
        let mut outcome = None;
        // The snapshot runs in the background: wait until its root blobs are written.
        for _ in 0..200 {
            let input = VerifyInput {
                repository: Some("compressed".into()),
                snapshot: Some("compressed-1".into()),
                bucket: None,
                base_path: Some(base_path.into()),
                deep: Some(depth),
                ..VerifyInput::default()
            };
            match ossnap_verify::run(&verifier, invocation(input)).await {
                Err(error)
                    if error.message().contains("absent from")
                        || error.message().contains("no repository") =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                other => {
                    outcome = Some(other);
                    break;
                }
            }
        }
        let verified = outcome
            .expect("the compressed snapshot is written")
            .unwrap_or_else(|error| panic!("{}: {error}", stack.engine()));
        assert!(verified.verified && verified.shards == 2, "{verified:?}");
    }
    deps.opensearch
        .call(http::Method::DELETE, "/_snapshot/compressed", &[], None)
        .await
        .unwrap();
}

/// `footers` reads one 16-byte tail per data file more than `structure`; `full` reads every
/// data byte.
async fn verify_reads_deeper_at_each_depth(stack: &TestStack, snapshot: &str) {
    let engine = stack.engine();
    let structure = verify(stack, snapshot, Depth::Structure).await.unwrap();
    let footers = verify(stack, snapshot, Depth::Footers).await.unwrap();
    let full = verify(stack, snapshot, Depth::Full).await.unwrap();
    assert_eq!(
        (structure.depth, footers.depth, full.depth),
        (Depth::Structure, Depth::Footers, Depth::Full)
    );
    let data_files = footers.requests.get - structure.requests.get;
    assert!(data_files > 0, "{engine}: {footers:?}");
    assert!(data_files <= footers.blobs as u64, "{engine}: {footers:?}");
    assert_eq!(
        footers.requests.bytes_read - structure.requests.bytes_read,
        16 * data_files,
        "{engine}"
    );
    assert_eq!(
        full.requests.bytes_read - structure.requests.bytes_read,
        full.bytes,
        "{engine}: full reads every data byte once"
    );
}

/// Damage done to the largest data blob of the repository is caught at the depth that can see
/// it, and named: a flipped byte inside it by `full` only, a replaced checksum by `footers`, a
/// truncation by `structure` already.
async fn verify_catches_damage_at_its_depth(stack: &TestStack, deps: &Deps) {
    let engine = stack.engine();
    let s3 = stack.local.s3_client();
    let bucket = stack.local.config().bucket.clone();
    let listing = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(format!("{BASE_PATH}/indices/"))
        .send()
        .await
        .unwrap();
    let (key, _) = listing
        .contents()
        .iter()
        .filter_map(|object| Some((object.key()?.to_owned(), object.size()?)))
        .filter(|(key, _)| {
            key.rsplit('/')
                .next()
                .is_some_and(|name| name.starts_with("__"))
        })
        .max_by_key(|(_, size)| *size)
        .expect("the repository holds data blobs");
    let blob = key
        .strip_prefix(&format!("{BASE_PATH}/"))
        .unwrap()
        .to_owned();
    let original = s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .to_vec();
    let put = |bytes: Vec<u8>| {
        let s3 = s3.clone();
        let (bucket, key) = (bucket.clone(), key.clone());
        async move {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(bytes.into())
                .send()
                .await
                .unwrap();
        }
    };
    let snapshots: Vec<String> = deps
        .opensearch
        .get_snapshots("ossnap", &["_all"], false)
        .await
        .unwrap()
        .into_iter()
        .map(|info| info.snapshot)
        .collect();
    // Which depths fail, over every snapshot; each failure must name the damaged blob.
    let failing_depths = || async {
        let mut failing = Vec::new();
        for depth in [Depth::Structure, Depth::Footers, Depth::Full] {
            for snapshot in &snapshots {
                if let Err(error) = verify(stack, snapshot, depth).await {
                    assert_eq!(error.kind(), ErrorKind::VerificationFailed, "{error}");
                    assert!(error.message().contains(&blob), "{engine}: {error}");
                    failing.push(depth);
                    break;
                }
            }
        }
        failing
    };

    let mut flipped = original.clone();
    flipped[original.len() / 2] ^= 0x01;
    put(flipped).await;
    assert_eq!(
        failing_depths().await,
        [Depth::Full],
        "{engine}: a flipped byte"
    );

    let mut replaced_checksum = original.clone();
    let length = original.len();
    replaced_checksum[length - 1] ^= 0x01;
    put(replaced_checksum).await;
    assert_eq!(
        failing_depths().await,
        [Depth::Footers, Depth::Full],
        "{engine}: a replaced checksum"
    );

    put(original[..length - 1].to_vec()).await;
    assert_eq!(
        failing_depths().await,
        [Depth::Structure, Depth::Footers, Depth::Full],
        "{engine}: a truncated blob"
    );
    put(original).await;
}

async fn refresh(deps: &Deps) {
    deps.opensearch
        .call(http::Method::POST, "/_refresh", &[], None)
        .await
        .unwrap();
}

async fn count(deps: &Deps, index: &str) -> u64 {
    let answer = deps
        .opensearch
        .call(http::Method::GET, &format!("/{index}/_count"), &[], None)
        .await
        .unwrap();
    answer["count"].as_u64().unwrap()
}

async fn mappings(deps: &Deps, index: &str) -> Value {
    let answer = deps
        .opensearch
        .call(http::Method::GET, &format!("/{index}"), &[], None)
        .await
        .unwrap();
    answer[index]["mappings"].clone()
}

/// Deletes the index, restores it from `snapshot` through the API and waits until every document
/// is back with the same mappings.
async fn restore_round_trip(deps: &Deps, snapshot: &str, mapping_before: &Value) {
    deps.opensearch
        .call(http::Method::DELETE, &format!("/{INDEX}"), &[], None)
        .await
        .unwrap();
    let restored = deps
        .opensearch
        .call(
            http::Method::POST,
            &format!("/_snapshot/ossnap/{snapshot}/_restore"),
            &[("wait_for_completion", "true")],
            Some(&json!({"indices": INDEX, "include_global_state": false})),
        )
        .await
        .unwrap();
    assert_eq!(
        restored["snapshot"]["indices"],
        json!([INDEX]),
        "{restored}"
    );
    assert_eq!(restored["snapshot"]["shards"]["failed"], 0, "{restored}");
    assert_eq!(count(deps, INDEX).await, DOCUMENTS as u64);
    assert_eq!(&mappings(deps, INDEX).await, mapping_before);
}

const THROTTLED: &str = "throttled";

/// Puts a snapshot in progress in the repository [`THROTTLED`] that stays running until deleted:
/// the emulator is told so; a real node writes it at 1 KiB a second (slow enough for the
/// probes, fast enough to abort within a request's timeout). Returns its name.
async fn start_running_snapshot(stack: &TestStack, deps: &Deps) -> String {
    let base_path = "clusters/throttled";
    let repository = match stack.engine() {
        Engine::Emulator => {
            stack
                .control()
                .set_next_snapshot_outcome(SnapshotOutcome::NeverFinishes);
            json!({"type": "s3", "settings": {
                "bucket": stack.local.config().bucket, "base_path": base_path,
                "role_arn": SNAPSHOT_ROLE}})
        }
        Engine::OpenSearch2 | Engine::OpenSearch3 => {
            // Amazon OpenSearch Service runs one snapshot at a time, as the emulator does; a
            // self-managed node takes up to 1,000 at once unless told otherwise.
            set_concurrent_operations_limit(deps, json!(1)).await;
            json!({"type": "fs", "settings": {
                "location": stack.local.repository_location(Some(base_path)),
                "max_snapshot_bytes_per_sec": "1kb"}})
        }
    };
    deps.opensearch
        .call(
            http::Method::PUT,
            &format!("/_snapshot/{THROTTLED}"),
            &[],
            Some(&repository),
        )
        .await
        .unwrap();
    deps.opensearch
        .create_snapshot(THROTTLED, "running", &json!({"indices": INDEX}))
        .await
        .unwrap();
    "running".to_owned()
}

/// `snapshot.max_concurrent_operations` of a real node (`null`: its default, 1,000).
async fn set_concurrent_operations_limit(deps: &Deps, limit: Value) {
    deps.opensearch
        .call(
            http::Method::PUT,
            "/_cluster/settings",
            &[],
            Some(&json!({"persistent": {"snapshot.max_concurrent_operations": limit}})),
        )
        .await
        .unwrap();
}

/// The error probes, answered by this engine, with ossnap's own refusal of a second snapshot.
async fn answer_probes(
    stack: &TestStack,
    deps: &Deps,
    existing: &str,
    profile: Profile,
) -> Transcript {
    let mut transcript = Transcript::new(stack.engine(), profile == Profile::V3);
    for probe in probes::before_running(existing) {
        transcript.answer(deps, probe).await;
    }
    let running = start_running_snapshot(stack, deps).await;
    let refused = snapshot::run(
        deps,
        invocation(snapshot::SnapshotInput {
            snapshot: Some("ossnap-second".into()),
            ..Default::default()
        }),
        "second",
    )
    .await
    .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::SnapshotInProgress, "{refused}");
    assert!(refused.message().contains(&running), "{refused}");
    transcript.answer(deps, probes::concurrent()).await;
    if stack.engine() != Engine::Emulator {
        set_concurrent_operations_limit(deps, Value::Null).await;
    }
    for probe in probes::abort(THROTTLED, &running) {
        transcript.answer(deps, probe).await;
    }
    transcript
}
