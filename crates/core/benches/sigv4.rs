//! SigV4 signing cost of one OpenSearch request (the PUT that starts a snapshot, with a session
//! token and a JSON body), credentials resolved from a provider as in production.

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use criterion::{criterion_group, criterion_main, Criterion};
use ossnap_core::opensearch::SigV4Signer;

fn sign_snapshot_put(c: &mut Criterion) {
    let credentials = Credentials::new(
        "AKIDEXAMPLE",
        "SECRET",
        Some("SESSION".into()),
        None,
        "bench",
    );
    let signer = SigV4Signer::for_opensearch(
        SharedCredentialsProvider::new(credentials),
        "eu-west-1".into(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let body =
        br#"{"indices":"*,-.opendistro_security*","include_global_state":false,"partial":false}"#
            .to_vec();
    let time = UNIX_EPOCH + Duration::from_secs(1_764_295_200);
    c.bench_function("sigv4_sign_snapshot_put", |b| {
        b.iter(|| {
            let mut request = http::Request::builder()
                .method("PUT")
                .uri("https://vpc-logs-abc123.eu-west-1.es.amazonaws.com/_snapshot/ossnap/ossnap-20261128-020000?wait_for_completion=false")
                .header("content-type", "application/json")
                .body(body.clone())
                .unwrap();
            runtime.block_on(signer.sign(&mut request, time)).unwrap();
            request
        })
    });
}

criterion_group!(benches, sign_snapshot_put);
criterion_main!(benches);
