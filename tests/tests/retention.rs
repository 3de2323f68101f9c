//! retention against the local stack: what it deletes, what it keeps, what it never touches,
//! and how many requests it sends.

use std::time::Duration;

use ossnap_core::event::Invocation;
use ossnap_core::retention::{self, Policy, RetentionInput, RetentionOutput};
use ossnap_core::snapshot::{self, SnapshotInput};
use ossnap_core::Deps;
use ossnap_tests::stack::wait_until_idle;
use ossnap_tests::TestStack;
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

async fn apply(deps: &Deps, policy: &Policy, dry_run: Option<bool>) -> RetentionOutput {
    let invocation = Invocation {
        input: RetentionInput {
            repository: None,
            dry_run,
        },
        scheduled_time: None,
    };
    retention::run(deps, policy, invocation).await.unwrap()
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

    let output = apply(&deps, &policy(2, Some(2)), None).await;
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
    let output = apply(&deps, &policy(1, Some(1)), Some(true)).await;
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
