//! A repository in an Azure Blob Storage container, as OpenSearch's `repository-azure` plugin
//! writes it (the same layout as in S3, under the repository's `base_path`), through the
//! `object_store` crate's Azure client: Shared Key or SAS signing, Put Blob for small blobs and
//! Put Block / Put Block List for large ones.
//!
//! Every HTTP request goes through a counting layer ([`CountingConnector`]), so the reported
//! requests are the ones sent, retries included.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::BytesMut;
use futures::stream::{StreamExt, TryStreamExt};
use object_store::azure::{MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use ossnap_core::{Error, ErrorKind, Result};

use crate::{Blob, BlobSink, BlobStore, ByteStream, Counters, ReadRange, Request, RequestCounts};

/// Blobs up to this size go in one Put Blob; larger ones in blocks of this size. AzCopy's
/// default block; 50,000 blocks of it hold 400 GiB, more than any Lucene segment file.
pub const DEFAULT_BLOCK_SIZE: usize = 8 * 1024 * 1024;
/// Blocks of one blob in flight at once: memory per blob stays below this many blocks plus one.
pub const DEFAULT_BLOCK_CONCURRENCY: usize = 4;

/// Where the repository is: a storage account, a container and the base path in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureLocation {
    pub account: String,
    pub container: String,
    pub base_path: String,
}

impl fmt::Display for AzureLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "azure://{}/{}/{}",
            self.account,
            self.container,
            self.base_path.trim_matches('/')
        )
    }
}

/// How requests are signed. Neither secret is ever shown by `Debug` or in an error.
#[derive(Clone, PartialEq, Eq)]
pub enum AzureCredential {
    /// The storage account's key (Shared Key).
    AccountKey(String),
    /// A shared access signature: the query string, with or without its leading `?`.
    SasToken(String),
}

impl fmt::Debug for AzureCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AzureCredential::AccountKey(_) => "AccountKey(<redacted>)",
            AzureCredential::SasToken(_) => "SasToken(<redacted>)",
        })
    }
}

/// Everything needed to reach one repository in Azure Blob Storage.
#[derive(Debug, Clone)]
pub struct AzureSettings {
    pub location: AzureLocation,
    pub credential: AzureCredential,
    /// The account's blob endpoint, when not `https://<account>.blob.core.windows.net`: a private
    /// endpoint, or Azurite (`http://127.0.0.1:10000/devstoreaccount1`).
    pub endpoint: Option<String>,
    pub block_size: usize,
    pub block_concurrency: usize,
}

impl AzureSettings {
    pub fn new(location: AzureLocation, credential: AzureCredential) -> AzureSettings {
        AzureSettings {
            location,
            credential,
            endpoint: None,
            block_size: DEFAULT_BLOCK_SIZE,
            block_concurrency: DEFAULT_BLOCK_CONCURRENCY,
        }
    }
}

/// One repository in an Azure Blob Storage container.
#[derive(Debug, Clone)]
pub struct AzureStore {
    store: Arc<PrefixStore<MicrosoftAzure>>,
    location: AzureLocation,
    block_size: usize,
    block_concurrency: usize,
    counters: Arc<Counters>,
}

impl AzureStore {
    /// A client for the repository; nothing is sent until the first call.
    pub fn connect(settings: AzureSettings) -> Result<AzureStore> {
        let AzureSettings {
            location,
            credential,
            endpoint,
            block_size,
            block_concurrency,
        } = settings;
        let counters = Arc::<Counters>::default();
        let mut builder = MicrosoftAzureBuilder::new()
            .with_account(&location.account)
            .with_container_name(&location.container)
            .with_http_connector(CountingConnector {
                counters: counters.clone(),
            });
        builder = match credential {
            AzureCredential::AccountKey(key) => builder.with_access_key(key),
            AzureCredential::SasToken(token) => builder.with_sas_authorization(sas_pairs(&token)),
        };
        if let Some(endpoint) = endpoint {
            builder = builder
                .with_allow_http(plain_http_allowed(&endpoint)?)
                .with_endpoint(endpoint);
        }
        let client = builder.build().map_err(|e| {
            Error::new(
                ErrorKind::ConfigError,
                format!("cannot configure the Azure Blob client for {location}: {e}"),
            )
        })?;
        let base = Path::parse(location.base_path.trim_matches('/')).map_err(|e| {
            Error::new(
                ErrorKind::ConfigError,
                format!(
                    "base path `{}` is not a valid blob path: {e}",
                    location.base_path
                ),
            )
        })?;
        Ok(AzureStore {
            store: Arc::new(PrefixStore::new(client, base)),
            location,
            block_size: block_size.max(1),
            block_concurrency: block_concurrency.max(1),
            counters,
        })
    }

    pub fn azure_location(&self) -> &AzureLocation {
        &self.location
    }

    fn path(&self, blob: &str) -> Result<Path> {
        Path::parse(blob).map_err(|e| {
            Error::new(
                ErrorKind::ConfigError,
                format!("`{blob}` is not a valid blob name: {e}"),
            )
        })
    }

    /// The outcome of one block's upload task (a panic in it goes on as a panic here).
    fn block_sent(
        &self,
        blob: &str,
        sent: std::result::Result<object_store::Result<()>, tokio::task::JoinError>,
    ) -> Result<()> {
        sent.unwrap_or_else(|stopped| std::panic::resume_unwind(stopped.into_panic()))
            .map_err(|e| self.error("write", blob, e))
    }

    fn error(&self, action: &str, blob: &str, error: object_store::Error) -> Error {
        let at = format!("{}/{blob}", self.location);
        let account = &self.location.account;
        let message = match classify(&error) {
            ErrorKind::AuthError => format!(
                "Azure Blob Storage refused account `{account}` ({action} {at}): {error}; check AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN for that account (a SAS needs read and list to verify; read, list, create and write to copy), and AZURE_STORAGE_ACCOUNT"
            ),
            ErrorKind::ConfigError => format!(
                "container `{}` does not exist in account `{account}`: create it, or set AZURE_STORAGE_CONTAINER to one that exists",
                self.location.container
            ),
            ErrorKind::Throttled => format!("Azure Blob Storage is throttling account `{account}` ({action} {at}): {error}; retry later, with less concurrency"),
            _ => format!("cannot {action} {at}: {error}; retry later, and check that AZURE_STORAGE_ENDPOINT (or the public endpoint) is reachable"),
        };
        Error::new(classify(&error), message)
    }

    /// Every blob under the folder `folder` (empty or ending in `/`), recursively.
    async fn list_folder(&self, folder: &str) -> Result<Vec<Blob>> {
        let prefix = self.folder_path(folder)?;
        self.store
            .list(prefix.as_ref())
            .map(|meta| {
                let meta = meta.map_err(|e| self.error("list", folder, e))?;
                Ok(Blob {
                    name: meta.location.to_string(),
                    size: meta.size,
                })
            })
            .try_collect()
            .await
    }

    fn folder_path(&self, folder: &str) -> Result<Option<Path>> {
        let folder = folder.trim_end_matches('/');
        if folder.is_empty() {
            Ok(None)
        } else {
            self.path(folder).map(Some)
        }
    }
}

#[async_trait]
impl BlobStore for AzureStore {
    fn location(&self) -> String {
        self.location.to_string()
    }

    /// Blob names may be listed by any string prefix, as in S3; Azure's listing (through
    /// `object_store`) goes by folder, so a prefix that ends inside a name lists that folder's
    /// own level and descends only into the sub-folders that match.
    async fn list(&self, prefix: &str) -> Result<Vec<Blob>> {
        let (folder, rest) = match prefix.rfind('/') {
            Some(slash) => prefix.split_at(slash + 1),
            None => ("", prefix),
        };
        if rest.is_empty() {
            return self.list_folder(folder).await;
        }
        let level = self
            .store
            .list_with_delimiter(self.folder_path(folder)?.as_ref())
            .await
            .map_err(|e| self.error("list", prefix, e))?;
        let mut blobs: Vec<Blob> = level
            .objects
            .into_iter()
            .map(|meta| Blob {
                name: meta.location.to_string(),
                size: meta.size,
            })
            .filter(|blob| blob.name.starts_with(prefix))
            .collect();
        for sub_folder in level.common_prefixes {
            let sub_folder = format!("{sub_folder}/");
            if sub_folder.starts_with(prefix) {
                blobs.extend(self.list_folder(&sub_folder).await?);
            }
        }
        Ok(blobs)
    }

    async fn open(&self, blob: &str, range: ReadRange) -> Result<Option<ByteStream>> {
        let path = self.path(blob)?;
        let options = GetOptions {
            range: match range {
                ReadRange::Whole => None,
                ReadRange::From(offset) => Some(GetRange::Offset(offset)),
            },
            ..GetOptions::default()
        };
        let result = match self.store.get_opts(&path, options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error("read", blob, e)),
        };
        let this = self.clone();
        let blob = blob.to_owned();
        let chunks = result.into_stream().map(move |chunk| match chunk {
            Ok(chunk) => {
                this.counters.read(chunk.len());
                Ok(chunk)
            }
            Err(e) => Err(this.error("read", &blob, e)),
        });
        Ok(Some(Box::pin(chunks)))
    }

    fn requests(&self) -> RequestCounts {
        self.counters.snapshot()
    }
}

#[async_trait]
impl BlobSink for AzureStore {
    /// Small blobs are buffered and sent with one Put Blob. Large ones are cut into blocks of
    /// `block_size`, at most `block_concurrency` of them uploading at once, and committed with
    /// Put Block List only once all arrived: an interrupted upload leaves no blob (Azure drops
    /// uncommitted blocks after a week).
    async fn write(&self, blob: &str, size: u64, mut body: ByteStream) -> Result<()> {
        let path = self.path(blob)?;
        let mut received = 0u64;
        if size <= self.block_size as u64 {
            let mut buffer = BytesMut::with_capacity(size as usize);
            while let Some(chunk) = body.try_next().await? {
                received += chunk.len() as u64;
                check_length(blob, received, size, false)?;
                buffer.extend_from_slice(&chunk);
            }
            check_length(blob, received, size, true)?;
            self.store
                .put(&path, PutPayload::from(buffer.freeze()))
                .await
                .map_err(|e| self.error("write", blob, e))?;
            self.counters.written(size as usize);
            return Ok(());
        }

        let mut upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.error("write", blob, e))?;
        // Each block uploads in a task of its own, so that blocks go out while the body is still
        // being read (futures merely held here would not move until awaited); dropping the set
        // on failure aborts them.
        let mut in_flight = tokio::task::JoinSet::new();
        let mut block = BytesMut::with_capacity(self.block_size);
        let result: Result<()> = async {
            loop {
                let chunk = body.try_next().await?;
                let finished = chunk.is_none();
                if let Some(mut chunk) = chunk {
                    received += chunk.len() as u64;
                    check_length(blob, received, size, false)?;
                    while !chunk.is_empty() {
                        let take = chunk.len().min(self.block_size - block.len());
                        block.extend_from_slice(&chunk.split_to(take));
                        if block.len() == self.block_size {
                            let full = std::mem::replace(
                                &mut block,
                                BytesMut::with_capacity(self.block_size),
                            );
                            in_flight.spawn(upload.put_part(PutPayload::from(full.freeze())));
                        }
                        while in_flight.len() >= self.block_concurrency {
                            if let Some(sent) = in_flight.join_next().await {
                                self.block_sent(blob, sent)?;
                            }
                        }
                    }
                }
                if finished {
                    break;
                }
            }
            check_length(blob, received, size, true)?;
            if !block.is_empty() {
                in_flight.spawn(upload.put_part(PutPayload::from(block.split().freeze())));
            }
            while let Some(sent) = in_flight.join_next().await {
                self.block_sent(blob, sent)?;
            }
            upload
                .complete()
                .await
                .map_err(|e| self.error("write", blob, e))?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                self.counters.written(size as usize);
                Ok(())
            }
            Err(error) => {
                drop(in_flight);
                let _ = upload.abort().await;
                Err(error)
            }
        }
    }
}

/// The kind of an Azure failure: by the Blob service's error code where the answer carries one,
/// by object_store's own kinds, and by the status line only for answers without a body.
fn classify(error: &object_store::Error) -> ErrorKind {
    if matches!(
        error,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) {
        return ErrorKind::AuthError;
    }
    let text = error.to_string();
    let has = |needle: &str| text.contains(needle);
    if has("ContainerNotFound") {
        ErrorKind::ConfigError
    } else if [
        "AuthenticationFailed",
        "AuthorizationFailure",
        "AuthorizationPermissionMismatch",
        "InvalidAuthenticationInfo",
        "NoAuthenticationInformation",
        "403 Forbidden",
        "401 Unauthorized",
    ]
    .iter()
    .any(|code| has(code))
    {
        ErrorKind::AuthError
    } else if has("ServerBusy") || has("503 Service Unavailable") {
        ErrorKind::Throttled
    } else {
        ErrorKind::Unavailable
    }
}

/// The source must give exactly the bytes it listed: a blob of the right name and the wrong
/// length would be a damaged repository.
fn check_length(blob: &str, received: u64, size: u64, finished: bool) -> Result<()> {
    if received > size || (finished && received != size) {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "{blob}: the source gave {received} bytes where it listed {size}; nothing was committed, run again"
            ),
        ));
    }
    Ok(())
}

/// A SAS token's query pairs (`sv=...&sig=...`, with or without a leading `?`).
fn sas_pairs(token: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(token.trim_start_matches('?').as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

/// Plain HTTP only to this machine (Azurite); anything else must be HTTPS, so a key or a SAS
/// never crosses a network in clear.
fn plain_http_allowed(endpoint: &str) -> Result<bool> {
    let url = url::Url::parse(endpoint).map_err(|e| {
        Error::new(
            ErrorKind::ConfigError,
            format!("AZURE_STORAGE_ENDPOINT `{endpoint}` is not a URL: {e}"),
        )
    })?;
    match url.scheme() {
        "https" => Ok(false),
        "http" if matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")) => Ok(true),
        "http" => Err(Error::new(
            ErrorKind::ConfigError,
            format!("AZURE_STORAGE_ENDPOINT `{endpoint}` uses plain http to another host: use https (plain http is allowed only on loopback, for Azurite)"),
        )),
        other => Err(Error::new(
            ErrorKind::ConfigError,
            format!("AZURE_STORAGE_ENDPOINT `{endpoint}` has scheme `{other}`: use https"),
        )),
    }
}

/// object_store's own HTTP client, with each request counted by kind before it is sent.
#[derive(Debug)]
struct CountingConnector {
    counters: Arc<Counters>,
}

impl HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(CountingService {
            inner: ReqwestConnector::default().connect(options)?,
            counters: self.counters.clone(),
        }))
    }
}

#[derive(Debug)]
struct CountingService {
    inner: HttpClient,
    counters: Arc<Counters>,
}

#[async_trait]
impl HttpService for CountingService {
    async fn call(&self, request: HttpRequest) -> std::result::Result<HttpResponse, HttpError> {
        self.counters.count(request_kind(
            request.method(),
            request.uri().query().unwrap_or(""),
        ));
        self.inner.execute(request).await
    }
}

/// The Blob service operation a request is, from its method and query string.
fn request_kind(method: &http::Method, query: &str) -> Request {
    let comp = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("comp="))
        .unwrap_or("");
    match (method.as_str(), comp) {
        ("GET", "list") => Request::List,
        ("GET", "") => Request::Get,
        ("PUT", "block") => Request::PutBlock,
        ("PUT", "blocklist") => Request::PutBlockList,
        ("PUT", "") => Request::Put,
        _ => Request::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_their_blob_service_operation() {
        let get = http::Method::GET;
        let put = http::Method::PUT;
        assert_eq!(
            request_kind(&get, "restype=container&comp=list&prefix=a"),
            Request::List
        );
        assert_eq!(request_kind(&get, ""), Request::Get);
        assert_eq!(
            request_kind(&put, "comp=block&blockid=AAAA"),
            Request::PutBlock
        );
        assert_eq!(request_kind(&put, "comp=blocklist"), Request::PutBlockList);
        assert_eq!(request_kind(&put, ""), Request::Put);
        assert_eq!(request_kind(&http::Method::HEAD, ""), Request::Other);
    }

    #[test]
    fn plain_http_is_refused_beyond_this_machine() {
        assert!(plain_http_allowed("http://127.0.0.1:10000/devstoreaccount1").unwrap());
        assert!(!plain_http_allowed("https://acct.blob.core.windows.net").unwrap());
        let refused = plain_http_allowed("http://acct.blob.core.windows.net").unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ConfigError);
        assert!(refused.to_string().contains("use https"), "{refused}");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let key = AzureCredential::AccountKey("c2VjcmV0".into());
        let sas = AzureCredential::SasToken("sv=2022&sig=secret".into());
        assert_eq!(
            format!("{key:?} {sas:?}"),
            "AccountKey(<redacted>) SasToken(<redacted>)"
        );
    }

    #[test]
    fn a_sas_token_is_split_into_its_query_pairs() {
        assert_eq!(
            sas_pairs("?sv=2022-11-02&sig=a%2Bb"),
            vec![
                ("sv".to_string(), "2022-11-02".to_string()),
                ("sig".to_string(), "a+b".to_string())
            ]
        );
    }
}
