//! `retention`: deletes old snapshots through the OpenSearch API (never from S3: blobs are shared
//! between snapshots), without ever losing the last good one.
//!
//! - Only ossnap's snapshots: the name `{prefix}-{yyyymmdd}-{hhmmss}` and, re-read before any
//!   deletion, `metadata.taken_by = ossnap`. Never an IN_PROGRESS one (deleting it aborts it).
//! - The newest `RETENTION_MIN_COUNT` SUCCESS snapshots always stay (at least 1); older SUCCESS
//!   ones go beyond `RETENTION_MAX_COUNT` or past `RETENTION_MAX_AGE`; FAILED, PARTIAL and
//!   INCOMPATIBLE ones go once a newer SUCCESS exists.
//! - One listing (`verbose=false`), one verbose re-read of the candidates, one multi-name DELETE
//!   (one by one where the cluster refuses lists), at most `RETENTION_MAX_DELETIONS` per run.

use std::time::Duration;

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::config::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::event::Invocation;
use crate::function::{prepare, Deps};
use crate::metrics::{self, Metric, Unit};
use crate::names;
use crate::opensearch::{model, SnapshotInfo};
use crate::snapshot::{OSSNAP, TAKEN_BY};

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
    /// From the name: `{prefix}-{yyyymmdd}-{hhmmss}`.
    pub taken_at: OffsetDateTime,
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
    let mut successes_seen = 0usize;
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
            model::SUCCESS => {
                successes_seen += 1;
                let rank = successes_seen;
                if rank <= policy.min_count {
                    keep.push(decide(
                        &candidate.name,
                        format!("one of the newest {} SUCCESS snapshots", policy.min_count),
                    ));
                } else if let Some(max) = policy.max_count.filter(|max| rank > *max) {
                    delete.push(decide(
                        &candidate.name,
                        format!("SUCCESS number {rank}, beyond {}={max}", var::MAX_COUNT),
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
            state if successes_seen > 0 => {
                delete.push(decide(
                    &candidate.name,
                    format!("{state}, and a newer SUCCESS exists"),
                ));
            }
            state => keep.push(decide(
                &candidate.name,
                format!("{state}, kept until a newer SUCCESS exists"),
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
    pub dry_run: Option<bool>,
}

/// The retention function's dependencies: the shared ones and its policy.
#[derive(Debug, Clone)]
pub struct Retention {
    pub deps: Deps,
    pub policy: Policy,
}

impl Retention {
    pub async fn from_env(env: &Environment) -> Result<Retention> {
        let policy = Policy::from_env(env)?;
        Ok(Retention {
            deps: Deps::from_env(env).await?,
            policy,
        })
    }
}

pub async fn handle(
    retention: &Result<Retention>,
    event: LambdaEvent<Value>,
) -> Result<RetentionOutput> {
    let (retention, invocation, _) = prepare(retention, event)?;
    run(&retention.deps, &retention.policy, invocation).await
}

pub async fn run(
    deps: &Deps,
    policy: &Policy,
    invocation: Invocation<RetentionInput>,
) -> Result<RetentionOutput> {
    let input = invocation.input;
    let repository = input
        .repository
        .unwrap_or_else(|| deps.settings.repository.clone());
    names::validate_repository_name(&repository)?;
    let dry_run = input.dry_run.unwrap_or(policy.dry_run);
    let prefix = &deps.settings.prefix;
    let listing = deps
        .opensearch
        .get_snapshots(&repository, &["_all"], false)
        .await?;

    let mut output = RetentionOutput {
        repository: repository.clone(),
        dry_run,
        ..RetentionOutput::default()
    };
    let mut candidates = Vec::new();
    for info in listing {
        match taken_at(prefix, &info.snapshot) {
            Some(time) => candidates.push(Candidate {
                name: info.snapshot,
                state: info.state.unwrap_or_else(|| model::IN_PROGRESS.into()),
                taken_at: time,
            }),
            None => output.skipped.push(Decision {
                snapshot: info.snapshot,
                reason: format!("not named {prefix}-yyyymmdd-hhmmss: not ossnap's"),
            }),
        }
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
    if to_delete.is_empty() {
        return Ok(output);
    }

    // Re-read the candidates: their state may have moved, and only the verbose form carries
    // the metadata that proves they are ossnap's.
    let names: Vec<&str> = to_delete.iter().map(|d| d.snapshot.as_str()).collect();
    let current = deps
        .opensearch
        .get_snapshots(&repository, &names, true)
        .await?;
    let mut confirmed = Vec::new();
    for decision in to_delete {
        match current
            .iter()
            .find(|info| info.snapshot == decision.snapshot)
        {
            None => output.skipped.push(Decision {
                reason: "gone before deletion".into(),
                ..decision
            }),
            Some(info) if info.state.as_deref() == Some(model::IN_PROGRESS) => {
                output.skipped.push(Decision {
                    reason: "in progress at deletion time".into(),
                    ..decision
                })
            }
            Some(info) if !taken_by_ossnap(info) => output.skipped.push(Decision {
                reason: "its metadata does not say ossnap took it".into(),
                ..decision
            }),
            Some(_) => confirmed.push(decision),
        }
    }
    if !dry_run && !confirmed.is_empty() {
        delete(deps, &repository, &confirmed).await?;
    }
    tracing::info!(
        repository,
        dry_run,
        deleted = confirmed.len(),
        kept = output.kept.len(),
        skipped = output.skipped.len(),
        "retention applied"
    );
    output.deleted = confirmed;
    metrics::emit(
        "retention",
        &repository,
        &[
            Metric::new(
                "SnapshotsDeleted",
                Unit::Count,
                if dry_run {
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
    Ok(output)
}

fn taken_by_ossnap(info: &SnapshotInfo) -> bool {
    info.metadata
        .as_ref()
        .and_then(|m| m.get(TAKEN_BY))
        .and_then(Value::as_str)
        == Some(OSSNAP)
}

/// One request for all of them; one by one on clusters that refuse a list (before ES 7.8).
async fn delete(deps: &Deps, repository: &str, decisions: &[Decision]) -> Result<()> {
    let names: Vec<&str> = decisions.iter().map(|d| d.snapshot.as_str()).collect();
    match deps.opensearch.delete_snapshots(repository, &names).await {
        Ok(()) => Ok(()),
        Err(e) if names.len() > 1 && e.kind() == ErrorKind::ConfigError => {
            tracing::warn!(error = %e, "the cluster refused a multi-snapshot delete; deleting one by one");
            for name in names {
                match deps.opensearch.delete_snapshots(repository, &[name]).await {
                    Err(e) if e.kind() != ErrorKind::SnapshotMissing => return Err(e),
                    _ => {}
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
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
    fn failed_ones_go_only_once_a_newer_success_exists() {
        let history = daily(&["FAILED", "SUCCESS", "PARTIAL", "IN_PROGRESS"]);
        let plan = plan(&history, &policy(), NOW);
        assert_eq!(deleted(&plan), vec![history[2].name.as_str()]);
        assert!(plan
            .0
            .iter()
            .any(|d| d.snapshot == history[0].name && d.reason.contains("until a newer SUCCESS")));
        assert!(plan
            .0
            .iter()
            .any(|d| d.snapshot == history[3].name && d.reason.contains("abort")));
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
            prop::collection::btree_map(0i64..2000, 0usize..5, 0..40).prop_map(|entries| {
                entries
                    .into_iter()
                    .map(|(hours_ago, state)| {
                        let taken_at = NOW - time::Duration::hours(hours_ago);
                        Candidate {
                            name: crate::snapshot::snapshot_name("ossnap", taken_at),
                            state: STATES[state].to_string(),
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
            fn never_loses_the_newest_successes_nor_a_running_one(history in history(), policy in any_policy()) {
                let (kept, deleted) = plan(&history, &policy, NOW);
                let deleted: Vec<&str> = deleted.iter().map(|d| d.snapshot.as_str()).collect();
                prop_assert_eq!(kept.len() + deleted.len(), history.len());
                let mut successes: Vec<&Candidate> = history.iter().filter(|c| c.state == "SUCCESS").collect();
                successes.sort_by(|a, b| b.taken_at.cmp(&a.taken_at).then_with(|| b.name.cmp(&a.name)));
                for newest in successes.iter().take(policy.min_count) {
                    prop_assert!(!deleted.contains(&newest.name.as_str()), "deleted a protected SUCCESS");
                }
                for candidate in &history {
                    let gone = deleted.contains(&candidate.name.as_str());
                    if candidate.state == "IN_PROGRESS" {
                        prop_assert!(!gone, "deleted a running snapshot");
                    }
                    if candidate.state != "SUCCESS" && candidate.state != "IN_PROGRESS" && gone {
                        prop_assert!(
                            successes.iter().any(|s| s.taken_at > candidate.taken_at || (s.taken_at == candidate.taken_at && s.name > candidate.name)),
                            "deleted a failed snapshot without a newer SUCCESS"
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
