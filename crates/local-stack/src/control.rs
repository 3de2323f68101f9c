//! Test control: injected faults (answers, dropped connections), added latency, forced snapshot
//! outcomes, red indices, an AWS automated snapshot, the cluster's clock, and the request log.
//! [`Control`] is the in-process handle; the loopback `/_local/...` endpoints change the same
//! state.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The next `count` requests matching `method` and `path` get `status` and `body`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// `None` matches any method.
    #[serde(default)]
    pub method: Option<String>,
    /// Exact path, or a prefix ending in `*`.
    pub path: String,
    #[serde(default = "one")]
    pub count: u32,
    pub status: u16,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub latency_ms: u64,
    /// Perform the real operation first, then answer with the fault (a 504 after the cluster
    /// accepted the request).
    #[serde(default)]
    pub after_accept: bool,
    /// Close the connection without answering (a connection reset), instead of `status`/`body`.
    #[serde(default)]
    pub reset_connection: bool,
    /// Answer as the cluster would, only `latency_ms` late (after performing the operation with
    /// `after_accept`), instead of `status`/`body`: a slow answer.
    #[serde(default)]
    pub real_answer: bool,
}

fn one() -> u32 {
    1
}

impl Fault {
    pub fn new(method: &str, path: &str, status: u16, body: &str) -> Self {
        Fault {
            method: Some(method.to_owned()),
            path: path.to_owned(),
            count: 1,
            status,
            body: body.to_owned(),
            latency_ms: 0,
            after_accept: false,
            reset_connection: false,
            real_answer: false,
        }
    }

    /// The next request matching `method` and `path` gets its real answer `latency` late (with
    /// `after_accept`, the operation is performed first: a slow answer to an accepted request).
    pub fn slow_answer(method: &str, path: &str, latency: Duration) -> Self {
        Fault {
            real_answer: true,
            latency_ms: latency.as_millis() as u64,
            ..Fault::new(method, path, 200, "")
        }
    }

    /// The next request matching `method` and `path` gets no answer: the connection is closed.
    pub fn connection_reset(method: &str, path: &str) -> Self {
        Fault {
            reset_connection: true,
            ..Fault::new(method, path, 0, "")
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let method_matches = self
            .method
            .as_deref()
            .is_none_or(|expected| expected.eq_ignore_ascii_case(method));
        let path_matches = match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == self.path,
        };
        method_matches && path_matches
    }
}

/// How the next snapshot that starts will end, whatever the cluster's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SnapshotOutcome {
    /// Stays IN_PROGRESS until deleted (or the stack stops).
    NeverFinishes,
    /// Ends FAILED with this reason and nothing written but its SnapshotInfo.
    Failed { reason: String },
    /// Ends PARTIAL: the first shard fails with "primary shard is not allocated".
    Partial,
}

/// One request as the emulator saw it, after authentication and faults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    /// Raw query string, `""` when there is none.
    pub query: String,
    pub status: u16,
    /// The OpenSearch `error.type`, or a label for AWS front-door/IAM refusals and injected faults.
    pub error_type: Option<String>,
}

/// An AWS automated snapshot (`cs-automated` repository), running until `started + duration` on
/// the cluster's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutomatedSnapshot {
    pub name: String,
    pub uuid: String,
    pub started: Instant,
    pub started_epoch_millis: i64,
    pub duration: Duration,
}

pub const AUTOMATED_REPOSITORY: &str = "cs-automated";

#[derive(Default)]
pub struct Control {
    faults: Mutex<Vec<Fault>>,
    latency: Mutex<Duration>,
    next_outcome: Mutex<Option<SnapshotOutcome>>,
    red_indices: Mutex<BTreeSet<String>>,
    automated: Mutex<Option<AutomatedSnapshot>>,
    requests: Mutex<Vec<LoggedRequest>>,
    disk_available: Mutex<Option<u64>>,
    /// How far the cluster's clock is ahead of real time (or of the instant it was frozen at).
    clock_offset: Mutex<Duration>,
    /// Where the cluster's clock stopped following real time ([`Self::freeze_clock`]): the
    /// instant and the same moment in milliseconds since the epoch.
    frozen_at: Mutex<Option<(Instant, i64)>>,
    clock_moved: tokio::sync::Notify,
    /// Snapshots (by uuid) due to end at a time on the cluster's clock, until written.
    due: Mutex<std::collections::HashMap<String, Instant>>,
}

impl Control {
    pub fn add_fault(&self, fault: Fault) {
        self.faults.lock().unwrap().push(fault);
    }

    pub fn clear_faults(&self) {
        self.faults.lock().unwrap().clear();
    }

    /// The faults not used up yet, with the uses they have left in `count`.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.faults.lock().unwrap().clone()
    }

    /// Moves the cluster's clock `by` ahead: snapshots progress and end, and AWS's automated
    /// snapshot runs, on this clock (a virtual wait of a test, or a node's clock that jumps).
    /// Authentication keeps real time: SigV4's clock is AWS's front door, not the node's.
    pub fn advance_clock(&self, by: Duration) {
        *self.clock_offset.lock().unwrap() += by;
        self.clock_moved.notify_waiters();
    }

    /// How far [`Self::advance_clock`] has moved the cluster's clock ahead of real time.
    pub fn clock_offset(&self) -> Duration {
        *self.clock_offset.lock().unwrap()
    }

    /// From now on the cluster's clock moves only by [`Self::advance_clock`], never with real
    /// time: a soak that counts polls on a virtual calendar then counts the same on a loaded
    /// machine as on an idle one.
    pub fn freeze_clock(&self) {
        self.frozen_at
            .lock()
            .unwrap()
            .get_or_insert_with(|| (Instant::now(), crate::millis::now_millis()));
    }

    /// The cluster's clock now.
    pub(crate) fn now(&self) -> Instant {
        let base = self
            .frozen_at
            .lock()
            .unwrap()
            .map_or_else(Instant::now, |(at, _)| at);
        base + self.clock_offset()
    }

    /// The cluster's clock now, in milliseconds since the epoch (what snapshots record).
    pub(crate) fn now_millis(&self) -> i64 {
        let base = self
            .frozen_at
            .lock()
            .unwrap()
            .map_or_else(crate::millis::now_millis, |(_, millis)| millis);
        base + self.clock_offset().as_millis() as i64
    }

    /// The snapshot `uuid` ends at `at` on the cluster's clock (see [`Self::settled`]).
    pub(crate) fn expect_end(&self, uuid: &str, at: Instant) {
        self.due.lock().unwrap().insert(uuid.to_owned(), at);
    }

    /// The snapshot `uuid` is written, or aborted.
    pub(crate) fn ended(&self, uuid: &str) {
        self.due.lock().unwrap().remove(uuid);
    }

    /// Waits (5 s at most) until every snapshot whose time is up on the cluster's clock is
    /// written, so that what a test reads after moving the clock is what the cluster would show
    /// at that time; false if some were still being written.
    pub async fn settled(&self) -> bool {
        for _ in 0..1000 {
            let now = self.now();
            if self.due.lock().unwrap().values().all(|at| *at > now) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }

    /// Waits until the cluster's clock reaches `deadline`, by real time passing or the clock
    /// being moved ahead.
    pub(crate) async fn sleep_until(&self, deadline: Instant) {
        loop {
            let moved = self.clock_moved.notified();
            let now = self.now();
            if now >= deadline {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(deadline - now) => {}
                _ = moved => {}
            }
        }
    }

    /// Consumes one use of the first fault matching this request.
    pub(crate) fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap();
        let position = faults
            .iter()
            .position(|fault| fault.matches(method, path))?;
        let fault = faults[position].clone();
        faults[position].count -= 1;
        if faults[position].count == 0 {
            faults.remove(position);
        }
        Some(fault)
    }

    /// The node's free disk as `_cat/allocation` reports it (default: most of a 100 GiB disk).
    pub fn set_disk_available(&self, bytes: u64) {
        *self.disk_available.lock().unwrap() = Some(bytes);
    }

    pub(crate) fn disk_available(&self) -> Option<u64> {
        *self.disk_available.lock().unwrap()
    }

    /// Added before every OpenSearch request.
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap() = latency;
    }

    pub(crate) fn latency(&self) -> Duration {
        *self.latency.lock().unwrap()
    }

    pub fn set_next_snapshot_outcome(&self, outcome: SnapshotOutcome) {
        *self.next_outcome.lock().unwrap() = Some(outcome);
    }

    pub(crate) fn take_next_snapshot_outcome(&self) -> Option<SnapshotOutcome> {
        self.next_outcome.lock().unwrap().take()
    }

    /// The index's primaries become unassigned: cluster health red, snapshots of it fail (or are
    /// PARTIAL with `partial: true`).
    pub fn make_index_red(&self, index: &str) {
        self.red_indices.lock().unwrap().insert(index.to_owned());
    }

    pub fn make_index_green(&self, index: &str) {
        self.red_indices.lock().unwrap().remove(index);
    }

    pub fn is_red(&self, index: &str) -> bool {
        self.red_indices.lock().unwrap().contains(index)
    }

    /// Starts an automated snapshot in `cs-automated` that runs for `duration`; returns its name.
    pub fn start_automated_snapshot(&self, duration: Duration) -> String {
        let started_epoch_millis = self.now_millis();
        let stamp = time::OffsetDateTime::now_utc() + self.clock_offset();
        let name = format!(
            "{:04}-{:02}-{:02}t{:02}-{:02}-{:02}.{}",
            stamp.year(),
            u8::from(stamp.month()),
            stamp.day(),
            stamp.hour(),
            stamp.minute(),
            stamp.second(),
            crate::ids::random_base64_uuid()
                .to_lowercase()
                .replace(['-', '_'], "")
        );
        *self.automated.lock().unwrap() = Some(AutomatedSnapshot {
            name: name.clone(),
            uuid: crate::ids::random_base64_uuid(),
            started: self.now(),
            started_epoch_millis,
            duration,
        });
        name
    }

    /// The automated snapshot, while it is still running.
    pub fn running_automated_snapshot(&self) -> Option<AutomatedSnapshot> {
        let mut automated = self.automated.lock().unwrap();
        match automated.as_ref() {
            Some(snapshot) if self.now() - snapshot.started < snapshot.duration => {
                Some(snapshot.clone())
            }
            Some(_) => {
                *automated = None;
                None
            }
            None => None,
        }
    }

    pub(crate) fn log(&self, request: LoggedRequest) {
        self.requests.lock().unwrap().push(request);
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.requests.lock().unwrap().clone()
    }

    pub fn clear_requests(&self) {
        self.requests.lock().unwrap().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_used_count_times_then_gone() {
        let control = Control::default();
        control.add_fault(Fault {
            count: 2,
            ..Fault::new("PUT", "/_snapshot/repo/*", 504, "")
        });
        assert!(control.take_fault("GET", "/_snapshot/repo/a").is_none());
        assert!(control.take_fault("PUT", "/_snapshot/other/a").is_none());
        assert!(control.take_fault("put", "/_snapshot/repo/a").is_some());
        assert!(control.take_fault("PUT", "/_snapshot/repo/b").is_some());
        assert!(control.take_fault("PUT", "/_snapshot/repo/c").is_none());
    }

    #[test]
    fn an_exact_path_does_not_match_longer_paths() {
        let control = Control::default();
        control.add_fault(Fault::new("GET", "/_snapshot/repo", 500, ""));
        assert!(control.take_fault("GET", "/_snapshot/repo/snap").is_none());
        assert!(control.take_fault("GET", "/_snapshot/repo").is_some());
    }

    #[test]
    fn the_automated_snapshot_ends_by_itself() {
        let control = Control::default();
        control.start_automated_snapshot(Duration::ZERO);
        assert!(control.running_automated_snapshot().is_none());
        control.start_automated_snapshot(Duration::from_secs(60));
        assert!(control.running_automated_snapshot().is_some());
    }

    #[test]
    fn the_automated_snapshot_ends_when_the_clock_moves_past_it() {
        let control = Control::default();
        control.start_automated_snapshot(Duration::from_secs(20 * 60));
        control.advance_clock(Duration::from_secs(19 * 60));
        assert!(control.running_automated_snapshot().is_some());
        control.advance_clock(Duration::from_secs(60));
        assert!(control.running_automated_snapshot().is_none());
    }

    #[tokio::test]
    async fn a_sleep_on_the_cluster_clock_ends_when_the_clock_moves() {
        let control = std::sync::Arc::new(Control::default());
        let deadline = control.now() + Duration::from_secs(3600);
        let sleeper = {
            let control = control.clone();
            tokio::spawn(async move { control.sleep_until(deadline).await })
        };
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        control.advance_clock(Duration::from_secs(3600));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("the sleep ends with the clock, not after an hour")
            .unwrap();
        assert_eq!(control.clock_offset(), Duration::from_secs(3600));
    }

    #[test]
    fn pending_faults_show_the_uses_left() {
        let control = Control::default();
        control.add_fault(Fault {
            count: 2,
            ..Fault::connection_reset("GET", "/_snapshot/*")
        });
        control.take_fault("GET", "/_snapshot/r/s");
        let pending = control.pending_faults();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].count, 1);
        assert!(pending[0].reset_connection);
    }
}
