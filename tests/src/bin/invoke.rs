//! `invoke`: runs one ossnap function once, as Lambda runs it, with this shell's environment (for
//! instance the exports `ossnap-local` prints), and prints its output or its error.
//!
//! ```text
//! cargo build --workspace --bins
//! eval "$(ossnap-local ... | grep ^export)"   # in another shell: ossnap-local keeps running
//! cargo run -q -p ossnap-tests --bin invoke -- register
//! cargo run -q -p ossnap-tests --bin invoke -- snapshot '{"snapshot": "by-hand-1"}'
//! ```
//! Exits 0 with the function's JSON output, 1 with its `errorType: errorMessage`, 2 on misuse.

use std::process::ExitCode;

use ossnap_tests::{function_binary, LambdaProcess};
use serde_json::Value;

const FUNCTIONS: [&str; 7] = [
    "register",
    "snapshot",
    "check-status",
    "verify",
    "retention",
    "restore",
    "check-restore",
];

#[tokio::main]
async fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let (function, event) = match arguments.as_slice() {
        [function] => (function.as_str(), "{}"),
        [function, event] => (function.as_str(), event.as_str()),
        _ => return usage(),
    };
    if !FUNCTIONS.contains(&function) {
        return usage();
    }
    let event: Value = match serde_json::from_str(event) {
        Ok(event) => event,
        Err(error) => {
            eprintln!("the event is not JSON: {error}");
            return ExitCode::from(2);
        }
    };
    let environment: Vec<(String, String)> = std::env::vars().collect();
    let environment: Vec<(&str, &str)> = environment
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let mut process = match LambdaProcess::start(&function_binary(function), &environment).await {
        Ok(process) => process,
        Err(error) => {
            eprintln!("{function} does not start: {error}");
            return ExitCode::FAILURE;
        }
    };
    match process.invoke(event).await {
        Ok(output) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&output).expect("JSON prints")
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{}: {}", error.error_type, error.error_message);
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: invoke {} [EVENT_JSON]", FUNCTIONS.join("|"));
    ExitCode::from(2)
}
