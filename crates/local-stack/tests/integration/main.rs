//! The local stack's integration tests, one module per concern, in one test binary (one link of
//! the stack instead of seven). Run one concern with its module path, e.g.
//! `cargo test -p ossnap-local-stack --test integration azure::`.

mod common;

mod azure;
mod botocore_signature;
mod errors_and_control;
mod layout_and_binary;
mod s3_server;
mod snapshot_lifecycle;
mod spec_fidelity;
