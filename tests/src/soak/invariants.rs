//! The invariants the soak checks after every run, from what the cluster lists, what the bucket
//! holds and what the execution did:
//!
//! - once `RETENTION_MIN_COUNT` healthy snapshots of ours exist, at least that many remain and
//!   verify;
//! - never deleted: a running snapshot, a foreign one, a `cs-*` one, the newest healthy one;
//! - at most one snapshot per scheduled time (over the whole history, by uuid);
//! - every failed run notified (through Notify, or the alarm for a timeout), and every run that
//!   ends in `Done` left a healthy snapshot that verified;
//! - no execution past its timeout, no invocation past its function's Lambda timeout;
//! - the repository's root generation (`index.latest`) only grows;
//! - the repository verifies: every SUCCESS snapshot in it, but those the soak damaged itself.
//!
//! A snapshot that disappears between two checks was deleted by the run in between, unless the
//! soak's operator deleted it ([`Checker::note_operator_deletion`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use ossnap_core::event::Invocation as Event;
use ossnap_core::opensearch::SnapshotInfo;
use ossnap_core::snapshot::{OSSNAP, TAKEN_BY};
use ossnap_core::Deps;
use ossnap_local_stack::LoggedRequest;
use ossnap_verify::{Verifier, VerifyInput};
use serde_json::Value;

use crate::workflow::{Execution, NotificationSource, Status};

/// The state machine's `TimeoutSeconds`.
const EXECUTION_TIMEOUT: Duration = Duration::from_secs(21_600);
pub const REPOSITORY: &str = "ossnap";

/// What the checker reads.
pub struct Sources<'a> {
    pub deps: &'a Deps,
    pub verifier: &'a Verifier,
    /// The repository's folder in the S3 server's storage (its `index.latest`).
    pub repository_dir: PathBuf,
}

/// One snapshot as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub uuid: String,
    pub state: String,
    pub healthy: bool,
    /// `metadata.taken_by` is ossnap's.
    pub ours: bool,
    pub start_millis: i64,
}

impl Seen {
    fn from_info(info: &SnapshotInfo) -> Seen {
        Seen {
            uuid: info.uuid.clone().unwrap_or_default(),
            state: info.state.clone().unwrap_or_default(),
            healthy: info.is_healthy(),
            ours: taken_by_ossnap(info),
            start_millis: info.start_time_in_millis.unwrap_or_default(),
        }
    }
}

fn taken_by_ossnap(info: &SnapshotInfo) -> bool {
    info.metadata
        .as_ref()
        .and_then(|metadata| metadata.get(TAKEN_BY))
        .and_then(Value::as_str)
        == Some(OSSNAP)
}

#[derive(Debug)]
pub struct Checker {
    min_count: usize,
    /// Every snapshot of the repository at the last check.
    known: BTreeMap<String, Seen>,
    operator_deleted: BTreeSet<String>,
    /// Uuids of the snapshots the soak damaged on purpose.
    damaged: BTreeSet<String>,
    /// Verification results by uuid, cleared whenever something was deleted.
    verified: HashMap<String, Result<(), String>>,
    floor_reached: bool,
    generation: Option<u64>,
    uuids_by_schedule: HashMap<String, BTreeSet<String>>,
    /// Snapshots of ours deleted (by retention) so far.
    pub deleted: usize,
    pub violations: Vec<String>,
}

impl Checker {
    pub fn new(min_count: usize) -> Checker {
        Checker {
            min_count,
            known: BTreeMap::new(),
            operator_deleted: BTreeSet::new(),
            damaged: BTreeSet::new(),
            verified: HashMap::new(),
            floor_reached: false,
            generation: None,
            uuids_by_schedule: HashMap::new(),
            deleted: 0,
            violations: Vec::new(),
        }
    }

    /// A snapshot the soak started on the side (another execution's), running as of now.
    pub fn note_running(&mut self, name: &str, seen: Seen) {
        self.known.insert(name.to_string(), seen);
    }

    /// The soak's operator deleted `name` (a snapshot that never finishes): not ossnap's doing.
    pub fn note_operator_deletion(&mut self, name: &str) {
        self.operator_deleted.insert(name.to_string());
    }

    /// The soak damaged the snapshot `uuid` in the bucket on purpose.
    pub fn note_damaged(&mut self, uuid: &str) {
        self.damaged.insert(uuid.to_string());
    }

    /// Snapshots of ours seen so far, one per uuid.
    pub fn snapshots_taken(&self) -> usize {
        self.uuids_by_schedule.values().map(BTreeSet::len).sum()
    }

    /// The snapshots of the repository as of the last check.
    pub fn known(&self) -> &BTreeMap<String, Seen> {
        &self.known
    }

    /// Checks every invariant after `label` (a run, or a check on its own without `execution`),
    /// given the requests the run's functions sent; returns the violations found now.
    pub async fn check(
        &mut self,
        sources: &Sources<'_>,
        label: &str,
        execution: Option<&Execution>,
        requests: &[LoggedRequest],
    ) -> Vec<String> {
        let mut found = Vec::new();
        // Every name, then what can be read of each: a snapshot whose metadata blob is gone
        // (one the soak damaged) fails a verbose listing of all, so it is read apart, as
        // retention reads them.
        let os = &sources.deps.opensearch;
        let listing = match os.get_snapshots(REPOSITORY, &["_all"], false).await {
            Ok(listing) => listing,
            Err(error) => {
                found.push(format!("{label}: the repository cannot be listed: {error}"));
                return self.record(found);
            }
        };
        let detailed = match os.find_snapshots(REPOSITORY, &["_all"], true).await {
            Ok(detailed) => detailed,
            Err(error) => {
                found.push(format!("{label}: the snapshots cannot be read: {error}"));
                return self.record(found);
            }
        };
        let current: BTreeMap<String, (Seen, &SnapshotInfo)> = listing
            .iter()
            .map(|brief| {
                let name = brief.snapshot.clone();
                match detailed.iter().find(|info| info.snapshot == name) {
                    Some(info) => (name, (Seen::from_info(info), info)),
                    None => {
                        // Unreadable: never healthy; ours if it was, or if the soak damaged it.
                        let mut seen = Seen::from_info(brief);
                        seen.healthy = false;
                        seen.ours = self.known.get(&name).is_some_and(|known| known.ours)
                            || self.damaged.contains(&seen.uuid);
                        (name, (seen, brief))
                    }
                }
            })
            .collect();

        // Deletions: what was there and is gone.
        let newest_healthy = self
            .known
            .iter()
            .chain(current.iter().map(|(name, (seen, _))| (name, seen)))
            .filter(|(name, seen)| {
                seen.healthy && seen.ours && !self.operator_deleted.contains(*name)
            })
            .max_by_key(|(name, seen)| (seen.start_millis, (*name).clone()))
            .map(|(name, _)| name.clone());
        let mut anything_deleted = false;
        for (name, seen) in &self.known {
            if current.contains_key(name) || self.operator_deleted.contains(name) {
                continue;
            }
            anything_deleted = true;
            self.deleted += usize::from(seen.ours);
            if !seen.ours {
                found.push(format!(
                    "{label}: deleted [{name}], a snapshot ossnap did not take"
                ));
            }
            if seen.state == "IN_PROGRESS" {
                found.push(format!("{label}: deleted [{name}] while it was running"));
            }
            if newest_healthy.as_deref() == Some(name.as_str()) {
                found.push(format!(
                    "{label}: deleted [{name}], the newest healthy snapshot"
                ));
            }
        }
        for request in requests {
            if request.path.starts_with("/_snapshot/cs-") && request.method != "GET" {
                found.push(format!(
                    "{label}: sent {} {} to AWS's automated repository",
                    request.method, request.path
                ));
            }
        }

        // One snapshot per scheduled time, over the whole history.
        for (name, (seen, info)) in &current {
            if !seen.ours {
                continue;
            }
            let schedule = info
                .metadata
                .as_ref()
                .and_then(|metadata| metadata.get("scheduled_time"))
                .and_then(Value::as_str)
                .unwrap_or(name)
                .to_string();
            let uuids = self.uuids_by_schedule.entry(schedule.clone()).or_default();
            uuids.insert(seen.uuid.clone());
            if uuids.len() > 1 {
                found.push(format!(
                    "{label}: {} snapshots for the scheduled time {schedule}",
                    uuids.len()
                ));
            }
        }

        // The repository verifies, and the floor holds.
        if anything_deleted {
            self.verified.clear();
        }
        let mut verifying_ours = 0;
        for (name, (seen, _)) in &current {
            if seen.state != "SUCCESS" {
                continue;
            }
            let result = match self.verified.get(&seen.uuid) {
                Some(result) => result.clone(),
                None => {
                    let result = verify(sources.verifier, name).await;
                    self.verified.insert(seen.uuid.clone(), result.clone());
                    result
                }
            };
            match result {
                Ok(()) if seen.healthy && seen.ours => verifying_ours += 1,
                Ok(()) => {}
                Err(_) if self.damaged.contains(&seen.uuid) => {}
                Err(why) => found.push(format!("{label}: [{name}] no longer verifies: {why}")),
            }
        }
        if verifying_ours >= self.min_count {
            self.floor_reached = true;
        } else if self.floor_reached {
            found.push(format!(
                "{label}: only {verifying_ours} healthy snapshots of ours remain and verify, below RETENTION_MIN_COUNT={}",
                self.min_count
            ));
        }

        // The root generation only grows.
        match read_generation(&sources.repository_dir) {
            Ok(generation) => {
                if let Some(before) = self.generation.filter(|before| generation < *before) {
                    found.push(format!(
                        "{label}: the root generation went back from {before} to {generation}"
                    ));
                }
                self.generation = Some(generation.max(self.generation.unwrap_or(0)));
            }
            Err(why) => found.push(format!("{label}: {why}")),
        }

        if let Some(execution) = execution {
            found.extend(check_execution(label, execution, &current));
        }

        self.known = current
            .into_iter()
            .map(|(name, (seen, _))| (name, seen))
            .collect();
        self.record(found)
    }

    fn record(&mut self, found: Vec<String>) -> Vec<String> {
        self.violations.extend(found.iter().cloned());
        found
    }
}

/// What an execution must have done, whatever happened to it.
fn check_execution(
    label: &str,
    execution: &Execution,
    current: &BTreeMap<String, (Seen, &SnapshotInfo)>,
) -> Vec<String> {
    let mut found = Vec::new();
    let notified_by = |source: NotificationSource| {
        execution
            .notifications
            .iter()
            .any(|notification| notification.source == source)
    };
    match &execution.status {
        Status::Failed { error, .. } => {
            if error != "SnapshotRunFailed" || !notified_by(NotificationSource::NotifyState) {
                found.push(format!(
                    "{label}: failed ({error}) without the Notify state's message"
                ));
            }
        }
        Status::TimedOut => {
            if !notified_by(NotificationSource::FailedRunsAlarm) {
                found.push(format!("{label}: timed out and nobody was told"));
            }
        }
        Status::Succeeded if execution.path().last() == Some(&"Done") => {
            let verified = execution
                .output_of("verify")
                .is_some_and(|output| output["verified"] == true);
            let snapshot = execution
                .output_of("check-status")
                .and_then(|output| output["snapshot"].as_str())
                .unwrap_or_default();
            let healthy = current.get(snapshot).is_some_and(|(seen, _)| seen.healthy);
            if !verified || !healthy {
                found.push(format!(
                    "{label}: succeeded, but its snapshot [{snapshot}] is {} and {}",
                    if healthy {
                        "healthy"
                    } else {
                        "not healthy or gone"
                    },
                    if verified { "verified" } else { "not verified" }
                ));
            }
        }
        Status::Succeeded => {}
    }
    if execution.virtual_duration() > EXECUTION_TIMEOUT + Duration::from_secs(1) {
        found.push(format!(
            "{label}: ran {:?}, past the execution's timeout",
            execution.virtual_duration()
        ));
    }
    for invocation in &execution.invocations {
        let limit = ossnap_core::budget::ALL
            .iter()
            .find(|budget| budget.function == invocation.function)
            .map_or(Duration::from_secs(300), |budget| {
                Duration::from_secs(budget.lambda_timeout_seconds())
            });
        if invocation.duration > limit {
            found.push(format!(
                "{label}: {} ran {:?}, past its Lambda timeout {limit:?}",
                invocation.function, invocation.duration
            ));
        }
    }
    found
}

async fn verify(verifier: &Verifier, snapshot: &str) -> Result<(), String> {
    let input = VerifyInput {
        snapshot: Some(snapshot.to_string()),
        ..VerifyInput::default()
    };
    let event = Event {
        input,
        scheduled_time: None,
    };
    match ossnap_verify::run(verifier, event).await {
        Ok(output) if output.verified => Ok(()),
        Ok(output) => Err(format!("verify answered {output:?}")),
        Err(error) => Err(format!("{}: {}", error.kind(), error.message())),
    }
}

fn read_generation(repository_dir: &std::path::Path) -> Result<u64, String> {
    let path = repository_dir.join("index.latest");
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    ossnap_repository::repository_data::decode_index_latest(&bytes)
        .map_err(|e| format!("{}: {e}", path.display()))
}
