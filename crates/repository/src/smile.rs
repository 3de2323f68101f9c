//! SMILE bodies as OpenSearch writes them: header flags 0x05 (shared property names, raw binary),
//! no end-of-stream marker; in a repository registered with `compress: true`, DEFLATE-compressed
//! behind the compressor's `DFL\0` header (OpenSearch's and Elasticsearch's `DeflateCompressor`).

use std::borrow::Cow;
use std::io::{Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{self, Codec, BLOB_FORMAT_VERSION};
use crate::FormatError;

pub use serde_smile::value::Value;

pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    let mut serializer = serde_smile::Serializer::builder()
        .raw_binary(true)
        .shared_properties(true)
        .build(&mut out);
    value.serialize(&mut serializer)?;
    Ok(out)
}

/// The header OpenSearch's `DeflateCompressor` puts before a raw DEFLATE stream.
const DEFLATE_HEADER: &[u8] = b"DFL\0";
/// The most a compressed metadata blob may inflate to. The largest real ones (a shard's
/// `snap-*.dat` or `index-*` listing thousands of files, an index's mappings) are a few MiB; a
/// damaged or hostile blob of a few KiB must not inflate to gigabytes in a 128 MB function.
pub const MAX_INFLATED_BYTES: u64 = 64 << 20;

pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FormatError> {
    Ok(serde_smile::from_slice(&decompressed(body)?)?)
}

/// The SMILE body, inflated first when the repository compresses its metadata.
fn decompressed(body: &[u8]) -> Result<Cow<'_, [u8]>, FormatError> {
    match body.strip_prefix(DEFLATE_HEADER) {
        Some(deflated) => inflate(deflated, MAX_INFLATED_BYTES).map(Cow::Owned),
        None => Ok(Cow::Borrowed(body)),
    }
}

/// `deflated` inflated, refused once it passes `limit` bytes.
fn inflate(deflated: &[u8], limit: u64) -> Result<Vec<u8>, FormatError> {
    let mut inflated = Vec::new();
    flate2::read::DeflateDecoder::new(deflated)
        .take(limit + 1)
        .read_to_end(&mut inflated)
        .map_err(|error| FormatError::Inflate("DEFLATE", error.to_string()))?;
    if inflated.len() as u64 > limit {
        return Err(FormatError::Inflate(
            "DEFLATE",
            format!("it inflates to more than {limit} bytes"),
        ));
    }
    Ok(inflated)
}

/// `body` as a repository with `compress: true` stores it.
pub fn compress(body: &[u8]) -> Vec<u8> {
    let mut out = DEFLATE_HEADER.to_vec();
    let mut encoder = flate2::write::DeflateEncoder::new(&mut out, flate2::Compression::default());
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish().map(drop))
        .expect("writing into memory does not fail");
    out
}

/// A complete metadata blob: codec header, SMILE body, CRC32 footer.
pub fn write_blob<T: Serialize + ?Sized>(codec: Codec, value: &T) -> Result<Vec<u8>, FormatError> {
    write_blob_compressed(codec, value, false)
}

/// A complete metadata blob whose body is compressed when `compress` is (as a repository
/// registered with `compress: true` writes it).
pub fn write_blob_compressed<T: Serialize + ?Sized>(
    codec: Codec,
    value: &T,
    compress: bool,
) -> Result<Vec<u8>, FormatError> {
    let body = encode(value)?;
    let body = if compress {
        self::compress(&body)
    } else {
        body
    };
    Ok(codec::frame(codec.name(), BLOB_FORMAT_VERSION, &body))
}

/// Checks framing and checksum of a metadata blob, then decodes its SMILE body.
pub fn read_blob<T: DeserializeOwned>(codec: Codec, blob: &[u8]) -> Result<T, FormatError> {
    decode(codec::unframe_expecting(blob, codec)?)
}

/// Serde adapter for the SMILE binary fields (`meta_hash`) that JSON has no type for.
pub(crate) mod binary {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(
        value: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => serializer.serialize_bytes(bytes),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        struct BytesVisitor;
        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = Option<Vec<u8>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("binary")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                Ok(Some(v.to_vec()))
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
                Ok(Some(v))
            }
            fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut bytes = Vec::new();
                while let Some(byte) = seq.next_element::<u8>()? {
                    bytes.push(byte);
                }
                Ok(Some(bytes))
            }
        }
        deserializer.deserialize_any(BytesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ShardSnapshot;

    #[test]
    fn compressed_blobs_read_like_plain_ones() {
        let shard = ShardSnapshot {
            name: "ossnap-20261128-020000".into(),
            index_version: 7,
            start_time: 1,
            time: 2,
            incremental_file_count: 0,
            incremental_size: 0,
            files: Vec::new(),
        };
        let plain = write_blob(Codec::Snapshot, &shard).unwrap();
        let compressed = write_blob_compressed(Codec::Snapshot, &shard, true).unwrap();
        assert_ne!(plain, compressed);
        assert!(compressed.windows(4).any(|window| window == DEFLATE_HEADER));
        let read: ShardSnapshot = read_blob(Codec::Snapshot, &compressed).unwrap();
        assert_eq!(read.name, shard.name);
        assert_eq!(read.index_version, 7);

        let mut truncated = DEFLATE_HEADER.to_vec();
        truncated.extend_from_slice(&compress(&encode(&shard).unwrap())[4..10]);
        let error = decode::<ShardSnapshot>(&truncated).unwrap_err().to_string();
        assert!(error.contains("DEFLATE"), "{error}");
    }

    #[test]
    fn a_blob_that_inflates_past_the_limit_is_refused_not_read_to_its_end() {
        // 1 MiB of zeros deflates to about a KiB: a small blob, a big body.
        let bomb = compress(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 8 << 10, "{} bytes", bomb.len());
        let error = inflate(&bomb[DEFLATE_HEADER.len()..], 64 << 10).unwrap_err();
        assert!(
            error.to_string().contains("more than 65536 bytes"),
            "{error}"
        );
        let exact = inflate(&bomb[DEFLATE_HEADER.len()..], 1 << 20).unwrap();
        assert_eq!(exact.len(), 1 << 20);
    }

    #[test]
    fn the_limit_applies_to_every_compressed_body_read() {
        let past_the_limit = compress(&vec![b' '; MAX_INFLATED_BYTES as usize + 1]);
        let error = decode::<serde_json::Value>(&past_the_limit).unwrap_err();
        assert!(
            error.to_string().contains("inflates to more than"),
            "{error}"
        );
    }
}
