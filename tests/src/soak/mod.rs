//! The soak: a year and more of nightly runs in minutes, with faults, and after every run the
//! invariants that prove nothing is lost ([`invariants`]).
//!
//! It runs the deployed state machine ([`crate::workflow::Workflow`]: aws-local-stepfunctions
//! with the real function binaries) against the local stack, one scheduled run a day on a
//! virtual calendar, plus some started by hand. Waits and retry pauses take no real time: each
//! counts on the execution's virtual clock, and the cluster's clock (on which the emulator's
//! snapshots progress and AWS's automated snapshot runs) is moved with it before every
//! invocation, and on to the next day between runs.
//!
//! About 5% of runs meet a [`RunFault`] and about 5% of requests a [`RequestFault`], drawn from
//! `SOAK_SEED`, so a failure replays with the same seed and `SOAK_RUNS` (timing between
//! processes may still differ: a fault aimed at a request the run no longer sends is not used).

pub mod faults;
pub mod invariants;
pub mod report;
pub mod rng;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ossnap_core::clock::Clock;
use ossnap_core::config::Environment;
use ossnap_core::Deps;
use ossnap_local_stack::{Control, Fault, SnapshotOutcome};
use ossnap_verify::Verifier;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::stack::BASE_PATH;
use crate::workflow::{
    BeforeInvoke, Execution, InvokeAction, Invoking, NotificationSource, Status, Workflow,
    WorkflowError,
};
use crate::TestStack;
pub use faults::{RequestFault, RunFault};
use invariants::{Checker, Seen, Sources, REPOSITORY};
pub use report::{Cost, LongSnapshot, Report, Spread};
use rng::Rng;

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3600);

/// What a soak does; [`SoakConfig::from_env`] reads `SOAK_RUNS` and `SOAK_SEED`.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Scheduled runs (days).
    pub runs: usize,
    pub seed: u64,
    /// The share of runs that meet a run fault, and of requests that meet a request fault.
    pub fault_rate: f64,
    /// The share of days with a run started by hand as well.
    pub manual_rate: f64,
    pub min_count: usize,
    pub max_count: usize,
    /// How long each snapshot takes on the cluster's clock.
    pub snapshot_duration: Duration,
    /// About how many requests a run sends: request faults are drawn for that many.
    pub requests_per_run: usize,
}

impl Default for SoakConfig {
    fn default() -> Self {
        SoakConfig {
            runs: 50,
            seed: 20261128,
            fault_rate: 0.05,
            manual_rate: 0.05,
            min_count: 3,
            max_count: 5,
            snapshot_duration: Duration::from_secs(10 * 60),
            requests_per_run: 15,
        }
    }
}

impl SoakConfig {
    /// The defaults with `SOAK_RUNS` (else `default_runs`) and `SOAK_SEED`.
    pub fn from_env(default_runs: usize) -> Result<SoakConfig, String> {
        let number = |name: &str| -> Result<Option<u64>, String> {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
                .map(|value| {
                    value
                        .trim()
                        .parse()
                        .map_err(|_| format!("{name}={value:?} is not a whole number"))
                })
                .transpose()
        };
        let defaults = SoakConfig::default();
        Ok(SoakConfig {
            runs: number("SOAK_RUNS")?.map_or(default_runs, |runs| runs as usize),
            seed: number("SOAK_SEED")?.unwrap_or(defaults.seed),
            ..defaults
        })
    }
}

/// Where the soak writes its report and the functions' logs: `target/soak/`.
pub fn output_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/soak")
}

/// What the invocation hook is to do during the current run.
#[derive(Default)]
struct Plan {
    /// Virtual time already passed on to the cluster's clock in this execution.
    paused: Duration,
    damage: Option<RunFault>,
    kill: Option<(&'static str, Option<Fault>, Duration)>,
    /// Start another execution's snapshot, scheduled at this time, before retention.
    overlap_at: Option<OffsetDateTime>,
    effects: Vec<Effect>,
}

enum Effect {
    Damaged { uuid: String },
    OverlapStarted { name: String, seen: Seen },
}

pub struct Soak {
    config: SoakConfig,
    stack: TestStack,
    deps: Deps,
    verifier: Verifier,
    workflow: Workflow,
    control: Arc<Control>,
    plan: Arc<Mutex<Plan>>,
    checker: Checker,
    rng: Rng,
    first_day: OffsetDateTime,
    report: Report,
    costs: Vec<Cost>,
    faults_fired: usize,
    started: Instant,
}

impl Soak {
    /// A stack with two seeded indices, the repository registered, two snapshots that are not
    /// ossnap's in it, and the state machine's functions running.
    pub async fn start(config: SoakConfig) -> Result<Soak, WorkflowError> {
        let started = Instant::now();
        // The checker runs verify in this process, whose stdout is the soak's, not CloudWatch's.
        ossnap_core::metrics::disable();
        let duration = config.snapshot_duration;
        let stack = TestStack::start_with(|local| local.snapshot_duration = duration).await;
        let deps = stack.deps(&[]);
        stack.seed_index(&deps, "logs-2026", 10).await;
        stack.seed_index(&deps, "orders", 5).await;
        stack.register(&deps).await;
        let control = stack
            .local
            .shared_control()
            .expect("the soak runs on the emulator")
            .clone();
        // The cluster's clock moves only with the executions' virtual waits, so what a run
        // costs does not depend on how loaded the machine is.
        control.freeze_clock();
        for (name, metadata) in [
            ("manual-before-upgrade", Value::Null),
            (
                "ossnap-20200101-000000",
                json!({"taken_by": "someone-else"}),
            ),
        ] {
            let body =
                json!({"indices": "orders", "include_global_state": false, "metadata": metadata});
            deps.opensearch
                .create_snapshot(REPOSITORY, name, &body)
                .await
                .map_err(|e| WorkflowError(format!("the foreign snapshot {name}: {e}")))?;
            control.advance_clock(duration);
            control.settled().await;
        }
        let verifier = Verifier::new(
            &Environment::from_pairs(stack.env()),
            stack.local.s3_client(),
            Clock::without_sleeps(),
        )
        .map_err(|e| WorkflowError(e.to_string()))?;
        let logs = output_dir().join("logs");
        std::fs::create_dir_all(&logs)
            .map_err(|e| WorkflowError(format!("{}: {e}", logs.display())))?;
        let min = config.min_count.to_string();
        let max = config.max_count.to_string();
        let mut workflow = Workflow::start(
            &stack,
            &[("RETENTION_MIN_COUNT", &min), ("RETENTION_MAX_COUNT", &max)],
            Some(&logs),
        )
        .await?;
        let plan = Arc::new(Mutex::new(Plan::default()));
        workflow.before_invoke(hook(
            control.clone(),
            plan.clone(),
            deps.clone(),
            stack.local.repository_location(Some(BASE_PATH)),
        ));
        let first_day = OffsetDateTime::now_utc()
            .replace_time(time::macros::time!(02:00))
            .replace_nanosecond(0)
            .expect("a valid time");
        let mut soak = Soak {
            checker: Checker::new(config.min_count),
            rng: Rng::new(config.seed),
            report: Report {
                seed: config.seed,
                ..Report::default()
            },
            config,
            stack,
            deps,
            verifier,
            workflow,
            control,
            plan,
            first_day,
            costs: Vec::new(),
            faults_fired: 0,
            started,
        };
        soak.check("start").await;
        Ok(soak)
    }

    pub fn stack(&self) -> &TestStack {
        &self.stack
    }

    /// The violations found so far.
    pub fn violations(&self) -> &[String] {
        &self.checker.violations
    }

    /// The name of the newest healthy snapshot of ours, as of the last check.
    pub fn newest_healthy(&self) -> Option<String> {
        self.checker
            .known()
            .iter()
            .filter(|(_, seen)| seen.healthy && seen.ours)
            .max_by_key(|(_, seen)| seen.start_millis)
            .map(|(name, _)| name.clone())
    }

    /// Checks the invariants now, outside any run; returns what it found.
    pub async fn check(&mut self, label: &str) -> Vec<String> {
        let sources = Sources {
            deps: &self.deps,
            verifier: &self.verifier,
            repository_dir: self.stack.local.repository_location(Some(BASE_PATH)),
        };
        self.checker.check(&sources, label, None, &[]).await
    }

    /// Day `day`: its scheduled run (and a repeated delivery), maybe a run by hand, each with
    /// the faults drawn for it and checked after it; then the clock moves to the next day.
    pub async fn run_day(&mut self, day: usize) -> Result<(), WorkflowError> {
        let run_fault = self
            .rng
            .chance(self.config.fault_rate)
            .then(|| *self.rng.pick(&RunFault::ALL));
        self.run_day_with(day, run_fault).await
    }

    /// Day `day` with `run_fault` (and request faults and runs by hand as drawn).
    pub async fn run_day_with(
        &mut self,
        day: usize,
        run_fault: Option<RunFault>,
    ) -> Result<(), WorkflowError> {
        let scheduled = self.first_day + DAY * day as u32;
        let mut virtual_time = Duration::ZERO;
        if let Some(fault) = run_fault {
            self.prepare(fault, scheduled);
        }
        // The day's writes: each snapshot has new data to upload, as a nightly one does.
        for n in 0..2 {
            self.deps
                .opensearch
                .call(
                    http::Method::POST,
                    "/logs-2026/_doc",
                    &[],
                    Some(&json!({"message": format!("day {day} event {n}")})),
                )
                .await
                .map_err(|e| WorkflowError(format!("indexing the day's documents: {e}")))?;
        }
        let input = json!({"scheduled_time": rfc3339(scheduled)});
        let label = format!("day {day} scheduled {}", rfc3339(scheduled));
        let execution = self
            .execute(&label, input.clone(), scheduled, run_fault)
            .await?;
        self.report.scheduled_runs += 1;
        virtual_time += execution.virtual_duration();
        if run_fault == Some(RunFault::SnapshotNeverFinishes) {
            self.delete_stuck_snapshots().await?;
        }
        if run_fault == Some(RunFault::DuplicateDelivery) {
            let execution = self
                .execute(
                    &format!("{label} (delivered again)"),
                    input,
                    scheduled,
                    None,
                )
                .await?;
            virtual_time += execution.virtual_duration();
        }
        let ahead = run_fault == Some(RunFault::ExecutionClockAhead);
        if ahead || self.rng.chance(self.config.manual_rate) {
            let mut start = scheduled + 10 * HOUR;
            if ahead {
                start += HOUR * self.rng.between(1, 12) as u32;
            }
            let label = format!("day {day} by hand at {}", rfc3339(start));
            let execution = self.execute(&label, json!({}), start, None).await?;
            self.report.manual_runs += 1;
            virtual_time += execution.virtual_duration();
        }
        self.control.advance_clock(DAY.saturating_sub(virtual_time));
        if self.control.settled().await {
            Ok(())
        } else {
            Err(WorkflowError(
                "snapshots whose time is up are not written after 5 s".into(),
            ))
        }
    }

    /// Sets up what `fault` needs before the run.
    fn prepare(&mut self, fault: RunFault, scheduled: OffsetDateTime) {
        let mut plan = self.plan.lock().unwrap();
        match fault {
            RunFault::AutomatedSnapshotRunning => {
                let minutes = self.rng.between(10, 40);
                self.control
                    .start_automated_snapshot(Duration::from_secs(minutes * 60));
            }
            RunFault::SnapshotFails => {
                self.control
                    .set_next_snapshot_outcome(SnapshotOutcome::Failed {
                        reason: "disk full on node-1".into(),
                    })
            }
            RunFault::SnapshotPartial => self
                .control
                .set_next_snapshot_outcome(SnapshotOutcome::Partial),
            RunFault::SnapshotNeverFinishes => self
                .control
                .set_next_snapshot_outcome(SnapshotOutcome::NeverFinishes),
            RunFault::BlobMissing | RunFault::BlobTruncated => plan.damage = Some(fault),
            RunFault::FunctionKilled => {
                let (function, slow) = faults::kill_target(&mut self.rng);
                let after = if slow.is_some() {
                    Duration::from_millis(300)
                } else {
                    Duration::from_millis(5)
                };
                plan.kill = Some((function, slow, after));
            }
            RunFault::OverlappingExecution => self.workflow.set_other_running_executions(&[
                "arn:aws:states:local:123456789012:execution:ossnap-local:started-by-hand",
            ]),
            RunFault::OverlappingSnapshotAtRetention => plan.overlap_at = Some(scheduled + HOUR),
            RunFault::ClusterClockAhead => self
                .control
                .advance_clock(HOUR * self.rng.between(1, 6) as u32),
            RunFault::DuplicateDelivery | RunFault::ExecutionClockAhead => {}
        }
        if !matches!(
            fault,
            RunFault::BlobMissing
                | RunFault::BlobTruncated
                | RunFault::FunctionKilled
                | RunFault::OverlappingSnapshotAtRetention
        ) {
            // These take effect as armed; the others only once they happen, counted then.
            *self.report.faults.entry(fault.name().into()).or_default() += 1;
        }
    }

    /// One execution with its request faults, then the invariants.
    async fn execute(
        &mut self,
        label: &str,
        input: Value,
        start: OffsetDateTime,
        run_fault: Option<RunFault>,
    ) -> Result<Execution, WorkflowError> {
        let mut armed = Vec::new();
        for _ in 0..self.config.requests_per_run {
            if self.rng.chance(self.config.fault_rate) {
                let kind = *self.rng.pick(&RequestFault::ALL);
                let fault = kind.arm(&mut self.rng);
                self.control.add_fault(fault.clone());
                armed.push((kind, fault));
            }
        }
        self.plan.lock().unwrap().paused = Duration::ZERO;
        self.workflow.set_start_time(Some(start));
        let execution = self.workflow.run(input, Duration::ZERO, |_| {}).await?;
        let requests = self.control.requests();
        self.control.clear_requests();
        let mut pending = self.control.pending_faults();
        self.control.clear_faults();
        self.workflow.set_other_running_executions(&[]);
        for (kind, fault) in armed {
            match pending.iter().position(|left| *left == fault) {
                Some(position) => {
                    pending.remove(position);
                }
                None => {
                    self.faults_fired += 1;
                    *self.report.faults.entry(kind.name().into()).or_default() += 1;
                }
            }
        }
        let effects = {
            let mut plan = self.plan.lock().unwrap();
            plan.damage = None;
            plan.kill = None;
            plan.overlap_at = None;
            std::mem::take(&mut plan.effects)
        };
        for effect in effects {
            let kind = match effect {
                Effect::Damaged { uuid } => {
                    self.checker.note_damaged(&uuid);
                    run_fault.map_or("damaged", RunFault::name)
                }
                Effect::OverlapStarted { name, seen } => {
                    self.checker.note_running(&name, seen);
                    RunFault::OverlappingSnapshotAtRetention.name()
                }
            };
            *self.report.faults.entry(kind.into()).or_default() += 1;
        }
        let killed = execution.invocations.iter().any(|invocation| {
            invocation
                .outcome
                .as_ref()
                .is_err_and(crate::workflow::process_lost)
        });
        if killed {
            *self
                .report
                .faults
                .entry(RunFault::FunctionKilled.name().into())
                .or_default() += 1;
        }
        self.record(&execution, requests.len());
        let sources = Sources {
            deps: &self.deps,
            verifier: &self.verifier,
            repository_dir: self.stack.local.repository_location(Some(BASE_PATH)),
        };
        self.checker
            .check(&sources, label, Some(&execution), &requests)
            .await;
        Ok(execution)
    }

    fn record(&mut self, execution: &Execution, requests: usize) {
        let report = &mut self.report;
        report.runs += 1;
        report.requests += requests;
        report.retries += execution
            .events
            .iter()
            .filter(|event| matches!(event.kind, crate::workflow::EventKind::StateRetried { .. }))
            .count();
        let notified = |source: NotificationSource| {
            execution
                .notifications
                .iter()
                .any(|notification| notification.source == source)
        };
        match execution.status {
            Status::Succeeded => {
                report.runs_succeeded += 1;
                if execution.path().last() == Some(&"SkipOverlappingRun") {
                    report.runs_skipped += 1;
                }
            }
            Status::Failed { .. } => {
                report.runs_failed += 1;
                report.runs_failed_notified +=
                    usize::from(notified(NotificationSource::NotifyState));
            }
            Status::TimedOut => {
                report.runs_timed_out += 1;
                report.runs_timed_out_notified +=
                    usize::from(notified(NotificationSource::FailedRunsAlarm));
            }
        }
        self.costs.push(Cost {
            transitions: execution.transitions(),
            invocations: execution.invocations.len(),
            polls: execution.polls(),
        });
    }

    /// The operator's answer to the timeout alarm: delete the snapshot that never finishes.
    async fn delete_stuck_snapshots(&mut self) -> Result<(), WorkflowError> {
        let running = self
            .deps
            .opensearch
            .running_snapshots()
            .await
            .map_err(|e| WorkflowError(format!("listing running snapshots: {e}")))?;
        for stuck in running.iter().filter(|r| r.repository == REPOSITORY) {
            self.checker.note_operator_deletion(&stuck.snapshot);
            self.deps
                .opensearch
                .delete_snapshots(REPOSITORY, &[&stuck.snapshot])
                .await
                .map_err(|e| WorkflowError(format!("deleting {}: {e}", stuck.snapshot)))?;
        }
        Ok(())
    }

    /// The report so far.
    pub fn report(&self) -> Report {
        let mut report = self.report.clone();
        report.invariant_violations = self.checker.violations.len();
        report.violations = self.checker.violations.iter().take(50).cloned().collect();
        report.faulted_request_share = if report.requests == 0 {
            0.0
        } else {
            self.faults_fired as f64 / report.requests as f64
        };
        report.snapshots_taken = self.checker.snapshots_taken();
        report.snapshots_kept = self
            .checker
            .known()
            .values()
            .filter(|seen| seen.ours)
            .count();
        report.snapshots_deleted = self.checker.deleted;
        let of = |field: fn(&Cost) -> usize| {
            Spread::of(&self.costs.iter().map(field).collect::<Vec<_>>())
        };
        report.per_run = report::PerRun {
            transitions: of(|cost| cost.transitions),
            invocations: of(|cost| cost.invocations),
            polls: of(|cost| cost.polls),
        };
        report.wall_seconds = self.started.elapsed().as_secs_f64();
        report
    }
}

/// The soak of `config`: every day, then the 30-minute and 4-hour snapshots on their own.
pub async fn run(
    config: SoakConfig,
    mut progress: impl FnMut(usize, &Report),
) -> Result<Report, WorkflowError> {
    let runs = config.runs;
    let mut soak = Soak::start(config).await?;
    for day in 0..runs {
        soak.run_day(day).await?;
        progress(day + 1, &soak.report());
    }
    let mut report = soak.report();
    for minutes in [30, 240] {
        report.long_snapshots.push(long_snapshot(minutes).await?);
    }
    Ok(report)
}

/// One snapshot of `minutes` through the workflow, on a stack of its own: what it costs.
pub async fn long_snapshot(minutes: u64) -> Result<LongSnapshot, WorkflowError> {
    let stack = TestStack::start_with(|local| {
        local.snapshot_duration = Duration::from_secs(minutes * 60);
    })
    .await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs-2026", 10).await;
    let control = stack.local.shared_control().expect("the emulator").clone();
    control.freeze_clock();
    let mut workflow = Workflow::start(&stack, &[], None).await?;
    let plan = Arc::new(Mutex::new(Plan::default()));
    workflow.before_invoke(hook(
        control,
        plan,
        deps,
        stack.local.repository_location(Some(BASE_PATH)),
    ));
    let execution = workflow
        .run(
            json!({"scheduled_time": "2026-11-28T02:00:00Z"}),
            Duration::ZERO,
            |_| {},
        )
        .await?;
    Ok(LongSnapshot::new(
        minutes,
        execution.status == Status::Succeeded,
        Cost {
            transitions: execution.transitions(),
            invocations: execution.invocations.len(),
            polls: execution.polls(),
        },
        execution.poll_waits(),
    ))
}

/// Before each invocation: the cluster's clock catches up with the execution's, then the run's
/// planned damage, kill or overlapping snapshot, when its function comes.
fn hook(
    control: Arc<Control>,
    plan: Arc<Mutex<Plan>>,
    deps: Deps,
    repository_dir: PathBuf,
) -> BeforeInvoke {
    Arc::new(move |invoking: Invoking| {
        let control = control.clone();
        let plan = plan.clone();
        let deps = deps.clone();
        let repository_dir = repository_dir.clone();
        Box::pin(async move {
            let moved;
            let (damage, kill, overlap_at) = {
                let mut plan = plan.lock().unwrap();
                moved = invoking.paused > plan.paused;
                control.advance_clock(invoking.paused.saturating_sub(plan.paused));
                plan.paused = plan.paused.max(invoking.paused);
                let function = invoking.function.as_str();
                let first_verify = function == "verify" && invoking.input["resume_from"] == 0;
                (
                    plan.damage.filter(|_| first_verify).inspect(|_| {
                        plan.damage = None;
                    }),
                    plan.kill.take_if(|(target, _, _)| *target == function),
                    plan.overlap_at.take_if(|_| function == "retention"),
                )
            };
            if moved {
                control.settled().await;
            }
            let mut effects = Vec::new();
            if let Some(damage) = damage {
                let snapshot = invoking.input["snapshot"].as_str().unwrap_or_default();
                if let Some(uuid) = damage_blob(&deps, &repository_dir, snapshot, damage).await {
                    effects.push(Effect::Damaged { uuid });
                }
            }
            if let Some(at) = overlap_at {
                if let Some(effect) = start_overlapping_snapshot(&deps, at).await {
                    effects.push(effect);
                }
            }
            plan.lock().unwrap().effects.extend(effects);
            match kill {
                Some((_, slow, after)) => {
                    if let Some(slow) = slow {
                        control.add_fault(slow);
                    }
                    InvokeAction {
                        kill_after: Some(after),
                    }
                }
                None => InvokeAction::default(),
            }
        })
    })
}

/// Removes the snapshot's root `snap-*.dat`, or cuts a shard's in half, in the S3 server's
/// storage; returns the snapshot's uuid when done.
async fn damage_blob(
    deps: &Deps,
    repository_dir: &Path,
    snapshot: &str,
    damage: RunFault,
) -> Option<String> {
    let uuid = deps
        .opensearch
        .get_snapshot(REPOSITORY, snapshot)
        .await
        .ok()?
        .uuid?;
    let blob = format!("snap-{uuid}.dat");
    if damage == RunFault::BlobMissing {
        std::fs::remove_file(repository_dir.join(&blob)).ok()?;
        return Some(uuid);
    }
    let shard_blob = std::fs::read_dir(repository_dir.join("indices"))
        .ok()?
        .filter_map(Result::ok)
        .map(|index| index.path().join("0").join(&blob))
        .find(|path| path.exists())?;
    let length = std::fs::metadata(&shard_blob).ok()?.len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&shard_blob)
        .ok()?;
    file.set_len(length / 2).ok()?;
    Some(uuid)
}

/// Another execution's snapshot (ours, scheduled at `at`) started as this run's retention begins.
async fn start_overlapping_snapshot(deps: &Deps, at: OffsetDateTime) -> Option<Effect> {
    let name = ossnap_core::snapshot::snapshot_name("ossnap", at);
    let body = json!({
        "indices": ossnap_core::config::DEFAULT_INDICES,
        "include_global_state": false,
        "metadata": {
            "taken_by": "ossnap",
            "scheduled_time": rfc3339(at),
            "run_id": "arn:aws:states:local:123456789012:execution:ossnap-local:overlapping",
        },
    });
    deps.opensearch
        .create_snapshot(REPOSITORY, &name, &body)
        .await
        .ok()?;
    let info = deps.opensearch.get_snapshot(REPOSITORY, &name).await.ok()?;
    let seen = Seen {
        uuid: info.uuid.unwrap_or_default(),
        state: info.state.unwrap_or_default(),
        healthy: false,
        ours: true,
        start_millis: info.start_time_in_millis.unwrap_or_default(),
    };
    Some(Effect::OverlapStarted { name, seen })
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).expect("a time formats as RFC 3339")
}
