//! SMILE bodies as OpenSearch writes them: header flags 0x05 (shared property names, raw binary),
//! no end-of-stream marker.

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

pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FormatError> {
    Ok(serde_smile::from_slice(body)?)
}

/// A complete metadata blob: codec header, SMILE body, CRC32 footer.
pub fn write_blob<T: Serialize + ?Sized>(codec: Codec, value: &T) -> Result<Vec<u8>, FormatError> {
    Ok(codec::frame(
        codec.name(),
        BLOB_FORMAT_VERSION,
        &encode(value)?,
    ))
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
