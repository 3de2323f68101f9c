//! verify on a synthetic repository of 1,000 shards and 100,000 data blobs in the local S3:
//! wall time, and the S3 requests made against what the layout needs (one listing page per
//! shard folder and one for the root, plus one read per metadata blob). Data blobs are written
//! straight into the S3 server's directory, which is much faster than 100,000 PUTs; verify
//! then reads everything through the S3 API as it would on AWS.

use std::path::Path;
use std::time::Instant;

use ossnap_core::config::{Environment, Settings};
use ossnap_core::event::Invocation;
use ossnap_repository::{
    layout, smile, Codec, FileInfo, IndexEntry, RepositoryData, ShardSnapshot, SnapshotEntry,
    SnapshotInfo,
};
use ossnap_tests::TestStack;
use ossnap_verify::{Store, Verifier, VerifyInput};
use serde_json::json;

const INDICES: usize = 10;
const SHARDS_PER_INDEX: usize = 100;
const BLOBS_PER_SHARD: usize = 100;
const BLOB_BYTES: usize = 64;
const BASE_PATH: &str = "synthetic";
const SNAPSHOT: &str = "synthetic-1";
const UUID: &str = "c3ludGhldGljLXNuYXBzaG90";

fn write(root: &Path, blob: &str, bytes: &[u8]) {
    let path = root.join(blob);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Writes the repository into the S3 server's directory for the bucket; returns the number of
/// metadata blobs verify must read.
fn synthesize(root: &Path) -> usize {
    let mut data = RepositoryData::default();
    data.snapshots.push(SnapshotEntry {
        name: SNAPSHOT.into(),
        uuid: UUID.into(),
        state: Some(1),
        index_metadata_lookup: None,
        version: Some("2.17.0".into()),
        start_time_millis: None,
        end_time_millis: None,
        slm_policy: None,
    });
    let mut index_names = Vec::new();
    for index in 0..INDICES {
        let (name, id) = (format!("logs-{index}"), format!("index-id-{index}"));
        data.indices.insert(
            name.clone(),
            IndexEntry {
                id: id.clone(),
                snapshots: vec![UUID.into()],
                shard_generations: None,
            },
        );
        let metadata =
            json!({ &name: {"settings": {"index.number_of_shards": SHARDS_PER_INDEX.to_string()}}});
        write(
            root,
            &layout::index_metadata(&id, UUID),
            &smile::write_blob(Codec::IndexMetadata, &metadata).unwrap(),
        );
        for shard in 0..SHARDS_PER_INDEX as u32 {
            let files: Vec<FileInfo> = (0..BLOBS_PER_SHARD)
                .map(|n| FileInfo {
                    name: format!("__{shard}x{n}"),
                    physical_name: format!("_{n}.cfs"),
                    length: BLOB_BYTES as u64,
                    checksum: Some("1a2b3c".into()),
                    part_size: None,
                    written_by: Some("9.7.0".into()),
                    meta_hash: None,
                })
                .collect();
            for file in &files {
                write(
                    root,
                    &layout::shard_data(&id, shard, &file.name),
                    &[7u8; BLOB_BYTES],
                );
            }
            let shard_snapshot = ShardSnapshot {
                name: SNAPSHOT.into(),
                index_version: 1,
                start_time: 0,
                time: 0,
                incremental_file_count: files.len() as u64,
                incremental_size: (files.len() * BLOB_BYTES) as u64,
                files,
            };
            write(
                root,
                &layout::shard_snapshot(&id, shard, UUID),
                &shard_snapshot.to_blob().unwrap(),
            );
        }
        index_names.push(name);
    }
    let info = SnapshotInfo {
        name: SNAPSHOT.into(),
        uuid: Some(UUID.into()),
        version_id: None,
        indices: index_names,
        data_streams: None,
        state: Some("SUCCESS".into()),
        reason: None,
        include_global_state: Some(false),
        metadata: None,
        start_time: 0,
        end_time: 0,
        total_shards: (INDICES * SHARDS_PER_INDEX) as u32,
        successful_shards: (INDICES * SHARDS_PER_INDEX) as u32,
        failures: vec![],
    };
    write(root, &layout::snapshot_info(UUID), &info.to_blob().unwrap());
    write(
        root,
        &layout::global_metadata(UUID),
        &smile::write_blob(Codec::Metadata, &json!({"meta-data": {}})).unwrap(),
    );
    write(root, &layout::root_index(0), &data.to_json().unwrap());
    // index-N, snap-, meta-, one metadata blob per index, one shard snapshot per shard.
    1 + 2 + INDICES + INDICES * SHARDS_PER_INDEX
}

#[tokio::main]
async fn main() {
    let stack = TestStack::start().await;
    let config = stack.local.config();
    let root = config
        .data_dir
        .join("s3")
        .join(&config.bucket)
        .join(BASE_PATH);
    let started = Instant::now();
    let metadata_blobs = synthesize(&root);
    println!(
        "synthetic repository written in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let verifier = Verifier {
        settings: Settings::from_env(&Environment::from_pairs(stack.env())).unwrap(),
        depth: ossnap_verify::Depth::default(),
        store: Store::new(stack.local.s3_client()),
        clock: ossnap_core::clock::Clock::system(),
    };
    let input = VerifyInput {
        snapshot: Some(SNAPSHOT.into()),
        base_path: Some(BASE_PATH.into()),
        ..VerifyInput::default()
    };
    let started = Instant::now();
    let output = ossnap_verify::run(
        &verifier,
        Invocation {
            input,
            scheduled_time: None,
        },
    )
    .await
    .expect("the synthetic snapshot verifies");
    let wall = started.elapsed();
    let shards = INDICES * SHARDS_PER_INDEX;
    // One page for the root listing, one per shard folder (each holds fewer than 1,000 keys).
    let listing_pages = 1 + shards;
    let budget = ((listing_pages + metadata_blobs) as f64 * 1.01).floor() as u64;
    let made = output.s3_requests.list + output.s3_requests.get;
    println!(
        "verified {} indices, {} shards, {} blobs, {} bytes in {:.2}s",
        output.indices,
        output.shards,
        output.blobs,
        output.bytes,
        wall.as_secs_f64()
    );
    println!(
        "S3 requests: {} LIST + {} GET = {made} (0 HEAD); layout needs {listing_pages} listing pages + {metadata_blobs} metadata blobs; budget +1% = {budget}",
        output.s3_requests.list, output.s3_requests.get
    );
    assert_eq!(output.blobs, shards * BLOBS_PER_SHARD);
    assert!(
        made <= budget,
        "{made} requests, over the budget of {budget}"
    );
}
