//! One error taxonomy for every ossnap function.
//!
//! Each [`Error`] has a stable [`ErrorKind`] whose name is what the Lambda reports as its
//! `errorType`, so that Step Functions `Retry`/`Catch` blocks can match it. OpenSearch errors are
//! classified by the response's `error.type`, never by HTTP status alone (see `opensearch::classify`).

use std::fmt;

/// The stable names a function reports as its Lambda `errorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Bad input or configuration: fix the event or the environment; never retried.
    ConfigError,
    /// Authentication or authorization refused the call: fix IAM, role mapping or credentials.
    AuthError,
    /// The snapshot repository is not registered on the domain.
    RepositoryMissing,
    /// The named snapshot does not exist in the repository.
    SnapshotMissing,
    /// A snapshot or snapshot deletion is already running on the cluster (including AWS's own).
    SnapshotInProgress,
    /// A snapshot with the requested name exists and was not taken by this run.
    SnapshotNameConflict,
    /// OpenSearch could not verify that its nodes can write to the repository.
    RepositoryVerificationFailed,
    /// The domain or S3 asked us to slow down.
    Throttled,
    /// The domain or S3 could not be reached or failed with a 5xx or a timeout.
    Unavailable,
    /// The snapshot is not complete in the bucket (missing or damaged blobs).
    VerificationFailed,
    /// A restore would overwrite open indices of the same name: delete or close them, or rename.
    RestoreConflict,
    /// The snapshot was written by a newer version than the cluster, or holds indices too old
    /// for the cluster's major version.
    IncompatibleVersion,
    /// The cluster lacks the shards (`cluster.max_shards_per_node`) or the disk for the restore.
    InsufficientCapacity,
    /// A started restore cannot complete: shards that cannot be allocated, or a refused restore.
    RestoreFailed,
    /// A copy found, at the destination, a blob of the name it was to write with another length
    /// (or a newer generation): blob names are immutable, so it overwrites nothing and stops.
    CopyConflict,
}

impl ErrorKind {
    /// Every kind, in declaration order: the one list of names the ASL may use.
    pub const ALL: [ErrorKind; 15] = [
        ErrorKind::ConfigError,
        ErrorKind::AuthError,
        ErrorKind::RepositoryMissing,
        ErrorKind::SnapshotMissing,
        ErrorKind::SnapshotInProgress,
        ErrorKind::SnapshotNameConflict,
        ErrorKind::RepositoryVerificationFailed,
        ErrorKind::Throttled,
        ErrorKind::Unavailable,
        ErrorKind::VerificationFailed,
        ErrorKind::RestoreConflict,
        ErrorKind::IncompatibleVersion,
        ErrorKind::InsufficientCapacity,
        ErrorKind::RestoreFailed,
        ErrorKind::CopyConflict,
    ];

    /// The `errorType` the Lambda reports.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorKind::ConfigError => "ConfigError",
            ErrorKind::AuthError => "AuthError",
            ErrorKind::RepositoryMissing => "RepositoryMissing",
            ErrorKind::SnapshotMissing => "SnapshotMissing",
            ErrorKind::SnapshotInProgress => "SnapshotInProgress",
            ErrorKind::SnapshotNameConflict => "SnapshotNameConflict",
            ErrorKind::RepositoryVerificationFailed => "RepositoryVerificationFailed",
            ErrorKind::Throttled => "Throttled",
            ErrorKind::Unavailable => "Unavailable",
            ErrorKind::VerificationFailed => "VerificationFailed",
            ErrorKind::RestoreConflict => "RestoreConflict",
            ErrorKind::IncompatibleVersion => "IncompatibleVersion",
            ErrorKind::InsufficientCapacity => "InsufficientCapacity",
            ErrorKind::RestoreFailed => "RestoreFailed",
            ErrorKind::CopyConflict => "CopyConflict",
        }
    }

    /// Whether a later attempt of the same call may succeed without anyone changing anything.
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::SnapshotInProgress | ErrorKind::Throttled | ErrorKind::Unavailable
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An ossnap error: its kind, and a message that says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::ConfigError, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: error.kind.name().to_string(),
            error_message: error.message,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_match_the_variant() {
        let names: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        for kind in ErrorKind::ALL {
            assert_eq!(format!("{kind:?}"), kind.name());
        }
    }

    #[test]
    fn diagnostic_carries_the_stable_name() {
        let diagnostic: lambda_runtime::Diagnostic =
            Error::new(ErrorKind::SnapshotInProgress, "busy").into();
        assert_eq!(diagnostic.error_type, "SnapshotInProgress");
        assert_eq!(diagnostic.error_message, "busy");
    }
}
