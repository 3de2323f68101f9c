//! The snapshot lifecycle end to end through signed HTTP: register, snapshot, poll, status,
//! what lands in S3, incremental reuse, restore, delete, restart.

use crate::common;

use std::time::Duration;

use common::{start, start_with, Client};
use ossnap_local_stack::{LocalStack, LocalStackConfig};
use ossnap_repository::codec::{checksum_to_string, verify_footer};
use ossnap_repository::repository_data::decode_index_latest;
use ossnap_repository::{layout, RepositoryData, ShardSnapshot, ShardSnapshots, SnapshotInfo};
use serde_json::json;

async fn object(stack: &LocalStack, key: &str) -> Option<Vec<u8>> {
    let output = stack
        .s3_client()
        .get_object()
        .bucket(&stack.config().bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(output.body.collect().await.unwrap().into_bytes().to_vec())
}

async fn keys(stack: &LocalStack, prefix: &str) -> Vec<String> {
    let output = stack
        .s3_client()
        .list_objects_v2()
        .bucket(&stack.config().bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    output
        .contents()
        .iter()
        .filter_map(|object| object.key().map(str::to_owned))
        .collect()
}

async fn latest_repository_data(stack: &LocalStack, base: &str) -> RepositoryData {
    let generation = decode_index_latest(
        &object(stack, &format!("{base}/index.latest"))
            .await
            .unwrap(),
    )
    .unwrap();
    RepositoryData::from_json(
        &object(stack, &format!("{base}/index-{generation}"))
            .await
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_runs_reports_progress_and_lands_in_s3_in_the_opensearch_layout() {
    let stack = start("lifecycle").await;
    let client = Client::for_stack(&stack);
    client.seed_index("orders", 2, 12).await;
    client
        .register_repository("backups", "ossnap-local", "domain-a")
        .await;
    assert!(
        keys(&stack, "domain-a/tests-").await.is_empty(),
        "verification cleans up after itself"
    );

    let accepted = client
        .ok(
            "PUT",
            "/_snapshot/backups/nightly-1",
            Some(json!({"indices": "orders", "include_global_state": false, "metadata": {"taken_by": "ossnap", "run_id": "r-1"}})),
        )
        .await;
    assert_eq!(accepted, json!({"accepted": true}));

    let running = client.ok("GET", "/_snapshot/backups/nightly-1", None).await;
    assert_eq!(running["snapshots"][0]["state"], "IN_PROGRESS");
    assert_eq!(running["snapshots"][0]["metadata"]["run_id"], "r-1");
    let status = client.ok("GET", "/_snapshot/_status", None).await;
    assert_eq!(status["snapshots"][0]["snapshot"], "nightly-1");
    assert_eq!(status["snapshots"][0]["state"], "STARTED");
    assert_eq!(status["snapshots"][0]["shards_stats"]["total"], 2);

    let info = client.wait_for_snapshot("backups", "nightly-1").await;
    assert_eq!(info["state"], "SUCCESS");
    assert_eq!(
        info["shards"],
        json!({"total": 2, "failed": 0, "successful": 2})
    );
    assert_eq!(info["indices"], json!(["orders"]));
    assert_eq!(
        info["metadata"],
        json!({"taken_by": "ossnap", "run_id": "r-1"})
    );
    assert_eq!(info["include_global_state"], false);
    assert!(info["duration_in_millis"].as_i64().unwrap() >= 150);
    assert!(
        client.ok("GET", "/_snapshot/_status", None).await["snapshots"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // What a verifier reading S3 sees.
    let data = latest_repository_data(&stack, "domain-a").await;
    let entry = data
        .snapshot("nightly-1")
        .expect("finalised snapshots are listed in index-N");
    assert_eq!(entry.state, Some(1));
    let snapshot_info = SnapshotInfo::from_blob(
        &object(&stack, &format!("domain-a/snap-{}.dat", entry.uuid))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(snapshot_info.state.as_deref(), Some("SUCCESS"));
    assert_eq!(snapshot_info.metadata.unwrap()["run_id"], "r-1");
    assert!(object(&stack, &format!("domain-a/meta-{}.dat", entry.uuid))
        .await
        .is_some());
    let index = &data.indices["orders"];
    let blob_id = data.index_metadata_blob_id(entry, &index.id);
    assert!(object(
        &stack,
        &format!("domain-a/{}", layout::index_metadata(&index.id, &blob_id))
    )
    .await
    .is_some());
    let generations = index.shard_generations.clone().unwrap();
    assert_eq!(generations.len(), 2);
    let mut documents_files = 0;
    for shard in 0..2u32 {
        let shard_snapshot = ShardSnapshot::from_blob(
            &object(
                &stack,
                &format!(
                    "domain-a/{}",
                    layout::shard_snapshot(&index.id, shard, &entry.uuid)
                ),
            )
            .await
            .unwrap(),
        )
        .unwrap();
        assert!(shard_snapshot.files.iter().any(|file| file.is_virtual()));
        for file in shard_snapshot
            .files
            .iter()
            .filter(|file| !file.is_virtual())
        {
            let blob = object(
                &stack,
                &format!(
                    "domain-a/{}",
                    layout::shard_data(&index.id, shard, &file.name)
                ),
            )
            .await
            .unwrap();
            assert_eq!(blob.len() as u64, file.length);
            assert_eq!(
                Some(checksum_to_string(verify_footer(&blob).unwrap())),
                file.checksum
            );
            documents_files += 1;
        }
        let generation = generations[shard as usize].clone().unwrap();
        ShardSnapshots::from_blob(
            &object(
                &stack,
                &format!(
                    "domain-a/{}",
                    layout::shard_index(&index.id, shard, &generation)
                ),
            )
            .await
            .unwrap(),
        )
        .unwrap();
    }
    assert_eq!(documents_files, 2, "one segment per shard");

    // Finished snapshot status is read back from the shard files.
    let status = client
        .ok("GET", "/_snapshot/backups/nightly-1/_status", None)
        .await;
    let stats = &status["snapshots"][0]["stats"];
    assert_eq!(status["snapshots"][0]["state"], "SUCCESS");
    assert_eq!(stats["incremental"]["file_count"], 2);
    assert_eq!(
        stats["total"]["file_count"], 4,
        "two data files and two virtual commit points"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_snapshot_reuses_unchanged_blobs_and_progress_grows_with_time() {
    let stack = start_with(LocalStackConfig {
        snapshot_duration: Duration::from_millis(600),
        ..LocalStackConfig::for_tests(common::fresh_dir("incremental"))
    })
    .await;
    let client = Client::for_stack(&stack);
    client.seed_index("orders", 1, 5).await;
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
        .ok("PUT", "/orders/_doc/new", Some(json!({"n": 99})))
        .await;
    client
        .ok(
            "PUT",
            "/_snapshot/backups/two",
            Some(json!({"indices": ["orders"]})),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let early = client
        .ok("GET", "/_snapshot/backups/two/_status", None)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = client
        .ok("GET", "/_snapshot/backups/two/_status", None)
        .await;
    let stats = |status: &serde_json::Value, key: &str| {
        status["snapshots"][0]["stats"][key]["size_in_bytes"].as_u64()
    };
    assert_eq!(stats(&early, "incremental"), stats(&later, "incremental"));
    assert!(
        stats(&early, "total") > stats(&early, "incremental"),
        "the first segment is reused"
    );
    assert!(
        stats(&later, "processed") > stats(&early, "processed"),
        "{early} then {later}"
    );
    assert!(
        later["snapshots"][0]["stats"]["time_in_millis"].as_i64()
            > early["snapshots"][0]["stats"]["time_in_millis"].as_i64()
    );
    assert_eq!(
        early["snapshots"][0]["stats"]["incremental"]["file_count"], 1,
        "only the new segment is uploaded"
    );

    client.wait_for_snapshot("backups", "two").await;
    let data_blobs = |keys: Vec<String>| keys.into_iter().filter(|key| key.contains("/__")).count();
    assert_eq!(data_blobs(keys(&stack, "indices/").await), 2);

    // Deleting the first keeps the blob the second still uses.
    client.ok("DELETE", "/_snapshot/backups/one", None).await;
    assert_eq!(data_blobs(keys(&stack, "indices/").await), 2);
    client.ok("DELETE", "/_snapshot/backups/two", None).await;
    assert!(
        keys(&stack, "indices/").await.is_empty(),
        "nothing left once no snapshot uses the index"
    );
    let all = client.ok("GET", "/_snapshot/backups/_all", None).await;
    assert_eq!(all, json!({"snapshots": []}));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_reads_back_what_the_snapshot_wrote() {
    let stack = start("restore").await;
    let client = Client::for_stack(&stack);
    client.seed_index("orders", 3, 20).await;
    client
        .register_repository("backups", "ossnap-local", "r")
        .await;
    let created = client
        .ok(
            "PUT",
            "/_snapshot/backups/s1?wait_for_completion=true",
            Some(json!({"indices": "orders"})),
        )
        .await;
    assert_eq!(created["snapshot"]["state"], "SUCCESS");

    let clash = client
        .call(
            "POST",
            "/_snapshot/backups/s1/_restore",
            Some(json!({"indices": "orders"})),
        )
        .await;
    assert_eq!(clash.status, 500);
    assert_eq!(clash.json()["error"]["type"], "snapshot_restore_exception");

    let restored = client
        .ok(
            "POST",
            "/_snapshot/backups/s1/_restore?wait_for_completion=true",
            Some(json!({"indices": "orders", "rename_pattern": "(.+)", "rename_replacement": "restored_$1", "include_global_state": false})),
        )
        .await;
    assert_eq!(restored["snapshot"]["indices"], json!(["restored_orders"]));
    assert_eq!(
        client.ok("GET", "/restored_orders/_count", None).await["count"],
        20
    );
    assert_eq!(
        client.ok("GET", "/restored_orders/_doc/7", None).await["_source"],
        json!({"n": 7})
    );

    client.ok("DELETE", "/orders", None).await;
    client
        .ok("POST", "/_snapshot/backups/s1/_restore", None)
        .await;
    // Without waiting, the restore runs on: the primaries recover from the repository, and
    // searches fail until they are done, as on OpenSearch.
    let recovering = client.ok("GET", "/orders/_recovery", None).await;
    assert_eq!(recovering["orders"]["shards"][0]["type"], "SNAPSHOT");
    assert_eq!(recovering["orders"]["shards"][0]["stage"], "INDEX");
    assert_eq!(client.call("GET", "/orders/_count", None).await.status, 503);
    let mut stages = Vec::new();
    for _ in 0..200 {
        let recovery = client.ok("GET", "/orders/_recovery", None).await;
        let stage = recovery["orders"]["shards"][0]["stage"].clone();
        stages.push(stage.clone());
        if stage == "DONE" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(stages.last(), Some(&json!("DONE")), "{stages:?}");
    assert_eq!(client.ok("GET", "/orders/_count", None).await["count"], 20);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_directory_finds_everything_again() {
    let dir = common::fresh_dir("restart");
    let stack = start_with(LocalStackConfig::for_tests(&dir)).await;
    let client = Client::for_stack(&stack);
    client.seed_index("orders", 1, 3).await;
    client
        .register_repository("backups", "ossnap-local", "p")
        .await;
    client
        .ok(
            "PUT",
            "/_snapshot/backups/kept?wait_for_completion=true",
            None,
        )
        .await;
    stack.shutdown().await;

    let stack = start_with(LocalStackConfig::for_tests(&dir)).await;
    let client = Client::for_stack(&stack);
    assert_eq!(client.ok("GET", "/orders/_count", None).await["count"], 3);
    assert_eq!(
        client.ok("GET", "/_snapshot/backups", None).await["backups"]["settings"]["base_path"],
        "p"
    );
    assert_eq!(
        client.wait_for_snapshot("backups", "kept").await["state"],
        "SUCCESS"
    );
    stack.shutdown().await;
}
