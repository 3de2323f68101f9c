//! The function binaries run as Lambda runs them (Runtime API on loopback), against the local
//! stack, with each of the three event shapes.

use std::time::Duration;

use ossnap_tests::{function_binary, LambdaProcess, TestStack};
use serde_json::{json, Value};

async fn start(stack: &TestStack, name: &str, extra: &[(&str, &str)]) -> LambdaProcess {
    let mut env = stack.env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    LambdaProcess::start(&function_binary(name), &env)
        .await
        .expect("the function starts")
}

#[tokio::test]
async fn the_three_functions_take_a_snapshot_from_each_event_shape() {
    let stack = TestStack::start().await;
    stack.seed_index(&stack.deps(&[]), "logs-2026.11", 10).await;

    // A console test event: a plain object.
    let mut register = start(&stack, "register", &[]).await;
    let registered = register.invoke(json!({})).await.unwrap();
    assert_eq!(registered["status"], "created");
    assert_eq!(registered["repository"], "ossnap");
    assert!(register.init_duration().is_some());

    // An EventBridge scheduled rule's envelope: the name comes from its time.
    let mut snapshot = start(&stack, "snapshot", &[]).await;
    let started = snapshot
        .invoke(json!({
            "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
            "time": "2026-11-28T02:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/ossnap"], "detail": {}
        }))
        .await
        .unwrap();
    assert_eq!(started["snapshot"], "ossnap-20261128-020000");
    assert_eq!(started["state"], "IN_PROGRESS");

    // EventBridge Scheduler input, a day later, while the first one may still run.
    let next = snapshot
        .invoke(json!({"scheduled_time": "2026-11-29T02:00:00Z"}))
        .await;
    if let Err(error) = &next {
        assert_eq!(error.error_type, "SnapshotInProgress");
    }

    // Step Functions input: exactly the fields check-status takes.
    let mut check = start(&stack, "check-status", &[]).await;
    let input = json!({"repository": started["repository"], "snapshot": started["snapshot"]});
    let mut report = Value::Null;
    for _ in 0..100 {
        report = check.invoke(input.clone()).await.unwrap();
        if report["done"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(report["state"], "SUCCESS");
    assert_eq!(report["healthy"], true);
    assert_eq!(report["wait_seconds"], 0);
    assert!(report["shards"]["total"].as_u64().unwrap() >= 1);

    // The last two steps: verify from the S3 side, then retention (which keeps the only one).
    let mut verify = start(&stack, "verify", &[]).await;
    let verified = verify.invoke(input.clone()).await.unwrap();
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["shards"], report["shards"]["total"]);
    assert!(verified["blobs"].as_u64().unwrap() >= 1);

    let mut retention = start(&stack, "retention", &[("RETENTION_MAX_COUNT", "2")]).await;
    let applied = retention
        .invoke(json!({"repository": started["repository"]}))
        .await
        .unwrap();
    assert_eq!(applied["deleted"], json!([]));
    assert_eq!(applied["kept"][0]["snapshot"], started["snapshot"]);

    let error = verify
        .invoke(json!({"repository": "ossnap", "snapshot": "not-there"}))
        .await
        .unwrap_err();
    assert_eq!(error.error_type, "VerificationFailed");
    let mut bad_policy = start(&stack, "retention", &[("RETENTION_MIN_COUNT", "0")]).await;
    let error = bad_policy.invoke(json!({})).await.unwrap_err();
    assert_eq!(error.error_type, "ConfigError");
    assert!(
        error.error_message.contains("RETENTION_MIN_COUNT"),
        "{error:?}"
    );
}

#[tokio::test]
async fn errors_reach_step_functions_with_their_stable_names() {
    let stack = TestStack::start().await;

    let mut register = start(&stack, "register", &[]).await;
    let error = register
        .invoke(json!({"bucket_name": "x"}))
        .await
        .unwrap_err();
    assert_eq!(error.error_type, "ConfigError");
    assert!(
        error.error_message.contains("unknown field `bucket_name`"),
        "{error:?}"
    );

    let error = register
        .invoke(json!({"role_arn": "not-an-arn"}))
        .await
        .unwrap_err();
    assert_eq!(error.error_type, "ConfigError");
    assert!(
        error.error_message.contains("SNAPSHOT_ROLE_ARN"),
        "{error:?}"
    );

    let mut check = start(&stack, "check-status", &[]).await;
    let error = check
        .invoke(json!({"repository": "ossnap", "snapshot": "missing-one"}))
        .await
        .unwrap_err();
    assert_eq!(error.error_type, "RepositoryMissing");

    // Wrong secret: the emulator's SigV4 check refuses, and the message says what to fix.
    let mut wrong_key = start(
        &stack,
        "register",
        &[("AWS_SECRET_ACCESS_KEY", "not-the-secret")],
    )
    .await;
    let error = wrong_key.invoke(json!({})).await.unwrap_err();
    assert_eq!(error.error_type, "AuthError");
    assert!(error.error_message.contains("signature"), "{error:?}");
}

#[tokio::test]
async fn without_credentials_the_call_is_refused_before_it_is_sent() {
    let stack = TestStack::start().await;
    let mut register = start(
        &stack,
        "register",
        &[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")],
    )
    .await;
    stack.control().clear_requests();
    let error = register.invoke(json!({})).await.unwrap_err();
    assert_eq!(error.error_type, "AuthError");
    assert!(
        error.error_message.contains("no AWS credentials"),
        "{error:?}"
    );
    assert!(stack.control().requests().is_empty());
}

#[tokio::test]
async fn a_missing_endpoint_is_reported_by_every_invocation_naming_the_variable() {
    let stack = TestStack::start().await;
    let mut snapshot = start(&stack, "snapshot", &[("OPENSEARCH_ENDPOINT", "")]).await;
    for _ in 0..2 {
        let error = snapshot.invoke(json!({})).await.unwrap_err();
        assert_eq!(error.error_type, "ConfigError");
        assert!(
            error.error_message.contains("OPENSEARCH_ENDPOINT"),
            "{error:?}"
        );
    }
}
