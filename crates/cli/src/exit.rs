//! The documented exit codes, and which one an outcome or an error gets.

use ossnap_core::ErrorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Failure = 1,
    /// A bad flag, a missing or invalid setting.
    Usage = 2,
    /// `--wait` ran out of `--timeout` while the snapshot still ran.
    StillRunning = 3,
    /// Done, but not healthy: an unhealthy snapshot, a damaged one in verify, a FAIL in doctor.
    Unhealthy = 4,
}

impl Exit {
    pub fn for_error(kind: ErrorKind) -> Exit {
        match kind {
            ErrorKind::ConfigError => Exit::Usage,
            // verify finished reading and found the snapshot incomplete or damaged.
            ErrorKind::VerificationFailed => Exit::Unhealthy,
            _ => Exit::Failure,
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// What to do about each error, beside the message the functions report.
pub fn fix(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ConfigError => {
            "fix the named setting: its flag or environment variable (`ossnap --help` lists them)"
        }
        ErrorKind::AuthError => {
            "the message says which: map the role as a backend role of manage_snapshots (never all_access), grant iam:PassRole or es:ESHttp*, or fix the credentials (--profile, AWS_PROFILE) or the clock; `ossnap doctor` checks each"
        }
        ErrorKind::RepositoryMissing => "register the repository: `ossnap register`",
        ErrorKind::SnapshotMissing => "check the name: `ossnap list` shows the repository's snapshots",
        ErrorKind::SnapshotInProgress => {
            "wait for it to end (`ossnap status` shows what runs), then try again"
        }
        ErrorKind::SnapshotNameConflict => {
            "choose another name (--name) or another SNAPSHOT_PREFIX (--prefix)"
        }
        ErrorKind::RepositoryVerificationFailed => {
            "OpenSearch cannot write to the bucket: check the snapshot role's trust policy and its S3 permissions"
        }
        ErrorKind::Throttled => "try again in a little while: the domain asked to slow down",
        ErrorKind::Unavailable => {
            "check that the endpoint is reachable from here (VPN, security group on 443), then try again"
        }
        ErrorKind::VerificationFailed => {
            "the snapshot is incomplete or damaged in the bucket: take a new one (`ossnap snapshot --wait`)"
        }
        ErrorKind::RestoreConflict => {
            "delete or close the open indices the message names, or restore under a rename (rename_pattern, rename_replacement)"
        }
        ErrorKind::IncompatibleVersion => {
            "restore into a cluster of the snapshot's version or one major version newer, or reindex the old indices first"
        }
        ErrorKind::InsufficientCapacity => {
            "add data nodes or disk, raise cluster.max_shards_per_node, or restore fewer indices"
        }
        ErrorKind::RestoreFailed => {
            "fix what the message says of the unassigned shards (allocation explanation), delete the partly restored indices, and restore again"
        }
        ErrorKind::CopyConflict => {
            "the destination holds another blob of that name: copy into an empty container or base path (--to-base-path), or delete the named blob if it is a damaged copy"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_fix_and_a_code() {
        for kind in ErrorKind::ALL {
            assert!(!fix(kind).is_empty());
            assert_ne!(Exit::for_error(kind), Exit::Success);
        }
        assert_eq!(Exit::for_error(ErrorKind::ConfigError).code(), 2);
        assert_eq!(Exit::for_error(ErrorKind::AuthError).code(), 1);
        assert_eq!(Exit::for_error(ErrorKind::VerificationFailed).code(), 4);
    }
}
