//! ossnap-storage: where a snapshot repository's blobs live — an S3 bucket ([`s3`]), an Azure
//! Blob Storage container ([`azure`]) or a local folder ([`folder`]) — behind one small
//! interface, so that verify reads and copy writes a repository with the same code wherever it
//! is.
//!
//! Every store is scoped to one repository (its base path): blob names are relative to it, as
//! OpenSearch's repository plugins name them (`index-7`, `indices/<id>/0/__<uuid>`). Every store
//! counts the requests it makes, by kind, and the bytes it reads and writes: verify and copy
//! report them, and the benchmarks divide them by blobs.
//!
//! Reads stream ([`BlobStore::open`]), so memory stays bounded whatever a blob's size; writes
//! ([`BlobSink::write`]) take a stream too and send large blobs in blocks.
//!
//! Beside the repository, in the same bucket: verify's [`verdicts`] on damaged snapshots, which
//! retention reads.

pub mod azure;
pub mod azure_target;
pub mod folder;
pub mod s3;
pub mod verdicts;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::TryStreamExt;
use ossnap_core::Result;
use serde::Serialize;

/// A blob's content as it arrives, chunk by chunk.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// A blob of the repository, named relative to its base path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub name: String,
    pub size: u64,
}

/// Which bytes of a blob to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadRange {
    Whole,
    /// From this offset to the end (a Lucene footer, whose offset the blob's recorded length
    /// gives: Azure Blob Storage has no suffix ranges).
    From(u64),
}

/// Read access to one repository's blobs.
#[async_trait]
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// Where the repository is, for messages: `s3://bucket/base`, `azure://account/container/base`
    /// or a folder's path.
    fn location(&self) -> String;

    /// Every blob whose name starts with `prefix`, with its size.
    async fn list(&self, prefix: &str) -> Result<Vec<Blob>>;

    /// The blob's bytes as a stream, or `None` when it does not exist.
    async fn open(&self, blob: &str, range: ReadRange) -> Result<Option<ByteStream>>;

    /// The requests made so far, by kind, and the bytes read and written.
    fn requests(&self) -> RequestCounts;

    /// The blob's bytes, or `None` when it does not exist.
    async fn get(&self, blob: &str) -> Result<Option<Vec<u8>>> {
        collect(self.open(blob, ReadRange::Whole).await?).await
    }

    /// The blob's bytes from `offset` on (one ranged request), or `None` when it does not exist.
    async fn get_from(&self, blob: &str, offset: u64) -> Result<Option<Vec<u8>>> {
        collect(self.open(blob, ReadRange::From(offset)).await?).await
    }

    /// Hands the blob to `consume` chunk by chunk as it arrives; `false` when it does not exist.
    async fn read_chunks(
        &self,
        blob: &str,
        consume: &mut (dyn for<'chunk> FnMut(&'chunk [u8]) + Send),
    ) -> Result<bool> {
        let Some(mut stream) = self.open(blob, ReadRange::Whole).await? else {
            return Ok(false);
        };
        while let Some(chunk) = stream.try_next().await? {
            consume(&chunk);
        }
        Ok(true)
    }
}

async fn collect(stream: Option<ByteStream>) -> Result<Option<Vec<u8>>> {
    let Some(stream) = stream else {
        return Ok(None);
    };
    let chunks: Vec<Bytes> = stream.try_collect().await?;
    Ok(Some(chunks.concat()))
}

/// Write access, for the destination of a copy. Blob names are immutable in a repository, so a
/// write creates a blob; callers check first that it is absent.
#[async_trait]
pub trait BlobSink: BlobStore {
    /// Writes `size` bytes from `body` as the blob `blob`: in one request when the blob is small,
    /// otherwise in blocks, holding at most a few blocks in memory.
    async fn write(&self, blob: &str, size: u64, body: ByteStream) -> Result<()>;
}

/// Requests made, by kind, and the object bytes they carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    pub list: u64,
    pub get: u64,
    pub bytes_read: u64,
    /// Single-request uploads (S3 PutObject, Azure Put Blob).
    #[serde(skip_serializing_if = "is_zero")]
    pub put: u64,
    /// Blocks of large uploads (Azure Put Block).
    #[serde(skip_serializing_if = "is_zero")]
    pub put_block: u64,
    /// Commits of large uploads (Azure Put Block List).
    #[serde(skip_serializing_if = "is_zero")]
    pub put_block_list: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub bytes_written: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl RequestCounts {
    /// Every request, whatever its kind.
    pub fn total(&self) -> u64 {
        self.list + self.get + self.put + self.put_block + self.put_block_list
    }
}

impl RequestCounts {
    /// The requests made since `earlier` was read from the same store.
    pub fn since(self, earlier: RequestCounts) -> RequestCounts {
        RequestCounts {
            list: self.list.saturating_sub(earlier.list),
            get: self.get.saturating_sub(earlier.get),
            bytes_read: self.bytes_read.saturating_sub(earlier.bytes_read),
            put: self.put.saturating_sub(earlier.put),
            put_block: self.put_block.saturating_sub(earlier.put_block),
            put_block_list: self.put_block_list.saturating_sub(earlier.put_block_list),
            bytes_written: self.bytes_written.saturating_sub(earlier.bytes_written),
        }
    }
}

impl std::ops::Add for RequestCounts {
    type Output = RequestCounts;

    fn add(self, other: RequestCounts) -> RequestCounts {
        RequestCounts {
            list: self.list + other.list,
            get: self.get + other.get,
            bytes_read: self.bytes_read + other.bytes_read,
            put: self.put + other.put,
            put_block: self.put_block + other.put_block,
            put_block_list: self.put_block_list + other.put_block_list,
            bytes_written: self.bytes_written + other.bytes_written,
        }
    }
}

/// The counters behind [`RequestCounts`], shared by a store's clones and tasks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    list: AtomicU64,
    get: AtomicU64,
    bytes_read: AtomicU64,
    put: AtomicU64,
    put_block: AtomicU64,
    put_block_list: AtomicU64,
    bytes_written: AtomicU64,
}

/// A request's kind, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    List,
    Get,
    Put,
    PutBlock,
    PutBlockList,
    /// Anything else (HEAD, container calls): not reported.
    Other,
}

impl Counters {
    pub(crate) fn count(&self, request: Request) {
        let counter = match request {
            Request::List => &self.list,
            Request::Get => &self.get,
            Request::Put => &self.put,
            Request::PutBlock => &self.put_block,
            Request::PutBlockList => &self.put_block_list,
            Request::Other => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn read(&self, bytes: usize) {
        self.bytes_read.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn written(&self, bytes: usize) {
        self.bytes_written
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            list: self.list.load(Ordering::Relaxed),
            get: self.get.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            put: self.put.load(Ordering::Relaxed),
            put_block: self.put_block.load(Ordering::Relaxed),
            put_block_list: self.put_block_list.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
        }
    }
}
