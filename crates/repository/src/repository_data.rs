//! The root `index-N` blob (`RepositoryData`, plain JSON) and `index.latest` (N as an 8-byte
//! big-endian long). `index-N` lists only finished snapshots, because OpenSearch rewrites it when a
//! snapshot is finalised; the newest N is the current state of the repository.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::FormatError;

/// `SnapshotState`, stored as its byte value in `index-N` and by name in `snap-*.dat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnapshotState {
    InProgress,
    Success,
    Failed,
    Partial,
    Incompatible,
}

impl SnapshotState {
    pub fn as_byte(self) -> u8 {
        match self {
            SnapshotState::InProgress => 0,
            SnapshotState::Success => 1,
            SnapshotState::Failed => 2,
            SnapshotState::Partial => 3,
            SnapshotState::Incompatible => 4,
        }
    }

    pub fn from_byte(value: u8) -> Result<Self, FormatError> {
        Ok(match value {
            0 => SnapshotState::InProgress,
            1 => SnapshotState::Success,
            2 => SnapshotState::Failed,
            3 => SnapshotState::Partial,
            4 => SnapshotState::Incompatible,
            other => return Err(FormatError::UnknownState(other.to_string())),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SnapshotState::InProgress => "IN_PROGRESS",
            SnapshotState::Success => "SUCCESS",
            SnapshotState::Failed => "FAILED",
            SnapshotState::Partial => "PARTIAL",
            SnapshotState::Incompatible => "INCOMPATIBLE",
        }
    }

    pub fn from_name(name: &str) -> Result<Self, FormatError> {
        Ok(match name {
            "IN_PROGRESS" => SnapshotState::InProgress,
            "SUCCESS" => SnapshotState::Success,
            "FAILED" => SnapshotState::Failed,
            "PARTIAL" => SnapshotState::Partial,
            "INCOMPATIBLE" => SnapshotState::Incompatible,
            other => return Err(FormatError::UnknownState(other.to_owned())),
        })
    }

    /// Only SUCCESS and PARTIAL snapshots can be restored (`SnapshotState.restorable()`).
    pub fn restorable(self) -> bool {
        matches!(self, SnapshotState::Success | SnapshotState::Partial)
    }
}

/// One snapshot in `index-N`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotEntry {
    pub name: String,
    pub uuid: String,
    /// The [`SnapshotState`] byte; absent in very old repositories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<u8>,
    /// index id → key into [`RepositoryData::index_metadata_identifiers`] (ES ≥ 7.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_metadata_lookup: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time_millis: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time_millis: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slm_policy: Option<String>,
}

impl SnapshotEntry {
    pub fn snapshot_state(&self) -> Result<Option<SnapshotState>, FormatError> {
        self.state.map(SnapshotState::from_byte).transpose()
    }
}

/// One index in `index-N`: its repository id (the folder under `indices/`) and the snapshots
/// containing it. `shard_generations[shard]` names the shard's current `index-{generation}` blob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub id: String,
    pub snapshots: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_generations: Option<Vec<Option<String>>>,
}

/// `RepositoryData`: the root `index-N` JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepositoryData {
    pub snapshots: Vec<SnapshotEntry>,
    /// Index name → entry. A BTreeMap keeps the output deterministic.
    pub indices: BTreeMap<String, IndexEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// Index-metadata key (`{index uuid}-{history}-...`) → blob id of `indices/{id}/meta-{blob id}.dat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_metadata_identifiers: Option<BTreeMap<String, String>>,
}

impl RepositoryData {
    pub fn from_json(bytes: &[u8]) -> Result<Self, FormatError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    pub fn to_json(&self) -> Result<Vec<u8>, FormatError> {
        Ok(serde_json::to_vec(self)?)
    }

    pub fn snapshot(&self, name: &str) -> Option<&SnapshotEntry> {
        self.snapshots.iter().find(|snapshot| snapshot.name == name)
    }

    /// The blob id of `indices/{index_id}/meta-{id}.dat` for this snapshot. Repositories older
    /// than 7.9 have no lookup table and name the blob after the snapshot uuid.
    pub fn index_metadata_blob_id(&self, snapshot: &SnapshotEntry, index_id: &str) -> String {
        snapshot
            .index_metadata_lookup
            .as_ref()
            .and_then(|lookup| lookup.get(index_id))
            .and_then(|key| self.index_metadata_identifiers.as_ref()?.get(key))
            .cloned()
            .unwrap_or_else(|| snapshot.uuid.clone())
    }

    /// Names of the indices a snapshot contains, from the `indices` table.
    pub fn indices_of(&self, snapshot_uuid: &str) -> Vec<(&str, &IndexEntry)> {
        self.indices
            .iter()
            .filter(|(_, entry)| entry.snapshots.iter().any(|uuid| uuid == snapshot_uuid))
            .map(|(name, entry)| (name.as_str(), entry))
            .collect()
    }
}

/// `index.latest`: the current generation N as an 8-byte big-endian long.
pub fn encode_index_latest(generation: u64) -> [u8; 8] {
    generation.to_be_bytes()
}

pub fn decode_index_latest(bytes: &[u8]) -> Result<u64, FormatError> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| FormatError::IndexLatestLength(bytes.len()))?;
    Ok(u64::from_be_bytes(bytes))
}

/// The generation of a root `index-N` blob name, `None` for anything else (`index.latest`,
/// `incompatible-snapshots`, ...).
pub fn root_index_generation(blob_name: &str) -> Option<u64> {
    blob_name.strip_prefix("index-")?.parse().ok()
}
