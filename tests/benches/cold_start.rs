//! Cold start, invoke time and peak memory of each function, started as Lambda starts it (a
//! Runtime API on loopback, the local stack behind it), beside the seed's Python approach
//! (boto3 + requests_aws4auth under awslambdaric) doing register's work.
//!
//! `make bench` builds the packages and the Python environment, then runs this. Medians of
//! RUST_RUNS (Rust) and PYTHON_RUNS (Python) cold starts; each start is a new process.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ossnap_tests::{LambdaProcess, TestStack};
use serde_json::{json, Value};
use tokio::process::Command;

const RUST_RUNS: usize = 15;
const PYTHON_RUNS: usize = 7;

/// The event of the n-th run of a function.
type EventFor = fn(usize) -> Value;

struct Sample {
    init: Duration,
    invoke: Duration,
    peak_rss_kib: u64,
}

struct Summary {
    name: String,
    init_ms: f64,
    invoke_ms: f64,
    peak_rss_mib: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn summarize(name: &str, samples: &[Sample]) -> Summary {
    Summary {
        name: name.to_string(),
        init_ms: median(
            samples
                .iter()
                .map(|s| s.init.as_secs_f64() * 1000.0)
                .collect(),
        ),
        invoke_ms: median(
            samples
                .iter()
                .map(|s| s.invoke.as_secs_f64() * 1000.0)
                .collect(),
        ),
        peak_rss_mib: median(
            samples
                .iter()
                .map(|s| s.peak_rss_kib as f64 / 1024.0)
                .collect(),
        ),
    }
}

async fn measure(mut process: LambdaProcess, event: Value) -> Sample {
    let started = Instant::now();
    let answer = process.invoke(event).await;
    let invoke = started.elapsed();
    assert!(
        answer.is_ok(),
        "the benchmarked invocation failed: {answer:?}"
    );
    Sample {
        init: process
            .init_duration()
            .expect("the function asked for an event"),
        invoke,
        peak_rss_kib: process.peak_rss_kib().unwrap_or(0),
    }
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `cargo lambda build --release` output, or another directory of `<name>/bootstrap`.
fn bootstrap(name: &str) -> PathBuf {
    let dir = std::env::var("OSSNAP_BENCH_PACKAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target/lambda"));
    let path = dir.join(name).join("bootstrap");
    assert!(
        path.exists(),
        "{} is missing: run `make bench`",
        path.display()
    );
    path
}

#[tokio::main]
async fn main() {
    let stack =
        TestStack::start_with(|config| config.snapshot_duration = Duration::from_millis(5)).await;
    let env_owned = stack.env();
    let env: Vec<(&str, &str)> = env_owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 10).await;
    let mut summaries = Vec::new();

    let cases: [(&str, EventFor); 4] = [
        ("register", |_| json!({})),
        (
            "snapshot",
            |run| json!({"snapshot": format!("bench-{run}")}),
        ),
        ("check-status", |_| json!({"snapshot": "bench-0"})),
        ("verify", |_| json!({"snapshot": "bench-0"})),
    ];
    for (name, event) in cases {
        let binary = bootstrap(name);
        let mut samples = Vec::new();
        for run in 0..RUST_RUNS {
            let process = LambdaProcess::start(&binary, &env).await.unwrap();
            samples.push(measure(process, event(run)).await);
            // Let the emulator's snapshot finish before the next one starts.
            ossnap_tests::stack::wait_until_idle(&deps).await;
        }
        summaries.push(summarize(name, &samples));
    }

    let python = workspace().join(".venv-bench/bin/python");
    let mut twins = Vec::new();
    if python.exists() {
        for (name, handler, event) in [
            ("register (Python twin)", "app.handler", json!({})),
            (
                "verify (boto3 twin)",
                "verify_app.handler",
                json!({"snapshot": "bench-0"}),
            ),
        ] {
            let mut samples = Vec::new();
            for _ in 0..PYTHON_RUNS {
                let mut command = Command::new(&python);
                command
                    .args(["-m", "awslambdaric", handler])
                    .current_dir(workspace().join("bench/python"));
                let process = LambdaProcess::start_command(command, name, &env)
                    .await
                    .unwrap();
                samples.push(measure(process, event.clone()).await);
            }
            twins.push(summarize(name, &samples));
        }
    } else {
        println!(
            "(no {}: run `make bench` for the Python baselines)",
            python.display()
        );
    }

    println!(
        "{:<24} {:>12} {:>12} {:>14}",
        "function", "init p50 ms", "invoke p50 ms", "peak RSS MiB"
    );
    for s in summaries.iter().chain(twins.iter()) {
        println!(
            "{:<24} {:>12.2} {:>12.2} {:>14.2}",
            s.name, s.init_ms, s.invoke_ms, s.peak_rss_mib
        );
    }
    for (rust, twin) in [
        (&summaries[0], twins.first()),
        (&summaries[3], twins.get(1)),
    ] {
        if let Some(twin) = twin {
            println!(
                "{} vs {}: init {:.0}x faster, invoke {:.1}x faster, {:.1}x less memory",
                rust.name,
                twin.name,
                twin.init_ms / rust.init_ms,
                twin.invoke_ms / rust.invoke_ms,
                twin.peak_rss_mib / rust.peak_rss_mib
            );
        }
    }
}
