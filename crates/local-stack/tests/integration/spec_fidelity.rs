//! Fidelity against the OpenSearch API specification: every 2xx response the emulator gives in a
//! full session validates against the spec's response schema (error bodies against
//! `ErrorResponseBase`), and the spec's own snapshot test stories replay and pass.
//!
//! Amazon OpenSearch Service has no `fs` repositories, so the stories' `{"type":"fs",
//! "settings":{"location":L}}` is replayed as `{"type":"s3","settings":{"bucket":<bucket>,
//! "base_path":L}}`, and expected payloads are translated the same way.

use crate::common;

use std::time::Duration;

use common::spec::{self, Spec};
use common::{start, Client, Response};
use ossnap_local_stack::LocalStack;
use serde_json::{json, Map, Value};

struct Recorded {
    method: String,
    path: String,
    status: u16,
    text: String,
}

struct Recorder {
    client: Client,
    calls: Vec<Recorded>,
}

impl Recorder {
    fn new(stack: &LocalStack) -> Self {
        Recorder {
            client: Client::for_stack(stack),
            calls: Vec::new(),
        }
    }

    async fn call(&mut self, method: &str, path_and_query: &str, body: Option<Value>) -> Response {
        let response = self.client.call(method, path_and_query, body).await;
        self.calls.push(Recorded {
            method: method.to_owned(),
            path: path_and_query
                .split('?')
                .next()
                .unwrap_or_default()
                .to_owned(),
            status: response.status,
            text: response.text.clone(),
        });
        response
    }

    async fn ok(&mut self, method: &str, path_and_query: &str, body: Option<Value>) -> Value {
        let response = self.call(method, path_and_query, body).await;
        assert!(
            (200..300).contains(&response.status),
            "{method} {path_and_query}: {} {}",
            response.status,
            response.text
        );
        response.json()
    }

    /// Validates every recorded JSON response; returns how many were checked.
    fn validate_all(&self, spec: &mut Spec) -> usize {
        let error_schema = spec.schema(
            "schemas/_common.yaml",
            "/components/schemas/ErrorResponseBase",
        );
        let mut checked = 0;
        let mut failures = Vec::new();
        for call in &self.calls {
            let Ok(body) = serde_json::from_str::<Value>(&call.text) else {
                continue;
            };
            if (200..300).contains(&call.status) {
                let Some((namespace, template, operation)) =
                    spec.operation(&call.method, &call.path)
                else {
                    failures.push(format!(
                        "{} {}: no operation in the spec",
                        call.method, call.path
                    ));
                    continue;
                };
                let Some(schema) = spec.response_schema(&namespace, &operation) else {
                    continue;
                };
                if let Err(error) = spec::validate(&schema, &body) {
                    failures.push(format!(
                        "{} {} ({namespace} {template}): {error}\n{body}",
                        call.method, call.path
                    ));
                }
                checked += 1;
            } else if body.get("error").is_some() {
                if let Err(error) = spec::validate(&error_schema, &body) {
                    failures.push(format!(
                        "{} {} error body: {error}\n{body}",
                        call.method, call.path
                    ));
                }
                checked += 1;
            }
        }
        assert!(
            failures.is_empty(),
            "{} responses do not match the spec:\n{}",
            failures.len(),
            failures.join("\n\n")
        );
        checked
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_of_a_full_session_matches_the_specification() {
    let stack = start("spec-session").await;
    let mut os = Recorder::new(&stack);
    os.ok("GET", "/", None).await;
    os.ok(
        "PUT",
        "/orders",
        Some(json!({"settings": {"index": {"number_of_shards": 2}}})),
    )
    .await;
    for n in 0..5 {
        os.ok("PUT", &format!("/orders/_doc/{n}"), Some(json!({"n": n})))
            .await;
    }
    os.ok("GET", "/orders/_count", None).await;
    os.ok("GET", "/_cluster/health", None).await;
    os.ok("PUT", "/_snapshot/backups", Some(json!({"type": "s3", "settings": {"bucket": "ossnap-local", "base_path": "s", "server_side_encryption": true}}))).await;
    os.ok("GET", "/_snapshot", None).await;
    os.ok("GET", "/_snapshot/backups", None).await;
    os.ok("POST", "/_snapshot/backups/_verify", None).await;
    os.ok(
        "PUT",
        "/_snapshot/backups/one",
        Some(json!({"indices": ["orders"], "metadata": {"by": "spec"}})),
    )
    .await;
    os.ok("GET", "/_snapshot/_status", None).await;
    os.ok("GET", "/_snapshot/backups/_status", None).await;
    os.ok("GET", "/_snapshot/backups/one/_status", None).await;
    os.ok("GET", "/_snapshot/backups/one", None).await;
    os.client.wait_for_snapshot("backups", "one").await;
    os.ok("GET", "/_snapshot/backups/one/_status", None).await;
    os.ok("GET", "/_snapshot/backups/_all?verbose=false", None)
        .await;
    os.ok("GET", "/_snapshot/backups/one,*", None).await;
    os.ok(
        "PUT",
        "/_snapshot/backups/two?wait_for_completion=true",
        Some(json!({"indices": "orders"})),
    )
    .await;
    os.ok(
        "PUT",
        "/_snapshot/backups/one/_clone/three",
        Some(json!({"indices": "*"})),
    )
    .await;
    os.ok("GET", "/_cat/snapshots/backups?format=json", None)
        .await;
    os.ok("GET", "/_cat/repositories?format=json", None).await;
    os.ok(
        "POST",
        "/_snapshot/backups/two/_restore?wait_for_completion=true",
        Some(json!({"indices": "orders", "rename_pattern": "(.+)", "rename_replacement": "r_$1"})),
    )
    .await;
    os.ok(
        "POST",
        "/_snapshot/backups/two/_restore",
        Some(json!({"indices": "orders", "rename_pattern": "(.+)", "rename_replacement": "s_$1"})),
    )
    .await;
    // What restore and check-restore read while a restore runs.
    os.ok("GET", "/r_orders,s_orders/_recovery", None).await;
    os.ok(
        "GET",
        "/_cluster/health/r_orders,s_orders?level=indices",
        None,
    )
    .await;
    os.ok(
        "GET",
        "/_cat/indices?format=json&h=index,status&expand_wildcards=all",
        None,
    )
    .await;
    os.ok("GET", "/_cat/allocation?format=json&bytes=b", None)
        .await;
    os.ok(
        "GET",
        "/_cluster/settings?include_defaults=true&flat_settings=true",
        None,
    )
    .await;
    os.ok(
        "PUT",
        "/_cluster/settings",
        Some(json!({"persistent": {"cluster.max_shards_per_node": 500}})),
    )
    .await;
    os.ok(
        "POST",
        "/_cluster/allocation/explain",
        Some(json!({"index": "s_orders", "shard": 0, "primary": true})),
    )
    .await;
    os.ok("GET", "/r_orders/_stats/indexing", None).await;
    os.ok("GET", "/_snapshot/backups/two/_status", None).await;
    os.ok("GET", "/", None).await;
    os.ok("DELETE", "/_snapshot/backups/one,two", None).await;
    os.ok("DELETE", "/_snapshot/backups", None).await;
    os.ok("DELETE", "/orders", None).await;
    for (method, path) in [
        ("GET", "/_snapshot/missing"),
        ("GET", "/_snapshot/missing/x"),
        ("PUT", "/_snapshot/r2/Bad"),
        ("GET", "/nope/_count"),
    ] {
        os.call(method, path, None).await;
    }
    let checked = os.validate_all(&mut Spec::load());
    assert!(checked >= 30, "checked {checked}");
    stack.shutdown().await;
}

fn translate_fs(value: &Value, bucket: &str) -> Value {
    match value {
        Value::Object(object) => {
            let mut out: Map<String, Value> = object
                .iter()
                .map(|(key, child)| (key.clone(), translate_fs(child, bucket)))
                .collect();
            if out.get("type") == Some(&json!("fs")) {
                out.insert("type".to_owned(), json!("s3"));
                if let Some(Value::Object(settings)) = out.get_mut("settings") {
                    if let Some(location) = settings.remove("location") {
                        settings.insert("bucket".to_owned(), json!(bucket));
                        settings.insert(
                            "base_path".to_owned(),
                            json!(location
                                .as_str()
                                .unwrap_or_default()
                                .trim_start_matches('/')),
                        );
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| translate_fs(item, bucket))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The story tester's payload check: every expected key (recursively, arrays by position).
fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => expected
            .iter()
            .all(|(key, value)| actual.get(key).is_some_and(|found| contains(found, value))),
        (Value::Array(actual), Value::Array(expected)) => {
            expected.len() <= actual.len()
                && expected
                    .iter()
                    .zip(actual)
                    .all(|(expected, actual)| contains(actual, expected))
        }
        (actual, expected) => actual == expected,
    }
}

fn version_allows(constraint: Option<&str>, version: &str) -> bool {
    let Some(constraint) = constraint else {
        return true;
    };
    let parse = |text: &str| -> Vec<u32> {
        text.split('.')
            .filter_map(|part| part.trim().parse().ok())
            .collect()
    };
    let ours = parse(version);
    constraint.split(',').all(|clause| {
        let clause = clause.trim();
        let (operator, number) =
            clause.split_at(clause.find(|c: char| c.is_ascii_digit()).unwrap_or(0));
        let theirs = parse(number);
        match operator.trim() {
            ">=" => ours >= theirs,
            ">" => ours > theirs,
            "<" => ours < theirs,
            "<=" => ours <= theirs,
            _ => ours == theirs,
        }
    })
}

async fn run_step(
    os: &mut Recorder,
    step: &Value,
    bucket: &str,
    chapter: bool,
) -> Result<(), String> {
    if !version_allows(step["version"].as_str(), "2.17.0") {
        return Ok(());
    }
    let methods: Vec<String> = match &step["method"] {
        Value::String(method) => vec![method.clone()],
        Value::Array(methods) => methods
            .iter()
            .filter_map(|method| method.as_str().map(str::to_owned))
            .collect(),
        _ => return Err("step without method".to_owned()),
    };
    let mut path = step["path"].as_str().unwrap_or_default().to_owned();
    let mut query = Vec::new();
    if let Some(parameters) = step["parameters"].as_object() {
        for (name, value) in parameters {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map_or_else(|| item.to_string(), str::to_owned)
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            let placeholder = format!("{{{name}}}");
            if path.contains(&placeholder) {
                path = path.replace(&placeholder, &text);
            } else {
                query.push(format!("{name}={text}"));
            }
        }
    }
    let path_and_query = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{}", query.join("&"))
    };
    let body = step["request"]["payload"]
        .as_object()
        .map(|_| translate_fs(&step["request"]["payload"], bucket));
    let allowed: Vec<u64> = match (&step["status"], &step["response"]["status"]) {
        (Value::Array(statuses), _) => statuses.iter().filter_map(Value::as_u64).collect(),
        (_, Value::Number(status)) => vec![status.as_u64().unwrap_or(200)],
        _ => vec![200],
    };
    let retries = step["retry"]["count"].as_u64().unwrap_or(0);
    for method in methods {
        let mut attempt = 0;
        loop {
            let response = os.call(&method, &path_and_query, body.clone()).await;
            let expected_payload = translate_fs(&step["response"]["payload"], bucket);
            let payload_ok = !chapter
                || expected_payload.is_null()
                || serde_json::from_str::<Value>(&response.text)
                    .is_ok_and(|actual| contains(&actual, &expected_payload));
            if allowed.contains(&u64::from(response.status)) && payload_ok {
                break;
            }
            if attempt >= retries {
                return Err(format!(
                    "{method} {path_and_query}: got {} {}, expected status {allowed:?} and payload {expected_payload}",
                    response.status, response.text
                ));
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_specification_snapshot_stories_replay_and_pass() {
    let stories_dir = spec::contracts_dir().join("tests/snapshot");
    let mut stories = Vec::new();
    for group in ["snapshot", "cat"] {
        for entry in std::fs::read_dir(stories_dir.join(group)).unwrap() {
            stories.push(entry.unwrap().path());
        }
    }
    stories.sort();
    assert_eq!(stories.len(), 8);
    let mut spec = Spec::load();
    let mut failures = Vec::new();
    for story_path in stories {
        let story: Value =
            serde_yaml::from_str(&std::fs::read_to_string(&story_path).unwrap()).unwrap();
        let stack = start("story").await;
        let bucket = stack.config().bucket.clone();
        let mut os = Recorder::new(&stack);
        let mut outcome = Ok(());
        for (section, chapter) in [
            ("prologues", false),
            ("chapters", true),
            ("epilogues", false),
        ] {
            for step in story[section].as_array().cloned().unwrap_or_default() {
                if let Err(error) = run_step(&mut os, &step, &bucket, chapter).await {
                    outcome = Err(format!("{section}: {error}"));
                    break;
                }
            }
            if outcome.is_err() {
                break;
            }
        }
        if let Err(error) = outcome {
            failures.push(format!("{}: {error}", story_path.display()));
        }
        os.validate_all(&mut spec);
        stack.shutdown().await;
    }
    assert!(
        failures.is_empty(),
        "stories failed:\n{}",
        failures.join("\n")
    );
}
