//! `check-status`: where a snapshot stands, and when to look again.
//!
//! It reads `GET _snapshot/<repo>/<snap>` and asks `_status` only while the snapshot runs
//! (on a finished one OpenSearch would read every shard's metadata from S3). The suggested pause
//! comes from the progress `_status` reports, so that a long snapshot is polled a handful of
//! times: each poll costs Step Functions state transitions, the workflow's main running cost.

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ErrorKind, Result};
use crate::event::Invocation;
use crate::function::{prepare, Deps};
use crate::metrics::{self, Metric, Unit};
use crate::names;
use crate::opensearch::{model, ShardCounts, SnapshotStatus};

pub const MIN_WAIT_SECONDS: u64 = 30;
pub const MAX_WAIT_SECONDS: u64 = 15 * 60;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusInput {
    pub repository: Option<String>,
    pub snapshot: Option<String>,
}

/// One snapshot's standing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotReport {
    pub repository: String,
    pub snapshot: String,
    pub state: String,
    /// True for every terminal state.
    pub done: bool,
    /// SUCCESS with at least one shard and no failed shard: the only outcome worth keeping.
    pub healthy: bool,
    pub shards: ShardCounts,
    pub failures: Vec<Value>,
    /// Why it failed, when OpenSearch says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub wait_seconds: u64,
}

/// What runs across the cluster, when no snapshot is named.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterReport {
    pub running: Vec<RunningSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunningSnapshot {
    pub repository: String,
    pub snapshot: String,
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum StatusOutput {
    Snapshot(SnapshotReport),
    Cluster(ClusterReport),
}

pub async fn handle(deps: &Result<Deps>, event: LambdaEvent<Value>) -> Result<StatusOutput> {
    let (deps, invocation, _) = prepare(deps, event)?;
    run(deps, invocation).await
}

pub async fn run(deps: &Deps, invocation: Invocation<StatusInput>) -> Result<StatusOutput> {
    let input = invocation.input;
    let Some(snapshot) = input.snapshot else {
        let running = deps.opensearch.running_snapshots().await?;
        return Ok(StatusOutput::Cluster(ClusterReport {
            running: running
                .into_iter()
                .map(|s| RunningSnapshot {
                    repository: s.repository,
                    snapshot: s.snapshot,
                    state: s.state,
                })
                .collect(),
        }));
    };
    let repository = input
        .repository
        .unwrap_or_else(|| deps.settings.repository.clone());
    names::validate_repository_name(&repository)?;
    names::validate_snapshot_name(&snapshot)?;
    report(deps, &repository, &snapshot)
        .await
        .map(StatusOutput::Snapshot)
}

async fn report(deps: &Deps, repository: &str, snapshot: &str) -> Result<SnapshotReport> {
    let info = deps.opensearch.get_snapshot(repository, snapshot).await?;
    let state = info.state.clone().unwrap_or_default();
    let shards = info.shards.unwrap_or_default();
    let done = state != model::IN_PROGRESS;
    let wait_seconds = if done {
        0
    } else {
        match deps.opensearch.snapshot_status(repository, snapshot).await {
            Ok(status) => suggested_wait(&status),
            // Finished between the two calls: look again at once.
            Err(e) if e.kind() == ErrorKind::SnapshotMissing => MIN_WAIT_SECONDS,
            Err(e) => return Err(e),
        }
    };
    let healthy = info.is_healthy();
    if state == model::SUCCESS && !healthy {
        tracing::warn!(
            repository,
            snapshot,
            ?shards,
            "snapshot reported SUCCESS but is not healthy"
        );
    }
    tracing::info!(
        repository,
        snapshot,
        state,
        done,
        healthy,
        wait_seconds,
        "snapshot status"
    );
    if done {
        let mut measured = vec![
            Metric::new("ShardsTotal", Unit::Count, shards.total as f64),
            Metric::new("ShardsFailed", Unit::Count, shards.failed as f64),
            Metric::new("SnapshotsHealthy", Unit::Count, u8::from(healthy)),
            Metric::new("SnapshotsUnhealthy", Unit::Count, u8::from(!healthy)),
        ];
        if let Some(ms) = info.duration_in_millis {
            measured.push(Metric::new(
                "SnapshotDurationSeconds",
                Unit::Seconds,
                ms as f64 / 1000.0,
            ));
        }
        metrics::emit(
            deps.settings.metric_dimensions("check-status", repository),
            &measured,
            deps.clock.now_millis(),
        );
    }
    Ok(SnapshotReport {
        repository: repository.to_string(),
        snapshot: snapshot.to_string(),
        reason: info
            .reason
            .filter(|r| !r.is_empty())
            .or_else(|| (state == model::SUCCESS && !healthy).then(|| unhealthy_reason(&shards))),
        state,
        done,
        healthy,
        shards,
        failures: info.failures,
        wait_seconds,
    })
}

fn unhealthy_reason(shards: &ShardCounts) -> String {
    if shards.total == 0 {
        "the snapshot holds no shards: no index matched SNAPSHOT_INDICES".to_string()
    } else {
        format!("{} of {} shards failed", shards.failed, shards.total)
    }
}

/// Time left, estimated from the share of bytes (or files, or shards) done so far, clamped to
/// [30 s, 15 min]. Without any progress yet, wait as long as it has run: the pause doubles.
pub fn suggested_wait(status: &SnapshotStatus) -> u64 {
    let elapsed_ms = status
        .stats
        .as_ref()
        .and_then(|s| s.time_in_millis)
        .unwrap_or(0);
    wait_from_progress(elapsed_ms, progress(status))
}

/// The pause before the next poll of work that has run `elapsed_ms` and is `done` (a share in
/// [0, 1]) along: the time left at the same pace, clamped to [30 s, 15 min]; without progress,
/// as long as it has run. Shared by check-status and check-restore.
pub fn wait_from_progress(elapsed_ms: i64, done: Option<f64>) -> u64 {
    (remaining_seconds(elapsed_ms, done).ceil() as u64).clamp(MIN_WAIT_SECONDS, MAX_WAIT_SECONDS)
}

/// The time left at the pace so far; without progress, as long as it has run.
pub fn remaining_seconds(elapsed_ms: i64, done: Option<f64>) -> f64 {
    let elapsed_s = elapsed_ms.max(0) as f64 / 1000.0;
    match done {
        Some(done) if done > 0.0 => elapsed_s * (1.0 - done) / done,
        _ => elapsed_s,
    }
}

/// The share done, in [0, 1]: of the bytes to upload, since uploading is what takes the time;
/// of the files when there are no bytes to count, and of the shards when there are no stats.
/// (Shard counts mislead: a small shard or one with nothing new is done early, and a shard
/// count that runs ahead of the bytes made each estimate too short, a poll too many each time.)
fn progress(status: &SnapshotStatus) -> Option<f64> {
    let ratio = |done: u64, total: u64| (total > 0).then(|| (done as f64 / total as f64).min(1.0));
    let stats = status.stats.as_ref();
    let to_upload = stats.and_then(|s| s.incremental.or(s.total));
    let processed = stats.and_then(|s| s.processed);
    let of_stats = processed.zip(to_upload).and_then(|(processed, to_upload)| {
        ratio(processed.size_in_bytes, to_upload.size_in_bytes)
            .or_else(|| ratio(processed.file_count, to_upload.file_count))
    });
    of_stats.or_else(|| {
        let shards = status.shards_stats?;
        ratio(shards.done + shards.failed, shards.total)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opensearch::{FileStats, ShardsStats, SnapshotStats};

    fn status(elapsed_s: i64, processed: u64, incremental: u64) -> SnapshotStatus {
        SnapshotStatus {
            snapshot: "s".into(),
            repository: "r".into(),
            state: Some("STARTED".into()),
            shards_stats: None,
            stats: Some(SnapshotStats {
                incremental: Some(FileStats {
                    file_count: 10,
                    size_in_bytes: incremental,
                }),
                processed: Some(FileStats {
                    file_count: 0,
                    size_in_bytes: processed,
                }),
                total: None,
                start_time_in_millis: Some(0),
                time_in_millis: Some(elapsed_s * 1000),
            }),
        }
    }

    fn three_of_four_shards_done(mut status: SnapshotStatus) -> SnapshotStatus {
        status.shards_stats = Some(ShardsStats {
            done: 3,
            total: 4,
            ..ShardsStats::default()
        });
        status
    }

    #[test]
    fn wait_is_the_estimated_time_left() {
        // A quarter done after 5 minutes: 15 more minutes.
        assert_eq!(suggested_wait(&status(300, 250, 1000)), 900);
        // Half done after 4 minutes: 4 more.
        assert_eq!(suggested_wait(&status(240, 500, 1000)), 240);
        // Nearly done: the floor.
        assert_eq!(suggested_wait(&status(600, 999, 1000)), 30);
    }

    #[test]
    fn without_progress_the_wait_grows_with_elapsed_time() {
        assert_eq!(suggested_wait(&status(10, 0, 1000)), 30);
        assert_eq!(suggested_wait(&status(120, 0, 1000)), 120);
        assert_eq!(suggested_wait(&status(5000, 0, 0)), 900);
    }

    #[test]
    fn shard_counts_stand_in_for_missing_byte_stats() {
        let mut s = status(100, 0, 0);
        let stats = s.stats.as_mut().unwrap();
        stats.incremental.as_mut().unwrap().file_count = 0;
        assert_eq!(suggested_wait(&three_of_four_shards_done(s)), 34);
    }

    #[test]
    fn bytes_lead_over_shard_counts() {
        // Half the bytes after 10 minutes, though 3 of 4 shards (the small ones) are done:
        // 10 more minutes, not 3.
        let s = three_of_four_shards_done(status(600, 500, 1000));
        assert_eq!(suggested_wait(&s), 600);
    }

    #[test]
    fn files_count_when_there_are_no_bytes() {
        let mut s = status(100, 0, 0);
        let stats = s.stats.as_mut().unwrap();
        stats.processed.as_mut().unwrap().file_count = 5;
        assert_eq!(suggested_wait(&s), 100);
    }

    /// A 30-minute snapshot with steady progress is polled a handful of times, not thirty.
    #[test]
    fn a_thirty_minute_snapshot_is_polled_a_few_times() {
        let duration = 1800.0;
        let mut now = 30.0; // snapshot returns wait 30
        let mut polls = 0;
        while now < duration {
            polls += 1;
            let done = (now / duration * 1000.0) as u64;
            now += suggested_wait(&status(now as i64, done, 1000)) as f64;
        }
        assert!(polls <= 6, "{polls} polls");
    }
}
