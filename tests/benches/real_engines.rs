//! The real OpenSearch engines of the local stack (distributions already in `.cache/`):
//! - each node's start time (to a healthy `_cluster/health`) and its peak RSS (the JVM's VmHWM
//!   once the conformance work below is done);
//! - the conformance suite's wall time on each engine (node start included), the emulator's too;
//! - verify on a real snapshot of 100,000 documents written by OpenSearch 2.x: requests, bytes
//!   read and wall time at each depth.

use std::time::{Duration, Instant};

use ossnap_core::config::Environment;
use ossnap_core::event::Invocation;
use ossnap_local_stack::{Engine, Profile};
use ossnap_tests::stack::BASE_PATH;
use ossnap_tests::{conformance, TestStack};
use ossnap_verify::{Depth, Verifier, VerifyInput};
use serde_json::json;

const DOCUMENTS: usize = 100_000;
const INDEX: &str = "bench-100k";

/// VmHWM of `pid`, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

#[tokio::main]
async fn main() {
    println!(
        "| engine | node start | peak RSS after 100k docs, snapshot, verify | suite wall time |"
    );
    println!("| --- | --- | --- | --- |");
    let mut rows = Vec::new();
    for (engine, profile) in [
        (Engine::OpenSearch2, Profile::V2),
        (Engine::OpenSearch3, Profile::V3),
    ] {
        let started = Instant::now();
        let stack = TestStack::start_engine(engine).await;
        let start_time = started.elapsed();
        let pid = stack.local.opensearch_pid().expect("a real node");
        let depths = snapshot_and_verify(&stack).await;
        let rss = peak_rss_mib(pid);
        stack.local.shutdown().await;

        let started = Instant::now();
        conformance::suite(engine, profile).await;
        let suite_time = started.elapsed();
        println!(
            "| {engine} {} | {:.1} s | {rss:.0} MiB | {:.1} s |",
            engine.version().unwrap_or_default(),
            start_time.as_secs_f64(),
            suite_time.as_secs_f64()
        );
        rows.push((engine, depths));
    }
    let started = Instant::now();
    conformance::suite(Engine::Emulator, Profile::V2).await;
    println!(
        "| emulator (in process) | — | — | {:.1} s |",
        started.elapsed().as_secs_f64()
    );
    for (engine, depths) in rows {
        println!();
        println!("verify on {engine}: one snapshot of {DOCUMENTS} documents in 2 shards");
        println!("| depth | LIST | GET | bytes read | data bytes | wall time |");
        println!("| --- | --- | --- | --- | --- | --- |");
        for (depth, output, wall) in depths {
            println!(
                "| {depth:?} | {} | {} | {} | {} | {:.3} s |",
                output.requests.list,
                output.requests.get,
                output.requests.bytes_read,
                output.bytes,
                wall.as_secs_f64()
            );
        }
    }
}

/// Seeds 100,000 documents, snapshots them, and verifies the snapshot at every depth.
async fn snapshot_and_verify(
    stack: &TestStack,
) -> Vec<(Depth, ossnap_verify::VerifyOutput, Duration)> {
    let deps = stack.deps(&[]);
    let started = Instant::now();
    stack
        .local
        .seed_index(INDEX, 2, DOCUMENTS)
        .await
        .expect("100,000 documents indexed");
    println!(
        "({}: {DOCUMENTS} documents indexed in {:.1} s)",
        stack.engine(),
        started.elapsed().as_secs_f64()
    );
    ossnap_core::register::run(
        &deps,
        Invocation {
            input: Default::default(),
            scheduled_time: None,
        },
    )
    .await
    .expect("the repository registers");
    deps.opensearch
        .call(
            http::Method::PUT,
            "/_snapshot/ossnap/bench-1",
            &[("wait_for_completion", "true")],
            Some(&json!({"indices": INDEX, "include_global_state": false})),
        )
        .await
        .expect("the snapshot is taken");
    let verifier = Verifier::new(
        &Environment::from_pairs(stack.env()),
        stack.local.s3_client(),
        ossnap_core::clock::Clock::system(),
    )
    .unwrap();
    let mut results = Vec::new();
    for depth in [Depth::Structure, Depth::Footers, Depth::Full] {
        let input = VerifyInput {
            snapshot: Some("bench-1".into()),
            base_path: Some(BASE_PATH.into()),
            deep: Some(depth),
            ..VerifyInput::default()
        };
        let started = Instant::now();
        let output = ossnap_verify::run(
            &verifier,
            Invocation {
                input,
                scheduled_time: None,
            },
        )
        .await
        .expect("the snapshot verifies");
        results.push((depth, output, started.elapsed()));
    }
    results
}
