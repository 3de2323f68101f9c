//! What a soak reports: printed, and written as JSON (`target/soak/report.json`).

use std::collections::BTreeMap;

use serde::Serialize;

/// Median, 99th percentile and maximum of a per-run count.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Spread {
    pub median: f64,
    pub p99: f64,
    pub max: f64,
}

impl Spread {
    /// Nearest-rank percentiles of `values`.
    pub fn of(values: &[usize]) -> Spread {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let rank = |p: f64| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[index] as f64
        };
        Spread {
            median: rank(0.5),
            p99: rank(0.99),
            max: sorted.last().map_or(0.0, |max| *max as f64),
        }
    }
}

/// One execution's running cost: what Step Functions and Lambda bill.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cost {
    pub transitions: usize,
    pub invocations: usize,
    pub polls: usize,
}

/// A single snapshot of a given length, run through the workflow on its own.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LongSnapshot {
    pub duration_minutes: u64,
    pub succeeded: bool,
    pub workflow: Cost,
    /// The pause check-status chose after each poll, in seconds (0 once the snapshot is done).
    pub waits: Vec<u64>,
    /// The same run if check-status were polled every 60 s instead (each extra poll is one
    /// Wait, one CheckStatus and one Choice: three transitions and one invocation).
    pub polling_every_60_s: Cost,
}

impl LongSnapshot {
    pub fn new(
        duration_minutes: u64,
        succeeded: bool,
        workflow: Cost,
        waits: Vec<u64>,
    ) -> LongSnapshot {
        let polls = duration_minutes as usize;
        let extra = polls.saturating_sub(workflow.polls);
        LongSnapshot {
            duration_minutes,
            succeeded,
            polling_every_60_s: Cost {
                transitions: workflow.transitions + 3 * extra,
                invocations: workflow.invocations + extra,
                polls,
            },
            workflow,
            waits,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PerRun {
    pub transitions: Spread,
    pub invocations: Spread,
    pub polls: Spread,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub seed: u64,
    /// Executions of the state machine (scheduled, repeated deliveries and starts by hand).
    pub runs: usize,
    pub scheduled_runs: usize,
    pub manual_runs: usize,
    pub invariant_violations: usize,
    /// The first violations found, in order.
    pub violations: Vec<String>,
    /// Faults that took effect, by kind.
    pub faults: BTreeMap<String, usize>,
    /// OpenSearch requests the functions sent, and the share of them answered by a fault.
    pub requests: usize,
    pub faulted_request_share: f64,
    /// Retries of failed Task states.
    pub retries: usize,
    pub runs_succeeded: usize,
    pub runs_skipped: usize,
    pub runs_failed: usize,
    pub runs_failed_notified: usize,
    pub runs_timed_out: usize,
    pub runs_timed_out_notified: usize,
    pub snapshots_taken: usize,
    pub snapshots_kept: usize,
    pub snapshots_deleted: usize,
    pub per_run: PerRun,
    pub long_snapshots: Vec<LongSnapshot>,
    pub wall_seconds: f64,
}

impl Report {
    /// The report as people read it.
    pub fn render(&self) -> String {
        let spread = |s: &Spread| format!("median {}, p99 {}, max {}", s.median, s.p99, s.max);
        let mut out = format!(
            "soak: seed {}, {} runs ({} scheduled, {} by hand) in {:.0} s\n\
             invariant violations: {}\n\
             faults injected: {} ({:.1}% of {} requests answered by a fault)\n",
            self.seed,
            self.runs,
            self.scheduled_runs,
            self.manual_runs,
            self.wall_seconds,
            self.invariant_violations,
            self.faults.values().sum::<usize>(),
            self.faulted_request_share * 100.0,
            self.requests,
        );
        for (kind, count) in &self.faults {
            out.push_str(&format!("  {kind:<36} {count}\n"));
        }
        out.push_str(&format!(
            "retries: {}\n\
             runs: {} succeeded ({} skipped as overlapping), {} failed ({} notified), {} timed out ({} notified)\n\
             snapshots: {} taken, {} kept, {} deleted by retention\n\
             per run: transitions {}; Lambda invocations {}; polls {}\n",
            self.retries,
            self.runs_succeeded,
            self.runs_skipped,
            self.runs_failed,
            self.runs_failed_notified,
            self.runs_timed_out,
            self.runs_timed_out_notified,
            self.snapshots_taken,
            self.snapshots_kept,
            self.snapshots_deleted,
            spread(&self.per_run.transitions),
            spread(&self.per_run.invocations),
            spread(&self.per_run.polls),
        ));
        for long in &self.long_snapshots {
            out.push_str(&format!(
                "a {}-minute snapshot: {} transitions, {} invocations, {} polls (waits {:?} s); polling every 60 s: {} transitions, {} invocations, {} polls\n",
                long.duration_minutes,
                long.workflow.transitions,
                long.workflow.invocations,
                long.workflow.polls,
                long.waits,
                long.polling_every_60_s.transitions,
                long.polling_every_60_s.invocations,
                long.polling_every_60_s.polls,
            ));
        }
        for violation in &self.violations {
            out.push_str(&format!("VIOLATION {violation}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<usize> = (1..=100).collect();
        assert_eq!(
            Spread::of(&values),
            Spread {
                median: 50.0,
                p99: 99.0,
                max: 100.0
            }
        );
        assert_eq!(Spread::of(&[]), Spread::default());
        assert_eq!(Spread::of(&[7]).p99, 7.0);
    }

    #[test]
    fn polling_every_minute_adds_three_transitions_per_extra_poll() {
        let long = LongSnapshot::new(
            30,
            true,
            Cost {
                transitions: 22,
                invocations: 8,
                polls: 3,
            },
            vec![900, 870, 0],
        );
        assert_eq!(
            long.polling_every_60_s,
            Cost {
                transitions: 22 + 3 * 27,
                invocations: 8 + 27,
                polls: 30
            }
        );
    }
}
