//! What can be wrong with a snapshot in the bucket, each named so a report says exactly what.

use std::fmt;

use ossnap_core::{Error, ErrorKind, Result};
use serde_json::{json, Value};

use crate::Depth;

/// At most this many problems are spelled out; the count says how many there were.
const SHOWN: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// No root `index-N` under the base path: nothing was ever written there.
    NoRepository,
    /// The newest `index-N` does not list the snapshot.
    NotInRepository {
        generation: u64,
    },
    /// The repository records the snapshot, but not as SUCCESS.
    NotSuccessful {
        state: String,
    },
    MissingBlob {
        key: String,
    },
    MissingIndexMetadata {
        index: String,
        key: String,
    },
    MissingShardSnapshot {
        key: String,
    },
    /// The snapshot names an index the repository does not hold.
    IndexNotInRepository {
        index: String,
    },
    /// Bad codec header or footer, CRC32 mismatch, or a body that does not decode.
    Unreadable {
        key: String,
        reason: String,
    },
    /// Truncated or padded: the listing's size differs from the recorded length.
    WrongLength {
        key: String,
        expected: u64,
        actual: u64,
    },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::NoRepository => write!(f, "no repository: no root index-N blob"),
            Damage::NotInRepository { generation } => {
                write!(f, "absent from the newest root index-{generation}")
            }
            Damage::NotSuccessful { state } => write!(f, "recorded as {state}, not SUCCESS"),
            Damage::MissingBlob { key } => write!(f, "missing blob {key}"),
            Damage::MissingIndexMetadata { index, key } => {
                write!(f, "missing index metadata of [{index}]: {key}")
            }
            Damage::MissingShardSnapshot { key } => write!(f, "missing shard snapshot {key}"),
            Damage::IndexNotInRepository { index } => {
                write!(f, "index [{index}] is not in the repository's index table")
            }
            Damage::Unreadable { key, reason } => write!(f, "damaged blob {key}: {reason}"),
            Damage::WrongLength {
                key,
                expected,
                actual,
            } => {
                write!(f, "wrong length {key}: {actual} bytes, recorded {expected}")
            }
        }
    }
}

/// The `VerificationFailed` error listing what is missing or damaged, and whether its verdict
/// was recorded for retention (`recorded`: `None` when there is none to record).
pub(crate) fn report(
    location: &str,
    snapshot: &str,
    damage: &[Damage],
    recorded: Option<Result<String>>,
) -> Error {
    let shown: Vec<String> = damage.iter().take(SHOWN).map(ToString::to_string).collect();
    let more = damage.len().saturating_sub(SHOWN);
    let verdict = match recorded {
        None => String::new(),
        Some(Ok(at)) => format!(
            "; retention no longer counts it as healthy (verdict at {at}; delete that object once the snapshot is repaired)"
        ),
        Some(Err(error)) => format!(
            "; its verdict could not be recorded, so retention still counts it as healthy until it is: {}",
            error.message()
        ),
    };
    Error::new(
        ErrorKind::VerificationFailed,
        format!(
            "snapshot [{snapshot}] is not complete in {location}: {} problem(s): {}{}; restore from an older snapshot if you need this data, and take a new one{verdict}",
            damage.len(),
            shown.join("; "),
            if more > 0 { format!("; and {more} more") } else { String::new() }
        ),
    )
}

/// The body of a damaged snapshot's verdict: what was found, where, and how deep verify read.
pub(crate) fn verdict(
    location: &str,
    snapshot: &str,
    uuid: &str,
    depth: Depth,
    damage: &[Damage],
) -> Value {
    json!({
        "snapshot": snapshot,
        "uuid": uuid,
        "location": location,
        "depth": depth,
        "damage": damage.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}
