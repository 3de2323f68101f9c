//! The workspace's integration tests, one module per concern, in one test binary: each binary
//! links the AWS SDK, object_store and the local stack, and fifteen of them filled CI's disk.
//! Run one concern with its module path, e.g. `cargo test -p ossnap-tests --test integration copy::`.

mod bad_input;
mod budgets;
mod conformance;
mod copy;
mod functions;
mod fuzz;
mod infra;
mod lambda;
mod migrate_workflow;
mod restore;
mod restore_workflow;
mod retention;
mod soak;
mod verify;
mod workflow;
