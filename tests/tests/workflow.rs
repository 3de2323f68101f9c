//! The state machine as it deploys, run by aws-local-stepfunctions with its Task states invoking
//! the function binaries as Lambda does, against the local stack: one test per way a run goes.
//! Needs `make workflow-tools` (`make test` runs it).

use std::time::Duration;

use ossnap_tests::workflow::{Execution, NotificationSource, Status, Workflow};
use ossnap_tests::TestStack;
use serde_json::{json, Value};

const SCHEDULED: &str = "2026-11-28T02:00:00Z";
const SCHEDULED_NAME: &str = "ossnap-20261128-020000";
/// What each Wait and Retry pause really lasts: the emulator's snapshots take 200 ms.
const PAUSE: Duration = Duration::from_millis(40);

const HAPPY_PATH: [&str; 10] = [
    "CollectInput",
    "NormaliseInput",
    "Register",
    "Snapshot",
    "WaitForSnapshot",
    "CheckStatus",
    "IsSnapshotDone",
    "Verify",
    "Retention",
    "Done",
];

async fn seeded_stack() -> TestStack {
    let stack = TestStack::start().await;
    stack.seed_index(&stack.deps(&[]), "logs-2026.11", 10).await;
    stack
}

async fn workflow(stack: &TestStack) -> Workflow {
    Workflow::start(stack, &[]).await.unwrap_or_else(|e| panic!("{e}"))
}

async fn run(workflow: &Workflow, input: Value, pause: Duration) -> Execution {
    let execution = workflow
        .run(input, pause, |_| {})
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{} after {:?} ({:.0?} real): {}\npath: {}",
        execution.status.name(),
        execution.virtual_duration(),
        execution.real_duration,
        execution.cost_drivers(),
        execution.path().join(" → ")
    );
    execution
}

/// The path with the polling loop folded: consecutive repeats of Wait, CheckStatus, IsSnapshotDone
/// appear once.
fn folded_path(execution: &Execution) -> Vec<&str> {
    let path = execution.path();
    let mut folded: Vec<&str> = Vec::new();
    for state in path {
        let loop_state = ["WaitForSnapshot", "CheckStatus", "IsSnapshotDone"].contains(&state);
        if !(loop_state && folded.contains(&state)) {
            folded.push(state);
        }
    }
    folded
}

#[tokio::test]
async fn the_happy_path_snapshots_verifies_and_applies_retention() {
    let stack = seeded_stack().await;
    let workflow = workflow(&stack).await;

    let execution = run(&workflow, json!({"scheduled_time": SCHEDULED}), PAUSE).await;

    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(folded_path(&execution), HAPPY_PATH);
    let verified = execution.output_of("verify").expect("verify answered");
    assert_eq!(verified["verified"], true);
    let retention = execution.output_of("retention").expect("retention answered");
    assert_eq!(retention["kept"][0]["snapshot"], SCHEDULED_NAME);
    assert!(execution.notifications.is_empty());
    assert!(execution.polls() >= 1);
    assert_eq!(execution.invocations.len(), 4 + execution.polls());
    assert_eq!(
        execution.transitions(),
        HAPPY_PATH.len() + 3 * (execution.polls() - 1)
    );
}
