//! An independent SigV4 implementation, botocore (what the AWS CLI and boto3 use), signs requests
//! to the emulator: they are accepted, and the same requests tampered with after signing are
//! refused with the front door's messages.
//!
//! Needs botocore in the repository's Python venv:
//! `python3 -m venv .venv && .venv/bin/pip install botocore==1.44.8` (or OSSNAP_PYTHON naming a
//! Python that has it).

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use common::{send, start_with};
use ossnap_local_stack::{Credentials, LocalStackConfig};
use serde_json::{json, Value};

const SIGNER: &str = r#"
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
spec = json.load(sys.stdin)
request = AWSRequest(method=spec["method"], url=spec["url"], data=spec["body"].encode(), headers={"Content-Type": "application/json"})
SigV4Auth(Credentials(spec["access_key"], spec["secret_key"], spec["token"]), "es", spec["region"]).add_auth(request)
print(json.dumps(dict(request.headers.items())))
"#;

fn python() -> PathBuf {
    std::env::var_os("OSSNAP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"))
}

/// botocore's signed headers for one request.
fn botocore_sign(
    method: &str,
    url: &str,
    body: &str,
    credentials: &Credentials,
) -> Vec<(String, String)> {
    let python = python();
    let spec = json!({
        "method": method, "url": url, "body": body, "region": "us-east-1",
        "access_key": credentials.access_key_id, "secret_key": credentials.secret_access_key, "token": credentials.session_token,
    });
    let mut child = Command::new(&python)
        .args(["-c", SIGNER])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run {} ({error}); create it with: python3 -m venv .venv && .venv/bin/pip install botocore==1.44.8",
                python.display()
            )
        });
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "botocore signing failed (install it with .venv/bin/pip install botocore==1.44.8): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let headers: Value = serde_json::from_slice(&output.stdout).unwrap();
    headers
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
        .collect()
}

fn request(
    method: &str,
    url: &str,
    body: &str,
    headers: &[(String, String)],
) -> http::Request<Vec<u8>> {
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let mut builder = http::Request::builder()
        .method(method)
        .uri(url)
        .header("host", host);
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(body.as_bytes().to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botocore_signed_requests_are_accepted_and_tampered_copies_refused() {
    let credentials = Credentials {
        session_token: Some("FwoGZXIvYXdzEXAMPLETOKEN".to_owned()),
        ..Credentials::development()
    };
    let stack = start_with(LocalStackConfig {
        credentials: credentials.clone(),
        ..LocalStackConfig::for_tests(common::fresh_dir("botocore"))
    })
    .await;
    let endpoint = stack.opensearch_endpoint();

    let url =
        format!("{endpoint}/_snapshot/signed-by-botocore?verify=true&cluster_manager_timeout=30s");
    let body =
        json!({"type": "s3", "settings": {"bucket": "ossnap-local", "base_path": "boto/core"}})
            .to_string();
    let headers = botocore_sign("PUT", &url, &body, &credentials);
    assert!(headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("x-amz-security-token")));

    let accepted = send(&endpoint, request("PUT", &url, &body, &headers)).await;
    assert_eq!(
        (accepted.status, accepted.json()),
        (200, json!({"acknowledged": true}))
    );

    let tampered_body = body.replace("boto/core", "boto/other");
    let refused = send(&endpoint, request("PUT", &url, &tampered_body, &headers)).await;
    assert_eq!(refused.status, 403);
    assert!(refused.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("The request signature we calculated does not match"));

    let tampered_query = url.replace("verify=true", "verify=false");
    let refused = send(&endpoint, request("PUT", &tampered_query, &body, &headers)).await;
    assert_eq!(refused.status, 403);

    let without_token: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("x-amz-security-token"))
        .cloned()
        .collect();
    let refused = send(&endpoint, request("PUT", &url, &body, &without_token)).await;
    assert_eq!(
        refused.json(),
        json!({"message": "The security token included in the request is invalid."})
    );

    // A GET with a date-math style name (percent-encoded path) signed by botocore.
    let url = format!("{endpoint}/_snapshot/signed-by-botocore/%3Cnightly-%7Bnow%2Fd%7D%3E");
    let headers = botocore_sign("GET", &url, "", &credentials);
    let response = send(&endpoint, request("GET", &url, "", &headers)).await;
    assert_eq!(
        response.status, 404,
        "signature accepted, snapshot missing: {}",
        response.text
    );
    assert_eq!(
        response.json()["error"]["type"],
        "snapshot_missing_exception"
    );
    let reason = response.json()["error"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.starts_with("[signed-by-botocore:nightly-20") && !reason.contains('<'),
        "date math resolved: {reason}"
    );
    stack.shutdown().await;
}
