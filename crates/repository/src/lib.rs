//! The on-disk format of OpenSearch snapshot repositories, as repository-s3 writes them under a
//! repository's `base_path`, with no storage or AWS dependency so that both the local stack (which
//! writes repositories) and ossnap's `verify` step (which reads them from S3) share one definition.
//!
//! What this crate owns:
//! * [`codec`]: the Lucene codec header / CRC32 footer framing around every `.dat` and shard
//!   `index-*` blob (`ChecksumBlobStoreFormat`), and the same framing used for data blobs.
//! * [`smile`]: the SMILE bodies inside that framing.
//! * [`repository_data`]: the root `index-N` JSON (`RepositoryData`) and `index.latest`.
//! * [`model`]: `SnapshotInfo` (root `snap-*.dat`), `BlobStoreIndexShardSnapshot` (shard
//!   `snap-*.dat`) and `BlobStoreIndexShardSnapshots` (shard `index-*`).
//! * [`layout`]: where each blob lives relative to `base_path`.

pub mod codec;
pub mod layout;
pub mod model;
pub mod repository_data;
pub mod smile;

pub use codec::{Codec, Framed};
pub use model::{
    FileInfo, ShardFailure, ShardSnapshot, ShardSnapshotEntry, ShardSnapshots, SnapshotInfo,
};
pub use repository_data::{IndexEntry, RepositoryData, SnapshotEntry, SnapshotState};

/// Everything that can be wrong with bytes claiming to be part of a snapshot repository.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("blob is {actual} bytes, shorter than the {minimum} bytes of codec header and footer")]
    TooShort { actual: usize, minimum: usize },
    #[error("codec header magic is {actual:#010x}, expected {expected:#010x}")]
    HeaderMagic { actual: u32, expected: u32 },
    #[error("codec name is not valid UTF-8")]
    CodecName,
    #[error("codec is [{actual}], expected [{expected}]")]
    UnexpectedCodec { actual: String, expected: String },
    #[error("codec version {actual} is outside the supported range {min}..={max}")]
    CodecVersion { actual: i32, min: i32, max: i32 },
    #[error("codec footer magic is {actual:#010x}, expected {expected:#010x}")]
    FooterMagic { actual: u32, expected: u32 },
    #[error("codec footer checksum algorithm is {0}, expected 0 (CRC32)")]
    ChecksumAlgorithm(i32),
    #[error("CRC32 mismatch: footer says {recorded:#x}, content hashes to {computed:#x}")]
    Checksum { recorded: u64, computed: u64 },
    #[error("SMILE body: {0}")]
    Smile(#[from] serde_smile::Error),
    #[error("JSON body: {0}")]
    Json(#[from] serde_json::Error),
    #[error("index.latest is {0} bytes, expected 8")]
    IndexLatestLength(usize),
    #[error("unknown snapshot state {0}")]
    UnknownState(String),
    #[error("compressed body ({0}) does not inflate: {1}")]
    Inflate(&'static str, String),
}
