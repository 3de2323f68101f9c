//! What an engine answered to the probes: per probe, the request and the answer with volatile
//! fields masked. The real engines' transcripts are kept under `tests/transcripts/` with their
//! version, so the emulator is compared with them on every run, without Java.

use std::path::PathBuf;

use ossnap_core::Deps;
use ossnap_local_stack::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::probes::Probe;

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
                "{}: {error} (record it with OSSNAP_RECORD_TRANSCRIPTS=1 cargo test -p ossnap-tests --test integration conformance::)",
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
