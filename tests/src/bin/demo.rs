//! `make demo`: the main job on the local stack. Starts the local S3 and OpenSearch emulator,
//! seeds a few indices and two earlier days' snapshots, then runs the state machine as it
//! deploys (aws-local-stepfunctions, its tasks invoking the function binaries as Lambda does)
//! once, telling each state as it is entered, and what the run did, where the snapshot lies and
//! what it cost.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ossnap_core::event::Invocation;
use ossnap_core::register::{self, RegisterInput};
use ossnap_core::snapshot::{self, SnapshotInput};
use ossnap_core::Deps;
use ossnap_tests::stack::BASE_PATH;
use ossnap_tests::workflow::{Event, EventKind, Execution, Status, Workflow};
use ossnap_tests::TestStack;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Long enough for a few polls to watch the snapshot progress.
const SNAPSHOT_DURATION: Duration = Duration::from_millis(1500);
/// What each Wait and Retry pause really lasts; the execution's clock counts the ASL's seconds.
const PAUSE: Duration = Duration::from_millis(400);
/// Indices the earlier runs saw, and today's, which only this run uploads.
const EARLIER_INDICES: [(&str, usize); 2] = [("logs-2026.11.27", 40), ("orders", 10)];
const TODAYS_INDEX: (&str, usize) = ("logs-2026.11.28", 25);
/// Retention keeps this run's snapshot and yesterday's, and deletes the one before.
const RETENTION: [(&str, &str); 1] = [("RETENTION_MAX_COUNT", "2")];

#[tokio::main]
async fn main() -> ExitCode {
    let started = Instant::now();
    match demo().await {
        Ok(execution) => {
            println!(
                "\ntotal time {:.1} s (the run itself {:.1} s here, {} on the execution's clock)",
                started.elapsed().as_secs_f64(),
                execution.real_duration.as_secs_f64(),
                clock(execution.virtual_duration().as_secs_f64())
            );
            if execution.status == Status::Succeeded {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("\nthe demo could not run: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn demo() -> Result<Execution, Box<dyn std::error::Error>> {
    let stack = TestStack::start_with(|config| config.snapshot_duration = SNAPSHOT_DURATION).await;
    let bucket = stack.local.config().bucket.clone();
    println!(
        "local stack   OpenSearch {}   S3 {} (bucket {bucket})",
        stack.local.opensearch_endpoint(),
        stack.local.s3_endpoint()
    );
    let deps = stack.deps(&[]);
    seed(&stack, &deps, &EARLIER_INDICES).await;
    let now = OffsetDateTime::now_utc().replace_nanosecond(0)?;
    let earlier = take_earlier_snapshots(&deps, now).await?;
    println!(
        "earlier runs  {} (taken directly, as the two previous days' runs would have)",
        earlier.join(", ")
    );
    seed(&stack, &deps, &[TODAYS_INDEX]).await;
    let policy: Vec<String> = RETENTION.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("retention     {}", policy.join(" "));

    let logs = std::env::temp_dir().join("ossnap-demo-logs");
    std::fs::create_dir_all(&logs)?;
    let mut workflow = Workflow::start(&stack, &RETENTION, Some(&logs)).await?;
    println!("function logs {}/<function>.log", logs.display());
    let input = json!({"scheduled_time": now.format(&Rfc3339)?});
    println!(
        "\nrunning infra/statemachine/snapshot.asl.json on {input}\n\
         (each Wait and Retry pause lasts {} ms here and its ASL seconds on the execution's clock)\n",
        PAUSE.as_millis()
    );
    let execution = workflow
        .run(input, PAUSE, |event| {
            tell(event);
            if let EventKind::LambdaFunctionSucceeded { output, .. } = &event.kind {
                if output["state"] == "IN_PROGRESS" {
                    tell_progress(&deps, output);
                }
            }
        })
        .await?;

    println!("\n{}", execution.status.name());
    if let Status::Failed { error, cause } = &execution.status {
        println!("  {error}: {cause}");
    }
    for notification in &execution.notifications {
        println!(
            "notified      {:?} → {}: {}",
            notification.source,
            notification.topic_arn,
            notification.subject.as_deref().unwrap_or_default()
        );
    }
    if let Some(report) = execution.output_of("check-status") {
        describe_snapshot(
            &stack,
            &deps,
            &bucket,
            report,
            execution.output_of("verify"),
        )
        .await?;
    }
    if let Some(retention) = execution.output_of("retention") {
        for (verb, key) in [
            ("kept", "kept"),
            ("deleted", "deleted"),
            ("skipped", "skipped"),
        ] {
            for decision in retention[key].as_array().into_iter().flatten() {
                println!(
                    "retention     {verb} {}: {}",
                    text(&decision["snapshot"]),
                    text(&decision["reason"])
                );
            }
        }
    }
    println!("cost          {}", execution.cost_drivers());
    drop(workflow);
    stack.local.shutdown().await;
    Ok(execution)
}

async fn seed(stack: &TestStack, deps: &Deps, indices: &[(&str, usize)]) {
    for (index, docs) in indices {
        stack.seed_index(deps, index, *docs).await;
        println!("indexed       {index} ({docs} documents)");
    }
}

/// Yesterday's and the day before's snapshots, as the scheduled runs of those days took them.
async fn take_earlier_snapshots(
    deps: &Deps,
    now: OffsetDateTime,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    register::run(
        deps,
        Invocation {
            input: RegisterInput::default(),
            scheduled_time: None,
        },
    )
    .await?;
    let mut names = Vec::new();
    for days_ago in [2, 1] {
        let started = snapshot::run(
            deps,
            Invocation {
                input: SnapshotInput::default(),
                scheduled_time: Some(now - time::Duration::days(days_ago)),
            },
            "demo-setup",
        )
        .await?;
        while deps
            .opensearch
            .get_snapshot(&started.repository, &started.snapshot)
            .await?
            .state
            .as_deref()
            == Some("IN_PROGRESS")
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        names.push(started.snapshot);
    }
    Ok(names)
}

/// Prints one event of the run as it happens.
fn tell(event: &Event) {
    let at = clock(event.virtual_seconds);
    match &event.kind {
        EventKind::StateEntered {
            state,
            wait_seconds: Some(seconds),
            ..
        } => println!("{at}  ▶ {state:<16} waits {seconds} s"),
        EventKind::StateEntered { state, .. } => println!("{at}  ▶ {state}"),
        EventKind::LambdaFunctionSucceeded {
            function, output, ..
        } => println!("{at}      {}", summary(function, output)),
        EventKind::StateFailed { error, cause, .. } => println!("{at}      ✗ {error}: {cause}"),
        EventKind::StateRetried {
            attempt,
            delay_seconds,
            ..
        } => println!("{at}      ↻ retry {attempt}, after up to {delay_seconds} s"),
        EventKind::StateCaught { next, .. } => println!("{at}      caught → {next}"),
        EventKind::Notification {
            topic_arn, message, ..
        } => println!("{at}      published to {topic_arn}: {message}"),
        EventKind::ExecutionTimedOut { timeout_seconds } => {
            println!("{at}  ⏱ the execution timed out after {timeout_seconds} s")
        }
        _ => {}
    }
}

/// How far the running snapshot is, from its `_status`, as an operator watching it would see.
fn tell_progress(deps: &Deps, snapshot: &Value) {
    let (Some(repository), Some(name)) = (
        snapshot["repository"].as_str(),
        snapshot["snapshot"].as_str(),
    ) else {
        return;
    };
    let status = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current()
            .block_on(deps.opensearch.snapshot_status(repository, name))
    });
    let Ok(status) = status else {
        return;
    };
    let shards = status.shards_stats.unwrap_or_default();
    let stats = status.stats.unwrap_or_default();
    // OpenSearch leaves `processed` out once it equals `incremental`.
    let processed = stats
        .processed
        .or(stats.incremental)
        .unwrap_or_default()
        .size_in_bytes;
    let to_upload = stats
        .incremental
        .or(stats.total)
        .unwrap_or_default()
        .size_in_bytes;
    // Files already in the repository from earlier snapshots are not uploaded again.
    let bytes = if to_upload > 0 {
        format!(", {processed}/{to_upload} new bytes uploaded")
    } else {
        String::new()
    };
    println!(
        "                 progress: {}/{} shards done{bytes}",
        shards.done, shards.total
    );
}

/// One line on what a function answered.
fn summary(function: &str, output: &Value) -> String {
    match function {
        "register" => format!(
            "repository {} {}",
            text(&output["repository"]),
            text(&output["status"])
        ),
        "snapshot" => format!(
            "snapshot {} {}",
            text(&output["snapshot"]),
            text(&output["state"])
        ),
        "check-status" if output["done"] == true => format!(
            "{} {}, shards {}/{} done, {} failed",
            text(&output["snapshot"]),
            text(&output["state"]),
            output["shards"]["successful"],
            output["shards"]["total"],
            output["shards"]["failed"]
        ),
        "check-status" => format!(
            "{} {}; look again in {} s",
            text(&output["snapshot"]),
            text(&output["state"]),
            output["wait_seconds"]
        ),
        "verify" => format!(
            "verified in S3: {} indices, {} shards, {} blobs, {} bytes",
            output["indices"], output["shards"], output["blobs"], output["bytes"]
        ),
        "retention" => format!(
            "kept {}, deleted {}",
            names(&output["kept"]),
            names(&output["deleted"])
        ),
        _ => output.to_string(),
    }
}

/// The snapshot's state, its shards and size, and where it lies in the local S3.
async fn describe_snapshot(
    stack: &TestStack,
    deps: &Deps,
    bucket: &str,
    report: &Value,
    verified: Option<&Value>,
) -> Result<(), Box<dyn std::error::Error>> {
    let shards = &report["shards"];
    println!(
        "snapshot      {}: {}{}, shards {} total, {} successful, {} failed",
        text(&report["snapshot"]),
        text(&report["state"]),
        if report["healthy"] == true {
            " (healthy)"
        } else {
            ""
        },
        shards["total"],
        shards["successful"],
        shards["failed"]
    );
    let listing = stack
        .local
        .s3_client()
        .list_objects_v2()
        .bucket(bucket)
        .prefix(BASE_PATH)
        .send()
        .await?;
    let objects = listing.contents();
    let repository_bytes: i64 = objects.iter().filter_map(|object| object.size()).sum();
    if let Some(verified) = verified {
        println!(
            "size          {} bytes of shard data in {} blobs",
            verified["bytes"], verified["blobs"]
        );
    }
    println!(
        "in S3         s3://{bucket}/{BASE_PATH}/ at {} (removed when the demo ends): \
         the repository holds {} objects, {repository_bytes} bytes; this snapshot's own:",
        stack.local.s3_endpoint(),
        objects.len()
    );
    // Its SnapshotInfo and metadata blobs carry its uuid; its shard data lies under indices/.
    let uuid = deps
        .opensearch
        .get_snapshot(text(&report["repository"]), text(&report["snapshot"]))
        .await?
        .uuid
        .unwrap_or_default();
    for object in objects
        .iter()
        .filter(|object| !uuid.is_empty() && object.key().is_some_and(|key| key.contains(&uuid)))
    {
        println!(
            "                {} ({} bytes)",
            object.key().unwrap_or_default(),
            object.size().unwrap_or_default()
        );
    }
    Ok(())
}

fn names(decisions: &Value) -> String {
    let names: Vec<&str> = decisions
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|decision| decision["snapshot"].as_str())
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("?")
}

/// `h:mm:ss` on the execution's clock.
fn clock(seconds: f64) -> String {
    let whole = seconds.round() as u64;
    format!("{}:{:02}:{:02}", whole / 3600, whole / 60 % 60, whole % 60)
}
