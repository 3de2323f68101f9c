//! copy against the local stack: the emulator's snapshots in the local S3 copied into a folder
//! — what lands and in which order, after a kill, beside a conflicting blob, while the source
//! moves on, in a dry run, in the three workflow modes — and the real repositories of the
//! fixtures, each format.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use ossnap_copy::{Batch, Copier, CopyInput, CopyOutput, Destination, Mode};
use ossnap_core::check_restore::{self, CheckRestoreAnswer, CheckRestoreInput};
use ossnap_core::clock::Clock;
use ossnap_core::config::Environment;
use ossnap_core::event::Invocation;
use ossnap_core::restore::{self, IndexList, RestoreInput};
use ossnap_core::{Deps, ErrorKind};
use ossnap_local_stack::{Profile, SnapshotOutcome};
use ossnap_repository::repository_data::decode_index_latest;
use ossnap_repository::RepositoryData;
use ossnap_storage::azure::{AzureCredential, AzureLocation, AzureSettings, AzureStore};
use ossnap_storage::azure_target::AzureTarget;
use ossnap_storage::folder::FolderStore;
use ossnap_storage::s3::S3Store;
use ossnap_storage::{Blob, BlobSink, BlobStore, ByteStream, ReadRange, RequestCounts};
use ossnap_tests::stack::BASE_PATH;
use ossnap_tests::{LambdaProcess, TestStack};
use serde_json::json;
use tokio::sync::Notify;

fn copier(stack: &TestStack, destination: Arc<dyn BlobSink>) -> Copier {
    copier_with(stack, destination, &[])
}

fn copier_with(
    stack: &TestStack,
    destination: Arc<dyn BlobSink>,
    extra: &[(&str, &str)],
) -> Copier {
    let mut env = stack.env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Copier::new(
        &Environment::from_pairs(env),
        S3Store::new(stack.local.s3_client()),
        Destination::Store(destination),
    )
    .unwrap()
}

fn folder(dir: &tempfile::TempDir) -> Arc<FolderStore> {
    Arc::new(FolderStore::new(dir.path()))
}

async fn copy(copier: &Copier, input: CopyInput) -> ossnap_core::Result<CopyOutput> {
    ossnap_copy::run(copier, input).await
}

async fn copy_all(copier: &Copier) -> CopyOutput {
    copy(copier, CopyInput::default()).await.unwrap()
}

async fn index_docs(deps: &Deps, index: &str, docs: usize) {
    for n in 0..docs {
        deps.opensearch
            .call(
                http::Method::POST,
                &format!("/{index}/_doc"),
                &[],
                Some(&json!({"message": format!("later {n}")})),
            )
            .await
            .unwrap();
    }
}

/// Two indices of two shards and two snapshots, `one` and `two`, the second incremental (it
/// shares `orders`' data blobs and part of `logs`').
async fn two_snapshots() -> (TestStack, Deps) {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 30).await;
    stack.seed_index(&deps, "orders", 5).await;
    stack.register(&deps).await;
    stack.take_snapshot(&deps, "one").await;
    index_docs(&deps, "logs", 10).await;
    stack.take_snapshot(&deps, "two").await;
    (stack, deps)
}

fn source(stack: &TestStack) -> S3Store {
    S3Store::new(stack.local.s3_client())
        .scoped(stack.local.config().bucket.clone(), BASE_PATH.into())
}

/// Every blob of `store` and its bytes.
async fn contents(store: &dyn BlobStore) -> BTreeMap<String, Vec<u8>> {
    let mut all = BTreeMap::new();
    for blob in store.list("").await.unwrap() {
        let bytes = store.get(&blob.name).await.unwrap().unwrap();
        all.insert(blob.name, bytes);
    }
    all
}

/// The newest root generation of a repository and its `index-N`.
async fn root(store: &dyn BlobStore) -> (u64, RepositoryData) {
    let newest = store
        .list("index-")
        .await
        .unwrap()
        .iter()
        .filter_map(|blob| blob.name.strip_prefix("index-")?.parse::<u64>().ok())
        .max()
        .expect("a root index-N");
    let bytes = store
        .get(&format!("index-{newest}"))
        .await
        .unwrap()
        .unwrap();
    (newest, RepositoryData::from_json(&bytes).unwrap())
}

/// Reads the folder back as a repository in the bucket (under `base_path`) and verifies each
/// snapshot there with ossnap-verify, reading every data blob whole.
async fn verify_copy(stack: &TestStack, folder: &Path, base_path: &str, snapshots: &[&str]) {
    stack.upload_folder(folder, base_path).await;
    let verifier = ossnap_verify::Verifier {
        depth: ossnap_verify::Depth::Full,
        ..ossnap_verify::Verifier::new(
            &Environment::from_pairs(stack.env()),
            stack.local.s3_client(),
            Clock::without_sleeps(),
        )
        .unwrap()
    };
    for snapshot in snapshots {
        let input = ossnap_verify::VerifyInput {
            snapshot: Some(snapshot.to_string()),
            base_path: Some(base_path.into()),
            ..Default::default()
        };
        let invocation = Invocation {
            input,
            scheduled_time: None,
        };
        let output = ossnap_verify::run(&verifier, invocation)
            .await
            .unwrap_or_else(|e| panic!("{snapshot} in the copy: {e}"));
        assert!(output.verified && output.blobs > 0, "{output:?}");
    }
}

#[tokio::test]
async fn a_copy_holds_exactly_what_the_generation_needs_byte_for_byte() {
    let (stack, _deps) = two_snapshots().await;
    let source = source(&stack);
    // Blobs no snapshot of the generation references: a stray data blob, a root blob of no
    // snapshot, and a plan-like folder; none may be copied.
    let s3 = stack.local.s3_client();
    let bucket = stack.local.config().bucket.clone();
    let (_, data) = root(&source).await;
    let logs = &data.indices["logs"].id;
    for key in [
        format!("{BASE_PATH}/indices/{logs}/0/__stray"),
        format!("{BASE_PATH}/snap-stray.dat"),
        format!("{BASE_PATH}/incompatible-snapshots"),
    ] {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(b"stray".to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let output = copy_all(&copier(&stack, folder(&dir))).await;

    let copied = contents(&FolderStore::new(dir.path())).await;
    let at_source = contents(&source).await;
    for (name, bytes) in &copied {
        assert_eq!(Some(bytes), at_source.get(name), "{name} differs");
    }
    for stray in ["__stray", "snap-stray.dat", "incompatible-snapshots"] {
        assert!(
            !copied.keys().any(|name| name.ends_with(stray)),
            "{stray} was copied"
        );
    }
    let (generation, copied_data) = root(&FolderStore::new(dir.path())).await;
    assert_eq!(generation, output.generation);
    assert_eq!(copied_data, data);
    assert_eq!(
        decode_index_latest(&copied["index.latest"]).unwrap(),
        generation
    );
    assert_eq!(output.snapshots, ["one", "two"]);
    assert_eq!(output.blobs_copied, copied.len() as u64);
    assert_eq!(
        output.bytes_copied,
        copied.values().map(|b| b.len() as u64).sum::<u64>()
    );
    assert_eq!((output.blobs_skipped, output.newer_generation), (0, None));
    assert_eq!(output.requests.destination.put, copied.len() as u64);
    assert_eq!(
        output.to,
        json!({"location": dir.path().display().to_string()})
    );
    // Everything the two snapshots need is there, with its recorded length and content.
    verify_copy(&stack, dir.path(), "copies/round-trip", &["one", "two"]).await;
}

#[tokio::test]
async fn a_second_copy_writes_nothing_and_only_lists() {
    let (stack, _deps) = two_snapshots().await;
    let dir = tempfile::tempdir().unwrap();
    let copier = copier(&stack, folder(&dir));
    let first = copy_all(&copier).await;
    let second = copy_all(&copier).await;
    assert_eq!((second.blobs_copied, second.bytes_copied), (0, 0));
    assert_eq!(second.blobs_skipped, first.blobs_copied);
    assert_eq!(second.bytes_skipped, first.bytes_copied);
    let RequestCounts { get, put, list, .. } = second.requests.source;
    // One read: index-N. Each shard folder is known to be finished from its listing.
    assert_eq!((get, put), (1, 0), "{:?}", second.requests);
    assert!(list > 0);
    // One read at the destination: index.latest, whose 8 bytes a listing cannot tell.
    let destination = second.requests.destination;
    assert_eq!(
        (destination.get, destination.put),
        (1, 0),
        "{destination:?}"
    );
}

/// Records when each write starts and ends, around a folder.
#[derive(Debug)]
struct Recording {
    inner: FolderStore,
    events: Mutex<Vec<(bool, String)>>,
}

#[async_trait]
impl BlobStore for Recording {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn list(&self, prefix: &str) -> ossnap_core::Result<Vec<Blob>> {
        self.inner.list(prefix).await
    }
    async fn open(&self, blob: &str, range: ReadRange) -> ossnap_core::Result<Option<ByteStream>> {
        self.inner.open(blob, range).await
    }
    fn requests(&self) -> RequestCounts {
        self.inner.requests()
    }
}

#[async_trait]
impl BlobSink for Recording {
    async fn write(&self, blob: &str, size: u64, body: ByteStream) -> ossnap_core::Result<()> {
        self.events.lock().unwrap().push((false, blob.to_owned()));
        self.inner.write(blob, size, body).await?;
        self.events.lock().unwrap().push((true, blob.to_owned()));
        Ok(())
    }
}

#[tokio::test]
async fn no_blob_is_written_before_the_blobs_it_points_at_and_index_latest_comes_last() {
    let (stack, _deps) = two_snapshots().await;
    let dir = tempfile::tempdir().unwrap();
    let recording = Arc::new(Recording {
        inner: FolderStore::new(dir.path()),
        events: Mutex::default(),
    });
    let output = copy_all(&copier(&stack, recording.clone())).await;
    let events = recording.events.lock().unwrap().clone();
    let started = |name: &str| events.iter().position(|e| !e.0 && e.1 == name).unwrap();
    let ended = |name: &str| events.iter().position(|e| e.0 && e.1 == name).unwrap();
    let written: Vec<String> = events.iter().filter(|e| e.0).map(|e| e.1.clone()).collect();
    assert_eq!(written.len() as u64, output.blobs_copied);

    let index_n = format!("index-{}", output.generation);
    assert_eq!(written.last().unwrap(), "index.latest");
    assert_eq!(written[written.len() - 2], index_n);
    for name in &written[..written.len() - 2] {
        assert!(ended(name) < started(&index_n), "{name} after {index_n}");
    }
    // Root and index metadata after every shard's blobs; in each shard folder, snap-*.dat and
    // index-* after its data blobs.
    let is_shard_blob = |name: &str| name.matches('/').count() == 3;
    let is_shard_metadata =
        |name: &str| is_shard_blob(name) && !name.rsplit('/').next().unwrap().starts_with("__");
    let last_shard_blob = written
        .iter()
        .filter(|n| is_shard_blob(n))
        .map(|n| ended(n))
        .max()
        .unwrap();
    for name in written.iter().filter(|n| !is_shard_blob(n)) {
        assert!(
            started(name) > last_shard_blob,
            "{name} before a shard blob"
        );
    }
    for metadata in written.iter().filter(|n| is_shard_metadata(n)) {
        let folder = &metadata[..metadata.rfind('/').unwrap() + 1];
        for data in written
            .iter()
            .filter(|n| n.starts_with(folder) && !is_shard_metadata(n))
        {
            assert!(ended(data) < started(metadata), "{metadata} before {data}");
        }
    }
}

/// A destination whose writes after the first five send the start of their body, and then never
/// finish: the state of a process killed mid-blob.
#[derive(Debug)]
struct Stalling {
    inner: Arc<dyn BlobSink>,
    allowed: AtomicUsize,
    cutoff: Cutoff,
    stalled: Arc<Notify>,
}

/// How much of the blob cut off goes out before the kill.
#[derive(Debug, Clone, Copy)]
enum Cutoff {
    /// Its first chunk.
    FirstChunk,
    /// A block of `block_size` bytes at least, sent as a Put Block.
    FirstBlock { block_size: usize },
}

impl Stalling {
    fn new(inner: Arc<dyn BlobSink>, cutoff: Cutoff) -> Stalling {
        Stalling {
            inner,
            allowed: AtomicUsize::new(5),
            cutoff,
            stalled: Arc::default(),
        }
    }
}

#[async_trait]
impl BlobStore for Stalling {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn list(&self, prefix: &str) -> ossnap_core::Result<Vec<Blob>> {
        self.inner.list(prefix).await
    }
    async fn open(&self, blob: &str, range: ReadRange) -> ossnap_core::Result<Option<ByteStream>> {
        self.inner.open(blob, range).await
    }
    fn requests(&self) -> RequestCounts {
        self.inner.requests()
    }
}

#[async_trait]
impl BlobSink for Stalling {
    async fn write(&self, blob: &str, size: u64, mut body: ByteStream) -> ossnap_core::Result<()> {
        let allowed = self
            .allowed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if allowed {
            return self.inner.write(blob, size, body).await;
        }
        let first_bytes = match self.cutoff {
            Cutoff::FirstChunk => 1,
            Cutoff::FirstBlock { block_size } => block_size,
        };
        let mut first = Vec::new();
        let mut passed = 0;
        while passed < first_bytes {
            let Some(chunk) = body.next().await else {
                break;
            };
            passed += chunk.as_ref().map_or(0, |chunk| chunk.len());
            first.push(chunk);
        }
        // Asked for more once those are taken: for a block, waits (30 s at most) until the store
        // has started sending it, as it must while the body is still being read; then says so,
        // and never answers.
        let inner = self.inner.clone();
        let blocks_before = inner.requests().put_block;
        let cutoff = self.cutoff;
        let stalled = self.stalled.clone();
        let never = futures::stream::once(async move {
            for _ in 0..3000 {
                let sent = match cutoff {
                    Cutoff::FirstChunk => true,
                    Cutoff::FirstBlock { .. } => inner.requests().put_block > blocks_before,
                };
                if sent {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            stalled.notify_one();
            futures::future::pending::<ossnap_core::Result<bytes::Bytes>>().await
        });
        self.inner
            .write(
                blob,
                size,
                Box::pin(futures::stream::iter(first).chain(never)),
            )
            .await
    }
}

/// Runs a copy through `stalling` in a task, one blob at a time (so that exactly five are whole
/// when the sixth is cut off), and aborts it once the sixth is stuck.
async fn kill_after_five_blobs(stack: &TestStack, stalling: Arc<Stalling>) {
    let killed = copier_with(stack, stalling.clone(), &[("COPY_CONCURRENCY", "1")]);
    let run = tokio::spawn(async move { ossnap_copy::run(&killed, CopyInput::default()).await });
    stalling.stalled.notified().await;
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[tokio::test]
async fn a_copy_killed_mid_blob_resumes_where_it_stopped_and_ends_identical() {
    let (stack, _deps) = two_snapshots().await;
    let reference = tempfile::tempdir().unwrap();
    let whole = copy_all(&copier(&stack, folder(&reference))).await;

    let dir = tempfile::tempdir().unwrap();
    let stalling = Arc::new(Stalling::new(folder(&dir), Cutoff::FirstChunk));
    kill_after_five_blobs(&stack, stalling).await;
    // The blob cut off mid-write is on disk, but no reader sees it as a blob.
    let destination = FolderStore::new(dir.path());
    let visible = destination.list("").await.unwrap();
    assert_eq!(files_under(dir.path()).len(), visible.len() + 1);
    assert_eq!(visible.len(), 5);
    assert!(!visible.iter().any(|blob| blob.name.starts_with("index")));

    let resumed = copy_all(&copier(&stack, folder(&dir))).await;
    assert_eq!(resumed.blobs_skipped, 5, "{resumed:?}");
    assert_eq!(
        resumed.blobs_copied + resumed.blobs_skipped,
        whole.blobs_copied
    );
    assert_eq!(
        contents(&destination).await,
        contents(&FolderStore::new(reference.path())).await
    );
    assert_eq!(files_under(dir.path()).len(), whole.blobs_copied as usize);
}

#[tokio::test]
async fn a_blob_of_another_length_at_the_destination_is_a_conflict_and_nothing_is_overwritten() {
    let (stack, _deps) = two_snapshots().await;
    let source = source(&stack);
    let (generation, data) = root(&source).await;
    let logs = &data.indices["logs"].id;
    let data_blob = source
        .list(&format!("indices/{logs}/0/__"))
        .await
        .unwrap()
        .remove(0);
    let dir = tempfile::tempdir().unwrap();
    let destination = FolderStore::new(dir.path());
    let other = b"another repository's blob".to_vec();
    let body: ByteStream = Box::pin(futures::stream::iter([Ok(bytes::Bytes::from(
        other.clone(),
    ))]));
    destination
        .write(&data_blob.name, other.len() as u64, body)
        .await
        .unwrap();

    let error = copy(&copier(&stack, folder(&dir)), CopyInput::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CopyConflict);
    assert!(error.message().contains(&data_blob.name), "{error}");
    assert!(
        error.message().contains("nothing was overwritten"),
        "{error}"
    );
    assert_eq!(
        destination.get(&data_blob.name).await.unwrap().unwrap(),
        other
    );
    assert_eq!(
        destination
            .get(&format!("index-{generation}"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(destination.get("index.latest").await.unwrap(), None);
}

#[tokio::test]
async fn a_destination_with_a_newer_generation_is_not_taken_back() {
    let (stack, _deps) = two_snapshots().await;
    let dir = tempfile::tempdir().unwrap();
    let copied = copy_all(&copier(&stack, folder(&dir))).await;
    let destination = FolderStore::new(dir.path());
    let newer = format!("index-{}", copied.generation + 1);
    let body: ByteStream = Box::pin(futures::stream::iter([Ok(bytes::Bytes::from_static(
        b"{}",
    ))]));
    destination.write(&newer, 2, body).await.unwrap();
    let error = copy(&copier(&stack, folder(&dir)), CopyInput::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CopyConflict);
    assert!(error.message().contains("newer than generation"), "{error}");
    assert_eq!(
        decode_index_latest(&destination.get("index.latest").await.unwrap().unwrap()).unwrap(),
        copied.generation
    );
}

/// The plan's work list, as the Distributed Map reads it.
async fn items(stack: &TestStack, output: &CopyOutput) -> Vec<Batch> {
    let plan = output.plan.as_ref().expect("a plan's location");
    let object = stack
        .local
        .s3_client()
        .get_object()
        .bucket(&plan.bucket)
        .key(&plan.key)
        .send()
        .await
        .unwrap();
    let items: Vec<serde_json::Value> =
        serde_json::from_slice(&object.body.collect().await.unwrap().to_vec()).unwrap();
    items
        .into_iter()
        .map(|item| Batch {
            generation: item["generation"].as_u64().unwrap(),
            folders: serde_json::from_value(item["folders"].clone()).unwrap(),
        })
        .collect()
}

async fn batches(copier: &Copier, items: &[Batch]) -> Vec<CopyOutput> {
    let mut outputs = Vec::new();
    for item in items {
        let input = CopyInput {
            mode: Mode::Batch,
            generation: Some(item.generation),
            folders: Some(item.folders.clone()),
            ..CopyInput::default()
        };
        outputs.push(copy(copier, input).await.unwrap());
    }
    outputs
}

fn finalize(generation: u64) -> CopyInput {
    CopyInput {
        mode: Mode::Finalize,
        generation: Some(generation),
        ..CopyInput::default()
    }
}

fn plan() -> CopyInput {
    CopyInput {
        mode: Mode::Plan,
        ..CopyInput::default()
    }
}

#[tokio::test]
async fn plan_batches_and_finalize_give_the_destination_that_all_gives() {
    let (stack, _deps) = two_snapshots().await;
    let whole = tempfile::tempdir().unwrap();
    let all = copy_all(&copier(&stack, folder(&whole))).await;

    let dir = tempfile::tempdir().unwrap();
    let copier = copier_with(&stack, folder(&dir), &[("PLAN_BATCH_FOLDERS", "3")]);
    let planned = copy(&copier, plan()).await.unwrap();
    assert_eq!(planned.generation, all.generation);
    let plan_location = planned.plan.clone().unwrap();
    assert_eq!(
        plan_location.key,
        format!("ossnap-plans/{BASE_PATH}/{}/items.json", all.generation)
    );
    // Four shard folders (two indices of two shards), three to a batch.
    let items = items(&stack, &planned).await;
    assert_eq!(planned.batches, Some(2));
    assert_eq!(
        items.iter().map(|b| b.folders.len()).collect::<Vec<_>>(),
        [3, 1]
    );
    assert!(planned.blobs.unwrap() >= all.blobs_copied);
    assert!(planned.bytes.unwrap() >= all.bytes_copied);
    // The plan writes nothing to the destination.
    assert!(FolderStore::new(dir.path())
        .list("")
        .await
        .unwrap()
        .is_empty());

    let outputs = batches(&copier, &items).await;
    assert_eq!(outputs.iter().map(|o| o.folders.unwrap()).sum::<usize>(), 4);
    assert!(FolderStore::new(dir.path())
        .list("index")
        .await
        .unwrap()
        .is_empty());
    let finalized = copy(&copier, finalize(all.generation)).await.unwrap();
    assert_eq!(finalized.newer_generation, None);
    let copied: u64 = outputs.iter().map(|o| o.blobs_copied).sum::<u64>() + finalized.blobs_copied;
    assert_eq!(copied, all.blobs_copied);
    assert_eq!(
        contents(&FolderStore::new(dir.path())).await,
        contents(&FolderStore::new(whole.path())).await
    );
    // A batch run again (a Step Functions retry) skips its folders whole.
    let again = batches(&copier, &items[..1]).await;
    assert_eq!(again[0].blobs_copied, 0);
    assert!(again[0].blobs_skipped > 0);
}

#[tokio::test]
async fn a_newer_generation_at_the_source_during_the_copy_is_reported_and_n_is_finished() {
    let (stack, deps) = two_snapshots().await;
    let dir = tempfile::tempdir().unwrap();
    let copier = copier(&stack, folder(&dir));
    let planned = copy(&copier, plan()).await.unwrap();
    let n = planned.generation;
    let items = items(&stack, &planned).await;
    // A snapshot between the plan and the batches: OpenSearch writes index-(N+1), deletes the
    // shard index-* blobs it replaced, and (one generation later) index-N itself.
    index_docs(&deps, "logs", 5).await;
    stack.take_snapshot(&deps, "three").await;
    stack.take_snapshot(&deps, "four").await;
    let source = source(&stack);
    assert_eq!(source.get(&format!("index-{n}")).await.unwrap(), None);

    let outputs = batches(&copier, &items).await;
    let superseded: u64 = outputs.iter().map(|o| o.shard_indices_superseded).sum();
    assert_eq!(superseded, 4);
    assert!(outputs.iter().all(|o| o.newer_generation == Some(n + 2)));
    let finalized = copy(&copier, finalize(n)).await.unwrap();
    assert_eq!(finalized.newer_generation, Some(n + 2));
    assert_eq!(finalized.snapshots, ["one", "two"]);

    let destination = FolderStore::new(dir.path());
    let roots: Vec<String> = destination
        .list("index")
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(roots, [format!("index-{n}"), "index.latest".to_string()]);
    assert_eq!(
        decode_index_latest(&destination.get("index.latest").await.unwrap().unwrap()).unwrap(),
        n
    );
    // Generation N's snapshots restore from the copy; the next copy brings the rest.
    verify_copy(&stack, dir.path(), "copies/older", &["one", "two"]).await;
    let next = copy_all(&copier).await;
    assert_eq!((next.generation, next.newer_generation), (n + 2, None));
    assert_eq!(next.snapshots, ["one", "two", "three", "four"]);
    verify_copy(&stack, dir.path(), "copies/newer", &["three", "four"]).await;
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_counts_what_a_copy_would() {
    let (stack, _deps) = two_snapshots().await;
    let dir = tempfile::tempdir().unwrap();
    let copier = copier(&stack, folder(&dir));
    let dry = CopyInput {
        dry_run: true,
        ..CopyInput::default()
    };
    let before = copy(&copier, dry.clone()).await.unwrap();
    assert!(before.dry_run);
    assert_eq!(files_under(dir.path()), Vec::<PathBuf>::new());
    assert_eq!(before.requests.destination.put, 0);
    let dry_plan = CopyInput {
        dry_run: true,
        ..plan()
    };
    let planned = copy(&copier, dry_plan).await.unwrap();
    let key = planned.plan.unwrap().key;
    let listed = stack
        .local
        .s3_client()
        .list_objects_v2()
        .bucket(&stack.local.config().bucket)
        .prefix("ossnap-plans/")
        .send()
        .await
        .unwrap();
    assert!(listed.contents().is_empty(), "{key} was written");

    let real = copy_all(&copier).await;
    assert_eq!(
        (before.blobs_copied, before.bytes_copied),
        (real.blobs_copied, real.bytes_copied)
    );
    let after = copy(&copier, dry).await.unwrap();
    assert_eq!((after.blobs_copied, after.bytes_copied), (0, 0));
    assert_eq!(
        (after.blobs_skipped, after.bytes_skipped),
        (real.blobs_copied, real.bytes_copied)
    );
}

#[tokio::test]
async fn some_snapshots_copy_only_theirs_under_an_index_n_that_lists_only_them() {
    let (stack, _deps) = two_snapshots().await;
    let (_, data) = root(&source(&stack)).await;
    let two = data.snapshot("two").unwrap().uuid.clone();
    let one = data.snapshot("one").unwrap().uuid.clone();
    let dir = tempfile::tempdir().unwrap();
    let input = CopyInput {
        snapshots: Some(vec!["two".into()]),
        ..CopyInput::default()
    };
    let output = copy(&copier(&stack, folder(&dir)), input).await.unwrap();
    assert_eq!(output.snapshots, ["two"]);
    let (_, copied) = root(&FolderStore::new(dir.path())).await;
    assert_eq!(
        copied
            .snapshots
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["two"]
    );
    assert!(copied
        .indices
        .values()
        .all(|index| index.snapshots == [two.clone()]));
    let names: Vec<String> = FolderStore::new(dir.path())
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert!(!names.iter().any(|name| name.contains(&one)), "{names:?}");
    verify_copy(&stack, dir.path(), "copies/only-two", &["two"]).await;

    let error = copy(
        &copier(&stack, folder(&dir)),
        CopyInput {
            snapshots: Some(vec!["nine".into()]),
            ..CopyInput::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConfigError);
    assert!(error.message().contains("holds: one, two"), "{error}");
}

#[tokio::test]
async fn a_partial_snapshot_is_copied_with_the_shards_it_has() {
    let (stack, deps) = two_snapshots().await;
    stack
        .control()
        .set_next_snapshot_outcome(SnapshotOutcome::Partial);
    index_docs(&deps, "orders", 3).await;
    stack.take_snapshot(&deps, "three").await;
    let dir = tempfile::tempdir().unwrap();
    let output = copy_all(&copier(&stack, folder(&dir))).await;
    assert_eq!(output.snapshots, ["one", "two", "three"]);
    verify_copy(&stack, dir.path(), "copies/with-partial", &["one", "two"]).await;
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/real-repositories")
}

#[tokio::test]
async fn every_real_repository_is_copied_whole_and_nothing_else() {
    let stack = TestStack::start().await;
    let mut copied = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_dir() {
            continue;
        }
        let fixture = path.file_name().unwrap().to_string_lossy().to_string();
        let base_path = format!("fixtures/{fixture}");
        stack.upload_folder(&path, &base_path).await;
        let dir = tempfile::tempdir().unwrap();
        let input = CopyInput {
            base_path: Some(base_path),
            ..CopyInput::default()
        };
        copy(&copier(&stack, folder(&dir)), input)
            .await
            .unwrap_or_else(|e| panic!("{fixture}: {e}"));
        // Everything but what no snapshot of the newest generation needs: older root index-N
        // and Elasticsearch 6's incompatible-snapshots list.
        let original = FolderStore::new(&path);
        let (newest, _) = root(&original).await;
        let mut expected = contents(&original).await;
        expected.retain(|name, _| {
            name != "incompatible-snapshots"
                && (!name.starts_with("index-") || *name == format!("index-{newest}"))
        });
        let copy = contents(&FolderStore::new(dir.path())).await;
        assert_eq!(
            copy.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{fixture}"
        );
        assert!(copy == expected, "{fixture}: the bytes differ");
        copied += 1;
    }
    assert!(copied >= 7, "only {copied} fixtures");
}

#[tokio::test]
async fn bad_input_is_a_config_error_before_any_request() {
    // Nothing answers at this S3 endpoint: any request would fail as Unavailable.
    let env: Vec<(&str, &str)> = vec![
        ("SNAPSHOT_BUCKET", "snapshots"),
        ("AWS_REGION", "us-east-1"),
        ("AZURE_STORAGE_ACCOUNT", "acct1"),
        ("AZURE_STORAGE_CONTAINER", "backups"),
    ];
    let nowhere = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::new()
            .behavior_version_latest()
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "AKID", "secret", None, None, "test",
            ))
            .build(),
    );
    let dir = tempfile::tempdir().unwrap();
    let env = Environment::from_pairs(env);
    let to_folder = Copier::new(
        &env,
        S3Store::new(nowhere.clone()),
        Destination::Store(folder(&dir)),
    )
    .unwrap();
    let to_azure = Copier::new(
        &env,
        S3Store::new(nowhere),
        Destination::Azure { secrets: None },
    )
    .unwrap();
    let to = |account: &str| -> ossnap_storage::azure_target::AzureTarget {
        serde_json::from_value(json!({"account": account})).unwrap()
    };
    let cases: Vec<(&Copier, CopyInput, &str)> = vec![
        (
            &to_folder,
            CopyInput {
                mode: Mode::Batch,
                folders: Some(vec!["indices/a/0/".into()]),
                ..CopyInput::default()
            },
            "needs \"generation\"",
        ),
        (
            &to_folder,
            CopyInput {
                mode: Mode::Batch,
                generation: Some(3),
                folders: Some(vec!["indices/a/../".into()]),
                ..CopyInput::default()
            },
            "invalid folder",
        ),
        (
            &to_folder,
            CopyInput {
                generation: Some(3),
                ..CopyInput::default()
            },
            "\"generation\" does not apply to mode \"all\"",
        ),
        (
            &to_folder,
            CopyInput {
                snapshots: Some(vec!["Bad Name".into()]),
                ..CopyInput::default()
            },
            "invalid snapshot name",
        ),
        (
            &to_folder,
            CopyInput {
                mode: Mode::Plan,
                plan_prefix: Some("plans".into()),
                ..CopyInput::default()
            },
            "invalid plan_prefix",
        ),
        (
            &to_folder,
            CopyInput {
                bucket: Some("Not_A_Bucket".into()),
                ..CopyInput::default()
            },
            "invalid SNAPSHOT_BUCKET",
        ),
        (
            &to_folder,
            CopyInput {
                to: Some(to("acct2")),
                ..CopyInput::default()
            },
            "leave \"to\" out",
        ),
        (
            &to_azure,
            CopyInput {
                to: Some(to("Not-An-Account")),
                ..CopyInput::default()
            },
            "invalid Azure storage account",
        ),
        (
            &to_azure,
            CopyInput::default(),
            "no Azure credential for account `acct1`",
        ),
    ];
    for (copier, input, expected) in cases {
        let error = copy(copier, input).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ConfigError, "{expected}: {error}");
        assert!(error.message().contains(expected), "{expected}: {error}");
    }
    assert!(files_under(dir.path()).is_empty());
    let bad_setting = Copier::new(
        &Environment::from_pairs([("COPY_CONCURRENCY", "0")]),
        S3Store::new(stack_less_client()),
        Destination::Azure { secrets: None },
    )
    .unwrap_err();
    assert!(
        bad_setting.message().contains("COPY_CONCURRENCY"),
        "{bad_setting}"
    );
}

fn stack_less_client() -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::new()
            .behavior_version_latest()
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .build(),
    )
}

// Azure Blob Storage, in the stack's Azurite.

async fn stack_with_azurite() -> TestStack {
    TestStack::start_with(|config| config.azure = true).await
}

/// Two snapshots, as [`two_snapshots`], on a stack that also runs Azurite.
async fn two_snapshots_and_azurite() -> (TestStack, Deps) {
    let stack = stack_with_azurite().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 30).await;
    stack.seed_index(&deps, "orders", 5).await;
    stack.register(&deps).await;
    stack.take_snapshot(&deps, "one").await;
    index_docs(&deps, "logs", 10).await;
    stack.take_snapshot(&deps, "two").await;
    (stack, deps)
}

/// A copier to Azure as the stack's settings (`AZURE_STORAGE_*`) and `extra` say.
fn azure_copier(stack: &TestStack, extra: &[(&str, &str)]) -> Copier {
    let mut env = stack.env();
    env.retain(|(name, _)| !extra.iter().any(|(overridden, _)| overridden == name));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Copier::new(
        &Environment::from_pairs(env),
        S3Store::new(stack.local.s3_client()),
        Destination::Azure { secrets: None },
    )
    .unwrap()
}

/// The stack's container, as a repository under `base_path`, with blocks of `block_size`.
fn azure_store(stack: &TestStack, base_path: &str, block_size: usize) -> AzureStore {
    let azure = stack.local.azure().expect("the stack runs Azurite");
    let location = AzureLocation {
        account: azure.account.clone(),
        container: azure.container.clone(),
        base_path: base_path.into(),
    };
    let mut settings = AzureSettings::new(location, AzureCredential::AccountKey(azure.key.clone()));
    settings.endpoint = Some(azure.blob_endpoint.clone());
    settings.block_size = block_size;
    AzureStore::connect(settings).unwrap()
}

async fn document_count(deps: &Deps, index: &str) -> u64 {
    let answer: serde_json::Value = deps
        .opensearch
        .call(http::Method::GET, &format!("/{index}/_count"), &[], None)
        .await
        .unwrap();
    answer["count"].as_u64().unwrap()
}

#[tokio::test]
async fn a_copy_in_azure_verifies_there_and_restores_on_another_cluster_with_every_document() {
    let (stack, deps) = two_snapshots_and_azurite().await;
    let copied = copy_all(&azure_copier(&stack, &[])).await;
    let azure = stack.local.azure().unwrap();
    assert_eq!(
        copied.to,
        json!({"account": azure.account, "container": azure.container, "base_path": BASE_PATH})
    );
    let written = copied.requests.destination;
    assert_eq!(written.put, copied.blobs_copied, "{written:?}");
    assert_eq!(written.bytes_written, copied.bytes_copied);
    // In Azure, byte for byte what the source holds.
    let in_azure = contents(&azure_store(&stack, BASE_PATH, 8 << 20)).await;
    assert_eq!(in_azure.len() as u64, copied.blobs_copied);
    let at_source = contents(&source(&stack)).await;
    for (name, bytes) in &in_azure {
        assert_eq!(Some(bytes), at_source.get(name), "{name}");
    }

    // verify reads the copy in Azure, every data blob whole.
    let verifier = ossnap_verify::Verifier {
        depth: ossnap_verify::Depth::Full,
        ..ossnap_verify::Verifier::new(
            &Environment::from_pairs(stack.env()),
            stack.local.s3_client(),
            Clock::without_sleeps(),
        )
        .unwrap()
    };
    for snapshot in ["one", "two"] {
        let input = ossnap_verify::VerifyInput {
            snapshot: Some(snapshot.into()),
            azure: Some(AzureTarget::default()),
            ..Default::default()
        };
        let invocation = Invocation {
            input,
            scheduled_time: None,
        };
        let verified = ossnap_verify::run(&verifier, invocation).await.unwrap();
        assert!(verified.verified, "{verified:?}");
        assert!(
            verified.location.starts_with("azure://devstoreaccount1/"),
            "{verified:?}"
        );
    }

    // A second cluster registers the copy read-only, as an azure repository, and restores.
    let other = stack
        .local
        .start_another_cluster("azure-side", Profile::V2)
        .await
        .unwrap();
    let other_deps = stack.deps_at(
        &other.opensearch_endpoint(),
        &[
            ("SNAPSHOT_REPOSITORY", "from-azure"),
            ("SNAPSHOT_REPOSITORY_TYPE", "azure"),
            ("SNAPSHOT_READONLY", "true"),
        ],
    );
    stack.register(&other_deps).await;
    let input = RestoreInput {
        snapshot: Some("two".into()),
        ..RestoreInput::default()
    };
    let restore = restore::run(&other_deps, input).await.unwrap();
    assert_eq!(restore.indices, ["logs", "orders"]);
    for _ in 0..600 {
        let input = CheckRestoreInput {
            indices: Some(IndexList::Many(restore.indices.clone())),
            ..Default::default()
        };
        let invocation = Invocation {
            input,
            scheduled_time: None,
        };
        match check_restore::run(&other_deps, invocation).await.unwrap() {
            CheckRestoreAnswer::Report(answer) if answer.report.done => {
                assert!(answer.report.healthy, "{answer:?}");
                break;
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    for index in ["logs", "orders"] {
        assert_eq!(
            document_count(&other_deps, index).await,
            document_count(&deps, index).await,
            "{index}"
        );
    }
    assert_eq!(document_count(&other_deps, "logs").await, 40);
    other.shutdown().await;
}

#[tokio::test]
async fn bad_azure_credentials_are_an_auth_error_naming_the_account() {
    let (stack, _deps) = two_snapshots_and_azurite().await;
    let wrong_key = "d3Jvbmcga2V5IGZvciB0aGUgZGV2ZWxvcG1lbnQgYWNjb3VudA==";
    let error = copy(
        &azure_copier(&stack, &[("AZURE_STORAGE_KEY", wrong_key)]),
        CopyInput::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthError, "{error}");
    assert!(error.message().contains("`devstoreaccount1`"), "{error}");
    assert!(!error.message().contains(wrong_key), "{error}");

    let wrong_sas =
        "sv=2022-11-02&ss=b&srt=co&sp=rwlc&se=2030-01-01T00:00:00Z&sig=bm90LWEtc2lnbmF0dXJl";
    let error = copy(
        &azure_copier(
            &stack,
            &[
                ("AZURE_STORAGE_KEY", ""),
                ("AZURE_STORAGE_SAS_TOKEN", wrong_sas),
            ],
        ),
        CopyInput::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthError, "{error}");
    assert!(error.message().contains("`devstoreaccount1`"), "{error}");
    assert!(!error.message().contains("bm90LWEtc2lnbmF0dXJl"), "{error}");

    // A container that does not exist is a setting to fix, named.
    let error = copy(
        &azure_copier(&stack, &[]),
        CopyInput {
            to: Some(serde_json::from_value(json!({"container": "not-there"})).unwrap()),
            ..CopyInput::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConfigError, "{error}");
    assert!(error.message().contains("`not-there`"), "{error}");
    // Nothing was written by any of them.
    assert!(contents(&azure_store(&stack, BASE_PATH, 8 << 20))
        .await
        .is_empty());
}

#[tokio::test]
async fn a_copy_to_azure_killed_mid_blob_leaves_no_blob_of_its_blocks_and_resumes() {
    let (stack, _deps) = two_snapshots_and_azurite().await;
    let reference = tempfile::tempdir().unwrap();
    let whole = copy_all(&copier(&stack, folder(&reference))).await;

    // Blocks of 64 bytes: every data blob is sent in several Put Block requests.
    let block_size = 64;
    let blocks = Arc::new(azure_store(&stack, BASE_PATH, block_size));
    let stalling = Arc::new(Stalling::new(
        blocks.clone(),
        Cutoff::FirstBlock { block_size },
    ));
    kill_after_five_blobs(&stack, stalling).await;
    // Only the five finished blobs are there...
    let in_azure = contents(blocks.as_ref()).await;
    assert_eq!(in_azure.len(), 5, "{:?}", in_azure.keys());
    // ...though the sixth's blocks were sent too: more blocks than the five took, never
    // committed by a Put Block List.
    let blocked: Vec<u64> = in_azure
        .values()
        .map(|bytes| bytes.len() as u64)
        .filter(|&size| size > 64)
        .collect();
    let sent = blocks.requests();
    assert_eq!(sent.put_block_list, blocked.len() as u64, "{sent:?}");
    assert!(
        sent.put_block > blocked.iter().map(|size| size.div_ceil(64)).sum::<u64>(),
        "{sent:?}"
    );

    let resumed = copy_all(&azure_copier(&stack, &[])).await;
    assert_eq!(resumed.blobs_skipped, 5, "{resumed:?}");
    assert_eq!(resumed.blobs_copied + 5, whole.blobs_copied);
    assert_eq!(
        contents(blocks.as_ref()).await,
        contents(&FolderStore::new(reference.path())).await
    );
}

#[tokio::test]
async fn the_copy_function_copies_to_azure_as_lambda_runs_it_and_logs_no_secret() {
    let (stack, _deps) = two_snapshots_and_azurite().await;
    let logs = tempfile::NamedTempFile::new().unwrap();
    let mut command = tokio::process::Command::new(ossnap_tests::function_binary("copy"));
    command
        .stdout(logs.reopen().unwrap())
        .stderr(logs.reopen().unwrap());
    let mut env = stack.env();
    env.push(("RUST_LOG".into(), "debug".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut function = LambdaProcess::start_command(command, "copy", &env)
        .await
        .unwrap();

    let dry = function.invoke(json!({"dry_run": true})).await.unwrap();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["blobs_skipped"], 0);
    let copied = function.invoke(json!({})).await.unwrap();
    assert_eq!(copied["blobs_copied"], dry["blobs_copied"]);
    assert_eq!(copied["snapshots"], json!(["one", "two"]));
    assert_eq!(copied["newer_generation"], serde_json::Value::Null);
    let again = function.invoke(json!({"mode": "all"})).await.unwrap();
    assert_eq!(again["blobs_copied"], 0);

    let refused = function
        .invoke(json!({"to": {"acount": "typo"}}))
        .await
        .unwrap_err();
    assert_eq!(refused.error_type, "ConfigError");
    assert!(refused.error_message.contains("acount"), "{refused:?}");
    let refused = function
        .invoke(json!({"mode": "finalize"}))
        .await
        .unwrap_err();
    assert_eq!(refused.error_type, "ConfigError");

    drop(function);
    let logged = std::fs::read_to_string(logs.path()).unwrap();
    let key = &stack.local.azure().unwrap().key;
    assert!(logged.contains("copy done"), "{logged}");
    assert!(!logged.contains(key.as_str()), "the account key was logged");
    assert!(
        logged.contains("\"Function\":\"copy\""),
        "no metrics: {logged}"
    );
}
