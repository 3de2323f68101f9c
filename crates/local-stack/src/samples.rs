//! Indices with generated documents: the sample indices `--seed` creates, the same on every
//! engine, and larger ones for benchmarks.

use serde_json::{json, Value};

pub(crate) struct SampleIndex<'a> {
    pub name: &'a str,
    pub shards: u32,
    pub documents: usize,
}

pub(crate) const SAMPLE_INDICES: [SampleIndex<'static>; 3] = [
    SampleIndex {
        name: "orders",
        shards: 2,
        documents: 120,
    },
    SampleIndex {
        name: "customers",
        shards: 1,
        documents: 40,
    },
    SampleIndex {
        name: "logs-2026.01",
        shards: 3,
        documents: 300,
    },
];

impl SampleIndex<'_> {
    pub fn mappings(&self) -> Value {
        json!({"properties": {"n": {"type": "long"}, "label": {"type": "keyword"}}})
    }

    /// The id and source of document `n`.
    pub fn document(&self, n: usize) -> (String, Value) {
        (
            format!("{}-{n}", self.name),
            json!({"n": n, "label": format!("{} sample {n}", self.name)}),
        )
    }
}
