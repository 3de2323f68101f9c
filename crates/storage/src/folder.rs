//! A repository in a local folder, as OpenSearch's `fs` repository type writes it: the same
//! layout as in a bucket, one file per blob. Self-managed clusters use it, and copy can write to
//! it (a staging disk, or tests without an Azure emulator).

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{stream, TryStreamExt};
use ossnap_core::{Error, ErrorKind, Result};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::{Blob, BlobSink, BlobStore, ByteStream, Counters, ReadRange, Request, RequestCounts};

/// Bytes read from a file at a time.
const READ_CHUNK: usize = 256 * 1024;

/// The repository whose root is `root`.
#[derive(Debug, Clone)]
pub struct FolderStore {
    root: PathBuf,
    counters: Arc<Counters>,
}

impl FolderStore {
    pub fn new(root: impl Into<PathBuf>) -> FolderStore {
        FolderStore {
            root: root.into(),
            counters: Arc::default(),
        }
    }

    fn path(&self, blob: &str) -> PathBuf {
        self.root.join(blob)
    }

    fn error(&self, action: &str, path: &Path, error: std::io::Error) -> Error {
        let kind = match error.kind() {
            std::io::ErrorKind::PermissionDenied => ErrorKind::AuthError,
            _ => ErrorKind::Unavailable,
        };
        Error::new(kind, format!("cannot {action} {}: {error}", path.display()))
    }
}

#[async_trait]
impl BlobStore for FolderStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Blob>> {
        self.counters.count(Request::List);
        let mut blobs = Vec::new();
        // Only folders on the prefix's path, or under it, are walked: a shard folder's or the
        // root's listing does not walk the whole repository.
        let mut folders = vec![self.root.clone()];
        while let Some(folder) = folders.pop() {
            let mut entries = match tokio::fs::read_dir(&folder).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.error("list", &folder, e)),
            };
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| self.error("list", &folder, e))?
            {
                let path = entry.path();
                let metadata = entry
                    .metadata()
                    .await
                    .map_err(|e| self.error("list", &path, e))?;
                let Ok(relative) = path.strip_prefix(&self.root) else {
                    continue;
                };
                let name = relative.to_string_lossy().replace('\\', "/");
                if metadata.is_dir() {
                    let folder = format!("{name}/");
                    if folder.starts_with(prefix) || prefix.starts_with(&folder) {
                        folders.push(path);
                    }
                    continue;
                }
                if name.starts_with(prefix) && !is_partial(&name) {
                    blobs.push(Blob {
                        name,
                        size: metadata.len(),
                    });
                }
            }
        }
        blobs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(blobs)
    }

    async fn open(&self, blob: &str, range: ReadRange) -> Result<Option<ByteStream>> {
        self.counters.count(Request::Get);
        let path = self.path(blob);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error("read", &path, e)),
        };
        if let ReadRange::From(offset) = range {
            file.seek(SeekFrom::Start(offset))
                .await
                .map_err(|e| self.error("read", &path, e))?;
        }
        let store = self.clone();
        let chunks = stream::try_unfold(file, move |mut file| {
            let store = store.clone();
            let path = path.clone();
            async move {
                let mut buffer = vec![0; READ_CHUNK];
                let read = file
                    .read(&mut buffer)
                    .await
                    .map_err(|e| store.error("read", &path, e))?;
                if read == 0 {
                    return Ok(None);
                }
                buffer.truncate(read);
                store.counters.read(read);
                Ok(Some((Bytes::from(buffer), file)))
            }
        });
        Ok(Some(Box::pin(chunks)))
    }

    fn requests(&self) -> RequestCounts {
        self.counters.snapshot()
    }
}

/// A file still being written: a reader listing the folder must not see it as a blob.
fn is_partial(name: &str) -> bool {
    name.ends_with(PARTIAL_SUFFIX)
}

const PARTIAL_SUFFIX: &str = ".ossnap-partial";

#[async_trait]
impl BlobSink for FolderStore {
    /// Written beside its final name and renamed once complete, so that an interrupted write
    /// never leaves a blob of the right name with the wrong content.
    async fn write(&self, blob: &str, size: u64, mut body: ByteStream) -> Result<()> {
        self.counters.count(Request::Put);
        let path = self.path(blob);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| self.error("create", parent, e))?;
        }
        let partial = PathBuf::from(format!("{}{PARTIAL_SUFFIX}", path.display()));
        let mut file = tokio::fs::File::create(&partial)
            .await
            .map_err(|e| self.error("write", &partial, e))?;
        let mut written = 0u64;
        while let Some(chunk) = body.try_next().await? {
            file.write_all(&chunk)
                .await
                .map_err(|e| self.error("write", &partial, e))?;
            written += chunk.len() as u64;
            self.counters.written(chunk.len());
        }
        file.sync_all()
            .await
            .map_err(|e| self.error("write", &partial, e))?;
        if written != size {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{blob}: the source gave {written} bytes where it listed {size}; nothing was written, run again"
                ),
            ));
        }
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|e| self.error("write", &path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(bytes: &'static [u8]) -> ByteStream {
        Box::pin(stream::iter(vec![Ok(Bytes::from_static(bytes))]))
    }

    #[tokio::test]
    async fn what_is_written_is_listed_and_read_back_whole_and_from_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::new(dir.path());
        store
            .write("indices/a/0/__blob", 11, body(b"hello world"))
            .await
            .unwrap();
        store.write("index-3", 2, body(b"{}")).await.unwrap();

        let listed = store.list("indices/").await.unwrap();
        assert_eq!(
            listed,
            vec![Blob {
                name: "indices/a/0/__blob".into(),
                size: 11
            }]
        );
        assert_eq!(
            store.get("indices/a/0/__blob").await.unwrap().unwrap(),
            b"hello world"
        );
        assert_eq!(
            store
                .get_from("indices/a/0/__blob", 6)
                .await
                .unwrap()
                .unwrap(),
            b"world"
        );
        assert_eq!(store.get("index-4").await.unwrap(), None);
        let names = |blobs: Vec<Blob>| blobs.into_iter().map(|b| b.name).collect::<Vec<_>>();
        assert_eq!(
            names(store.list("indices/a/0/__").await.unwrap()),
            ["indices/a/0/__blob"]
        );
        assert_eq!(names(store.list("index-").await.unwrap()), ["index-3"]);
        assert!(store.list("indices/b/").await.unwrap().is_empty());
        let counts = store.requests();
        assert_eq!((counts.put, counts.list, counts.get), (2, 4, 3));
        assert_eq!(counts.bytes_written, 13);
    }

    #[tokio::test]
    async fn a_short_body_leaves_no_blob_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::new(dir.path());
        let error = store.write("index-3", 5, body(b"{}")).await.unwrap_err();
        assert!(error.to_string().contains("listed 5"), "{error}");
        assert!(store.list("").await.unwrap().is_empty());
    }
}
