//! A small client for the parts of the OpenSearch API that ossnap uses.
//!
//! Built once per process and reused across invocations. Every call is logged as one line
//! (method, path, status, error type, duration) and never with its headers.

pub mod auth;
pub mod classify;
mod indices;
pub mod model;

use std::sync::Arc;
use std::time::{Duration, Instant};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

pub use auth::{Auth, SigV4Signer};
pub use indices::{SnapshotIndexSize, VersionedSnapshot};
pub use model::{
    CatAllocation, CatIndex, ClusterHealth, FileStats, IndexHealth, IndexRecovery,
    RepositoryDefinition, ShardCounts, ShardRecovery, ShardsStats, SnapshotInfo, SnapshotStats,
    SnapshotStatus, VersionInfo,
};

use crate::clock::Clock;
use crate::config::{var, AuthSettings, Settings};
use crate::error::{Error, ErrorKind, Result};

/// The longest one call may take, connection included. Each function's Lambda timeout is
/// derived from it (see [`crate::budget`]), so that a hung domain becomes an `Unavailable` error
/// that Step Functions can retry rather than a killed function.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Below the ~20 s after which load balancers drop idle connections, so a pooled connection is
/// never reused after the server has closed it.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Path segments keep only unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One encoded path segment (a repository or snapshot name).
fn segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// A comma-separated list of names as one path segment; `*` stays a wildcard.
fn name_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| n.split('*').map(segment).collect::<Vec<_>>().join("*"))
        .collect::<Vec<_>>()
        .join(",")
}

fn http_client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls_config())
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build()
        .map_err(|e| Error::config(format!("cannot build the HTTP client: {e}")))
}

/// Client for one OpenSearch domain.
#[derive(Clone, Debug)]
pub struct OpenSearch {
    http: reqwest::Client,
    endpoint: Arc<str>,
    auth: Auth,
    clock: Clock,
}

impl OpenSearch {
    pub fn new(endpoint: &str, auth: Auth, clock: Clock) -> Result<OpenSearch> {
        let parsed = url::Url::parse(endpoint).map_err(|e| {
            Error::config(format!(
                "{}={endpoint:?} is not a URL ({e}): set it to the domain endpoint, e.g. https://vpc-logs-abc123.eu-west-1.es.amazonaws.com",
                var::ENDPOINT
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(Error::config(format!(
                "{}={endpoint:?} must be an http(s) URL with a host",
                var::ENDPOINT
            )));
        }
        Ok(OpenSearch {
            http: http_client(REQUEST_TIMEOUT)?,
            endpoint: endpoint.trim_end_matches('/').into(),
            auth,
            clock,
        })
    }

    /// The same client with another per-call timeout (tests use a short one to meet a call that
    /// outlasts it without waiting 30 s).
    pub fn with_request_timeout(self, timeout: Duration) -> Result<OpenSearch> {
        Ok(OpenSearch {
            http: http_client(timeout)?,
            ..self
        })
    }

    /// The client the settings describe; SigV4 credentials come from aws-config's default
    /// provider chain, which is only consulted when a request is signed.
    pub async fn from_settings(settings: &Settings, clock: Clock) -> Result<OpenSearch> {
        OpenSearch::from_settings_with(settings, clock, None).await
    }

    /// Like [`Self::from_settings`], signing with `credentials` when given (the command line's
    /// chosen profile) instead of the default chain.
    pub async fn from_settings_with(
        settings: &Settings,
        clock: Clock,
        credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    ) -> Result<OpenSearch> {
        let endpoint = settings.endpoint.as_deref().ok_or_else(|| {
            Error::config(format!(
                "{} is not set: set it to the domain endpoint, e.g. https://vpc-logs-abc123.eu-west-1.es.amazonaws.com",
                var::ENDPOINT
            ))
        })?;
        let auth = match &settings.auth {
            AuthSettings::SigV4 => {
                let region = settings.region.clone().ok_or_else(|| {
                    Error::config(format!(
                        "{} is not set: SigV4 signing needs the domain's region",
                        var::REGION
                    ))
                })?;
                let credentials = match credentials {
                    Some(credentials) => credentials,
                    None => aws_credential_types::provider::SharedCredentialsProvider::new(
                        aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                            .region(aws_config::Region::new(region.clone()))
                            .build()
                            .await,
                    ),
                };
                Auth::SigV4(SigV4Signer::for_opensearch(credentials, region))
            }
            AuthSettings::Basic { username, password } => Auth::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            AuthSettings::None => Auth::None,
        };
        OpenSearch::new(endpoint, auth, clock)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends one request and returns the parsed JSON body of a 2xx response (`null` if empty),
    /// or the classified error.
    pub async fn call(
        &self,
        method: http::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let started = Instant::now();
        let outcome = self.send(&method, path, query, body).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        match &outcome {
            Ok((status, _)) => tracing::info!(
                method = %method, path, status, duration_ms, "opensearch call"
            ),
            Err((status, error)) => tracing::warn!(
                method = %method, path, status = *status, error_type = error.kind().name(),
                duration_ms, "opensearch call failed"
            ),
        }
        match outcome {
            Ok((_, body)) if body.is_empty() => Ok(Value::Null),
            Ok((status, body)) => serde_json::from_slice(&body).map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("{method} {path} returned {status} with a body that is not JSON: {e}"),
                )
            }),
            Err((_, error)) => Err(error),
        }
    }

    async fn send(
        &self,
        method: &http::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> std::result::Result<(u16, Vec<u8>), (u16, Error)> {
        let (status, bytes) = self
            .exchange(method, path, query, body)
            .await
            .map_err(|error| (0, error))?;
        if (200..300).contains(&status) {
            Ok((status, bytes))
        } else {
            Err((
                status,
                classify::classify(status, method.as_str(), path, &bytes),
            ))
        }
    }

    /// Sends one request, authenticated as configured, and returns the status and body whatever
    /// the status (for conformance tests and diagnostics); only a request that cannot be built,
    /// sent or read to its end is an error.
    pub async fn exchange(
        &self,
        method: &http::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(u16, Vec<u8>)> {
        let mut url = format!("{}{}", self.endpoint, path);
        if !query.is_empty() {
            let pairs: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", segment(k), segment(v)))
                .collect();
            url.push('?');
            url.push_str(&pairs.join("&"));
        }
        let payload = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut builder = http::Request::builder().method(method.clone()).uri(&url);
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let mut request = builder
            .body(payload)
            .map_err(|e| Error::config(format!("cannot build the request {method} {url}: {e}")))?;
        self.auth.apply(&mut request, self.clock.now()).await?;
        let request = reqwest::Request::try_from(request)
            .map_err(|e| Error::config(format!("cannot build the request {method} {url}: {e}")))?;
        let response = self.http.execute(request).await.map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "failed"
            };
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{method} {path} {what}: {}; check that {} is reachable from the function (VPC, security group on 443)",
                    error_chain(&e),
                    self.endpoint
                ),
            )
        })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{method} {path}: the response was cut off: {}",
                    error_chain(&e)
                ),
            )
        })?;
        Ok((status, bytes.to_vec()))
    }

    // ---- Repositories ----

    /// The repository's definition, or `None` when it is not registered.
    pub async fn get_repository(&self, repository: &str) -> Result<Option<RepositoryDefinition>> {
        let path = format!("/_snapshot/{}", segment(repository));
        match self.call(http::Method::GET, &path, &[], None).await {
            Ok(body) => {
                let definition = body.get(repository).cloned().ok_or_else(|| {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("GET {path} answered without the repository [{repository}]"),
                    )
                })?;
                serde_json::from_value(definition).map(Some).map_err(|e| {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("GET {path} answered an unreadable repository definition: {e}"),
                    )
                })
            }
            Err(e) if e.kind() == ErrorKind::RepositoryMissing => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Registers (or updates) the repository without verifying it; see [`Self::verify_repository`].
    pub async fn put_repository(
        &self,
        repository: &str,
        definition: &RepositoryDefinition,
    ) -> Result<()> {
        let path = format!("/_snapshot/{}", segment(repository));
        let body = serde_json::to_value(definition).expect("a repository definition serializes");
        self.call(
            http::Method::PUT,
            &path,
            &[("verify", "false")],
            Some(&body),
        )
        .await
        .map(drop)
    }

    /// Asks every node to write to the repository; returns how many nodes could.
    pub async fn verify_repository(&self, repository: &str) -> Result<usize> {
        let path = format!("/_snapshot/{}/_verify", segment(repository));
        let body = self.call(http::Method::POST, &path, &[], None).await?;
        Ok(body
            .get("nodes")
            .and_then(Value::as_object)
            .map_or(0, |nodes| nodes.len()))
    }

    // ---- Snapshots ----

    /// Starts a snapshot without waiting for it (`wait_for_completion=false`).
    pub async fn create_snapshot(
        &self,
        repository: &str,
        snapshot: &str,
        body: &Value,
    ) -> Result<()> {
        let path = format!("/_snapshot/{}/{}", segment(repository), segment(snapshot));
        self.call(
            http::Method::PUT,
            &path,
            &[("wait_for_completion", "false")],
            Some(body),
        )
        .await
        .map(drop)
    }

    /// Snapshots by name (`_all` for every one). `verbose=false` skips reading each snapshot's
    /// metadata from S3: names, state and indices only.
    pub async fn get_snapshots(
        &self,
        repository: &str,
        names: &[&str],
        verbose: bool,
    ) -> Result<Vec<SnapshotInfo>> {
        self.list_snapshots(repository, names, verbose, false).await
    }

    /// Like [`Self::get_snapshots`] with `ignore_unavailable=true`: a name that has just gone,
    /// or a snapshot whose metadata cannot be read, is left out instead of failing the call.
    pub async fn find_snapshots(
        &self,
        repository: &str,
        names: &[&str],
        verbose: bool,
    ) -> Result<Vec<SnapshotInfo>> {
        self.list_snapshots(repository, names, verbose, true).await
    }

    async fn list_snapshots(
        &self,
        repository: &str,
        names: &[&str],
        verbose: bool,
        ignore_unavailable: bool,
    ) -> Result<Vec<SnapshotInfo>> {
        let path = format!("/_snapshot/{}/{}", segment(repository), name_list(names));
        let mut query = Vec::with_capacity(2);
        if !verbose {
            query.push(("verbose", "false"));
        }
        if ignore_unavailable {
            query.push(("ignore_unavailable", "true"));
        }
        let body = self.call(http::Method::GET, &path, &query, None).await?;
        parse_list::<model::SnapshotList>(&path, body).map(|list| list.snapshots)
    }

    /// One snapshot, verbose.
    pub async fn get_snapshot(&self, repository: &str, snapshot: &str) -> Result<SnapshotInfo> {
        self.get_snapshots(repository, &[snapshot], true)
            .await?
            .into_iter()
            .find(|s| s.snapshot == snapshot)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::SnapshotMissing,
                    format!("[{repository}:{snapshot}] is missing"),
                )
            })
    }

    /// Running snapshots across the cluster, in every repository (AWS's `cs-automated` too).
    pub async fn running_snapshots(&self) -> Result<Vec<SnapshotStatus>> {
        let path = "/_snapshot/_status";
        let body = self.call(http::Method::GET, path, &[], None).await?;
        parse_list::<model::StatusList>(path, body).map(|list| list.snapshots)
    }

    /// Per-shard status of one snapshot. Costly on a finished snapshot (OpenSearch reads every
    /// shard's metadata from S3): ask only about running ones.
    pub async fn snapshot_status(
        &self,
        repository: &str,
        snapshot: &str,
    ) -> Result<SnapshotStatus> {
        let path = format!(
            "/_snapshot/{}/{}/_status",
            segment(repository),
            segment(snapshot)
        );
        let body = self.call(http::Method::GET, &path, &[], None).await?;
        parse_list::<model::StatusList>(&path, body)?
            .snapshots
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::SnapshotMissing,
                    format!("[{repository}:{snapshot}] is missing from its _status"),
                )
            })
    }

    /// Deletes snapshots in one request (OpenSearch accepts a comma-separated list).
    pub async fn delete_snapshots(&self, repository: &str, names: &[&str]) -> Result<()> {
        let path = format!("/_snapshot/{}/{}", segment(repository), name_list(names));
        self.call(http::Method::DELETE, &path, &[], None)
            .await
            .map(drop)
    }

    pub async fn cluster_health(&self) -> Result<ClusterHealth> {
        let path = "/_cluster/health";
        let body = self.call(http::Method::GET, path, &[], None).await?;
        serde_json::from_value(body).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("GET {path} answered an unreadable body: {e}"),
            )
        })
    }
}

fn parse_list<T: serde::de::DeserializeOwned>(path: &str, body: Value) -> Result<T> {
    serde_json::from_value(body).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("GET {path} answered an unreadable body: {e}"),
        )
    })
}

/// The snapshot body ossnap sends: no global state, never partial, our metadata.
pub fn snapshot_body(indices: &str, metadata: Value) -> Value {
    json!({
        "indices": indices,
        "ignore_unavailable": false,
        "include_global_state": false,
        "partial": false,
        "metadata": metadata,
    })
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// rustls with ring and the bundled web PKI roots: one small TLS stack (these functions link no
/// AWS SDK client), no CPU-jitter entropy collection and no scan of the system's certificate
/// directories at start.
fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_as_single_segments() {
        assert_eq!(segment("ossnap-20261128-020000"), "ossnap-20261128-020000");
        assert_eq!(segment("a:b&c"), "a%3Ab%26c");
        assert_eq!(name_list(&["a", "b.c"]), "a,b.c");
        assert_eq!(name_list(&["ossnap-*"]), "ossnap-*");
    }

    #[test]
    fn endpoints_must_be_http_urls() {
        for bad in ["search.example.com", "ftp://x", "https://"] {
            let error = OpenSearch::new(bad, Auth::None, Clock::system()).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::ConfigError, "{bad}");
            assert!(error.message().contains("OPENSEARCH_ENDPOINT"), "{error}");
        }
        let client =
            OpenSearch::new("https://search.example.com/", Auth::None, Clock::system()).unwrap();
        assert_eq!(client.endpoint(), "https://search.example.com");
    }
}
