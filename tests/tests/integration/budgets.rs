//! Each function's Lambda timeout against its worst case (issue 15): the template's `Timeout`
//! is the one [`ossnap_core::budget`] derives, each Task's `TimeoutSeconds` outlasts it, and
//! every Lambda task retries `Lambda.Unknown` (a function killed anyway), which is safe because
//! every function is idempotent: `snapshot` resumes its snapshot by name.
//!
//! The local-stack tests tie the budgets to the code: `snapshot`'s longest path sends exactly the
//! requests its budget counts (tests/tests/integration/functions.rs), and retention stops at its request
//! budget (tests/tests/integration/retention.rs).

use std::path::PathBuf;

use ossnap_core::budget::{self, Budget};
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

fn infra(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../infra")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `check-status` → `CheckStatusFunction`.
fn logical_id(budget: &Budget) -> String {
    let camel: String = budget
        .function
        .split('-')
        .map(|word| word[..1].to_uppercase() + &word[1..])
        .collect();
    format!("{camel}Function")
}

/// The Task state that invokes `function`, found by its `${<Function>Arn}` substitution.
fn task_of<'a>(asl: &'a Json, function: &str) -> (&'a String, &'a Json) {
    let resource = format!("${{{function}Arn}}");
    asl["States"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, state)| state["Resource"] == resource.as_str())
        .unwrap_or_else(|| panic!("no Task invokes {function}"))
}

#[test]
fn each_lambda_timeout_is_its_budget_and_each_task_outlasts_it() {
    let template: Yaml = serde_yaml::from_str(&infra("template.yaml")).unwrap();
    let asl: Json = serde_json::from_str(&infra("statemachine/snapshot.asl.json")).unwrap();
    for budget in budget::ALL {
        let function = logical_id(&budget);
        let timeout = template["Resources"][function.as_str()]["Properties"]["Timeout"].as_u64();
        assert_eq!(
            timeout,
            Some(budget.lambda_timeout_seconds()),
            "{function}'s Timeout must be its budget: {budget:?} takes up to {:?}",
            budget.worst_case()
        );
        let (state, task) = task_of(&asl, &function);
        let task_timeout = task["TimeoutSeconds"].as_u64().unwrap_or(0);
        assert!(
            task_timeout > budget.lambda_timeout_seconds(),
            "{state}: TimeoutSeconds {task_timeout} does not outlast {function}'s {} s",
            budget.lambda_timeout_seconds()
        );
    }
}

/// The states of a state machine, and of the Maps' ItemProcessors in it, at any depth.
fn states_of(machine: &Json) -> Vec<(String, &Json)> {
    machine["States"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(name, state)| {
            let inner = states_of(&state["ItemProcessor"]);
            std::iter::once((name.clone(), state)).chain(inner)
        })
        .collect()
}

#[test]
fn every_lambda_task_retries_a_killed_function() {
    for machine in ["snapshot", "restore", "migrate"] {
        let path = format!("statemachine/{machine}.asl.json");
        let asl: Json = serde_json::from_str(&infra(&path)).unwrap();
        for (name, state) in states_of(&asl) {
            let invokes_a_function = state["Resource"]
                .as_str()
                .is_some_and(|r| r.ends_with("FunctionArn}"));
            if !invokes_a_function {
                continue;
            }
            let retries_unknown = state["Retry"].as_array().into_iter().flatten().any(|r| {
                r["ErrorEquals"]
                    .as_array()
                    .is_some_and(|errors| errors.contains(&"Lambda.Unknown".into()))
            });
            assert!(
                retries_unknown,
                "{path}: {name} does not retry Lambda.Unknown"
            );
        }
    }
}
