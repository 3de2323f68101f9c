//! A snapshot while it runs: the emulator's only snapshot state held in memory (finished ones are
//! read from the repository). Its behaviour (`_status`, progress) lives with the snapshot API in
//! `snapshots`; the cluster state holds the list of running ones.

use std::time::Instant;

use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::errors::ApiError;
use crate::repository_writer::SnapshotPlan;

/// What waiters of a running snapshot receive when it ends.
pub(crate) type Completion = Option<Result<Value, ApiError>>;

pub(crate) struct RunningSnapshot {
    pub(crate) repository: String,
    pub(crate) name: String,
    pub(crate) uuid: String,
    pub(crate) start_millis: i64,
    pub(crate) started: Instant,
    pub(crate) indices: Vec<String>,
    pub(crate) include_global_state: bool,
    pub(crate) metadata: Option<Map<String, Value>>,
    /// (index, shard) of every shard in the snapshot.
    pub(crate) shards: Vec<(String, u32)>,
    pub(crate) plan: Option<SnapshotPlan>,
    pub(crate) never_finishes: bool,
    pub(crate) task: Option<tokio::task::AbortHandle>,
    pub(crate) done: watch::Receiver<Completion>,
}
