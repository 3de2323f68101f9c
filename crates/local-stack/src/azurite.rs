//! Azurite (npm `azurite`, Azure Storage's emulator) beside the stack when it is started with
//! `azure: true`: its Blob service only (`azurite-blob`) on a free loopback port, with the
//! well-known development account, its data under `data_dir/azurite` (a restart finds the
//! container and its blobs again). Flags: `--skipApiVersionCheck` (clients send newer API versions
//! than Azurite knows), `--disableTelemetry` (otherwise it calls an outside telemetry host),
//! `--silent` (no access log). `make azure-tools` installs it into `azurite/node_modules`;
//! `OSSNAP_AZURITE` names another `azurite-blob` executable. It stops with the stack, or when
//! dropped, as every [`OwnedChild`] does.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::blob_store::azure::AzureClient;
use crate::blob_store::StoreError;
use crate::child_process::{self, OwnedChild};
use crate::{AzureEndpoint, Error};

/// Azurite's well-known development account and its key (public, in Azurite's documentation).
pub(crate) const DEVELOPMENT_ACCOUNT: &str = "devstoreaccount1";
pub(crate) const DEVELOPMENT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How long Azurite may take to answer after it is started (Node start on a loaded machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Azurite {
    process: OwnedChild,
    endpoint: AzureEndpoint,
    client: AzureClient,
}

impl Azurite {
    /// Starts Azurite with its data in `directory`, waits until it answers and creates
    /// `container` (kept if it exists).
    pub(crate) async fn start(directory: &Path, container: &str) -> Result<Azurite, Error> {
        let executable = executable()?;
        std::fs::create_dir_all(directory).map_err(|source| Error::DataDir {
            path: directory.to_path_buf(),
            source,
        })?;
        let address = child_process::loopback_port("Azurite", 0)?;
        let log_path = directory.join("azurite.log");
        let log = std::fs::File::create(&log_path).map_err(|source| Error::DataDir {
            path: log_path.clone(),
            source,
        })?;
        let log_too = log.try_clone().map_err(|source| Error::DataDir {
            path: log_path.clone(),
            source,
        })?;
        let mut command = Command::new(&executable);
        command
            .arg("--blobHost")
            .arg(address.ip().to_string())
            .arg("--blobPort")
            .arg(address.port().to_string())
            .arg("--location")
            .arg(directory)
            .args(["--skipApiVersionCheck", "--disableTelemetry", "--silent"])
            .current_dir(directory)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_too);
        // Spawned on this thread, not a blocking-pool one: Azurite is told to die with the thread
        // that started it.
        let process =
            OwnedChild::spawn(&mut command, "Azurite", STOP_TIMEOUT).map_err(|error| {
                Error::Azurite {
                    reason: format!("starting {}: {error}", executable.display()),
                }
            })?;
        let endpoint = AzureEndpoint {
            account: DEVELOPMENT_ACCOUNT.to_owned(),
            key: DEVELOPMENT_KEY.to_owned(),
            blob_endpoint: format!("http://{address}/{DEVELOPMENT_ACCOUNT}"),
            container: container.to_owned(),
        };
        let client = AzureClient::new(&endpoint).map_err(|reason| Error::Azurite { reason })?;
        let mut azurite = Azurite {
            process,
            endpoint,
            client,
        };
        azurite.create_container_once_answering(&log_path).await?;
        Ok(azurite)
    }

    pub(crate) fn endpoint(&self) -> &AzureEndpoint {
        &self.endpoint
    }

    /// The client the emulator's `default` Azure client is.
    pub(crate) fn client(&self) -> AzureClient {
        self.client.clone()
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    pub(crate) async fn stop(self) {
        self.process.stop().await;
    }

    async fn create_container_once_answering(&mut self, log: &Path) -> Result<(), Error> {
        let started = Instant::now();
        let failed = |what: String| Error::Azurite {
            reason: format!(
                "{what}; the last lines of {}:\n{}",
                log.display(),
                child_process::log_tail(log, 30)
            ),
        };
        loop {
            if let Some(status) = self.process.exited() {
                return Err(failed(format!("exited with {status} while starting")));
            }
            match self.client.create_container(&self.endpoint.container).await {
                Ok(()) => return Ok(()),
                Err(StoreError::AzureUnreachable { .. }) if started.elapsed() < START_TIMEOUT => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(error) => {
                    return Err(failed(format!(
                        "creating container {} at {}: {error}",
                        self.endpoint.container, self.endpoint.blob_endpoint
                    )))
                }
            }
        }
    }
}

/// `OSSNAP_AZURITE`, else `azurite/node_modules/.bin/azurite-blob` at the workspace root.
fn executable() -> Result<PathBuf, Error> {
    locate(
        std::env::var_os("OSSNAP_AZURITE").map(PathBuf::from),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../azurite/node_modules/.bin/azurite-blob"),
    )
}

/// The `configured` executable, else the `installed` one; an error saying how to get one.
fn locate(configured: Option<PathBuf>, installed: PathBuf) -> Result<PathBuf, Error> {
    let reason = match configured {
        Some(path) if path.is_file() => return Ok(path),
        Some(path) => format!(
            "OSSNAP_AZURITE names {}, which does not exist; point it at an azurite-blob executable, or unset it and run `make azure-tools`",
            path.display()
        ),
        None if installed.is_file() => return Ok(installed),
        None => format!(
            "{} is missing: run `make azure-tools` (it installs Azurite from npm into azurite/node_modules), or set OSSNAP_AZURITE to an azurite-blob executable",
            installed.display()
        ),
    };
    Err(Error::Azurite { reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_azurite_names_the_make_target_or_the_variable() {
        let missing = PathBuf::from("/nonexistent/azurite-blob");
        let present = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let reason = |result: Result<PathBuf, Error>| result.unwrap_err().to_string();

        assert!(reason(locate(None, missing.clone())).contains("run `make azure-tools`"));
        assert!(reason(locate(Some(missing.clone()), present.clone()))
            .starts_with("Azurite: OSSNAP_AZURITE names /nonexistent/azurite-blob"));
        assert_eq!(locate(None, present.clone()).unwrap(), present);
        assert_eq!(
            locate(Some(present.clone()), missing).unwrap(),
            present,
            "the variable wins"
        );
    }
}
