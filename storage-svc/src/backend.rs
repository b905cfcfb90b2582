//! Blob storage through `object_store`, and the temp files uploads are staged in.
//!
//! Durability, and why in this order: an upload is streamed to a temp file under
//! `<data_dir>/tmp`, hashed on the way, fsynced and verified; only then is it placed as an
//! immutable blob `<tenant>/<blob uuid>` (local backend: a rename into
//! `<data_dir>/objects/<tenant>/` plus an fsync of the directory; S3: one PUT, or a multipart
//! upload read from the temp file); only then does the metadata transaction make it visible. A
//! crash or a dropped connection at any point leaves either nothing visible or the complete
//! object. Temp files are removed by their guard on every exit path, and the whole temp
//! directory is emptied at start-up (after a crash).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::io::AsyncReadExt;
use uuid::Uuid;

/// Part size of multipart uploads to remote stores (S3 needs at least 5 MiB but the last).
const S3_PART: usize = 8 << 20;
/// Parts uploaded at the same time.
const S3_PARTS_IN_FLIGHT: usize = 2;

/// Where blobs go.
pub struct Backend {
    store: Arc<dyn ObjectStore>,
    /// Set for the local backend: the directory `store` is rooted at (same file system as the
    /// temp directory, so placing a blob is a rename).
    local_root: Option<PathBuf>,
    tmp_dir: PathBuf,
}

/// A staged upload's temp file, removed when dropped unless it was placed.
pub struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            // Synchronous on purpose: this also runs when the request future is dropped
            // mid-upload (client gone), where no async cleanup could be awaited.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub fn blob_path(tenant: Uuid, blob: &str) -> StorePath {
    StorePath::from(format!("{tenant}/{blob}"))
}

impl Backend {
    pub fn local(data_dir: &Path) -> anyhow::Result<Backend> {
        let root = data_dir.join("objects");
        std::fs::create_dir_all(&root)?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&root)?;
        Self::with_store(Arc::new(store), Some(root), data_dir)
    }

    pub fn with_store(
        store: Arc<dyn ObjectStore>,
        local_root: Option<PathBuf>,
        data_dir: &Path,
    ) -> anyhow::Result<Backend> {
        let tmp_dir = data_dir.join("tmp");
        std::fs::create_dir_all(&tmp_dir)?;
        // Left over from a crash: nothing in here is referenced by any object.
        for entry in std::fs::read_dir(&tmp_dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Backend {
            store,
            local_root,
            tmp_dir,
        })
    }

    pub fn tmp_dir(&self) -> &Path {
        &self.tmp_dir
    }

    /// A fresh temp file, open for writing.
    pub async fn temp_file(&self) -> std::io::Result<(TempFile, tokio::fs::File)> {
        let path = self.tmp_dir.join(format!("{}.upload", Uuid::now_v7()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok((TempFile { path, armed: true }, file))
    }

    /// Places a complete, fsynced temp file as blob `path`.
    pub async fn place(&self, mut tmp: TempFile, path: &StorePath) -> anyhow::Result<()> {
        if let Some(root) = &self.local_root {
            let dest = root.join(path.as_ref());
            let dir = dest
                .parent()
                .ok_or_else(|| anyhow::anyhow!("blob path has no parent"))?
                .to_owned();
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::rename(&tmp.path, &dest).await?;
            tmp.armed = false;
            // The rename is durable once the directory entry is.
            tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all()).await??;
            return Ok(());
        }
        // Remote stores: one PUT for what fits in one part, else a multipart upload of
        // `S3_PART`-sized parts with at most `S3_PARTS_IN_FLIGHT` in flight (memory stays
        // bounded by their product, whatever the object's size).
        let mut file = tokio::fs::File::open(&tmp.path).await?;
        let size = file.metadata().await?.len();
        if size <= S3_PART as u64 {
            let mut buf = Vec::with_capacity(size as usize);
            file.read_to_end(&mut buf).await?;
            self.store.put(path, buf.into()).await?;
            return Ok(());
        }
        let upload = self.store.put_multipart(path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, S3_PART);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let read = match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => writer
                    .wait_for_capacity(S3_PARTS_IN_FLIGHT)
                    .await
                    .map(|()| n)
                    .map_err(anyhow::Error::from),
                Err(e) => Err(anyhow::Error::from(e)),
            };
            match read {
                Ok(n) => writer.write(&buf[..n]),
                Err(e) => {
                    // Leaves no incomplete multipart upload behind in the bucket.
                    let _ = writer.abort().await;
                    return Err(e);
                }
            }
        }
        writer.finish().await?;
        Ok(())
    }

    /// The bytes of a blob (or of a range of it), streamed.
    pub async fn get(
        &self,
        path: &StorePath,
        range: Option<Range<u64>>,
    ) -> object_store::Result<BoxStream<'static, object_store::Result<Bytes>>> {
        if let Some(root) = &self.local_root {
            // Larger reads than object_store's local chunking: far fewer blocking hops.
            return local_stream(root.join(path.as_ref()), range).await;
        }
        let opts = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        Ok(self.store.get_opts(path, opts).await?.into_stream())
    }

    pub async fn copy(&self, from: &StorePath, to: &StorePath) -> object_store::Result<()> {
        self.store.copy(from, to).await
    }

    /// Deletes a blob; true when it is gone. Failures are logged (the blob's intent record
    /// stays, and the start-up sweep tries again).
    pub async fn delete(&self, path: &StorePath) -> bool {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => true,
            Err(e) => {
                tracing::warn!(error = %e, blob = %path, "could not delete blob");
                false
            }
        }
    }
}

async fn local_stream(
    file: PathBuf,
    range: Option<Range<u64>>,
) -> object_store::Result<BoxStream<'static, object_store::Result<Bytes>>> {
    use tokio::io::AsyncSeekExt;
    let mut f = tokio::fs::File::open(&file).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            object_store::Error::NotFound {
                path: file.display().to_string(),
                source: Box::new(e),
            }
        } else {
            object_store::Error::Generic {
                store: "local",
                source: Box::new(e),
            }
        }
    })?;
    let (start, len) = match range {
        Some(r) => (r.start, r.end.saturating_sub(r.start)),
        None => (0, u64::MAX),
    };
    if start > 0 {
        f.seek(std::io::SeekFrom::Start(start)).await.map_err(|e| {
            object_store::Error::Generic {
                store: "local",
                source: Box::new(e),
            }
        })?;
    }
    let reader = tokio_util::io::ReaderStream::with_capacity(f.take(len), 256 << 10);
    Ok(reader
        .map(|r| {
            r.map_err(|e| object_store::Error::Generic {
                store: "local",
                source: Box::new(e),
            })
        })
        .boxed())
}
