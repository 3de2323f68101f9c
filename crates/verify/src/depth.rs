//! How deep verify reads the data blobs, chosen per invocation (`deep`) or by `VERIFY_DEPTH`:
//!
//! - `structure` (default): every blob the snapshot needs exists with its recorded length, found
//!   by listing each shard folder once;
//! - `footers`: also a ranged GET of each data file's last 16 bytes, whose Lucene footer checksum
//!   must equal the checksum `snap-*.dat` recorded for that file (catches truncation and
//!   replaced tails);
//! - `full`: also every data blob read whole, its CRC32 recomputed and compared (catches a
//!   flipped byte anywhere: a monthly audit, as it reads the whole snapshot).

use ossnap_core::{Error, Result};
use ossnap_repository::{codec, FileInfo};
use serde::{Deserialize, Serialize};

use crate::damage::Damage;
use ossnap_storage::BlobStore;

/// The variable that sets the default depth.
pub const VERIFY_DEPTH: &str = "VERIFY_DEPTH";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Depth {
    #[default]
    Structure,
    Footers,
    Full,
}

impl Depth {
    pub fn parse(value: &str) -> Result<Depth> {
        match value.to_ascii_lowercase().as_str() {
            "structure" => Ok(Depth::Structure),
            "footers" => Ok(Depth::Footers),
            "full" => Ok(Depth::Full),
            other => Err(Error::config(format!(
                "{VERIFY_DEPTH}={other:?} (or \"deep\") is not a depth: use structure (default), footers or full"
            ))),
        }
    }
}

const FOOTER_LENGTH: u64 = codec::FOOTER_LENGTH as u64;

/// Checks one data file at `depth` beyond structure; its blobs (`keys`, in part order) are known
/// to exist with their recorded lengths. Files without a recorded checksum are left alone.
pub(crate) async fn check_file(
    store: &dyn BlobStore,
    depth: Depth,
    file: &FileInfo,
    keys: &[String],
) -> Result<Option<Damage>> {
    let (Some(recorded), Some(last)) = (file.checksum.as_deref(), keys.last()) else {
        return Ok(None);
    };
    let Ok(expected) = u64::from_str_radix(recorded, 36) else {
        return Ok(None);
    };
    if depth == Depth::Structure || file.length < FOOTER_LENGTH {
        return Ok(None);
    }
    let damage = |reason: String| {
        Some(Damage::Unreadable {
            key: last.clone(),
            reason,
        })
    };
    if depth == Depth::Footers {
        // The footer is the last part's end; parts have the recorded part size but the last.
        let parts = keys.len() as u64;
        let last_length = file.length - file.part_size.unwrap_or(file.length) * (parts - 1);
        let footer_offset = last_length.saturating_sub(FOOTER_LENGTH);
        let Some(footer) = store.get_from(last, footer_offset).await? else {
            return Ok(Some(Damage::MissingBlob { key: last.clone() }));
        };
        return Ok(match codec::footer_checksum(&footer) {
            Err(error) => damage(error.to_string()),
            Ok(found) if found != expected => damage(format!(
                "footer checksum {} differs from the recorded {recorded}",
                to_base36(found)
            )),
            Ok(_) => None,
        });
    }
    // Full: CRC32 over everything but the checksum itself (the file's last 8 bytes).
    let covered = file.length - 8;
    let mut hasher = crc32fast::Hasher::new();
    let mut offset = 0u64;
    let mut tail = Vec::with_capacity(FOOTER_LENGTH as usize);
    for key in keys {
        let found = store
            .read_chunks(key, &mut |chunk: &[u8]| {
                let take = covered.saturating_sub(offset).min(chunk.len() as u64) as usize;
                hasher.update(&chunk[..take]);
                offset += chunk.len() as u64;
                tail.extend_from_slice(chunk);
                let keep = tail.len().saturating_sub(FOOTER_LENGTH as usize);
                tail.drain(..keep);
            })
            .await?;
        if !found {
            return Ok(Some(Damage::MissingBlob { key: key.clone() }));
        }
    }
    let computed = hasher.finalize();
    Ok(match codec::footer_checksum(&tail) {
        Err(error) => damage(error.to_string()),
        Ok(_) if u64::from(computed) != expected => damage(format!(
            "CRC32 of its content is {}, recorded {recorded}",
            codec::checksum_to_string(computed)
        )),
        Ok(found) if found != expected => damage(format!(
            "footer checksum {} differs from the recorded {recorded}",
            to_base36(found)
        )),
        Ok(_) => None,
    })
}

/// A footer's checksum as `snap-*.dat` records it; a footer holds 64 bits where a CRC32 needs 32.
fn to_base36(value: u64) -> String {
    u32::try_from(value).map_or_else(|_| format!("{value:#x}"), codec::checksum_to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depths_parse_and_order() {
        assert_eq!(Depth::parse("FULL").unwrap(), Depth::Full);
        assert!(Depth::Structure < Depth::Footers && Depth::Footers < Depth::Full);
        let error = Depth::parse("deep").unwrap_err();
        assert!(error
            .message()
            .contains("structure (default), footers or full"));
    }

    #[test]
    fn recorded_checksums_read_back() {
        let recorded = codec::checksum_to_string(1_234_567_890);
        assert_eq!(u64::from_str_radix(&recorded, 36), Ok(1_234_567_890));
        assert_eq!(to_base36(1_234_567_890), recorded);
        assert_eq!(to_base36(u64::MAX), "0xffffffffffffffff");
    }
}
