//! The SMILE documents inside `.dat` and shard `index-*` blobs. Field names are those of the
//! server's `toXContent`; unknown fields are ignored on read so that newer writers still parse.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codec::Codec;
use crate::repository_data::SnapshotState;
use crate::smile::{self, Value};
use crate::FormatError;

/// Root `snap-{uuid}.dat`: `{"snapshot": SnapshotInfo}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<i64>,
    #[serde(default)]
    pub indices: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_streams: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_global_state: Option<bool>,
    /// User metadata given at create time; written as null when there is none.
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub start_time: i64,
    #[serde(default)]
    pub end_time: i64,
    #[serde(default)]
    pub total_shards: u32,
    #[serde(default)]
    pub successful_shards: u32,
    #[serde(default)]
    pub failures: Vec<ShardFailure>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotInfoBlob {
    snapshot: SnapshotInfo,
}

impl SnapshotInfo {
    pub fn to_blob(&self) -> Result<Vec<u8>, FormatError> {
        smile::write_blob(
            Codec::Snapshot,
            &SnapshotInfoBlob {
                snapshot: self.clone(),
            },
        )
    }

    pub fn from_blob(blob: &[u8]) -> Result<Self, FormatError> {
        Ok(smile::read_blob::<SnapshotInfoBlob>(Codec::Snapshot, blob)?.snapshot)
    }

    pub fn snapshot_state(&self) -> Result<Option<SnapshotState>, FormatError> {
        self.state
            .as_deref()
            .map(SnapshotState::from_name)
            .transpose()
    }
}

/// `SnapshotShardFailure` as stored (and as the REST API returns it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardFailure {
    pub index: String,
    /// The server writes the index *name* here (`shardId.getIndexName()`), a long-standing quirk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_uuid: Option<String>,
    pub shard_id: u32,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// One file of a shard snapshot (`BlobStoreIndexShardSnapshot.FileInfo`). `name` is the blob:
/// `__{uuid}` is uploaded (as `.partN` when split), `v__{uuid}` is virtual: its content is
/// `meta_hash` and nothing exists in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    pub name: String,
    pub physical_name: String,
    pub length: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_by: Option<String>,
    #[serde(
        default,
        with = "crate::smile::binary",
        skip_serializing_if = "Option::is_none"
    )]
    pub meta_hash: Option<Vec<u8>>,
}

impl FileInfo {
    pub const VIRTUAL_PREFIX: &'static str = "v__";
    pub const DATA_PREFIX: &'static str = "__";

    /// A virtual file has no blob in the store.
    pub fn is_virtual(&self) -> bool {
        self.name.starts_with(Self::VIRTUAL_PREFIX)
    }

    /// The blobs this file occupies: one, or `{name}.part{N}` when it was split at `part_size`.
    pub fn blob_names(&self) -> Vec<String> {
        if self.is_virtual() {
            return Vec::new();
        }
        match self.part_size {
            Some(part_size) if part_size > 0 && self.length > part_size => {
                let parts = self.length.div_ceil(part_size);
                (0..parts)
                    .map(|part| format!("{}.part{part}", self.name))
                    .collect()
            }
            _ => vec![self.name.clone()],
        }
    }
}

/// Shard `snap-{uuid}.dat` (`BlobStoreIndexShardSnapshot`): the files of one shard in one snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardSnapshot {
    pub name: String,
    #[serde(default)]
    pub index_version: i64,
    #[serde(default)]
    pub start_time: i64,
    #[serde(default)]
    pub time: i64,
    /// Files this snapshot uploaded (not reused from earlier snapshots); the server stores its
    /// incremental counters under these historical names.
    #[serde(default, rename = "number_of_files")]
    pub incremental_file_count: u64,
    #[serde(default, rename = "total_size")]
    pub incremental_size: u64,
    #[serde(default)]
    pub files: Vec<FileInfo>,
}

impl ShardSnapshot {
    pub fn to_blob(&self) -> Result<Vec<u8>, FormatError> {
        smile::write_blob(Codec::Snapshot, self)
    }

    pub fn from_blob(blob: &[u8]) -> Result<Self, FormatError> {
        smile::read_blob(Codec::Snapshot, blob)
    }
}

/// One snapshot's entry in a shard `index-*` blob: the names of the files it uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardSnapshotEntry {
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_state_id: Option<String>,
}

/// Shard `index-{generation}` (`BlobStoreIndexShardSnapshots`): every file any snapshot of this
/// shard uses, and which snapshot uses which. This is what makes data blobs shared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardSnapshots {
    #[serde(default)]
    pub files: Vec<FileInfo>,
    /// Snapshot name → its files.
    #[serde(default)]
    pub snapshots: BTreeMap<String, ShardSnapshotEntry>,
}

impl ShardSnapshots {
    pub fn to_blob(&self) -> Result<Vec<u8>, FormatError> {
        smile::write_blob(Codec::ShardSnapshots, self)
    }

    pub fn from_blob(blob: &[u8]) -> Result<Self, FormatError> {
        smile::read_blob(Codec::ShardSnapshots, blob)
    }

    /// A file with the same physical name, length and checksum already stored, which a new
    /// snapshot reuses instead of uploading again.
    pub fn find_identical(
        &self,
        physical_name: &str,
        length: u64,
        checksum: &str,
    ) -> Option<&FileInfo> {
        self.files.iter().find(|file| {
            file.physical_name == physical_name
                && file.length == length
                && file.checksum.as_deref() == Some(checksum)
        })
    }
}

/// Any metadata blob decoded without a schema (global and index metadata, whose content ossnap
/// does not model).
pub fn read_untyped(codec: Codec, blob: &[u8]) -> Result<Value, FormatError> {
    smile::read_blob(codec, blob)
}
