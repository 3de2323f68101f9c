//! ossnap's local stack: a real S3 server (s3s + s3s-fs, SigV4-authenticated, stored in a
//! directory) and an emulator of the Amazon OpenSearch Service endpoints ossnap uses (snapshot
//! API, repositories, a few index APIs, the security plugin's role mappings, SigV4/FGAC/PassRole
//! authorisation), which writes snapshot repositories into that S3 server in the layout
//! OpenSearch 2.x writes (through aws-sdk-s3, as repository-s3 would) and restores from them.
//! With `azure: true` the stack also runs Azurite (Azure Storage's emulator, see
//! [`LocalStack::azure`]), and the emulator reads and writes `type: azure` repositories in it as
//! repository-azure would.
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
//! | `PUT /_local/disk` | `{"available_bytes": N}` | the node's free disk in `_cat/allocation` |
//! | `GET /_local/requests` | | `[{"method","path","query","status","error_type"}]` |
//! | `DELETE /_local/requests` | | clears the log |

mod azurite;
mod blob_store;
mod child_process;
mod cluster;
mod control;
mod date_math;
mod engine;
mod errors;
mod http_server;
mod ids;
mod loopback_http;
mod millis;
mod opensearch;
mod real_node;
mod repository_writer;
mod running;
mod s3_server;
mod samples;
mod security;
mod sigv4;
mod snapshots;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use control::{AutomatedSnapshot, Control, Fault, LoggedRequest, SnapshotOutcome};
pub use engine::{Engine, OPENSEARCH_2_VERSION, OPENSEARCH_3_VERSION};

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

/// The Azure Blob service of a stack started with `azure: true`: Azurite, its well-known
/// development account, and the container the stack created. Its `Debug` leaves the key out.
#[derive(Clone, PartialEq, Eq)]
pub struct AzureEndpoint {
    pub account: String,
    /// The account's Shared Key, base64.
    pub key: String,
    /// `http://127.0.0.1:PORT/devstoreaccount1`: path-style, as Azurite serves the account.
    pub blob_endpoint: String,
    pub container: String,
}

impl std::fmt::Debug for AzureEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureEndpoint")
            .field("account", &self.account)
            .field("key", &"<redacted>")
            .field("blob_endpoint", &self.blob_endpoint)
            .field("container", &self.container)
            .finish()
    }
}

impl AzureEndpoint {
    /// An object_store client for the container, with the account's key, for tests that read or
    /// write blobs in Azurite independently of the emulator.
    pub fn object_store(&self) -> object_store::Result<object_store::azure::MicrosoftAzure> {
        object_store::azure::MicrosoftAzureBuilder::new()
            .with_account(&self.account)
            .with_access_key(&self.key)
            .with_endpoint(self.blob_endpoint.clone())
            .with_allow_http(true)
            .with_container_name(&self.container)
            .build()
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
    /// The emulator (default), or a real OpenSearch node writing its `fs` repository into the
    /// bucket's folder; `auth`, `principal_arn`, `passable_roles`, `profile` and
    /// `snapshot_duration` are the emulator's and do not apply to a real node.
    pub engine: Engine,
    /// Added before every S3 request (none by default): S3's own latency, for benchmarks.
    pub s3_latency: Duration,
    /// Also run Azurite (see [`LocalStack::azure`]), creating the container [`DEFAULT_CONTAINER`];
    /// the emulator's Azure client `default` then reaches it.
    pub azure: bool,
}

pub const DEFAULT_BUCKET: &str = "ossnap-local";
/// The Azure container a stack with `azure: true` creates.
pub const DEFAULT_CONTAINER: &str = "ossnap-local";
pub const DEFAULT_PRINCIPAL: &str = "arn:aws:iam::123456789012:role/ossnap-local";
/// The role the emulator lets callers pass when they register a repository.
pub const SNAPSHOT_ROLE: &str = "arn:aws:iam::123456789012:role/ossnap-snapshot";

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
            engine: Engine::Emulator,
            s3_latency: Duration::ZERO,
            azure: false,
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
    #[error("real OpenSearch node: {reason}")]
    RealNode { reason: String },
    #[error("Azurite: {reason}")]
    Azurite { reason: String },
}

/// What answers on the OpenSearch endpoint.
enum OpenSearchServer {
    Emulator {
        emulator: Arc<opensearch::Emulator>,
        server: http_server::RunningServer,
    },
    Real(real_node::RealNode),
}

/// Both servers, running on 127.0.0.1 until [`LocalStack::shutdown`] (or drop).
pub struct LocalStack {
    config: LocalStackConfig,
    opensearch_endpoint: String,
    s3_address: SocketAddr,
    opensearch: OpenSearchServer,
    s3: http_server::RunningServer,
    azurite: Option<azurite::Azurite>,
}

impl LocalStack {
    pub async fn start(config: LocalStackConfig) -> Result<LocalStack, Error> {
        let s3_root = config.data_dir.join("s3");
        std::fs::create_dir_all(&s3_root).map_err(|source| Error::DataDir {
            path: s3_root.clone(),
            source,
        })?;
        let s3 = s3_server::start(
            &s3_root,
            config.s3_port,
            &config.credentials,
            config.s3_latency,
        )
        .await?;
        let s3_endpoint = format!("http://{}", s3.address);
        let client = blob_store::s3::client(&s3_endpoint, &config.region, &config.credentials);
        blob_store::s3::ensure_bucket(&client, &config.bucket).await?;
        let azurite = if config.azure {
            Some(
                azurite::Azurite::start(&config.data_dir.join("azurite"), DEFAULT_CONTAINER)
                    .await?,
            )
        } else {
            None
        };
        let storage =
            blob_store::StorageClients::new(client, azurite.as_ref().map(azurite::Azurite::client));

        let opensearch = match config.engine {
            Engine::Emulator => {
                let emulator = Arc::new(opensearch::Emulator::load(config.clone(), storage)?);
                let server =
                    http_server::serve_opensearch(emulator.clone(), config.opensearch_port).await?;
                OpenSearchServer::Emulator { emulator, server }
            }
            engine => OpenSearchServer::Real(
                real_node::RealNode::start(
                    engine,
                    config.data_dir.join(engine.name()),
                    s3_root.join(&config.bucket),
                    config.opensearch_port,
                )
                .await?,
            ),
        };
        let opensearch_endpoint = match &opensearch {
            OpenSearchServer::Emulator { server, .. } => format!("http://{}", server.address),
            OpenSearchServer::Real(node) => node.endpoint(),
        };
        Ok(LocalStack {
            opensearch_endpoint,
            s3_address: s3.address,
            config,
            opensearch,
            s3,
            azurite,
        })
    }

    pub fn opensearch_endpoint(&self) -> String {
        self.opensearch_endpoint.clone()
    }

    pub fn engine(&self) -> Engine {
        match &self.opensearch {
            OpenSearchServer::Emulator { .. } => Engine::Emulator,
            OpenSearchServer::Real(node) => node.engine(),
        }
    }

    /// Where a real node's `fs` repository with `base_path` lies: the bucket's folder in the S3
    /// server, so that its blobs are the objects `s3://<bucket>/<base_path>/...`.
    pub fn repository_location(&self, base_path: Option<&str>) -> PathBuf {
        let bucket = self.config.data_dir.join("s3").join(&self.config.bucket);
        match base_path {
            Some(base_path) => bucket.join(base_path),
            None => bucket,
        }
    }

    pub fn s3_endpoint(&self) -> String {
        format!("http://{}", self.s3_address)
    }

    /// Azurite's Blob service, when the stack runs it (`azure: true`).
    pub fn azure(&self) -> Option<&AzureEndpoint> {
        self.azurite.as_ref().map(azurite::Azurite::endpoint)
    }

    /// Azurite's process id, when the stack runs it.
    pub fn azurite_pid(&self) -> Option<u32> {
        self.azurite.as_ref().and_then(azurite::Azurite::pid)
    }

    pub fn config(&self) -> &LocalStackConfig {
        &self.config
    }

    /// The emulator's fault injection and request log; `None` on a real node.
    pub fn control(&self) -> Option<&Control> {
        match &self.opensearch {
            OpenSearchServer::Emulator { emulator, .. } => Some(&emulator.control),
            OpenSearchServer::Real(_) => None,
        }
    }

    /// The environment every ossnap function needs to work against this stack, with the
    /// repository at `base_path` in the bucket: `OPENSEARCH_ENDPOINT`, `AWS_ENDPOINT_URL_S3`,
    /// the credentials, `AWS_REGION`, `SNAPSHOT_BUCKET` and `SNAPSHOT_BASE_PATH`; for the emulator
    /// `SNAPSHOT_ROLE_ARN` (it authenticates with SigV4 and checks PassRole), for a real node
    /// `OPENSEARCH_AUTH=none` (the integ-test distribution has no security plugin),
    /// `SNAPSHOT_REPOSITORY_TYPE=fs` and `SNAPSHOT_LOCATION`; with Azurite, `AZURE_STORAGE_ACCOUNT`,
    /// `AZURE_STORAGE_KEY`, `AZURE_STORAGE_CONTAINER` and `AZURE_STORAGE_ENDPOINT`. The binary
    /// prints these as exports.
    pub fn environment(&self, base_path: Option<&str>) -> Vec<(&'static str, String)> {
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
        if let Some(base_path) = base_path {
            environment.push(("SNAPSHOT_BASE_PATH", base_path.to_owned()));
        }
        match self.opensearch {
            OpenSearchServer::Emulator { .. } => {
                environment.push(("SNAPSHOT_ROLE_ARN", SNAPSHOT_ROLE.to_owned()));
            }
            OpenSearchServer::Real(_) => {
                environment.push(("OPENSEARCH_AUTH", "none".to_owned()));
                environment.push(("SNAPSHOT_REPOSITORY_TYPE", "fs".to_owned()));
                environment.push((
                    "SNAPSHOT_LOCATION",
                    self.repository_location(base_path).display().to_string(),
                ));
            }
        }
        if let Some(azure) = self.azure() {
            environment.push(("AZURE_STORAGE_ACCOUNT", azure.account.clone()));
            environment.push(("AZURE_STORAGE_KEY", azure.key.clone()));
            environment.push(("AZURE_STORAGE_CONTAINER", azure.container.clone()));
            environment.push(("AZURE_STORAGE_ENDPOINT", azure.blob_endpoint.clone()));
        }
        environment
    }

    /// An aws-sdk-s3 client for the embedded S3 server (path-style, the configured credentials),
    /// for tests that look at what the emulator wrote.
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        blob_store::s3::client(
            &self.s3_endpoint(),
            &self.config.region,
            &self.config.credentials,
        )
    }

    /// Creates a few sample indices with documents (the binary's `--seed`), on any engine;
    /// indices that already exist are left alone.
    pub async fn seed_sample_indices(&self) -> Result<(), Error> {
        for sample in &samples::SAMPLE_INDICES {
            self.seed(sample).await?;
        }
        Ok(())
    }

    /// Creates `name` with `shards` primaries and `documents` generated documents (as the sample
    /// indices have), unless it exists; for benchmarks that need a large index.
    pub async fn seed_index(&self, name: &str, shards: u32, documents: usize) -> Result<(), Error> {
        self.seed(&samples::SampleIndex {
            name,
            shards,
            documents,
        })
        .await
    }

    async fn seed(&self, sample: &samples::SampleIndex<'_>) -> Result<(), Error> {
        match &self.opensearch {
            OpenSearchServer::Emulator { emulator, .. } => emulator.seed_index(sample),
            OpenSearchServer::Real(node) => node.seed_index(sample).await,
        }
    }

    /// The real node's process id (its memory is measured by the benchmarks); `None` for the
    /// emulator, which runs in this process.
    pub fn opensearch_pid(&self) -> Option<u32> {
        match &self.opensearch {
            OpenSearchServer::Emulator { .. } => None,
            OpenSearchServer::Real(node) => node.pid(),
        }
    }

    /// Another emulated cluster (a second domain) with the same S3 server and bucket, and the
    /// same Azurite as its Azure client `default` when the stack runs it, its own state under
    /// `data_dir/<name>`, answering as `profile`: the other side of a restore into another
    /// domain (or from a copy in Azure), or of a version mismatch.
    pub async fn start_another_cluster(
        &self,
        name: &str,
        profile: Profile,
    ) -> Result<AnotherCluster, Error> {
        let mut config = self.config.clone();
        config.data_dir = self.config.data_dir.join(name);
        config.opensearch_port = 0;
        config.profile = profile;
        config.engine = Engine::Emulator;
        let storage = blob_store::StorageClients::new(
            self.s3_client(),
            self.azurite.as_ref().map(azurite::Azurite::client),
        );
        let emulator = Arc::new(opensearch::Emulator::load(config, storage)?);
        let server = http_server::serve_opensearch(emulator.clone(), 0).await?;
        Ok(AnotherCluster { emulator, server })
    }

    /// Stops accepting connections, aborts running snapshots (the emulator's) or stops the
    /// node, waits for open connections to finish (bounded), and stops Azurite, leaving the data
    /// directory in place.
    pub async fn shutdown(self) {
        match self.opensearch {
            OpenSearchServer::Emulator { emulator, server } => {
                emulator.abort_running_snapshots();
                server.stop().await;
            }
            OpenSearchServer::Real(node) => node.stop().await,
        }
        self.s3.stop().await;
        if let Some(azurite) = self.azurite {
            azurite.stop().await;
        }
    }
}

/// A second emulated cluster sharing a [`LocalStack`]'s S3 server (see
/// [`LocalStack::start_another_cluster`]); stopped when dropped.
pub struct AnotherCluster {
    emulator: Arc<opensearch::Emulator>,
    server: http_server::RunningServer,
}

impl AnotherCluster {
    pub fn opensearch_endpoint(&self) -> String {
        format!("http://{}", self.server.address)
    }

    pub fn control(&self) -> &Control {
        &self.emulator.control
    }

    pub async fn shutdown(self) {
        self.emulator.abort_running_snapshots();
        self.server.stop().await;
    }
}
