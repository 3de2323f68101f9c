//! The conformance suite's error probes: each request, and what every engine must answer.

use serde_json::{json, Value};

/// One request of the suite and what every engine must answer.
#[derive(Debug, Clone)]
pub struct Probe {
    pub name: String,
    pub method: http::Method,
    pub path: String,
    pub body: Option<Value>,
    /// The status on OpenSearch 1.x/2.x and on 3.x, where they differ.
    pub status: (u16, u16),
    /// `error.type`, for a refusal.
    pub error_type: Option<&'static str>,
}

/// The invalid snapshot names of matrix A1 that fit in a URL path segment once escaped (the
/// empty name is another route); ossnap refuses each before sending anything.
pub const INVALID_SNAPSHOT_NAMES: [&str; 13] = [
    "Daily", "a b", "a,b", "a#b", "_x", "x/y", "x*", "x?", "x\"y", "x<y", "x>y", "x|y", "x\\y",
];

fn probe(
    name: impl Into<String>,
    method: http::Method,
    path: impl Into<String>,
    body: Option<Value>,
    status: (u16, u16),
    error_type: Option<&'static str>,
) -> Probe {
    Probe {
        name: name.into(),
        method,
        path: path.into(),
        body,
        status,
        error_type,
    }
}

/// Refusals that need the repository `ossnap` holding the snapshot `existing` of the index
/// `logs-2026.11`.
pub fn before_running(existing: &str) -> Vec<Probe> {
    let body = || Some(json!({"indices": "logs-2026.11", "include_global_state": false}));
    let mut probes: Vec<Probe> = INVALID_SNAPSHOT_NAMES
        .iter()
        .map(|name| {
            let escaped =
                percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
            probe(
                format!("invalid snapshot name {name:?}"),
                http::Method::PUT,
                format!("/_snapshot/ossnap/{escaped}"),
                body(),
                (400, 400),
                Some("invalid_snapshot_name_exception"),
            )
        })
        .collect();
    let not_found = (404, 404);
    probes.extend([
        probe(
            "snapshot of a missing index",
            http::Method::PUT,
            "/_snapshot/ossnap/probe-missing-index",
            Some(json!({"indices": "no-such-index"})),
            not_found,
            Some("index_not_found_exception"),
        ),
        probe(
            "excluding a missing index by name",
            http::Method::PUT,
            "/_snapshot/ossnap/probe-missing-exclusion",
            Some(json!({"indices": "*,-no-such-index"})),
            not_found,
            Some("index_not_found_exception"),
        ),
        probe(
            "a name that already exists",
            http::Method::PUT,
            format!("/_snapshot/ossnap/{existing}"),
            body(),
            (400, 400),
            Some("invalid_snapshot_name_exception"),
        ),
        probe(
            "restore over an open index",
            http::Method::POST,
            format!("/_snapshot/ossnap/{existing}/_restore"),
            Some(json!({"indices": "logs-2026.11"})),
            (500, 500),
            Some("snapshot_restore_exception"),
        ),
        probe(
            "a limit of one shard per node",
            http::Method::PUT,
            "/_cluster/settings",
            Some(json!({"persistent": {"cluster.max_shards_per_node": 1}})),
            (200, 200),
            None,
        ),
        probe(
            "restore beyond the shard limit",
            http::Method::POST,
            format!("/_snapshot/ossnap/{existing}/_restore"),
            Some(json!({"indices": "logs-2026.11", "rename_pattern": "(.+)", "rename_replacement": "probe-$1"})),
            (400, 400),
            Some("validation_exception"),
        ),
        probe(
            "the default shard limit again",
            http::Method::PUT,
            "/_cluster/settings",
            Some(json!({"persistent": {"cluster.max_shards_per_node": null}})),
            (200, 200),
            None,
        ),
        probe(
            "snapshot into a missing repository",
            http::Method::PUT,
            "/_snapshot/no-such-repository/probe",
            body(),
            not_found,
            Some("repository_missing_exception"),
        ),
        probe(
            "a missing repository",
            http::Method::GET,
            "/_snapshot/no-such-repository",
            None,
            not_found,
            Some("repository_missing_exception"),
        ),
        probe(
            "a missing snapshot",
            http::Method::GET,
            "/_snapshot/ossnap/no-such-snapshot",
            None,
            not_found,
            Some("snapshot_missing_exception"),
        ),
        probe(
            "deleting a missing snapshot",
            http::Method::DELETE,
            "/_snapshot/ossnap/no-such-snapshot",
            None,
            not_found,
            Some("snapshot_missing_exception"),
        ),
    ]);
    probes
}

/// A second snapshot while one runs, with the cluster at its limit of one snapshot operation.
pub fn concurrent() -> Probe {
    probe(
        "a concurrent snapshot",
        http::Method::PUT,
        "/_snapshot/ossnap/probe-concurrent",
        Some(json!({"indices": "logs-2026.11"})),
        (503, 409),
        Some("concurrent_snapshot_execution_exception"),
    )
}

/// The deletion of `running` in `repository`, below the limit of concurrent operations (at
/// the limit a real node refuses the deletion as a concurrent operation too).
pub fn abort(repository: &str, running: &str) -> Vec<Probe> {
    vec![
        probe(
            "deleting a running snapshot aborts it",
            http::Method::DELETE,
            format!("/_snapshot/{repository}/{running}"),
            None,
            (200, 200),
            None,
        ),
        probe(
            "the aborted snapshot is gone",
            http::Method::GET,
            format!("/_snapshot/{repository}/{running}"),
            None,
            (404, 404),
            Some("snapshot_missing_exception"),
        ),
    ]
}
