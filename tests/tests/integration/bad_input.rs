//! Matrix A of `shared/reference/failure-modes-and-security.md` as one table: each bad input to
//! each function, run as Lambda runs it, fails with its error name and a message naming what to
//! fix, before any request. The emulator's request log stays empty, and `verify`, the one
//! function that reads S3 only, points at a closed port: a request there would fail with
//! `Unavailable`, never with the `ConfigError` expected.
//!
//! Not here: A6 and A7 (a missing index, an empty snapshot) need the cluster's answer
//! (`functions.rs`, `conformance.rs`); A9 (odd response bodies) is `classify`'s tests and the
//! fuzz targets; A10 (schedule expressions) is the template's lint (`make lint-infra`); A8's
//! "a maximum age shorter than the schedule's period" is not checked: retention does not know
//! the schedule.

use std::collections::HashMap;

use ossnap_tests::{function_binary, LambdaProcess, TestStack};
use serde_json::{json, Value};

/// One bad input: the function, its event, variables on top of the stack's, and what it answers.
struct Case {
    function: &'static str,
    event: Value,
    env: Vec<(&'static str, &'static str)>,
    error_type: &'static str,
    message: String,
}

fn case(function: &'static str, event: Value, message: impl Into<String>) -> Case {
    Case {
        function,
        event,
        env: Vec::new(),
        error_type: "ConfigError",
        message: message.into(),
    }
}

fn with_env(function: &'static str, env: &[(&'static str, &'static str)], message: &str) -> Case {
    Case {
        env: env.to_vec(),
        ..case(function, json!({}), message)
    }
}

const ALL: [&str; 7] = [
    "register",
    "snapshot",
    "check-status",
    "verify",
    "retention",
    "restore",
    "check-restore",
];

/// The functions that take a snapshot name, and the event that names it.
fn naming_a_snapshot(name: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("snapshot", json!({"snapshot": name})),
        ("check-status", json!({"snapshot": name})),
        ("verify", json!({"snapshot": name})),
        ("restore", json!({"snapshot": name})),
    ]
}

fn matrix_a() -> Vec<Case> {
    let mut cases = Vec::new();
    // A1: OpenSearch's own rules, with its wording.
    let long_name = "a".repeat(256);
    let names: Vec<(&str, &str)> = vec![
        ("", "cannot be empty"),
        ("Daily", "must be lowercase"),
        ("a b", "must not contain whitespace"),
        ("a,b", "must not contain ','"),
        ("a#b", "must not contain '#'"),
        ("_x", "must not start with '_'"),
        ("x/y", "must not contain the following characters"),
        ("x*", "must not contain the following characters"),
        ("x?", "must not contain the following characters"),
        ("x\"y", "must not contain the following characters"),
        ("x<y", "must not contain the following characters"),
        ("x>y", "must not contain the following characters"),
        ("x|y", "must not contain the following characters"),
        ("x\\y", "must not contain the following characters"),
        // A2: ossnap's stricter rules.
        ("-x", "must not start with '-' or '+'"),
        ("+x", "must not start with '-' or '+'"),
        (&long_name, "must be at most 255 bytes long"),
        ("café", "must be ASCII"),
        ("Ä", "must be lowercase"),
        // A3: date math is refused, not resolved.
        (
            "<snap-{now/d}>",
            "must not contain the following characters",
        ),
    ];
    for (name, why) in &names {
        for (function, event) in naming_a_snapshot(name) {
            cases.push(case(
                function,
                event,
                format!("invalid snapshot name [{name}]: {why}"),
            ));
        }
    }
    // A4: repository names, the AWS-reserved prefix first.
    for (repository, why) in [
        ("cs-foo", "names starting with \"cs-\" are reserved"),
        ("", "cannot be empty"),
        ("_all", "must not start with '_'"),
        ("*", "must not contain the following characters"),
    ] {
        for (function, mut event) in [
            ("register", json!({})),
            ("snapshot", json!({})),
            (
                "check-status",
                json!({"snapshot": "ossnap-20261128-020000"}),
            ),
            ("verify", json!({"snapshot": "ossnap-20261128-020000"})),
            ("retention", json!({})),
            ("restore", json!({})),
        ] {
            event["repository"] = json!(repository);
            cases.push(case(
                function,
                event,
                format!("invalid repository name [{repository}]: {why}"),
            ));
        }
    }
    // A5: where the repository lies and who writes it.
    for (role_arn, why) in [
        ("TheSnapshotRole", "not an IAM ARN"),
        ("arn:aws:iam::123:role/r", "the account must be 12 digits"),
        ("arn:aws:iam::123456789012:user/alice", "not a role"),
        ("arn:aws:s3:::bucket", "not an IAM ARN"),
    ] {
        cases.push(case(
            "register",
            json!({"role_arn": role_arn}),
            format!("invalid SNAPSHOT_ROLE_ARN [{role_arn}]: {why}"),
        ));
    }
    cases.push(case(
        "retention",
        json!({"repository": "other"}),
        "retention of repository \"other\" needs its \"bucket\" and \"base_path\" in the event",
    ));
    for function in ["register", "verify", "retention"] {
        let snapshot = json!("ossnap-20261128-020000");
        for (field, value, message) in [
            (
                "bucket",
                "Acme_Backups",
                "invalid SNAPSHOT_BUCKET [Acme_Backups]: may hold only lowercase letters",
            ),
            (
                "bucket",
                "192.168.1.1",
                "invalid SNAPSHOT_BUCKET [192.168.1.1]: must not be formatted as an IP address",
            ),
            (
                "base_path",
                "/prod",
                "invalid SNAPSHOT_BASE_PATH [/prod]: must not start with '/'",
            ),
            (
                "base_path",
                "prod/../other",
                "invalid SNAPSHOT_BASE_PATH [prod/../other]: must not contain '.' or '..' segments",
            ),
        ] {
            let mut event = json!({field: value});
            if function == "verify" {
                event["snapshot"] = snapshot.clone();
            }
            cases.push(case(function, event, message));
        }
    }
    // A8: retention's policy is refused at start, each invocation naming the variable.
    for (env, message) in [
        (
            vec![("RETENTION_MIN_COUNT", "0")],
            "RETENTION_MIN_COUNT=0 would allow deleting every good snapshot",
        ),
        (
            vec![("RETENTION_MIN_COUNT", "-1")],
            "RETENTION_MIN_COUNT=\"-1\" is not a whole number",
        ),
        (
            vec![("RETENTION_MIN_COUNT", "3"), ("RETENTION_MAX_COUNT", "2")],
            "RETENTION_MAX_COUNT=2 is below RETENTION_MIN_COUNT=3",
        ),
        (
            vec![("RETENTION_MAX_AGE", "0d")],
            "RETENTION_MAX_AGE=0 would expire every snapshot at once",
        ),
        (
            vec![("RETENTION_MAX_AGE", "soon")],
            "RETENTION_MAX_AGE=\"soon\" is not a duration",
        ),
        (
            vec![("RETENTION_MAX_DELETIONS", "0")],
            "RETENTION_MAX_DELETIONS=0 deletes nothing",
        ),
    ] {
        cases.push(with_env("retention", &env, message));
    }
    // Every function: malformed events and settings.
    for function in ALL {
        cases.push(case(
            function,
            json!("go"),
            "the event must be a JSON object",
        ));
        cases.push(case(
            function,
            json!({"no_such_field": 1}),
            "unknown field `no_such_field`",
        ));
        cases.push(case(
            function,
            json!({"scheduled_time": "yesterday"}),
            "scheduled_time \"yesterday\" is not an RFC 3339 time",
        ));
        cases.push(case(
            function,
            json!({"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-28T02:00:00Z", "detail": 5}),
            "the EventBridge event's detail must be an object",
        ));
        cases.push(with_env(
            function,
            &[("OPENSEARCH_AUTH", "kerberos")],
            "OPENSEARCH_AUTH=\"kerberos\" is not supported",
        ));
    }
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_fails_with_its_name_and_message_before_any_request() {
    let stack = TestStack::start().await;
    let mut base = stack.env();
    // verify reads only S3: a closed port, so that a request would fail otherwise.
    base.retain(|(name, _)| name != "AWS_ENDPOINT_URL_S3");
    base.push(("AWS_ENDPOINT_URL_S3".into(), "http://127.0.0.1:9".into()));
    let mut processes: HashMap<(String, String), LambdaProcess> = HashMap::new();
    let cases = matrix_a();
    let mut wrong = Vec::new();
    for case in &cases {
        let key = (case.function.to_string(), format!("{:?}", case.env));
        if !processes.contains_key(&key) {
            let mut env: Vec<(&str, &str)> =
                base.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            env.extend(case.env.iter().copied());
            let process = LambdaProcess::start(&function_binary(case.function), &env)
                .await
                .expect("the function starts");
            processes.insert(key.clone(), process);
        }
        stack.control().clear_requests();
        let outcome = processes
            .get_mut(&key)
            .expect("started above")
            .invoke(case.event.clone())
            .await;
        let requests = stack.control().requests();
        let described = format!("{} {} {:?}", case.function, case.event, case.env);
        match outcome {
            Err(error)
                if error.error_type == case.error_type
                    && error.error_message.contains(&case.message)
                    && requests.is_empty() => {}
            Err(error) => wrong.push(format!(
                "{described}: {}: {} (expected {}: …{}…; requests: {requests:?})",
                error.error_type, error.error_message, case.error_type, case.message
            )),
            Ok(output) => wrong.push(format!("{described}: answered {output}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
