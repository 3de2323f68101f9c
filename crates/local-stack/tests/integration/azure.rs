//! Azurite in the local stack (`azure: true`, `ossnap-local --azure`) and the emulator's
//! `type: azure` repositories in it: a snapshot written on one cluster restores on another that
//! registered the container read-only, refused writes and bad settings answer as repository-azure
//! does, and Azurite stops with the stack. Blobs are inspected with object_store, a client
//! independent of the emulator's.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Client, Response};
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use ossnap_local_stack::{LocalStack, LocalStackConfig, Profile, DEFAULT_CONTAINER};
use serde_json::{json, Value};

async fn start_with_azurite(name: &str) -> LocalStack {
    common::start_with(LocalStackConfig {
        azure: true,
        ..LocalStackConfig::for_tests(common::fresh_dir(name))
    })
    .await
}

fn check(response: Response, status: u16, error_type: &str) -> Value {
    assert_eq!(response.status, status, "{}", response.text);
    let body = response.json();
    assert_eq!(body["error"]["type"], error_type, "{body}");
    body
}

fn azure_repository(settings: Value) -> Option<Value> {
    Some(json!({"type": "azure", "settings": settings}))
}

/// Keys below `prefix` in the stack's container, read with object_store.
async fn container_keys(stack: &LocalStack, prefix: &str) -> Vec<String> {
    let store = stack.azure().unwrap().object_store().unwrap();
    let mut keys: Vec<String> = store
        .list(Some(&object_store::path::Path::from(prefix)))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn azurite_runs_with_the_stack_its_container_exists_and_it_stops_with_the_stack() {
    let stack = start_with_azurite("azurite").await;
    let azure = stack.azure().expect("the stack runs Azurite").clone();
    assert_eq!(azure.account, "devstoreaccount1");
    assert_eq!(azure.container, DEFAULT_CONTAINER);
    assert!(
        azure.blob_endpoint.starts_with("http://127.0.0.1:")
            && azure.blob_endpoint.ends_with("/devstoreaccount1"),
        "{}",
        azure.blob_endpoint
    );
    assert!(
        !format!("{azure:?}").contains(&azure.key),
        "Debug hides the key"
    );

    // The container exists: another client writes into it and lists it.
    let store = azure.object_store().unwrap();
    store
        .put(
            &object_store::path::Path::from("probe/hello"),
            b"hello".to_vec().into(),
        )
        .await
        .expect("the container exists");
    assert_eq!(container_keys(&stack, "probe").await, ["probe/hello"]);

    let environment = stack.environment(None);
    let value = |name: &str| {
        environment
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| panic!("{name} missing from {environment:?}"))
    };
    assert_eq!(value("AZURE_STORAGE_ACCOUNT"), azure.account);
    assert_eq!(value("AZURE_STORAGE_KEY"), azure.key);
    assert_eq!(value("AZURE_STORAGE_CONTAINER"), DEFAULT_CONTAINER);
    assert_eq!(value("AZURE_STORAGE_ENDPOINT"), azure.blob_endpoint);

    let pid = stack.azurite_pid().expect("Azurite's process");
    assert!(process_exists(pid));
    stack.shutdown().await;
    assert!(!process_exists(pid), "Azurite stopped with the stack");

    // Dropped without a shutdown (a failed test): Azurite stops too; a restart on the same data
    // directory finds the container and its blob again.
    let config = LocalStackConfig {
        azure: true,
        ..LocalStackConfig::for_tests(common::fresh_dir("azurite-drop"))
    };
    let stack = common::start_with(config.clone()).await;
    let pid = stack.azurite_pid().unwrap();
    let store = stack.azure().unwrap().object_store().unwrap();
    store
        .put(
            &object_store::path::Path::from("kept"),
            b"1".to_vec().into(),
        )
        .await
        .unwrap();
    drop(stack);
    assert!(
        !process_exists(pid),
        "Azurite stopped when the stack dropped"
    );
    let stack = common::start_with(config).await;
    assert_eq!(container_keys(&stack, "").await, ["kept"]);
}

#[tokio::test]
async fn a_stack_without_azurite_has_no_azure_client() {
    let stack = common::start("no-azurite").await;
    assert!(stack.azure().is_none());
    assert!(stack
        .environment(None)
        .iter()
        .all(|(name, _)| !name.starts_with("AZURE_")));
    let client = Client::for_stack(&stack);
    // repository-azure with nothing in its keystore: the repository registers, and its first
    // request (verification) finds no client.
    let body = check(
        client
            .call(
                "PUT",
                "/_snapshot/azure",
                azure_repository(json!({"container": DEFAULT_CONTAINER})),
            )
            .await,
        500,
        "repository_verification_exception",
    );
    assert_eq!(
        body["error"]["caused_by"],
        json!({"type": "settings_exception", "reason": "Unable to find client with name [default]"})
    );
    assert_eq!(
        client.ok("GET", "/_snapshot/azure", None).await["azure"]["type"],
        "azure"
    );
}

#[tokio::test]
async fn a_snapshot_in_azure_restores_on_another_cluster_that_registered_it_read_only() {
    let stack = start_with_azurite("azure-restore").await;
    let client = Client::for_stack(&stack);
    client.seed_index("orders", 2, 7).await;
    client
        .ok(
            "PUT",
            "/_snapshot/to-azure",
            azure_repository(json!({"container": DEFAULT_CONTAINER, "base_path": "/clusters/one"})),
        )
        .await;
    client
        .ok(
            "PUT",
            "/_snapshot/to-azure/first",
            Some(json!({"indices": "orders"})),
        )
        .await;
    let info = client.wait_for_snapshot("to-azure", "first").await;
    assert_eq!(info["state"], "SUCCESS", "{info}");

    // The repository is in Azurite, in the layout repository-s3 writes, and not in S3.
    let keys = container_keys(&stack, "clusters/one").await;
    for expected in ["clusters/one/index-0", "clusters/one/index.latest"] {
        assert!(keys.iter().any(|key| key == expected), "{keys:?}");
    }
    for prefix in [
        "clusters/one/snap-",
        "clusters/one/meta-",
        "clusters/one/indices/",
    ] {
        assert!(
            keys.iter().any(|key| key.starts_with(prefix)),
            "{prefix} in {keys:?}"
        );
    }
    assert!(
        keys.iter().all(|key| !key.contains("/tests-")),
        "verification cleaned up: {keys:?}"
    );
    let in_s3 = stack
        .s3_client()
        .list_objects_v2()
        .bucket(&stack.config().bucket)
        .send()
        .await
        .unwrap();
    assert!(in_s3.contents().is_empty(), "{in_s3:?}");

    let other = stack
        .start_another_cluster("azure-side", Profile::V2)
        .await
        .unwrap();
    let other_client = Client {
        endpoint: other.opensearch_endpoint(),
        ..Client::for_stack(&stack)
    };
    other_client
        .ok(
            "PUT",
            "/_snapshot/from-azure",
            azure_repository(json!({
                "container": DEFAULT_CONTAINER,
                "base_path": "clusters/one",
                "client": "default",
                "readonly": true
            })),
        )
        .await;
    let verified = other_client
        .ok("POST", "/_snapshot/from-azure/_verify", None)
        .await;
    assert_eq!(
        verified["nodes"].as_object().unwrap().len(),
        1,
        "{verified}"
    );
    let registered = other_client.ok("GET", "/_snapshot/from-azure", None).await;
    assert_eq!(registered["from-azure"]["type"], "azure", "{registered}");
    assert_eq!(registered["from-azure"]["settings"]["readonly"], "true");
    let listed = other_client
        .ok("GET", "/_snapshot/from-azure/_all", None)
        .await;
    assert_eq!(listed["snapshots"][0]["snapshot"], "first", "{listed}");
    other_client
        .ok(
            "POST",
            "/_snapshot/from-azure/first/_restore?wait_for_completion=true",
            Some(json!({"indices": "orders"})),
        )
        .await;
    let restored = other_client.ok("GET", "/orders/_count", None).await;
    let original = client.ok("GET", "/orders/_count", None).await;
    assert_eq!(restored["count"], 7, "{restored}");
    assert_eq!(restored["count"], original["count"]);

    // Read-only: neither a new snapshot nor a deletion touches the container.
    let body = check(
        other_client
            .call("PUT", "/_snapshot/from-azure/second", None)
            .await,
        500,
        "repository_exception",
    );
    assert_eq!(
        body["error"]["reason"],
        "[from-azure] cannot create snapshot in a readonly repository"
    );
    let body = check(
        other_client
            .call("DELETE", "/_snapshot/from-azure/first", None)
            .await,
        500,
        "repository_exception",
    );
    assert_eq!(
        body["error"]["reason"],
        "[from-azure] cannot delete snapshot from a readonly repository"
    );
    assert_eq!(container_keys(&stack, "clusters/one").await, keys);

    // The writable registration on the first cluster still deletes.
    client.ok("DELETE", "/_snapshot/to-azure/first", None).await;
    let left = container_keys(&stack, "clusters/one").await;
    assert!(
        left.iter().all(|key| !key.contains("/indices/")),
        "{left:?}"
    );
    other.shutdown().await;
}

#[tokio::test]
async fn bad_azure_settings_are_refused_as_repository_azure_refuses_them() {
    let stack = start_with_azurite("azure-refused").await;
    let client = Client::for_stack(&stack);

    let body = check(
        client
            .call(
                "PUT",
                "/_snapshot/elsewhere",
                azure_repository(json!({"container": "no-such-container", "base_path": "b"})),
            )
            .await,
        500,
        "repository_verification_exception",
    );
    assert_eq!(
        body["error"]["reason"],
        "[elsewhere] path b/ is not accessible on cluster-manager node"
    );
    let cause = &body["error"]["caused_by"];
    assert_eq!(cause["type"], "i_o_exception", "{body}");
    assert_eq!(cause["reason"], "Can not write blob master.dat");
    assert_eq!(cause["caused_by"]["type"], "blob_storage_exception");
    let storage_reason = cause["caused_by"]["reason"].as_str().unwrap();
    assert!(
        storage_reason.starts_with("Status code 404, \"")
            && storage_reason.contains("ContainerNotFound"),
        "{storage_reason}"
    );

    // Read-only, verification only lists the container, and fails there.
    let body = check(
        client
            .call(
                "PUT",
                "/_snapshot/elsewhere",
                azure_repository(json!({"container": "no-such-container", "readonly": "true"})),
            )
            .await,
        500,
        "repository_verification_exception",
    );
    let reason = body["error"]["caused_by"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("com.azure.storage.blob.models.BlobStorageException: Status code 404"),
        "{reason}"
    );

    // Without `container`, the plugin's default one, which this account does not have.
    let body = check(
        client
            .call("PUT", "/_snapshot/defaults", azure_repository(json!({})))
            .await,
        500,
        "repository_verification_exception",
    );
    assert!(
        body["error"]["caused_by"]["caused_by"]["reason"]
            .as_str()
            .unwrap()
            .contains("ContainerNotFound"),
        "{body}"
    );

    // A client the node is not configured with (the deprecated `account` names it too).
    for settings in [
        json!({"container": DEFAULT_CONTAINER, "client": "secondary"}),
        json!({"container": DEFAULT_CONTAINER, "account": "secondary"}),
    ] {
        let body = check(
            client
                .call("PUT", "/_snapshot/other-client", azure_repository(settings))
                .await,
            500,
            "repository_verification_exception",
        );
        assert_eq!(
            body["error"]["caused_by"],
            json!({"type": "settings_exception", "reason": "Unable to find client with name [secondary]"})
        );
    }

    // Registered without verification, a snapshot into the missing container fails reading it.
    client
        .ok(
            "PUT",
            "/_snapshot/unverified?verify=false",
            azure_repository(json!({"container": "no-such-container"})),
        )
        .await;
    client.seed_index("orders", 1, 1).await;
    let body = check(
        client.call("PUT", "/_snapshot/unverified/s", None).await,
        500,
        "repository_exception",
    );
    assert_eq!(
        body["error"]["reason"],
        "[unverified] could not read repository data from index blob"
    );
    assert_eq!(
        body["error"]["caused_by"]["caused_by"]["type"],
        "blob_storage_exception"
    );
}

/// Reads the binary's output up to its last line before it waits, returning the exports. The
/// output stays open: the binary still prints when it stops.
fn exports_of(output: &mut impl BufRead) -> Vec<(String, String)> {
    let mut exports = Vec::new();
    for line in output.lines() {
        let line = line.unwrap();
        if line.starts_with("Ctrl-C") {
            break;
        }
        if let Some((name, value)) = line
            .strip_prefix("export ")
            .and_then(|export| export.split_once('='))
        {
            exports.push((name.to_owned(), value.to_owned()));
        }
    }
    exports
}

fn answers(endpoint: &str) -> bool {
    let address = endpoint
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    std::net::TcpStream::connect(address).is_ok()
}

#[test]
fn the_binary_with_azure_prints_the_azure_exports_and_azurite_ends_with_it() {
    for signal in ["-TERM", "-KILL"] {
        let data_dir = common::fresh_dir("binary-azure");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ossnap-local"))
            .args([
                "--data-dir",
                data_dir.to_str().unwrap(),
                "--opensearch-port",
                "0",
                "--s3-port",
                "0",
                "--azure",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("ossnap-local starts");
        let mut output = BufReader::new(child.stdout.take().unwrap());
        let exports = exports_of(&mut output);
        let export = |name: &str| {
            exports
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_else(|| panic!("{name} missing from {exports:?}"))
        };
        assert_eq!(export("AZURE_STORAGE_ACCOUNT"), "devstoreaccount1");
        assert_eq!(export("AZURE_STORAGE_CONTAINER"), DEFAULT_CONTAINER);
        assert!(!export("AZURE_STORAGE_KEY").is_empty());
        let endpoint = export("AZURE_STORAGE_ENDPOINT");
        assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
        assert!(answers(&endpoint), "Azurite listens at {endpoint}");

        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        assert_eq!(
            exit.success(),
            signal == "-TERM",
            "a clean exit on SIGTERM only: {exit:?}"
        );
        // Stopped by the stack on SIGTERM; on SIGKILL, by the death signal it was started with.
        let stopped = (0..300).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            !answers(&endpoint)
        });
        assert!(
            stopped,
            "Azurite still answers at {endpoint} after kill {signal}"
        );
    }
}
