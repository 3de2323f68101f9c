//! `make demo`: the main job on the local stack. Starts the local S3 and OpenSearch emulator,
//! seeds a few indices, then runs register → snapshot → check-status (polled until done) as
//! Lambda runs them, and tells what happened and where the snapshot lies in the bucket.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ossnap_tests::{function_binary, FunctionError, LambdaProcess, TestStack};
use serde_json::{json, Value};

/// The local stack's snapshots take seconds, not the minutes `wait_seconds` plans for.
const DEMO_POLL: Duration = Duration::from_millis(500);

#[tokio::main]
async fn main() -> ExitCode {
    let started = Instant::now();
    match run().await {
        Ok(()) => {
            println!("\ndone in {:.1}s", started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "\nthe run failed: {}: {}",
                error.error_type, error.error_message
            );
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), FunctionError> {
    let stack =
        TestStack::start_with(|config| config.snapshot_duration = Duration::from_secs(3)).await;
    println!(
        "local stack: OpenSearch {}  S3 {}",
        stack.local.opensearch_endpoint(),
        stack.local.s3_endpoint()
    );
    let deps = stack.deps(&[]);
    for (index, docs) in [
        ("logs-2026.11.27", 40),
        ("logs-2026.11.28", 25),
        ("orders", 10),
    ] {
        stack.seed_index(&deps, index, docs).await;
        println!("seeded {index} with {docs} documents");
    }
    let env_owned = stack.env();
    let env: Vec<(&str, &str)> = env_owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let start = |name: &'static str| {
        let env = env.clone();
        async move {
            LambdaProcess::start(&function_binary(name), &env)
                .await
                .expect("the function starts")
        }
    };

    println!("\n▶ register");
    let registered = start("register").await.invoke(json!({})).await?;
    println!(
        "  repository {} {} ({} node(s) verified)",
        registered["repository"], registered["status"], registered["verified_nodes"]
    );

    println!("▶ snapshot");
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("now formats");
    let started = start("snapshot")
        .await
        .invoke(json!({"scheduled_time": now}))
        .await?;
    println!(
        "  {} started in {} ({})",
        started["snapshot"], started["repository"], started["state"]
    );

    let mut check = start("check-status").await;
    let input = json!({"repository": started["repository"], "snapshot": started["snapshot"]});
    let report: Value = loop {
        tokio::time::sleep(DEMO_POLL).await;
        println!("▶ check-status");
        let report = check.invoke(input.clone()).await?;
        println!(
            "  {}  (on AWS the next poll would be in {}s)",
            report["state"], report["wait_seconds"]
        );
        if report["done"] == true {
            break report;
        }
    };
    let shards = &report["shards"];
    println!(
        "\nsnapshot {}: {}, healthy: {}, shards {} total / {} successful / {} failed",
        report["snapshot"],
        report["state"],
        report["healthy"],
        shards["total"],
        shards["successful"],
        shards["failed"]
    );

    let bucket = &stack.local.config().bucket;
    let listing = stack
        .local
        .s3_client()
        .list_objects_v2()
        .bucket(bucket)
        .prefix(ossnap_tests::stack::BASE_PATH)
        .send()
        .await
        .expect("the local bucket lists");
    let objects = listing.contents();
    let bytes: i64 = objects.iter().filter_map(|o| o.size()).sum();
    println!(
        "in s3://{bucket}/{}/: {} objects, {bytes} bytes",
        ossnap_tests::stack::BASE_PATH,
        objects.len()
    );
    for object in objects
        .iter()
        .filter(|o| !o.key().unwrap_or_default().contains("/indices/"))
    {
        println!("  {}", object.key().unwrap_or_default());
    }
    if report["healthy"] != true {
        return Err(FunctionError {
            error_type: "SnapshotNotHealthy".into(),
            error_message: report.to_string(),
        });
    }
    stack.local.shutdown().await;
    Ok(())
}
