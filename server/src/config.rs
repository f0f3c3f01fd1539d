//! Server configuration: listen address, database, credentials, rate limits, fault mode, durability.

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

/// The push providers (`--apns-*`, `--fcm-*`) and the queue's worker. A provider left `None` is not
/// configured: its jobs fail with a reason saying which flag is missing. `Debug` never shows a key (the
/// providers' configs leave theirs out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushConfig {
    pub apns: Option<ApnsConfig>,
    pub fcm: Option<FcmConfig>,
    /// The payload of an IM offline push when neither the `_receiversOffline` hook nor the message gives one
    /// (`${convId}`, `${timestamp}`, `${fromClientId}` replaced); `None`: LeanCloud's default alert.
    pub template: Option<serde_json::Value>,
    /// How often the worker looks for due jobs.
    pub every: Duration,
    /// Deliveries one instance has in flight at once (`--push-concurrency`): providers answer in tens to hundreds
    /// of milliseconds, so this, over their latency, bounds the pushes per second.
    pub concurrency: usize,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            apns: None,
            fcm: None,
            template: None,
            every: Duration::from_secs(1),
            concurrency: 128,
        }
    }
}

/// APNs token authentication: the `.p8` key Apple issued, its key id and the team's id.
#[derive(Clone, PartialEq, Eq)]
pub struct ApnsConfig {
    /// The `.p8` file's text (PEM, PKCS#8).
    pub key_pem: String,
    pub key_id: String,
    pub team_id: String,
    /// The app's bundle id, for devices whose installation has no `apnsTopic`.
    pub topic: Option<String>,
    /// A base URL replacing both `api.push.apple.com` and the sandbox (tests, proxies).
    pub endpoint: Option<String>,
    /// A CA certificate (PEM) to trust besides the built-in roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for ApnsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApnsConfig")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .field("topic", &self.topic)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// FCM HTTP v1: the Firebase project's service-account JSON.
#[derive(Clone, PartialEq, Eq)]
pub struct FcmConfig {
    /// The service-account file's text.
    pub service_account: String,
    /// A base URL replacing `https://fcm.googleapis.com` (tests).
    pub endpoint: Option<String>,
}

impl fmt::Debug for FcmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FcmConfig")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
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

/// The default file directory of a SQLite database: `<db>.files` beside it (the server's, and the one
/// `leancloud-migrate import` moves file bodies into).
pub fn files_beside(db_path: &std::path::Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(".files");
    PathBuf::from(name)
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

/// The realtime gateway's settings.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// The address clients reach the WebSocket at (`wss://im.example.com/` behind a TLS proxy), as
    /// `GET /v1/route` answers it; by default `ws://<Host header>/`.
    pub public_url: Option<String>,
    /// Refuse logins (and conversation creation, invites and kicks) without a valid signature.
    pub require_signatures: bool,
    /// With signatures required: how far a signature's timestamp may be from now, each signature accepted once
    /// within it; `None`: the HMAC alone (LeanCloud's own check).
    pub signature_max_age: Option<Duration>,
    /// A connection that sends nothing (not even `echo`) for this long is closed. The SDK echoes every
    /// 180 s and gives up itself after 380 s.
    pub idle_timeout: Duration,
    /// A connection with no session is closed this long after it opened (or lost its last session); its
    /// frames (`echo`, pings) do not extend it.
    pub login_timeout: Duration,
    /// WebSockets open at once; `None`: seven eighths of the connection cap, so HTTP keeps a reserve. Always
    /// below the connection cap.
    pub max_sockets: Option<usize>,
    /// WebSockets one client address may hold (0: no limit; behind a proxy every socket has its address).
    pub max_sockets_per_address: usize,
    /// Logins per minute one client id may make on an instance, after a burst of 30 (0: no limit).
    pub logins_per_minute: u32,
    /// Web pages (`Origin`s, e.g. `https://app.example.com`) whose browsers may open the WebSocket; empty: any.
    /// Native SDKs send no `Origin` and are never refused (LeanCloud's "Web security domains").
    pub allowed_origins: Vec<String>,
    /// Conversations started by clients (`conv/start`) get a members-only read ACL, so other clients and
    /// app-key REST calls do not list who talks to whom; off: public, as on LeanCloud.
    pub private_conversations: bool,
    /// Largest frame or message accepted.
    pub max_frame_bytes: usize,
    /// Commands per second one connection may send (a burst of twice that is allowed).
    pub commands_per_second: u32,
    /// Frames waiting for one connection; a client that lets more pile up is disconnected.
    pub queue_len: usize,
    /// Lifetime of the session token handed out at login (`stTtl`).
    pub session_ttl: Duration,
    /// What clients may do to messages they sent (LeanCloud's console switches).
    pub patches: PatchPolicy,
}

impl RealtimeConfig {
    /// Whether a browser page from `origin` may open the WebSocket (see [`RealtimeConfig::allowed_origins`]).
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        self.allowed_origins.is_empty()
            || self.allowed_origins.iter().any(|a| {
                a.trim_end_matches('/')
                    .eq_ignore_ascii_case(origin.trim_end_matches('/'))
            })
    }
}

/// Edits and recalls by clients, as LeanCloud's console sets them: each can be switched off, and both can be
/// limited to a time after the message was sent. The app's backend (master key) is never limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchPolicy {
    pub edit: bool,
    pub recall: bool,
    /// A message older than this can no longer be edited or recalled by a client; `None`: no limit.
    pub window: Option<Duration>,
}

impl Default for PatchPolicy {
    fn default() -> Self {
        PatchPolicy {
            edit: true,
            recall: true,
            window: None,
        }
    }
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            public_url: None,
            require_signatures: false,
            signature_max_age: Some(Duration::from_secs(3600)),
            idle_timeout: Duration::from_secs(380),
            login_timeout: Duration::from_secs(10),
            max_sockets: None,
            max_sockets_per_address: 0,
            logins_per_minute: 60,
            allowed_origins: Vec::new(),
            private_conversations: false,
            max_frame_bytes: 64 * 1024,
            commands_per_second: 100,
            queue_len: 1024,
            session_ttl: Duration::from_secs(17_280),
            patches: PatchPolicy::default(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_push_configs_debug_shows_no_key() {
        let push = PushConfig {
            apns: Some(ApnsConfig {
                key_pem: "apns-key-text".into(),
                key_id: "KEY1234567".into(),
                team_id: "TEAM123456".into(),
                topic: None,
                endpoint: None,
                ca_pem: None,
            }),
            fcm: Some(FcmConfig {
                service_account: "service-account-text".into(),
                endpoint: None,
            }),
            ..PushConfig::default()
        };
        let shown = format!("{push:?}");
        assert!(shown.contains("KEY1234567"), "{shown}");
        assert!(
            !shown.contains("apns-key-text") && !shown.contains("service-account-text"),
            "{shown}"
        );
    }
}
