//! `retention`: deletes old snapshots through the OpenSearch API (never from S3: blobs are shared
//! between snapshots), without ever losing the last good one.
//!
//! - Only ossnap's snapshots: the name `{prefix}-{yyyymmdd}-{hhmmss}` and `metadata.taken_by =
//!   ossnap` (the name alone for snapshots taken before Elasticsearch 7.3, which keeps no
//!   metadata). Never an IN_PROGRESS one (deleting it aborts it).
//! - Only healthy snapshots (SUCCESS, at least one shard, none failed, as check-status says)
//!   count: the newest `RETENTION_MIN_COUNT` healthy ones always stay (at least 1); older healthy
//!   ones go beyond `RETENTION_MAX_COUNT` or past `RETENTION_MAX_AGE`; unhealthy ones (FAILED,
//!   PARTIAL, INCOMPATIBLE, SUCCESS without shards or with failed ones, or SUCCESS but found
//!   damaged by verify, whose verdicts the caller reads from the bucket: [`crate::verdict`]) go
//!   once a newer healthy one exists.
//! - One listing (`verbose=false`), one verbose re-read of the snapshots named as ours
//!   (`ignore_unavailable`, so one unreadable snapshot does not stop retention), then one
//!   multi-name DELETE (one by one on clusters before Elasticsearch 7.8, which read the list as
//!   one name). A DELETE that names a snapshot gone meanwhile, or whose answer is lost (a large
//!   deletion answers only once cleaned up), is followed by a listing and a DELETE of what is
//!   left. At most `RETENTION_MAX_DELETIONS` per run, and at most
//!   [`crate::budget::RETENTION_MAX_REQUESTS`] requests, so the run fits its Lambda timeout.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::budget::RETENTION_MAX_REQUESTS;
use crate::config::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::event::Invocation;
use crate::function::Deps;
use crate::metrics::{self, Metric, Unit};
use crate::names;
use crate::opensearch::{model, SnapshotInfo};
use crate::snapshot::{OSSNAP, TAKEN_BY};
use crate::verdict::DamagedSnapshot;

pub mod var {
    pub const MIN_COUNT: &str = "RETENTION_MIN_COUNT";
    pub const MAX_COUNT: &str = "RETENTION_MAX_COUNT";
    pub const MAX_AGE: &str = "RETENTION_MAX_AGE";
    pub const MAX_DELETIONS: &str = "RETENTION_MAX_DELETIONS";
    pub const DRY_RUN: &str = "RETENTION_DRY_RUN";
}

/// How many snapshots to keep, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub min_count: usize,
    pub max_count: Option<usize>,
    pub max_age: Option<Duration>,
    pub max_deletions: usize,
    pub dry_run: bool,
}

impl Policy {
    pub const DEFAULT_MIN_COUNT: usize = 2;
    pub const DEFAULT_MAX_DELETIONS: usize = 20;

    pub fn from_env(env: &Environment) -> Result<Policy> {
        let count = |name: &str| -> Result<Option<usize>> {
            env.get(name)
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .map_err(|_| Error::config(format!("{name}={v:?} is not a whole number")))
                })
                .transpose()
        };
        let policy = Policy {
            min_count: count(var::MIN_COUNT)?.unwrap_or(Policy::DEFAULT_MIN_COUNT),
            max_count: count(var::MAX_COUNT)?,
            max_age: env.get(var::MAX_AGE).map(parse_age).transpose()?,
            max_deletions: count(var::MAX_DELETIONS)?.unwrap_or(Policy::DEFAULT_MAX_DELETIONS),
            dry_run: match env
                .get(var::DRY_RUN)
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None | Some("false") | Some("0") => false,
                Some("true") | Some("1") => true,
                Some(other) => {
                    return Err(Error::config(format!(
                        "{}={other:?} is not a boolean: set it to true or false",
                        var::DRY_RUN
                    )))
                }
            },
        };
        policy.validate()?;
        Ok(policy)
    }

    /// Refuses a policy that could delete every good snapshot, or that deletes nothing ever.
    pub fn validate(&self) -> Result<()> {
        if self.min_count == 0 {
            return Err(Error::config(format!(
                "{}=0 would allow deleting every good snapshot: keep at least 1",
                var::MIN_COUNT
            )));
        }
        if let Some(max) = self.max_count {
            if max < self.min_count {
                return Err(Error::config(format!(
                    "{}={max} is below {}={}: the minimum always wins, so raise the maximum",
                    var::MAX_COUNT,
                    var::MIN_COUNT,
                    self.min_count
                )));
            }
        }
        if self.max_age == Some(Duration::ZERO) {
            return Err(Error::config(format!(
                "{}=0 would expire every snapshot at once: give a duration such as 30d",
                var::MAX_AGE
            )));
        }
        if self.max_deletions == 0 {
            return Err(Error::config(format!(
                "{}=0 deletes nothing: use {}=true to see what would go",
                var::MAX_DELETIONS,
                var::DRY_RUN
            )));
        }
        Ok(())
    }
}

/// `30d`, `12h`, `90m`, `2w`.
pub fn parse_age(text: &str) -> Result<Duration> {
    let text = text.trim();
    let split = text.len().saturating_sub(1);
    let (number, unit) = text.split_at(split);
    let seconds = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if seconds > 0 => Ok(Duration::from_secs(n * seconds)),
        _ => Err(Error::config(format!(
            "{}={text:?} is not a duration: write a number and a unit, e.g. 30d, 12h, 90m or 2w",
            var::MAX_AGE
        ))),
    }
}

/// One snapshot as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub state: String,
    /// SUCCESS with at least one shard and none failed ([`SnapshotInfo::is_healthy`]), and not
    /// found damaged by verify.
    pub healthy: bool,
    /// verify found it damaged (a verdict names its uuid), whatever the cluster says.
    pub damaged: bool,
    /// From the name: `{prefix}-{yyyymmdd}-{hhmmss}`.
    pub taken_at: OffsetDateTime,
}

impl Candidate {
    /// What it is, for the reasons given: its state, and why a SUCCESS is not healthy.
    fn describe(&self) -> String {
        if self.damaged {
            format!(
                "{}, but verify found it damaged (its verdict is under {}/)",
                self.state,
                crate::verdict::PREFIX
            )
        } else if self.state == model::SUCCESS && !self.healthy {
            "SUCCESS without shards or with failed shards".to_string()
        } else {
            self.state.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub snapshot: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionOutput {
    pub repository: String,
    pub dry_run: bool,
    pub kept: Vec<Decision>,
    pub deleted: Vec<Decision>,
    pub skipped: Vec<Decision>,
}

/// Which of `candidates` (ossnap's, by name) to keep and which to delete at `now`. Pure, so
/// that its invariants can be checked over random histories.
pub fn plan(
    candidates: &[Candidate],
    policy: &Policy,
    now: OffsetDateTime,
) -> (Vec<Decision>, Vec<Decision>) {
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    // Newest first; the name breaks ties so the plan never depends on listing order.
    sorted.sort_by(|a, b| {
        b.taken_at
            .cmp(&a.taken_at)
            .then_with(|| b.name.cmp(&a.name))
    });
    let mut keep = Vec::new();
    let mut delete = Vec::new();
    let mut healthy_seen = 0usize;
    let decide = |snapshot: &str, reason: String| Decision {
        snapshot: snapshot.to_string(),
        reason,
    };
    for candidate in sorted {
        let age = now - candidate.taken_at;
        match candidate.state.as_str() {
            model::IN_PROGRESS => keep.push(decide(
                &candidate.name,
                "in progress: deleting it would abort it".into(),
            )),
            _ if candidate.healthy => {
                healthy_seen += 1;
                let rank = healthy_seen;
                if rank <= policy.min_count {
                    keep.push(decide(
                        &candidate.name,
                        format!("one of the newest {} healthy snapshots", policy.min_count),
                    ));
                } else if let Some(max) = policy.max_count.filter(|max| rank > *max) {
                    delete.push(decide(
                        &candidate.name,
                        format!("healthy number {rank}, beyond {}={max}", var::MAX_COUNT),
                    ));
                } else if let Some(max_age) = policy.max_age.filter(|max_age| age > *max_age) {
                    delete.push(decide(
                        &candidate.name,
                        format!("older than {}={}", var::MAX_AGE, human(max_age)),
                    ));
                } else {
                    keep.push(decide(
                        &candidate.name,
                        "within the retention policy".into(),
                    ));
                }
            }
            _ if healthy_seen > 0 => {
                delete.push(decide(
                    &candidate.name,
                    format!("{}, and a newer healthy one exists", candidate.describe()),
                ));
            }
            _ => keep.push(decide(
                &candidate.name,
                format!(
                    "{}, kept until a newer healthy one exists",
                    candidate.describe()
                ),
            )),
        }
    }
    // Oldest first, so a capped run removes the oldest.
    delete.reverse();
    (keep, delete)
}

fn human(duration: Duration) -> String {
    let s = duration.as_secs();
    match s {
        _ if s.is_multiple_of(604_800) => format!("{}w", s / 604_800),
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ => format!("{}m", s / 60),
    }
}

/// The time in a name `{prefix}-{yyyymmdd}-{hhmmss}`, if it is one of ours.
pub fn taken_at(prefix: &str, name: &str) -> Option<OffsetDateTime> {
    let stamp = name.strip_prefix(prefix)?.strip_prefix('-')?;
    if stamp.len() != 15 {
        return None;
    }
    PrimitiveDateTime::parse(
        stamp,
        format_description!("[year][month][day]-[hour][minute][second]"),
    )
    .ok()
    .map(PrimitiveDateTime::assume_utc)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionInput {
    pub repository: Option<String>,
    /// Where the repository's snapshots are, as verify was given them (its verdicts are kept
    /// beside them); the settings' by default, which are `SNAPSHOT_REPOSITORY`'s.
    pub bucket: Option<String>,
    pub base_path: Option<String>,
    pub dry_run: Option<bool>,
}

/// What retention needs besides verify's verdicts: the cluster's dependencies and the policy
/// (`ossnap_retention` builds them for the Lambda function, the command line for itself).
#[derive(Debug, Clone)]
pub struct Retention {
    pub deps: Deps,
    pub policy: Policy,
}

/// Applies `policy` to the repository's snapshots. `damaged` reads the snapshots verify recorded
/// as damaged (`ossnap_storage::verdicts`), never counted as healthy; it is awaited once the
/// input is valid, before the cluster is asked anything.
pub async fn run(
    deps: &Deps,
    policy: &Policy,
    damaged: impl Future<Output = Result<Vec<DamagedSnapshot>>>,
    invocation: Invocation<RetentionInput>,
) -> Result<RetentionOutput> {
    let input = invocation.input;
    let repository = input
        .repository
        .unwrap_or_else(|| deps.settings.repository.clone());
    names::validate_repository_name(&repository)?;
    let dry_run = input.dry_run.unwrap_or(policy.dry_run);
    let prefix = &deps.settings.prefix;
    let damaged = damaged.await?;
    let mut requests = RequestBudget::new();
    requests.spend();
    let listing = deps
        .opensearch
        .get_snapshots(&repository, &["_all"], false)
        .await?;

    let mut output = RetentionOutput {
        repository: repository.clone(),
        dry_run,
        ..RetentionOutput::default()
    };
    let mut named_ours = Vec::new();
    for info in listing {
        if taken_at(prefix, &info.snapshot).is_some() {
            named_ours.push(info.snapshot);
        } else {
            output.skipped.push(Decision {
                snapshot: info.snapshot,
                reason: format!("not named {prefix}-yyyymmdd-hhmmss: not ossnap's"),
            });
        }
    }
    if named_ours.is_empty() {
        return Ok(finish(deps, output));
    }

    // Only the verbose form carries the shard counts that tell a healthy snapshot and the
    // metadata that proves it is ossnap's. One wildcard keeps the request short however many
    // there are; a snapshot it cannot read is left out, not a failure of the run.
    requests.spend();
    let current = deps
        .opensearch
        .find_snapshots(&repository, &[&format!("{prefix}-*")], true)
        .await?;
    let one_by_one =
        !current.is_empty() && current.iter().all(|info| info.taken_before(model::ES_7_8));
    let mut candidates = Vec::new();
    for name in named_ours {
        let Some(info) = current.iter().find(|info| info.snapshot == name) else {
            output.skipped.push(Decision {
                snapshot: name,
                reason: "gone, or its metadata could not be read: left alone".into(),
            });
            continue;
        };
        if !taken_by_ossnap(info) {
            output.skipped.push(Decision {
                snapshot: name,
                reason: "its metadata does not say ossnap took it".into(),
            });
            continue;
        }
        let is_damaged = damaged
            .iter()
            .any(|verdict| Some(&verdict.uuid) == info.uuid.as_ref());
        candidates.push(Candidate {
            taken_at: taken_at(prefix, &name).expect("named as ours"),
            name,
            state: info
                .state
                .clone()
                .unwrap_or_else(|| model::IN_PROGRESS.into()),
            healthy: info.is_healthy() && !is_damaged,
            damaged: is_damaged,
        });
    }
    let (kept, mut to_delete) = plan(&candidates, policy, deps.clock.now_utc());
    output.kept = kept;
    if to_delete.len() > policy.max_deletions {
        for over in to_delete.split_off(policy.max_deletions) {
            output.skipped.push(Decision {
                snapshot: over.snapshot,
                reason: format!(
                    "{} (left for the next run: {}={})",
                    over.reason,
                    var::MAX_DELETIONS,
                    policy.max_deletions
                ),
            });
        }
    }
    if !dry_run && !to_delete.is_empty() {
        let names: Vec<String> = to_delete.iter().map(|d| d.snapshot.clone()).collect();
        let left = delete(deps, &repository, names, one_by_one, &mut requests).await?;
        let (deferred, done): (Vec<_>, Vec<_>) = to_delete
            .into_iter()
            .partition(|d| left.contains(&d.snapshot));
        to_delete = done;
        output.skipped.extend(deferred.into_iter().map(|d| Decision {
            reason: format!(
                "{} (left for the next run: a run sends at most {RETENTION_MAX_REQUESTS} requests, to fit its time budget)",
                d.reason
            ),
            ..d
        }));
    }
    output.deleted = to_delete;
    Ok(finish(deps, output))
}

/// Logs and measures the outcome.
fn finish(deps: &Deps, output: RetentionOutput) -> RetentionOutput {
    let repository = &output.repository;
    tracing::info!(
        repository,
        dry_run = output.dry_run,
        deleted = output.deleted.len(),
        kept = output.kept.len(),
        skipped = output.skipped.len(),
        "retention applied"
    );
    metrics::emit(
        deps.settings.metric_dimensions("retention", repository),
        &[
            Metric::new(
                "SnapshotsDeleted",
                Unit::Count,
                if output.dry_run {
                    0
                } else {
                    output.deleted.len() as u32
                },
            ),
            Metric::new("SnapshotsKept", Unit::Count, output.kept.len() as u32),
            Metric::new("SnapshotsSkipped", Unit::Count, output.skipped.len() as u32),
        ],
        deps.clock.now_millis(),
    );
    output
}

fn taken_by_ossnap(info: &SnapshotInfo) -> bool {
    info.cannot_carry_metadata()
        || info
            .metadata
            .as_ref()
            .and_then(|m| m.get(TAKEN_BY))
            .and_then(Value::as_str)
            == Some(OSSNAP)
}

/// Counts the run's requests against [`RETENTION_MAX_REQUESTS`].
struct RequestBudget {
    left: u32,
}

impl RequestBudget {
    fn new() -> RequestBudget {
        RequestBudget {
            left: RETENTION_MAX_REQUESTS,
        }
    }

    /// Takes one request; false when none is left.
    fn spend(&mut self) -> bool {
        let available = self.left > 0;
        self.left = self.left.saturating_sub(1);
        available
    }
}

/// Deletes `names` and returns those left for the next run because the request budget ran out.
///
/// One request for all of them, or one each on clusters before ES 7.8 (`one_by_one`, or found
/// out when a list DELETE is answered "missing" while every name is still there). After a
/// "missing" (one was deleted meanwhile) or a lost answer (the deletion may have gone through),
/// it lists what is still there and deletes that; a lost answer with nothing gone is reported
/// as `Unavailable`, for the workflow to retry later.
async fn delete(
    deps: &Deps,
    repository: &str,
    mut remaining: Vec<String>,
    mut one_by_one: bool,
    requests: &mut RequestBudget,
) -> Result<Vec<String>> {
    while !remaining.is_empty() {
        if !requests.spend() {
            return Ok(remaining);
        }
        let batch: Vec<&str> = if one_by_one {
            vec![remaining[0].as_str()]
        } else {
            remaining.iter().map(String::as_str).collect()
        };
        let error = match deps.opensearch.delete_snapshots(repository, &batch).await {
            Ok(()) => {
                let done: Vec<String> = batch.iter().map(|n| n.to_string()).collect();
                remaining.retain(|name| !done.contains(name));
                continue;
            }
            Err(e) if e.kind() == ErrorKind::SnapshotMissing && batch.len() == 1 => {
                let gone = batch[0].to_string();
                remaining.retain(|name| *name != gone);
                continue;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::SnapshotMissing | ErrorKind::Unavailable
                ) =>
            {
                e
            }
            Err(e) => return Err(e),
        };
        tracing::warn!(error = %error, "the DELETE did not go through as sent; listing what is left");
        if !requests.spend() {
            return Ok(remaining);
        }
        let names: Vec<&str> = remaining.iter().map(String::as_str).collect();
        let present: Vec<String> = deps
            .opensearch
            .find_snapshots(repository, &names, false)
            .await?
            .into_iter()
            .map(|info| info.snapshot)
            .filter(|name| remaining.contains(name))
            .collect();
        let nothing_gone = present.len() == remaining.len();
        if nothing_gone && error.kind() == ErrorKind::Unavailable {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{}; none of [{}] is gone yet: retrying is safe",
                    error.message(),
                    remaining.join(",")
                ),
            ));
        }
        if nothing_gone {
            tracing::warn!(
                "the cluster read the list as one name (before ES 7.8); deleting one by one"
            );
            one_by_one = true;
        }
        remaining = present;
    }
    Ok(remaining)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-28 12:00:00 UTC);

    fn policy() -> Policy {
        Policy {
            min_count: 2,
            max_count: None,
            max_age: None,
            max_deletions: 20,
            dry_run: false,
        }
    }

    fn daily(states: &[&str]) -> Vec<Candidate> {
        states
            .iter()
            .enumerate()
            .map(|(days_ago, state)| {
                let taken_at = NOW - time::Duration::days(days_ago as i64 + 1);
                Candidate {
                    name: crate::snapshot::snapshot_name("ossnap", taken_at),
                    state: state.to_string(),
                    healthy: *state == "SUCCESS",
                    damaged: false,
                    taken_at,
                }
            })
            .collect()
    }

    fn deleted(plan: &(Vec<Decision>, Vec<Decision>)) -> Vec<&str> {
        plan.1.iter().map(|d| d.snapshot.as_str()).collect()
    }

    #[test]
    fn names_round_trip_their_time() {
        let name = crate::snapshot::snapshot_name("ossnap", datetime!(2026-11-28 02:00:05 UTC));
        assert_eq!(
            taken_at("ossnap", &name),
            Some(datetime!(2026-11-28 02:00:05 UTC))
        );
        assert_eq!(taken_at("ossnap", "ossnap-20261128-0200"), None);
        assert_eq!(taken_at("ossnap", "curator-20261128-020000"), None);
        assert_eq!(taken_at("oss", "ossnap-20261128-020000"), None);
    }

    #[test]
    fn max_count_keeps_the_newest_successes() {
        let history = daily(&["SUCCESS"; 5]);
        let plan = plan(
            &history,
            &Policy {
                max_count: Some(3),
                ..policy()
            },
            NOW,
        );
        assert_eq!(
            deleted(&plan),
            vec![history[4].name.as_str(), history[3].name.as_str()]
        );
    }

    #[test]
    fn max_age_never_goes_below_the_minimum() {
        let history = daily(&["SUCCESS"; 4]);
        let plan = plan(
            &history,
            &Policy {
                max_age: Some(Duration::from_secs(3600)),
                ..policy()
            },
            NOW,
        );
        // All are older than an hour; the newest two stay.
        assert_eq!(
            deleted(&plan),
            vec![history[3].name.as_str(), history[2].name.as_str()]
        );
    }

    #[test]
    fn failed_ones_go_only_once_a_newer_healthy_one_exists() {
        let history = daily(&["FAILED", "SUCCESS", "PARTIAL", "IN_PROGRESS"]);
        let plan = plan(&history, &policy(), NOW);
        assert_eq!(deleted(&plan), vec![history[2].name.as_str()]);
        assert!(plan
            .0
            .iter()
            .any(|d| d.snapshot == history[0].name && d.reason.contains("until a newer healthy")));
        assert!(plan
            .0
            .iter()
            .any(|d| d.snapshot == history[3].name && d.reason.contains("abort")));
    }

    #[test]
    fn damaged_successes_do_not_count_toward_the_minimum() {
        let mut history = daily(&["SUCCESS"; 4]);
        // verify found the newest damaged: the two older healthy ones are the minimum kept.
        history[0].healthy = false;
        history[0].damaged = true;
        let plan = plan(
            &history,
            &Policy {
                max_count: Some(2),
                ..policy()
            },
            NOW,
        );
        assert_eq!(deleted(&plan), vec![history[3].name.as_str()], "{plan:?}");
        assert!(plan.0.iter().any(|d| d.snapshot == history[0].name
            && d.reason.contains("verify found it damaged")
            && d.reason.contains("until a newer healthy")));
    }

    #[test]
    fn empty_successes_do_not_count_toward_the_minimum() {
        let mut history = daily(&["SUCCESS"; 4]);
        // The two newest hold no shards: only the two older ones are backups.
        history[0].healthy = false;
        history[1].healthy = false;
        let first = plan(
            &history,
            &Policy {
                max_count: Some(2),
                ..policy()
            },
            NOW,
        );
        assert!(deleted(&first).is_empty(), "{first:?}");
        assert!(first.0.iter().any(|d| d.snapshot == history[0].name
            && d.reason.contains("without shards")
            && d.reason.contains("until a newer healthy")));

        // Once a newer healthy one exists, the empty ones go like failed ones.
        let mut history = daily(&["SUCCESS"; 3]);
        history[1].healthy = false;
        let second = plan(&history, &policy(), NOW);
        assert_eq!(deleted(&second), vec![history[1].name.as_str()]);
    }

    #[test]
    fn policies_that_could_lose_everything_are_refused() {
        for (vars, needle) in [
            (vec![(var::MIN_COUNT, "0")], "at least 1"),
            (vec![(var::MIN_COUNT, "3"), (var::MAX_COUNT, "2")], "below"),
            (vec![(var::MAX_AGE, "0d")], "every snapshot"),
            (vec![(var::MAX_AGE, "30 days")], "not a duration"),
            (vec![(var::MAX_DELETIONS, "0")], "deletes nothing"),
            (vec![(var::MIN_COUNT, "-1")], "whole number"),
        ] {
            let error = Policy::from_env(&Environment::from_pairs(vars)).unwrap_err();
            assert!(error.message().contains(needle), "{error}");
        }
        let default = Policy::from_env(&Environment::default()).unwrap();
        assert_eq!(default.min_count, 2);
        assert_eq!(parse_age("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_age("2w").unwrap(), Duration::from_secs(14 * 86_400));
    }

    mod invariants {
        use super::*;
        use proptest::prelude::*;

        const STATES: [&str; 5] = [
            "SUCCESS",
            "FAILED",
            "PARTIAL",
            "IN_PROGRESS",
            "INCOMPATIBLE",
        ];

        fn history() -> impl Strategy<Value = Vec<Candidate>> {
            // Names are unique in a repository: one snapshot per hour at most.
            prop::collection::btree_map(0i64..2000, (0usize..5, prop::bool::weighted(0.8)), 0..40)
                .prop_map(|entries| {
                    entries
                        .into_iter()
                        .map(|(hours_ago, (state, has_shards))| {
                            let taken_at = NOW - time::Duration::hours(hours_ago);
                            Candidate {
                                name: crate::snapshot::snapshot_name("ossnap", taken_at),
                                state: STATES[state].to_string(),
                                healthy: STATES[state] == "SUCCESS" && has_shards,
                                damaged: false,
                                taken_at,
                            }
                        })
                        .collect()
                })
        }

        fn any_policy() -> impl Strategy<Value = Policy> {
            (
                1usize..5,
                prop::option::of(0usize..6),
                prop::option::of(1u64..2000),
            )
                .prop_map(|(min_count, extra, hours)| Policy {
                    min_count,
                    max_count: extra.map(|e| min_count + e),
                    max_age: hours.map(|h| Duration::from_secs(h * 3600)),
                    max_deletions: 20,
                    dry_run: false,
                })
        }

        proptest! {
            #[test]
            fn never_loses_the_newest_healthy_ones_nor_a_running_one(history in history(), policy in any_policy()) {
                let (kept, deleted) = plan(&history, &policy, NOW);
                let deleted: Vec<&str> = deleted.iter().map(|d| d.snapshot.as_str()).collect();
                prop_assert_eq!(kept.len() + deleted.len(), history.len());
                let mut healthy: Vec<&Candidate> = history.iter().filter(|c| c.healthy).collect();
                healthy.sort_by(|a, b| b.taken_at.cmp(&a.taken_at).then_with(|| b.name.cmp(&a.name)));
                for newest in healthy.iter().take(policy.min_count) {
                    prop_assert!(!deleted.contains(&newest.name.as_str()), "deleted a protected healthy snapshot");
                }
                for candidate in &history {
                    let gone = deleted.contains(&candidate.name.as_str());
                    if candidate.state == "IN_PROGRESS" {
                        prop_assert!(!gone, "deleted a running snapshot");
                    }
                    if !candidate.healthy && candidate.state != "IN_PROGRESS" && gone {
                        prop_assert!(
                            healthy.iter().any(|s| s.taken_at > candidate.taken_at || (s.taken_at == candidate.taken_at && s.name > candidate.name)),
                            "deleted an unhealthy snapshot without a newer healthy one"
                        );
                    }
                }
            }

            #[test]
            fn only_our_names_are_candidates(name in "[a-z0-9.-]{0,40}") {
                if let Some(time) = taken_at("ossnap", &name) {
                    prop_assert_eq!(crate::snapshot::snapshot_name("ossnap", time), name);
                }
            }
        }
    }
}
