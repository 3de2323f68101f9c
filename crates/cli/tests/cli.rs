//! The `ossnap` binary against the local stack (emulator): every command's happy path and main
//! failure, in both output modes, with exit codes; doctor on a healthy and a broken stack.

use std::process::Output;

use ossnap_core::Deps;
use ossnap_local_stack::SnapshotOutcome;
use ossnap_tests::stack::unmap_the_caller;
use ossnap_tests::TestStack;
use serde_json::{json, Value};

/// What one run of `ossnap` gave.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}): {}", self.stdout))
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `ossnap args` with the stack's environment (what a deployed function has) and
/// `extra` on top, nothing of this machine's AWS configuration, and stdout and stderr piped
/// (not terminals).
async fn ossnap_with(stack: &TestStack, extra: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ossnap"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_CONFIG_FILE", "/nonexistent/ossnap-test-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/ossnap-test-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(stack.env())
        .args(args);
    for (name, value) in extra {
        if value.is_empty() {
            command.env_remove(name);
        } else {
            command.env(name, value);
        }
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().await.expect("ossnap runs");
    Run {
        code: status.code().expect("ossnap exits with a code"),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

async fn ossnap(stack: &TestStack, args: &[&str]) -> Run {
    ossnap_with(stack, &[], args).await
}

/// A stack with an index of two shards and the repository registered.
async fn ready_stack() -> (TestStack, Deps) {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs-2026.11", 10).await;
    stack.register(&deps).await;
    (stack, deps)
}

/// Takes the snapshot `name`, waits until it ends healthy, and returns what the command said.
async fn take_snapshot(stack: &TestStack, name: &str) -> Run {
    let run = ossnap(
        stack,
        &["snapshot", "--name", name, "--wait", "--interval", "50ms"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    run
}

fn assert_error(run: &Run, code: i32, error_type: &str) {
    assert_eq!(run.code, code, "{run:?}");
    if run.stdout.trim_start().starts_with('{') {
        let error = &run.json()["error"];
        assert_eq!(error["type"], error_type, "{run:?}");
        assert!(!error["message"].as_str().unwrap().is_empty(), "{run:?}");
        assert!(!error["fix"].as_str().unwrap().is_empty(), "{run:?}");
    } else {
        assert!(run.stdout.is_empty(), "{run:?}");
        assert!(
            run.stderr.contains(&format!("error {error_type}: ")),
            "{run:?}"
        );
        assert!(run.stderr.contains("\n  fix: "), "{run:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn register_creates_then_leaves_alone_and_names_the_role_to_map() {
    let stack = TestStack::start().await;
    let run = ossnap(&stack, &["register"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("status      created"), "{run:?}");
    assert!(run.stdout.contains("1 node(s) can write to it"), "{run:?}");

    let run = ossnap(&stack, &["register", "--output", "json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.json(),
        json!({"repository": "ossnap", "status": "unchanged", "verified_nodes": null})
    );

    unmap_the_caller(&stack.deps(&[])).await;
    let run = ossnap(&stack, &["register", "--repository", "other"]).await;
    assert_error(&run, 1, "AuthError");
    assert!(
        run.stderr.contains(
            "map arn:aws:iam::123456789012:role/ossnap-local as a backend role of manage_snapshots"
        ),
        "{run:?}"
    );
    let run = ossnap(
        &stack,
        &["--output", "json", "register", "--repository", "other"],
    )
    .await;
    assert_error(&run, 1, "AuthError");
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_and_usage_mistakes_exit_2() {
    let stack = TestStack::start().await;
    let no_endpoint = [("OPENSEARCH_ENDPOINT", "")];
    let run = ossnap_with(&stack, &no_endpoint, &["list"]).await;
    assert_error(&run, 2, "ConfigError");
    assert!(
        run.stderr.contains("OPENSEARCH_ENDPOINT is not set"),
        "{run:?}"
    );
    let run = ossnap_with(&stack, &no_endpoint, &["list", "--output", "json"]).await;
    assert_error(&run, 2, "ConfigError");

    // A flag overrides its variable, and is validated as the variable would be.
    let run = ossnap(&stack, &["list", "--repository", "cs-automated"]).await;
    assert_error(&run, 2, "ConfigError");

    let run = ossnap(&stack, &["verify"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("SNAPSHOT"), "{run:?}");
    let run = ossnap(&stack, &["snapshot", "--wait", "--timeout", "10"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("has no unit"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_starts_waits_until_healthy_and_never_adopts_another_runs() {
    let (stack, _) = ready_stack().await;
    let run = ossnap(
        &stack,
        &["snapshot", "--name", "by-hand-1", "--output", "json"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let started = run.json();
    assert_eq!(started["snapshot"], "by-hand-1");
    assert_eq!(started["state"], "IN_PROGRESS");

    // Another run naming the same snapshot does not adopt it.
    let run = ossnap(&stack, &["snapshot", "--name", "by-hand-1"]).await;
    assert_error(&run, 1, "SnapshotNameConflict");
    let run = ossnap(
        &stack,
        &["snapshot", "--name", "by-hand-1", "--output", "json"],
    )
    .await;
    assert_error(&run, 1, "SnapshotNameConflict");
    ossnap_tests::stack::wait_until_idle(&stack.deps(&[])).await;

    let run = take_snapshot(&stack, "by-hand-2").await;
    assert!(run.stdout.contains("state       SUCCESS"), "{run:?}");
    assert!(
        run.stdout.contains("2 total, 2 successful, 0 failed"),
        "{run:?}"
    );
    // stderr is not a terminal: no progress drawn.
    assert!(!run.stderr.contains("shards"), "{run:?}");

    let run = ossnap(
        &stack,
        &[
            "snapshot",
            "--name",
            "by-hand-3",
            "--wait",
            "--interval",
            "50ms",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let done = run.json();
    assert_eq!(done["status"]["healthy"], true, "{run:?}");
    assert_eq!(done["status"]["state"], "SUCCESS");
    assert_eq!(done["timed_out"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_refuses_while_the_automated_one_runs() {
    let (stack, _) = ready_stack().await;
    stack
        .control()
        .start_automated_snapshot(std::time::Duration::from_secs(600));
    let run = ossnap(&stack, &["snapshot"]).await;
    assert_error(&run, 1, "SnapshotInProgress");
    assert!(run.stderr.contains("automated snapshot"), "{run:?}");
    let run = ossnap(&stack, &["snapshot", "--output", "json"]).await;
    assert_error(&run, 1, "SnapshotInProgress");

    let run = ossnap(&stack, &["status", "--output", "json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["running"][0]["repository"], "cs-automated");
    let run = ossnap(&stack, &["status"]).await;
    assert!(run.stdout.contains("cs-automated"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_ends_with_3_when_still_running_and_4_when_unhealthy() {
    let (stack, _) = ready_stack().await;
    stack
        .control()
        .set_next_snapshot_outcome(SnapshotOutcome::NeverFinishes);
    let wait = ["--wait", "--interval", "50ms", "--timeout", "300ms"];
    let run = ossnap(
        &stack,
        &[&["snapshot", "--name", "stuck"][..], &wait].concat(),
    )
    .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stdout.contains("still running after 0s"), "{run:?}");
    let run = ossnap(&stack, &["status", "stuck", "--output", "json"]).await;
    assert_eq!(run.code, 0, "running is not a failure of status: {run:?}");
    assert_eq!(run.json()["done"], false);
    // The stuck snapshot is deleted (aborted) so that the next one may start.
    stack
        .deps(&[])
        .opensearch
        .delete_snapshots("ossnap", &["stuck"])
        .await
        .unwrap();
    ossnap_tests::stack::wait_until_idle(&stack.deps(&[])).await;

    stack
        .control()
        .set_next_snapshot_outcome(SnapshotOutcome::Failed {
            reason: "disk full".into(),
        });
    let run = ossnap(
        &stack,
        &[
            &["snapshot", "--name", "broken", "--output", "json"][..],
            &wait[..3],
        ]
        .concat(),
    )
    .await;
    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(run.json()["status"]["state"], "FAILED");
    let run = ossnap(&stack, &["status", "broken"]).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.contains("FAIL: no"), "{run:?}");
    assert!(run.stdout.contains("disk full"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_list_show_the_repository() {
    let (stack, _) = ready_stack().await;
    take_snapshot(&stack, "ossnap-20261128-020000").await;

    let run = ossnap(&stack, &["status", "ossnap-20261128-020000"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("healthy     yes"), "{run:?}");
    let run = ossnap(
        &stack,
        &["status", "ossnap-20261128-020000", "--output", "json"],
    )
    .await;
    assert_eq!(run.json()["healthy"], true, "{run:?}");
    let run = ossnap(&stack, &["status", "no-such-snapshot"]).await;
    assert_error(&run, 1, "SnapshotMissing");

    let run = ossnap(&stack, &["list"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let mut lines = run.stdout.lines();
    assert!(lines.next().unwrap().starts_with("SNAPSHOT "), "{run:?}");
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[0], "ossnap-20261128-020000", "{run:?}");
    assert_eq!(row[1], "SUCCESS");
    assert_eq!(row[4], "2/2");
    assert_eq!(row[5], "ossnap");
    let run = ossnap(&stack, &["list", "--output", "json"]).await;
    let listed = run.json();
    assert_eq!(listed["snapshots"][0]["taken_by"], "ossnap");
    assert_eq!(listed["snapshots"][0]["healthy"], true);

    let run = ossnap(&stack, &["list", "--repository", "unregistered"]).await;
    assert_error(&run, 1, "RepositoryMissing");
    assert!(run.stderr.contains("ossnap register"), "{run:?}");
    let run = ossnap(
        &stack,
        &["list", "--repository", "unregistered", "--output", "json"],
    )
    .await;
    assert_error(&run, 1, "RepositoryMissing");
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_reads_the_bucket_and_exits_4_on_damage() {
    let (stack, _) = ready_stack().await;
    take_snapshot(&stack, "checked").await;

    let run = ossnap(&stack, &["verify", "checked"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("PASS: complete in the bucket"),
        "{run:?}"
    );
    let run = ossnap(
        &stack,
        &["verify", "checked", "--depth", "full", "--output", "json"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let verified = run.json();
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["depth"], "full");
    assert!(verified["requests"]["bytes_read"].as_u64().unwrap() > 0);

    // One data blob goes missing from the bucket.
    let s3 = stack.local.s3_client();
    let bucket = &stack.local.config().bucket;
    let listing = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(format!("{}/indices/", ossnap_tests::stack::BASE_PATH))
        .send()
        .await
        .unwrap();
    let blob = listing
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .find(|key| key.rsplit('/').next().unwrap().starts_with("__"))
        .expect("a data blob")
        .to_string();
    s3.delete_object()
        .bucket(bucket)
        .key(&blob)
        .send()
        .await
        .unwrap();

    let run = ossnap(&stack, &["verify", "checked"]).await;
    assert_error(&run, 4, "VerificationFailed");
    assert!(run.stderr.contains("missing"), "{run:?}");
    let run = ossnap(&stack, &["verify", "checked", "--output", "json"]).await;
    assert_error(&run, 4, "VerificationFailed");
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_shows_then_deletes_and_refuses_a_policy_that_keeps_nothing() {
    let (stack, deps) = ready_stack().await;
    for day in ["01", "02", "03"] {
        take_snapshot(&stack, &format!("ossnap-202611{day}-020000")).await;
    }
    let policy = [("RETENTION_MAX_COUNT", "2"), ("RETENTION_MIN_COUNT", "1")];

    let run = ossnap_with(&stack, &policy, &["retention", "--dry-run"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with("dry run: nothing was deleted"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("would delete  ossnap-20261101-020000")),
        "{run:?}"
    );
    assert_eq!(
        deps.opensearch
            .get_snapshots("ossnap", &["_all"], false)
            .await
            .unwrap()
            .len(),
        3
    );

    let run = ossnap_with(&stack, &policy, &["retention", "--output", "json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let output = run.json();
    assert_eq!(output["dry_run"], false);
    assert_eq!(output["deleted"][0]["snapshot"], "ossnap-20261101-020000");
    assert_eq!(output["kept"].as_array().unwrap().len(), 2);
    assert_eq!(
        deps.opensearch
            .get_snapshots("ossnap", &["_all"], false)
            .await
            .unwrap()
            .len(),
        2
    );

    let keep_nothing = [("RETENTION_MIN_COUNT", "0")];
    let run = ossnap_with(&stack, &keep_nothing, &["retention"]).await;
    assert_error(&run, 2, "ConfigError");
    assert!(run.stderr.contains("RETENTION_MIN_COUNT=0"), "{run:?}");
    let run = ossnap_with(&stack, &keep_nothing, &["retention", "--output", "json"]).await;
    assert_error(&run, 2, "ConfigError");
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_plans_refuses_an_open_index_then_restores_under_a_rename() {
    let (stack, deps) = ready_stack().await;
    take_snapshot(&stack, "kept-1").await;

    // The index is open: even the plan is refused, with the fixes.
    let run = ossnap(&stack, &["restore", "kept-1", "--plan", "--output", "json"]).await;
    assert_error(&run, 1, "RestoreConflict");
    let run = ossnap(&stack, &["restore", "kept-1"]).await;
    assert_error(&run, 1, "RestoreConflict");
    assert!(run.stderr.contains("logs-2026.11"), "{run:?}");

    // The plan under a rename changes nothing and names what would come back.
    let rename = [
        "--rename-pattern",
        "(.+)",
        "--rename-replacement",
        "restored-$1",
    ];
    let plan_args = [
        &["restore", "kept-1", "--plan", "--output", "json"][..],
        &rename,
    ]
    .concat();
    let run = ossnap(&stack, &plan_args).await;
    assert_eq!(run.code, 0, "{run:?}");
    let plan = run.json();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["indices"], json!(["restored-logs-2026.11"]));
    let run = ossnap(
        &stack,
        &[&["restore", "kept-1", "--plan"][..], &rename].concat(),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("RESTORED AS"), "{run:?}");
    assert!(
        run.stdout.contains("plan only: nothing was changed"),
        "{run:?}"
    );
    let (status, _) = deps
        .opensearch
        .exchange(&http::Method::GET, "/restored-logs-2026.11", &[], None)
        .await
        .unwrap();
    assert_eq!(status, 404, "the plan created nothing");

    let run = ossnap(
        &stack,
        &[
            "restore",
            "kept-1",
            "--rename-pattern",
            "(.+)",
            "--rename-replacement",
            "restored-$1",
            "--wait",
            "--interval",
            "50ms",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let restored = run.json();
    assert_eq!(
        restored["restore"]["indices"],
        json!(["restored-logs-2026.11"])
    );
    assert_eq!(restored["progress"]["done"], true, "{run:?}");
    assert_eq!(restored["progress"]["healthy"], true, "{run:?}");
    let count = deps
        .opensearch
        .call(
            http::Method::GET,
            "/restored-logs-2026.11/_count",
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(count["count"], 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_signs_the_requests() {
    let (stack, _) = ready_stack().await;
    let config = &stack.local.config();
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::write(
        &credentials,
        format!(
            "[backup]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            config.credentials.access_key_id, config.credentials.secret_access_key
        ),
    )
    .unwrap();
    let config_file = dir.path().join("config");
    std::fs::write(
        &config_file,
        format!("[profile backup]\nregion = {}\n", config.region),
    )
    .unwrap();
    let from_profile = [
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AWS_REGION", ""),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap()),
        ("AWS_CONFIG_FILE", config_file.to_str().unwrap()),
    ];
    let run = ossnap_with(&stack, &from_profile, &["--profile", "backup", "list"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let run = ossnap_with(&stack, &from_profile, &["--profile", "nobody", "list"]).await;
    assert_ne!(run.code, 0, "{run:?}");
}

fn verdicts(run: &Run) -> Vec<(String, String)> {
    run.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn verdict(run: &Run, check: &str) -> Value {
    run.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no check {check}: {run:?}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_passes_a_healthy_stack() {
    let (stack, _) = ready_stack().await;
    take_snapshot(&stack, "ossnap-20261128-020000").await;
    let run = ossnap(
        &stack,
        &["doctor", "--max-age", "3650d", "--output", "json"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["healthy"], true);
    for (check, status) in verdicts(&run) {
        assert!(
            status == "PASS" || status == "NOT CHECKED",
            "{check} is {status}: {run:?}"
        );
    }
    let passed: Vec<String> = verdicts(&run)
        .into_iter()
        .filter(|(_, status)| status == "PASS")
        .map(|(check, _)| check)
        .collect();
    for check in [
        "settings",
        "endpoint reachable",
        "credentials accepted",
        "role mapping",
        "repository registered",
        "repository verify",
        "automated snapshot",
        "newest healthy snapshot",
    ] {
        assert!(
            passed.iter().any(|p| p == check),
            "{check} did not pass: {run:?}"
        );
    }

    // The local S3 server (s3s) answers none of the bucket-settings calls: reported as such.
    for check in [
        "bucket public-access block",
        "bucket policy status",
        "bucket encryption",
        "bucket TLS-only",
        "bucket lifecycle",
    ] {
        let bucket = verdict(&run, check);
        assert_eq!(bucket["status"], "NOT CHECKED", "{run:?}");
        assert!(
            bucket["detail"]
                .as_str()
                .unwrap()
                .starts_with("the S3 server does not answer Get"),
            "{run:?}"
        );
    }

    let run = ossnap(&stack, &["doctor", "--max-age", "3650d"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.lines().all(|l| !l.starts_with("FAIL")),
        "{run:?}"
    );
    assert!(run.stdout.contains("PASS         role mapping"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_each_broken_link_with_its_fix() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);

    // Nothing registered yet: the repository fails, and so does the newest snapshot's check.
    let run = ossnap(&stack, &["doctor", "--output", "json"]).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(run.json()["healthy"], false);
    let repository = verdict(&run, "repository registered");
    assert_eq!(repository["status"], "FAIL");
    assert_eq!(repository["fix"], "register it: `ossnap register`");
    assert_eq!(
        verdict(&run, "newest healthy snapshot")["status"],
        "NOT CHECKED"
    );

    // Registered with other settings than the environment's.
    let run = ossnap(&stack, &["register", "--base-path", "elsewhere"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let run = ossnap(&stack, &["doctor", "--output", "json"]).await;
    let repository = verdict(&run, "repository registered");
    assert_eq!(repository["status"], "FAIL", "{run:?}");
    assert!(
        repository["detail"].as_str().unwrap().contains("elsewhere"),
        "{run:?}"
    );

    // The caller unmapped: FAIL with the request that maps it, and that request works.
    unmap_the_caller(&deps).await;
    let run = ossnap(&stack, &["doctor"]).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.contains("FAIL         role mapping"), "{run:?}");
    let run = ossnap(&stack, &["doctor", "--output", "json"]).await;
    let mapping = verdict(&run, "role mapping");
    assert_eq!(mapping["status"], "FAIL");
    let fix = mapping["fix"].as_str().unwrap();
    let request = fix
        .split("PATCH _plugins/_security/api/rolesmapping/manage_snapshots ")
        .nth(1)
        .and_then(|rest| rest.split("  (").next())
        .unwrap_or_else(|| panic!("the fix names the PATCH request: {fix}"));
    let patch: Value = serde_json::from_str(request).unwrap();
    assert_eq!(
        patch,
        json!([{"op": "add", "path": "/backend_roles/-", "value": "arn:aws:iam::123456789012:role/ossnap-local"}])
    );
    let admin = stack.deps(&[]);
    admin
        .opensearch
        .call(
            http::Method::PATCH,
            "/_plugins/_security/api/rolesmapping/manage_snapshots",
            &[],
            Some(&patch),
        )
        .await
        .unwrap();
    let run = ossnap(&stack, &["doctor", "--output", "json"]).await;
    assert_eq!(verdict(&run, "role mapping")["status"], "PASS", "{run:?}");

    // all_access instead of manage_snapshots: a warning.
    admin
        .opensearch
        .call(
            http::Method::PUT,
            "/_plugins/_security/api/rolesmapping/all_access",
            &[],
            Some(&json!({"backend_roles": ["arn:aws:iam::123456789012:role/ossnap-local"]})),
        )
        .await
        .unwrap();
    let run = ossnap(&stack, &["doctor", "--output", "json"]).await;
    assert_eq!(verdict(&run, "role mapping")["status"], "WARN", "{run:?}");

    // The endpoint unreachable: FAIL, and everything after it not checked.
    let run = ossnap(
        &stack,
        &[
            "doctor",
            "--endpoint",
            "http://127.0.0.1:9",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(verdict(&run, "endpoint reachable")["status"], "FAIL");
    assert_eq!(
        verdict(&run, "credentials accepted")["status"],
        "NOT CHECKED"
    );
    assert_eq!(
        verdict(&run, "repository registered")["status"],
        "NOT CHECKED"
    );
}

/// Runs `command` in a detached tmux session on its own server (a real terminal of 160x20) and
/// captures the pane, escapes included, every 100 ms until `EXIT=` shows; returns every frame.
async fn frames_in_tmux(stack: &TestStack, extra: &[(&str, &str)], command: &str) -> Vec<String> {
    let tmux_present = std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        tmux_present,
        "tmux is needed to test progress on a real terminal: apt-get install tmux (make test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("run.sh");
    let mut text = String::new();
    for (name, value) in stack
        .env()
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .chain(extra.iter().copied())
    {
        text.push_str(&format!("export {name}='{value}'\n"));
    }
    text.push_str(&format!(
        "{} {command}\necho \"EXIT=$?\"\nsleep 60\n",
        env!("CARGO_BIN_EXE_ossnap")
    ));
    std::fs::write(&script, text).unwrap();
    let socket = format!("ossnap-cli-test-{}-{}", std::process::id(), command.len());
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(["-L", &socket])
            .args(args)
            .output()
            .expect("tmux runs")
    };
    let started = tmux(&[
        "new-session",
        "-d",
        "-s",
        "ossnap",
        "-x",
        "160",
        "-y",
        "20",
        &format!("sh {}", script.display()),
    ]);
    assert!(started.status.success(), "{started:?}");
    let mut frames = Vec::new();
    for _ in 0..300 {
        let capture = tmux(&["capture-pane", "-p", "-e", "-t", "ossnap"]);
        let frame = String::from_utf8_lossy(&capture.stdout).to_string();
        let finished = frame.contains("EXIT=");
        frames.push(frame);
        if finished {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tmux(&["kill-server"]);
    frames
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_wait_draws_progress_and_colour_on_a_terminal() {
    let stack = TestStack::start_with(|config| {
        config.snapshot_duration = std::time::Duration::from_secs(3);
    })
    .await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs-2026.11", 10).await;
    stack.register(&deps).await;

    let frames = frames_in_tmux(
        &stack,
        &[],
        "snapshot --name on-a-terminal --wait --interval 200ms",
    )
    .await;
    let last = frames.last().unwrap();
    assert!(last.contains("EXIT=0"), "{frames:#?}");
    assert!(
        frames
            .iter()
            .any(|f| f.contains("on-a-terminal [") && f.contains("/2 shards")),
        "no progress bar was drawn: {frames:#?}"
    );
    // The bar is cleared once done; the report is coloured on a terminal.
    assert!(!last.contains("/2 shards"), "{last}");
    assert!(last.contains("\u{1b}[32mSUCCESS"), "{last:?}");

    let frames = frames_in_tmux(&stack, &[("NO_COLOR", "1")], "list").await;
    let last = frames.last().unwrap();
    assert!(
        last.contains("EXIT=0") && last.contains("on-a-terminal"),
        "{frames:#?}"
    );
    assert!(!last.contains('\u{1b}'), "NO_COLOR is honoured: {last:?}");
}
