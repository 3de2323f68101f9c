//! The emulated cluster's persistent state: indices with their documents, registered
//! repositories and security role mappings, saved as JSON in the data directory after every
//! change so that a restart finds them again. Snapshots are not here: they live in the
//! repositories in S3, as on a real cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::blob_store::Location;
use crate::security::RoleMapping;
use crate::Error;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ClusterState {
    pub cluster_uuid: String,
    pub indices: BTreeMap<String, IndexState>,
    pub repositories: BTreeMap<String, RepositoryConfig>,
    pub role_mappings: BTreeMap<String, RoleMapping>,
    /// Persistent cluster settings, flat (`cluster.max_shards_per_node`).
    #[serde(default)]
    pub settings: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RepositoryConfig {
    #[serde(rename = "type")]
    pub repository_type: String,
    pub settings: Map<String, Value>,
}

impl RepositoryConfig {
    pub fn setting_str(&self, key: &str) -> Option<String> {
        match self.settings.get(key)? {
            Value::String(value) => Some(value.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    pub fn setting_bool(&self, key: &str) -> bool {
        matches!(self.setting_str(key).as_deref(), Some("true"))
    }

    pub fn bucket(&self) -> Option<String> {
        self.setting_str("bucket")
    }

    pub fn base_path(&self) -> String {
        self.setting_str("base_path").unwrap_or_default()
    }

    /// Where the repository's blobs live, with the plugins' defaults: repository-azure's
    /// `container` is `opensearch-snapshots`, its `client` the deprecated `account`, else
    /// `default`.
    pub fn location(&self) -> Location {
        match self.repository_type.as_str() {
            "azure" => Location::Azure {
                client: self
                    .setting_str("client")
                    .or_else(|| self.setting_str("account"))
                    .unwrap_or_else(|| "default".to_owned()),
                container: self
                    .setting_str("container")
                    .unwrap_or_else(|| "opensearch-snapshots".to_owned()),
            },
            _ => Location::S3 {
                bucket: self.bucket().unwrap_or_default(),
            },
        }
    }
}

/// One index: documents routed to shards; each shard holds sealed segments (immutable, what
/// snapshots copy) and documents indexed since the last seal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct IndexState {
    pub uuid: String,
    pub creation_date: i64,
    pub number_of_shards: u32,
    pub number_of_replicas: u32,
    #[serde(default)]
    pub mappings: Value,
    pub shards: Vec<ShardState>,
    #[serde(default)]
    pub aliases: std::collections::BTreeSet<String>,
    /// How the index came back from a snapshot, when it did (for `_recovery` and health).
    #[serde(default)]
    pub recovery: Option<Recovery>,
    /// Documents indexed since the index was opened (`_stats/indexing`'s `index_total`).
    #[serde(default)]
    pub index_total: u64,
}

/// A restore's recovery: every primary copies its files from the repository at the same pace,
/// over `duration_millis`; with `required_node` naming another node the primaries are never
/// allocated (`index.routing.allocation.require._name`), as a real cluster leaves them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Recovery {
    pub repository: String,
    pub snapshot: String,
    pub started_millis: i64,
    pub duration_millis: i64,
    /// (files, bytes) of each shard in the snapshot.
    pub shards: Vec<(u64, u64)>,
    pub required_node: Option<String>,
}

impl Recovery {
    /// The share copied at `now`, in [0, 1].
    pub fn share(&self, now: i64) -> f64 {
        if self.duration_millis <= 0 {
            return 1.0;
        }
        ((now - self.started_millis) as f64 / self.duration_millis as f64).clamp(0.0, 1.0)
    }

    pub fn unallocatable(&self) -> bool {
        self.required_node.is_some()
    }

    /// Every primary recovered.
    pub fn done(&self, now: i64) -> bool {
        !self.unallocatable() && self.share(now) >= 1.0
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ShardState {
    pub segments: Vec<Segment>,
    /// Indexed but not yet in a segment (like an unflushed buffer).
    pub pending: BTreeMap<String, Value>,
    pub next_generation: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Segment {
    pub generation: u32,
    pub documents: BTreeMap<String, Value>,
}

impl IndexState {
    pub fn new(
        uuid: String,
        creation_date: i64,
        number_of_shards: u32,
        number_of_replicas: u32,
        mappings: Value,
    ) -> Self {
        IndexState {
            uuid,
            creation_date,
            number_of_shards,
            number_of_replicas,
            mappings,
            shards: vec![ShardState::default(); number_of_shards as usize],
            aliases: Default::default(),
            recovery: None,
            index_total: 0,
        }
    }

    fn shard_of(&self, id: &str) -> usize {
        (crc32fast::hash(id.as_bytes()) % self.number_of_shards.max(1)) as usize
    }

    pub fn index_document(&mut self, id: String, source: Value) {
        let shard = self.shard_of(&id);
        self.shards[shard].pending.insert(id, source);
        self.index_total += 1;
    }

    pub fn document(&self, id: &str) -> Option<&Value> {
        let shard = &self.shards[self.shard_of(id)];
        shard.pending.get(id).or_else(|| {
            shard
                .segments
                .iter()
                .rev()
                .find_map(|segment| segment.documents.get(id))
        })
    }

    pub fn count(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let mut ids: std::collections::BTreeSet<&String> = shard.pending.keys().collect();
                for segment in &shard.segments {
                    ids.extend(segment.documents.keys());
                }
                ids.len()
            })
            .sum()
    }

    /// Turns pending documents into new segments (what a flush before a snapshot does).
    pub fn seal(&mut self) {
        for shard in &mut self.shards {
            if shard.pending.is_empty() {
                continue;
            }
            let documents = std::mem::take(&mut shard.pending);
            shard.segments.push(Segment {
                generation: shard.next_generation,
                documents,
            });
            shard.next_generation += 1;
        }
    }

    /// Primaries that no node holds: never allocated, or still recovering at `now`.
    pub fn inactive_primaries(&self, now: i64) -> u32 {
        match &self.recovery {
            Some(recovery) if !recovery.done(now) => self.number_of_shards,
            _ => 0,
        }
    }

    /// The index settings as `GET {index}/_settings` and index metadata show them (strings).
    pub fn settings(&self, name: &str) -> Map<String, Value> {
        let mut settings = Map::new();
        settings.insert(
            "index.creation_date".to_owned(),
            Value::String(self.creation_date.to_string()),
        );
        settings.insert(
            "index.number_of_replicas".to_owned(),
            Value::String(self.number_of_replicas.to_string()),
        );
        settings.insert(
            "index.number_of_shards".to_owned(),
            Value::String(self.number_of_shards.to_string()),
        );
        settings.insert(
            "index.provided_name".to_owned(),
            Value::String(name.to_owned()),
        );
        settings.insert("index.uuid".to_owned(), Value::String(self.uuid.clone()));
        settings.insert(
            "index.version.created".to_owned(),
            Value::String("136387827".to_owned()),
        );
        settings
    }
}

pub(crate) struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn new(data_dir: &Path) -> Self {
        StateFile {
            path: data_dir.join("opensearch-state.json"),
        }
    }

    pub fn load(&self) -> Result<Option<ClusterState>, Error> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|error| Error::State {
                    path: self.path.clone(),
                    reason: error.to_string(),
                }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(Error::State {
                path: self.path.clone(),
                reason: error.to_string(),
            }),
        }
    }

    /// Written to a temporary file and renamed, so a crash never leaves half a state file.
    pub fn save(&self, state: &ClusterState) -> Result<(), Error> {
        let temporary = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(state).map_err(|error| Error::State {
            path: self.path.clone(),
            reason: error.to_string(),
        })?;
        std::fs::write(&temporary, bytes)
            .and_then(|()| std::fs::rename(&temporary, &self.path))
            .map_err(|error| Error::State {
                path: self.path.clone(),
                reason: error.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn later_versions_of_a_document_win_and_count_once() {
        let mut index = IndexState::new("u".into(), 0, 2, 1, json!({}));
        index.index_document("a".into(), json!({"v": 1}));
        index.seal();
        index.index_document("a".into(), json!({"v": 2}));
        index.index_document("b".into(), json!({"v": 1}));
        assert_eq!(index.count(), 2);
        assert_eq!(index.document("a"), Some(&json!({"v": 2})));
        index.seal();
        assert_eq!(index.document("a"), Some(&json!({"v": 2})));
        assert_eq!(index.count(), 2);
    }
}
