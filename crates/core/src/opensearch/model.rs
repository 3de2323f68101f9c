//! The response shapes ossnap reads. Every field it does not need is ignored and every field
//! it reads is optional where servers differ, so that new or old versions never break parsing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const IN_PROGRESS: &str = "IN_PROGRESS";
pub const SUCCESS: &str = "SUCCESS";

/// Elasticsearch's version ids of the first releases with a feature ossnap uses: snapshot
/// `metadata` (7.3) and comma-separated names in a snapshot DELETE (7.8). OpenSearch's ids have
/// bit 27 set, and every OpenSearch release has both.
pub const ES_7_3: i64 = 7_030_099;
pub const ES_7_8: i64 = 7_080_099;
const OPENSEARCH_VERSION_BIT: i64 = 1 << 27;

/// `type` and `settings` of a registered repository.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RepositoryDefinition {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub settings: Map<String, Value>,
}

/// `shards` of a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ShardCounts {
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub successful: u64,
    #[serde(default)]
    pub failed: u64,
}

/// One entry of `GET _snapshot/<repo>/<names>`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SnapshotInfo {
    pub snapshot: String,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub indices: Vec<String>,
    #[serde(default)]
    pub start_time_in_millis: Option<i64>,
    #[serde(default)]
    pub end_time_in_millis: Option<i64>,
    #[serde(default)]
    pub duration_in_millis: Option<i64>,
    #[serde(default)]
    pub shards: Option<ShardCounts>,
    #[serde(default)]
    pub failures: Vec<Value>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// The version id of the cluster that took it (verbose listings only).
    #[serde(default)]
    pub version_id: Option<i64>,
}

impl SnapshotInfo {
    /// SUCCESS with at least one shard and none failed: the only outcome worth keeping.
    pub fn is_healthy(&self) -> bool {
        let shards = self.shards.unwrap_or_default();
        self.state.as_deref() == Some(SUCCESS) && shards.total > 0 && shards.failed == 0
    }

    /// Whether an Elasticsearch release older than `es_version_id` took it; `false` for
    /// OpenSearch and when the listing does not say (non-verbose).
    pub fn taken_before(&self, es_version_id: i64) -> bool {
        self.version_id
            .is_some_and(|id| id & OPENSEARCH_VERSION_BIT == 0 && id < es_version_id)
    }

    /// Taken by a cluster that drops snapshot `metadata` (before ES 7.3), so none can prove
    /// who took it.
    pub fn cannot_carry_metadata(&self) -> bool {
        self.metadata.is_none() && self.taken_before(ES_7_3)
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SnapshotList {
    #[serde(default)]
    pub snapshots: Vec<SnapshotInfo>,
}

/// `file_count` and `size_in_bytes` of one `_status` stats group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct FileStats {
    #[serde(default)]
    pub file_count: u64,
    #[serde(default)]
    pub size_in_bytes: u64,
}

/// `stats` of a snapshot's `_status`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SnapshotStats {
    #[serde(default)]
    pub incremental: Option<FileStats>,
    #[serde(default)]
    pub processed: Option<FileStats>,
    #[serde(default)]
    pub total: Option<FileStats>,
    #[serde(default)]
    pub start_time_in_millis: Option<i64>,
    #[serde(default)]
    pub time_in_millis: Option<i64>,
}

/// `shards_stats` of a snapshot's `_status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct ShardsStats {
    #[serde(default)]
    pub initializing: u64,
    #[serde(default)]
    pub started: u64,
    #[serde(default)]
    pub finalizing: u64,
    #[serde(default)]
    pub done: u64,
    #[serde(default)]
    pub failed: u64,
    #[serde(default)]
    pub total: u64,
}

/// One entry of `GET _snapshot/_status` or `GET _snapshot/<repo>/<snap>/_status`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SnapshotStatus {
    pub snapshot: String,
    pub repository: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub shards_stats: Option<ShardsStats>,
    #[serde(default)]
    pub stats: Option<SnapshotStats>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatusList {
    #[serde(default)]
    pub snapshots: Vec<SnapshotStatus>,
}

/// `GET _cluster/health`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClusterHealth {
    pub status: String,
    #[serde(default)]
    pub cluster_name: Option<String>,
    #[serde(default)]
    pub number_of_data_nodes: u64,
    #[serde(default)]
    pub active_shards: u64,
    #[serde(default)]
    pub initializing_shards: u64,
    #[serde(default)]
    pub relocating_shards: u64,
    #[serde(default)]
    pub unassigned_shards: u64,
    /// With `level=indices`: each index's health.
    #[serde(default)]
    pub indices: std::collections::BTreeMap<String, IndexHealth>,
}

/// One index of `GET _cluster/health/<indices>?level=indices`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IndexHealth {
    pub status: String,
    #[serde(default)]
    pub number_of_shards: u64,
    #[serde(default)]
    pub active_primary_shards: u64,
    #[serde(default)]
    pub unassigned_shards: u64,
}

/// `version` of `GET /`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VersionInfo {
    pub number: String,
    #[serde(default)]
    pub distribution: Option<String>,
    #[serde(default)]
    pub minimum_index_compatibility_version: Option<String>,
}

/// One row of `GET _cat/indices?format=json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CatIndex {
    pub index: String,
    #[serde(default)]
    pub status: Option<String>,
}

/// One row of `GET _cat/allocation?format=json&bytes=b` (numbers come as strings; the row of
/// unassigned shards has no disk figures).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CatAllocation {
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default, rename = "disk.avail")]
    pub disk_avail: Option<String>,
    #[serde(default, rename = "disk.used")]
    pub disk_used: Option<String>,
    #[serde(default, rename = "disk.total")]
    pub disk_total: Option<String>,
}

/// One shard of `GET <indices>/_recovery`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ShardRecovery {
    pub id: u64,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub stage: String,
    #[serde(default)]
    pub primary: bool,
    #[serde(default)]
    pub start_time_in_millis: Option<i64>,
    #[serde(default)]
    pub total_time_in_millis: Option<i64>,
    #[serde(default)]
    pub index: RecoveryIndex,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RecoveryIndex {
    #[serde(default)]
    pub size: RecoverySize,
    #[serde(default)]
    pub files: RecoveryFiles,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct RecoverySize {
    #[serde(default)]
    pub total_in_bytes: u64,
    #[serde(default)]
    pub reused_in_bytes: u64,
    #[serde(default)]
    pub recovered_in_bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct RecoveryFiles {
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub reused: u64,
    #[serde(default)]
    pub recovered: u64,
}

/// One index of `GET <indices>/_recovery`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct IndexRecovery {
    #[serde(default)]
    pub shards: Vec<ShardRecovery>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_info_tolerates_missing_and_unknown_fields() {
        let list: SnapshotList = serde_json::from_str(
            r#"{"snapshots":[
                {"snapshot":"a","uuid":"u","state":"FAILED","reason":"Indices don't have primary shards [idx2]",
                 "indices":["idx2"],"failures":[{"index":"idx2","index_uuid":"idx2","shard_id":3,"reason":null,"status":"INTERNAL_SERVER_ERROR"}],
                 "shards":{"total":5,"failed":5,"successful":0},"brand_new_field":{"x":1}},
                {"snapshot":"b","indices":[]}
            ]}"#,
        )
        .unwrap();
        assert_eq!(list.snapshots[0].shards.unwrap().failed, 5);
        assert_eq!(list.snapshots[1].state, None);
    }

    #[test]
    fn versions_tell_elasticsearch_releases_from_opensearch() {
        let taken_by = |version_id: Option<i64>| SnapshotInfo {
            version_id,
            ..serde_json::from_value(serde_json::json!({"snapshot": "s"})).unwrap()
        };
        assert!(taken_by(Some(6_082_399)).taken_before(ES_7_3));
        assert!(taken_by(Some(7_070_199)).taken_before(ES_7_8));
        assert!(!taken_by(Some(7_070_199)).taken_before(ES_7_3));
        assert!(!taken_by(Some(7_100_299)).taken_before(ES_7_8));
        // OpenSearch 1.0 (1.0.0 with bit 27) and an unknown version are current.
        assert!(!taken_by(Some(135_217_827)).taken_before(ES_7_8));
        assert!(!taken_by(None).taken_before(ES_7_8));
        assert!(taken_by(Some(6_082_399)).cannot_carry_metadata());
    }
}
