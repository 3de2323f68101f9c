//! The migrate workflow (`infra/statemachine/migrate.asl.json`, the file that deploys) run by
//! aws-local-stepfunctions with the function binaries, against the emulator, the local S3 and
//! Azurite: a snapshot taken by the snapshot workflow, then copied to Azure through the
//! Distributed Map (whose ItemReader the runner turns into a read of the plan from the local S3
//! and an inline Map, see `workflow/run.mjs`) and verified there.
//! Needs `make workflow-tools azure-tools` and `cargo build --workspace --bins`.

use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use ossnap_tests::stack::BASE_PATH;
use ossnap_tests::workflow::{EventKind, Execution, Status, Workflow, MIGRATE_STATE_MACHINE};
use ossnap_tests::TestStack;
use serde_json::{json, Value};

/// Two indices of two shards each: four shard folders.
const INDICES: [&str; 2] = ["logs-2026.11", "metrics-2026.11"];
const SHARD_FOLDERS: usize = 4;
/// What each Wait and Retry pause really lasts: the emulator's snapshots take 200 ms.
const PAUSE: Duration = Duration::from_millis(100);

/// A stack with Azurite, two indices, and a snapshot of them in the local S3, taken by the
/// snapshot workflow; the workflow then runs the migrate state machine. Each batch of the plan is
/// one shard folder, so that the Distributed Map has several items.
async fn a_snapshot_to_migrate() -> (TestStack, Workflow) {
    let stack = TestStack::start_with(|config| config.azure = true).await;
    let deps = stack.deps(&[]);
    for index in INDICES {
        stack.seed_index(&deps, index, 10).await;
    }
    let mut workflow = Workflow::start(&stack, &[("PLAN_BATCH_FOLDERS", "1")], None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let snapshot = run(
        &mut workflow,
        json!({"scheduled_time": "2026-11-28T02:00:00Z"}),
    )
    .await;
    assert_eq!(snapshot.status, Status::Succeeded);
    workflow.use_state_machine(MIGRATE_STATE_MACHINE);
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

/// The successful outputs of copy's invocations in `mode`, in order.
fn copy_outputs<'e>(execution: &'e Execution, mode: &str) -> Vec<&'e Value> {
    execution
        .invocations
        .iter()
        .filter(|invocation| invocation.function == "copy")
        .filter_map(|invocation| invocation.outcome.as_ref().ok())
        .filter(|output| output["mode"] == mode)
        .collect()
}

fn iterations_of(execution: &Execution, map: &str) -> usize {
    execution
        .events
        .iter()
        .filter(|event| {
            matches!(&event.kind, EventKind::MapIterationStarted { state, .. } if state == map)
        })
        .count()
}

/// The blobs of the Azure container under the repository's base path, by name, with sizes.
async fn azure_blobs(stack: &TestStack) -> Vec<(String, u64)> {
    let store = stack
        .local
        .azure()
        .expect("the stack runs Azurite")
        .object_store()
        .unwrap();
    let mut blobs: Vec<(String, u64)> = futures::TryStreamExt::try_collect::<Vec<_>>(
        store.list(Some(&ObjectPath::from(BASE_PATH))),
    )
    .await
    .unwrap()
    .into_iter()
    .map(|meta| (meta.location.to_string(), meta.size))
    .collect();
    blobs.sort();
    blobs
}

#[tokio::test]
async fn the_migrate_workflow_copies_the_repository_to_azure_and_verifies_it_there() {
    let (stack, mut workflow) = a_snapshot_to_migrate().await;

    let execution = run(&mut workflow, json!({})).await;

    assert_eq!(
        execution.status,
        Status::Succeeded,
        "{:?}",
        execution.status
    );
    let plan = copy_outputs(&execution, "plan");
    assert_eq!(plan.len(), 1);
    let generation = plan[0]["generation"]
        .as_u64()
        .expect("the plan's generation");
    assert_eq!(plan[0]["batches"], SHARD_FOLDERS);
    // One item of the Distributed Map, and one batch invocation, per batch of the plan.
    assert_eq!(iterations_of(&execution, "CopyBatches"), SHARD_FOLDERS);
    assert_eq!(copy_outputs(&execution, "batch").len(), SHARD_FOLDERS);
    let path = execution.path();
    let first = |state: &str| path.iter().position(|s| *s == state).unwrap();
    assert!(first("Plan") < first("CopyBatches"));
    assert!(first("CopyBatches") < first("CopyBatch"));
    assert!(first("CopyBatch") < first("Finalize"));
    assert!(first("Finalize") < first("VerifyOnAzure"));
    assert_eq!(path.last(), Some(&"Done"));

    // The copy in Azure: the generation's index-N and index.latest, nothing newer; and verify
    // read it there (azure), every snapshot of the generation verified.
    let blobs = azure_blobs(&stack).await;
    let names: Vec<&str> = blobs.iter().map(|(name, _)| name.as_str()).collect();
    assert!(
        names.contains(&format!("{BASE_PATH}/index-{generation}").as_str()),
        "{names:?}"
    );
    assert!(
        names.contains(&format!("{BASE_PATH}/index.latest").as_str()),
        "{names:?}"
    );
    let verified = execution
        .invocations
        .iter()
        .filter(|invocation| invocation.function == "verify")
        .filter_map(|invocation| invocation.outcome.as_ref().ok())
        .filter(|output| {
            output["location"]
                .as_str()
                .is_some_and(|l| l.starts_with("azure://"))
        })
        .collect::<Vec<_>>();
    assert!(!verified.is_empty(), "verify never read Azure");
    assert!(
        verified.iter().all(|output| output["verified"] == true),
        "{verified:?}"
    );
    let Some(EventKind::ExecutionSucceeded { output }) = execution.events.last().map(|e| &e.kind)
    else {
        panic!("no ExecutionSucceeded");
    };
    let snapshots = output["verify"]["snapshots"]
        .as_array()
        .expect("verify's results");
    assert_eq!(
        snapshots.len(),
        plan[0]["snapshots"].as_array().map_or(0, Vec::len)
    );
    assert!(
        snapshots.iter().all(|s| s["verified"] == true),
        "{snapshots:?}"
    );

    // Run again: everything is there already, nothing is copied.
    let again = run(&mut workflow, json!({})).await;
    assert_eq!(again.status, Status::Succeeded, "{:?}", again.status);
    for output in copy_outputs(&again, "batch")
        .into_iter()
        .chain(copy_outputs(&again, "finalize"))
    {
        assert_eq!(output["bytes_copied"], 0, "{output}");
    }
    assert_eq!(azure_blobs(&stack).await, blobs);
}

#[tokio::test]
async fn a_failing_batch_is_notified_then_the_run_fails_before_finalize() {
    let (stack, mut workflow) = a_snapshot_to_migrate().await;
    // A blob a batch must copy is in Azure already with another length: a CopyConflict, which
    // is never overwritten and never retried.
    let s3 = stack.local.s3_client();
    let listing = s3
        .list_objects_v2()
        .bucket(&stack.local.config().bucket)
        .prefix(format!("{BASE_PATH}/indices/"))
        .send()
        .await
        .unwrap();
    let shard_snapshot = listing
        .contents()
        .iter()
        .filter_map(|object| object.key())
        .find(|key| key.contains("/snap-"))
        .expect("a shard's snap-*.dat")
        .to_string();
    let store = stack.local.azure().unwrap().object_store().unwrap();
    store
        .put(
            &ObjectPath::from(shard_snapshot.as_str()),
            b"not the same blob".to_vec().into(),
        )
        .await
        .unwrap();

    let execution = run(&mut workflow, json!({})).await;

    assert!(
        matches!(&execution.status, Status::Failed { error, .. } if error == "MigrateRunFailed"),
        "{:?}",
        execution.status
    );
    let message = &execution.notifications[0].message;
    assert_eq!(message["error"]["Error"], "CopyConflict", "{message}");
    let conflicts = execution
        .invocations
        .iter()
        .filter(|invocation| {
            invocation
                .outcome
                .as_ref()
                .is_err_and(|error| error.error_type == "CopyConflict")
        })
        .count();
    assert_eq!(conflicts, 1, "a CopyConflict is never retried");
    assert!(!execution.path().contains(&"Finalize"));
    let names: Vec<String> = azure_blobs(&stack)
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        !names.iter().any(|name| name.ends_with("/index.latest")
            || name.contains("/index-") && !name.contains("/indices/")),
        "a root index blob was written over a partial copy: {names:?}"
    );
}
