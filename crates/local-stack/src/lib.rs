//! ossnap's local stack: a real S3 server (s3s + s3s-fs, SigV4-authenticated, stored in a
//! directory) and an emulator of the Amazon OpenSearch Service endpoints ossnap uses (snapshot
//! API, repositories, a few index APIs, the security plugin's role mappings, SigV4/FGAC/PassRole
//! authorisation), which writes snapshot repositories into that S3 server in the layout
//! OpenSearch 2.x writes (through aws-sdk-s3, as repository-s3 would) and restores from them.
//!
//! Tests drive faults and inspect the request log through [`Control`] or the unauthenticated
//! loopback-only `/_local/...` endpoints on the OpenSearch port (never logged, never faulted):
//!
//! | endpoint | body | effect |
//! |---|---|---|
//! | `POST /_local/faults` | a [`Fault`] or an array of them | the next `count` requests matching `method` and `path` (exact, or prefix ending in `*`) get `status`/`body`; with `after_accept` the operation is performed first |
//! | `DELETE /_local/faults` | | removes pending faults |
//! | `PUT /_local/latency` | `{"latency_ms": N}` | added before every OpenSearch request |
//! | `POST /_local/next-snapshot` | `{"outcome":"never_finishes"}`, `{"outcome":"failed","reason":".."}`, `{"outcome":"partial"}` | how the next snapshot ends |
//! | `POST /_local/automated-snapshot` | `{"duration_ms": N}` | a `cs-automated` snapshot runs for N ms |
//! | `POST /_local/indices/{index}/red` (`/green`) | | primaries unassigned: health red, snapshots FAILED (PARTIAL with `partial`) |
//! | `GET /_local/requests` | | `[{"method","path","query","status","error_type"}]` |
//! | `DELETE /_local/requests` | | clears the log |

mod blob_store;
mod cluster;
mod control;
mod date_math;
mod errors;
mod http_server;
mod ids;
mod opensearch;
mod repository_writer;
mod s3_server;
mod security;
mod sigv4;
mod snapshots;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use control::{AutomatedSnapshot, Control, Fault, LoggedRequest, SnapshotOutcome};

/// Static AWS credentials: the ones the S3 server accepts and the OpenSearch SigV4 check expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl Credentials {
    /// Fixed development credentials (the shape of AWS's documentation examples).
    pub fn development() -> Self {
        Credentials {
            access_key_id: "AKIAOSSNAPLOCAL00001".to_owned(),
            secret_access_key: "ossnap-local-development-secret-key-0001".to_owned(),
            session_token: None,
        }
    }
}

/// How the OpenSearch endpoint authenticates callers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// AWS Signature Version 4 with service name `es`, as on a domain with IAM authentication.
    #[default]
    SigV4,
    /// HTTP basic authentication against one internal user (FGAC's internal user database).
    Basic { username: String, password: String },
    /// No authentication; every request acts as `principal_arn`.
    None,
}

/// Which OpenSearch generation's status codes to return where they differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// OpenSearch 1.x/2.x: `concurrent_snapshot_execution_exception` is 503.
    #[default]
    V2,
    /// OpenSearch 3.x: `concurrent_snapshot_execution_exception` is 409.
    V3,
    /// Elasticsearch 7.7 (Amazon OpenSearch Service still runs 7.x domains): a comma-separated
    /// DELETE is read as one snapshot name (multi-name deletion came in 7.8).
    Es77,
    /// Elasticsearch 6.8: as [`Profile::Es77`], and the snapshot `metadata` field is dropped
    /// silently (it came in 7.3).
    Es68,
}

impl Profile {
    pub(crate) fn version(self) -> (&'static str, i64) {
        // OpenSearch version ids are Elasticsearch-style ids with bit 27 set (2.0.1 -> 136217927).
        match self {
            Profile::V2 => ("2.17.0", 134_217_728 + 2_170_099),
            Profile::V3 => ("3.1.0", 134_217_728 + 3_010_099),
            Profile::Es77 => ("7.7.1", 7_070_199),
            Profile::Es68 => ("6.8.23", 6_082_399),
        }
    }

    /// Whether `DELETE _snapshot/<repo>/a,b` deletes two snapshots (ES 7.8 and later, OpenSearch).
    pub(crate) fn deletes_name_lists(self) -> bool {
        !matches!(self, Profile::Es77 | Profile::Es68)
    }

    /// Whether a snapshot keeps the `metadata` it was created with (ES 7.3 and later, OpenSearch).
    pub(crate) fn keeps_metadata(self) -> bool {
        self != Profile::Es68
    }
}

#[derive(Debug, Clone)]
pub struct LocalStackConfig {
    /// s3s-fs root (`s3/`) and the emulator's cluster state (`opensearch-state.json`); a restart on
    /// the same directory finds buckets, repositories, snapshots, indices and mappings again.
    pub data_dir: PathBuf,
    /// 0 picks a free port.
    pub opensearch_port: u16,
    /// 0 picks a free port.
    pub s3_port: u16,
    pub credentials: Credentials,
    pub region: String,
    /// Created at start if missing.
    pub bucket: String,
    pub auth: AuthMode,
    /// Who the SigV4 credentials belong to.
    pub principal_arn: String,
    /// `role_arn` values the caller may `iam:PassRole`; `None` allows any role.
    pub passable_roles: Option<Vec<String>>,
    pub profile: Profile,
    /// How long a snapshot stays IN_PROGRESS before it is written and finalised.
    pub snapshot_duration: Duration,
}

pub const DEFAULT_BUCKET: &str = "ossnap-local";
pub const DEFAULT_PRINCIPAL: &str = "arn:aws:iam::123456789012:role/ossnap-local";

impl LocalStackConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        LocalStackConfig {
            data_dir: data_dir.into(),
            opensearch_port: 9200,
            s3_port: 9000,
            credentials: Credentials::development(),
            region: "us-east-1".to_owned(),
            bucket: DEFAULT_BUCKET.to_owned(),
            auth: AuthMode::SigV4,
            principal_arn: DEFAULT_PRINCIPAL.to_owned(),
            passable_roles: None,
            profile: Profile::V2,
            snapshot_duration: Duration::from_secs(2),
        }
    }

    /// Random ports, the fixed development credentials and short snapshots.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        LocalStackConfig {
            opensearch_port: 0,
            s3_port: 0,
            snapshot_duration: Duration::from_millis(200),
            ..LocalStackConfig::new(data_dir)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding {what} on 127.0.0.1:{port}: {source}")]
    Bind {
        what: &'static str,
        port: u16,
        source: std::io::Error,
    },
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path}: {reason}")]
    State { path: PathBuf, reason: String },
    #[error("S3 file system: {0}")]
    S3Fs(String),
    #[error("creating bucket {bucket}: {reason}")]
    CreateBucket { bucket: String, reason: String },
}

/// Both servers, running on 127.0.0.1 until [`LocalStack::shutdown`] (or drop).
pub struct LocalStack {
    config: LocalStackConfig,
    opensearch_address: SocketAddr,
    s3_address: SocketAddr,
    emulator: Arc<opensearch::Emulator>,
    servers: Vec<http_server::RunningServer>,
}

impl LocalStack {
    pub async fn start(config: LocalStackConfig) -> Result<LocalStack, Error> {
        let s3_root = config.data_dir.join("s3");
        std::fs::create_dir_all(&s3_root).map_err(|source| Error::DataDir {
            path: s3_root.clone(),
            source,
        })?;
        let s3 = s3_server::start(&s3_root, config.s3_port, &config.credentials).await?;
        let s3_endpoint = format!("http://{}", s3.address);
        let client = blob_store::client(&s3_endpoint, &config.region, &config.credentials);
        blob_store::ensure_bucket(&client, &config.bucket).await?;

        let emulator = Arc::new(opensearch::Emulator::load(config.clone(), client)?);
        let opensearch =
            http_server::serve_opensearch(emulator.clone(), config.opensearch_port).await?;
        Ok(LocalStack {
            opensearch_address: opensearch.address,
            s3_address: s3.address,
            config,
            emulator,
            servers: vec![opensearch, s3],
        })
    }

    pub fn opensearch_endpoint(&self) -> String {
        format!("http://{}", self.opensearch_address)
    }

    pub fn s3_endpoint(&self) -> String {
        format!("http://{}", self.s3_address)
    }

    pub fn config(&self) -> &LocalStackConfig {
        &self.config
    }

    pub fn control(&self) -> &Control {
        &self.emulator.control
    }

    /// The environment ossnap's functions (and the AWS SDKs) need to talk to this stack:
    /// `OPENSEARCH_ENDPOINT`, `AWS_ENDPOINT_URL_S3`, the credentials, `AWS_REGION`,
    /// `SNAPSHOT_BUCKET`. The binary prints these as `export` lines.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        let credentials = &self.config.credentials;
        let mut environment = vec![
            ("OPENSEARCH_ENDPOINT", self.opensearch_endpoint()),
            ("AWS_ENDPOINT_URL_S3", self.s3_endpoint()),
            ("AWS_ACCESS_KEY_ID", credentials.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY",
                credentials.secret_access_key.clone(),
            ),
        ];
        if let Some(token) = &credentials.session_token {
            environment.push(("AWS_SESSION_TOKEN", token.clone()));
        }
        environment.push(("AWS_REGION", self.config.region.clone()));
        environment.push(("SNAPSHOT_BUCKET", self.config.bucket.clone()));
        environment
    }

    /// An aws-sdk-s3 client for the embedded S3 server (path-style, the configured credentials),
    /// for tests that look at what the emulator wrote.
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        blob_store::client(
            &self.s3_endpoint(),
            &self.config.region,
            &self.config.credentials,
        )
    }

    /// Creates a few sample indices with documents (the binary's `--seed`); indices that already
    /// exist are left alone.
    pub fn seed_sample_indices(&self) -> Result<(), Error> {
        self.emulator.seed_sample_indices()
    }

    /// Stops accepting connections, aborts running snapshots and waits for open connections to
    /// finish (bounded), leaving the data directory in place.
    pub async fn shutdown(self) {
        self.emulator.abort_running_snapshots();
        for server in self.servers {
            server.stop().await;
        }
    }
}
