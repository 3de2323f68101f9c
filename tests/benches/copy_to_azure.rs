//! copy on a synthetic repository in the local S3, to Azurite, beside what bounds it and what a
//! user would script instead:
//!
//! 1. `copy`, the release Lambda binary (`make bench` builds it) run as Lambda runs it, as the
//!    migrate workflow drives it: plan, each batch of the plan, finalize; its throughput,
//!    requests per blob and peak RSS (VmHWM of the one warm process);
//! 2. copy again: nothing to copy, only listings (its requests are printed);
//! 3. the ceilings, for the same bytes: the local S3's raw GET throughput (every blob, by the
//!    keys written, COPY_CONCURRENCY at once, bytes discarded) and Azurite's raw PUT throughput
//!    (one Put Blob per blob, the same sizes and bytes, no S3 in the way, as many at once);
//! 4. the Python twin (`bench/python/copy_twin.py`: boto3 + azure-storage-blob, blob by blob),
//!    on a sample of the repository: at some 50 ms a blob here, the whole repository would take
//!    more than an hour.
//!
//! Azurite slows down as its container fills, so copy (and copy again), the ceilings and the
//! twin each run on a stack of their own, starting from an empty Azurite.
//!
//! The repository: OSSNAP_BENCH_BLOBS data blobs (100,000 by default) of OSSNAP_BENCH_BYTES in
//! all (2 GiB), 500 to a shard folder, five shards to an index, each folder with its
//! `snap-*.dat` and `index-*`, the indices' metadata, the root `snap-`/`meta-`, `index-0` and
//! `index.latest`. Most data blobs are small (0.5 to 8 KiB, as Lucene's many small files),
//! one in a hundred is large and one in a thousand larger than the 8 MiB block, so that copy
//! sends blocks. Written straight into the S3 server's directory (much faster than PUTs); every
//! measured read goes through the S3 API. OSSNAP_BENCH_TWIN_BLOBS sizes the twin's sample (2,000).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use ossnap_repository::{
    layout, smile, Codec, FileInfo, IndexEntry, RepositoryData, ShardSnapshot, ShardSnapshotEntry,
    ShardSnapshots, SnapshotEntry, SnapshotInfo,
};
use ossnap_tests::{LambdaProcess, TestStack};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const BASE_PATH: &str = "synthetic";
const SNAPSHOT: &str = "synthetic-1";
const UUID: &str = "c3ludGhldGljLWNvcHktYmVuY2g";
const BLOBS_PER_FOLDER: usize = 500;
const SHARDS_PER_INDEX: usize = 5;
/// copy's default (COPY_CONCURRENCY), used by the ceilings too.
const CONCURRENCY: usize = 16;
/// Shard folders per batch: the default (100) makes batches of 50,000 blobs here, longer than
/// the test harness waits for one invocation (120 s); 5 (2,500 blobs) keeps each well within it.
const PLAN_BATCH_FOLDERS: &str = "5";
/// Where each measured copy writes in the container.
const COPY_BASE: &str = "copy";
const CEILING_BASE: &str = "ceiling";
const TWIN_BASE: &str = "twin";

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        Err(_) => default,
    }
}

/// A cheap, fixed pseudo-random number for `n`, so every run writes the same repository.
fn mix(n: u64) -> u64 {
    let mut x = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The data blobs' sizes: small ones, and large and larger ones sharing what is left of `bytes`.
fn data_sizes(blobs: usize, bytes: u64) -> Vec<u64> {
    let weight = |i: usize| match (i % 1000, i % 100) {
        (999, _) => 6,
        (_, 99) => 1,
        _ => 0,
    };
    let small = |i: usize| 512 + mix(i as u64) % 7681;
    let small_total: u64 = (0..blobs).filter(|i| weight(*i) == 0).map(small).sum();
    let units: u64 = (0..blobs).map(weight).sum();
    let unit = bytes.saturating_sub(small_total) / units.max(1);
    (0..blobs)
        .map(|i| match weight(i) {
            0 => small(i),
            w => {
                // From a quarter to 1.75 of the blob's share.
                let share = w * unit;
                share / 4 + mix(i as u64 + 1) % (share * 3 / 2).max(1)
            }
        })
        .collect()
}

/// A blob's content: a window of a random buffer, different for each blob.
struct Content(Vec<u8>);

impl Content {
    const LEN: usize = 32 << 20;

    fn new() -> Content {
        let mut buffer = vec![0u8; Content::LEN];
        for (i, chunk) in buffer.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&mix(i as u64).to_le_bytes()[..chunk.len()]);
        }
        Content(buffer)
    }

    fn of(&self, blob: usize, size: u64) -> &[u8] {
        let size = size as usize;
        assert!(
            size <= Content::LEN,
            "a blob of {size} bytes is over the buffer"
        );
        let start = (mix(blob as u64) as usize) % (Content::LEN - size + 1);
        &self.0[start..start + size]
    }
}

/// The synthetic repository: every blob's name (relative to the base path) and size.
struct Repository {
    blobs: Vec<(String, u64)>,
    folders: usize,
}

impl Repository {
    fn bytes(&self) -> u64 {
        self.blobs.iter().map(|(_, size)| size).sum()
    }
}

fn write(root: &Path, blob: &str, bytes: &[u8]) {
    let path = root.join(blob);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn synthesize(root: &Path, data_blobs: usize, data_bytes: u64, content: &Content) -> Repository {
    let sizes = data_sizes(data_blobs, data_bytes);
    let folders = data_blobs.div_ceil(BLOBS_PER_FOLDER).max(1);
    let indices = folders.div_ceil(SHARDS_PER_INDEX);
    let mut blobs = Vec::new();
    let mut put = |root: &Path, blob: String, bytes: &[u8]| {
        write(root, &blob, bytes);
        blobs.push((blob, bytes.len() as u64));
    };
    let mut data = RepositoryData::default();
    data.snapshots.push(SnapshotEntry {
        name: SNAPSHOT.into(),
        uuid: UUID.into(),
        state: Some(1),
        index_metadata_lookup: None,
        version: Some("2.19.0".into()),
        start_time_millis: None,
        end_time_millis: None,
        slm_policy: None,
    });
    let mut index_names = Vec::new();
    let mut next_blob = 0;
    for index in 0..indices {
        let (name, id) = (format!("logs-{index:04}"), format!("index-id-{index:04}"));
        let shards = SHARDS_PER_INDEX.min(folders - index * SHARDS_PER_INDEX);
        let shard_generation = |shard: usize| format!("gen-{index}-{shard}");
        data.indices.insert(
            name.clone(),
            IndexEntry {
                id: id.clone(),
                snapshots: vec![UUID.into()],
                shard_generations: Some((0..shards).map(|s| Some(shard_generation(s))).collect()),
            },
        );
        let metadata =
            json!({ &name: {"settings": {"index.number_of_shards": shards.to_string()}}});
        put(
            root,
            layout::index_metadata(&id, UUID),
            &smile::write_blob(Codec::IndexMetadata, &metadata).unwrap(),
        );
        for shard in 0..shards {
            let folder = index * SHARDS_PER_INDEX + shard;
            // The blobs left, shared evenly among the folders left.
            let count = (data_blobs - next_blob) / (folders - folder);
            let files: Vec<FileInfo> = (next_blob..next_blob + count)
                .map(|n| FileInfo {
                    name: format!("__{n:08x}"),
                    physical_name: format!("_{n}.cfs"),
                    length: sizes[n],
                    checksum: Some("1a2b3c".into()),
                    part_size: None,
                    written_by: Some("9.12.0".into()),
                    meta_hash: None,
                })
                .collect();
            for (file, n) in files.iter().zip(next_blob..) {
                put(
                    root,
                    layout::shard_data(&id, shard as u32, &file.name),
                    content.of(n, file.length),
                );
            }
            next_blob += count;
            let shard_snapshot = ShardSnapshot {
                name: SNAPSHOT.into(),
                index_version: 1,
                start_time: 0,
                time: 0,
                incremental_file_count: files.len() as u64,
                incremental_size: files.iter().map(|f| f.length).sum(),
                files,
            };
            // The shard's index-<generation>: every file of its snapshots (here, the one).
            let shard_index = ShardSnapshots {
                files: shard_snapshot.files.clone(),
                snapshots: [(
                    SNAPSHOT.to_string(),
                    ShardSnapshotEntry {
                        files: shard_snapshot
                            .files
                            .iter()
                            .map(|f| f.name.clone())
                            .collect(),
                        shard_state_id: None,
                    },
                )]
                .into(),
            };
            put(
                root,
                layout::shard_snapshot(&id, shard as u32, UUID),
                &shard_snapshot.to_blob().unwrap(),
            );
            put(
                root,
                layout::shard_index(&id, shard as u32, &shard_generation(shard)),
                &shard_index.to_blob().unwrap(),
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
        total_shards: folders as u32,
        successful_shards: folders as u32,
        failures: vec![],
    };
    put(root, layout::snapshot_info(UUID), &info.to_blob().unwrap());
    put(
        root,
        layout::global_metadata(UUID),
        &smile::write_blob(Codec::Metadata, &json!({"meta-data": {}})).unwrap(),
    );
    put(root, layout::root_index(0), &data.to_json().unwrap());
    put(root, "index.latest".into(), &0u64.to_be_bytes());
    Repository { blobs, folders }
}

/// One measured pass over the repository's bytes.
struct Measure {
    name: String,
    blobs: u64,
    bytes: u64,
    seconds: f64,
    requests: u64,
    peak_rss_kib: Option<u64>,
}

impl Measure {
    fn print_header() {
        println!(
            "{:<40} {:>9} {:>9} {:>8} {:>8} {:>13} {:>13}",
            "", "blobs", "MB", "s", "MB/s", "requests/blob", "peak RSS MiB"
        );
    }

    fn print(&self) {
        let mb = self.bytes as f64 / 1e6;
        println!(
            "{:<40} {:>9} {:>9.1} {:>8.1} {:>8.1} {:>13.2} {:>13}",
            self.name,
            self.blobs,
            mb,
            self.seconds,
            mb / self.seconds,
            self.requests as f64 / self.blobs.max(1) as f64,
            self.peak_rss_kib
                .map_or("-".into(), |kib| format!("{:.1}", kib as f64 / 1024.0)),
        );
    }
}

/// Runs `work` on each item, `CONCURRENCY` at once.
async fn each_at_once<T, F>(items: Vec<T>, work: impl Fn(T) -> F)
where
    T: Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = JoinSet::new();
    for item in items {
        let slot = slots.clone().acquire_owned().await.unwrap();
        let job = work(item);
        tasks.spawn(async move {
            job.await;
            drop(slot);
        });
        // Collect what finished, so that the set stays small.
        while let Some(done) = tasks.try_join_next() {
            done.unwrap();
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// GETs every blob of the repository through the S3 API (bytes read and dropped). The keys are
/// the ones written, not listed: the local S3 server (s3s-fs) walks the whole bucket for every
/// listing page, which at 100,000 keys takes minutes and is no part of a GET's cost.
async fn raw_get(stack: &TestStack, repository: &Repository) -> Measure {
    let s3 = stack.local.s3_client();
    let bucket = stack.local.config().bucket.clone();
    let started = Instant::now();
    let read = Arc::new(AtomicU64::new(0));
    let keys: Vec<String> = repository
        .blobs
        .iter()
        .map(|(name, _)| format!("{BASE_PATH}/{name}"))
        .collect();
    each_at_once(keys, |key| {
        let (s3, bucket, read) = (s3.clone(), bucket.clone(), read.clone());
        async move {
            let object = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap();
            let bytes = object.body.collect().await.unwrap().into_bytes();
            read.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
    })
    .await;
    let blobs = repository.blobs.len() as u64;
    Measure {
        name: "ceiling: local S3 raw GET".into(),
        blobs,
        bytes: read.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        requests: blobs,
        peak_rss_kib: None,
    }
}

/// One Put Blob per blob of the repository (the same sizes and bytes), no S3 in the way.
async fn raw_put(stack: &TestStack, repository: &Repository, content: &Arc<Content>) -> Measure {
    let azure = stack.local.azure().expect("the stack runs Azurite");
    let store = Arc::new(azure.object_store().expect("an Azurite client"));
    let started = Instant::now();
    let blobs: Vec<(usize, String, u64)> = repository
        .blobs
        .iter()
        .enumerate()
        .map(|(n, (name, size))| (n, name.clone(), *size))
        .collect();
    each_at_once(blobs, |(n, name, size)| {
        let (store, content) = (store.clone(), content.clone());
        async move {
            let bytes = bytes::Bytes::copy_from_slice(content.of(n, size));
            store
                .put(
                    &ObjectPath::from(format!("{CEILING_BASE}/{name}")),
                    bytes.into(),
                )
                .await
                .expect("Azurite takes the blob");
        }
    })
    .await;
    Measure {
        name: "ceiling: Azurite raw PUT".into(),
        blobs: repository.blobs.len() as u64,
        bytes: repository.bytes(),
        seconds: started.elapsed().as_secs_f64(),
        requests: repository.blobs.len() as u64,
        peak_rss_kib: None,
    }
}

/// `make bench`'s release build of a function (`cargo lambda build --release`).
fn bootstrap(name: &str) -> PathBuf {
    let dir = std::env::var("OSSNAP_BENCH_PACKAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target/lambda"));
    let path = dir.join(name).join("bootstrap");
    assert!(
        path.exists(),
        "{} is missing: run `make bench`",
        path.display()
    );
    path
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What the copies of one run did, summed over its invocations.
#[derive(Default)]
struct CopyRun {
    blobs_copied: u64,
    blobs_skipped: u64,
    bytes_copied: u64,
    bytes_skipped: u64,
    /// Requests by side (`source`, `destination`) and kind, as copy counts them.
    requests: std::collections::BTreeMap<String, u64>,
    invocations: usize,
}

impl CopyRun {
    fn add(&mut self, output: &Value) {
        let count = |field: &str| output[field].as_u64().unwrap_or(0);
        self.blobs_copied += count("blobs_copied");
        self.blobs_skipped += count("blobs_skipped");
        self.bytes_copied += count("bytes_copied");
        self.bytes_skipped += count("bytes_skipped");
        for side in ["source", "destination"] {
            for (kind, value) in output["requests"][side].as_object().into_iter().flatten() {
                if kind.starts_with("bytes") {
                    continue;
                }
                *self.requests.entry(format!("{side} {kind}")).or_default() +=
                    value.as_u64().unwrap_or(0);
            }
        }
        self.invocations += 1;
    }

    fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    fn describe_requests(&self) -> String {
        self.requests
            .iter()
            .filter(|(_, count)| **count > 0)
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One invocation of copy, which must succeed; prints what it did and how long it took.
async fn invoke(copy: &mut LambdaProcess, step: &str, event: Value) -> Value {
    let started = Instant::now();
    let output = copy
        .invoke(event)
        .await
        .unwrap_or_else(|e| panic!("{step}: {e:?}"));
    println!(
        "  {step}: {} blobs copied ({:.1} MB), {} skipped, in {:.1} s",
        output["blobs_copied"],
        output["bytes_copied"].as_f64().unwrap_or(0.0) / 1e6,
        output["blobs_skipped"],
        started.elapsed().as_secs_f64()
    );
    output
}

/// The migrate workflow's three steps, by hand: plan, each batch of the plan, finalize.
async fn copy_as_the_workflow_does(stack: &TestStack, copy: &mut LambdaProcess) -> (CopyRun, f64) {
    let to = json!({"base_path": COPY_BASE});
    let started = Instant::now();
    let mut run = CopyRun::default();
    let plan = invoke(
        copy,
        "plan",
        json!({"mode": "plan", "base_path": BASE_PATH, "to": to}),
    )
    .await;
    run.add(&plan);
    let generation = plan["generation"].clone();
    let s3 = stack.local.s3_client();
    let items = s3
        .get_object()
        .bucket(plan["plan"]["bucket"].as_str().unwrap())
        .key(plan["plan"]["key"].as_str().unwrap())
        .send()
        .await
        .expect("the plan is in S3");
    let items: Vec<Value> =
        serde_json::from_slice(&items.body.collect().await.unwrap().into_bytes()).unwrap();
    let batches = items.len();
    for (n, item) in items.into_iter().enumerate() {
        let event = json!({
            "mode": "batch",
            "base_path": BASE_PATH,
            "generation": item["generation"],
            "folders": item["folders"],
            "to": to,
        });
        let step = format!("batch {}/{batches}", n + 1);
        run.add(&invoke(copy, &step, event).await);
    }
    let finalize =
        json!({"mode": "finalize", "base_path": BASE_PATH, "generation": generation, "to": to});
    run.add(&invoke(copy, "finalize", finalize).await);
    (run, started.elapsed().as_secs_f64())
}

/// The Python twin on the first `sample` blobs of the listing.
async fn python_twin(stack: &TestStack, sample: u64) -> Option<Measure> {
    let python = workspace().join(".venv-bench/bin/python");
    if !python.exists() {
        println!(
            "(no {}: run `make bench` for the Python twin)",
            python.display()
        );
        return None;
    }
    let output = tokio::process::Command::new(&python)
        .arg(workspace().join("bench/python/copy_twin.py"))
        .env_clear()
        .envs(stack.env())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SNAPSHOT_BASE_PATH", BASE_PATH)
        .env("AZURE_STORAGE_BASE_PATH", TWIN_BASE)
        .env("COPY_TWIN_MAX_BLOBS", sample.to_string())
        .output()
        .await
        .expect("the twin starts");
    assert!(
        output.status.success(),
        "the Python twin failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("the twin's JSON line");
    let requests = report["requests"]
        .as_object()
        .map_or(0, |kinds| kinds.values().filter_map(Value::as_u64).sum());
    Some(Measure {
        name: format!("Python twin (first {} blobs)", report["blobs"]),
        blobs: report["blobs"].as_u64().unwrap(),
        bytes: report["bytes"].as_u64().unwrap(),
        seconds: report["seconds"].as_f64().unwrap(),
        requests,
        peak_rss_kib: report["peak_rss_kib"].as_u64(),
    })
}

/// A local stack with Azurite, and the synthetic repository in its S3.
async fn stack_with_repository(
    data_blobs: usize,
    data_bytes: u64,
    content: &Content,
) -> (TestStack, Repository) {
    let stack = TestStack::start_with(|config| config.azure = true).await;
    let config = stack.local.config();
    let root = config
        .data_dir
        .join("s3")
        .join(&config.bucket)
        .join(BASE_PATH);
    let repository = synthesize(&root, data_blobs, data_bytes, content);
    (stack, repository)
}

#[tokio::main]
async fn main() {
    let data_blobs = env_number("OSSNAP_BENCH_BLOBS", 100_000) as usize;
    let data_bytes = env_number("OSSNAP_BENCH_BYTES", 2 << 30);
    let twin_sample = env_number("OSSNAP_BENCH_TWIN_BLOBS", 2_000);
    let bench_started = Instant::now();

    let content = Arc::new(Content::new());
    let (stack, repository) = stack_with_repository(data_blobs, data_bytes, &content).await;
    println!(
        "synthetic repository: {} blobs ({data_blobs} data blobs in {} shard folders), {:.1} MB",
        repository.blobs.len(),
        repository.folders,
        repository.bytes() as f64 / 1e6,
    );

    // Each measure starts from an empty Azurite, on a stack of its own: Azurite slows down as its
    // container fills (its PUTs took four times as long with 100,000 blobs already there).
    let mut env: Vec<(String, String)> = stack.env();
    env.push(("PLAN_BATCH_FOLDERS".into(), PLAN_BATCH_FOLDERS.into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut copy = LambdaProcess::start(&bootstrap("copy"), &env)
        .await
        .expect("copy starts");
    println!("copy:");
    let (first, seconds) = copy_as_the_workflow_does(&stack, &mut copy).await;
    let peak_after_first = copy.peak_rss_kib();
    assert_eq!(
        first.bytes_copied,
        repository.bytes(),
        "copy wrote every byte of the repository once"
    );
    let copied = Measure {
        name: format!("copy (Lambda binary, {} invocations)", first.invocations),
        blobs: first.blobs_copied,
        bytes: first.bytes_copied,
        seconds,
        requests: first.total_requests(),
        peak_rss_kib: peak_after_first,
    };
    println!("copy again:");
    let (again, again_seconds) = copy_as_the_workflow_does(&stack, &mut copy).await;
    assert_eq!(
        again.bytes_copied, 0,
        "the second copy found everything there"
    );
    let incremental = Measure {
        name: "copy again (nothing to copy)".into(),
        blobs: again.blobs_skipped,
        bytes: again.bytes_copied,
        seconds: again_seconds,
        requests: again.total_requests(),
        peak_rss_kib: copy.peak_rss_kib(),
    };
    drop(copy);
    drop(stack);
    let (stack, repository) = stack_with_repository(data_blobs, data_bytes, &content).await;
    let get = raw_get(&stack, &repository).await;
    let put = raw_put(&stack, &repository, &content).await;
    drop(stack);
    let (stack, _) = stack_with_repository(data_blobs, data_bytes, &content).await;
    let twin = python_twin(&stack, twin_sample).await;

    println!();
    Measure::print_header();
    for measure in [&get, &put, &copied, &incremental]
        .into_iter()
        .chain(twin.as_ref())
    {
        measure.print();
    }
    println!();
    println!("copy's requests: {}", first.describe_requests());
    println!(
        "incremental copy's requests ({} bytes copied, {} blobs skipped): {}",
        again.bytes_copied,
        again.blobs_skipped,
        again.describe_requests()
    );
    let copy_rate = copied.bytes as f64 / copied.seconds;
    println!(
        "copy runs at {:.0}% of the slower ceiling",
        100.0 * copy_rate / (get.bytes as f64 / get.seconds).min(put.bytes as f64 / put.seconds)
    );
    if let Some(twin) = &twin {
        println!(
            "copy vs the Python twin: {:.1}x the throughput, {:.1}x less memory",
            copy_rate / (twin.bytes as f64 / twin.seconds),
            twin.peak_rss_kib.unwrap_or(0) as f64 / copied.peak_rss_kib.unwrap_or(1) as f64
        );
    }
    println!(
        "the whole benchmark took {:.1} min",
        bench_started.elapsed().as_secs_f64() / 60.0
    );
}
