//! retention against the local stack: what it deletes, what it keeps, what it never touches,
//! and how many requests it sends.

use std::time::Duration;

use ossnap_core::clock::Clock;
use ossnap_core::config::Environment;
use ossnap_core::event::Invocation;
use ossnap_core::retention::{self, Policy, RetentionInput, RetentionOutput};
use ossnap_core::snapshot::{self, SnapshotInput};
use ossnap_core::{Deps, ErrorKind};
use ossnap_local_stack::{Fault, Profile};
use ossnap_tests::stack::{wait_until_idle, BASE_PATH};
use ossnap_tests::TestStack;
use ossnap_verify::{Verifier, VerifyInput};
use serde_json::json;
use time::macros::datetime;
use time::OffsetDateTime;

fn policy(min_count: usize, max_count: Option<usize>) -> Policy {
    Policy {
        min_count,
        max_count,
        max_age: None,
        max_deletions: 20,
        dry_run: false,
    }
}

/// Takes one ossnap snapshot per scheduled day and waits for each to finish.
async fn daily_snapshots(deps: &Deps, days: &[OffsetDateTime]) -> Vec<String> {
    let mut names = Vec::new();
    for day in days {
        let invocation = Invocation {
            input: SnapshotInput::default(),
            scheduled_time: Some(*day),
        };
        names.push(
            snapshot::run(deps, invocation, "history")
                .await
                .unwrap()
                .snapshot,
        );
        wait_until_idle(deps).await;
    }
    names
}

async fn apply(
    stack: &TestStack,
    deps: &Deps,
    policy: &Policy,
    dry_run: Option<bool>,
) -> RetentionOutput {
    let input = RetentionInput {
        dry_run,
        ..RetentionInput::default()
    };
    stack.retain(deps, policy, input).await.unwrap()
}

fn names(decisions: &[retention::Decision]) -> Vec<&str> {
    decisions.iter().map(|d| d.snapshot.as_str()).collect()
}

async fn setup() -> (TestStack, Deps, Vec<String>) {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 5).await;
    stack.register(&deps).await;
    let days = [
        datetime!(2026-11-24 02:00 UTC),
        datetime!(2026-11-25 02:00 UTC),
        datetime!(2026-11-26 02:00 UTC),
        datetime!(2026-11-27 02:00 UTC),
    ];
    let ours = daily_snapshots(&deps, &days).await;
    // Another tool's snapshot, and one that looks like ours but whose metadata says otherwise.
    for (name, metadata) in [
        ("curator-20261101000000", json!({"taken_by": "curator"})),
        ("ossnap-20261101-000000", json!({"taken_by": "someone"})),
    ] {
        deps.opensearch
            .create_snapshot(
                "ossnap",
                name,
                &json!({"indices": "logs", "metadata": metadata}),
            )
            .await
            .unwrap();
        wait_until_idle(&deps).await;
    }
    (stack, deps, ours)
}

#[tokio::test]
async fn deletes_beyond_max_count_in_one_request_and_never_foreign_snapshots() {
    let (stack, deps, ours) = setup().await;
    stack.control().clear_requests();

    let output = apply(&stack, &deps, &policy(2, Some(2)), None).await;
    assert_eq!(
        names(&output.deleted),
        vec![ours[0].as_str(), ours[1].as_str()]
    );
    assert_eq!(
        names(&output.kept),
        vec![ours[3].as_str(), ours[2].as_str()]
    );
    let skipped = names(&output.skipped);
    assert!(skipped.contains(&"curator-20261101000000"));
    assert!(skipped.contains(&"ossnap-20261101-000000"), "{output:?}");

    // One listing (verbose=false), one re-read, one DELETE for both.
    let requests = stack.control().requests();
    let listings = requests
        .iter()
        .filter(|r| r.method == "GET" && r.query.contains("verbose=false"))
        .count();
    let deletes: Vec<_> = requests.iter().filter(|r| r.method == "DELETE").collect();
    assert_eq!(listings, 1);
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(
        deletes[0]
            .path
            .ends_with(&format!("{},{}", ours[0], ours[1])),
        "{:?}",
        deletes[0]
    );

    let left = deps
        .opensearch
        .get_snapshots("ossnap", &["_all"], false)
        .await
        .unwrap();
    let left: Vec<&str> = left.iter().map(|s| s.snapshot.as_str()).collect();
    for kept in [&ours[2], &ours[3]] {
        assert!(left.contains(&kept.as_str()));
    }
    assert!(left.contains(&"curator-20261101000000") && left.contains(&"ossnap-20261101-000000"));
    assert!(!left.contains(&ours[0].as_str()) && !left.contains(&ours[1].as_str()));
}

#[tokio::test]
async fn dry_run_reports_and_deletes_nothing() {
    let (stack, deps, ours) = setup().await;
    stack.control().clear_requests();
    let output = apply(&stack, &deps, &policy(1, Some(1)), Some(true)).await;
    assert!(output.dry_run);
    assert_eq!(output.deleted.len(), 3);
    assert!(output
        .deleted
        .iter()
        .all(|d| d.reason.contains("RETENTION_MAX_COUNT")));
    assert!(stack.requests("DELETE", "/").is_empty());
    assert_eq!(
        deps.opensearch
            .get_snapshots(
                "ossnap",
                &ours.iter().map(String::as_str).collect::<Vec<_>>(),
                false
            )
            .await
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn a_running_snapshot_is_never_deleted_and_the_cap_is_honoured() {
    let stack = TestStack::start_with(|c| c.snapshot_duration = Duration::from_millis(100)).await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 2).await;
    stack.register(&deps).await;
    let ours = daily_snapshots(
        &deps,
        &[
            datetime!(2026-11-20 02:00 UTC),
            datetime!(2026-11-21 02:00 UTC),
            datetime!(2026-11-22 02:00 UTC),
            datetime!(2026-11-23 02:00 UTC),
        ],
    )
    .await;
    stack
        .control()
        .set_next_snapshot_outcome(ossnap_local_stack::SnapshotOutcome::NeverFinishes);
    let running = snapshot::run(
        &deps,
        Invocation {
            input: SnapshotInput::default(),
            scheduled_time: Some(datetime!(2026-11-19 02:00 UTC)),
        },
        "old-but-running",
    )
    .await
    .unwrap();

    let output = apply(
        &stack,
        &deps,
        &Policy {
            max_deletions: 1,
            ..policy(1, Some(1))
        },
        None,
    )
    .await;
    assert_eq!(names(&output.deleted), vec![ours[0].as_str()]);
    assert!(names(&output.kept).contains(&running.snapshot.as_str()));
    let left_for_later: Vec<_> = output
        .skipped
        .iter()
        .filter(|d| d.reason.contains("RETENTION_MAX_DELETIONS"))
        .collect();
    assert_eq!(left_for_later.len(), 2);
    let info = deps
        .opensearch
        .get_snapshot("ossnap", &running.snapshot)
        .await
        .unwrap();
    assert_eq!(info.state.as_deref(), Some("IN_PROGRESS"));
}

/// A stack of `profile` with `count` daily ossnap snapshots, oldest first.
async fn history_on(profile: Profile, count: usize) -> (TestStack, Deps, Vec<String>) {
    let stack = TestStack::start_with(|c| c.profile = profile).await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 2).await;
    stack.register(&deps).await;
    let days: Vec<OffsetDateTime> = (0..count)
        .map(|n| datetime!(2026-11-01 02:00 UTC) + time::Duration::days(n as i64))
        .collect();
    let ours = daily_snapshots(&deps, &days).await;
    (stack, deps, ours)
}

fn deletes(stack: &TestStack) -> Vec<String> {
    stack.requests("DELETE", "/_snapshot/")
}

#[tokio::test]
async fn empty_snapshots_do_not_count_toward_the_minimum() {
    let (stack, deps, ours) = history_on(Profile::V2, 2).await;
    // The two newest succeed with no shards (no index matched).
    for day in [
        datetime!(2026-11-10 02:00 UTC),
        datetime!(2026-11-11 02:00 UTC),
    ] {
        let invocation = Invocation {
            input: SnapshotInput {
                indices: Some("nomatch-*".into()),
                ..SnapshotInput::default()
            },
            scheduled_time: Some(day),
        };
        snapshot::run(&deps, invocation, "empty").await.unwrap();
        wait_until_idle(&deps).await;
    }

    let output = apply(&stack, &deps, &policy(2, Some(2)), None).await;
    assert!(output.deleted.is_empty(), "{output:?}");
    for healthy in &ours {
        assert!(names(&output.kept).contains(&healthy.as_str()));
    }
}

#[tokio::test]
async fn elasticsearch_before_7_8_deletes_one_by_one_and_before_7_3_knows_its_own_by_name() {
    for profile in [Profile::Es77, Profile::Es68] {
        let (stack, deps, ours) = history_on(profile, 4).await;
        stack.control().clear_requests();
        let output = apply(&stack, &deps, &policy(2, Some(2)), None).await;
        assert_eq!(
            names(&output.deleted),
            vec![ours[0].as_str(), ours[1].as_str()],
            "{profile:?}: {output:?}"
        );
        let sent = deletes(&stack);
        assert_eq!(sent.len(), 2, "{profile:?}: {sent:?}");
        assert!(sent.iter().all(|d| !d.contains(',')), "{sent:?}");
        let left = deps
            .opensearch
            .get_snapshots("ossnap", &["_all"], false)
            .await
            .unwrap();
        assert_eq!(left.len(), 2, "{profile:?}");
    }
}

#[tokio::test]
async fn a_snapshot_gone_before_the_delete_leaves_the_rest_deleted() {
    let (stack, deps, ours) = history_on(Profile::V2, 4).await;
    // What the listing and the re-read will answer: all four, though the oldest is about to go.
    for (path, query) in [
        ("/_snapshot/ossnap/_all", [("verbose", "false")].as_slice()),
        ("/_snapshot/ossnap/ossnap-*", [].as_slice()),
    ] {
        let stale = deps
            .opensearch
            .call(http::Method::GET, path, query, None)
            .await
            .unwrap();
        stack
            .control()
            .add_fault(Fault::new("GET", path, 200, &stale.to_string()));
    }
    deps.opensearch
        .delete_snapshots("ossnap", &[&ours[0]])
        .await
        .unwrap();
    stack.control().clear_requests();

    let output = apply(&stack, &deps, &policy(2, Some(2)), None).await;
    assert_eq!(
        names(&output.deleted),
        vec![ours[0].as_str(), ours[1].as_str()]
    );
    // The list DELETE met "missing"; a listing; then a DELETE of the one left.
    let sent = deletes(&stack);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[1].ends_with(&format!("/{}?", ours[1])), "{sent:?}");
    let left = deps
        .opensearch
        .get_snapshots("ossnap", &["_all"], false)
        .await
        .unwrap();
    assert_eq!(left.len(), 2);
}

#[tokio::test]
async fn a_delete_answered_after_cleanup_or_not_at_all_is_checked_by_listing() {
    let (stack, deps, ours) = history_on(Profile::V2, 4).await;
    // A gateway timeout after the cluster deleted them.
    stack.control().add_fault(Fault {
        after_accept: true,
        ..Fault::new("DELETE", "/_snapshot/ossnap/*", 504, "<html>504</html>")
    });
    let output = apply(&stack, &deps, &policy(2, Some(3)), None).await;
    assert_eq!(names(&output.deleted), vec![ours[0].as_str()]);

    // An answer that outlasts the client's timeout, once the deletion is done. The timeout leaves
    // the emulator ample time to finish the deletion first, even on a loaded machine (at 300 ms
    // a loaded make test once listed before it had, and retention rightly called it not gone).
    let impatient = Deps {
        opensearch: deps
            .opensearch
            .clone()
            .with_request_timeout(Duration::from_secs(2))
            .unwrap(),
        ..deps.clone()
    };
    stack.control().add_fault(Fault {
        after_accept: true,
        latency_ms: 8_000,
        ..Fault::new(
            "DELETE",
            "/_snapshot/ossnap/*",
            200,
            r#"{"acknowledged":true}"#,
        )
    });
    let output = apply(&stack, &impatient, &policy(2, Some(2)), None).await;
    assert_eq!(names(&output.deleted), vec![ours[1].as_str()]);
    let left = deps
        .opensearch
        .get_snapshots("ossnap", &["_all"], false)
        .await
        .unwrap();
    assert_eq!(left.len(), 2);
}

#[tokio::test]
async fn one_unreadable_snapshot_does_not_stop_retention() {
    let (stack, deps, ours) = history_on(Profile::V2, 4).await;
    let oldest = deps
        .opensearch
        .get_snapshot("ossnap", &ours[0])
        .await
        .unwrap();
    stack
        .local
        .s3_client()
        .delete_object()
        .bucket(&stack.local.config().bucket)
        .key(format!(
            "{}/snap-{}.dat",
            ossnap_tests::stack::BASE_PATH,
            oldest.uuid.unwrap()
        ))
        .send()
        .await
        .unwrap();

    let output = apply(&stack, &deps, &policy(2, Some(2)), None).await;
    assert_eq!(names(&output.deleted), vec![ours[1].as_str()]);
    let skipped = output
        .skipped
        .iter()
        .find(|d| d.snapshot == ours[0])
        .expect("the unreadable one is reported");
    assert!(skipped.reason.contains("could not be read"), "{skipped:?}");
}

#[tokio::test]
async fn a_run_stops_at_its_request_budget_and_leaves_the_rest_for_the_next() {
    let budget = ossnap_core::budget::RETENTION_MAX_REQUESTS as usize;
    // One by one (ES 7.7): a listing and a re-read, then one DELETE per snapshot.
    let (stack, deps, ours) = history_on(Profile::Es77, budget + 1).await;
    stack.control().clear_requests();
    let output = apply(&stack, &deps, &policy(1, Some(1)), None).await;
    assert_eq!(output.deleted.len(), budget - 2);
    assert_eq!(stack.control().requests().len(), budget);
    let deferred: Vec<_> = output
        .skipped
        .iter()
        .filter(|d| d.reason.contains("at most"))
        .collect();
    assert_eq!(deferred.len(), ours.len() - 1 - (budget - 2));
}

/// A snapshot the cluster calls SUCCESS but whose shard file is gone from S3: verify records a
/// verdict, and retention keeps the two newest snapshots that restore instead of counting it.
#[tokio::test]
async fn a_snapshot_verify_found_damaged_does_not_count_toward_the_minimum() {
    let (stack, deps, ours) = setup().await;
    let newest = &ours[3];
    let uuid = deps
        .opensearch
        .get_snapshots("ossnap", &[newest], true)
        .await
        .unwrap()[0]
        .uuid
        .clone()
        .unwrap();
    let env = Environment::from_pairs(stack.env());
    let bucket = env.get("SNAPSHOT_BUCKET").unwrap().to_string();
    let s3 = stack.local.s3_client();
    let listing = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(format!("{BASE_PATH}/indices/"))
        .send()
        .await
        .unwrap();
    let shard_file = listing
        .contents()
        .iter()
        .filter_map(|object| object.key())
        .find(|key| key.ends_with(&format!("/snap-{uuid}.dat")))
        .expect("the newest snapshot's shard file")
        .to_string();
    s3.delete_object()
        .bucket(&bucket)
        .key(&shard_file)
        .send()
        .await
        .unwrap();

    let verifier = Verifier::new(&env, stack.local.s3_client(), Clock::without_sleeps()).unwrap();
    let input = VerifyInput {
        snapshot: Some(newest.clone()),
        ..VerifyInput::default()
    };
    let invocation = Invocation {
        input,
        scheduled_time: None,
    };
    let refused = ossnap_verify::run(&verifier, invocation).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::VerificationFailed);
    let verdict_key = format!("ossnap-verdicts/{BASE_PATH}/{newest}/{uuid}.json");
    assert!(
        refused.message().contains(&format!(
            "retention no longer counts it as healthy (verdict at s3://{bucket}/{verdict_key}"
        )),
        "{refused}"
    );
    let verdict = s3
        .get_object()
        .bucket(&bucket)
        .key(&verdict_key)
        .send()
        .await
        .unwrap();
    let verdict: serde_json::Value =
        serde_json::from_slice(&verdict.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(verdict["uuid"], json!(uuid));
    assert!(verdict["damage"][0]
        .as_str()
        .unwrap()
        .contains("missing shard snapshot"));

    // A function configured for another repository, asked for this one, must be told where it
    // is: the configured folder holds none of its verdicts.
    let configured_elsewhere = stack.deps(&[
        ("SNAPSHOT_REPOSITORY", "other"),
        ("SNAPSHOT_BASE_PATH", "elsewhere"),
    ]);
    stack.control().clear_requests();
    let this_repository = RetentionInput {
        repository: Some("ossnap".into()),
        dry_run: Some(true),
        ..RetentionInput::default()
    };
    let refused = stack
        .retain(&configured_elsewhere, &policy(2, Some(2)), this_repository)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConfigError);
    assert!(
        refused
            .message()
            .contains("retention of repository \"ossnap\" needs its \"bucket\" and \"base_path\""),
        "{refused}"
    );
    assert!(stack.control().requests().is_empty());
    let told = RetentionInput {
        repository: Some("ossnap".into()),
        base_path: Some(BASE_PATH.into()),
        dry_run: Some(true),
        ..RetentionInput::default()
    };
    let planned = stack
        .retain(&configured_elsewhere, &policy(2, Some(2)), told)
        .await
        .unwrap();
    assert_eq!(
        names(&planned.deleted),
        vec![ours[0].as_str()],
        "{planned:?}"
    );

    // Without the verdict the newest would be one of the two kept, and ours[1] would go too.
    let output = apply(&stack, &deps, &policy(2, Some(2)), None).await;
    assert_eq!(names(&output.deleted), vec![ours[0].as_str()], "{output:?}");
    assert_eq!(
        names(&output.kept),
        vec![newest.as_str(), ours[2].as_str(), ours[1].as_str()]
    );
    assert!(
        output.kept[0].reason.contains("verify found it damaged")
            && output.kept[0]
                .reason
                .contains("until a newer healthy one exists"),
        "{:?}",
        output.kept[0]
    );
}
