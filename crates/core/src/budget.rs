//! Each OpenSearch function's time budget: its worst case of calls, retries and pauses, and the
//! Lambda timeout derived from it. `infra/template.yaml` sets each function's `Timeout` to
//! [`Budget::lambda_timeout_seconds`] (and each Task's `TimeoutSeconds` above it);
//! `tests/tests/integration/budgets.rs` checks both, so that a hung call always ends as an `Unavailable` the
//! function reports (and, in `snapshot`, reconciles) instead of Lambda killing the function.
//!
//! `verify` reads S3, not OpenSearch: its work grows with the repository, and its timeout is set
//! by hand in the template.

use std::time::Duration;

use crate::opensearch::REQUEST_TIMEOUT;

/// Init (a cold start, the credential chain) and the runtime's own overhead, on top of the calls.
pub const MARGIN: Duration = Duration::from_secs(15);

/// The most `retention` sends in one run: a listing, a re-read, and deletions with their
/// re-listings. Deletions the budget cannot cover wait for the next run.
pub const RETENTION_MAX_REQUESTS: u32 = 9;

/// One function's worst case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The function's name, as in `crates/<function>` and the template's `<Name>Function`.
    pub function: &'static str,
    /// OpenSearch calls on the longest path, each of which may last [`REQUEST_TIMEOUT`].
    pub requests: u32,
    /// Pauses between them on that path.
    pub pauses: Duration,
}

impl Budget {
    pub const fn worst_case(&self) -> Duration {
        let calls = REQUEST_TIMEOUT.as_secs() * self.requests as u64;
        Duration::from_secs(calls + self.pauses.as_secs())
    }

    /// The Lambda timeout: the worst case and the margin, in whole seconds.
    pub const fn lambda_timeout_seconds(&self) -> u64 {
        self.worst_case().as_secs() + MARGIN.as_secs()
    }
}

/// The sum of `pauses`, in whole seconds.
pub(crate) const fn total(pauses: &[Duration]) -> Duration {
    let mut seconds = 0;
    let mut i = 0;
    while i < pauses.len() {
        seconds += pauses[i].as_secs();
        i += 1;
    }
    Duration::from_secs(seconds)
}

/// The repository read, its PUT, and `_verify` retried while IAM propagates.
pub const REGISTER: Budget = Budget {
    function: "register",
    requests: 2 + 1 + crate::register::VERIFY_BACKOFF.len() as u32,
    pauses: total(&crate::register::VERIFY_BACKOFF),
};

/// `_snapshot/_status`, the PUT, and, when its answer is lost, the read-backs of reconcile.
pub const SNAPSHOT: Budget = Budget {
    function: "snapshot",
    requests: 2 + crate::snapshot::RECONCILE_PAUSES.len() as u32,
    pauses: total(&crate::snapshot::RECONCILE_PAUSES),
};

/// The snapshot, then its `_status` while it runs.
pub const CHECK_STATUS: Budget = Budget {
    function: "check-status",
    requests: 2,
    pauses: Duration::ZERO,
};

pub const RETENTION: Budget = Budget {
    function: "retention",
    requests: RETENTION_MAX_REQUESTS,
    pauses: Duration::ZERO,
};

/// Every OpenSearch function's budget.
pub const ALL: [Budget; 4] = [REGISTER, SNAPSHOT, CHECK_STATUS, RETENTION];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_timeout_outlasts_the_worst_case_within_lambdas_limit() {
        for budget in ALL {
            let timeout = Duration::from_secs(budget.lambda_timeout_seconds());
            assert!(timeout > budget.worst_case(), "{budget:?}");
            assert!(timeout <= Duration::from_secs(900), "{budget:?}");
        }
        // The case of issue 15: two calls of 30 s cannot fit in check-status's old 30 s.
        assert!(CHECK_STATUS.lambda_timeout_seconds() > 60);
    }
}
