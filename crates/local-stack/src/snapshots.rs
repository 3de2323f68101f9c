//! The snapshot API: repositories (register with verification, get, delete, verify, cleanup),
//! snapshots (create, get, status, delete/abort, restore, `_cat/snapshots`), with the server's
//! validation order, error types and statuses. Finished snapshots are read from the repository
//! in S3 every time, as the real cluster does; only running ones are held in memory.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ossnap_repository::{ShardFailure, SnapshotEntry, SnapshotInfo, SnapshotState};
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use crate::blob_store::{BlobStore, Operation, StoreError};
use crate::cluster::{IndexState, Recovery, RepositoryConfig};
use crate::control::{SnapshotOutcome, AUTOMATED_REPOSITORY};
use crate::errors::ApiError;
use crate::ids::random_base64_uuid;
use crate::millis::{format_millis, now_millis};
use crate::opensearch::{Body, Call, Emulator, Handled, Reply};
use crate::repository_writer::{self, CapturedIndex, RepositoryError, ShardPlan, SnapshotPlan};
use crate::running::RunningSnapshot;
use crate::security;

/// Settings rendered as OpenSearch renders `Settings`: every value a string.
fn settings_as_strings(settings: &Map<String, Value>) -> Value {
    Value::Object(
        settings
            .iter()
            .map(|(key, value)| {
                let text = match value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (key.clone(), Value::String(text))
            })
            .collect(),
    )
}

pub(crate) fn glob_matches(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((prefix, rest)) => {
            if !text.starts_with(prefix) {
                return false;
            }
            let remainder = &text[prefix.len()..];
            (0..=remainder.len()).any(|start| {
                remainder.is_char_boundary(start) && glob_matches(rest, &remainder[start..])
            })
        }
    }
}

fn split_names(expression: &str) -> Vec<String> {
    expression
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `SnapshotsService.validate()`, in the server's order.
fn validate_snapshot_name(repository: &str, name: &str) -> Result<(), ApiError> {
    let invalid = |description: &str| {
        Err(ApiError::invalid_snapshot_name(
            repository,
            name,
            description,
        ))
    };
    if name.is_empty() {
        return invalid("cannot be empty");
    }
    if name.contains(' ') {
        return invalid("must not contain whitespace");
    }
    if name.contains(',') {
        return invalid("must not contain ','");
    }
    if name.contains('#') {
        return invalid("must not contain '#'");
    }
    if name.starts_with('_') {
        return invalid("must not start with '_'");
    }
    if name.to_lowercase() != name {
        return invalid("must be lowercase");
    }
    if name.contains(['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',']) {
        // Strings.INVALID_FILENAME_CHARS printed in its HashSet iteration order.
        return invalid(
            "must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?]",
        );
    }
    Ok(())
}

/// `SnapshotInfo.toXContent` for the REST API.
fn snapshot_info_json(info: &SnapshotInfo, verbose: bool, version: (&str, i64)) -> Value {
    let mut out = Map::new();
    out.insert("snapshot".to_owned(), json!(info.name));
    out.insert("uuid".to_owned(), json!(info.uuid));
    if verbose {
        let version_id = info.version_id.unwrap_or(version.1);
        out.insert("version_id".to_owned(), json!(version_id));
        out.insert("version".to_owned(), json!(version_text(version_id)));
    }
    out.insert("indices".to_owned(), json!(info.indices));
    out.insert(
        "data_streams".to_owned(),
        json!(info.data_streams.clone().unwrap_or_default()),
    );
    if !verbose {
        out.insert("state".to_owned(), json!(info.state));
        return Value::Object(out);
    }
    out.insert(
        "include_global_state".to_owned(),
        json!(info.include_global_state.unwrap_or(true)),
    );
    if let Some(metadata) = &info.metadata {
        out.insert("metadata".to_owned(), Value::Object(metadata.clone()));
    }
    out.insert("state".to_owned(), json!(info.state));
    if let Some(reason) = &info.reason {
        out.insert("reason".to_owned(), json!(reason));
    }
    out.insert(
        "start_time".to_owned(),
        json!(format_millis(info.start_time)),
    );
    out.insert("start_time_in_millis".to_owned(), json!(info.start_time));
    if info.end_time != 0 {
        out.insert("end_time".to_owned(), json!(format_millis(info.end_time)));
        out.insert("end_time_in_millis".to_owned(), json!(info.end_time));
        out.insert(
            "duration_in_millis".to_owned(),
            json!(info.end_time - info.start_time),
        );
    }
    out.insert(
        "failures".to_owned(),
        serde_json::to_value(&info.failures).unwrap_or_default(),
    );
    out.insert(
        "shards".to_owned(),
        json!({
            "total": info.total_shards,
            "failed": info.total_shards - info.successful_shards,
            "successful": info.successful_shards
        }),
    );
    Value::Object(out)
}

fn repository_read_error(repository: &str, error: &RepositoryError) -> ApiError {
    let caused_by = match error {
        RepositoryError::Store(store) => store.cause(Operation::ListRootIndex),
        other => json!({"type": "i_o_exception", "reason": other.to_string()}),
    };
    ApiError::opensearch_with(
        500,
        "repository_exception",
        format!("[{repository}] could not read repository data from index blob"),
        Map::new(),
        Some(caused_by),
    )
}

fn repository_write_error(repository: &str, error: &RepositoryError) -> ApiError {
    ApiError::opensearch_with(
        500,
        "repository_exception",
        format!("[{repository}] failed to update snapshot in repository"),
        Map::new(),
        Some(json!({"type": "i_o_exception", "reason": error.to_string()})),
    )
}

impl RunningSnapshot {
    fn info(&self, version: i64) -> SnapshotInfo {
        SnapshotInfo {
            name: self.name.clone(),
            uuid: Some(self.uuid.clone()),
            version_id: Some(version),
            indices: self.indices.clone(),
            data_streams: Some(Vec::new()),
            state: Some(SnapshotState::InProgress.name().to_owned()),
            reason: None,
            include_global_state: Some(self.include_global_state),
            metadata: self.metadata.clone(),
            start_time: self.start_millis,
            end_time: 0,
            total_shards: 0,
            successful_shards: 0,
            failures: Vec::new(),
        }
    }

    /// Fraction of the work done at `now` (the cluster's clock): grows linearly with elapsed time
    /// so that callers can estimate the time left; a snapshot that never finishes creeps towards
    /// but never reaches 1.
    fn progress(&self, duration: Duration, now: Instant) -> f64 {
        let elapsed = (now - self.started).as_secs_f64();
        if self.never_finishes {
            return 0.99 * (1.0 - (-elapsed / duration.as_secs_f64().max(0.001)).exp());
        }
        (elapsed / duration.as_secs_f64().max(0.001)).min(0.99)
    }

    /// The shard's plan, if the snapshot has one.
    fn planned(&self, index: &str, shard: u32) -> Option<&ShardPlan> {
        self.plan.as_ref().and_then(|plan| {
            plan.shards
                .iter()
                .find(|planned| planned.index == index && planned.shard == shard)
        })
    }

    /// `SnapshotStatus` while running, at `now` (the cluster's clock): shards are processed one
    /// after another, each for its share of the bytes to upload, as uploading is what takes the
    /// time (so the share of bytes processed is the share of time elapsed, whatever the shards'
    /// sizes and order).
    fn status_json(&self, duration: Duration, now: Instant) -> Value {
        let progress = self.progress(duration, now);
        let elapsed = (now - self.started).as_millis() as i64;
        let plans: Vec<Option<&ShardPlan>> = self
            .shards
            .iter()
            .map(|(index, shard)| self.planned(index, *shard))
            .collect();
        let weights: Vec<u64> = plans
            .iter()
            .map(|planned| planned.map_or(0, |planned| planned.incremental_bytes))
            .collect();
        let shard_progress = sequential_progress(progress, &weights);
        let mut indices: std::collections::BTreeMap<&str, IndexProgress> =
            std::collections::BTreeMap::new();
        for (((index, shard), planned), shard_progress) in
            self.shards.iter().zip(plans).zip(shard_progress)
        {
            let (incremental, total) = planned.map_or(((0, 0), (0, 0)), |planned| {
                (
                    (planned.incremental_files, planned.incremental_bytes),
                    (planned.total_files, planned.total_bytes),
                )
            });
            let stats = StatsAccumulator {
                incremental,
                processed: (
                    (incremental.0 as f64 * shard_progress).floor() as u64,
                    (incremental.1 as f64 * shard_progress).floor() as u64,
                ),
                total,
            };
            let done = shard_progress >= 1.0;
            let entry = indices.entry(index).or_default();
            entry.stats.add(&stats);
            if done {
                entry.done += 1;
            } else {
                entry.started += 1;
            }
            entry.shards.insert(
                shard.to_string(),
                json!({
                    "stage": if done { "DONE" } else { "STARTED" },
                    "stats": stats.to_json(self.start_millis, elapsed, true)
                }),
            );
        }
        let mut totals = IndexProgress::default();
        let indices: Map<String, Value> = indices
            .into_iter()
            .map(|(name, index)| {
                totals.stats.add(&index.stats);
                totals.done += index.done;
                totals.started += index.started;
                (
                    name.to_owned(),
                    json!({
                        "shards_stats": shards_stats(0, index.started, index.done, 0),
                        "stats": index.stats.to_json(self.start_millis, elapsed, true),
                        "shards": index.shards
                    }),
                )
            })
            .collect();
        json!({
            "snapshot": self.name,
            "repository": self.repository,
            "uuid": self.uuid,
            "state": "STARTED",
            "include_global_state": self.include_global_state,
            "shards_stats": shards_stats(0, totals.started, totals.done, 0),
            "stats": totals.stats.to_json(self.start_millis, elapsed, true),
            "indices": indices
        })
    }
}

/// How far along each of shards processed one after another is, when the whole is `progress`
/// (in [0, 1]) along and each shard takes its `weights` share of the time; a shard of weight 0
/// (nothing new to upload) is done as soon as the shards before it are. Without any weight, the
/// shards share the time equally.
fn sequential_progress(progress: f64, weights: &[u64]) -> Vec<f64> {
    let total: u64 = weights.iter().sum();
    let weights: Vec<f64> = if total == 0 {
        vec![1.0; weights.len()]
    } else {
        weights.iter().map(|weight| *weight as f64).collect()
    };
    let reached = progress * weights.iter().sum::<f64>();
    let mut before = 0.0;
    weights
        .iter()
        .map(|weight| {
            let share = if *weight == 0.0 {
                if reached >= before {
                    1.0
                } else {
                    0.0
                }
            } else {
                ((reached - before) / weight).clamp(0.0, 1.0)
            };
            before += weight;
            share
        })
        .collect()
}

/// Per-index accumulation for `_status`.
#[derive(Default)]
struct IndexProgress {
    stats: StatsAccumulator,
    done: u64,
    started: u64,
    shards: Map<String, Value>,
}

fn shards_stats(initializing: u64, started: u64, done: u64, failed: u64) -> Value {
    json!({
        "initializing": initializing,
        "started": started,
        "finalizing": 0,
        "done": done,
        "failed": failed,
        "total": initializing + started + done + failed
    })
}

#[derive(Default, Clone, Copy)]
struct StatsAccumulator {
    incremental: (u64, u64),
    processed: (u64, u64),
    total: (u64, u64),
}

impl StatsAccumulator {
    fn add(&mut self, other: &StatsAccumulator) {
        self.incremental.0 += other.incremental.0;
        self.incremental.1 += other.incremental.1;
        self.processed.0 += other.processed.0;
        self.processed.1 += other.processed.1;
        self.total.0 += other.total.0;
        self.total.1 += other.total.1;
    }

    fn from_json(stats: &Value) -> Self {
        let pair = |key: &str| {
            (
                stats[key]["file_count"].as_u64().unwrap_or(0),
                stats[key]["size_in_bytes"].as_u64().unwrap_or(0),
            )
        };
        let incremental = pair("incremental");
        StatsAccumulator {
            incremental,
            processed: if stats.get("processed").is_some() {
                pair("processed")
            } else {
                incremental
            },
            total: pair("total"),
        }
    }

    /// `SnapshotStats.toXContent`: `processed` only while it differs from `incremental`.
    fn to_json(self, start_millis: i64, time_millis: i64, running: bool) -> Value {
        let pair =
            |(files, bytes): (u64, u64)| json!({"file_count": files, "size_in_bytes": bytes});
        let mut stats = Map::new();
        stats.insert("incremental".to_owned(), pair(self.incremental));
        if running && self.processed != self.incremental {
            stats.insert("processed".to_owned(), pair(self.processed));
        }
        stats.insert("total".to_owned(), pair(self.total));
        stats.insert("start_time_in_millis".to_owned(), json!(start_millis));
        stats.insert("time_in_millis".to_owned(), json!(time_millis));
        Value::Object(stats)
    }
}

/// The outcome decided when a snapshot starts.
struct Decided {
    state: SnapshotState,
    reason: Option<String>,
    failures: Vec<ShardFailure>,
    never_finishes: bool,
}

fn unallocated(index: &str, shard: u32) -> ShardFailure {
    ShardFailure {
        index: index.to_owned(),
        index_uuid: Some(index.to_owned()),
        shard_id: shard,
        reason: Some("primary shard is not allocated".to_owned()),
        node_id: None,
        status: Some("INTERNAL_SERVER_ERROR".to_owned()),
    }
}

impl Emulator {
    fn authorize(&self, call: &Call, action: &str) -> Result<(), ApiError> {
        let state = self.state.lock().unwrap();
        security::authorize(&state.role_mappings, &call.principal, action)
    }

    fn repository(&self, name: &str) -> Result<RepositoryConfig, ApiError> {
        self.state
            .lock()
            .unwrap()
            .repositories
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::repository_missing(name))
    }

    fn blob_store(&self, repository: &RepositoryConfig) -> BlobStore {
        self.storage
            .open(repository.location(), &repository.base_path())
            .compressing(repository.setting_bool("compress"))
    }

    pub(crate) fn snapshot_using_index(&self, index: &str) -> Option<String> {
        self.running
            .lock()
            .unwrap()
            .iter()
            .find(|running| running.indices.iter().any(|name| name == index))
            .map(|running| format!("{}:{}/{}", running.repository, running.name, running.uuid))
    }

    pub(crate) fn abort_running_snapshots(&self) {
        for running in self.running.lock().unwrap().drain(..) {
            if let Some(task) = running.task {
                task.abort();
            }
            self.control.ended(&running.uuid);
        }
    }

    pub(crate) async fn route_snapshot(
        self: &Arc<Self>,
        call: &Call,
        segments: &[&str],
    ) -> Handled {
        let method = call.method.as_str();
        // The snapshot segment may hold date math names, resolved before anything else.
        let resolved_names;
        let mut segments = segments.to_vec();
        if segments.len() >= 3 && segments[0] == "_snapshot" && segments[2].contains('<') {
            let now = time::OffsetDateTime::now_utc();
            resolved_names = segments[2]
                .split(',')
                .map(|name| crate::date_math::resolve(name, now))
                .collect::<Result<Vec<_>, _>>()?
                .join(",");
            segments[2] = &resolved_names;
        }
        let segments = segments.as_slice();
        match (method, segments) {
            ("GET", ["_snapshot"]) => self.get_repositories(call, "_all"),
            ("GET", ["_snapshot", "_status"]) => self.status(call, None, None).await,
            ("GET", ["_snapshot", repository]) => self.get_repositories(call, repository),
            ("PUT" | "POST", ["_snapshot", repository]) => {
                self.put_repository(call, repository).await
            }
            ("DELETE", ["_snapshot", repository]) => self.delete_repository(call, repository),
            ("POST", ["_snapshot", repository, "_verify"]) => {
                self.verify_repository_call(call, repository).await
            }
            ("POST", ["_snapshot", repository, "_cleanup"]) => {
                call.allow_parameters(&["timeout", "master_timeout", "cluster_manager_timeout"])?;
                self.authorize(call, "cluster:admin/repository/_cleanup")?;
                self.repository(repository)?;
                Reply::ok(json!({"results": {"deleted_bytes": 0, "deleted_blobs": 0}}))
            }
            ("GET", ["_snapshot", repository, "_status"]) => {
                self.status(call, Some(repository), None).await
            }
            ("PUT" | "POST", ["_snapshot", repository, snapshot]) => {
                self.create_snapshot(call, repository, snapshot).await
            }
            ("GET", ["_snapshot", repository, snapshots]) => {
                self.get_snapshots(call, repository, snapshots).await
            }
            ("DELETE", ["_snapshot", repository, snapshots]) => {
                self.delete_snapshots(call, repository, snapshots).await
            }
            ("GET", ["_snapshot", repository, snapshots, "_status"]) => {
                self.status(call, Some(repository), Some(snapshots)).await
            }
            ("POST", ["_snapshot", repository, snapshot, "_restore"]) => {
                self.restore(call, repository, snapshot).await
            }
            ("PUT", ["_snapshot", repository, source, "_clone", target]) => {
                self.clone_snapshot(call, repository, source, target).await
            }
            ("GET", ["_cat", "repositories"]) => self.cat_repositories(call),
            ("GET", ["_cat", "snapshots"]) => {
                let repository = call.query.get("repository").cloned().unwrap_or_default();
                self.cat_snapshots(call, &repository).await
            }
            ("GET", ["_cat", "snapshots", repository]) => {
                self.cat_snapshots(call, repository).await
            }
            _ => Err(ApiError::opensearch(
                405,
                "method_not_allowed",
                format!(
                    "Incorrect HTTP method for uri [{}] and method [{}]",
                    call.path, call.method
                ),
            )),
        }
    }

    // ---- repositories -------------------------------------------------------------------

    async fn put_repository(&self, call: &Call, name: &str) -> Handled {
        call.allow_parameters(&[
            "verify",
            "timeout",
            "master_timeout",
            "cluster_manager_timeout",
        ])?;
        let body = call.required_json()?;
        let Value::Object(body) = body else {
            return Err(ApiError::parse("Failed to parse content to map"));
        };
        let repository_type = body.get("type").and_then(Value::as_str).map(str::to_owned);
        let settings = match body.get("settings") {
            None => Map::new(),
            Some(Value::Object(settings)) => settings.clone(),
            Some(_) => {
                return Err(ApiError::illegal_argument(
                    "Malformed settings section, should include an inner object",
                ))
            }
        };
        if let Some(role_arn) = settings.get("role_arn").and_then(Value::as_str) {
            if let Some(passable) = &self.config.passable_roles {
                if !passable.iter().any(|role| role == role_arn) {
                    return Err(ApiError::iam_denied(format!(
                        "User: {} is not authorized to perform: iam:PassRole on resource: {role_arn}",
                        call.principal.name
                    )));
                }
            }
        }
        self.authorize(call, "cluster:admin/repository/put")?;
        if name.starts_with("cs-") {
            return Err(ApiError::illegal_argument(format!(
                "[{name}] Repository names cannot start with \"cs-\""
            )));
        }
        let Some(repository_type) = repository_type else {
            return Err(ApiError::opensearch(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: type is missing;",
            ));
        };
        match repository_type.as_str() {
            // repository-azure is installed; its client `default` reaches the stack's Azurite when
            // there is one (see `StorageClients::open`).
            "s3" | "azure" => {}
            "fs" => {
                return Err(ApiError::repository_exception(
                    name,
                    "location [] doesn't match any of the locations specified by path.repo because this setting is empty",
                ))
            }
            other => {
                return Err(ApiError::repository_exception(
                    name,
                    &format!("repository type [{other}] does not exist"),
                ))
            }
        }
        let config = RepositoryConfig {
            repository_type,
            settings,
        };
        if config.repository_type == "s3" && config.bucket().is_none() {
            return Err(ApiError::repository_exception(
                name,
                "No bucket defined for s3 repository",
            ));
        }
        self.refuse_if_in_use(name)?;
        {
            let mut state = self.state.lock().unwrap();
            state.repositories.insert(name.to_owned(), config.clone());
            self.save(&state)?;
        }
        // As on the real cluster the repository stays registered when verification fails.
        if call.flag("verify", true)? {
            self.verify_repository(name, &config).await?;
        }
        Reply::acknowledged()
    }

    /// `BlobStoreRepository.startVerification`: writes test blobs and removes them again; a
    /// readonly repository is only listed (its newest generation looked up), never written.
    async fn verify_repository(
        &self,
        name: &str,
        config: &RepositoryConfig,
    ) -> Result<(), ApiError> {
        let store = self.blob_store(config);
        let base = config.base_path();
        let shown_path = if base.is_empty() {
            String::new()
        } else {
            format!("{}/", base.trim_matches('/'))
        };
        let failure = |operation: Operation<'_>, error: StoreError| {
            ApiError::opensearch_with(
                500,
                "repository_verification_exception",
                format!("[{name}] path {shown_path} is not accessible on cluster-manager node"),
                Map::new(),
                Some(error.cause(operation)),
            )
        };
        if config.setting_bool("readonly") {
            store
                .list(ossnap_repository::layout::ROOT_INDEX_PREFIX)
                .await
                .map_err(|error| failure(Operation::ListRootIndex, error))?;
            return Ok(());
        }
        let seed = random_base64_uuid();
        let folder = format!("tests-{seed}/");
        let master = format!("{folder}master.dat");
        let upload_failure = |blob: &str, error| {
            failure(
                Operation::Upload {
                    path: &store.key(blob),
                },
                error,
            )
        };
        for blob in [&master, &format!("{folder}data-{}.dat", self.node_id)] {
            store
                .put(blob, seed.as_bytes().to_vec())
                .await
                .map_err(|error| upload_failure(blob, error))?;
        }
        // Reported as the upload was, which is what the emulator has always answered.
        store
            .delete_folder(&folder)
            .await
            .map_err(|error| upload_failure(&master, error))?;
        Ok(())
    }

    async fn verify_repository_call(&self, call: &Call, name: &str) -> Handled {
        call.allow_parameters(&["timeout", "master_timeout", "cluster_manager_timeout"])?;
        self.authorize(call, "cluster:admin/repository/verify")?;
        let config = self.repository(name)?;
        self.verify_repository(name, &config).await?;
        Reply::ok(json!({"nodes": {self.node_id.clone(): {"name": "ossnap-local"}}}))
    }

    fn get_repositories(&self, call: &Call, expression: &str) -> Handled {
        call.allow_parameters(&["local", "master_timeout", "cluster_manager_timeout"])?;
        self.authorize(call, "cluster:admin/repository/get")?;
        let state = self.state.lock().unwrap();
        let mut out = Map::new();
        for pattern in split_names(expression) {
            let all = pattern == "_all" || pattern == "*";
            let mut found = false;
            for (name, config) in &state.repositories {
                if all || glob_matches(&pattern, name) {
                    found = true;
                    out.insert(
                        name.clone(),
                        json!({"type": config.repository_type, "settings": settings_as_strings(&config.settings)}),
                    );
                }
            }
            if !found && !all && !pattern.contains('*') {
                return Err(ApiError::repository_missing(&pattern));
            }
        }
        Reply::ok(Value::Object(out))
    }

    /// A repository a snapshot is writing to can be neither changed nor removed.
    fn refuse_if_in_use(&self, name: &str) -> Result<(), ApiError> {
        if self
            .running
            .lock()
            .unwrap()
            .iter()
            .any(|running| running.repository == name)
        {
            return Err(ApiError::opensearch(
                500,
                "illegal_state_exception",
                "trying to modify or unregister repository that is currently used",
            ));
        }
        Ok(())
    }

    fn delete_repository(&self, call: &Call, name: &str) -> Handled {
        call.allow_parameters(&["timeout", "master_timeout", "cluster_manager_timeout"])?;
        self.authorize(call, "cluster:admin/repository/delete")?;
        self.refuse_if_in_use(name)?;
        let mut state = self.state.lock().unwrap();
        if state.repositories.remove(name).is_none() {
            return Err(ApiError::repository_missing(name));
        }
        self.save(&state)?;
        Reply::acknowledged()
    }

    // ---- create ---------------------------------------------------------------------------

    fn resolve_indices(
        indices: &std::collections::BTreeMap<String, IndexState>,
        expressions: &[String],
        ignore_unavailable: bool,
    ) -> Result<Vec<String>, ApiError> {
        let mut selected: Vec<String> = Vec::new();
        if expressions.is_empty() || expressions.iter().any(|expression| expression == "_all") {
            return Ok(indices.keys().cloned().collect());
        }
        for expression in expressions {
            if let Some(excluded) = expression
                .strip_prefix('-')
                .filter(|_| !selected.is_empty())
            {
                // OpenSearch refuses to exclude a plain name that does not exist.
                if !excluded.contains('*') && !indices.contains_key(excluded) && !ignore_unavailable
                {
                    return Err(ApiError::index_not_found(excluded));
                }
                selected.retain(|name| !glob_matches(excluded, name));
            } else if expression.contains('*') {
                for name in indices.keys() {
                    if glob_matches(expression, name) && !selected.contains(name) {
                        selected.push(name.clone());
                    }
                }
            } else if indices.contains_key(expression) {
                if !selected.contains(expression) {
                    selected.push(expression.clone());
                }
            } else if !ignore_unavailable {
                return Err(ApiError::index_not_found(expression));
            }
        }
        selected.sort();
        Ok(selected)
    }

    fn indices_field(value: &Value) -> Result<Vec<String>, ApiError> {
        match value {
            Value::String(text) => Ok(split_names(text)),
            Value::Array(items) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_owned).ok_or_else(|| {
                        ApiError::illegal_argument(
                            "malformed indices section, should be an array of strings",
                        )
                    })
                })
                .collect(),
            _ => Err(ApiError::illegal_argument(
                "malformed indices section, should be an array of strings",
            )),
        }
    }

    fn bool_field(value: &Value) -> Result<bool, ApiError> {
        match value {
            Value::Bool(flag) => Ok(*flag),
            Value::String(text) if text == "true" => Ok(true),
            Value::String(text) if text == "false" => Ok(false),
            other => Err(ApiError::illegal_argument(format!(
                "Failed to parse value [{}] as only [true] or [false] are allowed.",
                other
                    .as_str()
                    .map_or_else(|| other.to_string(), str::to_owned)
            ))),
        }
    }

    async fn create_snapshot(
        self: &Arc<Self>,
        call: &Call,
        repository_name: &str,
        name: &str,
    ) -> Handled {
        call.allow_parameters(&[
            "wait_for_completion",
            "master_timeout",
            "cluster_manager_timeout",
        ])?;
        self.authorize(call, "cluster:admin/snapshot/create")?;
        let wait = call.flag("wait_for_completion", false)?;
        let body = call.json()?.unwrap_or_else(|| json!({}));
        let Value::Object(body) = body else {
            return Err(ApiError::parse("Failed to parse content to map"));
        };
        let mut expressions = Vec::new();
        let (mut ignore_unavailable, mut include_global_state, mut partial) = (false, true, false);
        let mut metadata = None;
        for (key, value) in &body {
            match key.as_str() {
                "indices" => expressions = Self::indices_field(value)?,
                "ignore_unavailable" => ignore_unavailable = Self::bool_field(value)?,
                "include_global_state" => include_global_state = Self::bool_field(value)?,
                "partial" => partial = Self::bool_field(value)?,
                // Before ES 7.3 the field is parsed and dropped.
                "metadata" if !self.config.profile.keeps_metadata() => {}
                "metadata" => match value {
                    Value::Object(map) => metadata = Some(map.clone()),
                    Value::Null => metadata = None,
                    _ => {
                        return Err(ApiError::illegal_argument(
                            "malformed metadata, should be an object",
                        ))
                    }
                },
                "expand_wildcards" | "allow_no_indices" | "ignore_throttled" | "feature_states" => {
                }
                other => {
                    return Err(ApiError::illegal_argument(format!(
                        "Unknown parameter {other}"
                    )))
                }
            }
        }

        let repository = self.repository(repository_name)?;
        validate_snapshot_name(repository_name, name)?;
        if repository.setting_bool("readonly") {
            return Err(ApiError::repository_exception(
                repository_name,
                "cannot create snapshot in a readonly repository",
            ));
        }
        let store = self.blob_store(&repository);
        let (_, data) = repository_writer::read_repository_data(&store)
            .await
            .map_err(|error| repository_read_error(repository_name, &error))?;

        let (version_name, version_id) = self.config.profile.version();
        let uuid = random_base64_uuid();
        let start_millis = self.control.now_millis();
        let (captured, decided, done_sender) = {
            let mut running = self.running.lock().unwrap();
            if running
                .iter()
                .any(|snapshot| snapshot.repository == repository_name && snapshot.name == name)
            {
                return Err(ApiError::invalid_snapshot_name(
                    repository_name,
                    name,
                    "snapshot with the same name is already in-progress",
                ));
            }
            if data.snapshot(name).is_some() {
                return Err(ApiError::invalid_snapshot_name(
                    repository_name,
                    name,
                    "snapshot with the same name already exists",
                ));
            }
            let automated = usize::from(self.control.running_automated_snapshot().is_some());
            if !running.is_empty() || automated > 0 {
                return Err(ApiError::concurrent_snapshot(
                    self.config.profile,
                    repository_name,
                    name,
                    running.len() + automated,
                ));
            }
            let mut state = self.state.lock().unwrap();
            let selected = Self::resolve_indices(&state.indices, &expressions, ignore_unavailable)?;
            let mut captured = Vec::new();
            for index_name in &selected {
                let index = state
                    .indices
                    .get_mut(index_name)
                    .expect("resolved from the same map");
                index.seal();
                captured.push(CapturedIndex {
                    name: index_name.clone(),
                    uuid: index.uuid.clone(),
                    settings: index.settings(index_name),
                    mappings: index.mappings.clone(),
                    shards: index
                        .shards
                        .iter()
                        .map(|shard| shard.segments.clone())
                        .collect(),
                });
            }
            self.save(&state)?;
            drop(state);

            let decided = self.decide_outcome(&captured, partial);
            let started = self.control.now();
            if !decided.never_finishes {
                self.control
                    .expect_end(&uuid, started + self.config.snapshot_duration);
            }
            let (done_sender, done) = watch::channel(None);
            running.push(RunningSnapshot {
                repository: repository_name.to_owned(),
                name: name.to_owned(),
                uuid: uuid.clone(),
                start_millis,
                started,
                indices: selected,
                include_global_state,
                metadata: metadata.clone(),
                shards: captured
                    .iter()
                    .flat_map(|index| {
                        (0..index.shards.len() as u32).map(move |shard| (index.name.clone(), shard))
                    })
                    .collect(),
                plan: None,
                never_finishes: decided.never_finishes,
                task: None,
                done,
            });
            (captured, decided, done_sender)
        };

        // The plan (which files are new) is made before answering, so that `_status` reports
        // incremental and total sizes from the first poll on.
        let failed_shards: BTreeSet<(String, u32)> = decided
            .failures
            .iter()
            .map(|failure| (failure.index.clone(), failure.shard_id))
            .collect();
        let plan = match repository_writer::plan(&store, &captured, &failed_shards).await {
            Ok(plan) => plan,
            Err(error) => {
                self.running
                    .lock()
                    .unwrap()
                    .retain(|running| running.uuid != uuid);
                self.control.ended(&uuid);
                return Err(repository_read_error(repository_name, &error));
            }
        };
        if let Some(entry) = self
            .running
            .lock()
            .unwrap()
            .iter_mut()
            .find(|running| running.uuid == uuid)
        {
            entry.plan = Some(plan.clone());
        }

        let emulator = self.clone();
        let task_uuid = uuid.clone();
        let repository_label = repository_name.to_owned();
        let snapshot_label = name.to_owned();
        let task = tokio::spawn(async move {
            let result = emulator
                .run_snapshot(&store, &task_uuid, captured, plan, decided, include_global_state, metadata, (version_name, version_id))
                .await
                .map_err(|error| {
                    tracing::warn!(repository = %repository_label, %error, "snapshot could not be written");
                    ApiError::opensearch_with(
                        500,
                        "snapshot_exception",
                        format!("[{repository_label}:{snapshot_label}] failed to update snapshot in repository"),
                        Map::new(),
                        Some(json!({"type": "i_o_exception", "reason": error.to_string()})),
                    )
                });
            emulator
                .running
                .lock()
                .unwrap()
                .retain(|running| running.uuid != task_uuid);
            emulator.control.ended(&task_uuid);
            let _ = done_sender.send(Some(result));
        });
        let mut done = {
            let mut running = self.running.lock().unwrap();
            let entry = running.iter_mut().find(|running| running.uuid == uuid);
            match entry {
                Some(entry) => {
                    entry.task = Some(task.abort_handle());
                    entry.done.clone()
                }
                // Already finished (a FAILED snapshot finalises immediately).
                None => {
                    let (sender, receiver) = watch::channel(None);
                    drop(sender);
                    receiver
                }
            }
        };
        if !wait {
            return Reply::ok(json!({"accepted": true}));
        }
        if done.borrow().is_none() {
            let _ = done.changed().await;
        }
        let completion = done.borrow().clone();
        match completion {
            Some(Ok(info)) => Reply::ok(json!({"snapshot": info})),
            Some(Err(error)) => Err(error),
            None => {
                // Finished before we subscribed, or aborted by a delete: read what was stored.
                let (_, data) =
                    repository_writer::read_repository_data(&self.blob_store(&repository))
                        .await
                        .map_err(|error| repository_read_error(repository_name, &error))?;
                let entry = data
                    .snapshot(name)
                    .ok_or_else(|| ApiError::snapshot_missing(repository_name, name))?;
                let info = repository_writer::read_snapshot_info(
                    &self.blob_store(&repository),
                    &entry.uuid,
                )
                .await
                .map_err(|error| repository_read_error(repository_name, &error))?;
                Reply::ok(
                    json!({"snapshot": snapshot_info_json(&info, true, self.config.profile.version())}),
                )
            }
        }
    }

    fn decide_outcome(&self, captured: &[CapturedIndex], partial: bool) -> Decided {
        let red: Vec<&CapturedIndex> = captured
            .iter()
            .filter(|index| self.control.is_red(&index.name))
            .collect();
        let red_failures: Vec<ShardFailure> = red
            .iter()
            .flat_map(|index| {
                (0..index.shards.len() as u32).map(|shard| unallocated(&index.name, shard))
            })
            .collect();
        let mut decided = Decided {
            state: SnapshotState::Success,
            reason: None,
            failures: Vec::new(),
            never_finishes: false,
        };
        match self.control.take_next_snapshot_outcome() {
            Some(SnapshotOutcome::Failed { reason }) => {
                decided.state = SnapshotState::Failed;
                decided.reason = Some(reason);
                return decided;
            }
            Some(SnapshotOutcome::NeverFinishes) => decided.never_finishes = true,
            Some(SnapshotOutcome::Partial) => {
                decided.state = SnapshotState::Partial;
                if let Some(first) = captured.first() {
                    decided.failures.push(unallocated(&first.name, 0));
                }
            }
            None => {}
        }
        if !red.is_empty() {
            if partial {
                decided.state = SnapshotState::Partial;
                decided.failures.extend(red_failures);
            } else {
                let names: Vec<&str> = red.iter().map(|index| index.name.as_str()).collect();
                decided.state = SnapshotState::Failed;
                decided.reason = Some(format!(
                    "Indices don't have primary shards [{}]",
                    names.join(", ")
                ));
                decided.failures = red_failures;
            }
        }
        decided
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_snapshot(
        &self,
        store: &BlobStore,
        uuid: &str,
        captured: Vec<CapturedIndex>,
        plan: SnapshotPlan,
        decided: Decided,
        include_global_state: bool,
        metadata: Option<Map<String, Value>>,
        version: (&str, i64),
    ) -> Result<Value, RepositoryError> {
        let (name, start_millis, started) = {
            let running = self.running.lock().unwrap();
            let entry = running.iter().find(|running| running.uuid == uuid);
            let entry = entry.ok_or_else(|| RepositoryError::MissingBlob("aborted".to_owned()))?;
            (entry.name.clone(), entry.start_millis, entry.started)
        };
        if decided.never_finishes {
            std::future::pending::<()>().await;
        }
        if decided.state != SnapshotState::Failed {
            self.control
                .sleep_until(started + self.config.snapshot_duration)
                .await;
        }
        let total_shards: u32 = captured.iter().map(|index| index.shards.len() as u32).sum();
        let successful_shards = if decided.state == SnapshotState::Failed {
            0
        } else {
            total_shards - decided.failures.len() as u32
        };
        let info = SnapshotInfo {
            name,
            uuid: Some(uuid.to_owned()),
            version_id: Some(version.1),
            indices: captured.iter().map(|index| index.name.clone()).collect(),
            data_streams: Some(Vec::new()),
            state: Some(decided.state.name().to_owned()),
            reason: decided.reason,
            include_global_state: Some(include_global_state),
            metadata,
            start_time: start_millis,
            end_time: self.control.now_millis().max(start_millis + 1),
            total_shards,
            successful_shards,
            failures: decided.failures,
        };
        let cluster_uuid = self.state.lock().unwrap().cluster_uuid.clone();
        repository_writer::finalize(
            store,
            uuid,
            &info,
            &captured,
            &plan,
            &cluster_uuid,
            version.0,
        )
        .await?;
        Ok(snapshot_info_json(
            &info,
            true,
            self.config.profile.version(),
        ))
    }

    // ---- get, status, delete ------------------------------------------------------------------

    async fn get_snapshots(&self, call: &Call, repository_name: &str, expression: &str) -> Handled {
        call.allow_parameters(&[
            "verbose",
            "ignore_unavailable",
            "master_timeout",
            "cluster_manager_timeout",
        ])?;
        self.authorize(call, "cluster:admin/snapshot/get")?;
        let verbose = call.flag("verbose", true)?;
        let ignore_unavailable = call.flag("ignore_unavailable", false)?;
        let version = self.config.profile.version();
        let patterns = split_names(expression);
        let matches = |name: &str| {
            patterns
                .iter()
                .any(|pattern| pattern == "_all" || glob_matches(pattern, name))
        };

        if repository_name == AUTOMATED_REPOSITORY {
            let snapshots: Vec<Value> = self
                .control
                .running_automated_snapshot()
                .filter(|automated| matches(&automated.name) || patterns.iter().any(|pattern| pattern == "_current"))
                .map(|automated| json!({"snapshot": automated.name, "uuid": automated.uuid, "indices": [], "data_streams": [], "state": "IN_PROGRESS", "start_time_in_millis": automated.started_epoch_millis}))
                .into_iter()
                .collect();
            return Reply::ok(json!({"snapshots": snapshots}));
        }
        let repository = self.repository(repository_name)?;
        // Running snapshots are listed before the repository is read: a snapshot is removed from
        // the running list only after its index-N is written, so none can fall between the two.
        let running: Vec<(String, i64, Value)> = self
            .running
            .lock()
            .unwrap()
            .iter()
            .filter(|snapshot| snapshot.repository == repository_name)
            .filter(|snapshot| {
                matches(&snapshot.name) || patterns.iter().any(|pattern| pattern == "_current")
            })
            .map(|snapshot| {
                (
                    snapshot.name.clone(),
                    snapshot.start_millis,
                    snapshot_info_json(&snapshot.info(version.1), verbose, version),
                )
            })
            .collect();
        let store = self.blob_store(&repository);
        let (_, data) = repository_writer::read_repository_data(&store)
            .await
            .map_err(|error| repository_read_error(repository_name, &error))?;

        // A snapshot still in the running list is IN_PROGRESS even once its index-N is written,
        // as the server answers from the cluster state's in-progress entries first: whoever sees
        // it ended may start the next one.
        let mut found: Vec<(i64, Value)> = Vec::new();
        let mut seen = BTreeSet::new();
        for (name, start_millis, info) in running {
            if seen.insert(name) {
                found.push((start_millis, info));
            }
        }
        for entry in &data.snapshots {
            if !matches(&entry.name) || !seen.insert(entry.name.clone()) {
                continue;
            }
            if verbose {
                let info = match repository_writer::read_snapshot_info(&store, &entry.uuid).await {
                    Ok(info) => info,
                    // The server logs and skips a snapshot it cannot read when asked to.
                    Err(_) if ignore_unavailable => continue,
                    Err(error) => {
                        return Err(ApiError::opensearch(
                            500,
                            "snapshot_exception",
                            format!(
                                "[{repository_name}:{}] Snapshot could not be read: {error}",
                                entry.name
                            ),
                        ))
                    }
                };
                found.push((info.start_time, snapshot_info_json(&info, true, version)));
            } else {
                found.push((0, self.non_verbose(&data, entry)));
            }
        }
        if !ignore_unavailable {
            for pattern in &patterns {
                let is_exact = !pattern.contains('*') && pattern != "_all" && pattern != "_current";
                if is_exact && !seen.contains(pattern) {
                    return Err(ApiError::snapshot_missing(repository_name, pattern));
                }
            }
        }
        found.sort_by_key(|(start, _)| *start);
        Reply::ok(
            json!({"snapshots": found.into_iter().map(|(_, value)| value).collect::<Vec<_>>()}),
        )
    }

    fn non_verbose(
        &self,
        data: &ossnap_repository::RepositoryData,
        entry: &SnapshotEntry,
    ) -> Value {
        let mut indices: Vec<&str> = data
            .indices_of(&entry.uuid)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        indices.sort();
        let state = entry
            .snapshot_state()
            .ok()
            .flatten()
            .map(SnapshotState::name);
        json!({"snapshot": entry.name, "uuid": entry.uuid, "indices": indices, "data_streams": [], "state": state})
    }

    async fn status(
        &self,
        call: &Call,
        repository: Option<&str>,
        expression: Option<&str>,
    ) -> Handled {
        call.allow_parameters(&[
            "ignore_unavailable",
            "master_timeout",
            "cluster_manager_timeout",
        ])?;
        self.authorize(call, "cluster:admin/snapshot/status")?;
        let duration = self.config.snapshot_duration;
        let Some(expression) = expression else {
            if let Some(repository) = repository {
                if repository != AUTOMATED_REPOSITORY && repository != "_all" {
                    self.repository(repository)?;
                }
            }
            let mut snapshots: Vec<Value> = self
                .running
                .lock()
                .unwrap()
                .iter()
                .filter(|running| {
                    repository.is_none_or(|name| name == "_all" || running.repository == name)
                })
                .map(|running| running.status_json(duration, self.control.now()))
                .collect();
            if repository.is_none_or(|name| name == AUTOMATED_REPOSITORY || name == "_all") {
                if let Some(automated) = self.control.running_automated_snapshot() {
                    let elapsed = (self.control.now() - automated.started).as_millis() as i64;
                    snapshots.push(json!({
                        "snapshot": automated.name, "repository": AUTOMATED_REPOSITORY, "uuid": automated.uuid,
                        "state": "STARTED", "include_global_state": true,
                        "shards_stats": shards_stats(0, 0, 0, 0),
                        "stats": StatsAccumulator::default().to_json(automated.started_epoch_millis, elapsed, true),
                        "indices": {}
                    }));
                }
            }
            return Reply::ok(json!({"snapshots": snapshots}));
        };
        let repository_name = repository.unwrap_or_default();
        let ignore_unavailable = call.flag("ignore_unavailable", false)?;
        let config = self.repository(repository_name)?;
        let names = split_names(expression);
        let mut snapshots = Vec::new();
        let store = self.blob_store(&config);
        let mut data = None;
        for name in &names {
            let running = self
                .running
                .lock()
                .unwrap()
                .iter()
                .find(|running| running.repository == repository_name && &running.name == name)
                .map(|running| running.status_json(duration, self.control.now()));
            if let Some(status) = running {
                snapshots.push(status);
                continue;
            }
            if data.is_none() {
                data = Some(
                    repository_writer::read_repository_data(&store)
                        .await
                        .map_err(|error| repository_read_error(repository_name, &error))?
                        .1,
                );
            }
            let repository_data = data.as_ref().expect("just read");
            let Some(entry) = repository_data.snapshot(name) else {
                if ignore_unavailable {
                    continue;
                }
                return Err(ApiError::snapshot_missing(repository_name, name));
            };
            snapshots.push(
                self.finished_status(&store, repository_name, repository_data, entry)
                    .await?,
            );
        }
        Reply::ok(json!({"snapshots": snapshots}))
    }

    /// Status of a finished snapshot, read from its shard files (the costly path the docs warn
    /// about).
    async fn finished_status(
        &self,
        store: &BlobStore,
        repository_name: &str,
        data: &ossnap_repository::RepositoryData,
        entry: &SnapshotEntry,
    ) -> Result<Value, ApiError> {
        let read_error = |error: RepositoryError| {
            ApiError::opensearch(
                500,
                "snapshot_exception",
                format!("[{repository_name}:{}] {error}", entry.name),
            )
        };
        let info = repository_writer::read_snapshot_info(store, &entry.uuid)
            .await
            .map_err(read_error)?;
        let shard_snapshots = repository_writer::read_shard_snapshots_of(store, data, entry)
            .await
            .map_err(read_error)?;
        let state = match info.snapshot_state().ok().flatten() {
            Some(SnapshotState::Failed) => "FAILED",
            _ => "SUCCESS",
        };
        let mut totals = StatsAccumulator::default();
        let mut indices = Map::new();
        for (index, shard, snapshot) in &shard_snapshots {
            let stats = StatsAccumulator {
                incremental: (snapshot.incremental_file_count, snapshot.incremental_size),
                processed: (snapshot.incremental_file_count, snapshot.incremental_size),
                total: (
                    snapshot.files.len() as u64,
                    snapshot.files.iter().map(|file| file.length).sum(),
                ),
            };
            totals.add(&stats);
            let entry = indices
                .entry(index.clone())
                .or_insert_with(|| json!({"shards": {}}));
            entry["shards"][shard.to_string()] = json!({"stage": "DONE", "stats": stats.to_json(snapshot.start_time, snapshot.time, false)});
        }
        let duration = info.end_time - info.start_time;
        let indices: Map<String, Value> = indices
            .into_iter()
            .map(|(name, entry)| {
                let shards = entry["shards"].as_object().cloned().unwrap_or_default();
                let mut accumulator = StatsAccumulator::default();
                for shard in shards.values() {
                    accumulator.add(&StatsAccumulator::from_json(&shard["stats"]));
                }
                let count = shards.len() as u64;
                (
                    name,
                    json!({"shards_stats": shards_stats(0, 0, count, 0), "stats": accumulator.to_json(info.start_time, duration, false), "shards": shards}),
                )
            })
            .collect();
        Ok(json!({
            "snapshot": info.name,
            "repository": repository_name,
            "uuid": entry.uuid,
            "state": state,
            "include_global_state": info.include_global_state.unwrap_or(true),
            "shards_stats": shards_stats(0, 0, shard_snapshots.len() as u64, u64::from(info.total_shards - info.successful_shards)),
            "stats": totals.to_json(info.start_time, duration, false),
            "indices": indices
        }))
    }

    async fn delete_snapshots(
        &self,
        call: &Call,
        repository_name: &str,
        expression: &str,
    ) -> Handled {
        call.allow_parameters(&["master_timeout", "cluster_manager_timeout"])?;
        self.authorize(call, "cluster:admin/snapshot/delete")?;
        let config = self.repository(repository_name)?;
        if config.setting_bool("readonly") {
            return Err(ApiError::repository_exception(
                repository_name,
                "cannot delete snapshot from a readonly repository",
            ));
        }
        // Before ES 7.8 the whole expression is one name (`a,b` matches nothing).
        let patterns = if self.config.profile.deletes_name_lists() {
            split_names(expression)
        } else {
            vec![expression.to_owned()]
        };
        let matches = |name: &str| {
            patterns
                .iter()
                .any(|pattern| pattern == "_all" || glob_matches(pattern, name))
        };
        let mut matched = BTreeSet::new();
        // Deleting a running snapshot aborts it; nothing of it has been finalised yet.
        {
            let mut running = self.running.lock().unwrap();
            running.retain(|snapshot| {
                if snapshot.repository == repository_name && matches(&snapshot.name) {
                    matched.insert(snapshot.name.clone());
                    if let Some(task) = &snapshot.task {
                        task.abort();
                    }
                    self.control.ended(&snapshot.uuid);
                    false
                } else {
                    true
                }
            });
        }
        let store = self.blob_store(&config);
        let (_, data) = repository_writer::read_repository_data(&store)
            .await
            .map_err(|error| repository_read_error(repository_name, &error))?;
        let finished: Vec<String> = data
            .snapshots
            .iter()
            .filter(|entry| matches(&entry.name))
            .map(|entry| entry.name.clone())
            .collect();
        matched.extend(finished.iter().cloned());
        for pattern in &patterns {
            if !pattern.contains('*') && pattern != "_all" && !matched.contains(pattern) {
                return Err(ApiError::snapshot_missing(repository_name, pattern));
            }
        }
        if !finished.is_empty() {
            repository_writer::delete_snapshots(&store, &finished)
                .await
                .map_err(|error| repository_write_error(repository_name, &error))?;
        }
        Reply::acknowledged()
    }

    // ---- restore ------------------------------------------------------------------------------

    async fn restore(&self, call: &Call, repository_name: &str, name: &str) -> Handled {
        call.allow_parameters(&[
            "wait_for_completion",
            "master_timeout",
            "cluster_manager_timeout",
        ])?;
        self.authorize(call, "cluster:admin/snapshot/restore")?;
        let wait = call.flag("wait_for_completion", false)?;
        let body = call.json()?.unwrap_or_else(|| json!({}));
        let Value::Object(body) = body else {
            return Err(ApiError::parse("Failed to parse content to map"));
        };
        let mut expressions = Vec::new();
        let mut ignore_unavailable = false;
        let mut rename: (Option<String>, Option<String>) = (None, None);
        let mut index_settings = Map::new();
        for (key, value) in &body {
            match key.as_str() {
                "indices" => expressions = Self::indices_field(value)?,
                "ignore_unavailable" => ignore_unavailable = Self::bool_field(value)?,
                "include_global_state" | "include_aliases" | "partial" => {
                    Self::bool_field(value)?;
                }
                "rename_alias_pattern" | "rename_alias_replacement" => {}
                "rename_pattern" => rename.0 = value.as_str().map(str::to_owned),
                "rename_replacement" => rename.1 = value.as_str().map(str::to_owned),
                "index_settings" => {
                    index_settings = flat_settings(value).ok_or_else(|| {
                        ApiError::illegal_argument("malformed index_settings section")
                    })?
                }
                "ignore_index_settings"
                | "expand_wildcards"
                | "allow_no_indices"
                | "storage_type"
                | "source_remote_store_repository" => {}
                other => {
                    return Err(ApiError::illegal_argument(format!(
                        "Unknown parameter {other}"
                    )))
                }
            }
        }
        let config = self.repository(repository_name)?;
        let store = self.blob_store(&config);
        let (_, data) = repository_writer::read_repository_data(&store)
            .await
            .map_err(|error| repository_read_error(repository_name, &error))?;
        let entry = data
            .snapshot(name)
            .cloned()
            .ok_or_else(|| ApiError::snapshot_missing(repository_name, name))?;
        let restore_error = |reason: String| {
            ApiError::opensearch(
                500,
                "snapshot_restore_exception",
                format!("[{repository_name}:{name}] {reason}"),
            )
        };
        let state = entry
            .snapshot_state()
            .ok()
            .flatten()
            .unwrap_or(SnapshotState::Success);
        if !state.restorable() {
            return Err(restore_error(format!(
                "unsupported snapshot state [{}]",
                state.name()
            )));
        }
        let (node_version, _) = self.config.profile.version();
        if let Some(written_by) = entry.version.as_deref() {
            if version_key(written_by) > version_key(node_version) {
                return Err(ApiError::opensearch(
                    500,
                    "snapshot_restore_exception",
                    format!("[{repository_name}:{name}/{}] the snapshot was created with OpenSearch version [{written_by}] which is higher than the version of this node [{node_version}]", entry.uuid),
                ));
            }
        }
        let available: std::collections::BTreeMap<String, IndexState> = data
            .indices_of(&entry.uuid)
            .into_iter()
            .map(|(index, _)| {
                (
                    index.to_owned(),
                    IndexState::new(String::new(), 0, 1, 0, Value::Null),
                )
            })
            .collect();
        let selected = Self::resolve_indices(&available, &expressions, ignore_unavailable)
            .map_err(|_| {
                let missing = expressions
                    .iter()
                    .find(|expression| {
                        !expression.contains('*')
                            && !expression.starts_with('-')
                            && !available.contains_key(*expression)
                    })
                    .cloned()
                    .unwrap_or_default();
                restore_error(format!("indices [{missing}] missing"))
            })?;
        let pattern = match &rename.0 {
            Some(pattern) => Some(regex_lite::Regex::new(pattern).map_err(|error| {
                ApiError::illegal_argument(format!("Invalid rename_pattern: {error}"))
            })?),
            None => None,
        };
        let targets: Vec<(String, String)> = selected
            .iter()
            .map(|source| {
                let target = match (&pattern, &rename.1) {
                    (Some(pattern), Some(replacement)) => pattern
                        .replace_all(source, replacement.as_str())
                        .into_owned(),
                    _ => source.clone(),
                };
                (source.clone(), target)
            })
            .collect();
        {
            let state = self.state.lock().unwrap();
            for (_, target) in &targets {
                if state.indices.contains_key(target) {
                    return Err(ApiError::opensearch(
                        500,
                        "snapshot_restore_exception",
                        format!("[{repository_name}:{name}/{}] cannot restore index [{target}] because an open index with same name already exists in the cluster. Either close or delete the existing index or restore the index under a different name by providing a rename pattern and replacement name", entry.uuid),
                    ));
                }
            }
        }
        let mut restored = Vec::new();
        for (source, target) in &targets {
            let index = repository_writer::restore_index(&store, &data, &entry, source)
                .await
                .map_err(|error| restore_error(error.to_string()))?;
            restored.push((target.clone(), index));
        }
        // index_settings override what the snapshot's index metadata says.
        let replicas_override = match index_settings.get("index.number_of_replicas") {
            None => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
                    .ok_or_else(|| {
                        ApiError::illegal_argument(format!(
                            "Failed to parse value [{value}] for setting [index.number_of_replicas]"
                        ))
                    })? as u32,
            ),
        };
        let replicas_of = |index: &repository_writer::RestoredIndex| {
            replicas_override.or(index.number_of_replicas).unwrap_or(1)
        };
        let required_node = index_settings
            .get("index.routing.allocation.require._name")
            .and_then(Value::as_str)
            .filter(|node| *node != crate::opensearch::NODE_NAME)
            .map(str::to_owned);
        let started = now_millis();
        let duration_millis = if wait {
            0
        } else {
            self.config.snapshot_duration.as_millis() as i64
        };
        let mut total_shards = 0;
        {
            let mut state = self.state.lock().unwrap();
            let adding: u64 = restored
                .iter()
                .map(|(_, index)| {
                    u64::from(index.number_of_shards) * u64::from(1 + replicas_of(index))
                })
                .sum();
            self.check_shard_limit(&state, adding)?;
            for (target, restored_index) in restored {
                let mut index = IndexState::new(
                    random_base64_uuid(),
                    started,
                    restored_index.number_of_shards,
                    replicas_of(&restored_index),
                    restored_index.mappings,
                );
                index.recovery = Some(Recovery {
                    repository: repository_name.to_owned(),
                    snapshot: name.to_owned(),
                    started_millis: started,
                    duration_millis,
                    shards: restored_index.shard_sizes,
                    required_node: required_node.clone(),
                });
                for (id, source) in restored_index.documents {
                    index.index_document(id, source);
                }
                index.seal();
                index.index_total = 0;
                total_shards += restored_index.number_of_shards;
                state.indices.insert(target, index);
            }
            self.save(&state)?;
        }
        if wait {
            let indices: Vec<&String> = targets.iter().map(|(_, target)| target).collect();
            Reply::ok(
                json!({"snapshot": {"snapshot": name, "indices": indices, "shards": {"total": total_shards, "failed": 0, "successful": total_shards}}}),
            )
        } else {
            Reply::ok(json!({"accepted": true}))
        }
    }

    // ---- clone --------------------------------------------------------------------------------

    async fn clone_snapshot(
        &self,
        call: &Call,
        repository_name: &str,
        source: &str,
        target: &str,
    ) -> Handled {
        call.allow_parameters(&["master_timeout", "cluster_manager_timeout"])?;
        self.authorize(call, "cluster:admin/snapshot/clone")?;
        let body = call.required_json()?;
        let expressions = match body.get("indices") {
            Some(value) => Self::indices_field(value)?,
            None => {
                return Err(ApiError::opensearch(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: indices patterns are empty;",
                ))
            }
        };
        let config = self.repository(repository_name)?;
        validate_snapshot_name(repository_name, target)?;
        if config.setting_bool("readonly") {
            return Err(ApiError::repository_exception(
                repository_name,
                "cannot create snapshot in a readonly repository",
            ));
        }
        if !self.running.lock().unwrap().is_empty() {
            let running = self.running.lock().unwrap().len();
            return Err(ApiError::concurrent_snapshot(
                self.config.profile,
                repository_name,
                target,
                running,
            ));
        }
        let store = self.blob_store(&config);
        let (_, data) = repository_writer::read_repository_data(&store)
            .await
            .map_err(|error| repository_read_error(repository_name, &error))?;
        let source_entry = data
            .snapshot(source)
            .cloned()
            .ok_or_else(|| ApiError::snapshot_missing(repository_name, source))?;
        if data.snapshot(target).is_some() {
            return Err(ApiError::invalid_snapshot_name(
                repository_name,
                target,
                "snapshot with the same name already exists",
            ));
        }
        let available: std::collections::BTreeMap<String, IndexState> = data
            .indices_of(&source_entry.uuid)
            .into_iter()
            .map(|(index, _)| {
                (
                    index.to_owned(),
                    IndexState::new(String::new(), 0, 1, 0, Value::Null),
                )
            })
            .collect();
        let selected = Self::resolve_indices(&available, &expressions, true)?;
        repository_writer::clone_snapshot(
            &store,
            &source_entry,
            target,
            &random_base64_uuid(),
            &selected,
            now_millis(),
            self.config.profile.version(),
        )
        .await
        .map_err(|error| repository_write_error(repository_name, &error))?;
        Reply::acknowledged()
    }

    fn cat_repositories(&self, call: &Call) -> Handled {
        call.allow_parameters(&[
            "format",
            "v",
            "h",
            "s",
            "help",
            "local",
            "master_timeout",
            "cluster_manager_timeout",
        ])?;
        self.authorize(call, "cluster:admin/repository/get")?;
        let state = self.state.lock().unwrap();
        if call.query.get("format").map(String::as_str) == Some("json") {
            let rows: Vec<Value> = state
                .repositories
                .iter()
                .map(|(name, config)| json!({"id": name, "type": config.repository_type}))
                .collect();
            return Reply::ok(Value::Array(rows));
        }
        let mut text = String::new();
        if call.flag("v", false)? {
            text.push_str("id type\n");
        }
        for (name, config) in &state.repositories {
            text.push_str(&format!("{name} {}\n", config.repository_type));
        }
        Ok(Reply {
            status: 200,
            body: Body::Text(text),
        })
    }

    // ---- _cat ---------------------------------------------------------------------------------

    async fn cat_snapshots(&self, call: &Call, repository_name: &str) -> Handled {
        call.allow_parameters(&[
            "repository",
            "format",
            "v",
            "h",
            "s",
            "help",
            "time",
            "ignore_unavailable",
            "master_timeout",
            "cluster_manager_timeout",
        ])?;
        self.authorize(call, "cluster:admin/snapshot/get")?;
        if repository_name.is_empty() {
            return Err(ApiError::opensearch(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: repository is missing;",
            ));
        }
        let config = self.repository(repository_name)?;
        let store = self.blob_store(&config);
        let (_, data) = repository_writer::read_repository_data(&store)
            .await
            .map_err(|error| repository_read_error(repository_name, &error))?;
        let mut rows: Vec<Vec<(&'static str, String)>> = Vec::new();
        for entry in &data.snapshots {
            let info = repository_writer::read_snapshot_info(&store, &entry.uuid)
                .await
                .map_err(|error| repository_read_error(repository_name, &error))?;
            rows.push(cat_row(&info));
        }
        for running in self
            .running
            .lock()
            .unwrap()
            .iter()
            .filter(|running| running.repository == repository_name)
        {
            rows.push(cat_row(&running.info(0)));
        }
        if call.query.get("format").map(String::as_str) == Some("json") {
            let rows: Vec<Value> = rows
                .into_iter()
                .map(|row| {
                    Value::Object(
                        row.into_iter()
                            .map(|(key, value)| (key.to_owned(), Value::String(value)))
                            .collect(),
                    )
                })
                .collect();
            return Reply::ok(Value::Array(rows));
        }
        let mut table: Vec<Vec<String>> = Vec::new();
        if call.flag("v", false)? {
            if let Some(first) = rows.first() {
                table.push(first.iter().map(|(key, _)| (*key).to_owned()).collect());
            } else {
                table.push(CAT_COLUMNS.iter().map(|key| (*key).to_owned()).collect());
            }
        }
        table.extend(
            rows.into_iter()
                .map(|row| row.into_iter().map(|(_, value)| value).collect()),
        );
        let widths: Vec<usize> = (0..CAT_COLUMNS.len())
            .map(|column| table.iter().map(|row| row[column].len()).max().unwrap_or(0))
            .collect();
        let text: String = table
            .iter()
            .map(|row| {
                let cells: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(cell, width)| format!("{cell:<width$}"))
                    .collect();
                format!("{}\n", cells.join(" ").trim_end())
            })
            .collect();
        Ok(Reply {
            status: 200,
            body: Body::Text(text),
        })
    }
}

const CAT_COLUMNS: [&str; 11] = [
    "id",
    "status",
    "start_epoch",
    "start_time",
    "end_epoch",
    "end_time",
    "duration",
    "indices",
    "successful_shards",
    "failed_shards",
    "total_shards",
];

fn cat_row(info: &SnapshotInfo) -> Vec<(&'static str, String)> {
    let clock = |millis: i64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .map(|moment| {
                format!(
                    "{:02}:{:02}:{:02}",
                    moment.hour(),
                    moment.minute(),
                    moment.second()
                )
            })
            .unwrap_or_default()
    };
    let end = if info.end_time == 0 {
        now_millis()
    } else {
        info.end_time
    };
    let duration_millis = end - info.start_time;
    let duration = if duration_millis < 1000 {
        format!("{duration_millis}ms")
    } else {
        let seconds = format!("{:.1}", duration_millis as f64 / 1000.0);
        format!("{}s", seconds.trim_end_matches(".0"))
    };
    let values = [
        info.name.clone(),
        info.state.clone().unwrap_or_default(),
        (info.start_time / 1000).to_string(),
        clock(info.start_time),
        (end / 1000).to_string(),
        clock(end),
        duration,
        info.indices.len().to_string(),
        info.successful_shards.to_string(),
        (info.total_shards - info.successful_shards).to_string(),
        info.total_shards.to_string(),
    ];
    CAT_COLUMNS.into_iter().zip(values).collect()
}

/// Index settings as a flat map (`{"index": {"x": 1}}` and `{"index.x": 1}` alike, with the
/// `index.` prefix), or `None` when they are not an object.
fn flat_settings(value: &Value) -> Option<Map<String, Value>> {
    fn flatten(prefix: &str, value: &Value, out: &mut Map<String, Value>) {
        match value {
            Value::Object(object) => {
                for (key, child) in object {
                    let key = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    flatten(&key, child, out);
                }
            }
            other => {
                let key = if prefix.starts_with("index.") {
                    prefix.to_owned()
                } else {
                    format!("index.{prefix}")
                };
                out.insert(key, other.clone());
            }
        }
    }
    value.as_object()?;
    let mut out = Map::new();
    flatten("", value, &mut out);
    Some(out)
}

/// The text of an OpenSearch version id (an Elasticsearch-style id with bit 27 set).
fn version_text(id: i64) -> String {
    let number = id & !0x0800_0000;
    format!(
        "{}.{}.{}",
        number / 1_000_000,
        (number / 10_000) % 100,
        (number / 100) % 100
    )
}

/// `major.minor.patch` as numbers, for ordering versions.
fn version_key(version: &str) -> Vec<u32> {
    version
        .split(['.', '-'])
        .map_while(|part| part.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_take_their_share_of_the_bytes_in_time() {
        // A heavy shard first: at half time it is not done, and the bytes processed are half.
        let shards = sequential_progress(0.5, &[68, 32]);
        assert!((shards[0] - 50.0 / 68.0).abs() < 1e-9, "{shards:?}");
        assert_eq!(shards[1], 0.0);
        // A light one first is done early, the heavy one takes the rest.
        let shards = sequential_progress(0.5, &[32, 68]);
        assert_eq!(shards[0], 1.0);
        assert!((shards[1] - 18.0 / 68.0).abs() < 1e-9, "{shards:?}");
        // Nothing new to upload: done as soon as the shards before it are.
        assert_eq!(sequential_progress(0.0, &[0, 10, 0]), vec![1.0, 0.0, 0.0]);
        assert_eq!(sequential_progress(0.5, &[0, 10, 0]), vec![1.0, 0.5, 0.0]);
        assert_eq!(sequential_progress(1.0, &[0, 10, 0]), vec![1.0, 1.0, 1.0]);
        // Without sizes, equal shares.
        assert_eq!(
            sequential_progress(0.5, &[0, 0, 0, 0]),
            vec![1.0, 1.0, 0.0, 0.0]
        );
    }

    #[test]
    fn snapshot_names_are_validated_in_server_order() {
        let reason = |name: &str| {
            validate_snapshot_name("r", name)
                .err()
                .map(|error| error.body["error"]["reason"].as_str().unwrap().to_owned())
        };
        assert_eq!(
            reason("a b,"),
            Some("[r:a b,] Invalid snapshot name [a b,], must not contain whitespace".to_owned())
        );
        assert_eq!(
            reason("_x").unwrap(),
            "[r:_x] Invalid snapshot name [_x], must not start with '_'"
        );
        assert_eq!(
            reason("Upper").unwrap(),
            "[r:Upper] Invalid snapshot name [Upper], must be lowercase"
        );
        assert!(reason("a/b").unwrap().ends_with(
            "must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?]"
        ));
        assert_eq!(reason("-leading-dash-is-allowed"), None);
        assert_eq!(
            reason(""),
            Some("[r:] Invalid snapshot name [], cannot be empty".to_owned())
        );
    }

    #[test]
    fn globs_match_like_simple_match() {
        assert!(glob_matches("snap-*", "snap-1"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*c*e", "abcde"));
        assert!(!glob_matches("a*c", "abcd"));
    }
}
