//! Test helpers: a local stack in a fresh directory and an OpenSearch client that signs with
//! aws-sigv4 (smithy's implementation, independent of the emulator's verifier).

#![allow(dead_code)]

pub mod spec;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use ossnap_local_stack::{Credentials, LocalStack, LocalStackConfig};
use serde_json::Value;

static NEXT: AtomicU32 = AtomicU32::new(0);

pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "local-stack-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub async fn start(name: &str) -> LocalStack {
    start_with(LocalStackConfig::for_tests(fresh_dir(name))).await
}

pub async fn start_with(config: LocalStackConfig) -> LocalStack {
    LocalStack::start(config).await.expect("local stack starts")
}

pub struct Response {
    pub status: u16,
    pub text: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("JSON body, got: {}", self.text))
    }
}

/// Sends one HTTP/1.1 request to 127.0.0.1.
pub async fn send(endpoint: &str, request: http::Request<Vec<u8>>) -> Response {
    let address = endpoint.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let request = request.map(|body| Full::new(Bytes::from(body)));
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Response {
        status,
        text: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub fn sign_request(
    request: &mut http::Request<Vec<u8>>,
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) {
    sign_request_with(
        request,
        credentials,
        region,
        time,
        SigningSettings::default(),
    );
}

/// Signs with explicit settings (e.g. the `x-amz-content-sha256` header ossnap-core sends).
pub fn sign_request_with(
    request: &mut http::Request<Vec<u8>>,
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
    settings: SigningSettings,
) {
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
        credentials.session_token.clone(),
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("es")
        .time(time)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap().to_owned()))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        &uri,
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
        SignableBody::Bytes(request.body()),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    instructions.apply_to_request_http1x(request);
}

pub fn build(
    endpoint: &str,
    method: &str,
    path_and_query: &str,
    body: Option<&Value>,
) -> http::Request<Vec<u8>> {
    let host = endpoint.trim_start_matches("http://").to_owned();
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("{endpoint}{path_and_query}"))
        .header("host", host);
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    builder
        .body(
            body.map(|body| body.to_string().into_bytes())
                .unwrap_or_default(),
        )
        .expect("request")
}

/// A SigV4 client for the emulator with the stack's credentials.
pub struct Client {
    pub endpoint: String,
    pub credentials: Credentials,
    pub region: String,
}

impl Client {
    pub fn for_stack(stack: &LocalStack) -> Self {
        Client {
            endpoint: stack.opensearch_endpoint(),
            credentials: stack.config().credentials.clone(),
            region: stack.config().region.clone(),
        }
    }

    pub async fn call(&self, method: &str, path_and_query: &str, body: Option<Value>) -> Response {
        let mut request = build(&self.endpoint, method, path_and_query, body.as_ref());
        sign_request(
            &mut request,
            &self.credentials,
            &self.region,
            SystemTime::now(),
        );
        send(&self.endpoint, request).await
    }

    pub async fn raw_body(&self, method: &str, path_and_query: &str, body: &str) -> Response {
        let mut request = build(&self.endpoint, method, path_and_query, None);
        *request.body_mut() = body.as_bytes().to_vec();
        sign_request(
            &mut request,
            &self.credentials,
            &self.region,
            SystemTime::now(),
        );
        send(&self.endpoint, request).await
    }

    pub async fn ok(&self, method: &str, path_and_query: &str, body: Option<Value>) -> Value {
        let response = self.call(method, path_and_query, body).await;
        assert!(
            (200..300).contains(&response.status),
            "{method} {path_and_query} -> {} {}",
            response.status,
            response.text
        );
        response.json()
    }

    pub async fn register_repository(&self, repository: &str, bucket: &str, base_path: &str) {
        self.ok(
            "PUT",
            &format!("/_snapshot/{repository}"),
            Some(serde_json::json!({"type": "s3", "settings": {"bucket": bucket, "base_path": base_path, "region": "us-east-1", "role_arn": "arn:aws:iam::123456789012:role/TheSnapshotRole"}})),
        )
        .await;
    }

    pub async fn seed_index(&self, index: &str, shards: u32, documents: usize) {
        self.ok(
            "PUT",
            &format!("/{index}"),
            Some(serde_json::json!({"settings": {"index": {"number_of_shards": shards}}})),
        )
        .await;
        for n in 0..documents {
            self.ok(
                "PUT",
                &format!("/{index}/_doc/{n}"),
                Some(serde_json::json!({"n": n})),
            )
            .await;
        }
    }

    /// Polls GET snapshot until it is no longer IN_PROGRESS.
    pub async fn wait_for_snapshot(&self, repository: &str, snapshot: &str) -> Value {
        for _ in 0..200 {
            let response = self
                .ok("GET", &format!("/_snapshot/{repository}/{snapshot}"), None)
                .await;
            let info = response["snapshots"][0].clone();
            if info["state"] != "IN_PROGRESS" {
                return info;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("snapshot {snapshot} never finished");
    }
}
