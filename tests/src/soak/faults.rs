//! The faults the soak injects, from matrices B, C and D of
//! `shared/reference/failure-modes-and-security.md`: answers the emulator gives to single
//! requests ([`RequestFault`]), and what happens to a whole run ([`RunFault`]).

use std::time::Duration;

use ossnap_local_stack::Fault;

use super::rng::Rng;
use crate::stack::error_body;

/// Where the workflow's functions send requests (repository `ossnap`): `register`'s read, PUT
/// and `_verify`, `snapshot`'s `_status`, PUT and read-back, `check-status`'s reads, and
/// `retention`'s listings and DELETE.
const TARGETS: [(&str, &str); 8] = [
    ("GET", "/_snapshot/ossnap"),
    ("PUT", "/_snapshot/ossnap"),
    ("POST", "/_snapshot/ossnap/_verify"),
    ("GET", "/_snapshot/_status"),
    ("PUT", "/_snapshot/ossnap/ossnap-*"),
    ("GET", "/_snapshot/ossnap/ossnap-*"),
    ("GET", "/_snapshot/ossnap/_all"),
    ("DELETE", "/_snapshot/ossnap/*"),
];
const CREATE: (&str, &str) = ("PUT", "/_snapshot/ossnap/ossnap-*");

/// One request answered otherwise than the cluster would (matrix B).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFault {
    /// B7: the create was accepted, its answer lost behind a 504 page.
    GatewayTimeoutAfterCreate,
    /// B6: 429 with `es_rejected_execution_exception`, or AWS's plain "Too Many Requests".
    Throttled,
    /// A 503 page from the load balancer.
    Unavailable,
    /// B5: `concurrent_snapshot_execution_exception` as 503 (2.x), 409 (3.x) or 429.
    ConcurrentSnapshot,
    /// B17: the connection closed without an answer (after the operation, half the time).
    ConnectionReset,
    /// B17: the real answer, 50 to 400 ms late.
    SlowAnswer,
}

impl RequestFault {
    pub const ALL: [RequestFault; 6] = [
        RequestFault::GatewayTimeoutAfterCreate,
        RequestFault::Throttled,
        RequestFault::Unavailable,
        RequestFault::ConcurrentSnapshot,
        RequestFault::ConnectionReset,
        RequestFault::SlowAnswer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RequestFault::GatewayTimeoutAfterCreate => "gateway_timeout_after_create",
            RequestFault::Throttled => "throttled",
            RequestFault::Unavailable => "unavailable",
            RequestFault::ConcurrentSnapshot => "concurrent_snapshot",
            RequestFault::ConnectionReset => "connection_reset",
            RequestFault::SlowAnswer => "slow_answer",
        }
    }

    /// The emulator fault for one request, its target drawn from `rng`.
    pub fn arm(self, rng: &mut Rng) -> Fault {
        let (method, path) = *rng.pick(&TARGETS);
        let mutating = method != "GET";
        match self {
            RequestFault::GatewayTimeoutAfterCreate => Fault {
                after_accept: true,
                ..Fault::new(
                    CREATE.0,
                    CREATE.1,
                    504,
                    "<html><head><title>504 Gateway Time-out</title></head><body>504</body></html>",
                )
            },
            RequestFault::Throttled if rng.chance(0.5) => Fault::new(
                method,
                path,
                429,
                &error_body(
                    "es_rejected_execution_exception",
                    "rejected execution of coordinating operation",
                    429,
                ),
            ),
            RequestFault::Throttled => Fault::new(method, path, 429, "Too Many Requests"),
            RequestFault::Unavailable => Fault::new(
                method,
                path,
                503,
                "<html><body><h1>503 Service Unavailable</h1></body></html>",
            ),
            RequestFault::ConcurrentSnapshot => {
                let status = *rng.pick(&[503, 409, 429]);
                Fault::new(
                    CREATE.0,
                    CREATE.1,
                    status,
                    &error_body(
                        "concurrent_snapshot_execution_exception",
                        "[ossnap:ossnap] Cannot start another operation, already running [1] operations and the current limit for concurrent snapshot operations is set to [1]",
                        status,
                    ),
                )
            }
            RequestFault::ConnectionReset => Fault {
                after_accept: mutating && rng.chance(0.5),
                ..Fault::connection_reset(method, path)
            },
            RequestFault::SlowAnswer => Fault {
                after_accept: mutating,
                ..Fault::slow_answer(method, path, Duration::from_millis(rng.between(50, 400)))
            },
        }
    }
}

/// What happens to a whole run (matrices B, C and D).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFault {
    /// AWS's hourly `cs-automated` snapshot runs for 10 to 40 minutes as the run starts.
    AutomatedSnapshotRunning,
    /// B13: the snapshot ends FAILED.
    SnapshotFails,
    /// B14: the snapshot ends PARTIAL.
    SnapshotPartial,
    /// B16: the snapshot never finishes; the execution times out, and the operator deletes it.
    SnapshotNeverFinishes,
    /// C1: the new snapshot's root `snap-*.dat` disappears from the bucket before Verify.
    BlobMissing,
    /// C2: a shard's `snap-*.dat` of the new snapshot is cut in half before Verify.
    BlobTruncated,
    /// D2: a function is killed while it works (snapshot during its PUT, check-status during a
    /// read, retention during its DELETE, or verify).
    FunctionKilled,
    /// D1: the same scheduled time is delivered twice.
    DuplicateDelivery,
    /// D3: another execution is listed running: this one skips.
    OverlappingExecution,
    /// D3/D4: another execution's snapshot (ours, another scheduled time), which the listing
    /// missed, starts just before this run's retention.
    OverlappingSnapshotAtRetention,
    /// The cluster's clock jumps one to six hours ahead as the run starts.
    ClusterClockAhead,
    /// A run started by hand whose execution clock is 1 to 12 hours ahead (its snapshot is
    /// named from the future).
    ExecutionClockAhead,
}

impl RunFault {
    pub const ALL: [RunFault; 12] = [
        RunFault::AutomatedSnapshotRunning,
        RunFault::SnapshotFails,
        RunFault::SnapshotPartial,
        RunFault::SnapshotNeverFinishes,
        RunFault::BlobMissing,
        RunFault::BlobTruncated,
        RunFault::FunctionKilled,
        RunFault::DuplicateDelivery,
        RunFault::OverlappingExecution,
        RunFault::OverlappingSnapshotAtRetention,
        RunFault::ClusterClockAhead,
        RunFault::ExecutionClockAhead,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RunFault::AutomatedSnapshotRunning => "automated_snapshot_running",
            RunFault::SnapshotFails => "snapshot_fails",
            RunFault::SnapshotPartial => "snapshot_partial",
            RunFault::SnapshotNeverFinishes => "snapshot_never_finishes",
            RunFault::BlobMissing => "blob_missing",
            RunFault::BlobTruncated => "blob_truncated",
            RunFault::FunctionKilled => "function_killed",
            RunFault::DuplicateDelivery => "duplicate_delivery",
            RunFault::OverlappingExecution => "overlapping_execution",
            RunFault::OverlappingSnapshotAtRetention => "overlapping_snapshot_at_retention",
            RunFault::ClusterClockAhead => "cluster_clock_ahead",
            RunFault::ExecutionClockAhead => "execution_clock_ahead",
        }
    }
}

/// The functions a [`RunFault::FunctionKilled`] may hit, and the slow answer that keeps each
/// busy long enough to be killed mid-request.
pub fn kill_target(rng: &mut Rng) -> (&'static str, Option<Fault>) {
    let slow = |method: &str, path: &str| Fault {
        after_accept: method != "GET",
        ..Fault::slow_answer(method, path, Duration::from_millis(1500))
    };
    match rng.between(0, 3) {
        0 => ("snapshot", Some(slow(CREATE.0, CREATE.1))),
        1 => (
            "check-status",
            Some(slow("GET", "/_snapshot/ossnap/ossnap-*")),
        ),
        2 => ("retention", Some(slow("DELETE", "/_snapshot/ossnap/*"))),
        _ => ("verify", None),
    }
}
