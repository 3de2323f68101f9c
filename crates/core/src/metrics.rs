//! CloudWatch Embedded Metric Format: one JSON line on stdout per measurement, which CloudWatch
//! Logs turns into metrics in the `ossnap` namespace, so dashboards and alarms need no log
//! parsing.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "ossnap";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Bytes,
    Count,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Seconds => "Seconds",
            Unit::Bytes => "Bytes",
            Unit::Count => "Count",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub value: f64,
}

impl Metric {
    pub fn new(name: &'static str, unit: Unit, value: impl Into<f64>) -> Metric {
        Metric {
            name,
            unit,
            value: value.into(),
        }
    }
}

/// The EMF document for `metrics`, with `Function` and `Repository` as dimensions.
/// What every ossnap metric is keyed by: the function, the repository, and the stack that
/// deployed the function (`OSSNAP_STACK`), so that two stacks, one per domain, never mix their
/// metrics or their alarms even with the same repository name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimensions<'a> {
    pub function: &'a str,
    pub repository: &'a str,
    pub stack: Option<&'a str>,
}

pub fn emf_line(dimensions: Dimensions<'_>, metrics: &[Metric], timestamp_ms: i64) -> String {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|m| json!({"Name": m.name, "Unit": m.unit.name()}))
        .collect();
    let mut names = vec!["Function", "Repository"];
    let mut document = Map::new();
    document.insert("Function".into(), json!(dimensions.function));
    document.insert("Repository".into(), json!(dimensions.repository));
    if let Some(stack) = dimensions.stack {
        names.push("Stack");
        document.insert("Stack".into(), json!(stack));
    }
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [names],
                "Metrics": definitions,
            }]
        }),
    );
    for metric in metrics {
        document.insert(metric.name.into(), json!(metric.value));
    }
    Value::Object(document).to_string()
}

/// Whether [`emit`] writes: on in the functions, off in the command line, whose stdout is its
/// own output (a table or one JSON document) and which CloudWatch never reads.
static EMITTING: AtomicBool = AtomicBool::new(true);

/// Stops [`emit`] for the rest of the process.
pub fn disable() {
    EMITTING.store(false, Ordering::Relaxed);
}

/// Writes the metrics to stdout, where Lambda sends them to CloudWatch Logs.
pub fn emit(dimensions: Dimensions<'_>, metrics: &[Metric], timestamp_ms: i64) {
    if !metrics.is_empty() && EMITTING.load(Ordering::Relaxed) {
        println!("{}", emf_line(dimensions, metrics, timestamp_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_embedded_metric_format() {
        let line = emf_line(
            Dimensions {
                function: "check-status",
                repository: "ossnap",
                stack: None,
            },
            &[
                Metric::new("SnapshotDurationSeconds", Unit::Seconds, 12.5),
                Metric::new("ShardsFailed", Unit::Count, 0),
            ],
            1_764_295_200_000,
        );
        let document: Value = serde_json::from_str(&line).unwrap();
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(document["_aws"]["Timestamp"], 1_764_295_200_000i64);
        assert_eq!(directive["Namespace"], "ossnap");
        assert_eq!(directive["Dimensions"], json!([["Function", "Repository"]]));
        assert_eq!(
            directive["Metrics"][0],
            json!({"Name": "SnapshotDurationSeconds", "Unit": "Seconds"})
        );
        // Every metric and dimension named in the directive has a value at the top level.
        assert_eq!(document["SnapshotDurationSeconds"], 12.5);
        assert_eq!(document["ShardsFailed"], 0.0);
        assert_eq!(document["Function"], "check-status");
        assert_eq!(document["Repository"], "ossnap");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn a_deployed_function_keys_its_metrics_by_its_stack_too() {
        let dimensions = Dimensions {
            function: "verify",
            repository: "ossnap",
            stack: Some("ossnap-logs"),
        };
        let line = emf_line(
            dimensions,
            &[Metric::new("ShardsVerified", Unit::Count, 3)],
            0,
        );
        let document: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            document["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function", "Repository", "Stack"]])
        );
        assert_eq!(document["Stack"], "ossnap-logs");
    }
}
