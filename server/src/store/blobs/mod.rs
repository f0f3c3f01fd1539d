//! File bodies (`_File`'s bytes), by key: what the file API stores uploads in and serves downloads from. Two
//! stores behind one interface: a directory beside the database ([`local`], the default) and S3-compatible
//! object storage ([`s3`], for several instances on one PostgreSQL database). Either way a key is written at most
//! once, a reader never sees half a body, and a body's facts (size, MD5, content type) are read with it, so a
//! download needs no database read.

pub mod local;
pub mod s3;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::config::{FilesConfig, S3Store};
pub use local::LocalBlobs;
pub use s3::S3Blobs;

/// What can go wrong with a body.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The key already has a body.
    #[error("the file already has a body")]
    Exists,
    /// More bytes than allowed.
    #[error("the body is larger than {max} bytes")]
    TooLarge { max: u64 },
    /// The client's body stream failed (the connection broke).
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    /// A key that is not ours to store.
    #[error("invalid file key")]
    InvalidKey,
    #[error("file storage: {0}")]
    Io(#[from] std::io::Error),
    /// The object store answered with an error (its message names no credential).
    #[error("object storage: {0}")]
    Remote(String),
}

/// A stored body's facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMeta {
    pub size: u64,
    /// Lower-case hex MD5 of the bytes (the `ETag`, and `metaData._checksum`).
    pub md5: String,
    pub content_type: String,
}

/// Whether `key` is one the store may hold: path segments of letters, digits, `.`, `-` and `_`, none of them
/// empty or starting with a dot (no `..`, no hidden files, no `.meta` clash).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && !seg.ends_with(".meta")
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        })
}

/// What both stores count while a body streams in: its size against the limit, and its MD5.
struct Meter {
    md5: md5::Md5,
    size: u64,
    max: u64,
}

impl Meter {
    fn new(max: u64) -> Meter {
        use md5::Digest;
        Meter {
            md5: md5::Md5::new(),
            size: 0,
            max,
        }
    }

    /// The next chunk of the client's stream, counted: `None` at its end; an error when the stream broke or
    /// the body passed the limit.
    async fn next<S, E>(&mut self, body: &mut S) -> Result<Option<Bytes>, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use md5::Digest;
        let Some(chunk) = body.next().await else {
            return Ok(None);
        };
        let chunk = chunk.map_err(|e| BlobError::Interrupted(e.to_string()))?;
        self.size += chunk.len() as u64;
        if self.size > self.max {
            return Err(BlobError::TooLarge { max: self.max });
        }
        self.md5.update(&chunk);
        Ok(Some(chunk))
    }

    /// The facts of the whole body.
    fn finish(self, content_type: &str) -> BlobMeta {
        use md5::Digest;
        BlobMeta {
            size: self.size,
            md5: hex::encode(self.md5.finalize()),
            content_type: content_type.to_string(),
        }
    }
}

/// The file bodies of a server.
#[derive(Debug, Clone)]
pub enum Blobs {
    Local(LocalBlobs),
    S3(S3Blobs),
}

/// An open body to read from.
#[derive(Debug)]
pub struct BlobReader {
    pub meta: BlobMeta,
    source: Source,
}

#[derive(Debug)]
enum Source {
    File(std::fs::File),
    Object(s3::ObjectRef),
}

impl BlobReader {
    fn file(meta: BlobMeta, file: std::fs::File) -> BlobReader {
        BlobReader {
            meta,
            source: Source::File(file),
        }
    }

    fn object(meta: BlobMeta, object: s3::ObjectRef) -> BlobReader {
        BlobReader {
            meta,
            source: Source::Object(object),
        }
    }

    /// `len` bytes from `start`, as a stream of chunks (never the whole body in memory).
    pub async fn stream(
        self,
        start: u64,
        len: u64,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, BlobError> {
        if len == 0 {
            return Ok(futures::stream::empty().boxed());
        }
        match self.source {
            Source::File(file) => {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                let mut file = tokio::fs::File::from_std(file);
                file.seek(std::io::SeekFrom::Start(start)).await?;
                Ok(tokio_util::io::ReaderStream::with_capacity(file.take(len), 64 * 1024).boxed())
            }
            Source::Object(object) => object.range(start, len).await,
        }
    }
}

impl Blobs {
    /// The store `config` names: its S3 bucket, else its directory (`default_dir` when it names none).
    pub fn open_configured(
        config: &FilesConfig,
        default_dir: &std::path::Path,
    ) -> Result<Blobs, BlobsConfigError> {
        match &config.s3 {
            Some(s3) => Ok(Blobs::S3(S3Blobs::new(s3)?)),
            None => {
                let dir = config.dir.as_deref().unwrap_or(default_dir);
                LocalBlobs::new(dir)
                    .map(Blobs::Local)
                    .map_err(|source| BlobsConfigError::Dir {
                        path: dir.display().to_string(),
                        source,
                    })
            }
        }
    }

    /// A directory store under `root` (created if missing).
    pub fn local(root: impl Into<std::path::PathBuf>) -> std::io::Result<Blobs> {
        LocalBlobs::new(root).map(Blobs::Local)
    }

    /// Where the bodies are, for operators (`dir /srv/files`, `s3://bucket/prefix`).
    pub fn describe(&self) -> String {
        match self {
            Blobs::Local(l) => format!("dir {}", l.root().display()),
            Blobs::S3(s) => s.describe(),
        }
    }

    /// Stores `body` under `key` if the key has no body yet: at most `max` bytes. Answers its facts.
    pub async fn put_new<S, E>(
        &self,
        key: &str,
        content_type: &str,
        body: S,
        max: u64,
    ) -> Result<BlobMeta, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        if !valid_key(key) {
            return Err(BlobError::InvalidKey);
        }
        match self {
            Blobs::Local(l) => l.put_new(key, content_type, body, max).await,
            Blobs::S3(s) => s.put_new(key, content_type, body, max).await,
        }
    }

    /// The body under `key`, opened, with its facts; `None` when there is none.
    pub async fn open(&self, key: &str) -> Result<Option<BlobReader>, BlobError> {
        if !valid_key(key) {
            return Err(BlobError::InvalidKey);
        }
        match self {
            Blobs::Local(l) => l.open(key).await,
            Blobs::S3(s) => s.open(key).await,
        }
    }

    /// Removes the body under `key`; `false` when there was none.
    pub async fn delete(&self, key: &str) -> Result<bool, BlobError> {
        if !valid_key(key) {
            return Err(BlobError::InvalidKey);
        }
        match self {
            Blobs::Local(l) => l.delete(key).await,
            Blobs::S3(s) => s.delete(key).await,
        }
    }

    /// Stores a body that is already in memory (imports).
    pub async fn put_bytes(
        &self,
        key: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<BlobMeta, BlobError> {
        let stream = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(bytes))]);
        self.put_new(key, content_type, stream, u64::MAX).await
    }
}

/// A file store that cannot be opened as configured.
#[derive(Debug, thiserror::Error)]
pub enum BlobsConfigError {
    #[error("file storage directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("S3 file storage ({store}): {message}")]
    S3 { store: String, message: String },
}

impl From<(&S3Store, object_store::Error)> for BlobsConfigError {
    fn from((store, e): (&S3Store, object_store::Error)) -> Self {
        BlobsConfigError::S3 {
            store: store.describe(),
            message: e.to_string(),
        }
    }
}
