//! A repository in an S3 bucket, read with aws-sdk-s3 (the source of verify and copy), and the
//! one write copy makes beside it: its work list ([`S3Store::put`]).

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use futures::stream;
use ossnap_core::config::Environment;
use ossnap_core::{Error, ErrorKind, Result};
use ossnap_repository::layout;

use crate::{Blob, BlobStore, ByteStream, Counters, ReadRange, Request, RequestCounts};

/// An S3 client from `sdk`, with path-style addressing when `AWS_ENDPOINT_URL_S3` (or
/// `AWS_ENDPOINT_URL`) points it at another S3 server (the local stack).
pub fn client(env: &Environment, sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let path_style =
        env.get("AWS_ENDPOINT_URL_S3").is_some() || env.get("AWS_ENDPOINT_URL").is_some();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .build(),
    )
}

/// An S3 client, and once scoped, the bucket and base path of one repository.
#[derive(Debug, Clone)]
pub struct S3Store {
    s3: aws_sdk_s3::Client,
    bucket: String,
    base_path: String,
    counters: Arc<Counters>,
}

impl S3Store {
    pub fn new(s3: aws_sdk_s3::Client) -> S3Store {
        S3Store {
            s3,
            bucket: String::new(),
            base_path: String::new(),
            counters: Arc::default(),
        }
    }

    /// The same client for the repository at `s3://bucket/base_path`, with fresh counters.
    pub fn scoped(&self, bucket: String, base_path: String) -> S3Store {
        S3Store {
            s3: self.s3.clone(),
            bucket,
            base_path,
            counters: Arc::default(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    fn key(&self, blob: &str) -> String {
        layout::key(&self.base_path, blob)
    }

    /// Writes `bytes` as `blob` in one PutObject. Only for small objects that are not part of
    /// a repository (copy's work list): a repository's blobs are OpenSearch's to write.
    pub async fn put(&self, blob: &str, bytes: Vec<u8>) -> Result<()> {
        let key = self.key(blob);
        let size = bytes.len();
        self.counters.count(Request::Put);
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(bytes.into())
            .send()
            .await
            .map_err(|e| self.error("write", &key, e))?;
        self.counters.written(size);
        Ok(())
    }

    fn error<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
        &self,
        action: &str,
        key: &str,
        error: SdkError<E, R>,
    ) -> Error {
        let location = format!("s3://{}/{key}", self.bucket);
        let code = error.code().unwrap_or_default().to_string();
        let detail = error.message().unwrap_or_default().to_string();
        let (kind, advice) = classify(&code, action);
        let shown = if code.is_empty() {
            format!("{error:?}")
        } else {
            format!("{code}: {detail}")
        };
        Error::new(
            kind,
            format!("cannot {action} {location}: {shown}; {advice}"),
        )
    }
}

#[async_trait]
impl BlobStore for S3Store {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.base_path.trim_matches('/'))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Blob>> {
        let full_prefix = self.key(prefix);
        let strip = full_prefix.len() - prefix.len();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full_prefix)
            .into_paginator()
            .send();
        let mut blobs = Vec::new();
        while let Some(page) = pages.next().await {
            self.counters.count(Request::List);
            let page = page.map_err(|e| self.error("list", &full_prefix, e))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    blobs.push(Blob {
                        name: key[strip..].to_string(),
                        size: object.size().unwrap_or(0).max(0) as u64,
                    });
                }
            }
        }
        Ok(blobs)
    }

    async fn open(&self, blob: &str, range: ReadRange) -> Result<Option<ByteStream>> {
        let key = self.key(blob);
        let range = match range {
            ReadRange::Whole => None,
            ReadRange::From(offset) => Some(format!("bytes={offset}-")),
        };
        self.counters.count(Request::Get);
        let response = match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .set_range(range)
            .send()
            .await
        {
            Ok(response) => response,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(self.error("read", &key, e)),
        };
        let location = format!("s3://{}/{key}", self.bucket);
        let counters = self.counters.clone();
        let body = stream::try_unfold(response.body, move |mut body| {
            let location = location.clone();
            let counters = counters.clone();
            async move {
                match body.try_next().await {
                    Ok(Some(chunk)) => {
                        counters.read(chunk.len());
                        Ok(Some((chunk, body)))
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(Error::new(
                        ErrorKind::Unavailable,
                        format!("reading {location} was cut off: {e}"),
                    )),
                }
            }
        });
        Ok(Some(Box::pin(body)))
    }

    fn requests(&self) -> RequestCounts {
        self.counters.snapshot()
    }
}

/// The kind of an S3 error code, and what to do about it; `action` is `list`, `read` or `write`.
fn classify(code: &str, action: &str) -> (ErrorKind, &'static str) {
    match code {
        "AccessDenied" if action == "write" => (
            ErrorKind::AuthError,
            "grant the function's role s3:PutObject on that key",
        ),
        // S3 answers 403, not 404, for a key that does not exist when the caller may not list
        // it, so a denied read may be a missing blob as well as a missing permission.
        "AccessDenied" if action == "read" => (
            ErrorKind::AuthError,
            "either the blob is missing (S3 answers 403 instead of 404 when the role may not list that key: the snapshot would then be incomplete) or the function's role lacks s3:GetObject on the base path; check that the object exists, and grant s3:ListBucket on the bucket (prefix condition on the base path) and s3:GetObject on the base path",
        ),
        "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" => (
            ErrorKind::AuthError,
            "grant the function's role s3:ListBucket on the bucket (prefix condition on the base path) and s3:GetObject on the base path",
        ),
        "NoSuchBucket" => (ErrorKind::ConfigError, "check SNAPSHOT_BUCKET"),
        "SlowDown" | "RequestLimitExceeded" | "Throttling" => (ErrorKind::Throttled, "retry later"),
        "InvalidObjectState" => (
            ErrorKind::ConfigError,
            "a blob was moved to Glacier: remove the lifecycle rule, snapshot repositories cannot read Glacier",
        ),
        _ => (ErrorKind::Unavailable, "retry later; check the S3 endpoint is reachable from the function (VPC gateway endpoint)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_read_says_the_blob_may_be_missing_too() {
        let (kind, advice) = classify("AccessDenied", "read");
        assert_eq!(kind, ErrorKind::AuthError);
        assert!(advice.contains("blob is missing"), "{advice}");
        assert!(advice.contains("s3:GetObject"), "{advice}");
        let (_, listing) = classify("AccessDenied", "list");
        assert!(!listing.contains("missing"), "{listing}");
        let (_, writing) = classify("AccessDenied", "write");
        assert!(writing.contains("s3:PutObject"), "{writing}");
    }
}
