//! The emulator's side of S3: blobs of one repository (bucket + base_path), read and written with
//! aws-sdk-s3 against the embedded S3 server, as repository-s3 does against AWS.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{BehaviorVersion, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_sdk_s3::Client;

use crate::{Credentials, Error};

pub(crate) fn client(endpoint: &str, region: &str, credentials: &Credentials) -> Client {
    let credentials = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
        credentials.session_token.clone(),
        None,
        "ossnap-local",
    );
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .force_path_style(true)
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .build();
    Client::from_conf(config)
}

pub(crate) async fn ensure_bucket(client: &Client, bucket: &str) -> Result<(), Error> {
    if client.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    client
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .map(|_| ())
        .map_err(|error| Error::CreateBucket {
            bucket: bucket.to_owned(),
            reason: describe(&error),
        })
}

/// An S3 failure as the repository plugin reports it: `amazon_s3_exception` with the service's
/// message and code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message} (Service: Amazon S3; Status Code: {status}; Error Code: {code})")]
pub(crate) struct StoreError {
    pub code: String,
    pub message: String,
    pub status: u16,
}

fn describe<E: ProvideErrorMetadata + std::fmt::Debug>(error: &E) -> String {
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => format!("{error:?}"),
    }
}

fn store_error<E>(error: aws_sdk_s3::error::SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    let status = error
        .raw_response()
        .map(|response| response.status().as_u16())
        .unwrap_or(500);
    let code = error.code().unwrap_or("InternalError").to_owned();
    let message = error
        .message()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{error:?}"));
    StoreError {
        code,
        message,
        status,
    }
}

#[derive(Clone)]
pub(crate) struct BlobStore {
    client: Client,
    pub bucket: String,
    base_path: String,
    /// The repository's `compress` setting: metadata blobs are DEFLATE-compressed inside their
    /// codec framing, as OpenSearch writes them.
    compress: bool,
}

impl BlobStore {
    pub fn new(client: Client, bucket: &str, base_path: &str) -> Self {
        BlobStore {
            client,
            bucket: bucket.to_owned(),
            base_path: base_path.trim_matches('/').to_owned(),
            compress: false,
        }
    }

    /// The same store, compressing metadata blobs when `compress` is set.
    pub fn compressing(self, compress: bool) -> Self {
        BlobStore { compress, ..self }
    }

    fn key(&self, blob: &str) -> String {
        ossnap_repository::layout::key(&self.base_path, blob)
    }

    pub async fn put(&self, blob: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(blob))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map(|_| ())
            .map_err(store_error)
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
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(blob))
            .send()
            .await
        {
            Ok(output) => {
                let bytes = output.body.collect().await.map_err(|error| StoreError {
                    code: "IOError".to_owned(),
                    message: error.to_string(),
                    status: 500,
                })?;
                Ok(Some(bytes.into_bytes().to_vec()))
            }
            Err(error) => {
                let error = store_error(error);
                if error.code == "NoSuchKey" {
                    Ok(None)
                } else {
                    Err(error)
                }
            }
        }
    }

    /// Blob names (relative to base_path) starting with `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let full_prefix = self.key(prefix);
        let strip = self.key("");
        let mut names = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let output = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full_prefix)
                .set_continuation_token(continuation.take())
                .send()
                .await
                .map_err(store_error)?;
            for object in output.contents() {
                if let Some(key) = object.key() {
                    names.push(key.strip_prefix(&strip).unwrap_or(key).to_owned());
                }
            }
            match output.next_continuation_token() {
                Some(token) if output.is_truncated() == Some(true) => {
                    continuation = Some(token.to_owned())
                }
                _ => break,
            }
        }
        Ok(names)
    }

    pub async fn delete(&self, blobs: &[String]) -> Result<(), StoreError> {
        for chunk in blobs.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|blob| ObjectIdentifier::builder().key(self.key(blob)).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| StoreError {
                    code: "InvalidRequest".to_owned(),
                    message: error.to_string(),
                    status: 400,
                })?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .build()
                .map_err(|error| StoreError {
                    code: "InvalidRequest".to_owned(),
                    message: error.to_string(),
                    status: 400,
                })?;
            self.client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }

    pub async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        let blobs = self.list(prefix).await?;
        self.delete(&blobs).await
    }
}
