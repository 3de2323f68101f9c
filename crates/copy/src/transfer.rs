//! Moving blobs: each one streamed from the source into the destination, skipped when the
//! destination has it with the same length, refused (`CopyConflict`) when it has it with
//! another; shard folders with their data blobs before their `snap-*.dat` and `index-*`; the
//! generation's root and index metadata, then `index-N`, then `index.latest`, last.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::{stream, StreamExt, TryStreamExt};
use ossnap_core::{Error, ErrorKind, Result};
use ossnap_repository::repository_data::{
    decode_index_latest, encode_index_latest, root_index_generation,
};
use ossnap_repository::{layout, FileInfo, ShardSnapshot, ShardSnapshots};
use ossnap_storage::{Blob, BlobSink, BlobStore, ByteStream, ReadRange};
use serde::Serialize;
use tokio::sync::{OnceCell, Semaphore};

use crate::generation::{Generation, Needed, ShardFolder, ShardIndex};

/// What a copy has done so far, readable while it runs (the command line's progress).
#[derive(Debug, Default)]
pub struct Progress {
    blobs_copied: AtomicU64,
    bytes_copied: AtomicU64,
    blobs_skipped: AtomicU64,
    bytes_skipped: AtomicU64,
    folders_done: AtomicU64,
    folders_total: AtomicU64,
    shard_indices_superseded: AtomicU64,
}

/// [`Progress`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub blobs_copied: u64,
    pub bytes_copied: u64,
    pub blobs_skipped: u64,
    pub bytes_skipped: u64,
    pub folders_done: u64,
    pub folders_total: u64,
    pub shard_indices_superseded: u64,
}

impl Progress {
    pub fn counts(&self) -> Counts {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Counts {
            blobs_copied: load(&self.blobs_copied),
            bytes_copied: load(&self.bytes_copied),
            blobs_skipped: load(&self.blobs_skipped),
            bytes_skipped: load(&self.bytes_skipped),
            folders_done: load(&self.folders_done),
            folders_total: load(&self.folders_total),
            shard_indices_superseded: load(&self.shard_indices_superseded),
        }
    }

    pub(crate) fn add_folders(&self, folders: usize) {
        self.folders_total
            .fetch_add(folders as u64, Ordering::Relaxed);
    }

    fn copied(&self, bytes: u64) {
        self.blobs_copied.fetch_add(1, Ordering::Relaxed);
        self.bytes_copied.fetch_add(bytes, Ordering::Relaxed);
    }

    fn skipped(&self, bytes: u64) {
        self.blobs_skipped.fetch_add(1, Ordering::Relaxed);
        self.bytes_skipped.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// One invocation's copying: the two stores, the limit on blobs in flight, and what it did.
pub(crate) struct Transfer<'a> {
    pub source: &'a dyn BlobStore,
    pub destination: &'a dyn BlobSink,
    /// Blobs in flight at once (`COPY_CONCURRENCY`): each holds at most a few blocks in memory.
    pub in_flight: Semaphore,
    pub concurrency: usize,
    pub dry_run: bool,
    pub progress: &'a Progress,
    /// The source's newest generation, once looked up (by a shard whose `index-*` is gone).
    newest_at_source: OnceCell<Option<u64>>,
}

impl<'a> Transfer<'a> {
    pub fn new(
        source: &'a dyn BlobStore,
        destination: &'a dyn BlobSink,
        concurrency: usize,
        dry_run: bool,
        progress: &'a Progress,
    ) -> Transfer<'a> {
        Transfer {
            source,
            destination,
            in_flight: Semaphore::new(concurrency),
            concurrency,
            dry_run,
            progress,
            newest_at_source: OnceCell::new(),
        }
    }

    /// The newest generation the source holds now, if it was looked up during the copy.
    pub fn newest_seen(&self) -> Option<u64> {
        self.newest_at_source.get().copied().flatten()
    }

    async fn newest_at_source(&self) -> Result<Option<u64>> {
        self.newest_at_source
            .get_or_try_init(|| newest_generation(self.source))
            .await
            .copied()
    }

    /// Every folder, `concurrency` at a time.
    pub async fn folders(&self, generation: &Generation, folders: &[ShardFolder]) -> Result<()> {
        // The futures are made first (none starts until polled): a stream mapping borrowed
        // items through a closure would not be `Send`.
        let folders: Vec<_> = folders
            .iter()
            .map(|folder| self.folder(generation, folder))
            .collect();
        stream::iter(folders)
            .buffer_unordered(self.concurrency)
            .try_collect::<()>()
            .await
    }

    /// One shard folder: its data blobs, then its `snap-*.dat` and `index-*`. A folder whose
    /// `snap-*.dat` and `index-*` the destination already has was finished by an earlier run
    /// (they are written last), so it is skipped on the two listings alone.
    async fn folder(&self, generation: &Generation, folder: &ShardFolder) -> Result<()> {
        let needs = generation.shard(folder)?;
        let path = folder.path();
        let (at_source, at_destination) =
            futures::try_join!(self.source.list(&path), self.destination.list(&path))?;
        let at_source = sizes(at_source);
        let at_destination = sizes(at_destination);

        let mut shard_snapshots = Vec::new();
        for Needed { name, required } in needs.snapshots {
            if at_source.contains_key(&name) {
                shard_snapshots.push(name);
            } else if required {
                return Err(self.gone(generation, &name).await);
            }
        }
        let shard_index = match needs.index {
            ShardIndex::Named(name) if at_source.contains_key(&name) => Some(name),
            ShardIndex::Named(name) => {
                self.superseded(generation, &name).await?;
                None
            }
            ShardIndex::Newest => at_source
                .keys()
                .filter_map(|name| {
                    let generation = root_index_generation(name.strip_prefix(&path)?)?;
                    Some((generation, name))
                })
                .max()
                .map(|(_, name)| name.clone()),
            ShardIndex::Absent => None,
        };
        let mut metadata: Vec<String> = shard_snapshots
            .iter()
            .chain(&shard_index)
            .cloned()
            .collect();

        let finished = !metadata.is_empty()
            && metadata
                .iter()
                .all(|name| at_destination.get(name) == at_source.get(name));
        if finished {
            for (name, size) in &at_source {
                if at_destination.get(name) == Some(size) {
                    self.progress.skipped(*size);
                }
            }
            self.progress.folders_done.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }

        let mut data = BTreeSet::new();
        // A full copy is a repository a cluster may write into: every file its shard index
        // names must be there (a new snapshot reuses them), even one of a snapshot the root
        // index no longer lists.
        if let Some(index) = shard_index.as_ref().filter(|_| generation.every_snapshot()) {
            match self.source.get(index).await? {
                Some(bytes) => {
                    let files = ShardSnapshots::from_blob(&bytes)
                        .map_err(|e| self.damaged(index, e))?
                        .files;
                    data.extend(files_of(folder, &files));
                }
                // Listed, then deleted: a newer generation replaced it meanwhile.
                None => {
                    self.superseded(generation, index).await?;
                    metadata.retain(|name| name != index);
                }
            }
        }
        for name in &shard_snapshots {
            let Some(bytes) = self.source.get(name).await? else {
                return Err(self.gone(generation, name).await);
            };
            let files = ShardSnapshot::from_blob(&bytes)
                .map_err(|e| self.damaged(name, e))?
                .files;
            data.extend(files_of(folder, &files));
        }
        self.copy_listed(generation, data, &at_source, &at_destination)
            .await?;
        self.copy_listed(generation, metadata, &at_source, &at_destination)
            .await?;
        self.progress.folders_done.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The generation's root and index metadata, then `index-N`, then `index.latest`.
    pub async fn finalize(&self, generation: &Generation) -> Result<()> {
        let root = self.refuse_newer_destination(generation.number).await?;
        // The root `snap-*`/`meta-*` blobs, and each index's `meta-*`: one listing each.
        let mut prefixes = vec!["snap-".to_string(), "meta-".to_string()];
        prefixes.extend(
            generation
                .index_ids()
                .into_iter()
                .map(|id| format!("indices/{id}/meta-")),
        );
        let (at_source, at_destination) = futures::try_join!(
            list_all(self.source, &prefixes, self.concurrency),
            list_all(self.destination, &prefixes, self.concurrency)
        )?;
        let mut metadata = Vec::new();
        for Needed { name, required } in generation.metadata() {
            if at_source.contains_key(&name) {
                metadata.push(name);
            } else if required {
                return Err(self.gone(generation, &name).await);
            }
        }
        self.copy_listed(generation, metadata, &at_source, &at_destination)
            .await?;

        let index_n = layout::root_index(generation.number);
        self.write_bytes(
            &index_n,
            generation.repository_data.clone(),
            root.get(&index_n).copied(),
        )
        .await?;

        let latest = encode_index_latest(generation.number);
        let present = self.destination.get(layout::INDEX_LATEST).await?;
        match present.as_deref().map(decode_index_latest) {
            Some(Ok(number)) if number == generation.number => {
                self.progress.skipped(latest.len() as u64)
            }
            Some(Ok(number)) if number > generation.number => {
                return Err(self.newer_at_destination(generation.number, number))
            }
            // index.latest is the one blob a repository rewrites: an older copy's is replaced.
            _ => {
                self.write_bytes(layout::INDEX_LATEST, latest.to_vec(), None)
                    .await?
            }
        }
        Ok(())
    }

    /// The destination's root `index-*` blobs by name; a `CopyConflict` when one is newer than
    /// `number` (an earlier copy of a newer generation: copying an older one would go back).
    pub async fn refuse_newer_destination(&self, number: u64) -> Result<HashMap<String, u64>> {
        let root = sizes(self.destination.list(layout::ROOT_INDEX_PREFIX).await?);
        if let Some(newer) = root
            .keys()
            .filter_map(|name| root_index_generation(name))
            .filter(|&found| found > number)
            .max()
        {
            return Err(self.newer_at_destination(number, newer));
        }
        Ok(root)
    }

    fn newer_at_destination(&self, number: u64, newer: u64) -> Error {
        Error::new(
            ErrorKind::CopyConflict,
            format!(
                "{} already holds generation {newer}, newer than generation {number} being copied: it was copied from a later state of the source; nothing was written. Copy again to bring it up to the source's newest generation",
                self.destination.location()
            ),
        )
    }

    /// Copies `names` (all listed at the source), `concurrency` at a time.
    async fn copy_listed(
        &self,
        generation: &Generation,
        names: impl IntoIterator<Item = String>,
        at_source: &HashMap<String, u64>,
        at_destination: &HashMap<String, u64>,
    ) -> Result<()> {
        stream::iter(names)
            .map(|name| async move {
                let Some(&size) = at_source.get(&name) else {
                    return Err(self.gone(generation, &name).await);
                };
                self.copy(generation, &name, size, at_destination.get(&name).copied())
                    .await
            })
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await
    }

    /// One blob of `size` bytes, of which the destination has `present` bytes.
    async fn copy(
        &self,
        generation: &Generation,
        name: &str,
        size: u64,
        present: Option<u64>,
    ) -> Result<()> {
        if self.skip(name, size, present)? {
            return Ok(());
        }
        let _permit = self.in_flight.acquire().await.expect("never closed");
        let Some(body) = self.source.open(name, ReadRange::Whole).await? else {
            return Err(self.gone(generation, name).await);
        };
        self.destination.write(name, size, body).await?;
        self.progress.copied(size);
        Ok(())
    }

    async fn write_bytes(&self, name: &str, bytes: Vec<u8>, present: Option<u64>) -> Result<()> {
        let size = bytes.len() as u64;
        if self.skip(name, size, present)? {
            return Ok(());
        }
        let body: ByteStream = Box::pin(stream::iter([Ok(Bytes::from(bytes))]));
        self.destination.write(name, size, body).await?;
        self.progress.copied(size);
        Ok(())
    }

    /// Whether the blob needs no write: there with the same length (skipped), or, in a dry run,
    /// counted as to copy. Another length is a conflict: names are immutable, so that blob is
    /// another repository's or damaged, and nothing overwrites it.
    fn skip(&self, name: &str, size: u64, present: Option<u64>) -> Result<bool> {
        match present {
            Some(existing) if existing == size => {
                self.progress.skipped(size);
                Ok(true)
            }
            Some(existing) => Err(Error::new(
                ErrorKind::CopyConflict,
                format!(
                    "{}/{name} exists with {existing} bytes where the source's has {size}: blob names never change content in a repository, so the destination holds another repository's blob or a damaged copy; nothing was overwritten. Copy into an empty container or base path, or delete that blob if it is a damaged copy",
                    self.destination.location()
                ),
            )),
            None if self.dry_run => {
                self.progress.copied(size);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// A shard's `index-*` named by the generation is gone from the source: once a newer
    /// generation exists, OpenSearch deletes the shard index it replaced, and the copy of
    /// generation N goes on without it (restores and verify do not read it; the next copy
    /// brings the newer one). Without a newer generation, the source is damaged.
    async fn superseded(&self, generation: &Generation, name: &str) -> Result<()> {
        match self.newest_at_source().await? {
            Some(newest) if newest > generation.number => {
                tracing::warn!(
                    blob = name,
                    generation = generation.number,
                    newest,
                    "shard index replaced by a newer generation at the source; not copied"
                );
                self.progress
                    .shard_indices_superseded
                    .fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            _ => Err(self.gone(generation, name).await),
        }
    }

    fn damaged(&self, name: &str, error: ossnap_repository::FormatError) -> Error {
        Error::new(
            ErrorKind::VerificationFailed,
            format!(
                "{}/{name} is damaged ({error}); check the source with `ossnap verify`",
                self.source.location()
            ),
        )
    }

    /// The error for a blob the generation needs that the source does not have.
    async fn gone(&self, generation: &Generation, name: &str) -> Error {
        let number = generation.number;
        let location = format!("{}/{name}", self.source.location());
        let newest = match self.newest_at_source.get() {
            Some(newest) => Ok(*newest),
            None => newest_generation(self.source).await,
        };
        let message = match newest {
            Ok(Some(newest)) if newest > number => format!(
                "{location}, which generation {number} needs, is gone from the source, which is now at generation {newest}: a snapshot of generation {number} was deleted during the copy (pause retention while a migration runs). Copy again: the next run copies generation {newest}"
            ),
            _ => format!(
                "{location}, which generation {number} needs, is missing from the source: the repository is damaged; check each snapshot with `ossnap verify`"
            ),
        };
        Error::new(ErrorKind::VerificationFailed, message)
    }
}

/// The blobs of a shard's files (none for a virtual `v__` file, parts for a split one).
fn files_of<'f>(
    folder: &'f ShardFolder,
    files: &'f [FileInfo],
) -> impl Iterator<Item = String> + 'f {
    files.iter().flat_map(|file| {
        file.blob_names()
            .into_iter()
            .map(|blob| layout::shard_data(&folder.index_id, folder.shard, &blob))
    })
}

/// The newest root generation in `store`, found by listing `index-*`.
pub(crate) async fn newest_generation(store: &dyn BlobStore) -> Result<Option<u64>> {
    Ok(store
        .list(layout::ROOT_INDEX_PREFIX)
        .await?
        .iter()
        .filter_map(|blob| root_index_generation(&blob.name))
        .max())
}

fn sizes(blobs: Vec<Blob>) -> HashMap<String, u64> {
    blobs
        .into_iter()
        .map(|blob| (blob.name, blob.size))
        .collect()
}

async fn list_all(
    store: &dyn BlobStore,
    prefixes: &[String],
    concurrency: usize,
) -> Result<HashMap<String, u64>> {
    let listings: Vec<_> = prefixes.iter().map(|prefix| store.list(prefix)).collect();
    let listings: Vec<Vec<Blob>> = stream::iter(listings)
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    Ok(sizes(listings.into_iter().flatten().collect()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use async_trait::async_trait;
    use ossnap_storage::folder::FolderStore;
    use ossnap_storage::RequestCounts;

    use super::*;

    /// A real repository as a source that has just moved on: a newer `index-2` is listed, and
    /// the shard index `replaced` is still listed but gone when read.
    #[derive(Debug)]
    struct MovedOn {
        inner: FolderStore,
        replaced: String,
    }

    #[async_trait]
    impl BlobStore for MovedOn {
        fn location(&self) -> String {
            self.inner.location()
        }
        async fn list(&self, prefix: &str) -> Result<Vec<Blob>> {
            let mut blobs = self.inner.list(prefix).await?;
            if prefix == layout::ROOT_INDEX_PREFIX {
                blobs.push(Blob {
                    name: "index-2".into(),
                    size: 2,
                });
            }
            Ok(blobs)
        }
        async fn open(&self, blob: &str, range: ReadRange) -> Result<Option<ByteStream>> {
            if blob == self.replaced {
                return Ok(None);
            }
            self.inner.open(blob, range).await
        }
        fn requests(&self) -> RequestCounts {
            self.inner.requests()
        }
    }

    #[tokio::test]
    async fn a_shard_index_replaced_between_listing_and_reading_is_left_out_not_damage() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/real-repositories/ES_7_10_Single");
        let raw = std::fs::read(fixture.join("index-1")).unwrap();
        let generation = Generation::new(1, raw, None).unwrap();
        let index = generation.data.indices.values().next().unwrap();
        let shard_generation = index.shard_generations.as_ref().unwrap()[0]
            .clone()
            .unwrap();
        let replaced = layout::shard_index(&index.id, 0, &shard_generation);
        let source = MovedOn {
            inner: FolderStore::new(&fixture),
            replaced: replaced.clone(),
        };
        let dir = tempfile::tempdir().unwrap();
        let destination = FolderStore::new(dir.path());
        let progress = Progress::default();
        let transfer = Transfer::new(&source, &destination, 4, false, &progress);
        let folder = ShardFolder {
            index_id: index.id.clone(),
            shard: 0,
        };
        transfer.folder(&generation, &folder).await.unwrap();

        let counts = progress.counts();
        assert_eq!(counts.shard_indices_superseded, 1);
        assert_eq!(transfer.newest_seen(), Some(2));
        let copied: Vec<String> = destination
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|blob| blob.name)
            .collect();
        assert!(!copied.contains(&replaced), "{copied:?}");
        assert!(
            copied.iter().any(|name| name.contains("/snap-")),
            "{copied:?}"
        );
        assert!(copied.iter().any(|name| name.contains("/__")), "{copied:?}");
    }
}
