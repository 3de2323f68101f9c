//! Lucene `CodecUtil` framing: `writeHeader(codec, version)` before the body and `writeFooter`
//! (magic, algorithm 0, CRC32 of everything before the checksum) after it. OpenSearch wraps every
//! `.dat` blob and every shard `index-*` blob in it; reading always checks the whole-file CRC first,
//! as `ChecksumBlobStoreFormat.deserialize` does.

use crate::FormatError;

pub const HEADER_MAGIC: u32 = 0x3FD7_6C17;
pub const FOOTER_MAGIC: u32 = 0xC028_93E8;
/// Footer: magic (4) + algorithm id (4) + checksum (8).
pub const FOOTER_LENGTH: usize = 16;
/// `ChecksumBlobStoreFormat.VERSION`; every repository generation in the fixtures (ES 5.6 to 7.10,
/// which OpenSearch keeps) writes 1.
pub const BLOB_FORMAT_VERSION: i32 = 1;

/// The codec names `BlobStoreRepository` uses, one per kind of metadata blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Root `snap-{uuid}.dat` (SnapshotInfo) and shard `snap-{uuid}.dat`.
    Snapshot,
    /// Root `meta-{uuid}.dat` (global cluster metadata).
    Metadata,
    /// `indices/{id}/meta-{identifier}.dat`.
    IndexMetadata,
    /// Shard `index-{generation}` (all snapshots' files of one shard).
    ShardSnapshots,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Snapshot => "snapshot",
            Codec::Metadata => "metadata",
            Codec::IndexMetadata => "index-metadata",
            Codec::ShardSnapshots => "snapshots",
        }
    }
}

/// A blob whose header, footer and checksum have been checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Framed<'a> {
    pub codec: String,
    pub version: i32,
    pub body: &'a [u8],
    pub checksum: u32,
}

/// Wraps `body` in a codec header and CRC32 footer.
pub fn frame(codec: &str, version: i32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + codec.len() + 32);
    out.extend_from_slice(&HEADER_MAGIC.to_be_bytes());
    write_vint(&mut out, codec.len() as u32);
    out.extend_from_slice(codec.as_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&FOOTER_MAGIC.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&u64::from(crc).to_be_bytes());
    out
}

/// Checks the whole-file checksum, then the header, and returns the body between header and footer.
pub fn unframe(bytes: &[u8]) -> Result<Framed<'_>, FormatError> {
    let checksum = verify_footer(bytes)?;
    let magic = read_u32(bytes, 0);
    if magic != HEADER_MAGIC {
        return Err(FormatError::HeaderMagic {
            actual: magic,
            expected: HEADER_MAGIC,
        });
    }
    let (name_length, mut position) = read_vint(bytes, 4)?;
    let name_end = position + name_length as usize;
    let body_end = bytes.len() - FOOTER_LENGTH;
    if name_end + 4 > body_end {
        return Err(FormatError::TooShort {
            actual: bytes.len(),
            minimum: name_end + 4 + FOOTER_LENGTH,
        });
    }
    let codec = std::str::from_utf8(&bytes[position..name_end])
        .map_err(|_| FormatError::CodecName)?
        .to_owned();
    position = name_end;
    let version = read_u32(bytes, position) as i32;
    Ok(Framed {
        codec,
        version,
        body: &bytes[position + 4..body_end],
        checksum,
    })
}

/// [`unframe`] plus the checks `CodecUtil.checkHeader(codec, 1, 1)` makes.
pub fn unframe_expecting(bytes: &[u8], codec: Codec) -> Result<&[u8], FormatError> {
    let framed = unframe(bytes)?;
    if framed.codec != codec.name() {
        return Err(FormatError::UnexpectedCodec {
            actual: framed.codec,
            expected: codec.name().to_owned(),
        });
    }
    if framed.version != BLOB_FORMAT_VERSION {
        return Err(FormatError::CodecVersion {
            actual: framed.version,
            min: BLOB_FORMAT_VERSION,
            max: BLOB_FORMAT_VERSION,
        });
    }
    Ok(framed.body)
}

/// Checks only the 16-byte footer and the CRC32 of everything before the checksum; this is all a
/// verifier can do for a Lucene data file (`__uuid` blob) without understanding its content.
/// Returns the CRC32, which the shard snapshot records as `checksum` (in base 36).
pub fn verify_footer(bytes: &[u8]) -> Result<u32, FormatError> {
    let minimum = FOOTER_LENGTH + 4;
    if bytes.len() < minimum {
        return Err(FormatError::TooShort {
            actual: bytes.len(),
            minimum,
        });
    }
    let footer = bytes.len() - FOOTER_LENGTH;
    let recorded = footer_checksum(&bytes[footer..])?;
    let computed = crc32fast::hash(&bytes[..footer + 8]);
    if recorded != u64::from(computed) {
        return Err(FormatError::Checksum {
            recorded,
            computed: u64::from(computed),
        });
    }
    Ok(computed)
}

/// The checksum a 16-byte Lucene footer records (magic, algorithm 0 = CRC32, checksum), as read
/// from a file's tail alone.
pub fn footer_checksum(footer: &[u8]) -> Result<u64, FormatError> {
    if footer.len() != FOOTER_LENGTH {
        return Err(FormatError::TooShort {
            actual: footer.len(),
            minimum: FOOTER_LENGTH,
        });
    }
    let magic = read_u32(footer, 0);
    if magic != FOOTER_MAGIC {
        return Err(FormatError::FooterMagic {
            actual: magic,
            expected: FOOTER_MAGIC,
        });
    }
    let algorithm = read_u32(footer, 4) as i32;
    if algorithm != 0 {
        return Err(FormatError::ChecksumAlgorithm(algorithm));
    }
    Ok(u64::from_be_bytes(footer[8..].try_into().expect("8 bytes")))
}

/// Lucene's `Store.digestToString`: the CRC32 in base 36, as `checksum` is stored in shard files.
pub fn checksum_to_string(checksum: u32) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut value = u64::from(checksum);
    if value == 0 {
        return "0".to_owned();
    }
    let mut digits = Vec::new();
    while value > 0 {
        digits.push(DIGITS[(value % 36) as usize]);
        value /= 36;
    }
    digits.reverse();
    String::from_utf8(digits).expect("ASCII digits")
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn write_vint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_vint(bytes: &[u8], mut position: usize) -> Result<(u32, usize), FormatError> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let Some(&byte) = bytes.get(position) else {
            return Err(FormatError::TooShort {
                actual: bytes.len(),
                minimum: position + 1,
            });
        };
        position += 1;
        value |= u32::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    Ok((value, position))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_then_unframe_round_trips() {
        let blob = frame("snapshot", 1, b"body");
        let framed = unframe(&blob).unwrap();
        assert_eq!(framed.codec, "snapshot");
        assert_eq!(framed.version, 1);
        assert_eq!(framed.body, b"body");
        assert_eq!(unframe_expecting(&blob, Codec::Snapshot).unwrap(), b"body");
    }

    #[test]
    fn a_flipped_byte_fails_the_checksum() {
        let mut blob = frame("snapshot", 1, b"body");
        blob[20] ^= 1;
        assert!(matches!(unframe(&blob), Err(FormatError::Checksum { .. })));
    }

    #[test]
    fn wrong_codec_is_refused() {
        let blob = frame("metadata", 1, b"{}");
        assert!(matches!(
            unframe_expecting(&blob, Codec::Snapshot),
            Err(FormatError::UnexpectedCodec { .. })
        ));
    }

    #[test]
    fn truncated_blob_is_refused() {
        let blob = frame("snapshot", 1, b"body");
        assert!(unframe(&blob[..blob.len() - 1]).is_err());
        assert!(matches!(
            unframe(&blob[..10]),
            Err(FormatError::TooShort { .. })
        ));
    }

    #[test]
    fn checksum_is_base_36_like_lucene() {
        assert_eq!(checksum_to_string(u32::MAX), "1z141z3");
        assert_eq!(checksum_to_string(35), "z");
        assert_eq!(checksum_to_string(36), "10");
        assert_eq!(checksum_to_string(0), "0");
    }
}
