//! The state machine as it deploys, run by aws-local-stepfunctions with its Task states invoking
//! the function binaries as Lambda does, against the local stack: one test per way a run goes.
//! Needs `make workflow-tools` (`make test` runs it).

use std::time::Duration;

use ossnap_local_stack::{Fault, SnapshotOutcome};
use ossnap_tests::workflow::{
    Event, EventKind, Execution, InvokeAction, Invoking, NotificationSource, Status, Workflow,
};
use ossnap_tests::TestStack;
use serde_json::{json, Value};

const SCHEDULED: &str = "2026-11-28T02:00:00Z";
const SCHEDULED_NAME: &str = "ossnap-20261128-020000";
/// What each Wait and Retry pause really lasts: the emulator's snapshots take 200 ms.
const PAUSE: Duration = Duration::from_millis(40);

const HAPPY_PATH: [&str; 16] = [
    "CollectInput",
    "NormaliseInput",
    "FindRunningExecutions",
    "IsAnotherRunGoing",
    "Register",
    "Snapshot",
    "WaitForSnapshot",
    "CheckStatus",
    "IsSnapshotDone",
    "StartVerify",
    "Verify",
    "IsVerifyComplete",
    // The restore drill is off by default: restore answers skipped.
    "StartRestoreDrill",
    "IsDrillStarted",
    "Retention",
    "Done",
];

async fn seeded_stack() -> TestStack {
    let stack = TestStack::start().await;
    stack.seed_index(&stack.deps(&[]), "logs-2026.11", 10).await;
    stack
}

async fn workflow(stack: &TestStack) -> Workflow {
    Workflow::start(stack, &[], None)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn run(workflow: &mut Workflow, input: Value, pause: Duration) -> Execution {
    run_observed(workflow, input, pause, |_| {}).await
}

async fn run_observed(
    workflow: &mut Workflow,
    input: Value,
    pause: Duration,
    observe: impl FnMut(&Event),
) -> Execution {
    let execution = workflow
        .run(input, pause, observe)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{} after {:?} ({:.0?} real): {}\npath (polling loop folded): {}",
        execution.status.name(),
        execution.virtual_duration(),
        execution.real_duration,
        execution.cost_drivers(),
        folded_path(&execution).join(" → ")
    );
    execution
}

/// Whether the run ended in the Fail state, which every failure passes through after Notify.
fn ended_in_fail_state(execution: &Execution) -> bool {
    matches!(&execution.status, Status::Failed { error, .. } if error == "SnapshotRunFailed")
}

/// The one message the Notify state published, and the alarm's after it.
fn notified(execution: &Execution) -> &Value {
    let sources: Vec<_> = execution
        .notifications
        .iter()
        .map(|notification| &notification.source)
        .collect();
    assert_eq!(
        sources,
        [
            &NotificationSource::NotifyState,
            &NotificationSource::FailedRunsAlarm
        ]
    );
    &execution.notifications[0].message
}

/// The status of each request to create the scheduled snapshot, as the emulator answered it.
fn snapshot_requests(stack: &TestStack) -> Vec<u16> {
    let path = format!("/_snapshot/ossnap/{SCHEDULED_NAME}");
    stack
        .control()
        .requests()
        .into_iter()
        .filter(|request| request.method == "PUT" && request.path == path)
        .map(|request| request.status)
        .collect()
}

/// The path with the polling loop folded: each of its states appears once, where first entered.
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
    let mut workflow = workflow(&stack).await;

    // As on AWS when the snapshot takes less than the first wait: the first poll finds it done
    // (the emulator's snapshot takes 200 ms; the margin is for a loaded machine).
    let execution = run(
        &mut workflow,
        json!({"scheduled_time": SCHEDULED}),
        Duration::from_secs(1),
    )
    .await;

    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(execution.path(), HAPPY_PATH);
    let verified = execution.output_of("verify").expect("verify answered");
    assert_eq!(verified["verified"], true);
    let retention = execution
        .output_of("retention")
        .expect("retention answered");
    assert_eq!(retention["kept"][0]["snapshot"], SCHEDULED_NAME);
    assert!(execution.notifications.is_empty());
    // The restore drill, off by default, costs two transitions and one short invocation
    // (restore answers skipped).
    assert_eq!(
        (
            execution.transitions(),
            execution.invocations.len(),
            execution.polls()
        ),
        (16, 6, 1)
    );
    // The one 30 s wait, and the run's real seconds.
    let took = execution.virtual_duration().as_secs_f64();
    assert!((30.0..40.0).contains(&took), "{took} s");
}

#[tokio::test]
async fn a_running_automated_snapshot_is_waited_out_then_the_run_succeeds() {
    let stack = seeded_stack().await;
    let mut workflow = workflow(&stack).await;
    // Started with the execution: still running when Snapshot first asks (Register takes about
    // a tenth of its time), over well within the 1.8 s of Snapshot's six retries.
    let execution = run_observed(
        &mut workflow,
        json!({"scheduled_time": SCHEDULED}),
        Duration::from_millis(300),
        |event| {
            if let EventKind::ExecutionStarted { .. } = event.kind {
                stack
                    .control()
                    .start_automated_snapshot(Duration::from_millis(1200));
            }
        },
    )
    .await;

    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(folded_path(&execution), HAPPY_PATH);
    let retries = execution.retries_of("Snapshot");
    assert!(!retries.is_empty(), "Snapshot was not retried");
    assert!(retries.iter().all(|error| *error == "SnapshotInProgress"));
    assert_eq!(execution.invocations_of("snapshot"), retries.len() + 1);
    assert_eq!(snapshot_requests(&stack), [200]);
}

#[tokio::test]
async fn a_failed_snapshot_is_notified_then_the_run_fails() {
    let stack = seeded_stack().await;
    let mut workflow = workflow(&stack).await;
    stack
        .control()
        .set_next_snapshot_outcome(SnapshotOutcome::Failed {
            reason: "disk full on node-1".into(),
        });

    let execution = run(&mut workflow, json!({"scheduled_time": SCHEDULED}), PAUSE).await;

    assert!(ended_in_fail_state(&execution), "{:?}", execution.status);
    let path = folded_path(&execution);
    assert_eq!(
        path[path.len() - 3..],
        ["IsSnapshotDone", "Notify", "Failed"]
    );
    assert_eq!(execution.invocations_of("verify"), 0);
    let message = notified(&execution);
    assert_eq!(message["status"]["snapshot"], SCHEDULED_NAME);
    assert_eq!(message["status"]["state"], "FAILED");
    assert_eq!(message["status"]["reason"], "disk full on node-1");
}

#[tokio::test]
async fn a_504_on_create_is_reconciled_without_a_second_snapshot() {
    let stack = seeded_stack().await;
    let mut workflow = workflow(&stack).await;
    let mut gateway_timeout = Fault::new(
        "PUT",
        &format!("/_snapshot/ossnap/{SCHEDULED_NAME}"),
        504,
        "<html><head><title>504 Gateway Time-out</title></head><body>504</body></html>",
    );
    gateway_timeout.after_accept = true;
    stack.control().add_fault(gateway_timeout);

    let execution = run(&mut workflow, json!({"scheduled_time": SCHEDULED}), PAUSE).await;

    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(folded_path(&execution), HAPPY_PATH);
    assert_eq!(execution.invocations_of("snapshot"), 1);
    assert_eq!(snapshot_requests(&stack), [504]);
}

#[tokio::test]
async fn the_same_scheduled_time_delivered_twice_takes_one_snapshot() {
    let stack = seeded_stack().await;
    let mut workflow = workflow(&stack).await;
    let input = json!({"scheduled_time": SCHEDULED});

    let first = run(&mut workflow, input.clone(), PAUSE).await;
    let second = run(&mut workflow, input, PAUSE).await;

    for execution in [&first, &second] {
        assert_eq!(execution.status, Status::Succeeded);
        assert_eq!(folded_path(execution), HAPPY_PATH);
        assert_eq!(
            execution.output_of("snapshot").expect("snapshot answered")["snapshot"],
            SCHEDULED_NAME
        );
    }
    // The second delivery's PUT is refused as a name conflict, and the run resumes the first.
    assert_eq!(snapshot_requests(&stack), [200, 400]);
    let kept = &second.output_of("retention").expect("retention answered")["kept"];
    assert_eq!(kept.as_array().map(Vec::len), Some(1), "{kept}");
}

#[tokio::test]
async fn an_auth_error_is_not_retried() {
    let stack = seeded_stack().await;
    let mut workflow = workflow(&stack).await;
    stack
        .deps(&[])
        .opensearch
        .call(
            http::Method::PUT,
            "/_plugins/_security/api/rolesmapping/manage_snapshots",
            &[],
            Some(&json!({"backend_roles": []})),
        )
        .await
        .expect("the role mapping is replaced");

    let execution = run(&mut workflow, json!({"scheduled_time": SCHEDULED}), PAUSE).await;

    assert!(ended_in_fail_state(&execution), "{:?}", execution.status);
    assert_eq!(
        execution.path(),
        [
            "CollectInput",
            "NormaliseInput",
            "FindRunningExecutions",
            "IsAnotherRunGoing",
            "Register",
            "Notify",
            "Failed"
        ]
    );
    assert_eq!(execution.invocations_of("register"), 1);
    assert!(execution.retries_of("Register").is_empty());
    assert_eq!(notified(&execution)["error"]["Error"], "AuthError");
}

#[tokio::test]
async fn a_snapshot_that_never_finishes_times_the_execution_out_and_the_alarm_notifies() {
    let stack = seeded_stack().await;
    let mut workflow = workflow(&stack).await;
    stack
        .control()
        .set_next_snapshot_outcome(SnapshotOutcome::NeverFinishes);

    // The emulator's clock is real time, so check-status sees a snapshot only just started and
    // asks for its shortest wait (30 s) every time: 720 polls fill the six hours. Each pause
    // lasts a millisecond.
    let execution = run(
        &mut workflow,
        json!({"scheduled_time": SCHEDULED}),
        Duration::from_millis(1),
    )
    .await;

    assert_eq!(execution.status, Status::TimedOut);
    assert_eq!(execution.virtual_duration(), Duration::from_secs(6 * 3600));
    let path = execution.path();
    assert!(!path.contains(&"Notify") && !path.contains(&"Verify"));
    assert_eq!(path.last(), Some(&"WaitForSnapshot"));
    let sources: Vec<_> = execution
        .notifications
        .iter()
        .map(|notification| &notification.source)
        .collect();
    assert_eq!(sources, [&NotificationSource::FailedRunsAlarm]);
    assert_eq!(
        execution.notifications[0].message["Metric"],
        "ExecutionsTimedOut"
    );
}

#[tokio::test]
async fn a_run_that_starts_while_another_runs_skips_without_notifying() {
    // Without reserved concurrency, the workflow itself keeps two snapshots or two retentions
    // from running at once: a run that finds another one going does nothing and succeeds.
    let stack = seeded_stack().await;
    let mut workflow = workflow(&stack).await;
    workflow.set_other_running_executions(&[
        "arn:aws:states:local:123456789012:execution:ossnap-local:the-scheduled-run",
    ]);

    let execution = run(&mut workflow, json!({"scheduled_time": SCHEDULED}), PAUSE).await;

    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(
        execution.path(),
        [
            "CollectInput",
            "NormaliseInput",
            "FindRunningExecutions",
            "IsAnotherRunGoing",
            "SkipOverlappingRun"
        ]
    );
    assert!(execution.invocations.is_empty());
    assert!(execution.notifications.is_empty());
    assert!(snapshot_requests(&stack).is_empty());

    // Once the other run is over, the next run goes through.
    workflow.set_other_running_executions(&[]);
    let next = run(&mut workflow, json!({"scheduled_time": SCHEDULED}), PAUSE).await;
    assert_eq!(next.status, Status::Succeeded);
    assert_eq!(folded_path(&next), HAPPY_PATH);
}

#[tokio::test]
async fn a_run_by_hand_is_named_from_its_start_time_and_a_retry_resumes_it() {
    let stack = seeded_stack().await;
    let mut workflow = workflow(&stack).await;
    // The PUT's answer is lost, and so are the read-backs: the Snapshot task fails Unavailable.
    let ours = "/_snapshot/ossnap/ossnap-*";
    stack.control().add_fault(Fault {
        after_accept: true,
        ..Fault::new("PUT", ours, 504, "<html>504 Gateway Time-out</html>")
    });
    stack.control().add_fault(Fault {
        count: 3,
        ..Fault::new("GET", ours, 503, "<html>503 Service Unavailable</html>")
    });

    let execution = run(&mut workflow, json!({}), PAUSE).await;

    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(execution.invocations_of("snapshot"), 2);
    let started_at = execution
        .events
        .iter()
        .find_map(|event| match &event.kind {
            EventKind::StateEntered { state, input, .. } if state == "Register" => {
                input["run"]["scheduled_time"].as_str().map(str::to_string)
            }
            _ => None,
        })
        .expect("the run carries the execution's start time");
    let started_at =
        time::OffsetDateTime::parse(&started_at, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let name = ossnap_core::snapshot::snapshot_name("ossnap", started_at);
    assert_eq!(
        execution.output_of("snapshot").expect("snapshot answered")["snapshot"],
        name.as_str()
    );
    // The retry's PUT, under the same name, met "already exists" and resumed: one snapshot.
    let path = format!("/_snapshot/ossnap/{name}");
    let puts: Vec<u16> = stack
        .control()
        .requests()
        .into_iter()
        .filter(|request| request.method == "PUT" && request.path == path)
        .map(|request| request.status)
        .collect();
    assert_eq!(puts, [504, 400]);
    let all = stack
        .deps(&[])
        .opensearch
        .get_snapshots("ossnap", &["_all"], false)
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
}

#[tokio::test]
async fn a_snapshot_function_killed_after_its_create_is_retried_as_lambda_unknown_and_resumes() {
    let stack = seeded_stack().await;
    let mut workflow = workflow(&stack).await;
    // The create is performed, its answer comes 2 s late, and the function dies waiting for it.
    stack.control().add_fault(Fault {
        after_accept: true,
        ..Fault::slow_answer(
            "PUT",
            &format!("/_snapshot/ossnap/{SCHEDULED_NAME}"),
            Duration::from_secs(2),
        )
    });
    let killed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    workflow.before_invoke(std::sync::Arc::new(move |invoking: Invoking| {
        let first = invoking.function == "snapshot"
            && !killed.swap(true, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            InvokeAction {
                kill_after: first.then_some(Duration::from_millis(300)),
            }
        })
    }));

    let execution = run(&mut workflow, json!({"scheduled_time": SCHEDULED}), PAUSE).await;

    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(folded_path(&execution), HAPPY_PATH);
    assert_eq!(execution.retries_of("Snapshot"), ["Lambda.Unknown"]);
    assert_eq!(execution.invocations_of("snapshot"), 2);
    let all = stack
        .deps(&[])
        .opensearch
        .get_snapshots("ossnap", &["_all"], false)
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].snapshot, SCHEDULED_NAME);
}
