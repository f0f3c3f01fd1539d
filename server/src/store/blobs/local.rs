//! File bodies in a directory beside the database (the default store). A body is written to a temporary file,
//! fsynced and linked to its key only if the key is free, so a key is written once (an upload token cannot be
//! used twice, even by two requests at the same time) and a reader never sees half a body. Beside each body,
//! `<key>.meta` keeps its content type and MD5, so a download needs no database read.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::Stream;

use super::{valid_key, BlobError, BlobMeta, BlobReader, Meter};

/// The bodies of one server: a directory.
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    /// The bodies under `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> std::io::Result<LocalBlobs> {
        let root = root.into();
        std::fs::create_dir_all(root.join(".tmp"))?;
        Ok(LocalBlobs { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        if !valid_key(key) {
            return Err(BlobError::InvalidKey);
        }
        Ok(self.root.join(key))
    }

    fn meta_path(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".meta");
        PathBuf::from(name)
    }

    /// Stores `body` under `key` if the key has no body yet: at most `max` bytes. Answers its facts.
    pub async fn put_new<S, E>(
        &self,
        key: &str,
        content_type: &str,
        mut body: S,
        max: u64,
    ) -> Result<BlobMeta, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let target = self.path(key)?;
        if tokio::fs::try_exists(&target).await? {
            return Err(BlobError::Exists);
        }
        let tmp = self.root.join(".tmp").join(format!(
            "{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let mut file = tokio::fs::File::create(&tmp).await?;
        let written = async {
            let mut meter = Meter::new(max);
            while let Some(chunk) = meter.next(&mut body).await? {
                tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await?;
            }
            file.sync_all().await?;
            Ok(meter.finish(content_type))
        }
        .await;
        let meta = match written {
            Ok(meta) => meta,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        let placed = {
            let (tmp, target, meta) = (tmp.clone(), target.clone(), meta.clone());
            tokio::task::spawn_blocking(move || place(&tmp, &target, &meta))
                .await
                .map_err(|e| BlobError::Io(std::io::Error::other(e)))?
        };
        let _ = tokio::fs::remove_file(&tmp).await;
        placed.map(|()| meta)
    }

    /// The body under `key`, opened, with its facts; `None` when there is none.
    pub async fn open(&self, key: &str) -> Result<Option<BlobReader>, BlobError> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || {
            let meta = match std::fs::read(Self::meta_path(&path)) {
                Ok(bytes) => serde_json::from_slice::<BlobMeta>(&bytes)
                    .map_err(|e| BlobError::Io(std::io::Error::other(e)))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            match std::fs::File::open(&path) {
                Ok(file) => Ok(Some(BlobReader::file(meta, file))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
        .map_err(|e| BlobError::Io(std::io::Error::other(e)))?
    }

    /// Removes the body under `key`; `false` when there was none.
    pub async fn delete(&self, key: &str) -> Result<bool, BlobError> {
        let path = self.path(key)?;
        let _ = tokio::fs::remove_file(Self::meta_path(&path)).await;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// Writes the facts, then links the body to its key unless the key is taken (a hard link never replaces).
fn place(tmp: &Path, target: &Path, meta: &BlobMeta) -> Result<(), BlobError> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::hard_link(tmp, target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(BlobError::Exists),
        Err(e) => return Err(e.into()),
    }
    let meta_path = LocalBlobs::meta_path(target);
    let text = serde_json::to_vec(meta).map_err(|e| BlobError::Io(std::io::Error::other(e)))?;
    let mut f = std::fs::File::create(&meta_path)?;
    f.write_all(&text)?;
    f.sync_all()?;
    if let Some(parent) = target.parent() {
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn chunks(parts: &[&[u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::copy_from_slice(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn keys_stay_inside_the_directory() {
        assert!(valid_key("abc/logo.png"));
        assert!(valid_key("5f0a9c1e2b3d4f5a6b7c8d9e0f1a2b3c.jpg"));
        for bad in [
            "", "../x", "a/../b", "/abs", "a//b", ".hidden", "a/.tmp", "x.meta", "a b", "ä",
        ] {
            assert!(!valid_key(bad), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_key_is_written_once_and_read_back_by_range() {
        let dir = tempfile::tempdir().expect("dir");
        let blobs = LocalBlobs::new(dir.path()).expect("blobs");
        let meta = blobs
            .put_new("k/a.txt", "text/plain", chunks(&[b"hello ", b"world"]), 100)
            .await
            .expect("stored");
        assert_eq!(
            BlobMeta {
                size: 11,
                md5: "5eb63bbbe01eeed093cb22bb8f5acdc3".into(),
                content_type: "text/plain".into()
            },
            meta
        );
        let again = blobs
            .put_new("k/a.txt", "text/plain", chunks(&[b"other"]), 100)
            .await;
        assert!(matches!(again, Err(BlobError::Exists)), "{again:?}");
        let reader = blobs.open("k/a.txt").await.expect("open").expect("found");
        assert_eq!(meta, reader.meta);
        let part: Vec<Bytes> = reader
            .stream(6, 5)
            .await
            .expect("stream")
            .map(|c| c.expect("chunk"))
            .collect()
            .await;
        assert_eq!(b"world".to_vec(), part.concat());
        assert!(blobs.delete("k/a.txt").await.expect("deleted"));
        assert!(blobs.open("k/a.txt").await.expect("open").is_none());
    }

    #[tokio::test]
    async fn a_body_over_the_limit_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("dir");
        let blobs = LocalBlobs::new(dir.path()).expect("blobs");
        let refused = blobs
            .put_new(
                "big",
                "application/octet-stream",
                chunks(&[b"12345", b"678"]),
                6,
            )
            .await;
        assert!(
            matches!(refused, Err(BlobError::TooLarge { max: 6 })),
            "{refused:?}"
        );
        assert!(blobs.open("big").await.expect("open").is_none());
        let tmp: Vec<_> = std::fs::read_dir(dir.path().join(".tmp"))
            .expect("tmp")
            .collect();
        assert!(tmp.is_empty(), "no temporary file left");
    }
}
