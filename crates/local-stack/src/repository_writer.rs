//! Writes and reads snapshot repositories in S3 in the layout OpenSearch 2.x uses, with
//! ossnap-repository's formats: per-shard data blobs shared between snapshots through the shard
//! `index-{generation}` file, shard `snap-*.dat`, index and global metadata, root `snap-*.dat`,
//! then the new root `index-N` and `index.latest` (that order is what makes "listed in the newest
//! index-N" mean "finalised").
//!
//! The emulator has no Lucene: a shard's "segment files" hold its documents as JSON lines inside
//! the Lucene codec header/footer, so length and checksum verification work as on real blobs.

use std::collections::{BTreeMap, BTreeSet};

use ossnap_repository::codec::{self, checksum_to_string};
use ossnap_repository::model::read_untyped;
use ossnap_repository::repository_data::{encode_index_latest, root_index_generation};
use ossnap_repository::smile::{self, Value as SmileValue};
use ossnap_repository::{
    layout, Codec, FileInfo, IndexEntry, RepositoryData, ShardSnapshot, ShardSnapshotEntry,
    ShardSnapshots, SnapshotEntry, SnapshotInfo, SnapshotState,
};
use serde_json::{json, Map, Value};

use crate::blob_store::{BlobStore, StoreError};
use crate::cluster::Segment;
use crate::ids::random_base64_uuid;

/// Codec name of the emulator's segment data files.
const SEGMENT_CODEC: &str = "OssnapEmulatedSegment";
const SEGMENTS_FILE_CODEC: &str = "segments";
/// The Lucene version the emulator claims in `written_by`.
const LUCENE_VERSION: &str = "9.11.1";

#[derive(Debug, thiserror::Error)]
pub(crate) enum RepositoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{blob}: {source}")]
    Format {
        blob: String,
        source: ossnap_repository::FormatError,
    },
    #[error("blob [{0}] is missing")]
    MissingBlob(String),
}

fn format_error(blob: &str) -> impl FnOnce(ossnap_repository::FormatError) -> RepositoryError + '_ {
    move |source| RepositoryError::Format {
        blob: blob.to_owned(),
        source,
    }
}

async fn get_required(store: &BlobStore, blob: &str) -> Result<Vec<u8>, RepositoryError> {
    store
        .get(blob)
        .await?
        .ok_or_else(|| RepositoryError::MissingBlob(blob.to_owned()))
}

/// The newest root generation and its RepositoryData (empty, generation `None`, for a new
/// repository).
pub(crate) async fn read_repository_data(
    store: &BlobStore,
) -> Result<(Option<u64>, RepositoryData), RepositoryError> {
    let generation = store
        .list(layout::ROOT_INDEX_PREFIX)
        .await?
        .iter()
        .filter_map(|name| root_index_generation(name))
        .max();
    let Some(generation) = generation else {
        return Ok((None, RepositoryData::default()));
    };
    let blob = layout::root_index(generation);
    let bytes = get_required(store, &blob).await?;
    let data = RepositoryData::from_json(&bytes).map_err(format_error(&blob))?;
    Ok((Some(generation), data))
}

async fn write_root_generation(
    store: &BlobStore,
    previous: Option<u64>,
    data: &RepositoryData,
) -> Result<(), RepositoryError> {
    let generation = previous.map_or(0, |previous| previous + 1);
    let blob = layout::root_index(generation);
    store
        .put(&blob, data.to_json().map_err(format_error(&blob))?)
        .await?;
    store
        .put(
            layout::INDEX_LATEST,
            encode_index_latest(generation).to_vec(),
        )
        .await?;
    // OpenSearch keeps the previous generation and removes the one before it.
    if let Some(stale) = generation.checked_sub(2) {
        store.delete(&[layout::root_index(stale)]).await?;
    }
    Ok(())
}

/// One index as it was when the snapshot started.
#[derive(Debug, Clone)]
pub(crate) struct CapturedIndex {
    pub name: String,
    pub uuid: String,
    pub settings: Map<String, Value>,
    pub mappings: Value,
    /// Sealed segments per shard.
    pub shards: Vec<Vec<Segment>>,
}

/// A file of a shard snapshot, with its bytes when this snapshot has to upload it.
#[derive(Debug, Clone)]
struct PlannedFile {
    info: FileInfo,
    upload: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub(crate) struct ShardPlan {
    pub index: String,
    pub shard: u32,
    files: Vec<PlannedFile>,
    previous: ShardSnapshots,
    previous_generation: Option<String>,
    pub incremental_files: u64,
    pub incremental_bytes: u64,
    pub total_files: u64,
    pub total_bytes: u64,
}

/// What a snapshot will write, worked out when it starts (so that `_status` can report
/// incremental and total sizes while it runs).
#[derive(Debug, Clone)]
pub(crate) struct SnapshotPlan {
    pub shards: Vec<ShardPlan>,
    index_ids: BTreeMap<String, String>,
}

fn segment_blob(segment: &Segment) -> Vec<u8> {
    let mut body = Vec::new();
    for (id, source) in &segment.documents {
        body.extend_from_slice(json!({"_id": id, "_source": source}).to_string().as_bytes());
        body.push(b'\n');
    }
    codec::frame(SEGMENT_CODEC, 1, &body)
}

fn file_info(
    name: String,
    physical_name: String,
    bytes: &[u8],
    meta_hash: Option<Vec<u8>>,
) -> FileInfo {
    let crc = crc32fast::hash(&bytes[..bytes.len() - 8]);
    FileInfo {
        name,
        physical_name,
        length: bytes.len() as u64,
        checksum: Some(checksum_to_string(crc)),
        part_size: None,
        written_by: Some(LUCENE_VERSION.to_owned()),
        meta_hash,
    }
}

async fn read_shard_snapshots(
    store: &BlobStore,
    index_id: &str,
    shard: u32,
    generation: Option<&str>,
) -> Result<ShardSnapshots, RepositoryError> {
    let Some(generation) = generation else {
        return Ok(ShardSnapshots::default());
    };
    let blob = layout::shard_index(index_id, shard, generation);
    let bytes = get_required(store, &blob).await?;
    ShardSnapshots::from_blob(&bytes).map_err(format_error(&blob))
}

/// Writes the shard's files list as a new `index-{generation}` blob and points `slot` at it;
/// returns the blob of the generation it replaces, which is now stale.
async fn replace_shard_index(
    store: &BlobStore,
    index_id: &str,
    shard: u32,
    shard_index: &ShardSnapshots,
    slot: &mut Option<String>,
) -> Result<Option<String>, RepositoryError> {
    let new_generation = random_base64_uuid();
    let blob = layout::shard_index(index_id, shard, &new_generation);
    store
        .put_metadata(&blob, shard_index.to_blob().map_err(format_error(&blob))?)
        .await?;
    Ok(slot
        .replace(new_generation)
        .map(|previous| layout::shard_index(index_id, shard, &previous)))
}

fn shard_generation(data: &RepositoryData, index: &str, shard: u32) -> Option<String> {
    data.indices
        .get(index)?
        .shard_generations
        .as_ref()?
        .get(shard as usize)
        .cloned()
        .flatten()
}

/// Reads the current shard generations and decides, file by file, what is new.
pub(crate) async fn plan(
    store: &BlobStore,
    indices: &[CapturedIndex],
    skip_shards: &BTreeSet<(String, u32)>,
) -> Result<SnapshotPlan, RepositoryError> {
    let (_, data) = read_repository_data(store).await?;
    let mut index_ids = BTreeMap::new();
    let mut shards = Vec::new();
    for index in indices {
        let index_id = data
            .indices
            .get(&index.name)
            .map(|entry| entry.id.clone())
            .unwrap_or_else(random_base64_uuid);
        for (shard, segments) in index.shards.iter().enumerate() {
            let shard = shard as u32;
            if skip_shards.contains(&(index.name.clone(), shard)) {
                continue;
            }
            let previous_generation = shard_generation(&data, &index.name, shard);
            let previous =
                read_shard_snapshots(store, &index_id, shard, previous_generation.as_deref())
                    .await?;
            let mut files = Vec::new();
            for segment in segments {
                let bytes = segment_blob(segment);
                let physical_name = format!("_{}.osdocs", segment.generation);
                let candidate = file_info(String::new(), physical_name.clone(), &bytes, None);
                let checksum = candidate.checksum.clone().unwrap_or_default();
                match previous.find_identical(&physical_name, candidate.length, &checksum) {
                    Some(existing) => files.push(PlannedFile {
                        info: existing.clone(),
                        upload: None,
                    }),
                    None => files.push(PlannedFile {
                        info: FileInfo {
                            name: format!("{}{}", FileInfo::DATA_PREFIX, random_base64_uuid()),
                            ..candidate
                        },
                        upload: Some(bytes),
                    }),
                }
            }
            // The commit point lists the segments; small enough that OpenSearch keeps it inline
            // as a virtual file (`v__`), content in `meta_hash`, nothing uploaded.
            let generation = segments.last().map_or(0, |segment| segment.generation + 1);
            let listing: Vec<String> = files
                .iter()
                .map(|file| file.info.physical_name.clone())
                .collect();
            let segments_file = codec::frame(SEGMENTS_FILE_CODEC, 1, listing.join("\n").as_bytes());
            files.push(PlannedFile {
                info: file_info(
                    format!("{}{}", FileInfo::VIRTUAL_PREFIX, random_base64_uuid()),
                    format!("segments_{generation}"),
                    &segments_file,
                    Some(segments_file.clone()),
                ),
                upload: None,
            });
            let uploads: Vec<&PlannedFile> =
                files.iter().filter(|file| file.upload.is_some()).collect();
            shards.push(ShardPlan {
                index: index.name.clone(),
                shard,
                incremental_files: uploads.len() as u64,
                incremental_bytes: uploads.iter().map(|file| file.info.length).sum(),
                total_files: files.len() as u64,
                total_bytes: files.iter().map(|file| file.info.length).sum(),
                files,
                previous,
                previous_generation,
            });
        }
        index_ids.insert(index.name.clone(), index_id);
    }
    Ok(SnapshotPlan { shards, index_ids })
}

fn index_metadata_document(index: &CapturedIndex) -> Value {
    let primary_terms: Map<String, Value> = (0..index.shards.len())
        .map(|shard| (shard.to_string(), json!(1)))
        .collect();
    let in_sync: Map<String, Value> = (0..index.shards.len())
        .map(|shard| (shard.to_string(), json!([])))
        .collect();
    json!({
        index.name.clone(): {
            "version": 1,
            "mapping_version": 1,
            "settings_version": 1,
            "aliases_version": 1,
            "routing_num_shards": index.shards.len(),
            "state": "open",
            "settings": index.settings,
            "mappings": [{"_doc": index.mappings}],
            "aliases": {},
            "primary_terms": primary_terms,
            "in_sync_allocations": in_sync,
            "rollover_info": {},
            "system": false
        }
    })
}

fn index_metadata_key(index: &CapturedIndex) -> String {
    format!("{}-_na_-1-1-1", index.uuid)
}

/// Everything a finished snapshot writes. `info.state` decides what goes in: a FAILED snapshot
/// stores only its SnapshotInfo and global metadata.
pub(crate) async fn finalize(
    store: &BlobStore,
    snapshot_uuid: &str,
    info: &SnapshotInfo,
    indices: &[CapturedIndex],
    plan: &SnapshotPlan,
    cluster_uuid: &str,
    version: &str,
) -> Result<(), RepositoryError> {
    let (generation, mut data) = read_repository_data(store).await?;
    let state = info
        .snapshot_state()
        .ok()
        .flatten()
        .unwrap_or(SnapshotState::Failed);
    let mut stale_shard_generations = Vec::new();
    let mut new_generations: BTreeMap<(String, u32), String> = BTreeMap::new();

    if state != SnapshotState::Failed {
        for shard in &plan.shards {
            let index_id = &plan.index_ids[&shard.index];
            for file in &shard.files {
                if let Some(bytes) = &file.upload {
                    store
                        .put(
                            &layout::shard_data(index_id, shard.shard, &file.info.name),
                            bytes.clone(),
                        )
                        .await?;
                }
            }
            let shard_snapshot = ShardSnapshot {
                name: info.name.clone(),
                index_version: 0,
                start_time: info.start_time,
                time: info.end_time - info.start_time,
                incremental_file_count: shard.incremental_files,
                incremental_size: shard.incremental_bytes,
                files: shard.files.iter().map(|file| file.info.clone()).collect(),
            };
            let blob = layout::shard_snapshot(index_id, shard.shard, snapshot_uuid);
            store
                .put_metadata(
                    &blob,
                    shard_snapshot.to_blob().map_err(format_error(&blob))?,
                )
                .await?;

            let mut shard_index = shard.previous.clone();
            for file in &shard.files {
                if !shard_index
                    .files
                    .iter()
                    .any(|known| known.name == file.info.name)
                {
                    shard_index.files.push(file.info.clone());
                }
            }
            shard_index.snapshots.insert(
                info.name.clone(),
                ShardSnapshotEntry {
                    files: shard
                        .files
                        .iter()
                        .map(|file| file.info.name.clone())
                        .collect(),
                    shard_state_id: None,
                },
            );
            let new_generation = random_base64_uuid();
            let blob = layout::shard_index(index_id, shard.shard, &new_generation);
            store
                .put_metadata(&blob, shard_index.to_blob().map_err(format_error(&blob))?)
                .await?;
            if let Some(previous) = &shard.previous_generation {
                stale_shard_generations.push(layout::shard_index(index_id, shard.shard, previous));
            }
            new_generations.insert((shard.index.clone(), shard.shard), new_generation);
        }
    }

    let global = json!({"meta-data": {"version": 1, "cluster_uuid": cluster_uuid, "cluster_uuid_committed": true, "templates": {}}});
    let blob = layout::global_metadata(snapshot_uuid);
    store
        .put_metadata(
            &blob,
            smile::write_blob(Codec::Metadata, &global).map_err(format_error(&blob))?,
        )
        .await?;

    let mut lookup = BTreeMap::new();
    if state != SnapshotState::Failed {
        let identifiers = data
            .index_metadata_identifiers
            .get_or_insert_with(BTreeMap::new);
        for index in indices {
            let Some(index_id) = plan.index_ids.get(&index.name) else {
                continue;
            };
            let key = index_metadata_key(index);
            if !identifiers.contains_key(&key) {
                let blob_id = random_base64_uuid();
                let blob = layout::index_metadata(index_id, &blob_id);
                let document = index_metadata_document(index);
                store
                    .put_metadata(
                        &blob,
                        smile::write_blob(Codec::IndexMetadata, &document)
                            .map_err(format_error(&blob))?,
                    )
                    .await?;
                identifiers.insert(key.clone(), blob_id);
            }
            lookup.insert(index_id.clone(), key);

            let shard_count = index.shards.len();
            let entry = data
                .indices
                .entry(index.name.clone())
                .or_insert_with(|| IndexEntry {
                    id: index_id.clone(),
                    snapshots: Vec::new(),
                    shard_generations: Some(vec![None; shard_count]),
                });
            entry.snapshots.push(snapshot_uuid.to_owned());
            let generations = entry
                .shard_generations
                .get_or_insert_with(|| vec![None; shard_count]);
            generations.resize(shard_count, None);
            for (shard, slot) in generations.iter_mut().enumerate() {
                if let Some(new_generation) =
                    new_generations.get(&(index.name.clone(), shard as u32))
                {
                    *slot = Some(new_generation.clone());
                }
            }
        }
    }

    let blob = layout::snapshot_info(snapshot_uuid);
    store
        .put_metadata(&blob, info.to_blob().map_err(format_error(&blob))?)
        .await?;

    data.snapshots.push(SnapshotEntry {
        name: info.name.clone(),
        uuid: snapshot_uuid.to_owned(),
        state: Some(state.as_byte()),
        index_metadata_lookup: Some(lookup),
        version: Some(version.to_owned()),
        start_time_millis: None,
        end_time_millis: None,
        slm_policy: None,
    });
    data.min_version.get_or_insert_with(|| version.to_owned());
    write_root_generation(store, generation, &data).await?;
    store.delete(&stale_shard_generations).await?;
    Ok(())
}

pub(crate) async fn read_snapshot_info(
    store: &BlobStore,
    uuid: &str,
) -> Result<SnapshotInfo, RepositoryError> {
    let blob = layout::snapshot_info(uuid);
    let bytes = get_required(store, &blob).await?;
    SnapshotInfo::from_blob(&bytes).map_err(format_error(&blob))
}

/// Per-shard stats of a finished snapshot, from its shard `snap-*.dat` files.
pub(crate) async fn read_shard_snapshots_of(
    store: &BlobStore,
    data: &RepositoryData,
    entry: &SnapshotEntry,
) -> Result<Vec<(String, u32, ShardSnapshot)>, RepositoryError> {
    let mut result = Vec::new();
    for (index_name, index) in data.indices_of(&entry.uuid) {
        let shard_count = index.shard_generations.as_ref().map_or(1, Vec::len) as u32;
        for shard in 0..shard_count {
            let blob = layout::shard_snapshot(&index.id, shard, &entry.uuid);
            if let Some(bytes) = store.get(&blob).await? {
                let shard_snapshot =
                    ShardSnapshot::from_blob(&bytes).map_err(format_error(&blob))?;
                result.push((index_name.to_owned(), shard, shard_snapshot));
            }
        }
    }
    Ok(result)
}

/// Removes snapshots the way `BlobStoreRepository.deleteSnapshots` does: new shard generations
/// without them, data blobs no other snapshot uses, their root and shard `snap-*.dat`, unused
/// index metadata, indices no snapshot contains any more; then a new root generation.
pub(crate) async fn delete_snapshots(
    store: &BlobStore,
    names: &[String],
) -> Result<(), RepositoryError> {
    let (generation, mut data) = read_repository_data(store).await?;
    let removed: Vec<SnapshotEntry> = data
        .snapshots
        .iter()
        .filter(|entry| names.contains(&entry.name))
        .cloned()
        .collect();
    let removed_uuids: BTreeSet<&str> = removed.iter().map(|entry| entry.uuid.as_str()).collect();
    data.snapshots.retain(|entry| !names.contains(&entry.name));

    let mut blobs_to_delete = Vec::new();
    let mut emptied_indices = Vec::new();
    for (index_name, index) in data.indices.iter_mut() {
        if !index
            .snapshots
            .iter()
            .any(|uuid| removed_uuids.contains(uuid.as_str()))
        {
            continue;
        }
        index
            .snapshots
            .retain(|uuid| !removed_uuids.contains(uuid.as_str()));
        if index.snapshots.is_empty() {
            emptied_indices.push(index_name.clone());
            continue;
        }
        let generations = index.shard_generations.get_or_insert_with(Vec::new);
        for (shard, slot) in generations.iter_mut().enumerate() {
            let shard = shard as u32;
            let mut shard_index =
                read_shard_snapshots(store, &index.id, shard, slot.as_deref()).await?;
            for entry in &removed {
                shard_index.snapshots.remove(&entry.name);
                blobs_to_delete.push(layout::shard_snapshot(&index.id, shard, &entry.uuid));
            }
            let still_used: BTreeSet<&String> = shard_index
                .snapshots
                .values()
                .flat_map(|entry| entry.files.iter())
                .collect();
            let (kept, unused): (Vec<FileInfo>, Vec<FileInfo>) = shard_index
                .files
                .clone()
                .into_iter()
                .partition(|file| still_used.contains(&file.name));
            for file in unused {
                blobs_to_delete.extend(
                    file.blob_names()
                        .into_iter()
                        .map(|blob| layout::shard_data(&index.id, shard, &blob)),
                );
            }
            shard_index.files = kept;
            blobs_to_delete
                .extend(replace_shard_index(store, &index.id, shard, &shard_index, slot).await?);
        }
    }
    let mut prefixes_to_delete = Vec::new();
    for index_name in emptied_indices {
        if let Some(index) = data.indices.remove(&index_name) {
            prefixes_to_delete.push(format!("indices/{}/", index.id));
        }
    }
    // Index metadata blobs no remaining snapshot refers to.
    let used_keys: BTreeSet<String> = data
        .snapshots
        .iter()
        .flat_map(|entry| {
            entry
                .index_metadata_lookup
                .iter()
                .flat_map(|lookup| lookup.values().cloned())
        })
        .collect();
    for entry in &removed {
        blobs_to_delete.push(layout::snapshot_info(&entry.uuid));
        blobs_to_delete.push(layout::global_metadata(&entry.uuid));
        for (index_id, key) in entry.index_metadata_lookup.iter().flatten() {
            if used_keys.contains(key) {
                continue;
            }
            if let Some(blob_id) = data
                .index_metadata_identifiers
                .as_mut()
                .and_then(|identifiers| identifiers.remove(key))
            {
                blobs_to_delete.push(layout::index_metadata(index_id, &blob_id));
            }
        }
    }
    write_root_generation(store, generation, &data).await?;
    store.delete(&blobs_to_delete).await?;
    for prefix in prefixes_to_delete {
        store.delete_folder(&prefix).await?;
    }
    Ok(())
}

/// `PUT _snapshot/{repo}/{source}/_clone/{target}`: a new snapshot of some of the source's
/// indices that references the source's files, so nothing but metadata is written.
pub(crate) async fn clone_snapshot(
    store: &BlobStore,
    source: &SnapshotEntry,
    target: &str,
    target_uuid: &str,
    indices: &[String],
    now_millis: i64,
    version: (&str, i64),
) -> Result<(), RepositoryError> {
    let (generation, mut data) = read_repository_data(store).await?;
    let source_info = read_snapshot_info(store, &source.uuid).await?;
    let mut lookup = BTreeMap::new();
    let mut stale = Vec::new();
    for index_name in indices {
        let Some(index) = data.indices.get_mut(index_name) else {
            continue;
        };
        let generations = index.shard_generations.get_or_insert_with(Vec::new);
        for (shard, slot) in generations.iter_mut().enumerate() {
            let shard = shard as u32;
            let blob = layout::shard_snapshot(&index.id, shard, &source.uuid);
            let mut shard_snapshot = ShardSnapshot::from_blob(&get_required(store, &blob).await?)
                .map_err(format_error(&blob))?;
            shard_snapshot.name = target.to_owned();
            shard_snapshot.incremental_file_count = 0;
            shard_snapshot.incremental_size = 0;
            let blob = layout::shard_snapshot(&index.id, shard, target_uuid);
            store
                .put_metadata(
                    &blob,
                    shard_snapshot.to_blob().map_err(format_error(&blob))?,
                )
                .await?;
            let mut shard_index =
                read_shard_snapshots(store, &index.id, shard, slot.as_deref()).await?;
            shard_index.snapshots.insert(
                target.to_owned(),
                ShardSnapshotEntry {
                    files: shard_snapshot
                        .files
                        .iter()
                        .map(|file| file.name.clone())
                        .collect(),
                    shard_state_id: None,
                },
            );
            stale.extend(replace_shard_index(store, &index.id, shard, &shard_index, slot).await?);
        }
        index.snapshots.push(target_uuid.to_owned());
        if let Some(key) = source
            .index_metadata_lookup
            .as_ref()
            .and_then(|lookup| lookup.get(&index.id))
        {
            lookup.insert(index.id.clone(), key.clone());
        }
    }
    let global = get_required(store, &layout::global_metadata(&source.uuid)).await?;
    store
        .put(&layout::global_metadata(target_uuid), global)
        .await?;
    let shards: u32 = indices
        .iter()
        .filter_map(|name| data.indices.get(name))
        .map(|index| index.shard_generations.as_ref().map_or(0, Vec::len) as u32)
        .sum();
    let info = SnapshotInfo {
        name: target.to_owned(),
        uuid: Some(target_uuid.to_owned()),
        version_id: Some(version.1),
        indices: indices.to_vec(),
        state: Some(SnapshotState::Success.name().to_owned()),
        reason: None,
        start_time: now_millis,
        end_time: now_millis + 1,
        total_shards: shards,
        successful_shards: shards,
        failures: Vec::new(),
        ..source_info
    };
    let blob = layout::snapshot_info(target_uuid);
    store
        .put_metadata(&blob, info.to_blob().map_err(format_error(&blob))?)
        .await?;
    data.snapshots.push(SnapshotEntry {
        name: target.to_owned(),
        uuid: target_uuid.to_owned(),
        state: Some(SnapshotState::Success.as_byte()),
        index_metadata_lookup: Some(lookup),
        version: Some(version.0.to_owned()),
        start_time_millis: None,
        end_time_millis: None,
        slm_policy: None,
    });
    write_root_generation(store, generation, &data).await?;
    store.delete(&stale).await?;
    Ok(())
}

/// An index read back from a snapshot: shard count, mappings and documents.
#[derive(Debug, Clone)]
pub(crate) struct RestoredIndex {
    pub number_of_shards: u32,
    /// As the snapshot's index metadata says.
    pub number_of_replicas: Option<u32>,
    pub mappings: Value,
    pub documents: Vec<(String, Value)>,
    /// (files, bytes) each shard's snapshot lists.
    pub shard_sizes: Vec<(u64, u64)>,
}

pub(crate) async fn restore_index(
    store: &BlobStore,
    data: &RepositoryData,
    entry: &SnapshotEntry,
    index_name: &str,
) -> Result<RestoredIndex, RepositoryError> {
    let index = data
        .indices
        .get(index_name)
        .ok_or_else(|| RepositoryError::MissingBlob(format!("indices entry for [{index_name}]")))?;
    let blob = layout::index_metadata(&index.id, &data.index_metadata_blob_id(entry, &index.id));
    let bytes = get_required(store, &blob).await?;
    let metadata = read_untyped(Codec::IndexMetadata, &bytes).map_err(format_error(&blob))?;
    let mappings = match smile_to_json(&metadata)
        .get(index_name)
        .and_then(|index| index.get("mappings"))
    {
        Some(Value::Array(mappings)) => mappings
            .first()
            .and_then(|mapping| mapping.get("_doc"))
            .cloned()
            .unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let settings = smile_to_json(&metadata)
        .get(index_name)
        .and_then(|index| index.get("settings"))
        .cloned()
        .unwrap_or(Value::Null);
    let number_of_replicas: Option<u32> = settings
        .get("index.number_of_replicas")
        .or_else(|| {
            settings
                .get("index")
                .and_then(|i| i.get("number_of_replicas"))
        })
        .and_then(|value| value.as_str()?.parse().ok());
    let shard_count = index.shard_generations.as_ref().map_or(1, Vec::len) as u32;
    let mut documents = Vec::new();
    let mut shard_sizes = Vec::new();
    for shard in 0..shard_count {
        let blob = layout::shard_snapshot(&index.id, shard, &entry.uuid);
        let bytes = get_required(store, &blob).await?;
        let shard_snapshot = ShardSnapshot::from_blob(&bytes).map_err(format_error(&blob))?;
        shard_sizes.push((
            shard_snapshot.files.len() as u64,
            shard_snapshot.files.iter().map(|file| file.length).sum(),
        ));
        for file in shard_snapshot
            .files
            .iter()
            .filter(|file| !file.is_virtual())
        {
            let blob = layout::shard_data(&index.id, shard, &file.name);
            let bytes = get_required(store, &blob).await?;
            let framed = codec::unframe(&bytes).map_err(format_error(&blob))?;
            for line in framed
                .body
                .split(|&byte| byte == b'\n')
                .filter(|line| !line.is_empty())
            {
                let document: Value =
                    serde_json::from_slice(line).map_err(|error| RepositoryError::Format {
                        blob: blob.clone(),
                        source: error.into(),
                    })?;
                let id = document["_id"].as_str().unwrap_or_default().to_owned();
                documents.push((id, document["_source"].clone()));
            }
        }
    }
    Ok(RestoredIndex {
        number_of_shards: shard_count,
        number_of_replicas,
        mappings,
        documents,
        shard_sizes,
    })
}

/// SMILE values as JSON, for the parts of metadata the emulator reads (binary becomes null).
fn smile_to_json(value: &SmileValue) -> Value {
    match value {
        SmileValue::Null
        | SmileValue::Binary(_)
        | SmileValue::BigInteger(_)
        | SmileValue::BigDecimal(_) => Value::Null,
        SmileValue::Boolean(value) => json!(value),
        SmileValue::Integer(value) => json!(value),
        SmileValue::Long(value) => json!(value),
        SmileValue::Float(value) => json!(value),
        SmileValue::Double(value) => json!(value),
        SmileValue::String(value) => json!(value),
        SmileValue::Array(values) => Value::Array(values.iter().map(smile_to_json).collect()),
        SmileValue::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), smile_to_json(value)))
                .collect(),
        ),
    }
}
