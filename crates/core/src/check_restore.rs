//! `check-restore`: how far a restore has come, and when to look again.
//!
//! It reads `GET /<indices>/_recovery` (Amazon OpenSearch Service refuses a bare `/_recovery`)
//! and `GET _cluster/health/<indices>?level=indices`, and reports per index and in total the
//! primaries done, files and bytes recovered, a percentage and an ETA. A primary that is not
//! recovering is asked about with `_cluster/allocation/explain`: one that cannot be allocated
//! ends the restore in `RestoreFailed`, naming the shard and the reason.

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::drill::{self, DrillCheck, DrillResult};
use crate::error::{Error, ErrorKind, Result};
use crate::event::Invocation;
use crate::function::{prepare, Deps};
use crate::metrics::{self, Metric, Unit};
use crate::names;
use crate::opensearch::IndexRecovery;
use crate::restore::IndexList;
use crate::status::{remaining_seconds, wait_from_progress};

/// Primaries asked about with `_cluster/allocation/explain` per poll at most: a large restore
/// queues many primaries behind the recovery throttle, each unassigned for a while.
pub const MAX_EXPLAINED_PER_POLL: usize = 5;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRestoreInput {
    /// The indices as `restore` returned them.
    pub indices: Option<IndexList>,
    /// The restore drill being checked (see [`crate::drill`]).
    pub drill: Option<DrillCheck>,
    /// Deletes every drill copy left behind (the drill's failure path).
    #[serde(default)]
    pub drill_cleanup: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

impl Progress {
    fn add(&mut self, other: Progress) {
        self.done += other.done;
        self.total += other.total;
    }

    fn share(self) -> Option<f64> {
        (self.total > 0).then(|| (self.done as f64 / self.total as f64).min(1.0))
    }
}

/// One index's recovery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexProgress {
    pub index: String,
    /// Its health: green, yellow or red.
    pub status: String,
    /// Primaries recovered (stage DONE) of the index's primaries.
    pub primaries: Progress,
    pub files: Progress,
    pub bytes: Progress,
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreReport {
    pub indices: Vec<IndexProgress>,
    pub primaries: Progress,
    pub files: Progress,
    pub bytes: Progress,
    pub percent: f64,
    /// Seconds left at the pace so far, while it runs.
    pub eta_seconds: Option<u64>,
    /// Every primary recovered.
    pub done: bool,
    /// Done, and every index at least yellow.
    pub healthy: bool,
    /// Why it failed (drill reports only; a restore that fails is a `RestoreFailed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub wait_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckRestoreOutput {
    #[serde(flatten)]
    pub report: RestoreReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillResult>,
}

/// What `check-restore` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CheckRestoreAnswer {
    Report(Box<CheckRestoreOutput>),
    Cleanup(drill::Cleanup),
}

pub async fn handle(deps: &Result<Deps>, event: LambdaEvent<Value>) -> Result<CheckRestoreAnswer> {
    let (deps, invocation, _) = prepare(deps, event)?;
    run(deps, invocation).await
}

pub async fn run(
    deps: &Deps,
    invocation: Invocation<CheckRestoreInput>,
) -> Result<CheckRestoreAnswer> {
    let input = invocation.input;
    if input.drill_cleanup {
        return drill::clean_up(deps).await.map(CheckRestoreAnswer::Cleanup);
    }
    let indices = input
        .indices
        .as_ref()
        .map(IndexList::patterns)
        .unwrap_or_default();
    if indices.is_empty() {
        return Err(Error::config(
            "\"indices\" is missing: pass the indices restore returned",
        ));
    }
    for index in &indices {
        names::validate_index_name(index)?;
    }
    let indices: Vec<&str> = indices.iter().map(String::as_str).collect();
    match input.drill {
        Some(drill) => drill::check(deps, &drill, &indices)
            .await
            .map(|output| CheckRestoreAnswer::Report(Box::new(output))),
        None => {
            let report = report(deps, &indices).await?;
            Ok(CheckRestoreAnswer::Report(Box::new(CheckRestoreOutput {
                report,
                drill: None,
            })))
        }
    }
}

/// Where the restore of `indices` stands; `RestoreFailed` when a primary cannot be allocated.
pub async fn report(deps: &Deps, indices: &[&str]) -> Result<RestoreReport> {
    let os = &deps.opensearch;
    let recoveries = os.recovery(indices).await?;
    let health = os.health_of(indices).await?;
    let mut per_index = Vec::new();
    let mut failures = Vec::new();
    let mut explained = 0;
    let mut started_at: Option<i64> = None;
    for index in indices {
        let recovery = recoveries.get(*index).cloned().unwrap_or_default();
        let index_health = health.indices.get(*index);
        let primaries_total = index_health.map_or(0, |h| h.number_of_shards);
        let progress = index_progress(index, &recovery, index_health);
        let any_unassigned = index_health.is_some_and(|h| h.unassigned_shards > 0);
        let waiting = (0..primaries_total)
            .filter(|shard| !recovery.shards.iter().any(|s| s.primary && s.id == *shard));
        for shard in waiting {
            if !any_unassigned || explained == MAX_EXPLAINED_PER_POLL {
                break;
            }
            explained += 1;
            match unallocatable(deps, index, shard).await? {
                Some(reason) => failures.push(format!("[{index}][{shard}] primary: {reason}")),
                // Waiting its turn (allocation throttled): the ones after it wait too.
                None => break,
            }
        }
        started_at = recovery
            .shards
            .iter()
            .filter_map(|s| s.start_time_in_millis)
            .chain(started_at)
            .min();
        per_index.push(progress);
    }
    if !failures.is_empty() {
        return Err(Error::new(
            ErrorKind::RestoreFailed,
            format!(
                "the restore of [{}] cannot complete: {}; delete the restored indices (DELETE /{}), fix the cause and restore again",
                indices.join(", "),
                failures.join("; "),
                indices.join(",")
            ),
        ));
    }
    let mut primaries = Progress::default();
    let mut files = Progress::default();
    let mut bytes = Progress::default();
    for index in &per_index {
        primaries.add(index.primaries);
        files.add(index.files);
        bytes.add(index.bytes);
    }
    let done = primaries.total > 0 && primaries.done == primaries.total;
    let healthy = done && per_index.iter().all(|i| i.status != "red");
    let share = [bytes.share(), files.share(), primaries.share()]
        .into_iter()
        .flatten()
        .reduce(f64::max);
    let elapsed_ms = started_at.map_or(0, |start| deps.clock.now_millis() - start);
    let report = RestoreReport {
        percent: percent(bytes.share().or(primaries.share())),
        eta_seconds: (!done).then(|| remaining_seconds(elapsed_ms, share).ceil() as u64),
        wait_seconds: if done {
            0
        } else {
            wait_from_progress(elapsed_ms, share)
        },
        indices: per_index,
        primaries,
        files,
        bytes,
        done,
        healthy,
        reason: None,
    };
    tracing::info!(
        indices = ?indices,
        done,
        healthy,
        percent = report.percent,
        wait_seconds = report.wait_seconds,
        "restore status"
    );
    if done {
        metrics::emit(
            deps.settings
                .metric_dimensions("check-restore", &deps.settings.repository),
            &[
                Metric::new("RestoredBytes", Unit::Bytes, bytes.total as f64),
                Metric::new("RestoreSeconds", Unit::Seconds, elapsed_ms as f64 / 1000.0),
                Metric::new("RestoresHealthy", Unit::Count, u8::from(healthy)),
            ],
            deps.clock.now_millis(),
        );
    }
    Ok(report)
}

fn percent(share: Option<f64>) -> f64 {
    (share.unwrap_or(0.0) * 1000.0).round() / 10.0
}

fn index_progress(
    index: &str,
    recovery: &IndexRecovery,
    health: Option<&crate::opensearch::IndexHealth>,
) -> IndexProgress {
    let primaries = recovery.shards.iter().filter(|s| s.primary);
    let mut files = Progress::default();
    let mut bytes = Progress::default();
    let mut done = 0;
    for shard in primaries {
        let size = shard.index.size;
        let counted = shard.index.files;
        files.add(Progress {
            done: counted.recovered + counted.reused,
            total: counted.total,
        });
        bytes.add(Progress {
            done: size.recovered_in_bytes + size.reused_in_bytes,
            total: size.total_in_bytes,
        });
        if shard.stage == "DONE" {
            done += 1;
        }
    }
    let primaries = Progress {
        done,
        total: health.map_or(0, |h| h.number_of_shards),
    };
    IndexProgress {
        index: index.to_string(),
        status: health.map_or_else(|| "red".to_string(), |h| h.status.clone()),
        percent: percent(bytes.share().or(primaries.share())),
        primaries,
        files,
        bytes,
    }
}

/// Why a primary that is not recovering cannot be allocated, or `None` while it may still be
/// (allocation throttled, awaiting information, or just created).
async fn unallocatable(deps: &Deps, index: &str, shard: u64) -> Result<Option<String>> {
    let explanation = deps
        .opensearch
        .allocation_explain(index, shard, true)
        .await?;
    let can_allocate = explanation["can_allocate"].as_str().unwrap_or_default();
    if !matches!(can_allocate, "no" | "no_valid_shard_copy") {
        return Ok(None);
    }
    let mut reasons = Vec::new();
    if let Some(text) = explanation["allocate_explanation"].as_str() {
        reasons.push(text.to_string());
    }
    if let Some(details) = explanation["unassigned_info"]["details"].as_str() {
        reasons.push(details.to_string());
    }
    let deciders = explanation["node_allocation_decisions"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|node| {
            let node_name = node["node_name"].as_str().unwrap_or("a node").to_string();
            node["deciders"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["decision"] == "NO")
                .map(move |d| {
                    format!(
                        "{node_name}: {} ({})",
                        d["explanation"].as_str().unwrap_or_default(),
                        d["decider"].as_str().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
        });
    reasons.extend(deciders);
    Ok(Some(reasons.join(" — ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opensearch::IndexHealth;
    use serde_json::json;

    #[test]
    fn progress_counts_primaries_files_and_bytes() {
        let recovery: IndexRecovery = serde_json::from_value(json!({"shards": [
            {"id": 0, "type": "SNAPSHOT", "stage": "DONE", "primary": true,
             "index": {"size": {"total_in_bytes": 100, "reused_in_bytes": 0, "recovered_in_bytes": 100},
                       "files": {"total": 4, "reused": 0, "recovered": 4}}},
            {"id": 1, "type": "SNAPSHOT", "stage": "INDEX", "primary": true,
             "index": {"size": {"total_in_bytes": 300, "reused_in_bytes": 0, "recovered_in_bytes": 50},
                       "files": {"total": 6, "reused": 0, "recovered": 1}}},
            {"id": 0, "type": "PEER", "stage": "INDEX", "primary": false,
             "index": {"size": {"total_in_bytes": 100, "reused_in_bytes": 0, "recovered_in_bytes": 0}}}
        ]}))
        .unwrap();
        let health = IndexHealth {
            status: "red".into(),
            number_of_shards: 2,
            active_primary_shards: 1,
            unassigned_shards: 1,
        };
        let progress = index_progress("logs", &recovery, Some(&health));
        assert_eq!(progress.primaries, Progress { done: 1, total: 2 });
        assert_eq!(
            progress.bytes,
            Progress {
                done: 150,
                total: 400
            }
        );
        assert_eq!(progress.files, Progress { done: 5, total: 10 });
        assert_eq!(progress.percent, 37.5);
    }
}
