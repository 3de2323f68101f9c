//! `restore` and `check-restore` against the local stack: one suite on the emulator and on real
//! OpenSearch 2.x and 3.x nodes (one node per engine, reused by the whole suite), and the cases
//! only the emulator can stage (short disk, a second cluster sharing the bucket, a newer
//! snapshot's version).

use std::time::Duration;

use ossnap_core::check_restore::{self, CheckRestoreAnswer, CheckRestoreInput, RestoreReport};
use ossnap_core::event::Invocation;
use ossnap_core::restore::{self, IndexList, RestoreInput, RestoreOutput};
use ossnap_core::status::{self, StatusInput, StatusOutput};
use ossnap_core::{register, snapshot, Deps, ErrorKind};
use ossnap_local_stack::{Engine, Profile};
use ossnap_tests::stack::index_names;
use ossnap_tests::TestStack;
use serde_json::{json, Value};

const LOGS: &str = "logs-2026.11";
const ORDERS: &str = "orders";

fn invocation<T>(input: T) -> Invocation<T> {
    Invocation {
        input,
        scheduled_time: None,
    }
}

async fn refresh(deps: &Deps) {
    deps.opensearch
        .call(http::Method::POST, "/_refresh", &[], None)
        .await
        .unwrap();
}

/// A snapshot named `name` of `indices` (default: ossnap's), taken by the snapshot function and
/// followed to its end.
async fn take_snapshot(deps: &Deps, name: &str, indices: Option<&str>) {
    snapshot::run(
        deps,
        invocation(snapshot::SnapshotInput {
            snapshot: Some(name.into()),
            indices: indices.map(str::to_string),
            ..Default::default()
        }),
        "restore-test",
    )
    .await
    .unwrap();
    for _ in 0..600 {
        let input = StatusInput {
            repository: None,
            snapshot: Some(name.into()),
        };
        if let StatusOutput::Snapshot(report) = status::run(deps, invocation(input)).await.unwrap()
        {
            if report.done {
                assert!(report.healthy, "{report:?}");
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never finished");
}

async fn restore(deps: &Deps, input: RestoreInput) -> ossnap_core::Result<RestoreOutput> {
    restore::run(deps, input).await
}

async fn check(deps: &Deps, indices: &[String]) -> ossnap_core::Result<RestoreReport> {
    let input = CheckRestoreInput {
        indices: Some(IndexList::Many(indices.to_vec())),
        ..Default::default()
    };
    match check_restore::run(deps, invocation(input)).await? {
        CheckRestoreAnswer::Report(output) => Ok(output.report),
        other => panic!("expected a report, got {other:?}"),
    }
}

/// check-restore until the restore is done (or fails).
async fn until_restored(deps: &Deps, indices: &[String]) -> ossnap_core::Result<RestoreReport> {
    let mut polls = Vec::new();
    for _ in 0..600 {
        let report = check(deps, indices).await?;
        if report.done {
            assert!(
                polls
                    .iter()
                    .all(|p: &RestoreReport| !p.done && p.wait_seconds >= 30),
                "{polls:?}"
            );
            return Ok(report);
        }
        polls.push(report);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the restore of {indices:?} never finished");
}

/// The whole suite on `engine`, with one node.
async fn suite(engine: Engine) {
    let stack = TestStack::start_engine(engine).await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, LOGS, 30).await;
    stack.seed_index(&deps, ORDERS, 7).await;
    stack.seed_index(&deps, ".opendistro_security", 1).await;
    refresh(&deps).await;
    // A real node's disk is this machine's: shared, and maybe fuller than the default low
    // watermark, above which neither OpenSearch nor restore's plan places a restored shard.
    set_cluster_settings(
        &deps,
        json!({
            "cluster.routing.allocation.disk.watermark.low": "99%",
            "cluster.routing.allocation.disk.watermark.high": "99.5%",
            "cluster.routing.allocation.disk.watermark.flood_stage": "99.9%",
        }),
    )
    .await;
    stack.register(&deps).await;
    // Everything, the security index included, so that restore must leave it out itself.
    take_snapshot(&deps, "ossnap-20261101-020000", Some("*")).await;

    dry_run_changes_nothing(&deps, engine).await;
    conflicts_are_refused_then_a_rename_restores(&deps, engine).await;
    round_trip_with_equal_counts(&deps, engine).await;
    the_security_index_is_never_restored(&deps, engine).await;
    too_many_shards_are_refused(&deps, engine).await;
    a_red_restore_names_the_shards_and_the_reason(&deps, engine).await;
    the_drill_compares_and_leaves_nothing_behind(&stack, engine).await;
}

async fn dry_run_changes_nothing(deps: &Deps, engine: Engine) {
    let before = index_names(deps).await;
    let planned = restore(
        deps,
        RestoreInput {
            snapshot: Some("latest".into()),
            rename_pattern: Some("(.+)".into()),
            rename_replacement: Some("dry-$1".into()),
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(planned.dry_run);
    assert_eq!(planned.snapshot, "ossnap-20261101-020000", "{engine}");
    assert_eq!(
        planned.indices,
        ["dry-logs-2026.11", "dry-orders"],
        "{engine}"
    );
    assert_eq!(
        planned.plan.indices[0].primaries, 2,
        "{engine}: {planned:?}"
    );
    assert!(planned.plan.indices[0].bytes > 0, "{engine}: {planned:?}");
    assert!(
        planned
            .plan
            .excluded
            .iter()
            .any(|e| e.index == ".opendistro_security"),
        "{engine}: {planned:?}"
    );
    assert_eq!(index_names(deps).await, before, "{engine}");
}

async fn conflicts_are_refused_then_a_rename_restores(deps: &Deps, engine: Engine) {
    let refused = restore(
        deps,
        RestoreInput {
            snapshot: Some("ossnap-20261101-020000".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        refused.kind(),
        ErrorKind::RestoreConflict,
        "{engine}: {refused}"
    );
    for needle in [LOGS, ORDERS, "delete", "close", "rename_pattern"] {
        assert!(refused.message().contains(needle), "{engine}: {refused}");
    }

    let renamed = restore(
        deps,
        RestoreInput {
            snapshot: Some("ossnap-20261101-020000".into()),
            indices: Some(IndexList::One(ORDERS.into())),
            rename_pattern: Some("(.+)".into()),
            rename_replacement: Some("restored-$1".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(renamed.indices, ["restored-orders"]);
    let report = until_restored(deps, &renamed.indices).await.unwrap();
    assert!(report.healthy, "{engine}: {report:?}");
    assert_eq!(report.percent, 100.0, "{engine}: {report:?}");
    assert_eq!(deps.opensearch.count("restored-orders").await.unwrap(), 7);
    deps.opensearch
        .delete_index("restored-orders")
        .await
        .unwrap();
}

async fn round_trip_with_equal_counts(deps: &Deps, engine: Engine) {
    deps.opensearch.delete_index(LOGS).await.unwrap();
    let started = restore(
        deps,
        RestoreInput {
            indices: Some(IndexList::One(LOGS.into())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(started.indices, [LOGS]);
    assert!(!started.plan.include_global_state);
    let report = until_restored(deps, &started.indices).await.unwrap();
    assert!(report.healthy, "{engine}: {report:?}");
    assert_eq!(report.primaries.done, 2, "{engine}: {report:?}");
    assert!(report.bytes.total > 0, "{engine}: {report:?}");
    assert_eq!(deps.opensearch.count(LOGS).await.unwrap(), 30, "{engine}");
}

async fn the_security_index_is_never_restored(deps: &Deps, engine: Engine) {
    let refused = restore(
        deps,
        RestoreInput {
            indices: Some(IndexList::One(".opendistro_security".into())),
            rename_pattern: Some("(.+)".into()),
            rename_replacement: Some("copy$1".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConfigError, "{engine}");
    assert!(refused.message().contains("securityadmin"), "{refused}");
    // Not by a pattern either.
    let planned = restore(
        deps,
        RestoreInput {
            indices: Some(IndexList::One(".*".into())),
            rename_pattern: Some("^\\.(.+)".into()),
            rename_replacement: Some("copy-$1".into()),
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        planned.kind(),
        ErrorKind::ConfigError,
        "{engine}: {planned}"
    );
    assert!(planned.message().contains("never restored"), "{planned}");
}

async fn too_many_shards_are_refused(deps: &Deps, engine: Engine) {
    let health = deps.opensearch.health_of(&[]).await.unwrap();
    let open = health.active_shards + health.unassigned_shards + health.initializing_shards;
    set_max_shards(deps, json!(open + 1)).await;
    let refused = restore(
        deps,
        RestoreInput {
            indices: Some(IndexList::One(ORDERS.into())),
            rename_pattern: Some("(.+)".into()),
            rename_replacement: Some("big-$1".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    set_max_shards(deps, Value::Null).await;
    assert_eq!(
        refused.kind(),
        ErrorKind::InsufficientCapacity,
        "{engine}: {refused}"
    );
    assert!(
        refused.message().contains("max_shards_per_node"),
        "{refused}"
    );
    assert!(!index_names(deps).await.contains(&"big-orders".to_string()));
}

async fn set_max_shards(deps: &Deps, limit: Value) {
    set_cluster_settings(deps, json!({"cluster.max_shards_per_node": limit})).await;
}

async fn set_cluster_settings(deps: &Deps, persistent: Value) {
    deps.opensearch
        .call(
            http::Method::PUT,
            "/_cluster/settings",
            &[],
            Some(&json!({ "persistent": persistent })),
        )
        .await
        .unwrap();
}

async fn a_red_restore_names_the_shards_and_the_reason(deps: &Deps, engine: Engine) {
    let mut settings = serde_json::Map::new();
    settings.insert(
        "index.routing.allocation.require._name".into(),
        json!("no-such-node"),
    );
    let started = restore(
        deps,
        RestoreInput {
            indices: Some(IndexList::One(ORDERS.into())),
            rename_pattern: Some("(.+)".into()),
            rename_replacement: Some("red-$1".into()),
            index_settings: Some(settings),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let failed = until_restored(deps, &started.indices).await.unwrap_err();
    assert_eq!(
        failed.kind(),
        ErrorKind::RestoreFailed,
        "{engine}: {failed}"
    );
    // Shards are explained in order, and the first poll that finds one unallocatable fails the
    // restore: shard 0 is always named. Shard 1 is named too when its explanation is ready by
    // then; a real node may still be fetching its size from the snapshot (`awaiting_info`).
    for needle in ["[red-orders][0] primary", "no-such-node"] {
        assert!(failed.message().contains(needle), "{engine}: {failed}");
    }
    deps.opensearch.delete_index("red-orders").await.unwrap();
}

/// The restore drill as the snapshot workflow runs it: restore's start, check-restore until it
/// is over; the copy is gone after.
async fn the_drill_compares_and_leaves_nothing_behind(stack: &TestStack, engine: Engine) {
    let deps = stack.deps(&[("RESTORE_DRILL", "true")]);
    let start = match restore::handle(
        &Ok(deps.clone()),
        lambda_runtime::LambdaEvent::new(
            json!({"repository": "ossnap", "snapshot": "ossnap-20261101-020000", "drill": true}),
            lambda_runtime::Context::default(),
        ),
    )
    .await
    .unwrap()
    {
        restore::RestoreAnswer::Drill(start) => start,
        other => panic!("{engine}: expected the drill's start, got {other:?}"),
    };
    assert!(!start.skipped, "{engine}: {start:?}");
    // The smallest index that is not a system one.
    assert_eq!(
        start.indices,
        ["ossnap-drill-orders"],
        "{engine}: {start:?}"
    );
    let drill = start.drill.clone().unwrap();
    let mut result = None;
    for _ in 0..600 {
        let input = CheckRestoreInput {
            indices: Some(IndexList::Many(start.indices.clone())),
            drill: Some(drill.clone()),
            drill_cleanup: false,
        };
        match check_restore::run(&deps, invocation(input)).await.unwrap() {
            CheckRestoreAnswer::Report(output) if output.report.done => {
                result = output.drill;
                break;
            }
            CheckRestoreAnswer::Report(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("{engine}: {other:?}"),
        }
    }
    let result = result.expect("the drill ended with a result");
    assert!(result.succeeded, "{engine}: {result:?}");
    assert!(result.counts_compared, "{engine}: {result:?}");
    assert_eq!(result.drill_count, Some(7), "{engine}: {result:?}");
    assert!(result.deleted, "{engine}: {result:?}");
    assert!(
        !index_names(&deps)
            .await
            .iter()
            .any(|i| i.starts_with("ossnap-drill-")),
        "{engine}"
    );
}

#[tokio::test]
async fn the_suite_on_the_emulator() {
    suite(Engine::Emulator).await;
}

#[tokio::test]
async fn the_suite_on_opensearch_2() {
    suite(Engine::OpenSearch2).await;
}

#[tokio::test]
async fn the_suite_on_opensearch_3() {
    suite(Engine::OpenSearch3).await;
}

#[tokio::test]
async fn short_disk_is_refused_before_anything_changes() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, ORDERS, 5).await;
    stack.register(&deps).await;
    take_snapshot(&deps, "ossnap-20261101-020000", None).await;
    stack.control().set_disk_available(1);
    let refused = restore(
        &deps,
        RestoreInput {
            rename_pattern: Some("(.+)".into()),
            rename_replacement: Some("r-$1".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InsufficientCapacity, "{refused}");
    assert!(refused.message().contains("low watermark"), "{refused}");
    assert!(stack
        .requests("POST", "/_snapshot/ossnap/ossnap-20261101-020000/_restore")
        .is_empty());
}

/// A second domain shares the bucket: it registers the repository read-only and restores from
/// it; a snapshot written by a newer version is refused.
#[tokio::test]
async fn a_second_cluster_restores_from_a_read_only_registration() {
    let stack = TestStack::start_with(|config| config.profile = Profile::V2).await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, ORDERS, 9).await;
    stack.register(&deps).await;
    take_snapshot(&deps, "ossnap-20261101-020000", None).await;

    let newer = stack
        .local
        .start_another_cluster("newer", Profile::V3)
        .await
        .unwrap();
    let other = stack.deps_at(
        &newer.opensearch_endpoint(),
        &[("SNAPSHOT_READONLY", "true")],
    );
    let registered = register::run(&other, invocation(Default::default()))
        .await
        .unwrap();
    assert_eq!(registered.repository, "ossnap");
    let repository = other
        .opensearch
        .get_repository("ossnap")
        .await
        .unwrap()
        .unwrap();
    assert!(
        [json!("true"), json!(true)].contains(&repository.settings["readonly"]),
        "{repository:?}"
    );
    let started = restore(&other, RestoreInput::default()).await.unwrap();
    assert_eq!(started.indices, [ORDERS]);
    until_restored(&other, &started.indices).await.unwrap();
    assert_eq!(other.opensearch.count(ORDERS).await.unwrap(), 9);

    // The newer cluster's snapshot does not go back into the older one.
    let elsewhere = [
        ("SNAPSHOT_REPOSITORY", "newer"),
        ("SNAPSHOT_BASE_PATH", "clusters/newer"),
    ];
    let writable = stack.deps_at(&newer.opensearch_endpoint(), &elsewhere);
    register::run(&writable, invocation(Default::default()))
        .await
        .unwrap();
    take_snapshot(&writable, "ossnap-20261102-020000", None).await;
    let older = stack.deps(&elsewhere);
    stack.register(&older).await;
    let refused = restore(
        &older,
        RestoreInput {
            snapshot: Some("ossnap-20261102-020000".into()),
            rename_pattern: Some("(.+)".into()),
            rename_replacement: Some("back-$1".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::IncompatibleVersion, "{refused}");
    assert!(refused.message().contains("OpenSearch 3.1.0"), "{refused}");
    newer.shutdown().await;
}

/// `latest` is the newest healthy snapshot ossnap took: not a newer failed one, nor another
/// tool's.
#[tokio::test]
async fn latest_is_the_newest_healthy_snapshot_of_ours() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, ORDERS, 2).await;
    stack.register(&deps).await;
    take_snapshot(&deps, "ossnap-20261101-020000", None).await;
    take_snapshot(&deps, "ossnap-20261102-020000", None).await;
    // Another tool's, newer, with a name that is not ours.
    deps.opensearch
        .create_snapshot("ossnap", "manual-20261104", &json!({"indices": ORDERS}))
        .await
        .unwrap();
    ossnap_tests::stack::wait_until_idle(&deps).await;
    // Ours, newer, FAILED.
    stack
        .control()
        .set_next_snapshot_outcome(ossnap_local_stack::SnapshotOutcome::Failed {
            reason: "disk".into(),
        });
    snapshot::run(
        &deps,
        invocation(snapshot::SnapshotInput {
            snapshot: Some("ossnap-20261103-020000".into()),
            ..Default::default()
        }),
        "failed",
    )
    .await
    .unwrap();
    ossnap_tests::stack::wait_until_idle(&deps).await;

    let planned = restore(
        &deps,
        RestoreInput {
            rename_pattern: Some("(.+)".into()),
            rename_replacement: Some("r-$1".into()),
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(planned.snapshot, "ossnap-20261102-020000");
}
