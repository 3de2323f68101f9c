//! `restore`: brings a snapshot back, after a plan that refuses what would fail or do harm.
//!
//! The plan, made before any change (a `dry_run` returns only the plan):
//! - the indices: those asked for (default every index of the snapshot), never the security
//!   index, and no dot-prefixed (system) index unless a name or pattern starting with `.` asks
//!   for it; their names after `rename_pattern`/`rename_replacement`;
//! - conflicts: an open index with a target's name is a `RestoreConflict` naming each index and
//!   the three fixes;
//! - versions: a snapshot newer than the cluster, or older than the cluster's minimum index
//!   compatibility version, is an `IncompatibleVersion`;
//! - capacity: the shards to add against `cluster.max_shards_per_node` × data nodes, and the
//!   snapshot's bytes against the disk left below the low watermark, else `InsufficientCapacity`.
//!
//! Then `POST _snapshot/<repo>/<snap>/_restore?wait_for_completion=false`, always with
//! `include_global_state: false`. `check-restore` follows the recovery.

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::function::{prepare, Deps};
use crate::names;
use crate::opensearch::{model, CatAllocation, VersionedSnapshot};
use crate::retention::taken_at;
use crate::snapshot::{OSSNAP, TAKEN_BY};
use crate::status::MIN_WAIT_SECONDS;

/// The index the security plugin keeps its configuration in: restoring it needs the admin
/// certificate (`securityadmin`), and overwriting it would lock everyone out.
pub const SECURITY_INDEX: &str = ".opendistro_security";
/// `snapshot: "latest"` is the newest healthy snapshot ossnap took.
pub const LATEST: &str = "latest";
/// How many of the newest SUCCESS snapshots with ossnap's names `latest` reads before it gives up.
const LATEST_CANDIDATES: usize = 10;
/// OpenSearch's default `cluster.max_shards_per_node`.
pub const DEFAULT_MAX_SHARDS_PER_NODE: u64 = 1000;
/// OpenSearch's default `cluster.routing.allocation.disk.watermark.low`: above it, a node takes
/// no restored shard.
pub const DEFAULT_LOW_WATERMARK: &str = "85%";
/// What OpenSearch gives an index that does not say (the snapshot's own setting is not visible
/// before the restore, so the shard count assumes it unless `index_settings` sets another).
pub const DEFAULT_REPLICAS: u64 = 1;

/// `indices` as a comma-separated string or a list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum IndexList {
    One(String),
    Many(Vec<String>),
}

impl IndexList {
    pub fn patterns(&self) -> Vec<String> {
        let parts: Vec<&str> = match self {
            IndexList::One(text) => text.split(',').collect(),
            IndexList::Many(items) => items.iter().map(String::as_str).collect(),
        };
        parts
            .into_iter()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreInput {
    pub repository: Option<String>,
    /// A snapshot name, or `"latest"` (default): the newest healthy snapshot ossnap took.
    pub snapshot: Option<String>,
    /// Names or `*` patterns (default: every index of the snapshot but system ones).
    pub indices: Option<IndexList>,
    pub rename_pattern: Option<String>,
    pub rename_replacement: Option<String>,
    /// Default true.
    pub include_aliases: Option<bool>,
    pub index_settings: Option<Map<String, Value>>,
    pub ignore_index_settings: Option<Vec<String>>,
    /// Default false: a restore of shards that were not snapshotted is refused.
    #[serde(default)]
    pub partial: bool,
    /// Only plan.
    #[serde(default)]
    pub dry_run: bool,
    /// The restore drill of the snapshot workflow (see [`crate::drill`]).
    #[serde(default)]
    pub drill: bool,
}

/// One index of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedIndex {
    pub index: String,
    /// Its name once restored.
    pub restored_as: String,
    pub primaries: u64,
    pub bytes: u64,
}

/// An index of the snapshot the plan leaves out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Excluded {
    pub index: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capacity {
    pub data_nodes: u64,
    pub shards_open: u64,
    pub shards_to_add: u64,
    pub max_shards: u64,
    pub bytes_to_add: u64,
    /// Bytes the data nodes can take before the low watermark (`None`: not checked).
    pub disk_available_bytes: Option<u64>,
    pub low_watermark: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestorePlan {
    pub repository: String,
    pub snapshot: String,
    pub snapshot_version: Option<String>,
    pub cluster_version: String,
    pub indices: Vec<PlannedIndex>,
    pub excluded: Vec<Excluded>,
    pub include_aliases: bool,
    pub include_global_state: bool,
    pub partial: bool,
    pub capacity: Capacity,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreOutput {
    pub repository: String,
    pub snapshot: String,
    pub dry_run: bool,
    /// The indices as restored (after renaming): `check-restore`'s input.
    pub indices: Vec<String>,
    pub plan: RestorePlan,
    pub wait_seconds: u64,
}

/// What `handle` answers: a restore, or the drill's start.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RestoreAnswer {
    Restore(RestoreOutput),
    Drill(crate::drill::DrillStart),
}

pub async fn handle(deps: &Result<Deps>, event: LambdaEvent<Value>) -> Result<RestoreAnswer> {
    let (deps, invocation, _) = prepare::<_, RestoreInput>(deps, event)?;
    if invocation.input.drill {
        return crate::drill::start(deps, invocation.input)
            .await
            .map(RestoreAnswer::Drill);
    }
    run(deps, invocation.input)
        .await
        .map(RestoreAnswer::Restore)
}

pub async fn run(deps: &Deps, input: RestoreInput) -> Result<RestoreOutput> {
    let plan = plan(deps, &input).await?;
    let indices: Vec<String> = plan.indices.iter().map(|i| i.restored_as.clone()).collect();
    if input.dry_run {
        tracing::info!(
            repository = plan.repository,
            snapshot = plan.snapshot,
            ?indices,
            "dry run: nothing restored"
        );
        return Ok(RestoreOutput {
            repository: plan.repository.clone(),
            snapshot: plan.snapshot.clone(),
            dry_run: true,
            indices,
            plan,
            wait_seconds: 0,
        });
    }
    start(deps, &input, &plan).await?;
    Ok(RestoreOutput {
        repository: plan.repository.clone(),
        snapshot: plan.snapshot.clone(),
        dry_run: false,
        indices,
        plan,
        wait_seconds: MIN_WAIT_SECONDS,
    })
}

/// Sends the restore the plan describes. A lost answer is reconciled by looking for the
/// restored indices, never by sending it again (a second one would conflict with the first).
pub async fn start(deps: &Deps, input: &RestoreInput, plan: &RestorePlan) -> Result<()> {
    let sources: Vec<&str> = plan.indices.iter().map(|i| i.index.as_str()).collect();
    let mut body = json!({
        "indices": sources.join(","),
        "ignore_unavailable": false,
        "include_global_state": false,
        "include_aliases": plan.include_aliases,
        "partial": plan.partial,
    });
    if let (Some(pattern), Some(replacement)) = (&input.rename_pattern, &input.rename_replacement) {
        body["rename_pattern"] = json!(pattern);
        body["rename_replacement"] = json!(replacement);
    }
    if let Some(settings) = &input.index_settings {
        body["index_settings"] = Value::Object(settings.clone());
    }
    if let Some(ignored) = &input.ignore_index_settings {
        body["ignore_index_settings"] = json!(ignored.join(","));
    }
    match deps
        .opensearch
        .restore_snapshot(&plan.repository, &plan.snapshot, &body)
        .await
    {
        Ok(()) => {}
        Err(error) if error.kind() == ErrorKind::Unavailable => {
            let existing = deps.opensearch.cat_indices().await?;
            let all_there = plan
                .indices
                .iter()
                .all(|i| existing.iter().any(|e| e.index == i.restored_as));
            if !all_there {
                return Err(error);
            }
            tracing::warn!(error = %error, "no answer to the restore, but its indices exist: it started");
        }
        Err(error) => return Err(error),
    }
    tracing::info!(
        repository = plan.repository,
        snapshot = plan.snapshot,
        indices = ?plan.indices.iter().map(|i| &i.restored_as).collect::<Vec<_>>(),
        "restore started"
    );
    Ok(())
}

/// Everything the restore would do, or the refusal that stops it; changes nothing.
pub async fn plan(deps: &Deps, input: &RestoreInput) -> Result<RestorePlan> {
    let os = &deps.opensearch;
    let repository = input
        .repository
        .clone()
        .unwrap_or_else(|| deps.settings.repository.clone());
    names::validate_repository_name(&repository)?;
    let requested = input.snapshot.as_deref().unwrap_or(LATEST);
    let snapshot = find_snapshot(deps, &repository, requested).await?;
    let name = snapshot.info.snapshot.clone();
    let state = snapshot.info.state.clone().unwrap_or_default();
    if state != model::SUCCESS && !(state == "PARTIAL" && input.partial) {
        return Err(Error::config(format!(
            "[{repository}:{name}] is {state}, not SUCCESS: restore another snapshot{}",
            if state == "PARTIAL" {
                ", or set \"partial\": true to restore what it holds"
            } else {
                ""
            }
        )));
    }

    let patterns = input.indices.as_ref().map(IndexList::patterns);
    let (selected, excluded) = select_indices(&snapshot.info.indices, patterns.as_deref())?;
    if selected.is_empty() {
        return Err(Error::config(format!(
            "nothing to restore from [{repository}:{name}]: no index of {:?} is selected (excluded: {})",
            snapshot.info.indices,
            excluded
                .iter()
                .map(|e| format!("{} ({})", e.index, e.reason))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let targets = rename(
        &selected,
        input.rename_pattern.as_deref(),
        input.rename_replacement.as_deref(),
    )?;

    let existing = os.cat_indices().await?;
    let conflicts: Vec<&str> = targets
        .iter()
        .filter(|target| {
            existing
                .iter()
                .any(|e| &e.index == *target && e.status.as_deref() != Some("close"))
        })
        .map(String::as_str)
        .collect();
    if !conflicts.is_empty() {
        return Err(conflict_error(&repository, &name, &conflicts));
    }

    let cluster = os.version().await?;
    check_versions(&snapshot, &cluster)?;

    let sizes = os.snapshot_index_sizes(&repository, &name).await?;
    let replicas = input
        .index_settings
        .as_ref()
        .and_then(|s| {
            s.get("index.number_of_replicas")
                .or_else(|| s.get("number_of_replicas"))
        })
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
        .unwrap_or(DEFAULT_REPLICAS);
    let indices: Vec<PlannedIndex> = selected
        .iter()
        .zip(&targets)
        .map(|(source, target)| {
            let size = sizes.get(source).copied().unwrap_or_default();
            PlannedIndex {
                index: source.clone(),
                restored_as: target.clone(),
                primaries: size.primaries,
                bytes: size.bytes,
            }
        })
        .collect();
    let capacity = capacity(deps, &indices, replicas).await?;
    check_capacity(&capacity, replicas)?;

    Ok(RestorePlan {
        repository,
        snapshot: name,
        snapshot_version: snapshot.version.clone(),
        cluster_version: cluster.number,
        indices,
        excluded,
        include_aliases: input.include_aliases.unwrap_or(true),
        include_global_state: false,
        partial: input.partial,
        capacity,
    })
}

/// The named snapshot, or for `latest` the newest SUCCESS one ossnap took with every shard.
async fn find_snapshot(
    deps: &Deps,
    repository: &str,
    requested: &str,
) -> Result<VersionedSnapshot> {
    if requested != LATEST {
        names::validate_snapshot_name(requested)?;
        return deps
            .opensearch
            .get_versioned_snapshots(repository, &[requested])
            .await?
            .into_iter()
            .find(|s| s.info.snapshot == requested)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::SnapshotMissing,
                    format!("[{repository}:{requested}] is missing: check the snapshot name"),
                )
            });
    }
    // A verbose listing reads every snapshot's metadata from the repository: list names and
    // states, then read ours newest first until a healthy one.
    let prefix = &deps.settings.prefix;
    let mut candidates: Vec<(time::OffsetDateTime, String)> = deps
        .opensearch
        .get_snapshots(repository, &["_all"], false)
        .await?
        .into_iter()
        .filter(|s| s.state.as_deref() == Some(model::SUCCESS))
        .filter_map(|s| Some((taken_at(prefix, &s.snapshot)?, s.snapshot)))
        .collect();
    candidates.sort();
    for (_, name) in candidates.iter().rev().take(LATEST_CANDIDATES) {
        let found = deps
            .opensearch
            .get_versioned_snapshots(repository, &[name])
            .await?
            .into_iter()
            .find(|s| &s.info.snapshot == name && is_healthy_and_ours(&s.info));
        if let Some(snapshot) = found {
            return Ok(snapshot);
        }
    }
    Err(Error::new(
        ErrorKind::SnapshotMissing,
        format!(
            "[{repository}] holds no healthy snapshot taken by ossnap among its newest {LATEST_CANDIDATES} named {prefix}-yyyymmdd-hhmmss: name the snapshot to restore"
        ),
    ))
}

fn is_healthy_and_ours(info: &model::SnapshotInfo) -> bool {
    let shards = info.shards.unwrap_or_default();
    info.state.as_deref() == Some(model::SUCCESS)
        && shards.total > 0
        && shards.failed == 0
        && info
            .metadata
            .as_ref()
            .and_then(|m| m.get(TAKEN_BY))
            .and_then(Value::as_str)
            == Some(OSSNAP)
}

/// `*` matches any run of characters, as OpenSearch's simple patterns do.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The snapshot's indices that `patterns` select (all without patterns), by name, and those
/// left out with the reason. A `-pattern` excludes.
pub fn select_indices(
    available: &[String],
    patterns: Option<&[String]>,
) -> Result<(Vec<String>, Vec<Excluded>)> {
    let default = ["*".to_string()];
    let patterns = patterns.unwrap_or(&default);
    if patterns.iter().any(|p| p == SECURITY_INDEX) {
        return Err(Error::config(format!(
            "{SECURITY_INDEX} is never restored: it holds the security plugin's users and roles, restoring it needs the admin certificate and would replace them; restore the security configuration with securityadmin instead"
        )));
    }
    for pattern in patterns.iter().filter(|p| !p.contains('*')) {
        let name = pattern.trim_start_matches('-');
        if !available.iter().any(|a| a == name) {
            return Err(Error::config(format!(
                "index [{name}] is not in the snapshot, which holds {available:?}: fix \"indices\""
            )));
        }
    }
    let mut selected = Vec::new();
    let mut excluded = Vec::new();
    let mut available = available.to_vec();
    available.sort();
    for index in &available {
        let mut chosen_by: Option<&str> = None;
        for pattern in patterns {
            if let Some(negative) = pattern.strip_prefix('-') {
                if glob_matches(negative, index) {
                    chosen_by = None;
                }
            } else if glob_matches(pattern, index) {
                chosen_by = Some(pattern);
            }
        }
        let reason = if index.starts_with(SECURITY_INDEX) {
            Some("the security index is never restored".to_string())
        } else {
            match chosen_by {
                None => Some("not selected by \"indices\"".to_string()),
                Some(pattern) if index.starts_with('.') && !pattern.starts_with('.') => Some(
                    "a system or plugin index: name it (or a pattern starting with '.') to restore it"
                        .to_string(),
                ),
                Some(_) => None,
            }
        };
        match reason {
            None => selected.push(index.clone()),
            Some(reason) => excluded.push(Excluded {
                index: index.clone(),
                reason,
            }),
        }
    }
    Ok((selected, excluded))
}

/// The names after OpenSearch's renaming (a Java regular expression and its replacement, with
/// `$1` for groups), validated as index names.
pub fn rename(
    sources: &[String],
    pattern: Option<&str>,
    replacement: Option<&str>,
) -> Result<Vec<String>> {
    let targets: Vec<String> = match (pattern, replacement) {
        (None, None) => sources.to_vec(),
        (Some(pattern), Some(replacement)) => {
            let regex = regex_lite::Regex::new(pattern).map_err(|e| {
                Error::config(format!(
                    "rename_pattern {pattern:?} is not a regular expression: {e}"
                ))
            })?;
            sources
                .iter()
                .map(|source| regex.replace_all(source, replacement).into_owned())
                .collect()
        }
        _ => {
            return Err(Error::config(
                "give rename_pattern and rename_replacement together, or neither",
            ))
        }
    };
    for target in &targets {
        names::validate_index_name(target)?;
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(twice) = targets.iter().find(|t| !seen.insert(t.as_str())) {
        return Err(Error::config(format!(
            "two indices would be restored as [{twice}]: change rename_pattern or rename_replacement"
        )));
    }
    Ok(targets)
}

fn conflict_error(repository: &str, snapshot: &str, conflicts: &[&str]) -> Error {
    Error::new(
        ErrorKind::RestoreConflict,
        format!(
            "restoring [{repository}:{snapshot}] would overwrite the open indices [{}]; nothing was changed. Either delete them (DELETE /{}), close them (POST /{}/_close; a closed index is replaced by the restore), or restore under another name, e.g. \"rename_pattern\": \"(.+)\", \"rename_replacement\": \"restored-$1\"",
            conflicts.join(", "),
            conflicts.join(","),
            conflicts.join(","),
        ),
    )
}

/// A version that orders Elasticsearch's (which OpenSearch reads as legacy) before OpenSearch's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub opensearch: bool,
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

/// OpenSearch's version ids are Elasticsearch-style ids with this bit set.
const OPENSEARCH_ID_BIT: i64 = 0x0800_0000;

impl Version {
    /// From a version id (`version_id` of a snapshot).
    pub fn from_id(id: i64) -> Version {
        let opensearch = id & OPENSEARCH_ID_BIT != 0;
        let n = id & !OPENSEARCH_ID_BIT;
        Version {
            opensearch,
            major: (n / 1_000_000) as u32,
            minor: ((n / 10_000) % 100) as u32,
            patch: ((n / 100) % 100) as u32,
        }
    }

    /// From `x.y.z`; Elasticsearch's majors were 5 and above, OpenSearch's are below.
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.split(['.', '-']).map(|p| p.parse::<u32>());
        let major = parts.next()?.ok()?;
        let minor = parts.next().and_then(Result::ok).unwrap_or(0);
        let patch = parts.next().and_then(Result::ok).unwrap_or(0);
        Some(Version {
            opensearch: major < 5,
            major,
            minor,
            patch,
        })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let product = if self.opensearch {
            "OpenSearch"
        } else {
            "Elasticsearch"
        };
        write!(f, "{product} {}.{}.{}", self.major, self.minor, self.patch)
    }
}

fn check_versions(
    snapshot: &VersionedSnapshot,
    cluster: &crate::opensearch::VersionInfo,
) -> Result<()> {
    let written_by = snapshot
        .version_id
        .map(Version::from_id)
        .or_else(|| snapshot.version.as_deref().and_then(Version::parse));
    let (Some(written_by), Some(node)) = (written_by, Version::parse(&cluster.number)) else {
        return Ok(());
    };
    let name = &snapshot.info.snapshot;
    if written_by > node {
        return Err(Error::new(
            ErrorKind::IncompatibleVersion,
            format!(
                "[{name}] was written by {written_by}, newer than this cluster ({node}): a snapshot restores only into its own version or a newer one; restore into a cluster of {written_by} or later"
            ),
        ));
    }
    let oldest = cluster
        .minimum_index_compatibility_version
        .as_deref()
        .and_then(Version::parse);
    if let Some(oldest) = oldest.filter(|oldest| written_by < *oldest) {
        return Err(Error::new(
            ErrorKind::IncompatibleVersion,
            format!(
                "[{name}] was written by {written_by}, and its indices are older than the oldest this cluster ({node}) reads ({oldest}): restore it into a cluster of the previous major version, reindex there, and take a new snapshot"
            ),
        ));
    }
    Ok(())
}

async fn capacity(deps: &Deps, indices: &[PlannedIndex], replicas: u64) -> Result<Capacity> {
    let os = &deps.opensearch;
    let health = os.health_of(&[]).await?;
    let settings = os.cluster_settings().await?;
    let setting = |key: &str| {
        settings.get(key).and_then(|v| match v {
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
    };
    let per_node = setting("cluster.max_shards_per_node")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_SHARDS_PER_NODE);
    let disk_checked =
        setting("cluster.routing.allocation.disk.threshold_enabled").as_deref() != Some("false");
    let watermark = setting("cluster.routing.allocation.disk.watermark.low")
        .unwrap_or_else(|| DEFAULT_LOW_WATERMARK.to_string());
    let disk_available_bytes = if disk_checked {
        disk_below_watermark(&os.cat_allocation().await?, &watermark)
    } else {
        None
    };
    let data_nodes = health.number_of_data_nodes.max(1);
    Ok(Capacity {
        data_nodes,
        shards_open: health.active_shards
            + health.initializing_shards
            + health.relocating_shards
            + health.unassigned_shards,
        shards_to_add: indices.iter().map(|i| i.primaries).sum::<u64>() * (1 + replicas),
        max_shards: per_node * data_nodes,
        bytes_to_add: indices.iter().map(|i| i.bytes).sum::<u64>()
            * (1 + replicas.min(data_nodes - 1)),
        disk_available_bytes,
        low_watermark: watermark,
    })
}

/// A low watermark: a share of the disk used (`85%`, `0.85`), or the free space to keep
/// (`10gb`).
fn parse_watermark(text: &str) -> Option<Result<f64, u64>> {
    let text = text.trim().to_ascii_lowercase();
    if let Some(percent) = text.strip_suffix('%') {
        return percent.trim().parse::<f64>().ok().map(|p| Ok(p / 100.0));
    }
    if let Ok(ratio) = text.parse::<f64>() {
        return Some(Ok(ratio));
    }
    let units = [
        ("tb", 1u64 << 40),
        ("gb", 1 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("b", 1),
    ];
    units.iter().find_map(|(unit, factor)| {
        let number = text.strip_suffix(unit)?.trim().parse::<f64>().ok()?;
        Some(Err((number * *factor as f64) as u64))
    })
}

/// Bytes that can still be written across the data nodes before they pass the low watermark.
fn disk_below_watermark(rows: &[CatAllocation], watermark: &str) -> Option<u64> {
    let watermark = parse_watermark(watermark)?;
    let number = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<u64>().ok());
    let nodes: Vec<(u64, u64)> = rows
        .iter()
        .filter(|r| r.node.as_deref() != Some("UNASSIGNED"))
        .filter_map(|r| Some((number(&r.disk_used)?, number(&r.disk_total)?)))
        .collect();
    if nodes.is_empty() {
        return None;
    }
    Some(
        nodes
            .iter()
            .map(|(used, total)| match watermark {
                Ok(share) => ((*total as f64 * share) as u64).saturating_sub(*used),
                Err(free) => total.saturating_sub(*used).saturating_sub(free),
            })
            .sum(),
    )
}

fn check_capacity(capacity: &Capacity, replicas: u64) -> Result<()> {
    if capacity.shards_open + capacity.shards_to_add > capacity.max_shards {
        return Err(Error::new(
            ErrorKind::InsufficientCapacity,
            format!(
                "the restore would add {} shards (primaries × {} copies) to the {} open, above the cluster's limit of {} (cluster.max_shards_per_node × {} data nodes); nothing was changed: restore fewer indices, set \"index_settings\": {{\"index.number_of_replicas\": 0}}, delete unused indices, add data nodes, or raise cluster.max_shards_per_node",
                capacity.shards_to_add,
                1 + replicas,
                capacity.shards_open,
                capacity.max_shards,
                capacity.data_nodes
            ),
        ));
    }
    if let Some(available) = capacity.disk_available_bytes {
        if capacity.bytes_to_add > available {
            return Err(Error::new(
                ErrorKind::InsufficientCapacity,
                format!(
                    "the restore needs {} bytes of disk, but the data nodes have {available} bytes left below the low watermark ({}, cluster.routing.allocation.disk.watermark.low), above which they take no restored shard; nothing was changed: restore fewer indices, free or add disk, or add data nodes",
                    capacity.bytes_to_add,
                    capacity.low_watermark
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn by_default_system_and_security_indices_stay_out() {
        let available = names(&[
            "logs",
            ".kibana_1",
            ".opendistro_security",
            ".plugins-ml-config",
            "orders",
        ]);
        let (selected, excluded) = select_indices(&available, None).unwrap();
        assert_eq!(selected, ["logs", "orders"]);
        let left_out: Vec<&str> = excluded.iter().map(|e| e.index.as_str()).collect();
        assert_eq!(
            left_out,
            [".kibana_1", ".opendistro_security", ".plugins-ml-config"]
        );
    }

    #[test]
    fn dot_indices_come_back_only_when_asked_for_and_security_never() {
        let available = names(&["logs", ".kibana_1", ".opendistro_security"]);
        let (selected, _) = select_indices(&available, Some(&names(&[".kibana*"]))).unwrap();
        assert_eq!(selected, [".kibana_1"]);
        let (selected, _) = select_indices(&available, Some(&names(&[".*"]))).unwrap();
        assert_eq!(selected, [".kibana_1"]);
        let error =
            select_indices(&available, Some(&names(&[".opendistro_security"]))).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ConfigError);
        assert!(error.message().contains("securityadmin"), "{error}");
    }

    #[test]
    fn patterns_select_and_exclude_and_missing_names_are_named() {
        let available = names(&["logs-1", "logs-2", "orders"]);
        let (selected, _) =
            select_indices(&available, Some(&names(&["logs-*", "-logs-2"]))).unwrap();
        assert_eq!(selected, ["logs-1"]);
        let error = select_indices(&available, Some(&names(&["nope"]))).unwrap_err();
        assert!(error.message().contains("[nope]"), "{error}");
    }

    #[test]
    fn renames_follow_the_pattern_and_refuse_collisions() {
        let sources = names(&["logs-1", "orders"]);
        assert_eq!(
            rename(&sources, Some("(.+)"), Some("restored-$1")).unwrap(),
            ["restored-logs-1", "restored-orders"]
        );
        let error = rename(&sources, Some(".+"), Some("same")).unwrap_err();
        assert!(error.message().contains("[same]"), "{error}");
        let error = rename(&sources, Some("(.+)"), Some("Upper-$1")).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ConfigError);
        assert!(rename(&sources, Some("x"), None).is_err());
    }

    #[test]
    fn versions_order_elasticsearch_before_opensearch() {
        assert_eq!(
            Version::from_id(136_387_827),
            Version::parse("2.17.0").unwrap()
        );
        assert!(Version::parse("7.10.2").unwrap() < Version::parse("1.0.0").unwrap());
        assert!(Version::parse("2.19.6").unwrap() < Version::parse("3.0.0").unwrap());
        assert_eq!(
            Version::from_id(7_100_299),
            Version::parse("7.10.2").unwrap()
        );
    }

    #[test]
    fn newer_snapshots_and_too_old_indices_are_refused() {
        let snapshot = |version: &str| VersionedSnapshot {
            info: serde_json::from_value(json!({"snapshot": "s"})).unwrap(),
            version: Some(version.into()),
            version_id: None,
        };
        let cluster = |number: &str, oldest: &str| crate::opensearch::VersionInfo {
            number: number.into(),
            distribution: Some("opensearch".into()),
            minimum_index_compatibility_version: Some(oldest.into()),
        };
        assert!(check_versions(&snapshot("2.19.6"), &cluster("2.19.6", "7.0.0")).is_ok());
        assert!(check_versions(&snapshot("2.19.6"), &cluster("3.8.0", "2.0.0")).is_ok());
        let newer = check_versions(&snapshot("3.8.0"), &cluster("2.19.6", "7.0.0")).unwrap_err();
        assert_eq!(newer.kind(), ErrorKind::IncompatibleVersion);
        assert!(newer.message().contains("OpenSearch 3.8.0"), "{newer}");
        let old = check_versions(&snapshot("7.10.2"), &cluster("3.8.0", "2.0.0")).unwrap_err();
        assert_eq!(old.kind(), ErrorKind::IncompatibleVersion);
        assert!(old.message().contains("reindex"), "{old}");
    }

    #[test]
    fn capacity_counts_copies_and_the_watermark() {
        let capacity = Capacity {
            data_nodes: 1,
            shards_open: 999,
            shards_to_add: 2,
            max_shards: 1000,
            bytes_to_add: 10,
            disk_available_bytes: Some(100),
            low_watermark: "85%".into(),
        };
        let error = check_capacity(&capacity, 1).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InsufficientCapacity);
        assert!(error.message().contains("max_shards_per_node"), "{error}");
        let disk = Capacity {
            shards_open: 0,
            bytes_to_add: 101,
            ..capacity.clone()
        };
        let error = check_capacity(&disk, 1).unwrap_err();
        assert!(error.message().contains("low watermark"), "{error}");
        let rows = vec![CatAllocation {
            node: Some("n".into()),
            disk_avail: Some("900".into()),
            disk_used: Some("100".into()),
            disk_total: Some("1000".into()),
        }];
        assert_eq!(disk_below_watermark(&rows, "85%"), Some(750));
        assert_eq!(disk_below_watermark(&rows, "0.5"), Some(400));
        assert_eq!(disk_below_watermark(&rows, "100b"), Some(800));
        assert_eq!(disk_below_watermark(&rows, "1kb"), Some(0));
    }
}
