//! The S3 server: s3s's protocol implementation over s3s-fs's directory store, with SigV4
//! authentication against the configured credentials.

use std::path::{Path, PathBuf};

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::SimpleAuth;
use s3s::path::S3Path;
use s3s::service::S3ServiceBuilder;
use s3s::{s3_error, S3Result};

use crate::http_server::{self, RunningServer};
use crate::{Credentials, Error};

/// Access policy: signed requests only, and no object operation on a bucket that does not exist.
/// s3s-fs would otherwise create the bucket directory on PutObject, where S3 answers
/// `NoSuchBucket`, and repository verification against a missing bucket must fail as on AWS.
struct SignedAndBucketMustExist {
    root: PathBuf,
}

#[async_trait::async_trait]
impl S3Access for SignedAndBucketMustExist {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3_error!(AccessDenied, "Signature is required"));
        }
        if let S3Path::Object { bucket, .. } = cx.s3_path() {
            if !self.root.join(bucket.as_ref()).is_dir() {
                return Err(s3_error!(
                    NoSuchBucket,
                    "The specified bucket does not exist"
                ));
            }
        }
        Ok(())
    }
}

/// Serves S3 on `port`; every request waits `latency` first (S3's own latency, for benchmarks).
pub(crate) async fn start(
    root: &Path,
    port: u16,
    credentials: &Credentials,
    latency: std::time::Duration,
) -> Result<RunningServer, Error> {
    let file_system =
        s3s_fs::FileSystem::new(root).map_err(|error| Error::S3Fs(format!("{error:?}")))?;
    let mut builder = S3ServiceBuilder::new(file_system);
    builder.set_auth(SimpleAuth::from_single(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
    ));
    builder.set_access(SignedAndBucketMustExist {
        root: root.to_path_buf(),
    });
    let service = builder.build();
    let listener = http_server::bind("S3 server", port).await?;
    http_server::spawn(listener, move |_peer| {
        let service = service.clone();
        hyper::service::service_fn(move |request| {
            let service = service.clone();
            async move {
                if !latency.is_zero() {
                    tokio::time::sleep(latency).await;
                }
                hyper::service::Service::call(&service, request).await
            }
        })
    })
}
