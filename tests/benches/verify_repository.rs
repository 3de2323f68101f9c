//! verify on synthetic repositories in the local S3. Data blobs are written straight into the S3
//! server's directory, which is much faster than 100,000 PUTs; verify then reads everything
//! through the S3 API as it would on AWS.
//!
//! 1. 1,000 shards and 100,000 data blobs: wall time, and the S3 requests made against what the
//!    layout needs (one listing page per shard folder and one for the root, plus one read per
//!    metadata blob).
//! 2. 10,000 shards with 20 ms added to every S3 request (S3-like latency): one invocation as
//!    the deployed function runs it, within the time budget its 300 s Lambda timeout leaves
//!    (240 s), then one continuing from its `resume_from` with a 30 s budget.

use std::path::Path;
use std::time::{Duration, Instant};

use ossnap_core::config::Environment;
use ossnap_core::event::Invocation;
use ossnap_repository::{
    layout, smile, Codec, FileInfo, IndexEntry, RepositoryData, ShardSnapshot, SnapshotEntry,
    SnapshotInfo,
};
use ossnap_tests::TestStack;
use ossnap_verify::{Verifier, VerifyInput};
use serde_json::json;

/// How large a synthetic repository is.
#[derive(Clone, Copy)]
struct Layout {
    indices: usize,
    shards_per_index: usize,
    blobs_per_shard: usize,
}

const WIDE: Layout = Layout {
    indices: 10,
    shards_per_index: 100,
    blobs_per_shard: 100,
};
const MANY_SHARDS: Layout = Layout {
    indices: 100,
    shards_per_index: 100,
    blobs_per_shard: 5,
};
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
fn synthesize(root: &Path, layout: Layout) -> usize {
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
    for index in 0..layout.indices {
        let (name, id) = (format!("logs-{index}"), format!("index-id-{index}"));
        data.indices.insert(
            name.clone(),
            IndexEntry {
                id: id.clone(),
                snapshots: vec![UUID.into()],
                shard_generations: None,
            },
        );
        let metadata = json!({ &name: {"settings": {"index.number_of_shards": layout.shards_per_index.to_string()}}});
        write(
            root,
            &layout::index_metadata(&id, UUID),
            &smile::write_blob(Codec::IndexMetadata, &metadata).unwrap(),
        );
        for shard in 0..layout.shards_per_index as u32 {
            let files: Vec<FileInfo> = (0..layout.blobs_per_shard)
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
        total_shards: (layout.indices * layout.shards_per_index) as u32,
        successful_shards: (layout.indices * layout.shards_per_index) as u32,
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
    1 + 2 + layout.indices + layout.indices * layout.shards_per_index
}

#[tokio::main]
async fn main() {
    wide_repository().await;
    many_shards_with_latency().await;
}

/// A stack whose bucket holds `layout` under [`BASE_PATH`]; returns the metadata blob count.
async fn stack_with(layout: Layout, s3_latency: Duration) -> (TestStack, usize) {
    let stack = TestStack::start_with(|config| config.s3_latency = s3_latency).await;
    let config = stack.local.config();
    let root = config
        .data_dir
        .join("s3")
        .join(&config.bucket)
        .join(BASE_PATH);
    let started = Instant::now();
    let metadata_blobs = synthesize(&root, layout);
    println!(
        "synthetic repository of {} shards written in {:.1}s",
        layout.indices * layout.shards_per_index,
        started.elapsed().as_secs_f64()
    );
    (stack, metadata_blobs)
}

fn verifier(stack: &TestStack) -> Verifier {
    Verifier::new(
        &Environment::from_pairs(stack.env()),
        stack.local.s3_client(),
        ossnap_core::clock::Clock::system(),
    )
    .unwrap()
}

async fn verify_once(
    verifier: &Verifier,
    resume_from: Option<usize>,
    time_budget_seconds: Option<u64>,
) -> ossnap_verify::VerifyOutput {
    let input = VerifyInput {
        snapshot: Some(SNAPSHOT.into()),
        base_path: Some(BASE_PATH.into()),
        resume_from,
        time_budget_seconds,
        ..VerifyInput::default()
    };
    ossnap_verify::run(
        verifier,
        Invocation {
            input,
            scheduled_time: None,
        },
    )
    .await
    .expect("the synthetic snapshot verifies")
}

async fn wide_repository() {
    let layout = WIDE;
    let (stack, metadata_blobs) = stack_with(layout, Duration::ZERO).await;
    let started = Instant::now();
    let output = verify_once(&verifier(&stack), None, None).await;
    let wall = started.elapsed();
    let shards = layout.indices * layout.shards_per_index;
    // One page for the root listing, one per shard folder (each holds fewer than 1,000 keys).
    let listing_pages = 1 + shards;
    let budget = ((listing_pages + metadata_blobs) as f64 * 1.01).floor() as u64;
    let made = output.requests.list + output.requests.get;
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
        output.requests.list, output.requests.get
    );
    assert_eq!(output.blobs, shards * layout.blobs_per_shard);
    assert!(
        made <= budget,
        "{made} requests, over the budget of {budget}"
    );
}

async fn many_shards_with_latency() {
    let (stack, _) = stack_with(MANY_SHARDS, Duration::from_millis(20)).await;
    let verifier = verifier(&stack);
    // One invocation with the deployed budget, then one continuing from where it stopped with a
    // short budget: the figures of each, and how many invocations the whole check takes.
    let mut resume_from = None;
    for budget in [DEPLOYED_BUDGET_SECONDS, 30] {
        let started = Instant::now();
        let output = verify_once(&verifier, resume_from, Some(budget)).await;
        let took = started.elapsed().as_secs_f64();
        println!(
            "10,000 shards, 20 ms per S3 request, budget {budget} s, from shard {}: checked {} shards in {took:.1} s ({} LIST + {} GET), complete: {}, resume_from: {:?}",
            resume_from.unwrap_or(0),
            output.shards,
            output.requests.list,
            output.requests.get,
            output.complete,
            output.resume_from
        );
        assert_eq!(output.shards_total, 10_000);
        assert!(output.shards > 0, "every invocation makes progress");
        assert_eq!(
            output.resume_from,
            (!output.complete).then(|| resume_from.unwrap_or(0) + output.shards)
        );
        // It stops starting checks at the budget; those under way take seconds, not minutes.
        assert!(
            took < budget as f64 + 60.0,
            "{took} s for a {budget} s budget"
        );
        if output.complete {
            break;
        }
        if budget == DEPLOYED_BUDGET_SECONDS {
            println!(
                "at that pace the whole check takes {} invocations of the deployed function",
                10_000usize.div_ceil(output.shards)
            );
        }
        resume_from = output.resume_from;
    }
}

/// The time budget of the deployed verify: its 300 s Lambda timeout less the 60 s margin.
const DEPLOYED_BUDGET_SECONDS: u64 = 240;
