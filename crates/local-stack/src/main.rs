//! `ossnap-local`: the local stack as a process, for the demo and for trying ossnap by hand.
//!
//! ```text
//! ossnap-local [--engine emulator|opensearch-2|opensearch-3] [--data-dir DIR]
//!              [--opensearch-port 9200] [--s3-port 9000] [--seed] [--azure]
//! ```
//! `--engine opensearch-2|opensearch-3` runs a real OpenSearch node (fetched once with Maven into
//! the project's `.cache`) instead of the emulator; its repository is an `fs` one in the bucket's
//! folder, so its blobs are S3 objects. `--azure` also runs Azurite (`make azure-tools` installs
//! it) with the container `ossnap-local`, prints the `AZURE_STORAGE_*` exports, and lets the
//! emulator register `type: azure` repositories in it.
//! Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (fixed development credentials
//! when unset), the bucket from SNAPSHOT_BUCKET. Stops on Ctrl-C or SIGTERM and keeps its data
//! directory, so a restart finds buckets, repositories, snapshots and indices again.

use std::path::PathBuf;
use std::process::ExitCode;

use ossnap_local_stack::{Credentials, Engine, LocalStack, LocalStackConfig, DEFAULT_BUCKET};

const USAGE: &str = "usage: ossnap-local [--engine emulator|opensearch-2|opensearch-3] [--data-dir DIR] [--opensearch-port PORT] [--s3-port PORT] [--seed] [--azure]";

#[derive(Debug)]
struct Arguments {
    engine: Engine,
    data_dir: PathBuf,
    opensearch_port: u16,
    s3_port: u16,
    seed: bool,
    azure: bool,
}

fn parse_arguments(arguments: impl Iterator<Item = String>) -> Result<Arguments, String> {
    let mut parsed = Arguments {
        engine: Engine::Emulator,
        data_dir: PathBuf::from(".ossnap-local"),
        opensearch_port: 9200,
        s3_port: 9000,
        seed: false,
        azure: false,
    };
    let mut arguments = arguments.peekable();
    while let Some(argument) = arguments.next() {
        let mut value = |name: &str| {
            arguments
                .next()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match argument.as_str() {
            "--engine" => parsed.engine = value("--engine")?.parse()?,
            "--data-dir" => parsed.data_dir = PathBuf::from(value("--data-dir")?),
            "--opensearch-port" => {
                parsed.opensearch_port = value("--opensearch-port")?
                    .parse()
                    .map_err(|_| "--opensearch-port must be a port number".to_owned())?
            }
            "--s3-port" => {
                parsed.s3_port = value("--s3-port")?
                    .parse()
                    .map_err(|_| "--s3-port must be a port number".to_owned())?
            }
            "--seed" => parsed.seed = true,
            "--azure" => parsed.azure = true,
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

fn credentials_from_environment() -> (Credentials, bool) {
    match (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Ok(access_key_id), Ok(secret_access_key)) if !access_key_id.is_empty() => (
            Credentials {
                access_key_id,
                secret_access_key,
                session_token: std::env::var("AWS_SESSION_TOKEN")
                    .ok()
                    .filter(|token| !token.is_empty()),
            },
            false,
        ),
        _ => (Credentials::development(), true),
    }
}

/// SIGINT and SIGTERM handlers, installed before anything is printed so that a signal sent as
/// soon as the endpoints appear is not lost.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let arguments = match parse_arguments(std::env::args().skip(1)) {
        Ok(arguments) => arguments,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut stop_signals = match StopSignals::install() {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("ossnap-local: cannot install signal handlers: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (credentials, development) = credentials_from_environment();
    let config = LocalStackConfig {
        opensearch_port: arguments.opensearch_port,
        s3_port: arguments.s3_port,
        credentials,
        bucket: std::env::var("SNAPSHOT_BUCKET").unwrap_or_else(|_| DEFAULT_BUCKET.to_owned()),
        engine: arguments.engine,
        azure: arguments.azure,
        ..LocalStackConfig::new(&arguments.data_dir)
    };
    let stack = match LocalStack::start(config).await {
        Ok(stack) => stack,
        Err(error) => {
            eprintln!("ossnap-local: {error}");
            return ExitCode::FAILURE;
        }
    };
    if arguments.seed {
        if let Err(error) = stack.seed_sample_indices().await {
            eprintln!("ossnap-local: seeding failed: {error}");
            return ExitCode::FAILURE;
        }
    }
    let config = stack.config();
    println!(
        "ossnap-local is running (data in {})",
        config.data_dir.display()
    );
    match stack.engine().version() {
        None => println!(
            "  OpenSearch (emulator, SigV4):   {}",
            stack.opensearch_endpoint()
        ),
        Some(version) => println!(
            "  OpenSearch {version:<8} (no auth): {}",
            stack.opensearch_endpoint()
        ),
    }
    println!(
        "  S3:                             {} (bucket {})",
        stack.s3_endpoint(),
        config.bucket
    );
    if let Some(azure) = stack.azure() {
        println!(
            "  Azure Blob (Azurite):           {} (container {})",
            azure.blob_endpoint, azure.container
        );
    }
    if stack.control().is_some() {
        println!("  principal:                      {}", config.principal_arn);
    }
    if development {
        println!(
            "  using fixed development credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY unset)"
        );
    }
    println!();
    for (name, value) in stack.environment(None) {
        println!("export {name}={value}");
    }
    println!();
    println!("Ctrl-C stops it; the data directory is kept.");

    stop_signals.wait().await;
    println!("stopping ossnap-local");
    stack.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(arguments: &[&str]) -> Result<Arguments, String> {
        parse_arguments(arguments.iter().map(|argument| (*argument).to_owned()))
    }

    #[test]
    fn arguments_are_parsed() {
        let parsed = parse(&[
            "--engine",
            "opensearch-3",
            "--data-dir",
            "/tmp/x",
            "--opensearch-port",
            "1",
            "--s3-port",
            "2",
            "--seed",
            "--azure",
        ])
        .unwrap();
        assert_eq!(parsed.engine, Engine::OpenSearch3);
        assert_eq!(parsed.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(
            (
                parsed.opensearch_port,
                parsed.s3_port,
                parsed.seed,
                parsed.azure
            ),
            (1, 2, true, true)
        );
        assert!(!parse(&[]).unwrap().azure);
        assert!(parse(&["--opensearch-port", "x"]).is_err());
        assert!(parse(&["--data-dir"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--engine", "elasticsearch"])
            .unwrap_err()
            .contains("opensearch-2"));
    }
}
