//! The restore workflow (`infra/statemachine/restore.asl.json`) and the snapshot workflow's
//! restore drill, run by aws-local-stepfunctions with the function binaries, against the
//! emulator. Needs `make workflow-tools` and `cargo build --workspace --bins`.

use std::time::Duration;

use ossnap_local_stack::Fault;
use ossnap_tests::stack::error_body;
use ossnap_tests::stack::index_names;
use ossnap_tests::workflow::{Execution, Status, Workflow, RESTORE_STATE_MACHINE};
use ossnap_tests::TestStack;
use serde_json::{json, Value};

const INDEX: &str = "logs-2026.11";
const DRILL_COPY: &str = "ossnap-drill-logs-2026.11";
/// What each Wait and Retry pause really lasts: the emulator's snapshots and restores take 200 ms.
const PAUSE: Duration = Duration::from_millis(100);

/// A stack with an index and the workflows' functions.
async fn stack_and_workflow(extra_env: &[(&str, &str)]) -> (TestStack, Workflow) {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, INDEX, 12).await;
    let workflow = Workflow::start(&stack, extra_env, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (stack, workflow)
}

async fn run(workflow: &mut Workflow, input: Value) -> Execution {
    let execution = workflow
        .run(input, PAUSE, |_| {})
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{}: {}\n{}",
        execution.status.name(),
        execution.cost_drivers(),
        execution.path().join(" → ")
    );
    execution
}

async fn snapshot_run(workflow: &mut Workflow) -> Execution {
    run(workflow, json!({"scheduled_time": "2026-11-28T02:00:00Z"})).await
}

fn failed_with(execution: &Execution, error: &str) {
    assert!(
        matches!(&execution.status, Status::Failed { error: e, .. } if e == "RestoreRunFailed" || e == "SnapshotRunFailed"),
        "{:?}",
        execution.status
    );
    let message = &execution.notifications[0].message;
    assert_eq!(message["error"]["Error"], error, "{message}");
}

#[tokio::test]
async fn the_restore_workflow_brings_an_index_back() {
    let (stack, mut workflow) = stack_and_workflow(&[]).await;
    assert_eq!(snapshot_run(&mut workflow).await.status, Status::Succeeded);
    let deps = stack.deps(&[]);
    deps.opensearch.delete_index(INDEX).await.unwrap();

    workflow.use_state_machine(RESTORE_STATE_MACHINE);
    let execution = run(&mut workflow, json!({"indices": INDEX})).await;
    assert_eq!(execution.status, Status::Succeeded);
    let path = execution.path();
    assert_eq!(
        path[..8],
        [
            "CollectInput",
            "NormaliseInput",
            "FindRunningExecutions",
            "IsAnotherRunGoing",
            "Register",
            "Restore",
            "IsDryRun",
            "WaitForRestore"
        ]
    );
    assert_eq!(path.last(), Some(&"Done"));
    let restored = execution.output_of("restore").unwrap();
    assert_eq!(restored["snapshot"], "ossnap-20261128-020000");
    assert_eq!(restored["indices"], json!([INDEX]));
    let progress = execution.output_of("check-restore").unwrap();
    assert_eq!(progress["done"], true);
    assert_eq!(progress["healthy"], true);
    assert_eq!(deps.opensearch.count(INDEX).await.unwrap(), 12);
}

#[tokio::test]
async fn a_dry_run_plans_and_restores_nothing() {
    let (stack, mut workflow) = stack_and_workflow(&[]).await;
    snapshot_run(&mut workflow).await;
    let before = index_names(&stack.deps(&[])).await;
    workflow.use_state_machine(RESTORE_STATE_MACHINE);
    let execution = run(
        &mut workflow,
        json!({"rename_pattern": "(.+)", "rename_replacement": "copy-$1", "dry_run": true}),
    )
    .await;
    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(
        execution.path()[5..],
        ["Restore", "IsDryRun", "Done"],
        "{:?}",
        execution.path()
    );
    assert_eq!(
        execution.output_of("restore").unwrap()["indices"],
        json!(["copy-logs-2026.11"])
    );
    assert_eq!(index_names(&stack.deps(&[])).await, before);
    let restores: Vec<String> = stack
        .requests("POST", "/_snapshot/ossnap/")
        .into_iter()
        .filter(|r| r.contains("/_restore"))
        .collect();
    assert!(restores.is_empty(), "{restores:?}");
}

#[tokio::test]
async fn a_refused_restore_notifies_and_fails() {
    let (_stack, mut workflow) = stack_and_workflow(&[]).await;
    snapshot_run(&mut workflow).await;
    workflow.use_state_machine(RESTORE_STATE_MACHINE);
    // The index is still there, open.
    let execution = run(&mut workflow, json!({})).await;
    failed_with(&execution, "RestoreConflict");
    assert!(execution.path().ends_with(&["Restore", "Notify", "Failed"]));
    // Never retried: nobody changed anything.
    assert!(execution.retries_of("Restore").is_empty());
}

#[tokio::test]
async fn a_red_restore_notifies_with_the_shards_and_the_reason() {
    let (_stack, mut workflow) = stack_and_workflow(&[]).await;
    snapshot_run(&mut workflow).await;
    workflow.use_state_machine(RESTORE_STATE_MACHINE);
    let execution = run(
        &mut workflow,
        json!({"rename_pattern": "(.+)", "rename_replacement": "red-$1",
               "index_settings": {"index.routing.allocation.require._name": "elsewhere"}}),
    )
    .await;
    failed_with(&execution, "RestoreFailed");
    let cause = execution.notifications[0].message["error"]["Cause"]
        .as_str()
        .unwrap()
        .to_string();
    for needle in ["[red-logs-2026.11][0] primary", "elsewhere"] {
        assert!(cause.contains(needle), "{cause}");
    }
}

#[tokio::test]
async fn the_drill_restores_compares_and_leaves_nothing_behind() {
    let (stack, mut workflow) = stack_and_workflow(&[("RESTORE_DRILL", "true")]).await;
    stack.seed_index(&stack.deps(&[]), "orders", 3).await;
    let execution = snapshot_run(&mut workflow).await;
    assert_eq!(
        execution.status,
        Status::Succeeded,
        "{:?}",
        execution.path()
    );
    let path = execution.path();
    for state in [
        "StartRestoreDrill",
        "WaitForDrill",
        "CheckDrill",
        "IsDrillDone",
        "Retention",
    ] {
        assert!(path.contains(&state), "{path:?}");
    }
    let started = execution.output_of("restore").unwrap();
    assert_eq!(started["drill"]["source_index"], "orders", "{started}");
    let result = &execution.output_of("check-restore").unwrap()["drill"];
    assert_eq!(result["succeeded"], true, "{result}");
    assert_eq!(result["counts_compared"], true, "{result}");
    assert_eq!(result["drill_count"], 3, "{result}");
    assert_eq!(result["deleted"], true, "{result}");
    assert!(!index_names(&stack.deps(&[]))
        .await
        .iter()
        .any(|i| i.starts_with("ossnap-drill-")));
}

#[tokio::test]
async fn a_failed_drill_leaves_nothing_behind_and_skips_retention() {
    let (stack, mut workflow) = stack_and_workflow(&[("RESTORE_DRILL", "true")]).await;
    // The copy comes back red: the drill fails, check-restore deletes it.
    stack.control().make_index_red(DRILL_COPY);
    let execution = snapshot_run(&mut workflow).await;
    failed_with_drill(&execution);
    assert!(!execution.path().contains(&"Retention"));
    assert!(!index_names(&stack.deps(&[]))
        .await
        .iter()
        .any(|i| i.starts_with("ossnap-drill-")));
    stack.control().make_index_green(DRILL_COPY);

    // check-restore itself fails (refused): the workflow's cleanup deletes the copy.
    let recovery = format!("/{DRILL_COPY}/_recovery");
    stack.control().add_fault(Fault {
        count: 10,
        ..Fault::new(
            "GET",
            &recovery,
            403,
            &error_body(
                "security_exception",
                "no permissions for [indices:monitor/recovery]",
                403,
            ),
        )
    });
    let execution = run(
        &mut workflow,
        json!({"scheduled_time": "2026-11-29T02:00:00Z"}),
    )
    .await;
    failed_with(&execution, "AuthError");
    assert!(execution
        .path()
        .ends_with(&["CheckDrill", "CleanUpDrill", "Notify", "Failed"]));
    let cleanup = execution
        .invocations
        .iter()
        .rev()
        .find(|i| i.function == "check-restore")
        .unwrap();
    assert_eq!(
        cleanup.outcome.as_ref().unwrap()["deleted"],
        json!([DRILL_COPY])
    );
    assert!(!index_names(&stack.deps(&[]))
        .await
        .iter()
        .any(|i| i.starts_with("ossnap-drill-")));
}

fn failed_with_drill(execution: &Execution) {
    assert!(
        matches!(&execution.status, Status::Failed { error, .. } if error == "SnapshotRunFailed"),
        "{:?}",
        execution.status
    );
    let message = &execution.notifications[0].message;
    let result = &message["drill_check"]["drill"];
    assert_eq!(result["succeeded"], false, "{message}");
    assert_eq!(result["deleted"], true, "{message}");
    assert!(
        result["reason"].as_str().unwrap().contains("red"),
        "{message}"
    );
}
