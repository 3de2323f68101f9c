//! Read-only access to one repository's blobs in S3, counting the requests it makes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use ossnap_core::{Error, ErrorKind, Result};
use ossnap_repository::layout;
use serde::Serialize;

/// S3 requests made, by kind, and the object bytes they read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    pub list: u64,
    pub get: u64,
    pub bytes_read: u64,
}

#[derive(Debug, Default)]
struct Counters {
    list: AtomicU64,
    get: AtomicU64,
    bytes_read: AtomicU64,
}

/// An S3 client, and once scoped, the bucket and base path of one repository.
#[derive(Debug, Clone)]
pub struct Store {
    s3: aws_sdk_s3::Client,
    bucket: String,
    base_path: String,
    counters: Arc<Counters>,
}

impl Store {
    pub fn new(s3: aws_sdk_s3::Client) -> Store {
        Store {
            s3,
            bucket: String::new(),
            base_path: String::new(),
            counters: Arc::default(),
        }
    }

    /// The same client for the repository at `s3://bucket/base_path`, with fresh counters.
    pub fn scoped(&self, bucket: String, base_path: String) -> Store {
        Store {
            s3: self.s3.clone(),
            bucket,
            base_path,
            counters: Arc::default(),
        }
    }

    pub fn counts(&self) -> RequestCounts {
        RequestCounts {
            list: self.counters.list.load(Ordering::Relaxed),
            get: self.counters.get.load(Ordering::Relaxed),
            bytes_read: self.counters.bytes_read.load(Ordering::Relaxed),
        }
    }

    fn key(&self, blob: &str) -> String {
        layout::key(&self.base_path, blob)
    }

    /// Every blob under `prefix` (relative to the base path) with its size, relative too.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
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
            self.counters.list.fetch_add(1, Ordering::Relaxed);
            let page = page.map_err(|e| self.error("list", &full_prefix, e))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    let size = object.size().unwrap_or(0).max(0) as u64;
                    blobs.push((key[strip..].to_string(), size));
                }
            }
        }
        Ok(blobs)
    }

    /// The blob's bytes, or `None` when it does not exist.
    pub async fn get(&self, blob: &str) -> Result<Option<Vec<u8>>> {
        let mut bytes = Vec::new();
        let found = self
            .read(blob, None, |chunk| bytes.extend_from_slice(chunk))
            .await?;
        Ok(found.then_some(bytes))
    }

    /// The blob's last `length` bytes (one ranged GET), or `None` when it does not exist.
    pub async fn get_tail(&self, blob: &str, length: u64) -> Result<Option<Vec<u8>>> {
        let mut bytes = Vec::new();
        let found = self
            .read(blob, Some(format!("bytes=-{length}")), |chunk| {
                bytes.extend_from_slice(chunk)
            })
            .await?;
        Ok(found.then_some(bytes))
    }

    /// Hands the blob to `consume` chunk by chunk as it arrives, so memory stays bounded
    /// whatever its size; `false` when it does not exist.
    pub async fn read_chunks(&self, blob: &str, consume: impl FnMut(&[u8])) -> Result<bool> {
        self.read(blob, None, consume).await
    }

    async fn read(
        &self,
        blob: &str,
        range: Option<String>,
        mut consume: impl FnMut(&[u8]),
    ) -> Result<bool> {
        let key = self.key(blob);
        self.counters.get.fetch_add(1, Ordering::Relaxed);
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
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(false),
            Err(e) => return Err(self.error("read", &key, e)),
        };
        let mut body = response.body;
        while let Some(chunk) = body.try_next().await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("reading s3://{}/{key} was cut off: {e}", self.bucket),
            )
        })? {
            self.counters
                .bytes_read
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            consume(&chunk);
        }
        Ok(true)
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

/// The kind of an S3 error code, and what to do about it; `action` is `list` or `read`.
fn classify(code: &str, action: &str) -> (ErrorKind, &'static str) {
    match code {
        // S3 answers 403, not 404, for a key that does not exist when the caller may not list
        // it, so a denied read may be a missing blob as well as a missing permission.
        "AccessDenied" if action == "read" => (
            ErrorKind::AuthError,
            "either the blob is missing (S3 answers 403 instead of 404 when the role may not list that key: the snapshot would then be incomplete) or the verify function's role lacks s3:GetObject on the base path; check that the object exists, and grant s3:ListBucket on the bucket (prefix condition on the base path) and s3:GetObject on the base path",
        ),
        "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" => (
            ErrorKind::AuthError,
            "grant the verify function's role s3:ListBucket on the bucket (prefix condition on the base path) and s3:GetObject on the base path",
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
    }
}
