//! The calls of restore, check-restore and the restore drill: the cluster's version, health,
//! settings and disk, indices, recoveries and allocation explanations, and restore itself.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::model::{
    CatAllocation, CatIndex, ClusterHealth, IndexRecovery, SnapshotInfo, VersionInfo,
};
use super::{name_list, parse_list, segment, OpenSearch};
use crate::error::{Error, ErrorKind, Result};

/// A snapshot with the version that wrote it (`version`, `version_id` of a verbose listing).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VersionedSnapshot {
    #[serde(flatten)]
    pub info: SnapshotInfo,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub version_id: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct VersionedList {
    #[serde(default)]
    snapshots: Vec<VersionedSnapshot>,
}

#[derive(Debug, Deserialize)]
struct RootInfo {
    version: VersionInfo,
}

/// The sizes and shard counts `_status` reports for one index of a finished snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotIndexSize {
    pub primaries: u64,
    pub bytes: u64,
}

fn unreadable(call: &str, error: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("{call} answered an unreadable body: {error}"),
    )
}

impl OpenSearch {
    /// `GET /`: the cluster's version.
    pub async fn version(&self) -> Result<VersionInfo> {
        let body = self.call(http::Method::GET, "/", &[], None).await?;
        serde_json::from_value::<RootInfo>(body)
            .map(|root| root.version)
            .map_err(|e| unreadable("GET /", e))
    }

    /// Snapshots by name (`_all` for every one), verbose, with the version that wrote each.
    pub async fn get_versioned_snapshots(
        &self,
        repository: &str,
        names: &[&str],
    ) -> Result<Vec<VersionedSnapshot>> {
        let path = format!("/_snapshot/{}/{}", segment(repository), name_list(names));
        let body = self.call(http::Method::GET, &path, &[], None).await?;
        parse_list::<VersionedList>(&path, body).map(|list| list.snapshots)
    }

    /// Primary shards and bytes per index of a finished snapshot (`_status` reads every shard's
    /// metadata from the repository: once per restore, never in a polling loop).
    pub async fn snapshot_index_sizes(
        &self,
        repository: &str,
        snapshot: &str,
    ) -> Result<BTreeMap<String, SnapshotIndexSize>> {
        let path = format!(
            "/_snapshot/{}/{}/_status",
            segment(repository),
            segment(snapshot)
        );
        let body = self.call(http::Method::GET, &path, &[], None).await?;
        let indices = body["snapshots"][0]["indices"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        Ok(indices
            .into_iter()
            .map(|(name, index)| {
                let size = SnapshotIndexSize {
                    primaries: index["shards_stats"]["total"].as_u64().unwrap_or(0),
                    bytes: index["stats"]["total"]["size_in_bytes"]
                        .as_u64()
                        .unwrap_or(0),
                };
                (name, size)
            })
            .collect())
    }

    /// Every index of the cluster, open or closed, with its status.
    pub async fn cat_indices(&self) -> Result<Vec<CatIndex>> {
        let path = "/_cat/indices";
        let body = self
            .call(
                http::Method::GET,
                path,
                &[
                    ("format", "json"),
                    ("h", "index,status"),
                    ("expand_wildcards", "all"),
                ],
                None,
            )
            .await?;
        serde_json::from_value(body).map_err(|e| unreadable(path, e))
    }

    /// Disk per node (bytes).
    pub async fn cat_allocation(&self) -> Result<Vec<CatAllocation>> {
        let path = "/_cat/allocation";
        let body = self
            .call(
                http::Method::GET,
                path,
                &[("format", "json"), ("bytes", "b")],
                None,
            )
            .await?;
        serde_json::from_value(body).map_err(|e| unreadable(path, e))
    }

    /// The cluster's settings, flat: transient over persistent over defaults.
    pub async fn cluster_settings(&self) -> Result<BTreeMap<String, Value>> {
        let body = self
            .call(
                http::Method::GET,
                "/_cluster/settings",
                &[("include_defaults", "true"), ("flat_settings", "true")],
                None,
            )
            .await?;
        let mut settings = BTreeMap::new();
        for scope in ["defaults", "persistent", "transient"] {
            if let Some(values) = body[scope].as_object() {
                settings.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        Ok(settings)
    }

    /// Health of the whole cluster, or of `indices` with one entry each.
    pub async fn health_of(&self, indices: &[&str]) -> Result<ClusterHealth> {
        let path = if indices.is_empty() {
            "/_cluster/health".to_string()
        } else {
            format!("/_cluster/health/{}", name_list(indices))
        };
        let body = self
            .call(http::Method::GET, &path, &[("level", "indices")], None)
            .await?;
        serde_json::from_value(body).map_err(|e| unreadable(&path, e))
    }

    /// Starts a restore without waiting for it.
    pub async fn restore_snapshot(
        &self,
        repository: &str,
        snapshot: &str,
        body: &Value,
    ) -> Result<()> {
        let path = format!(
            "/_snapshot/{}/{}/_restore",
            segment(repository),
            segment(snapshot)
        );
        self.call(
            http::Method::POST,
            &path,
            &[("wait_for_completion", "false")],
            Some(body),
        )
        .await
        .map(drop)
    }

    /// `GET /<indices>/_recovery` (Amazon OpenSearch Service refuses a bare `/_recovery`).
    pub async fn recovery(&self, indices: &[&str]) -> Result<BTreeMap<String, IndexRecovery>> {
        let path = format!("/{}/_recovery", name_list(indices));
        let body = self.call(http::Method::GET, &path, &[], None).await?;
        serde_json::from_value(body).map_err(|e| unreadable(&path, e))
    }

    /// Why a shard is where it is (`can_allocate`, deciders): the raw explanation.
    pub async fn allocation_explain(
        &self,
        index: &str,
        shard: u64,
        primary: bool,
    ) -> Result<Value> {
        self.call(
            http::Method::POST,
            "/_cluster/allocation/explain",
            &[],
            Some(&json!({"index": index, "shard": shard, "primary": primary})),
        )
        .await
    }

    /// `_count` of one index.
    pub async fn count(&self, index: &str) -> Result<u64> {
        let path = format!("/{}/_count", segment(index));
        let body = self.call(http::Method::GET, &path, &[], None).await?;
        body["count"]
            .as_u64()
            .ok_or_else(|| unreadable(&path, "no count"))
    }

    /// Documents indexed and deleted since the index was opened on its nodes: what changes with
    /// any write.
    pub async fn indexing_counters(&self, index: &str) -> Result<(u64, u64)> {
        let path = format!("/{}/_stats/indexing", segment(index));
        let body = self.call(http::Method::GET, &path, &[], None).await?;
        let indexing = &body["indices"][index]["primaries"]["indexing"];
        Ok((
            indexing["index_total"].as_u64().unwrap_or(0),
            indexing["delete_total"].as_u64().unwrap_or(0),
        ))
    }

    /// Deletes one index by its exact name.
    pub async fn delete_index(&self, index: &str) -> Result<()> {
        let path = format!("/{}", segment(index));
        self.call(http::Method::DELETE, &path, &[], None)
            .await
            .map(drop)
    }
}
