//! `snapshot`: starts one snapshot, safely.
//!
//! - The name is `{prefix}-{yyyymmdd}-{hhmmss}` of the scheduled time (UTC; the workflow passes
//!   the execution's start time for a run started by hand), so a schedule delivered twice, or a
//!   retried task, names the same snapshot and resumes it.
//! - An existing snapshot of that name is this run's only if its metadata says ossnap took it
//!   for the same scheduled time or the same `run_id`; on clusters that drop metadata (before
//!   Elasticsearch 7.3) the name alone decides.
//! - Any snapshot already running on the cluster (ours, another tool's, AWS's hourly
//!   `cs-automated`) gives `SnapshotInProgress`, for Step Functions to retry later.
//! - A lost response or a gateway 504 is reconciled by reading the snapshot back, never by a
//!   blind second PUT.

use std::time::Duration;

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::error::{Error, ErrorKind, Result};
use crate::event::Invocation;
use crate::function::{prepare, Deps};
use crate::names;
use crate::opensearch::{model, snapshot_body, SnapshotInfo};
use crate::status::MIN_WAIT_SECONDS;

/// The metadata key and value that mark a snapshot as ossnap's.
pub const TAKEN_BY: &str = "taken_by";
pub const OSSNAP: &str = "ossnap";

/// After a lost response, how long to look for the snapshot the PUT may have started.
pub(crate) const RECONCILE_PAUSES: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotInput {
    pub repository: Option<String>,
    /// A name to use instead of the generated one.
    pub snapshot: Option<String>,
    pub indices: Option<String>,
    pub prefix: Option<String>,
    /// Recorded in the snapshot's metadata; defaults to the Lambda request id.
    pub run_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotOutput {
    pub repository: String,
    pub snapshot: String,
    pub state: String,
    pub started_at: String,
    /// When to look at it first.
    pub wait_seconds: u64,
}

pub async fn handle(deps: &Result<Deps>, event: LambdaEvent<Value>) -> Result<SnapshotOutput> {
    let (deps, invocation, context) = prepare(deps, event)?;
    run(deps, invocation, &context.request_id).await
}

pub async fn run(
    deps: &Deps,
    invocation: Invocation<SnapshotInput>,
    request_id: &str,
) -> Result<SnapshotOutput> {
    let settings = &deps.settings;
    let input = invocation.input;
    let repository = input
        .repository
        .unwrap_or_else(|| settings.repository.clone());
    names::validate_repository_name(&repository)?;
    let snapshot = match input.snapshot {
        Some(name) => name,
        None => snapshot_name(
            input.prefix.as_deref().unwrap_or(&settings.prefix),
            invocation
                .scheduled_time
                .unwrap_or_else(|| deps.clock.now_utc()),
        ),
    };
    names::validate_snapshot_name(&snapshot)?;
    let indices = input.indices.unwrap_or_else(|| settings.indices.clone());
    let scheduled_time = invocation.scheduled_time.map(rfc3339);
    let run_id = input.run_id.as_deref().unwrap_or(request_id);
    let ours = Ownership {
        scheduled_time: scheduled_time.clone(),
        run_id: run_id.to_string(),
    };

    let running = deps.opensearch.running_snapshots().await?;
    if running
        .iter()
        .any(|r| r.repository == repository && r.snapshot == snapshot)
    {
        tracing::info!(
            repository,
            snapshot,
            "our snapshot is already running; resuming it"
        );
        let info = deps.opensearch.get_snapshot(&repository, &snapshot).await?;
        return resume(&repository, info, &ours, deps);
    }
    if let Some(other) = running.first() {
        return Err(Error::new(
            ErrorKind::SnapshotInProgress,
            format!(
                "snapshot [{}:{}] is running{}; only one snapshot runs at a time, retry once it ends",
                other.repository,
                other.snapshot,
                if other.repository.starts_with("cs-") {
                    " (Amazon OpenSearch Service's automated snapshot)"
                } else {
                    ""
                }
            ),
        ));
    }

    let metadata = json!({
        TAKEN_BY: OSSNAP,
        "ossnap_version": env!("CARGO_PKG_VERSION"),
        "scheduled_time": scheduled_time,
        "run_id": run_id,
    });
    let body = snapshot_body(&indices, metadata);
    match deps
        .opensearch
        .create_snapshot(&repository, &snapshot, &body)
        .await
    {
        Ok(()) => {
            tracing::info!(repository, snapshot, indices, "snapshot started");
            Ok(SnapshotOutput {
                repository,
                snapshot,
                state: model::IN_PROGRESS.into(),
                started_at: rfc3339(deps.clock.now_utc()),
                wait_seconds: MIN_WAIT_SECONDS,
            })
        }
        Err(error) if error.kind() == ErrorKind::SnapshotNameConflict => {
            let info = deps.opensearch.get_snapshot(&repository, &snapshot).await?;
            resume(&repository, info, &ours, deps)
        }
        Err(error) if error.kind() == ErrorKind::Unavailable => {
            tracing::warn!(repository, snapshot, error = %error, "no answer to the snapshot request; reading it back");
            reconcile(deps, &repository, &snapshot, &ours, error).await
        }
        Err(error) => Err(error),
    }
}

/// The PUT may or may not have started the snapshot: look for it instead of sending it again.
async fn reconcile(
    deps: &Deps,
    repository: &str,
    snapshot: &str,
    ours: &Ownership,
    cause: Error,
) -> Result<SnapshotOutput> {
    // Only the cluster saying the snapshot is missing tells that it was not started; a failed
    // read leaves it unknown. Either way a retry names the same snapshot and resumes it.
    let mut unreadable = None;
    for pause in RECONCILE_PAUSES {
        match deps.opensearch.get_snapshot(repository, snapshot).await {
            Ok(info) => return resume(repository, info, ours, deps),
            Err(e) if e.kind() == ErrorKind::SnapshotMissing => unreadable = None,
            Err(e) if e.kind() == ErrorKind::Unavailable => unreadable = Some(e),
            Err(e) => return Err(e),
        }
        deps.clock.sleep(pause).await;
    }
    let outcome = match unreadable {
        None => format!(
            "the snapshot [{repository}:{snapshot}] is still missing afterwards, so it was not started: retrying is safe"
        ),
        Some(read) => format!(
            "reading the snapshot [{repository}:{snapshot}] back failed too ({}), so whether it started is unknown: a retry of this run resumes it under the same name",
            read.message()
        ),
    };
    Err(Error::new(
        ErrorKind::Unavailable,
        format!("{}; {outcome}", cause.message()),
    ))
}

/// What makes an existing snapshot the one this run would have started: ossnap's marker, and
/// the same scheduled time (another delivery of the schedule) or the same run (a retry).
struct Ownership {
    scheduled_time: Option<String>,
    run_id: String,
}

impl Ownership {
    fn owns(&self, info: &SnapshotInfo) -> bool {
        if info.cannot_carry_metadata() {
            tracing::warn!(
                snapshot = info.snapshot,
                "the cluster (before Elasticsearch 7.3) keeps no snapshot metadata: taking the name as proof that it is ours"
            );
            return true;
        }
        let Some(metadata) = &info.metadata else {
            return false;
        };
        let field = |name: &str| metadata.get(name).and_then(Value::as_str);
        let same_schedule = self
            .scheduled_time
            .as_deref()
            .is_some_and(|ours| field("scheduled_time") == Some(ours));
        let same_run = field("run_id") == Some(self.run_id.as_str());
        field(TAKEN_BY) == Some(OSSNAP) && (same_schedule || same_run)
    }
}

fn resume(
    repository: &str,
    info: SnapshotInfo,
    ours: &Ownership,
    deps: &Deps,
) -> Result<SnapshotOutput> {
    if !ours.owns(&info) {
        return Err(Error::new(
            ErrorKind::SnapshotNameConflict,
            format!(
                "a snapshot named [{repository}:{}] exists and was not taken by this run or schedule (its metadata says {}); ossnap never touches it: choose another SNAPSHOT_PREFIX or snapshot name",
                info.snapshot,
                info.metadata.as_ref().map_or("nothing".to_string(), |m| Value::Object(m.clone()).to_string())
            ),
        ));
    }
    tracing::info!(repository, snapshot = info.snapshot, state = ?info.state, "resuming our snapshot");
    let started_at = info
        .start_time_in_millis
        .and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .unwrap_or_else(|| deps.clock.now_utc());
    Ok(SnapshotOutput {
        repository: repository.to_string(),
        snapshot: info.snapshot,
        state: info.state.unwrap_or_else(|| model::IN_PROGRESS.into()),
        started_at: rfc3339(started_at),
        wait_seconds: MIN_WAIT_SECONDS,
    })
}

/// `{prefix}-{yyyymmdd}-{hhmmss}` in UTC.
pub fn snapshot_name(prefix: &str, time: OffsetDateTime) -> String {
    let utc = time.to_offset(time::UtcOffset::UTC);
    let stamp = utc
        .format(format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .expect("a UTC time formats");
    format!("{prefix}-{stamp}")
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .expect("a UTC time formats as RFC 3339")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn names_come_from_the_utc_scheduled_time() {
        assert_eq!(
            snapshot_name("ossnap", datetime!(2026-11-28 02:00:05 UTC)),
            "ossnap-20261128-020005"
        );
        assert_eq!(
            snapshot_name("nightly", datetime!(2026-11-28 03:00:00 +01:00)),
            "nightly-20261128-020000"
        );
    }

    fn info(metadata: Value) -> SnapshotInfo {
        SnapshotInfo {
            metadata: metadata.as_object().cloned(),
            ..serde_json::from_value(json!({"snapshot": "s"})).unwrap()
        }
    }

    #[test]
    fn ownership_needs_our_marker_and_the_same_schedule_or_run() {
        let ours = Ownership {
            scheduled_time: Some("2026-11-28T02:00:00Z".into()),
            run_id: "exec-1".into(),
        };
        assert!(ours.owns(&info(
            json!({"taken_by": "ossnap", "scheduled_time": "2026-11-28T02:00:00Z", "run_id": "exec-0"})
        )));
        assert!(ours.owns(&info(
            json!({"taken_by": "ossnap", "scheduled_time": null, "run_id": "exec-1"})
        )));
        assert!(!ours.owns(&info(
            json!({"taken_by": "ossnap", "scheduled_time": "2026-11-27T02:00:00Z", "run_id": "exec-0"})
        )));
        assert!(!ours.owns(&info(json!({"taken_by": "curator", "run_id": "exec-1"}))));
        assert!(!ours.owns(&info(Value::Null)));
    }

    #[test]
    fn without_a_schedule_only_the_same_run_owns_it() {
        let console = Ownership {
            scheduled_time: None,
            run_id: "request-2".into(),
        };
        // An older run by hand, with no scheduled time either, is not this one.
        assert!(!console.owns(&info(
            json!({"taken_by": "ossnap", "scheduled_time": null, "run_id": "request-1"})
        )));
        assert!(console.owns(&info(
            json!({"taken_by": "ossnap", "scheduled_time": null, "run_id": "request-2"})
        )));
    }
}
