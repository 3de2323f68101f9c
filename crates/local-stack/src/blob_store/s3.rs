//! `type: s3` repositories: blobs in a bucket of the embedded S3 server, read and written with
//! aws-sdk-s3 as repository-s3 does against AWS.

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{BehaviorVersion, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_sdk_s3::Client;

use super::{Blobs, Depth, StoreError};
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
    StoreError::S3 {
        code,
        message,
        status,
    }
}

fn invalid_request(error: impl std::fmt::Display) -> StoreError {
    StoreError::S3 {
        code: "InvalidRequest".to_owned(),
        message: error.to_string(),
        status: 400,
    }
}

/// One bucket.
pub(crate) struct Bucket {
    client: Client,
    bucket: String,
}

impl Bucket {
    pub(crate) fn new(client: Client, bucket: &str) -> Self {
        Bucket {
            client,
            bucket: bucket.to_owned(),
        }
    }
}

#[async_trait]
impl Blobs for Bucket {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => {
                let bytes = output
                    .body
                    .collect()
                    .await
                    .map_err(|error| StoreError::S3 {
                        code: "IOError".to_owned(),
                        message: error.to_string(),
                        status: 500,
                    })?;
                Ok(Some(bytes.into_bytes().to_vec()))
            }
            Err(error) => match store_error(error) {
                StoreError::S3 { code, .. } if code == "NoSuchKey" => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn list(&self, prefix: &str, depth: Depth) -> Result<Vec<String>, StoreError> {
        let delimiter = match depth {
            Depth::Folder => Some("/".to_owned()),
            Depth::Below => None,
        };
        let mut keys = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let output = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_delimiter(delimiter.clone())
                .set_continuation_token(continuation.take())
                .send()
                .await
                .map_err(store_error)?;
            keys.extend(
                output
                    .contents()
                    .iter()
                    .filter_map(|object| object.key().map(str::to_owned)),
            );
            match output.next_continuation_token() {
                Some(token) if output.is_truncated() == Some(true) => {
                    continuation = Some(token.to_owned())
                }
                _ => break,
            }
        }
        Ok(keys)
    }

    async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|key| ObjectIdentifier::builder().key(key).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(invalid_request)?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .build()
                .map_err(invalid_request)?;
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
}
