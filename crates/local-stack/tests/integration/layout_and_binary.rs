//! The emulator's repositories have the shape of real ones (compared with the ES 7.10 fixture
//! that OpenSearch's layout keeps), oversize bodies are refused, and the `ossnap-local` binary
//! starts, prints what to export, and stops on SIGTERM keeping its data.

use crate::common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{start, Client};
use ossnap_repository::codec::unframe;
use serde_json::json;

/// A blob key reduced to its kind: ids replaced, so `indices/abc/0/__x` → `indices/{id}/{shard}/__{uuid}`.
fn kind(key: &str) -> String {
    let parts: Vec<&str> = key.split('/').collect();
    let file = *parts.last().unwrap();
    let file_kind = if file.starts_with("index-") {
        "index-{gen}".to_owned()
    } else if file == "index.latest" || file == "incompatible-snapshots" {
        file.to_owned()
    } else if let Some(rest) = file.strip_prefix("snap-") {
        format!("snap-{{uuid}}{}", &rest[rest.len() - 4..])
    } else if file.starts_with("meta-") {
        "meta-{id}.dat".to_owned()
    } else if file.starts_with("__") {
        "__{uuid}".to_owned()
    } else {
        file.to_owned()
    };
    match parts.len() {
        1 => file_kind,
        3 => format!("indices/{{id}}/{file_kind}"),
        4 => format!("indices/{{id}}/{{shard}}/{file_kind}"),
        _ => format!("unexpected/{key}"),
    }
}

fn fixture_files(root: &Path, relative: &str, into: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(root.join(relative)).unwrap() {
        let entry = entry.unwrap();
        let name = format!("{relative}{}", entry.file_name().to_string_lossy());
        if entry.path().is_dir() {
            fixture_files(root, &format!("{name}/"), into);
        } else {
            into.push((name, std::fs::read(entry.path()).unwrap()));
        }
    }
}

/// (kind, codec name) for every framed blob, and the kind of the rest.
fn shape(blobs: &[(String, Vec<u8>)]) -> BTreeSet<(String, String)> {
    blobs
        .iter()
        .map(|(key, bytes)| {
            let codec = if key.starts_with("indices/") && key.contains("/__") {
                "data".to_owned()
            } else {
                unframe(bytes)
                    .map(|framed| framed.codec)
                    .unwrap_or_else(|_| "unframed".to_owned())
            };
            (kind(key), codec)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_writes_the_same_kinds_of_blobs_with_the_same_codecs_as_a_real_cluster() {
    let stack = start("layout").await;
    let client = Client::for_stack(&stack);
    client.seed_index("posts", 1, 4).await;
    client.seed_index("comments", 1, 4).await;
    client
        .register_repository("backups", "ossnap-local", "")
        .await;
    client
        .ok(
            "PUT",
            "/_snapshot/backups/one?wait_for_completion=true",
            None,
        )
        .await;
    client
        .ok("PUT", "/posts/_doc/late", Some(json!({"n": 5})))
        .await;
    client
        .ok(
            "PUT",
            "/_snapshot/backups/two?wait_for_completion=true",
            None,
        )
        .await;

    let s3 = stack.s3_client();
    let listing = s3
        .list_objects_v2()
        .bucket("ossnap-local")
        .send()
        .await
        .unwrap();
    let mut emulated = Vec::new();
    for object in listing.contents() {
        let key = object.key().unwrap().to_owned();
        let body = s3
            .get_object()
            .bucket("ossnap-local")
            .key(&key)
            .send()
            .await
            .unwrap();
        emulated.push((
            key,
            body.body.collect().await.unwrap().into_bytes().to_vec(),
        ));
    }
    let mut real = Vec::new();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/real-repositories/ES_7_10_Double");
    fixture_files(&fixture, "", &mut real);

    assert_eq!(
        shape(&emulated),
        shape(&real),
        "emulated {emulated_keys:?}",
        emulated_keys = emulated.iter().map(|(key, _)| key).collect::<Vec<_>>()
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_bodies_are_refused_without_a_panic() {
    let stack = start("oversize").await;
    let client = Client::for_stack(&stack);
    let huge = format!(
        "{{\"settings\":{{\"x\":\"{}\"}}}}",
        "a".repeat(11 * 1024 * 1024)
    );
    let response = client.raw_body("PUT", "/huge", &huge).await;
    assert_eq!(response.status, 413);
    assert_eq!(response.json()["status"], 413);
    assert_eq!(
        client.call("GET", "/", None).await.status,
        200,
        "still serving"
    );
    stack.shutdown().await;
}

#[test]
fn the_binary_prints_its_exports_and_stops_on_sigterm() {
    let data_dir = common::fresh_dir("binary");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ossnap-local"))
        .args([
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--opensearch-port",
            "0",
            "--s3-port",
            "0",
            "--seed",
        ])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("SNAPSHOT_BUCKET", "demo-bucket")
        .stdout(Stdio::piped())
        .spawn()
        .expect("ossnap-local starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut exports = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("Ctrl-C") {
            break;
        }
        if let Some(export) = line.strip_prefix("export ") {
            exports.push(export.to_owned());
        }
    }
    for expected in [
        "OPENSEARCH_ENDPOINT=http://127.0.0.1:",
        "AWS_ENDPOINT_URL_S3=http://127.0.0.1:",
        "AWS_ACCESS_KEY_ID=",
        "AWS_SECRET_ACCESS_KEY=",
        "SNAPSHOT_BUCKET=demo-bucket",
    ] {
        assert!(
            exports.iter().any(|export| export.starts_with(expected)),
            "{expected} missing from {exports:?}"
        );
    }
    assert!(data_dir.join("s3/demo-bucket").is_dir(), "bucket created");
    let state = std::fs::read_to_string(data_dir.join("opensearch-state.json")).unwrap();
    assert!(state.contains("\"orders\""), "--seed made sample indices");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    assert!(data_dir.join("opensearch-state.json").exists(), "data kept");
}
