//! The emulator's repository storage, one module per kind of repository behind the small
//! [`Blobs`] interface: [`s3`] (aws-sdk-s3 against the embedded S3 server, as repository-s3 talks
//! to S3) and [`azure`] (the Blob service's REST API against Azurite, as repository-azure talks to
//! Azure). The rest of the emulator sees [`StorageClients`] (what a cluster is configured with),
//! [`BlobStore`] (one repository's blobs under its base_path, in the same layout for every kind)
//! and [`StoreError`] (a failure, worded as the plugin of its kind reports it).

pub(crate) mod azure;
pub(crate) mod s3;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

/// One bucket or container, addressed by whole keys.
#[async_trait]
pub(crate) trait Blobs: Send + Sync {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError>;
    /// `None` when the blob does not exist.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Keys starting with `prefix`, at `depth`.
    async fn list(&self, prefix: &str, depth: Depth) -> Result<Vec<String>, StoreError>;
    /// Deletes `keys`; a key that does not exist is not an error.
    async fn delete(&self, keys: &[String]) -> Result<(), StoreError>;
}

/// How far below the prefix's folder a listing reaches.
pub(crate) enum Depth {
    /// Blobs in the prefix's own folder only, as the plugins list a blob container (with the
    /// `/` delimiter).
    Folder,
    /// Blobs in every folder below too, as the plugins delete a blob container.
    Below,
}

/// A storage failure, as the repository plugin of its kind reports it.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum StoreError {
    /// repository-s3's `AmazonS3Exception`.
    #[error("{message} (Service: Amazon S3; Status Code: {status}; Error Code: {code})")]
    S3 {
        code: String,
        message: String,
        status: u16,
    },
    /// repository-azure's `BlobStorageException`: the service's status and error body.
    #[error("Status code {status}, \"{body}\"")]
    Azure { status: u16, body: String },
    /// The Azure Blob service did not answer.
    #[error("{reason}")]
    AzureUnreachable { reason: String },
    /// repository-azure's `SettingsException`: the repository's `client` is not one the node is
    /// configured with.
    #[error("Unable to find client with name [{client}]")]
    AzureClientMissing { client: String },
}

/// What a repository was doing when its store failed: the plugins word their I/O errors by it.
pub(crate) enum Operation<'a> {
    /// Listing the root `index-` blobs to find the repository's generation.
    ListRootIndex,
    /// Uploading the blob at `path` (below the container or bucket) in one request.
    Upload { path: &'a str },
}

impl StoreError {
    /// The `caused_by` chain under a repository exception, as the plugin of the store's kind
    /// builds it.
    pub fn cause(&self, operation: Operation<'_>) -> Value {
        match self {
            StoreError::S3 { .. } => {
                let reason = match operation {
                    Operation::ListRootIndex => {
                        "Exception when listing blobs by prefix [index-]".to_owned()
                    }
                    Operation::Upload { path } => {
                        format!("Unable to upload object [{path}] using a single upload")
                    }
                };
                json!({
                    "type": "i_o_exception",
                    "reason": reason,
                    "caused_by": {"type": "amazon_s3_exception", "reason": format!("amazon_s3_exception: {self}")}
                })
            }
            StoreError::Azure { .. } | StoreError::AzureUnreachable { .. } => {
                // AzureBlobContainer wraps the SDK's exception in an IOException: with its own
                // words on upload, with the exception's class and message when listing.
                let (cause_type, exception) = match self {
                    StoreError::Azure { .. } => (
                        "blob_storage_exception",
                        "com.azure.storage.blob.models.BlobStorageException",
                    ),
                    _ => ("connect_exception", "java.net.ConnectException"),
                };
                let reason = match operation {
                    Operation::ListRootIndex => format!("{exception}: {self}"),
                    Operation::Upload { path } => format!(
                        "Can not write blob {}",
                        path.rsplit('/').next().unwrap_or(path)
                    ),
                };
                json!({
                    "type": "i_o_exception",
                    "reason": reason,
                    "caused_by": {"type": cause_type, "reason": self.to_string()}
                })
            }
            // Thrown before any request, and not an I/O error: nothing wraps it.
            StoreError::AzureClientMissing { .. } => {
                json!({"type": "settings_exception", "reason": self.to_string()})
            }
        }
    }
}

/// Where a repository's blobs live.
pub(crate) enum Location {
    S3 { bucket: String },
    Azure { client: String, container: String },
}

/// The storage clients a cluster is configured with: S3, and the Azure client `default` when the
/// stack runs Azurite.
#[derive(Clone)]
pub(crate) struct StorageClients {
    s3: aws_sdk_s3::Client,
    azure: Option<azure::AzureClient>,
}

impl StorageClients {
    pub fn new(s3: aws_sdk_s3::Client, azure: Option<azure::AzureClient>) -> Self {
        StorageClients { s3, azure }
    }

    /// The blobs of the repository at `location` and `base_path`.
    pub fn open(&self, location: Location, base_path: &str) -> BlobStore {
        let blobs: Arc<dyn Blobs> = match location {
            Location::S3 { bucket } => Arc::new(s3::Bucket::new(self.s3.clone(), &bucket)),
            Location::Azure { client, container } => match &self.azure {
                Some(azure) if client == azure::DEFAULT_CLIENT => {
                    Arc::new(azure.container(&container))
                }
                // A node with repository-azure installed whose keystore has no such client: with
                // no Azurite in the stack, that is every client (the plugin has no default
                // account), so the repository registers and fails on its first request.
                _ => Arc::new(azure::MissingClient::new(&client)),
            },
        };
        BlobStore {
            blobs,
            base_path: base_path.trim_matches('/').to_owned(),
            compress: false,
        }
    }
}

/// The blobs of one repository: names relative to its base_path.
#[derive(Clone)]
pub(crate) struct BlobStore {
    blobs: Arc<dyn Blobs>,
    base_path: String,
    /// The repository's `compress` setting: metadata blobs are DEFLATE-compressed inside their
    /// codec framing, as OpenSearch writes them.
    compress: bool,
}

impl BlobStore {
    /// The same store, compressing metadata blobs when `compress` is set.
    pub fn compressing(self, compress: bool) -> Self {
        BlobStore { compress, ..self }
    }

    /// The blob's key in its bucket or container.
    pub fn key(&self, blob: &str) -> String {
        ossnap_repository::layout::key(&self.base_path, blob)
    }

    pub async fn put(&self, blob: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.blobs.put(&self.key(blob), bytes).await
    }

    /// A framed metadata blob (`snap-`, `meta-`, shard `index-`), its body compressed first when
    /// the repository compresses.
    pub async fn put_metadata(&self, blob: &str, framed: Vec<u8>) -> Result<(), StoreError> {
        let bytes = if self.compress {
            let unframed = ossnap_repository::codec::unframe(&framed)
                .expect("ossnap_repository frames what it writes");
            ossnap_repository::codec::frame(
                &unframed.codec,
                unframed.version,
                &ossnap_repository::smile::compress(unframed.body),
            )
        } else {
            framed
        };
        self.put(blob, bytes).await
    }

    /// `None` when the blob does not exist.
    pub async fn get(&self, blob: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.blobs.get(&self.key(blob)).await
    }

    /// Names of the blobs in the folder of `prefix` whose names start with its last part
    /// (`BlobContainer.listBlobsByPrefix`).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.names(prefix, Depth::Folder).await
    }

    async fn names(&self, prefix: &str, depth: Depth) -> Result<Vec<String>, StoreError> {
        let strip = self.key("");
        Ok(self
            .blobs
            .list(&self.key(prefix), depth)
            .await?
            .into_iter()
            .map(|key| key.strip_prefix(&strip).map(str::to_owned).unwrap_or(key))
            .collect())
    }

    pub async fn delete(&self, blobs: &[String]) -> Result<(), StoreError> {
        let keys: Vec<String> = blobs.iter().map(|blob| self.key(blob)).collect();
        self.blobs.delete(&keys).await
    }

    /// Every blob below `folder` (a path ending in `/`), as `BlobContainer.delete` removes it.
    pub async fn delete_folder(&self, folder: &str) -> Result<(), StoreError> {
        debug_assert!(folder.ends_with('/'), "{folder} names a folder");
        let blobs = self.names(folder, Depth::Below).await?;
        self.delete(&blobs).await
    }
}
