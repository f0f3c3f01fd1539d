//! Server configuration: listen address, database, credentials, rate limits, fault mode, durability, hooks,
//! mail and backups; the file store's, the realtime gateway's and push delivery's settings in their own files.

mod files;
mod push;
mod realtime;

pub use files::{files_beside, FileStoreArgs, FilesConfig, S3Store};
pub use push::{ApnsConfig, FcmConfig, PushConfig};
pub use realtime::{PatchPolicy, RealtimeConfig};

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Development credentials, used when the `LEANCLOUD_*` variables are unset (see `docs/architecture.md`).
pub const DEV_APP_ID: &str = "dev-app-id-gzGzoHsz";
pub const DEV_APP_KEY: &str = "dev-app-key";
pub const DEV_MASTER_KEY: &str = "dev-master-key";

/// Everything [`crate::spawn`] needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The SQLite file, when `postgres` is `None`.
    pub db_path: PathBuf,
    /// A PostgreSQL database instead of the SQLite file (several instances may share it).
    pub postgres: Option<PostgresConfig>,
    pub credentials: Credentials,
    pub rate_limits: RateLimits,
    pub faults: FaultConfig,
    pub durability: Durability,
    pub realtime: RealtimeConfig,
    pub hooks: HooksConfig,
    pub limits: ConnectionLimits,
    /// Requests kept for the inspector (the latest first to go); 0 keeps none.
    pub request_log: usize,
    /// When set, an `X-LC-Sign` whose timestamp is further than this from the server's clock is refused
    /// (LeanCloud documents no window; off by default, as there).
    pub sign_max_age: Option<std::time::Duration>,
    /// Most objects one query may read; a broader query is refused (bounded work per request).
    pub max_scanned_rows: usize,
    pub files: FilesConfig,
    /// Outgoing mail (password reset and e-mail verification links); `None`: those requests are refused.
    pub mail: Option<MailConfig>,
    /// Periodic online backups of the SQLite database (ignored on PostgreSQL).
    pub backups: Option<BackupConfig>,
    /// Where `/metrics` is served (its own listener, never the API's); `None`: no metrics.
    pub metrics_listen: Option<SocketAddr>,
    /// Delivery of queued pushes to APNs and FCM.
    pub push: PushConfig,
}

/// Periodic online backups of the SQLite database by the server itself (`crate::store::sqlite::backup`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupConfig {
    /// Where the backups go, as `leancloud-<UTC time>.sqlite3`.
    pub dir: PathBuf,
    /// How often (the first one this long after the start).
    pub every: Duration,
    /// How many of the newest to keep.
    pub keep: usize,
}

/// Outgoing mail for the password-reset and e-mail verification links. `Debug` never shows the SMTP URL's
/// credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// `smtp://user:password@host:587?tls=required` (STARTTLS), `smtps://user:password@host:465` (TLS from the
    /// start), or `smtp://host:port` (no TLS: a relay on the same machine or a test's stand-in).
    pub smtp_url: String,
    /// The sender, `Example App <noreply@example.com>`.
    pub from: String,
    /// Where the links in the mails point (`https://im.example.com`): the configured public address, never a
    /// request's `Host` (which whoever asks for a reset could choose).
    pub link_base: String,
}

impl fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, rest) = self.smtp_url.split_once("://").unwrap_or(("?", ""));
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        f.debug_struct("MailConfig")
            .field("smtp", &format!("{scheme}://{host}"))
            .field("from", &self.from)
            .field("link_base", &self.link_base)
            .finish()
    }
}

impl ServerConfig {
    /// Where the file bodies are kept.
    pub fn files_dir(&self) -> PathBuf {
        if let Some(dir) = &self.files.dir {
            return dir.clone();
        }
        if self.postgres.is_some() {
            return PathBuf::from("leancloud-files");
        }
        files_beside(&self.db_path)
    }
}

/// What one client can hold of the server: sockets and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open TCP connections (WebSockets included); more are closed at once.
    pub max_connections: usize,
    /// Time to send a request's headers, and to start the next request on a kept-alive connection.
    pub header_timeout: std::time::Duration,
}

impl ConnectionLimits {
    /// The WebSocket budget under this cap: `wanted`, or seven eighths of the cap; always leaving HTTP at
    /// least one slot.
    pub fn websockets(&self, wanted: Option<usize>) -> usize {
        let cap = self.max_connections.max(2);
        wanted.unwrap_or(cap - cap / 8).clamp(1, cap - 1)
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 16_384,
            header_timeout: std::time::Duration::from_secs(30),
        }
    }
}

impl ServerConfig {
    /// Loopback port 0, development credentials, rate limits and faults off.
    pub fn for_tests(db_path: impl Into<PathBuf>) -> Self {
        let db_path: PathBuf = db_path.into();
        // Beside the database file even on PostgreSQL: a test's files stay in its temporary directory.
        let files_dir = files_beside(&db_path);
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            db_path,
            postgres: None,
            credentials: Credentials::development(),
            rate_limits: RateLimits::off(),
            faults: FaultConfig::off(),
            // Tests kill processes but never cut the power: the faster mode, which survives a killed process.
            durability: Durability::Normal,
            realtime: RealtimeConfig::default(),
            hooks: HooksConfig::default(),
            limits: ConnectionLimits::default(),
            request_log: 10_000,
            sign_max_age: None,
            max_scanned_rows: crate::protocol::limits::MAX_SCANNED_ROWS,
            files: FilesConfig {
                dir: Some(files_dir),
                ..FilesConfig::default()
            },
            mail: None,
            backups: None,
            metrics_listen: None,
            push: PushConfig::default(),
        }
    }
}

/// Where the PostgreSQL database is. `Debug` never shows the URL (it may hold a password).
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/db?sslmode=…`.
    pub url: String,
    /// PEM file of the certificate authority of the database's TLS certificate, when it is not a public one
    /// (Amazon RDS, Cloud SQL).
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = tokio_postgres::Config::from_str(&self.url)
            .map(|c| describe_postgres(&c))
            .unwrap_or_else(|_| "<invalid URL>".into());
        f.debug_struct("PostgresConfig")
            .field("database", &at)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// The app's id and keys. `Debug` never shows the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub app_id: String,
    pub app_key: String,
    pub master_key: String,
}

impl Credentials {
    pub fn new(
        app_id: impl Into<String>,
        app_key: impl Into<String>,
        master_key: impl Into<String>,
    ) -> Self {
        Credentials {
            app_id: app_id.into(),
            app_key: app_key.into(),
            master_key: master_key.into(),
        }
    }

    pub fn development() -> Self {
        Credentials::new(DEV_APP_ID, DEV_APP_KEY, DEV_MASTER_KEY)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("app_id", &self.app_id)
            .field("app_key", &"<redacted>")
            .field("master_key", &"<redacted>")
            .finish()
    }
}

/// How hard a commit tries to reach the disk.
///
/// `Full` (the default, `synchronous=FULL`) fsyncs the WAL on every commit (one fsync per group-committed batch),
/// so an acknowledged write survives a power loss or an OS crash. `Normal` (`synchronous=NORMAL`), the faster
/// choice, survives a killed process (every acknowledged write is in the WAL file) but a power loss or OS crash may
/// lose the last commits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    Normal,
    #[default]
    Full,
}

/// LeanCloud's RTM REST rate-limit buckets (`leancloud-rest.md` §6). `None` = unlimited.
///
/// A minute window starts with the first request counted in it and lasts 60 s; once the bucket is full,
/// every request to it gets 429 until the window ends. The daily broadcast quota resets at 00:00 UTC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimits {
    /// `/1.1/rtm/messages` (普通消息), calls per minute; one call counts once whatever its recipients.
    pub messages_per_minute: Option<u32>,
    /// `/1.1/rtm/broadcast` (广播消息), calls per minute.
    pub broadcasts_per_minute: Option<u32>,
    /// `/1.1/rtm/broadcast`, calls per UTC day.
    pub broadcasts_per_day: Option<u32>,
}

impl RateLimits {
    pub fn off() -> Self {
        RateLimits::default()
    }

    /// LeanCloud's commercial defaults: 1800 messages/min, 10 broadcasts/min and 30/day.
    pub fn commercial() -> Self {
        RateLimits {
            messages_per_minute: Some(1800),
            broadcasts_per_minute: Some(10),
            broadcasts_per_day: Some(30),
        }
    }

    /// LeanCloud's development-plan limits: 120 messages/min, 1 broadcast/min and 10/day.
    pub fn development() -> Self {
        RateLimits {
            messages_per_minute: Some(120),
            broadcasts_per_minute: Some(1),
            broadcasts_per_day: Some(10),
        }
    }

    pub fn is_off(&self) -> bool {
        self.messages_per_minute.is_none()
            && self.broadcasts_per_minute.is_none()
            && self.broadcasts_per_day.is_none()
    }
}

/// One way to fail a request on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FaultKind {
    /// 503 with a LeanCloud error body; the request is not applied.
    #[serde(rename = "5xx")]
    ServerError,
    /// 429 with `Retry-After: 1`; not applied.
    #[serde(rename = "429")]
    TooManyRequests,
    /// Waits `delay_ms` (past the client's timeout), then answers 504; not applied.
    #[serde(rename = "timeout")]
    Timeout,
    /// Closes the connection without any response; not applied.
    #[serde(rename = "drop")]
    Drop,
    /// Applies the request, then closes the connection without a response (opt-in: a retry *can* duplicate it).
    #[serde(rename = "applied-then-dropped")]
    AppliedThenDropped,
}

/// Fault mode: a share of requests fails in one of `kinds` (picked at random).
///
/// Requests to `/__admin/*` are never faulted. With `paths` non-empty, only requests whose path starts with
/// one of them are eligible. With `max_faults` set, fault mode switches itself off after that many faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultConfig {
    /// Share of eligible requests to fail, 0.0 ..= 1.0.
    pub rate: f64,
    pub kinds: Vec<FaultKind>,
    /// Delay of the `timeout` kind.
    pub delay_ms: u64,
    pub paths: Vec<String>,
    pub max_faults: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig::off()
    }
}

impl FaultConfig {
    pub fn off() -> Self {
        FaultConfig {
            rate: 0.0,
            kinds: Vec::new(),
            delay_ms: 30_000,
            paths: Vec::new(),
            max_faults: None,
        }
    }

    /// Every eligible request fails with `kind`.
    pub fn always(kind: FaultKind) -> Self {
        FaultConfig {
            rate: 1.0,
            kinds: vec![kind],
            ..FaultConfig::off()
        }
    }

    pub fn is_off(&self) -> bool {
        self.rate <= 0.0 || self.kinds.is_empty() || self.max_faults == Some(0)
    }
}

/// The hooks' settings.
#[derive(Clone)]
pub struct HooksConfig {
    /// The re-hosted Cloud Engine app, e.g. `http://engine:3000`; `None` = no hooks.
    pub url: Option<String>,
    /// Sent as `X-LC-Hook-Key` (`LEANCLOUD_APP_HOOK_KEY`). Never logged.
    pub hook_key: Option<String>,
    /// Per call.
    pub timeout: Duration,
    /// A failed or timed-out blocking hook refuses the request instead of letting it through.
    pub fail_closed: bool,
    /// Blocking hook calls in flight at once; one that gets no slot within the timeout is refused as busy.
    pub concurrency: usize,
    /// After-hook calls waiting; more are dropped and counted.
    pub queue_len: usize,
    /// How often the list of defined hooks is fetched again.
    pub refresh: Duration,
    /// The certificate authorities an `https://` hooks URL is checked against (`LEANCLOUD_TLS_ROOTS`; Mozilla's,
    /// built in, by default).
    pub tls_roots: leancloud_im::TlsRoots,
}

impl std::fmt::Debug for HooksConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HooksConfig")
            .field("url", &self.url)
            .field("hook_key", &self.hook_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("fail_closed", &self.fail_closed)
            .field("concurrency", &self.concurrency)
            .field("queue_len", &self.queue_len)
            .finish()
    }
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            url: None,
            hook_key: None,
            timeout: Duration::from_secs(3),
            fail_closed: false,
            concurrency: 64,
            queue_len: 1024,
            refresh: Duration::from_secs(60),
            tls_roots: leancloud_im::TlsRoots::default(),
        }
    }
}

/// `host:port/dbname` of a connection string, without user or password: what logs may show.
pub fn describe_postgres(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_default();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or(""))
}
