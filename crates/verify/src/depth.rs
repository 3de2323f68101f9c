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
use ossnap_repository::FileInfo;
use serde::{Deserialize, Serialize};

use crate::damage::Damage;
use crate::store::Store;

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

/// Lucene's codec footer: magic, checksum algorithm (0 = CRC32), checksum.
const FOOTER_LENGTH: u64 = 16;
const FOOTER_MAGIC: u32 = !0x3fd7_6c17;

/// The checksum in a Lucene footer, or why the footer is not one.
fn footer_checksum(footer: &[u8]) -> std::result::Result<u64, String> {
    let word = |at: usize| u32::from_be_bytes(footer[at..at + 4].try_into().expect("4 bytes"));
    if footer.len() != FOOTER_LENGTH as usize {
        return Err(format!(
            "{} bytes where a 16-byte footer belongs",
            footer.len()
        ));
    }
    if word(0) != FOOTER_MAGIC {
        return Err(format!("no Lucene footer (magic {:#010x})", word(0)));
    }
    if word(4) != 0 {
        return Err(format!("unknown checksum algorithm {}", word(4)));
    }
    Ok(u64::from_be_bytes(footer[8..].try_into().expect("8 bytes")))
}

/// Checks one data file at `depth` beyond structure; its blobs (`keys`, in part order) are known
/// to exist with their recorded lengths. Files without a recorded checksum are left alone.
pub(crate) async fn check_file(
    store: &Store,
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
        let Some(footer) = store.get_tail(last, FOOTER_LENGTH).await? else {
            return Ok(Some(Damage::MissingBlob { key: last.clone() }));
        };
        return Ok(match footer_checksum(&footer) {
            Err(reason) => damage(reason),
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
            .read_chunks(key, |chunk| {
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
    let computed = u64::from(hasher.finalize());
    Ok(match footer_checksum(&tail) {
        Err(reason) => damage(reason),
        Ok(_) if computed != expected => damage(format!(
            "CRC32 of its content is {}, recorded {recorded}",
            to_base36(computed)
        )),
        Ok(found) if found != expected => damage(format!(
            "footer checksum {} differs from the recorded {recorded}",
            to_base36(found)
        )),
        Ok(_) => None,
    })
}

/// As Lucene writes checksums into `snap-*.dat` (`Long.toString(value, 36)`).
fn to_base36(mut value: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut text = Vec::new();
    loop {
        text.push(DIGITS[(value % 36) as usize]);
        value /= 36;
        if value == 0 {
            break;
        }
    }
    text.reverse();
    String::from_utf8(text).expect("ASCII digits")
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
    fn footers_are_read_as_lucene_writes_them() {
        let mut footer = Vec::new();
        footer.extend_from_slice(&FOOTER_MAGIC.to_be_bytes());
        footer.extend_from_slice(&0u32.to_be_bytes());
        footer.extend_from_slice(&1_234_567_890u64.to_be_bytes());
        assert_eq!(footer_checksum(&footer), Ok(1_234_567_890));
        assert_eq!(to_base36(1_234_567_890), "kf12oi");
        assert_eq!(u64::from_str_radix("kf12oi", 36), Ok(1_234_567_890));
        footer[0] ^= 1;
        assert!(footer_checksum(&footer)
            .unwrap_err()
            .contains("no Lucene footer"));
        assert!(footer_checksum(&footer[..8]).is_err());
    }
}
