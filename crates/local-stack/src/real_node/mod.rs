//! A real OpenSearch node on loopback, beside the emulator: the integ-test distribution of a
//! pinned version (no security plugin, no repository plugins), single node, 512 MiB heap, its
//! data and logs under the stack's data directory. Its snapshot repository is of type `fs`, with
//! `path.repo` set to the local S3 server's folder for the bucket, so every blob it writes is an
//! S3 object that verify, retention and copy read through the S3 API.
//!
//! The node stops with the stack, or when dropped, as every [`OwnedChild`] does.

mod distribution;
mod user;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::child_process::{self, OwnedChild};
use crate::engine::Engine;
use crate::Error;

/// How long a node may take to answer its health check; JVM start on a loaded 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a node may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const HEAP: &str = "512m";

pub(crate) struct RealNode {
    engine: Engine,
    address: std::net::SocketAddr,
    directory: PathBuf,
    process: Option<OwnedChild>,
}

impl RealNode {
    /// Fetches the distribution if needed, writes the node's configuration under `directory`,
    /// starts it with `repository_root` as its only `path.repo`, and waits until it is healthy.
    pub(crate) async fn start(
        engine: Engine,
        directory: PathBuf,
        repository_root: PathBuf,
        port: u16,
    ) -> Result<RealNode, Error> {
        let version = engine.version().expect("a real engine has a version");
        let prepared = {
            let directory = directory.clone();
            tokio::task::spawn_blocking(move || {
                prepare(engine, version, &directory, &repository_root, port)
            })
            .await
            .expect("preparing the node does not panic")?
        };
        let mut node = RealNode {
            engine,
            address: prepared.address,
            directory,
            process: None,
        };
        // Spawned on this thread, not a blocking-pool one: the node is told to die with the thread
        // that started it, and pool threads come and go.
        node.process = Some(prepared.spawn()?);
        node.wait_until_healthy().await?;
        Ok(node)
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    pub(crate) fn engine(&self) -> Engine {
        self.engine
    }

    /// Stops the node and waits for it.
    pub(crate) async fn stop(mut self) {
        if let Some(process) = self.process.take() {
            process.stop().await;
        }
    }

    /// Creates `sample` through the API, its documents sent by `_bulk` in batches, unless an
    /// index of that name exists.
    pub(crate) async fn seed_index(
        &self,
        sample: &crate::samples::SampleIndex<'_>,
    ) -> Result<(), Error> {
        const BATCH: usize = 5_000;
        let index = serde_json::json!({
            "settings": {"number_of_shards": sample.shards, "number_of_replicas": 0},
            "mappings": sample.mappings(),
        });
        let (status, body) = self
            .call(
                ::http::Method::PUT,
                &format!("/{}", sample.name),
                "application/json",
                index.to_string(),
            )
            .await?;
        if status == 400
            && String::from_utf8_lossy(&body).contains("resource_already_exists_exception")
        {
            return Ok(());
        }
        self.expect_success(sample.name, status, &body)?;
        for first in (0..sample.documents).step_by(BATCH) {
            let mut bulk = String::new();
            for n in first..sample.documents.min(first + BATCH) {
                let (id, source) = sample.document(n);
                bulk.push_str(
                    &serde_json::json!({"index": {"_index": sample.name, "_id": id}}).to_string(),
                );
                bulk.push('\n');
                bulk.push_str(&source.to_string());
                bulk.push('\n');
            }
            let (status, body) = self
                .call(::http::Method::POST, "/_bulk", "application/x-ndjson", bulk)
                .await?;
            self.expect_success(sample.name, status, &body)?;
            if serde_json::from_slice::<serde_json::Value>(&body)
                .is_ok_and(|answer| answer["errors"] == true)
            {
                return Err(self.seeding_failed(sample.name, status, &body));
            }
        }
        let (status, body) = self
            .call(
                ::http::Method::POST,
                &format!("/{}/_refresh", sample.name),
                "application/json",
                String::new(),
            )
            .await?;
        self.expect_success(sample.name, status, &body)
    }

    /// The node's process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(OwnedChild::id)
    }

    async fn call(
        &self,
        method: ::http::Method,
        path: &str,
        content_type: &str,
        body: String,
    ) -> Result<(u16, bytes::Bytes), Error> {
        crate::loopback_http::request(
            self.address,
            method,
            path,
            Some((content_type, body.into())),
        )
        .await
        .map_err(|reason| Error::RealNode { reason })
    }

    fn expect_success(&self, index: &str, status: u16, body: &[u8]) -> Result<(), Error> {
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(self.seeding_failed(index, status, body))
        }
    }

    fn seeding_failed(&self, index: &str, status: u16, body: &[u8]) -> Error {
        Error::RealNode {
            reason: format!(
                "seeding {index} on {}: {status} {}",
                self.engine,
                String::from_utf8_lossy(body)
            ),
        }
    }

    async fn wait_until_healthy(&mut self) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.process.as_mut().and_then(OwnedChild::exited) {
                return Err(self.failed(&format!("exited with {status} while starting")));
            }
            if health(self.address).await {
                tracing::info!(engine = %self.engine, elapsed_ms = started.elapsed().as_millis() as u64, "OpenSearch node healthy");
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(self.failed(&format!("not healthy after {}s", START_TIMEOUT.as_secs())));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn failed(&self, what: &str) -> Error {
        let log = self.directory.join("logs/console.log");
        let tail = child_process::log_tail(&log, 30);
        Error::RealNode {
            reason: format!(
                "{} {what}; the last lines of {}:\n{tail}",
                self.engine,
                log.display()
            ),
        }
    }
}

/// A node ready to start: its command and where it listens.
struct Prepared {
    command: Command,
    address: std::net::SocketAddr,
}

impl Prepared {
    fn spawn(mut self) -> Result<OwnedChild, Error> {
        OwnedChild::spawn(&mut self.command, "OpenSearch", STOP_TIMEOUT).map_err(|error| {
            Error::RealNode {
                reason: format!("starting OpenSearch: {error}"),
            }
        })
    }
}

fn prepare(
    engine: Engine,
    version: &str,
    directory: &Path,
    repository_root: &Path,
    port: u16,
) -> Result<Prepared, Error> {
    let home = distribution::installed_home(version)?;
    let java_home = distribution::java_home(engine)?;
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::DataDir { path, source }
    };
    let config = directory.join("config");
    for folder in [&config, &directory.join("data"), &directory.join("logs")] {
        std::fs::create_dir_all(folder).map_err(io_error(folder))?;
    }
    let http = child_process::loopback_port("OpenSearch node", port)?;
    let transport = child_process::loopback_port("OpenSearch node", 0)?;
    write_configuration(&home, directory, repository_root, http, transport)?;

    let console = directory.join("logs/console.log");
    let log = std::fs::File::create(&console).map_err(io_error(&console))?;
    let log_too = log.try_clone().map_err(io_error(&console))?;
    let mut command = Command::new(home.join("bin/opensearch"));
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", directory)
        .env("OPENSEARCH_PATH_CONF", &config)
        .env("OPENSEARCH_JAVA_HOME", &java_home)
        .current_dir(directory)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_too);
    if let Some(ids) = user::unprivileged_ids()? {
        for path in [directory.parent(), Some(directory)].into_iter().flatten() {
            user::make_traversable(path)?;
        }
        if let Some(parent) = repository_root.parent() {
            user::make_traversable(parent)?;
        }
        user::hand_over(directory, ids)?;
        user::hand_over(repository_root, ids)?;
        command.uid(ids.0).gid(ids.1);
    }
    Ok(Prepared {
        command,
        address: http,
    })
}

/// `opensearch.yml`, and the distribution's `jvm.options` and `log4j2.properties` with every path
/// made absolute under the node's folder (the distribution's own folder is shared and read-only).
fn write_configuration(
    home: &Path,
    directory: &Path,
    repository_root: &Path,
    http: std::net::SocketAddr,
    transport: std::net::SocketAddr,
) -> Result<(), Error> {
    let config = directory.join("config");
    let write = |name: &str, text: String| {
        let path = config.join(name);
        std::fs::File::create(&path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .map_err(|source| Error::DataDir { path, source })
    };
    let read = |name: &str| {
        let path = home.join("config").join(name);
        std::fs::read_to_string(&path).map_err(|source| Error::DataDir { path, source })
    };
    write(
        "opensearch.yml",
        format!(
            "cluster.name: ossnap-local\n\
             node.name: ossnap-local\n\
             discovery.type: single-node\n\
             network.host: 127.0.0.1\n\
             http.port: {}\n\
             transport.port: {}\n\
             path.data: {}\n\
             path.logs: {}\n\
             path.repo: [\"{}\"]\n",
            http.port(),
            transport.port(),
            directory.join("data").display(),
            directory.join("logs").display(),
            repository_root.display(),
        ),
    )?;
    let logs = directory.join("logs");
    let data = directory.join("data");
    let jvm_options: String = read("jvm.options")?
        .lines()
        .map(|line| {
            if line.starts_with("-Xms") {
                format!("-Xms{HEAP}")
            } else if line.starts_with("-Xmx") {
                format!("-Xmx{HEAP}")
            } else {
                line.replace("file=logs/", &format!("file={}/", logs.display()))
                    .replace("ErrorFile=logs/", &format!("ErrorFile={}/", logs.display()))
                    .replace(
                        "HeapDumpPath=data",
                        &format!("HeapDumpPath={}", data.display()),
                    )
            }
        })
        .map(|line| line + "\n")
        .collect();
    write("jvm.options", jvm_options)?;
    std::fs::create_dir_all(config.join("jvm.options.d")).map_err(|source| Error::DataDir {
        path: config.join("jvm.options.d"),
        source,
    })?;
    write("log4j2.properties", read("log4j2.properties")?)
}

/// Whether the node answers `_cluster/health` with a non-red status.
async fn health(address: std::net::SocketAddr) -> bool {
    let probe =
        crate::loopback_http::request(address, ::http::Method::GET, "/_cluster/health", None);
    match tokio::time::timeout(Duration::from_secs(5), probe).await {
        Ok(Ok((200, body))) => serde_json::from_slice::<serde_json::Value>(&body)
            .is_ok_and(|health| health["status"] != "red"),
        _ => false,
    }
}
