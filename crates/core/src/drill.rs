//! The restore drill (`RESTORE_DRILL=true`): after Verify, the snapshot workflow restores the
//! smallest index of the new snapshot as `ossnap-drill-<name>` into the same cluster, without
//! replicas or aliases, waits until every primary is recovered, checks that `_count` answers
//! and, when the source index took no writes during the drill (its indexing counters did not
//! move), that the counts are equal; then it deletes the copy, whatever the outcome, and emits
//! `RestoreDrillSucceeded`.
//!
//! `restore` starts it ([`start`]), `check-restore` follows and ends it ([`check`]), and the
//! workflow's failure path deletes any copy left ([`clean_up`]).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map};

use crate::check_restore::{self, CheckRestoreOutput, Progress, RestoreReport};
use crate::error::{ErrorKind, Result};
use crate::function::Deps;
use crate::metrics::{self, Metric, Unit};
use crate::names;
use crate::restore::{self, IndexList, RestoreInput};

/// Every drill copy's name starts with this, and nothing else ossnap deletes.
pub const DRILL_PREFIX: &str = "ossnap-drill-";

/// What the drill's check needs to know: filled by [`start`], passed back by the workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillCheck {
    pub source_index: String,
    pub drill_index: String,
    /// `index_total` and `delete_total` of the source when the drill started.
    pub source_indexing: [u64; 2],
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillStart {
    /// The drill is off, or found nothing small enough to restore.
    pub skipped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub repository: String,
    pub snapshot: String,
    /// `check-restore`'s input.
    pub indices: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillCheck>,
    pub bytes: u64,
    pub wait_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillResult {
    pub succeeded: bool,
    pub source_index: String,
    pub drill_index: String,
    pub drill_count: Option<u64>,
    pub source_count: Option<u64>,
    /// False when the source took writes during the drill, so its count proves nothing.
    pub counts_compared: bool,
    /// The drill copy is gone.
    pub deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cleanup {
    pub deleted: Vec<String>,
}

/// Restores the snapshot's smallest index under the drill's name (or says why it does not).
pub async fn start(deps: &Deps, input: RestoreInput) -> Result<DrillStart> {
    let settings = &deps.settings;
    let repository = input
        .repository
        .clone()
        .unwrap_or_else(|| settings.repository.clone());
    let snapshot = input.snapshot.clone().unwrap_or_default();
    let skipped = |reason: String| {
        tracing::info!(reason, "restore drill skipped");
        Ok(DrillStart {
            skipped: true,
            reason: Some(reason),
            repository: repository.clone(),
            snapshot: snapshot.clone(),
            indices: Vec::new(),
            drill: None,
            bytes: 0,
            wait_seconds: 0,
        })
    };
    if !settings.restore_drill {
        return skipped("RESTORE_DRILL is not true".into());
    }
    names::validate_repository_name(&repository)?;
    names::validate_snapshot_name(&snapshot)?;
    let sizes = deps
        .opensearch
        .snapshot_index_sizes(&repository, &snapshot)
        .await?;
    let available: Vec<String> = sizes.keys().cloned().collect();
    let (candidates, _) = restore::select_indices(&available, None)?;
    let Some((source, bytes)) = candidates
        .iter()
        .map(|name| (name.clone(), sizes[name].bytes))
        .min_by_key(|(name, bytes)| (*bytes, name.clone()))
    else {
        return skipped(format!(
            "[{repository}:{snapshot}] holds no index but system ones"
        ));
    };
    if bytes > settings.restore_drill_max_bytes {
        return skipped(format!(
            "the smallest index, [{source}], holds {bytes} bytes, above RESTORE_DRILL_MAX_BYTES ({})",
            settings.restore_drill_max_bytes
        ));
    }
    let drill_index = format!("{DRILL_PREFIX}{source}");
    let mut index_settings = Map::new();
    index_settings.insert("index.number_of_replicas".into(), json!(0));
    let restore_input = RestoreInput {
        repository: Some(repository.clone()),
        snapshot: Some(snapshot.clone()),
        indices: Some(IndexList::One(source.clone())),
        rename_pattern: Some("(.+)".into()),
        rename_replacement: Some(format!("{DRILL_PREFIX}$1")),
        include_aliases: Some(false),
        index_settings: Some(index_settings),
        ..RestoreInput::default()
    };
    let plan = restore::plan(deps, &restore_input).await?;
    let (indexed, deleted) = deps.opensearch.indexing_counters(&source).await?;
    restore::start(deps, &restore_input, &plan).await?;
    tracing::info!(source, drill_index, bytes, "restore drill started");
    Ok(DrillStart {
        skipped: false,
        reason: None,
        repository,
        snapshot,
        indices: vec![drill_index.clone()],
        drill: Some(DrillCheck {
            source_index: source,
            drill_index,
            source_indexing: [indexed, deleted],
        }),
        bytes,
        wait_seconds: crate::status::MIN_WAIT_SECONDS,
    })
}

/// Follows the drill; once it is over (recovered or failed), compares, deletes the copy and
/// reports. Never leaves the copy behind, even when the restore failed.
pub async fn check(
    deps: &Deps,
    drill: &DrillCheck,
    indices: &[&str],
) -> Result<CheckRestoreOutput> {
    if indices != [drill.drill_index.as_str()] || !drill.drill_index.starts_with(DRILL_PREFIX) {
        return Err(crate::Error::config(format!(
            "a drill checks its own copy only: indices must be [\"{}\"] and start with {DRILL_PREFIX}",
            drill.drill_index
        )));
    }
    let report = match check_restore::report(deps, indices).await {
        Ok(report) if !report.done => {
            return Ok(CheckRestoreOutput {
                report,
                drill: None,
            })
        }
        Ok(report) => report,
        Err(error) if error.kind() == ErrorKind::RestoreFailed => {
            failed_report(error.message().to_string())
        }
        Err(error) => return Err(error),
    };
    let mut result = DrillResult {
        succeeded: false,
        source_index: drill.source_index.clone(),
        drill_index: drill.drill_index.clone(),
        drill_count: None,
        source_count: None,
        counts_compared: false,
        deleted: false,
        reason: report.reason.clone(),
    };
    if report.healthy {
        compare(deps, drill, &mut result).await;
    } else if result.reason.is_none() {
        result.reason = Some("the drill copy is red".into());
    }
    match deps.opensearch.delete_index(&drill.drill_index).await {
        Ok(()) => result.deleted = true,
        Err(error) => {
            tracing::warn!(error = %error, index = drill.drill_index, "the drill copy could not be deleted");
            return Err(error);
        }
    }
    metrics::emit(
        deps.settings
            .metric_dimensions("check-restore", &deps.settings.repository),
        &[Metric::new(
            "RestoreDrillSucceeded",
            Unit::Count,
            u8::from(result.succeeded),
        )],
        deps.clock.now_millis(),
    );
    tracing::info!(?result, "restore drill over");
    Ok(CheckRestoreOutput {
        report,
        drill: Some(result),
    })
}

/// `_count` of the copy; and of the source when its indexing counters have not moved.
async fn compare(deps: &Deps, drill: &DrillCheck, result: &mut DrillResult) {
    let os = &deps.opensearch;
    let drill_count = match os.count(&drill.drill_index).await {
        Ok(count) => count,
        Err(error) => {
            result.reason = Some(format!("_count of the drill copy failed: {error}"));
            return;
        }
    };
    result.drill_count = Some(drill_count);
    let still = match os.indexing_counters(&drill.source_index).await {
        Ok((indexed, deleted)) => [indexed, deleted] == drill.source_indexing,
        // The source may be gone since: the copy answered, which is what the drill proves.
        Err(_) => false,
    };
    if !still {
        result.succeeded = true;
        return;
    }
    match os.count(&drill.source_index).await {
        Err(error) => {
            // Reading the source's documents may be refused (the ossnap_restore role reads
            // only the drill's copies): the copy answered, which the drill proves.
            tracing::warn!(error = %error, "the source's count is unreadable; counts not compared");
            result.succeeded = true;
        }
        Ok(source_count) => {
            result.source_count = Some(source_count);
            result.counts_compared = true;
            result.succeeded = source_count == drill_count;
            if !result.succeeded {
                result.reason = Some(format!(
                    "the drill copy holds {drill_count} documents, the source {source_count}, which took no writes meanwhile"
                ));
            }
        }
    }
}

fn failed_report(reason: String) -> RestoreReport {
    RestoreReport {
        indices: Vec::new(),
        primaries: Progress::default(),
        files: Progress::default(),
        bytes: Progress::default(),
        percent: 0.0,
        eta_seconds: None,
        done: true,
        healthy: false,
        reason: Some(reason),
        wait_seconds: 0,
    }
}

/// Deletes every drill copy in the cluster, each by its exact name.
pub async fn clean_up(deps: &Deps) -> Result<Cleanup> {
    let mut deleted = Vec::new();
    for index in deps.opensearch.cat_indices().await? {
        if index.index.starts_with(DRILL_PREFIX) {
            deps.opensearch.delete_index(&index.index).await?;
            deleted.push(index.index);
        }
    }
    tracing::info!(?deleted, "drill copies deleted");
    Ok(Cleanup { deleted })
}
