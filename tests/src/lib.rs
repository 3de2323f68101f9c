//! Test support: run ossnap's function binaries as AWS Lambda runs them.
//!
//! [`LambdaProcess`] serves the Lambda Runtime API on loopback, starts a release or debug
//! `bootstrap` with the environment Lambda gives it, and hands it one event at a time; the
//! function's answer comes back as its output or as its `errorType` and `errorMessage`.
//! [`TestStack`] is the local stack they run against, and [`workflow::Workflow`] the state
//! machine that chains them, run by aws-local-stepfunctions with these processes as its functions;
//! [`soak`] runs that state machine night after night with faults, checking invariants.
pub mod conformance;
pub mod runtime_api;
pub mod soak;
pub mod stack;
pub mod workflow;

pub use runtime_api::{FunctionError, LambdaProcess};
pub use stack::TestStack;

/// Where `cargo build --workspace --bins` put a function binary: beside this executable when
/// it is a binary (target/<profile>/demo), one level up when it is a test (target/<profile>/deps).
pub fn function_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let exe_dir = exe.parent().expect("an executable lies in a directory");
    let profile_dir = if exe_dir.ends_with("deps") {
        exe_dir.parent().expect("deps lies in target/<profile>")
    } else {
        exe_dir
    };
    let binary = profile_dir.join(name);
    assert!(
        binary.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (`make test` does)",
        binary.display()
    );
    binary
}
