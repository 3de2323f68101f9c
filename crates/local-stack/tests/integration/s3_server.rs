//! The embedded S3 server as ossnap's own code will use it: aws-sdk-s3 with its default
//! settings (flexible checksums on), path-style, the stack's credentials.

use crate::common;

use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use common::start;

fn default_client(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .force_path_style(true)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            access_key, secret_key, None, None, "test",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_with_default_settings_reads_writes_lists_and_deletes() {
    let stack = start("s3").await;
    let credentials = &stack.config().credentials;
    let s3 = default_client(
        &stack.s3_endpoint(),
        &credentials.access_key_id,
        &credentials.secret_access_key,
    );
    let bucket = stack.config().bucket.clone();

    s3.put_object()
        .bucket(&bucket)
        .key("a/b.dat")
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("a/b.dat")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(5));
    let ranged = s3
        .get_object()
        .bucket(&bucket)
        .key("a/b.dat")
        .range("bytes=1-2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ranged.body.collect().await.unwrap().into_bytes().as_ref(),
        b"el"
    );
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("a/")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.key_count(), Some(1));
    let delete = Delete::builder()
        .objects(ObjectIdentifier::builder().key("a/b.dat").build().unwrap())
        .build()
        .unwrap();
    s3.delete_objects()
        .bucket(&bucket)
        .delete(delete)
        .send()
        .await
        .unwrap();
    assert_eq!(
        s3.list_objects_v2()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
            .key_count(),
        Some(0)
    );

    let missing = s3
        .put_object()
        .bucket("no-such-bucket")
        .key("x")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(
        missing.unwrap_err().into_service_error().meta().code(),
        Some("NoSuchBucket")
    );
    let wrong = default_client(
        &stack.s3_endpoint(),
        &credentials.access_key_id,
        "not-the-secret",
    );
    assert!(
        wrong
            .list_objects_v2()
            .bucket(&bucket)
            .send()
            .await
            .is_err(),
        "signatures are checked"
    );
    stack.shutdown().await;
}
