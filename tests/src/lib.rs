//! Test support: run ossnap's function binaries as AWS Lambda runs them.
//!
//! [`LambdaProcess`] serves the Lambda Runtime API on loopback, starts a release or debug
//! `bootstrap` with the environment Lambda gives it, and hands it one event at a time; the
//! function's answer comes back as its output or as its `errorType` and `errorMessage`.
pub mod runtime_api;
pub mod stack;

pub use runtime_api::{FunctionError, LambdaProcess};
pub use stack::TestStack;

/// Where `cargo build --workspace --bins` put a function binary, next to this test's own
/// target directory.
pub fn function_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("tests run from target/<profile>/deps");
    let binary = profile_dir.join(name);
    assert!(
        binary.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (`make test` does)",
        binary.display()
    );
    binary
}
