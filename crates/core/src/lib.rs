//! ossnap-core: everything ossnap's Lambda functions do, behind thin `main.rs` files.
//!
//! - [`register`], [`snapshot`], [`status`], [`retention`], [`restore`], [`check_restore`]: the
//!   operations, one per function, each with its input and output shapes and its Lambda `handle`;
//!   [`drill`]: the snapshot workflow's restore drill, run by `restore` and `check-restore`.
//! - [`opensearch`]: the client (SigV4, basic or no auth), the API calls, and the classification
//!   of error responses into the one [`error`] taxonomy whose names Step Functions matches.
//! - [`budget`]: each function's worst case of calls and pauses, and the Lambda timeout from it.
//! - [`metrics`]: CloudWatch Embedded Metric Format lines; [`logging`]: the log subscriber.
//!
//! The `opensearch` feature (on by default) holds the client and the operations that use it;
//! `verify`, which reads only S3, builds without it.
//! - [`event`]: the three shapes an invocation arrives in; [`config`]: settings from the
//!   environment; [`names`]: validation before any request; [`clock`]: injected time;
//!   [`verdict`]: where verify records a damaged snapshot for retention.
#[cfg(feature = "opensearch")]
pub mod budget;
#[cfg(feature = "opensearch")]
pub mod check_restore;
pub mod clock;
pub mod config;
#[cfg(feature = "opensearch")]
pub mod drill;
pub mod error;
pub mod event;
pub mod function;
pub mod logging;
pub mod metrics;
pub mod names;
#[cfg(feature = "opensearch")]
pub mod opensearch;
#[cfg(feature = "opensearch")]
pub mod register;
#[cfg(feature = "opensearch")]
pub mod restore;
#[cfg(feature = "opensearch")]
pub mod retention;
#[cfg(feature = "opensearch")]
pub mod snapshot;
#[cfg(feature = "opensearch")]
pub mod status;
pub mod verdict;

pub use error::{Error, ErrorKind, Result};
#[cfg(feature = "opensearch")]
pub use function::Deps;
