//! The conformance suite's error probes and what each engine answered to them.
//!
//! A [`Transcript`] holds, per probe, the request and the answer with volatile fields masked.
//! The real engines' transcripts are kept under `tests/transcripts/` with their version, so the
//! emulator is compared with them on every run, without Java.

use std::path::PathBuf;

use ossnap_core::Deps;
use ossnap_local_stack::Engine;
use serde::{Deserialize, Serialize};
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

pub mod probes {
    use super::*;

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
}

/// One probe's request and answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub probe: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub body: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transcript {
    pub engine: String,
    /// The OpenSearch version that answered (the emulator's claimed one for the emulator).
    pub version: String,
    pub exchanges: Vec<Exchange>,
    #[serde(skip)]
    generation_3: bool,
    #[serde(skip)]
    expectations: Vec<Probe>,
}

/// Answer fields that differ from run to run.
const VOLATILE: [&str; 9] = [
    "uuid",
    "index_uuid",
    "start_time",
    "start_time_in_millis",
    "end_time",
    "end_time_in_millis",
    "duration_in_millis",
    "version_id",
    "version",
];

impl Transcript {
    /// An empty transcript of `engine`; `generation_3` is whether it answers as OpenSearch 3.x.
    pub fn new(engine: Engine, generation_3: bool) -> Transcript {
        Transcript {
            engine: engine.name().to_owned(),
            version: engine.version().unwrap_or("emulator").to_owned(),
            exchanges: Vec::new(),
            generation_3,
            expectations: Vec::new(),
        }
    }

    /// Sends `probe` and keeps the answer.
    pub async fn answer(&mut self, deps: &Deps, probe: Probe) {
        let (status, body) = deps
            .opensearch
            .exchange(&probe.method, &probe.path, &[], probe.body.as_ref())
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", probe.name));
        let mut body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        mask(&mut body);
        self.exchanges.push(Exchange {
            probe: probe.name.clone(),
            method: probe.method.to_string(),
            path: probe.path.clone(),
            status,
            body,
        });
        self.expectations.push(probe);
    }

    /// Every answer has the status and `error.type` its probe expects on this generation.
    pub fn check_expectations(&self) {
        for (exchange, probe) in self.exchanges.iter().zip(&self.expectations) {
            let status = if self.generation_3 {
                probe.status.1
            } else {
                probe.status.0
            };
            assert_eq!(
                (exchange.status, exchange.body["error"]["type"].as_str()),
                (status, probe.error_type),
                "{}: {}: {}",
                self.engine,
                probe.name,
                exchange.body
            );
        }
    }

    fn file(engine: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("transcripts")
            .join(format!("{engine}.json"))
    }

    /// Writes this transcript under `tests/transcripts/` when `OSSNAP_RECORD_TRANSCRIPTS=1`.
    pub fn record_if_asked(&self) {
        if std::env::var("OSSNAP_RECORD_TRANSCRIPTS").as_deref() != Ok("1") {
            return;
        }
        let text = serde_json::to_string_pretty(self).expect("a transcript serialises");
        std::fs::write(Transcript::file(&self.engine), text + "\n")
            .expect("tests/transcripts is writable");
    }

    /// The recorded transcript of a real engine.
    pub fn recorded(engine: Engine) -> Transcript {
        let path = Transcript::file(engine.name());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!(
                "{}: {error} (record it with OSSNAP_RECORD_TRANSCRIPTS=1 cargo test -p ossnap-tests --test conformance)",
                path.display()
            )
        });
        serde_json::from_str(&text).expect("a transcript parses")
    }

    /// Asserts that this transcript's answers equal `recorded`'s, probe by probe (status and
    /// masked body).
    pub fn assert_same_answers(&self, recorded: &Transcript) {
        assert_eq!(
            self.exchanges.len(),
            recorded.exchanges.len(),
            "the probes changed: record the transcripts again"
        );
        for (ours, theirs) in self.exchanges.iter().zip(&recorded.exchanges) {
            assert_eq!(
                (&ours.probe, &ours.path),
                (&theirs.probe, &theirs.path),
                "the probes changed: record the transcripts again"
            );
            assert_eq!(
                (ours.status, &ours.body),
                (theirs.status, &theirs.body),
                "{} answers {:?} unlike {} {}",
                self.engine,
                ours.probe,
                recorded.engine,
                recorded.version
            );
        }
    }
}

fn mask(value: &mut Value) {
    match value {
        Value::String(text) => *text = mask_uuids(text),
        Value::Object(object) => {
            for (key, field) in object.iter_mut() {
                if VOLATILE.contains(&key.as_str()) && !field.is_object() {
                    *field = json!("<masked>");
                } else {
                    mask(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

/// `[repository:snapshot/<uuid>]` in a reason, with the uuid (22 URL-safe base64 characters)
/// masked.
fn mask_uuids(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let candidate = bytes[at] == b'/'
            && bytes.get(at + 23) == Some(&b']')
            && bytes[at + 1..at + 23]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-');
        if candidate {
            out.push_str("/<masked>]");
            at += 24;
        } else {
            let next = text[at..].chars().next().expect("within the text");
            out.push(next);
            at += next.len_utf8();
        }
    }
    out
}
