//! Refusals (SigV4, FGAC, PassRole, validation) with the real bodies and statuses, and the test
//! controls: faults, request log, red indices, forced outcomes, the automated snapshot.

use crate::common;

use std::time::{Duration, SystemTime};

use common::{build, send, sign_request, start, start_with, Client};
use ossnap_local_stack::{AuthMode, Fault, LocalStackConfig, Profile, SnapshotOutcome};
use serde_json::{json, Value};

fn error_type(body: &Value) -> &str {
    body["error"]["type"].as_str().unwrap_or_default()
}

fn reason(body: &Value) -> &str {
    body["error"]["reason"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_get_the_aws_front_door_messages() {
    let stack = start("sigv4").await;
    let client = Client::for_stack(&stack);
    let endpoint = stack.opensearch_endpoint();
    let credentials = stack.config().credentials.clone();

    let mut tampered = build(&endpoint, "GET", "/_snapshot?local=false", None);
    sign_request(&mut tampered, &credentials, "us-east-1", SystemTime::now());
    *tampered.uri_mut() = format!("{endpoint}/_snapshot?local=true").parse().unwrap();
    let response = send(&endpoint, tampered).await;
    assert_eq!(response.status, 403);
    let message = response.json()["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with(
        "The request signature we calculated does not match the signature you provided."
    ));
    assert!(message.contains(
        "The Canonical String for this request should have been\n'GET\n/_snapshot\nlocal=true\n"
    ));
    assert!(message.contains("The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n"));

    let mut body_changed = build(&endpoint, "PUT", "/orders", Some(&json!({})));
    sign_request(
        &mut body_changed,
        &credentials,
        "us-east-1",
        SystemTime::now(),
    );
    *body_changed.body_mut() = b"{\"settings\":{}}".to_vec();
    assert_eq!(send(&endpoint, body_changed).await.status, 403);

    let mut wrong_secret = credentials.clone();
    wrong_secret.secret_access_key.push('x');
    let mut request = build(&endpoint, "GET", "/", None);
    sign_request(&mut request, &wrong_secret, "us-east-1", SystemTime::now());
    assert_eq!(send(&endpoint, request).await.status, 403);

    let mut unknown_key = credentials.clone();
    unknown_key.access_key_id = "AKIAUNKNOWN000000000".to_owned();
    let mut request = build(&endpoint, "GET", "/", None);
    sign_request(&mut request, &unknown_key, "us-east-1", SystemTime::now());
    let response = send(&endpoint, request).await;
    assert_eq!(
        response.json(),
        json!({"message": "The security token included in the request is invalid."})
    );

    let mut request = build(&endpoint, "GET", "/", None);
    sign_request(
        &mut request,
        &credentials,
        "us-east-1",
        SystemTime::now() - Duration::from_secs(600),
    );
    let response = send(&endpoint, request).await;
    assert!(response.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("Signature expired: "));

    let response = send(&endpoint, build(&endpoint, "GET", "/_snapshot", None)).await;
    assert_eq!(
        response.json(),
        json!({"Message": "User: anonymous is not authorized to perform: es:ESHttpGet"})
    );

    // Signed with the payload hash header, as ossnap-core signs.
    let mut settings = aws_sigv4::http_request::SigningSettings::default();
    settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
    let mut with_hash = build(&endpoint, "PUT", "/hashed", Some(&json!({})));
    common::sign_request_with(
        &mut with_hash,
        &credentials,
        "us-east-1",
        SystemTime::now(),
        settings,
    );
    assert!(with_hash.headers().contains_key("x-amz-content-sha256"));
    assert_eq!(send(&endpoint, with_hash).await.status, 200);

    assert_eq!(client.call("GET", "/", None).await.status, 200);
    let log = stack.control().expect("the emulator").requests();
    assert_eq!(
        log.iter().filter(|request| request.status == 403).count(),
        6
    );
    assert_eq!(log[0].error_type.as_deref(), Some("aws_signature"));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmapped_principal_gets_security_exception_and_passrole_is_enforced() {
    let stack = start_with(LocalStackConfig {
        passable_roles: Some(vec![
            "arn:aws:iam::123456789012:role/TheSnapshotRole".to_owned()
        ]),
        ..LocalStackConfig::for_tests(common::fresh_dir("fgac"))
    })
    .await;
    let client = Client::for_stack(&stack);
    let principal = stack.config().principal_arn.clone();

    let refused = client
        .call("PUT", "/_snapshot/backups", Some(json!({"type": "s3", "settings": {"bucket": "ossnap-local", "role_arn": "arn:aws:iam::123456789012:role/Other"}})))
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.json(),
        json!({"Message": format!("User: {principal} is not authorized to perform: iam:PassRole on resource: arn:aws:iam::123456789012:role/Other")})
    );

    let mapping = client
        .ok(
            "GET",
            "/_plugins/_security/api/rolesmapping/manage_snapshots",
            None,
        )
        .await;
    assert_eq!(
        mapping["manage_snapshots"]["backend_roles"],
        json!([principal])
    );
    let patched = client
        .ok(
            "PATCH",
            "/_plugins/_security/api/rolesmapping/manage_snapshots",
            Some(json!([{"op": "replace", "path": "/backend_roles", "value": []}, {"op": "replace", "path": "/users", "value": []}])),
        )
        .await;
    assert_eq!(
        patched,
        json!({"status": "OK", "message": "Resource updated."})
    );
    let refused = client
        .call(
            "PUT",
            "/_snapshot/backups",
            Some(json!({"type": "s3", "settings": {"bucket": "ossnap-local"}})),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(error_type(&refused.json()), "security_exception");
    assert_eq!(
        reason(&refused.json()),
        format!("no permissions for [cluster:admin/repository/put] and User [name={principal}, backend_roles=[{principal}], requestedTenant=null]")
    );

    let put = client
        .call(
            "PUT",
            "/_plugins/_security/api/rolesmapping/manage_snapshots",
            Some(json!({"backend_roles": [principal]})),
        )
        .await;
    assert_eq!(
        put.json(),
        json!({"status": "OK", "message": "'manage_snapshots' updated."})
    );
    client
        .register_repository("backups", "ossnap-local", "")
        .await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_match_the_server() {
    let stack = start("validation").await;
    let client = Client::for_stack(&stack);
    let check = |response: common::Response, status: u16, expected_type: &str| {
        assert_eq!(response.status, status, "{}", response.text);
        let body = response.json();
        assert_eq!(error_type(&body), expected_type, "{body}");
        assert_eq!(body["status"], status);
        assert_eq!(body["error"]["root_cause"][0]["type"], expected_type);
        body
    };

    let body = check(
        client.call("GET", "/_snapshot/nope/snap", None).await,
        404,
        "repository_missing_exception",
    );
    assert_eq!(reason(&body), "[nope] missing");
    check(
        client.call("PUT", "/_snapshot/backups", None).await,
        400,
        "parse_exception",
    );
    check(
        client
            .raw_body("PUT", "/_snapshot/backups", "{not json")
            .await,
        400,
        "parse_exception",
    );
    check(
        client
            .call("PUT", "/_snapshot/backups", Some(json!({"settings": {}})))
            .await,
        400,
        "action_request_validation_exception",
    );
    check(
        client
            .call("PUT", "/_snapshot/backups", Some(json!({"type": "hdfs"})))
            .await,
        500,
        "repository_exception",
    );
    check(
        client
            .call(
                "PUT",
                "/_snapshot/cs-mine",
                Some(json!({"type": "s3", "settings": {"bucket": "b"}})),
            )
            .await,
        400,
        "illegal_argument_exception",
    );
    let body = check(
        client.call("GET", "/_snapshot?bogus=1", None).await,
        400,
        "illegal_argument_exception",
    );
    assert_eq!(
        reason(&body),
        "request [/_snapshot] contains unrecognized parameter: [bogus]"
    );
    let body = check(
        client
            .call(
                "PUT",
                "/_snapshot/elsewhere",
                Some(json!({"type": "s3", "settings": {"bucket": "no-such-bucket"}})),
            )
            .await,
        500,
        "repository_verification_exception",
    );
    assert_eq!(
        reason(&body),
        "[elsewhere] path  is not accessible on cluster-manager node"
    );
    assert_eq!(
        body["error"]["caused_by"]["caused_by"]["type"],
        "amazon_s3_exception"
    );

    client.seed_index("orders", 1, 1).await;
    client
        .register_repository("backups", "ossnap-local", "v")
        .await;
    let body = check(
        client.call("PUT", "/_snapshot/backups/Bad", None).await,
        400,
        "invalid_snapshot_name_exception",
    );
    assert_eq!(
        reason(&body),
        "[backups:Bad] Invalid snapshot name [Bad], must be lowercase"
    );
    check(
        client
            .call(
                "PUT",
                "/_snapshot/backups/s",
                Some(json!({"indices": "missing"})),
            )
            .await,
        404,
        "index_not_found_exception",
    );
    let body = check(
        client
            .call(
                "PUT",
                "/_snapshot/backups/s",
                Some(json!({"indcies": "orders"})),
            )
            .await,
        400,
        "illegal_argument_exception",
    );
    assert_eq!(reason(&body), "Unknown parameter indcies");
    client
        .ok("PUT", "/_snapshot/backups/s?wait_for_completion=true", None)
        .await;
    let body = check(
        client.call("PUT", "/_snapshot/backups/s", None).await,
        400,
        "invalid_snapshot_name_exception",
    );
    assert_eq!(
        reason(&body),
        "[backups:s] Invalid snapshot name [s], snapshot with the same name already exists"
    );
    let body = check(
        client.call("GET", "/_snapshot/backups/gone", None).await,
        404,
        "snapshot_missing_exception",
    );
    assert_eq!(reason(&body), "[backups:gone] is missing");
    check(
        client
            .call("DELETE", "/_snapshot/backups/s,gone", None)
            .await,
        404,
        "snapshot_missing_exception",
    );
    check(
        client
            .call("GET", "/_snapshot/backups/gone/_status", None)
            .await,
        404,
        "snapshot_missing_exception",
    );

    client
        .ok("PUT", "/_snapshot/reader", Some(json!({"type": "s3", "settings": {"bucket": "ossnap-local", "base_path": "v", "readonly": true}})))
        .await;
    check(
        client.call("PUT", "/_snapshot/reader/t", None).await,
        500,
        "repository_exception",
    );
    assert_eq!(
        client.ok("GET", "/_snapshot/reader/s", None).await["snapshots"][0]["state"],
        "SUCCESS",
        "a readonly repository reads the same data"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_snapshot_at_a_time_with_the_profile_status() {
    for (profile, status) in [(Profile::V2, 503), (Profile::V3, 409)] {
        let stack = start_with(LocalStackConfig {
            profile,
            snapshot_duration: Duration::from_secs(30),
            ..LocalStackConfig::for_tests(common::fresh_dir("concurrent"))
        })
        .await;
        let client = Client::for_stack(&stack);
        client.seed_index("orders", 1, 1).await;
        client
            .register_repository("backups", "ossnap-local", "")
            .await;
        client.ok("PUT", "/_snapshot/backups/first", None).await;
        let second = client.call("PUT", "/_snapshot/backups/second", None).await;
        assert_eq!(second.status, status);
        assert_eq!(
            error_type(&second.json()),
            "concurrent_snapshot_execution_exception"
        );
        let same = client.call("PUT", "/_snapshot/backups/first", None).await;
        assert_eq!(reason(&same.json()), "[backups:first] Invalid snapshot name [first], snapshot with the same name is already in-progress");

        let busy_index = client.call("DELETE", "/orders", None).await;
        assert_eq!(
            (busy_index.status, error_type(&busy_index.json())),
            (400, "snapshot_in_progress_exception")
        );
        let busy_repository = client.call("DELETE", "/_snapshot/backups", None).await;
        assert_eq!(
            (busy_repository.status, error_type(&busy_repository.json())),
            (500, "illegal_state_exception")
        );

        // Deleting the running snapshot aborts it; nothing of it remains.
        client.ok("DELETE", "/_snapshot/backups/first", None).await;
        assert_eq!(
            client.ok("GET", "/_snapshot/_status", None).await,
            json!({"snapshots": []})
        );
        assert_eq!(
            client
                .call("GET", "/_snapshot/backups/first", None)
                .await
                .status,
            404
        );
        stack.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automated_snapshot_blocks_manual_ones_while_it_runs() {
    let stack = start("automated").await;
    let client = Client::for_stack(&stack);
    client
        .register_repository("backups", "ossnap-local", "")
        .await;
    let name = stack
        .control()
        .expect("the emulator")
        .start_automated_snapshot(Duration::from_millis(400));
    let status = client.ok("GET", "/_snapshot/_status", None).await;
    assert_eq!(status["snapshots"][0]["repository"], "cs-automated");
    assert_eq!(status["snapshots"][0]["snapshot"], name.as_str());
    assert_eq!(
        client
            .call("PUT", "/_snapshot/backups/manual", None)
            .await
            .status,
        503
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    client.ok("PUT", "/_snapshot/backups/manual", None).await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_indices_and_forced_outcomes_end_failed_or_partial() {
    let stack = start("outcomes").await;
    let client = Client::for_stack(&stack);
    client.seed_index("orders", 2, 4).await;
    client.seed_index("users", 1, 2).await;
    client
        .register_repository("backups", "ossnap-local", "")
        .await;

    stack
        .control()
        .expect("the emulator")
        .make_index_red("users");
    assert_eq!(
        client.ok("GET", "/_cluster/health", None).await["status"],
        "red"
    );
    let failed = client
        .ok("PUT", "/_snapshot/backups/f?wait_for_completion=true", None)
        .await;
    assert_eq!(failed["snapshot"]["state"], "FAILED");
    assert_eq!(
        failed["snapshot"]["reason"],
        "Indices don't have primary shards [users]"
    );
    assert_eq!(
        failed["snapshot"]["failures"][0]["index_uuid"], "users",
        "the server's quirk: index name here"
    );
    assert_eq!(
        client.ok("GET", "/_snapshot/backups/f", None).await["snapshots"][0]["state"],
        "FAILED"
    );

    let partial = client
        .ok(
            "PUT",
            "/_snapshot/backups/p?wait_for_completion=true",
            Some(json!({"partial": true})),
        )
        .await;
    assert_eq!(partial["snapshot"]["state"], "PARTIAL");
    assert_eq!(
        partial["snapshot"]["shards"],
        json!({"total": 3, "failed": 1, "successful": 2})
    );
    stack
        .control()
        .expect("the emulator")
        .make_index_green("users");

    stack
        .control()
        .expect("the emulator")
        .set_next_snapshot_outcome(SnapshotOutcome::Failed {
            reason: "disk on fire".to_owned(),
        });
    let forced = client
        .ok("PUT", "/_snapshot/backups/x?wait_for_completion=true", None)
        .await;
    assert_eq!(
        (
            forced["snapshot"]["state"].as_str(),
            forced["snapshot"]["reason"].as_str()
        ),
        (Some("FAILED"), Some("disk on fire"))
    );

    stack
        .control()
        .expect("the emulator")
        .set_next_snapshot_outcome(SnapshotOutcome::NeverFinishes);
    client.ok("PUT", "/_snapshot/backups/stuck", None).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let status = client
        .ok("GET", "/_snapshot/backups/stuck/_status", None)
        .await;
    assert_eq!(status["snapshots"][0]["state"], "STARTED");
    client.ok("DELETE", "/_snapshot/backups/stuck", None).await;
    let cat = client.call("GET", "/_cat/snapshots/backups?v", None).await;
    assert!(cat.text.starts_with("id "), "{}", cat.text);
    assert_eq!(cat.text.lines().count(), 4, "{}", cat.text);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_the_request_log_over_http() {
    let stack = start("faults").await;
    let client = Client::for_stack(&stack);
    let endpoint = stack.opensearch_endpoint();
    client
        .register_repository("backups", "ossnap-local", "")
        .await;

    let control = |method: &str, path: &str, body: Option<Value>| {
        let endpoint = endpoint.clone();
        let request = build(&endpoint, method, path, body.as_ref());
        async move { send(&endpoint, request).await }
    };
    let added = control(
        "POST",
        "/_local/faults",
        Some(json!({"method": "PUT", "path": "/_snapshot/backups/*", "count": 1, "status": 504, "body": "<html>Gateway Timeout</html>", "after_accept": true})),
    )
    .await;
    assert_eq!(added.status, 200);
    assert_eq!(
        control("DELETE", "/_local/requests", None).await.status,
        200
    );

    let timed_out = client
        .call("PUT", "/_snapshot/backups/accepted-anyway", None)
        .await;
    assert_eq!(
        (timed_out.status, timed_out.text.as_str()),
        (504, "<html>Gateway Timeout</html>")
    );
    let info = client.wait_for_snapshot("backups", "accepted-anyway").await;
    assert_eq!(
        info["state"], "SUCCESS",
        "the operation was performed before the 504"
    );

    stack.control().expect("the emulator").add_fault(Fault::new(
        "GET",
        "/_snapshot/backups",
        500,
        r#"{"error":{"type":"x"},"status":500}"#,
    ));
    assert_eq!(
        client.call("GET", "/_snapshot/backups", None).await.status,
        500
    );
    assert_eq!(
        client.call("GET", "/_snapshot/backups", None).await.status,
        200
    );

    let log: Value = control("GET", "/_local/requests", None).await.json();
    let entries = log.as_array().unwrap();
    assert_eq!(
        entries[0],
        json!({"method": "PUT", "path": "/_snapshot/backups/accepted-anyway", "query": "", "status": 504, "error_type": "injected_fault"})
    );
    assert!(entries
        .iter()
        .any(|entry| entry["status"] == 500 && entry["error_type"] == "x"));
    assert_eq!(entries.last().unwrap()["status"], 200);
    assert_eq!(
        entries
            .iter()
            .filter(|entry| entry["method"] == "PUT")
            .count(),
        1,
        "no second PUT was needed"
    );

    control("PUT", "/_local/latency", Some(json!({"latency_ms": 150}))).await;
    let started = std::time::Instant::now();
    client.ok("GET", "/", None).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    control("PUT", "/_local/latency", Some(json!({"latency_ms": 0}))).await;

    assert_eq!(
        control("POST", "/_local/indices/orders/red", None)
            .await
            .status,
        200
    );
    assert!(stack.control().expect("the emulator").is_red("orders"));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_mode_checks_the_internal_user() {
    let stack = start_with(LocalStackConfig {
        auth: AuthMode::Basic {
            username: "admin".to_owned(),
            password: "Admin-123".to_owned(),
        },
        ..LocalStackConfig::for_tests(common::fresh_dir("basic"))
    })
    .await;
    let endpoint = stack.opensearch_endpoint();
    let mut request = build(&endpoint, "GET", "/", None);
    request.headers_mut().insert(
        "authorization",
        "Basic YWRtaW46QWRtaW4tMTIz".parse().unwrap(),
    );
    assert_eq!(send(&endpoint, request).await.status, 200);
    let mut request = build(&endpoint, "GET", "/", None);
    request
        .headers_mut()
        .insert("authorization", "Basic YWRtaW46d3Jvbmc=".parse().unwrap());
    assert_eq!(send(&endpoint, request).await.status, 401);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_gets_an_error_response_never_a_dropped_connection() {
    let stack = start("garbage").await;
    let client = Client::for_stack(&stack);
    client.seed_index("orders", 1, 1).await;
    client
        .register_repository("backups", "ossnap-local", "")
        .await;
    let cases: &[(&str, &str, &str)] = &[
        ("PUT", "/_snapshot/backups/s", "[]"),
        ("PUT", "/_snapshot/backups/s", "\"text\""),
        ("PUT", "/_snapshot/backups/s", "{\"indices\": 5}"),
        ("PUT", "/_snapshot/backups/s", "{\"metadata\": []}"),
        ("PUT", "/_snapshot/backups/s", "{\"partial\": \"maybe\"}"),
        (
            "PUT",
            "/_snapshot/backups/s?wait_for_completion=perhaps",
            "",
        ),
        (
            "PUT",
            "/_snapshot/backups",
            "{\"type\": \"s3\", \"settings\": []}",
        ),
        ("PUT", "/_snapshot/backups", "{\"type\": 7}"),
        (
            "POST",
            "/_snapshot/backups/s/_restore",
            "{\"rename_pattern\": \"(\"}",
        ),
        (
            "PATCH",
            "/_plugins/_security/api/rolesmapping/manage_snapshots",
            "{}",
        ),
        (
            "PUT",
            "/_plugins/_security/api/rolesmapping/x",
            "{\"backend_roles\": 1}",
        ),
        ("PUT", "/orders/_doc/1", "[1]"),
        ("PUT", "/Bad-Index", ""),
        (
            "PUT",
            "/orders2",
            "{\"settings\": {\"index\": {\"number_of_shards\": \"lots\"}}}",
        ),
        ("GET", "/_snapshot/%FF%FE/x", ""),
        ("GET", "/_snapshot/backups/x?=&&=y", ""),
        ("DELETE", "/_snapshot/backups/%3Cbroken-%7Bnow%2Fd%3E", ""),
        ("BREW", "/coffee", ""),
    ];
    for (method, path, body) in cases {
        let response = client.raw_body(method, path, body).await;
        assert!(
            response.status >= 400,
            "{method} {path} {body}: {} {}",
            response.status,
            response.text
        );
        let json = response.json();
        let security_api_error = path.contains("_security") && json["status"] == "BAD_REQUEST";
        assert!(
            json["error"]["type"].is_string() || security_api_error,
            "{method} {path} {body}: {json}"
        );
    }
    assert_eq!(
        client.call("GET", "/orders/_count", None).await.json()["count"],
        1
    );
    stack.shutdown().await;
}

/// Sends `request` and reports whether any answer came back (a reset connection gives none).
async fn answered(endpoint: &str, request: http::Request<Vec<u8>>) -> Option<u16> {
    let stream = tokio::net::TcpStream::connect(endpoint.trim_start_matches("http://"))
        .await
        .expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let request = request.map(|body| http_body_util::Full::new(bytes::Bytes::from(body)));
    sender
        .send_request(request)
        .await
        .ok()
        .map(|response| response.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_fault_closes_the_connection_and_a_slow_answer_is_the_real_one() {
    let stack = start("reset").await;
    let client = Client::for_stack(&stack);
    let endpoint = stack.opensearch_endpoint();
    client
        .register_repository("backups", "ossnap-local", "")
        .await;
    let control = stack.control().expect("the emulator");

    control.add_fault(Fault::connection_reset("GET", "/_snapshot/backups"));
    let mut request = build(&endpoint, "GET", "/_snapshot/backups", None);
    sign_request(
        &mut request,
        &stack.config().credentials,
        "us-east-1",
        SystemTime::now(),
    );
    assert_eq!(answered(&endpoint, request).await, None);
    assert_eq!(
        client.call("GET", "/_snapshot/backups", None).await.status,
        200,
        "the fault is used up"
    );

    control.add_fault(Fault {
        after_accept: true,
        ..Fault::slow_answer("PUT", "/_snapshot/backups/*", Duration::from_millis(20))
    });
    let created = client.ok("PUT", "/_snapshot/backups/slow", None).await;
    assert_eq!(created, json!({"accepted": true}));
    assert!(control.pending_faults().is_empty());
    let logged: Vec<_> = control
        .requests()
        .into_iter()
        .map(|request| (request.method, request.path, request.status))
        .collect();
    assert!(logged.contains(&("GET".into(), "/_snapshot/backups".into(), 0)));
    assert!(logged.contains(&("PUT".into(), "/_snapshot/backups/slow".into(), 200)));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_run_on_the_cluster_clock() {
    let mut config = LocalStackConfig::for_tests(common::fresh_dir("clock"));
    config.snapshot_duration = Duration::from_secs(3600);
    let stack = start_with(config).await;
    let client = Client::for_stack(&stack);
    client
        .register_repository("backups", "ossnap-local", "")
        .await;
    client.seed_index("orders", 2, 10).await;
    client
        .ok(
            "PUT",
            "/_snapshot/backups/hour-long",
            Some(json!({"indices": "orders"})),
        )
        .await;

    let advance = |minutes: u64| {
        let request = build(
            &stack.opensearch_endpoint(),
            "POST",
            "/_local/clock",
            Some(&json!({"advance_ms": minutes * 60_000})),
        );
        let endpoint = stack.opensearch_endpoint();
        async move { send(&endpoint, request).await.json() }
    };
    assert_eq!(advance(30).await["offset_ms"], 1_800_000);
    let status = client
        .ok("GET", "/_snapshot/backups/hour-long/_status", None)
        .await;
    let stats = &status["snapshots"][0]["stats"];
    assert_eq!(status["snapshots"][0]["state"], "STARTED");
    assert!(
        stats["time_in_millis"].as_i64().unwrap() >= 1_800_000,
        "{stats}"
    );
    let shards = &status["snapshots"][0]["shards_stats"];
    assert_eq!(
        (shards["done"].as_u64(), shards["total"].as_u64()),
        (Some(1), Some(2))
    );

    advance(30).await;
    let info = client.wait_for_snapshot("backups", "hour-long").await;
    assert_eq!(info["state"], "SUCCESS");
    assert!(
        info["duration_in_millis"].as_i64().unwrap() >= 3_600_000,
        "{info}"
    );
    stack.shutdown().await;
}
