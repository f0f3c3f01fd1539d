//! The file API's settings: where bodies are kept (a directory or an S3-compatible bucket) and its limits.

use std::path::PathBuf;
use std::time::Duration;

/// The file API's storage and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesConfig {
    /// The directory of file bodies; by default `<db>.files` beside the SQLite file (`leancloud-files` in the
    /// working directory on PostgreSQL).
    pub dir: Option<PathBuf>,
    /// S3-compatible object storage instead of the directory (what several instances share).
    pub s3: Option<S3Store>,
    /// The server's public address for file URLs (`https://files.example.com`); by default the scheme and
    /// `Host` of the upload request.
    pub public_url: Option<String>,
    /// Largest body accepted.
    pub max_bytes: u64,
    /// How long an upload token lives; an upload without a body by then is deleted.
    pub upload_ttl: Duration,
    /// How often expired uploads are looked for.
    pub sweep_every: Duration,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            dir: None,
            s3: None,
            public_url: None,
            max_bytes: 100 * 1024 * 1024,
            upload_ttl: Duration::from_secs(3600),
            sweep_every: Duration::from_secs(60),
        }
    }
}

/// A bucket of S3-compatible object storage for file bodies. Credentials come from the environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, or the instance's role), never from here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Store {
    pub bucket: String,
    /// Keys are stored under this prefix (`app1/` lets apps share a bucket); empty for none.
    pub prefix: String,
    /// The service's address when not AWS (MinIO, Ceph, moto: `http://127.0.0.1:9000`); path-style requests.
    pub endpoint: Option<String>,
    /// The region (`AWS_REGION` when unset, else `us-east-1`).
    pub region: Option<String>,
    /// The certificate authorities its HTTPS connections trust (`LEANCLOUD_TLS_ROOTS`; Mozilla's, built in, by
    /// default, so the server starts where the system has none, e.g. a `FROM scratch` image).
    pub tls_roots: leancloud_im::TlsRoots,
}

impl S3Store {
    /// `s3://bucket/prefix` (at `endpoint`), for logs and errors.
    pub fn describe(&self) -> String {
        let mut out = format!("s3://{}/{}", self.bucket, self.prefix);
        if let Some(endpoint) = &self.endpoint {
            out.push_str(&format!(" at {endpoint}"));
        }
        out
    }
}

/// The file store flags, shared by the server and `leancloud-migrate import`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FileStoreArgs {
    /// Directory of file bodies (default: `<db>.files` beside the SQLite file).
    #[arg(long, conflicts_with = "files_s3_bucket")]
    pub files_dir: Option<PathBuf>,
    /// Keep file bodies in this bucket of S3-compatible storage instead of a directory (several instances on
    /// one PostgreSQL database need a store they share). Credentials: `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` (or the instance's role).
    #[arg(long)]
    pub files_s3_bucket: Option<String>,
    /// Prefix of the keys in the bucket (e.g. `myapp/`).
    #[arg(long, default_value = "", requires = "files_s3_bucket")]
    pub files_s3_prefix: String,
    /// Address of S3-compatible storage other than AWS (MinIO, Ceph), e.g. `http://127.0.0.1:9000`.
    #[arg(long, requires = "files_s3_bucket")]
    pub files_s3_endpoint: Option<String>,
    /// The bucket's region (default: `AWS_REGION`, else `us-east-1`).
    #[arg(long, requires = "files_s3_bucket")]
    pub files_s3_region: Option<String>,
}

impl FileStoreArgs {
    /// The directory and the bucket the flags name (at most one of them is set).
    pub fn store(self) -> (Option<PathBuf>, Option<S3Store>) {
        let s3 = self.files_s3_bucket.map(|bucket| S3Store {
            bucket,
            prefix: self.files_s3_prefix,
            endpoint: self.files_s3_endpoint,
            region: self.files_s3_region,
            tls_roots: leancloud_im::TlsRoots::default(),
        });
        (self.files_dir, s3)
    }
}

/// The default file directory of a SQLite database: `<db>.files` beside it (the server's, and the one
/// `leancloud-migrate import` moves file bodies into).
pub fn files_beside(db_path: &std::path::Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(".files");
    PathBuf::from(name)
}
