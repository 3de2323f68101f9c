//! register, snapshot and check-status against the local stack, called in-process with real HTTP
//! to the emulator (the binaries, run as Lambda runs them, are in `lambda.rs`).

use std::time::Duration;

use ossnap_core::event::Invocation;
use ossnap_core::register::{self, RegisterInput, RegistrationStatus};
use ossnap_core::snapshot::{self, SnapshotInput, SnapshotOutput};
use ossnap_core::status::{self, StatusInput, StatusOutput};
use ossnap_core::{Deps, ErrorKind};
use ossnap_local_stack::{Fault, Profile, SnapshotOutcome};
use ossnap_tests::stack::{error_body, TestStack, SNAPSHOT_ROLE};
use serde_json::json;
use time::macros::datetime;
use time::OffsetDateTime;

const SCHEDULED: OffsetDateTime = datetime!(2026-11-28 02:00:00 UTC);
const SCHEDULED_NAME: &str = "ossnap-20261128-020000";

fn invocation<T>(input: T, scheduled_time: Option<OffsetDateTime>) -> Invocation<T> {
    Invocation {
        input,
        scheduled_time,
    }
}

async fn register(deps: &Deps) -> register::RegisterOutput {
    register::run(deps, invocation(RegisterInput::default(), None))
        .await
        .expect("the repository registers")
}

async fn start_snapshot(deps: &Deps) -> ossnap_core::Result<SnapshotOutput> {
    snapshot::run(
        deps,
        invocation(SnapshotInput::default(), Some(SCHEDULED)),
        "run-1",
    )
    .await
}

async fn check(deps: &Deps, snapshot: &str) -> ossnap_core::Result<status::SnapshotReport> {
    let input = StatusInput {
        repository: None,
        snapshot: Some(snapshot.to_string()),
    };
    match status::run(deps, invocation(input, None)).await? {
        StatusOutput::Snapshot(report) => Ok(report),
        other => panic!("expected a snapshot report, got {other:?}"),
    }
}

/// Polls check-status until the snapshot is done (the emulator's snapshots take 200 ms).
async fn until_done(deps: &Deps, snapshot: &str) -> status::SnapshotReport {
    for _ in 0..100 {
        let report = check(deps, snapshot).await.expect("status is readable");
        if report.done {
            return report;
        }
        assert!(report.wait_seconds >= 30 && report.wait_seconds <= 900);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{snapshot} never finished");
}

#[tokio::test]
async fn register_creates_the_repository_then_sends_nothing_more() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);

    let first = register(&deps).await;
    assert_eq!(first.repository, "ossnap");
    assert_eq!(first.status, RegistrationStatus::Created);
    assert!(first.verified_nodes.unwrap() >= 1);
    let definition = deps
        .opensearch
        .get_repository("ossnap")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(definition.kind, "s3");
    assert_eq!(definition.settings["role_arn"], SNAPSHOT_ROLE);
    assert_eq!(definition.settings["base_path"], "clusters/local");

    stack.control().clear_requests();
    let second = register(&deps).await;
    assert_eq!(second.status, RegistrationStatus::Unchanged);
    assert_eq!(second.verified_nodes, None);
    let sent: Vec<_> = stack
        .control()
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        sent,
        vec![("GET".to_string(), "/_snapshot/ossnap".to_string())]
    );

    let moved = register::run(
        &deps,
        invocation(
            RegisterInput {
                base_path: Some("elsewhere".into()),
                ..Default::default()
            },
            None,
        ),
    )
    .await
    .unwrap();
    assert_eq!(moved.status, RegistrationStatus::Updated);
}

#[tokio::test]
async fn register_retries_verification_while_iam_propagates() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    let refusal = error_body(
        "repository_verification_exception",
        "[ossnap] path [clusters/local] is not accessible on master node",
        500,
    );
    let mut fault = Fault::new("POST", "/_snapshot/ossnap/_verify", 500, &refusal);
    fault.count = 2;
    stack.control().add_fault(fault);

    let output = register(&deps).await;
    assert_eq!(output.status, RegistrationStatus::Created);
    assert_eq!(stack.requests("POST", "/_snapshot/ossnap/_verify").len(), 3);

    let mut lasting = Fault::new("POST", "/_snapshot/ossnap/_verify", 500, &refusal);
    lasting.count = 100;
    stack.control().add_fault(lasting);
    let error = register::run(
        &deps,
        invocation(
            RegisterInput {
                base_path: Some("other".into()),
                ..Default::default()
            },
            None,
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RepositoryVerificationFailed);
    assert!(error.message().contains("trust policy"), "{error}");
}

#[tokio::test]
async fn register_names_the_role_to_map_when_fgac_refuses() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    ossnap_tests::stack::unmap_the_caller(&deps).await;

    let error = register::run(&deps, invocation(RegisterInput::default(), None))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthError);
    assert!(
        error.message().contains(
            "map arn:aws:iam::123456789012:role/ossnap-local as a backend role of manage_snapshots"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn register_names_the_role_and_action_when_pass_role_is_missing() {
    let stack = TestStack::start_with(|config| {
        config.passable_roles = Some(vec!["arn:aws:iam::123456789012:role/some-other-role".into()]);
    })
    .await;
    let error = register::run(&stack.deps(&[]), invocation(RegisterInput::default(), None))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthError);
    assert!(
        error
            .message()
            .contains(&format!("iam:PassRole on {SNAPSHOT_ROLE}")),
        "{error}"
    );
}

#[tokio::test]
async fn a_snapshot_runs_to_success_and_is_never_asked_status_once_finished() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs-2026.11", 20).await;
    register(&deps).await;

    let started = start_snapshot(&deps).await.unwrap();
    assert_eq!(started.snapshot, SCHEDULED_NAME);
    assert_eq!(started.state, "IN_PROGRESS");
    assert_eq!(started.wait_seconds, 30);

    let report = until_done(&deps, SCHEDULED_NAME).await;
    assert_eq!(report.state, "SUCCESS");
    assert!(report.healthy);
    assert!(
        report.shards.total >= 2 && report.shards.failed == 0,
        "{:?}",
        report.shards
    );
    assert_eq!(report.wait_seconds, 0);

    let info = deps
        .opensearch
        .get_snapshot("ossnap", SCHEDULED_NAME)
        .await
        .unwrap();
    let metadata = info.metadata.unwrap();
    assert_eq!(metadata["taken_by"], "ossnap");
    assert_eq!(metadata["scheduled_time"], "2026-11-28T02:00:00Z");
    assert_eq!(metadata["run_id"], "run-1");
    assert!(!info.indices.contains(&".opendistro_security".to_string()));
    let create = stack.requests("PUT", &format!("/_snapshot/ossnap/{SCHEDULED_NAME}"));
    assert_eq!(create.len(), 1);
    assert!(
        create[0].contains("wait_for_completion=false"),
        "{create:?}"
    );

    // A finished snapshot: one GET, no _status.
    stack.control().clear_requests();
    check(&deps, SCHEDULED_NAME).await.unwrap();
    assert!(stack
        .requests("GET", "/_snapshot/ossnap/")
        .iter()
        .all(|r| !r.contains("_status")));
}

#[tokio::test]
async fn an_aws_automated_snapshot_makes_it_wait_without_sending_a_create() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 1).await;
    register(&deps).await;
    stack
        .control()
        .start_automated_snapshot(Duration::from_secs(30));

    let error = start_snapshot(&deps).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::SnapshotInProgress);
    assert!(error.message().contains("cs-automated"), "{error}");
    assert!(stack.requests("PUT", "/_snapshot/ossnap/").is_empty());

    let cluster = status::run(&deps, invocation(StatusInput::default(), None))
        .await
        .unwrap();
    let StatusOutput::Cluster(cluster) = cluster else {
        panic!("a cluster report")
    };
    assert_eq!(cluster.running.len(), 1);
    assert_eq!(cluster.running[0].repository, "cs-automated");
}

#[tokio::test]
async fn the_same_scheduled_time_twice_makes_one_snapshot() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 3).await;
    register(&deps).await;

    let first = start_snapshot(&deps).await.unwrap();
    let second = start_snapshot(&deps).await.unwrap();
    assert_eq!(first.snapshot, second.snapshot);
    until_done(&deps, SCHEDULED_NAME).await;
    let third = start_snapshot(&deps).await.unwrap();
    assert_eq!(third.snapshot, SCHEDULED_NAME);
    assert_eq!(third.state, "SUCCESS");

    let puts = stack.requests("PUT", &format!("/_snapshot/ossnap/{SCHEDULED_NAME}"));
    // The third run sent a PUT that met "already exists" and resumed; never a second snapshot.
    assert!(puts.len() <= 2, "{puts:?}");
    let all = deps
        .opensearch
        .get_snapshots("ossnap", &["_all"], false)
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
}

#[tokio::test]
async fn a_gateway_timeout_after_the_create_is_reconciled_without_a_second_put() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 3).await;
    register(&deps).await;
    let page = "<html><head><title>504 Gateway Time-out</title></head><body>504</body></html>";
    let mut fault = Fault::new(
        "PUT",
        &format!("/_snapshot/ossnap/{SCHEDULED_NAME}"),
        504,
        page,
    );
    fault.after_accept = true;
    stack.control().add_fault(fault);

    let output = start_snapshot(&deps).await.unwrap();
    assert_eq!(output.snapshot, SCHEDULED_NAME);
    assert_eq!(
        stack
            .requests("PUT", &format!("/_snapshot/ossnap/{SCHEDULED_NAME}"))
            .len(),
        1
    );
    assert_eq!(until_done(&deps, SCHEDULED_NAME).await.state, "SUCCESS");
}

#[tokio::test]
async fn a_gateway_timeout_before_the_create_is_safe_to_retry() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 3).await;
    register(&deps).await;
    let fault = Fault::new(
        "PUT",
        &format!("/_snapshot/ossnap/{SCHEDULED_NAME}"),
        504,
        "<html>504</html>",
    );
    stack.control().add_fault(fault);

    let error = start_snapshot(&deps).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.message().contains("retrying is safe"), "{error}");
    // Step Functions retries: this time it starts.
    let output = start_snapshot(&deps).await.unwrap();
    assert_eq!(output.state, "IN_PROGRESS");
}

#[tokio::test]
async fn a_concurrent_snapshot_is_in_progress_on_opensearch_2_and_3() {
    for profile in [Profile::V2, Profile::V3] {
        let stack = TestStack::start_with(|config| {
            config.profile = profile;
            config.snapshot_duration = Duration::from_secs(30);
        })
        .await;
        let deps = stack.deps(&[]);
        stack.seed_index(&deps, "logs", 1).await;
        register(&deps).await;
        deps.opensearch
            .create_snapshot("ossnap", "someone-elses", &json!({"indices": "logs"}))
            .await
            .unwrap();
        // Hide the running snapshot from the pre-check, so the create itself collides.
        stack.control().add_fault(Fault::new(
            "GET",
            "/_snapshot/_status",
            200,
            r#"{"snapshots":[]}"#,
        ));

        let error = start_snapshot(&deps).await.unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::SnapshotInProgress,
            "{profile:?}: {error}"
        );
        let status = stack
            .control()
            .requests()
            .into_iter()
            .find(|r| r.method == "PUT" && r.path.ends_with(SCHEDULED_NAME))
            .unwrap()
            .status;
        assert_eq!(status, if profile == Profile::V2 { 503 } else { 409 });
    }
}

#[tokio::test]
async fn a_foreign_snapshot_with_our_name_is_a_conflict_and_left_alone() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 1).await;
    register(&deps).await;
    deps.opensearch
        .create_snapshot(
            "ossnap",
            SCHEDULED_NAME,
            &json!({"indices": "logs", "metadata": {"taken_by": "curator"}}),
        )
        .await
        .unwrap();
    until_done(&deps, SCHEDULED_NAME).await;

    let error = start_snapshot(&deps).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::SnapshotNameConflict);
    assert!(error.message().contains("curator"), "{error}");
    let kept = deps
        .opensearch
        .get_snapshot("ossnap", SCHEDULED_NAME)
        .await
        .unwrap();
    assert_eq!(kept.metadata.unwrap()["taken_by"], "curator");
}

#[tokio::test]
async fn failed_and_empty_snapshots_are_done_but_not_healthy() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 2).await;
    register(&deps).await;

    stack
        .control()
        .set_next_snapshot_outcome(SnapshotOutcome::Failed {
            reason: "Indices don't have primary shards [logs]".into(),
        });
    let failed = start_snapshot(&deps).await.unwrap();
    let report = until_done(&deps, &failed.snapshot).await;
    assert_eq!(report.state, "FAILED");
    assert!(!report.healthy);
    assert!(report.reason.unwrap().contains("primary shards"));

    let empty = snapshot::run(
        &deps,
        invocation(
            SnapshotInput {
                snapshot: Some("empty-one".into()),
                indices: Some("nomatch-*".into()),
                ..Default::default()
            },
            None,
        ),
        "run-2",
    )
    .await
    .unwrap();
    let report = until_done(&deps, &empty.snapshot).await;
    assert_eq!(report.state, "SUCCESS");
    assert_eq!(report.shards.total, 0);
    assert!(!report.healthy);
    assert!(report.reason.unwrap().contains("no index matched"));
}

#[tokio::test]
async fn a_red_index_fails_the_snapshot() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 2).await;
    register(&deps).await;
    stack.control().make_index_red("logs");

    let started = start_snapshot(&deps).await.unwrap();
    let report = until_done(&deps, &started.snapshot).await;
    assert_eq!(report.state, "FAILED");
    assert!(!report.healthy);
}

#[tokio::test]
async fn status_of_a_missing_snapshot_is_snapshot_missing() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    register(&deps).await;
    let error = check(&deps, "never-taken").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::SnapshotMissing);
    let error = start_snapshot(&stack.deps(&[("SNAPSHOT_REPOSITORY", "not-registered")]))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RepositoryMissing);
}

/// A snapshot started by hand (no scheduled time) under a fixed name, as the console sends it.
async fn start_by_hand(
    deps: &Deps,
    name: &str,
    request_id: &str,
) -> ossnap_core::Result<SnapshotOutput> {
    let input = SnapshotInput {
        snapshot: Some(name.into()),
        ..Default::default()
    };
    snapshot::run(deps, invocation(input, None), request_id).await
}

#[tokio::test]
async fn a_run_by_hand_resumes_only_its_own_snapshot() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 2).await;
    register(&deps).await;

    let first = start_by_hand(&deps, "by-hand", "request-1").await.unwrap();
    until_done(&deps, &first.snapshot).await;
    // The same invocation again (a retry) resumes it.
    let retried = start_by_hand(&deps, "by-hand", "request-1").await.unwrap();
    assert_eq!(retried.state, "SUCCESS");
    // Another run by hand, with no scheduled time either, must not report it as its own.
    let error = start_by_hand(&deps, "by-hand", "request-2")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::SnapshotNameConflict, "{error}");
}

#[tokio::test]
async fn a_lost_create_that_cannot_be_read_back_is_not_called_not_started() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 3).await;
    register(&deps).await;
    let path = format!("/_snapshot/ossnap/{SCHEDULED_NAME}");
    let control = stack.control();
    control.add_fault(Fault {
        after_accept: true,
        ..Fault::new("PUT", &path, 504, "<html>504 Gateway Time-out</html>")
    });
    control.add_fault(Fault {
        count: 3,
        ..Fault::new("GET", &path, 503, "<html>503 Service Unavailable</html>")
    });
    control.clear_requests();

    let error = start_snapshot(&deps).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.message().contains("unknown"), "{error}");
    assert!(!error.message().contains("not started"), "{error}");
    // The longest path of the function is the one its time budget counts.
    assert_eq!(
        control.requests().len() as u32,
        ossnap_core::budget::SNAPSHOT.requests
    );

    // Step Functions retries the task: the same scheduled time resumes the same snapshot.
    let output = start_snapshot(&deps).await.unwrap();
    assert_eq!(output.snapshot, SCHEDULED_NAME);
    assert_eq!(stack.requests("PUT", &path).len(), 1);
    assert_eq!(until_done(&deps, SCHEDULED_NAME).await.state, "SUCCESS");
    let all = deps
        .opensearch
        .get_snapshots("ossnap", &["_all"], false)
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
}

#[tokio::test]
async fn on_elasticsearch_6_8_which_drops_metadata_the_same_schedule_resumes() {
    let stack = TestStack::start_with(|c| c.profile = Profile::Es68).await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 2).await;
    register(&deps).await;

    let first = start_snapshot(&deps).await.unwrap();
    assert_eq!(until_done(&deps, &first.snapshot).await.state, "SUCCESS");
    let info = deps
        .opensearch
        .get_snapshot("ossnap", SCHEDULED_NAME)
        .await
        .unwrap();
    assert_eq!(info.metadata, None, "ES 6.8 keeps no metadata");
    let again = start_snapshot(&deps).await.unwrap();
    assert_eq!(again.snapshot, SCHEDULED_NAME);
    assert_eq!(again.state, "SUCCESS");
}
