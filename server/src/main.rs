//! `leancloud-server`: the LeanCloud-compatible server on SQLite.
//!
//! Run with `cargo run -p leancloud-server -- --listen 127.0.0.1:3000 --db .data/leancloud.sqlite3`.
//! Credentials come from `LEANCLOUD_APP_ID`, `LEANCLOUD_APP_KEY`, `LEANCLOUD_APP_MASTER_KEY`
//! (development defaults when unset); see `server/README.md` for every flag.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use leancloud_server::config::{ApnsConfig, FcmConfig, FileStoreArgs, PushConfig};
use leancloud_server::{
    BackupConfig, ConnectionLimits, Credentials, Durability, FilesConfig, HooksConfig, MailConfig,
    PostgresConfig, RateLimits, RealtimeConfig, ServerConfig, DEV_APP_ID, DEV_APP_KEY,
    DEV_MASTER_KEY,
};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RatePreset {
    Off,
    Development,
    Commercial,
}

/// Work on a SQLite database other than serving it.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Copies the SQLite database to FILE, consistently, while a server runs on it (`VACUUM INTO` on a read-only
    /// connection: the database as of one instant, every acknowledged write before it included). FILE must not
    /// exist. Back up the file bodies (`--files-dir`) beside it: they are files, written once.
    Backup {
        /// The database (what the server's `--db` names).
        #[arg(long)]
        db: PathBuf,
        /// The backup file to write.
        #[arg(long)]
        to: PathBuf,
    },
    /// Replaces the SQLite database by a backup, with its server stopped: the backup is checked (integrity, a
    /// schema this server knows) before anything is touched.
    Restore {
        /// The backup (from `backup`, `--backup-dir`, or any copy of a database of this server).
        #[arg(long)]
        from: PathBuf,
        /// The database to replace (created if missing).
        #[arg(long)]
        db: PathBuf,
        /// Restore although the database's `-wal` file exists (the server crashed; it must not be running).
        #[arg(long)]
        force: bool,
    },
    /// Asks a server's `/__admin/health` and exits 0 when it answers 200 (a container's health check: the image
    /// has no curl).
    Healthcheck {
        /// The server's address.
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
    },
}

/// `GET /__admin/health` over a plain socket: the status code, or why there is none.
fn health_status(addr: SocketAddr) -> Result<u16, String> {
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_secs(3);
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET /__admin/health HTTP/1.0\r\nHost: {addr}\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 32];
    let n = stream.read(&mut head).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}

#[derive(Debug, Parser)]
#[command(version, about = "LeanCloud-compatible IM REST server on SQLite")]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// SQLite database file, created with its schema on first start; or a PostgreSQL database
    /// (`postgres://user@host:5432/db?sslmode=require`) that several instances share. A URL with a password
    /// belongs in `LEANCLOUD_DATABASE_URL` (which wins over this flag), not on the command line.
    #[arg(long, default_value = ".data/leancloud.sqlite3")]
    db: String,
    /// PEM file of the CA that signed the PostgreSQL server's certificate (Amazon RDS, Cloud SQL), when it is
    /// not one of the public CAs.
    #[arg(long)]
    postgres_ca_file: Option<PathBuf>,
    /// `full` (default) also survives a power loss or OS crash (one fsync per group commit); `normal`, faster,
    /// survives a killed process.
    #[arg(long, value_enum, default_value = "full")]
    durability: Durability,
    /// LeanCloud rate-limit preset for the RTM API; the flags below override single buckets.
    #[arg(long, value_enum, default_value = "off")]
    rate_limits: RatePreset,
    #[arg(long)]
    messages_per_minute: Option<u32>,
    #[arg(long)]
    broadcasts_per_minute: Option<u32>,
    #[arg(long)]
    broadcasts_per_day: Option<u32>,
    /// Public address of the realtime WebSocket (e.g. `wss://im.example.com/` behind a TLS proxy), as
    /// `GET /v1/route` answers it; default `ws://<Host>/`.
    #[arg(long)]
    realtime_public_url: Option<String>,
    /// Refuse realtime logins and conversation changes without LeanCloud's HMAC-SHA1 signature.
    #[arg(long)]
    realtime_require_signatures: bool,
    /// With signatures required: accept a signature only this close to its timestamp, and once (0: no limit).
    #[arg(long, default_value_t = 3600)]
    realtime_signature_max_age_secs: u64,
    /// Close realtime connections silent for this long (the SDK echoes every 180 s).
    #[arg(long, default_value_t = 380)]
    realtime_idle_timeout_secs: u64,
    /// Close realtime connections that open no session within this long (their frames do not count).
    #[arg(long, default_value_t = 10)]
    realtime_login_timeout_secs: u64,
    /// WebSockets open at once (default: seven eighths of --max-connections, so REST keeps a reserve).
    #[arg(long)]
    realtime_max_sockets: Option<usize>,
    /// WebSockets one client address may hold (0: no limit). Only for clients that connect directly: behind
    /// a proxy or load balancer every socket comes from its address.
    #[arg(long, default_value_t = 0)]
    realtime_max_sockets_per_address: usize,
    /// Logins per minute one client id may make on an instance, after a burst of 30 (0: no limit).
    #[arg(long, default_value_t = 60)]
    realtime_logins_per_minute: u32,
    /// Web pages whose browsers may open the WebSocket, comma-separated (`https://app.example.com`); default:
    /// any. Native SDKs send no `Origin` and are always let in.
    #[arg(long, value_delimiter = ',')]
    realtime_allowed_origins: Vec<String>,
    /// Conversations clients start get a members-only read ACL (other clients cannot list them).
    #[arg(long)]
    realtime_private_conversations: bool,
    /// Clients may not edit the messages they sent (`MESSAGE_EDIT_DISABLED`, 4406); the master key still may.
    #[arg(long)]
    realtime_no_edit: bool,
    /// Clients may not recall the messages they sent (`MESSAGE_RECALL_DISABLED`, 4407); the master key still may.
    #[arg(long)]
    realtime_no_recall: bool,
    /// Clients may edit or recall a message only this long after it was sent (0: no limit).
    #[arg(long, default_value_t = 0)]
    realtime_patch_window_secs: u64,
    /// Commands per second one realtime connection may send (twice that as a burst).
    #[arg(long, default_value_t = 100)]
    realtime_commands_per_second: u32,
    /// The app's re-hosted Cloud Engine, called for the realtime hooks (`_messageReceived`, …) at
    /// `POST {url}/1.1/functions/{hook}` with `X-LC-Hook-Key: $LEANCLOUD_APP_HOOK_KEY`.
    #[arg(long)]
    hooks_url: Option<String>,
    /// Call the hooks over plain HTTP also at a public or named host (every call carries the master key: by
    /// default plain HTTP goes only to loopback and private addresses).
    #[arg(long)]
    hooks_allow_http: bool,
    /// Time a hook call may take (queueing included) before it counts as failed.
    #[arg(long, default_value_t = 3000)]
    hooks_timeout_ms: u64,
    /// A failed blocking hook refuses the request (LeanCloud's default, and ours, lets it through).
    #[arg(long)]
    hooks_fail_closed: bool,
    /// Blocking hook calls in flight at once.
    #[arg(long, default_value_t = 64)]
    hooks_concurrency: usize,
    /// Refuse `X-LC-Sign` timestamps further than this from the server's clock (off by default, like
    /// LeanCloud, which documents no window). 300 suits clients with a sane clock.
    #[arg(long)]
    sign_max_age_secs: Option<u64>,
    /// Open connections (WebSockets included) beyond which new ones are closed at once.
    #[arg(long, default_value_t = 16_384)]
    max_connections: usize,
    /// Seconds a client has to send a request's headers, or to start its next request on a kept-alive
    /// connection.
    #[arg(long, default_value_t = 30)]
    header_timeout_secs: u64,
    /// Requests kept in memory for `server.inspect()` (0: none).
    #[arg(long, default_value_t = 10_000)]
    request_log: usize,
    #[command(flatten)]
    file_store: FileStoreArgs,
    /// Public address of the server for file URLs (e.g. `https://im.example.com`); default: the scheme and
    /// `Host` of each upload request.
    #[arg(long)]
    public_url: Option<String>,
    /// Largest file accepted, in MiB.
    #[arg(long, default_value_t = 100)]
    max_file_mib: u64,
    /// SMTP server for the password-reset and e-mail verification mails: `smtp://user:password@host:587?tls=required`
    /// (STARTTLS), `smtps://user:password@host:465`, or `smtp://host:port` (no TLS, a local relay). A URL with a
    /// password belongs in `LEANCLOUD_SMTP_URL` (which wins over this flag). Unset: those requests answer 119.
    #[arg(long)]
    smtp_url: Option<String>,
    /// The sender of those mails. Their links point at `--public-url` (required off loopback).
    #[arg(long, default_value = "LeanCloud Server <noreply@localhost>")]
    mail_from: String,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (its own listener: keep it off the public network).
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Take an online backup of the SQLite database into this folder periodically (see `backup`).
    #[arg(long)]
    backup_dir: Option<PathBuf>,
    /// Minutes between periodic backups.
    #[arg(long, default_value_t = 60, requires = "backup_dir")]
    backup_every_mins: u64,
    /// Periodic backups kept (the oldest beyond are deleted).
    #[arg(long, default_value_t = 24, requires = "backup_dir")]
    backup_keep: usize,
    /// APNs token authentication: the `.p8` key file Apple issued (Certificates, Identifiers & Profiles → Keys).
    /// Without it, pushes to iOS devices fail with a reason naming this flag.
    #[arg(long, requires_all = ["apns_key_id", "apns_team_id"])]
    apns_key: Option<PathBuf>,
    /// The key's id (10 characters, shown beside the key at Apple).
    #[arg(long, requires = "apns_key")]
    apns_key_id: Option<String>,
    /// The Apple developer team's id.
    #[arg(long, requires = "apns_key")]
    apns_team_id: Option<String>,
    /// The app's bundle id (`apns-topic`), for devices whose installation has no `apnsTopic`.
    #[arg(long, requires = "apns_key")]
    apns_topic: Option<String>,
    /// A base URL replacing `https://api.push.apple.com` and the sandbox (a proxy, a test's stand-in); request
    /// paths (`/3/device/<token>`) are appended.
    #[arg(long, requires = "apns_key")]
    apns_endpoint: Option<String>,
    /// A CA certificate (PEM) to trust for `--apns-endpoint` besides the built-in roots.
    #[arg(long, requires = "apns_key")]
    apns_ca_file: Option<PathBuf>,
    /// FCM HTTP v1: the Firebase project's service-account JSON file (Project settings → Service accounts →
    /// Generate new private key). Without it, pushes to Android (FCM) devices fail with a reason naming this flag.
    #[arg(long)]
    fcm_service_account: Option<PathBuf>,
    /// A base URL replacing `https://fcm.googleapis.com` (a test's stand-in); `/v1/projects/<id>/messages:send`
    /// is appended. The OAuth token URL is the service-account file's `token_uri`.
    #[arg(long, requires = "fcm_service_account")]
    fcm_endpoint: Option<String>,
    /// The payload of an IM offline push when neither the `_receiversOffline` hook nor the message gives one: a
    /// JSON object whose strings may hold `${convId}`, `${timestamp}` and `${fromClientId}`, e.g.
    /// `{"alert": "New message from ${fromClientId}"}`.
    #[arg(long)]
    push_template: Option<String>,
    /// Pushes one instance sends at once (HTTP/2 streams to APNs, requests to FCM): with providers answering in
    /// about 100 ms, 128 in flight deliver about 1,000 a second.
    #[arg(long, default_value_t = 128)]
    push_concurrency: usize,
}

/// The file at `path`, or exits 2 saying which flag's file could not be read (never its content).
fn read_flag_file(flag: &str, path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("leancloud-server: {flag} {}: {e}", path.display());
        std::process::exit(2);
    })
}

fn text_flag_file(flag: &str, path: &std::path::Path) -> String {
    String::from_utf8(read_flag_file(flag, path)).unwrap_or_else(|_| {
        eprintln!(
            "leancloud-server: {flag} {}: not a text file",
            path.display()
        );
        std::process::exit(2);
    })
}

/// `--apns-*`, `--fcm-*` and `--push-template`, their files read.
fn push_config(args: &Args) -> PushConfig {
    let apns = args.apns_key.as_ref().map(|key| ApnsConfig {
        key_pem: text_flag_file("--apns-key", key),
        key_id: args.apns_key_id.clone().unwrap_or_default(),
        team_id: args.apns_team_id.clone().unwrap_or_default(),
        topic: args.apns_topic.clone(),
        endpoint: args.apns_endpoint.clone(),
        ca_pem: args
            .apns_ca_file
            .as_ref()
            .map(|ca| read_flag_file("--apns-ca-file", ca)),
    });
    let fcm = args.fcm_service_account.as_ref().map(|file| FcmConfig {
        service_account: text_flag_file("--fcm-service-account", file),
        endpoint: args.fcm_endpoint.clone(),
    });
    let template =
        args.push_template
            .as_ref()
            .map(|t| match serde_json::from_str::<serde_json::Value>(t) {
                Ok(v @ serde_json::Value::Object(_)) => v,
                _ => {
                    eprintln!("leancloud-server: --push-template: not a JSON object");
                    std::process::exit(2);
                }
            });
    PushConfig {
        apns,
        fcm,
        template,
        concurrency: args.push_concurrency.clamp(1, 1000),
        ..PushConfig::default()
    }
}

/// Runs `backup`, `restore` or `healthcheck` and exits: 0 when done (healthy), 2 (1 for the health check) with the
/// reason when not.
fn run_command(command: Command) -> ! {
    use leancloud_server::store::sqlite::backup;
    let done = match command {
        Command::Backup { db, to } => backup::backup(&db, &to).map(|b| {
            println!(
                "backup of {} written to {} ({} bytes)",
                db.display(),
                b.path.display(),
                b.bytes
            );
        }),
        Command::Restore { from, db, force } => backup::restore(&from, &db, force).map(|()| {
            println!("{} restored from {}", db.display(), from.display());
        }),
        Command::Healthcheck { addr } => match health_status(addr) {
            Ok(200) => {
                println!("healthy");
                std::process::exit(0);
            }
            Ok(code) => {
                eprintln!("leancloud-server: health answered {code}");
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("leancloud-server: no health answer from {addr}: {e}");
                std::process::exit(1);
            }
        },
    };
    match done {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("leancloud-server: {e}");
            std::process::exit(2);
        }
    }
}

fn credentials() -> Credentials {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (id, key, master) = (
        var("LEANCLOUD_APP_ID"),
        var("LEANCLOUD_APP_KEY"),
        var("LEANCLOUD_APP_MASTER_KEY"),
    );
    if id.is_none() {
        tracing::warn!("LEANCLOUD_APP_ID unset: using the development app id {DEV_APP_ID}");
    }
    if key.is_none() {
        tracing::warn!("LEANCLOUD_APP_KEY unset: using the development app key {DEV_APP_KEY}");
    }
    if master.is_none() {
        tracing::warn!(
            "LEANCLOUD_APP_MASTER_KEY unset: using the development master key {DEV_MASTER_KEY}"
        );
    }
    Credentials::new(
        id.unwrap_or_else(|| DEV_APP_ID.into()),
        key.unwrap_or_else(|| DEV_APP_KEY.into()),
        master.unwrap_or_else(|| DEV_MASTER_KEY.into()),
    )
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut args = Args::parse();
    if let Some(command) = args.command.take() {
        run_command(command);
    }
    let mut rate_limits = match args.rate_limits {
        RatePreset::Off => RateLimits::off(),
        RatePreset::Development => RateLimits::development(),
        RatePreset::Commercial => RateLimits::commercial(),
    };
    rate_limits.messages_per_minute = args.messages_per_minute.or(rate_limits.messages_per_minute);
    rate_limits.broadcasts_per_minute = args
        .broadcasts_per_minute
        .or(rate_limits.broadcasts_per_minute);
    rate_limits.broadcasts_per_day = args.broadcasts_per_day.or(rate_limits.broadcasts_per_day);
    let push = push_config(&args);
    let db = std::env::var("LEANCLOUD_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or(args.db);
    let postgres = leancloud_server::store::postgres::is_url(&db).then(|| PostgresConfig {
        url: db.clone(),
        ca_file: args.postgres_ca_file.clone(),
    });
    let tls_roots = leancloud_im::TlsRoots::from_lookup(|name| std::env::var(name).ok())
        .unwrap_or_else(|e| {
            eprintln!("leancloud-server: {e}");
            std::process::exit(2);
        });
    let (dir, s3) = args.file_store.clone().store();
    let s3 = s3.map(|s3| leancloud_server::config::S3Store { tls_roots, ..s3 });
    let smtp_url = std::env::var("LEANCLOUD_SMTP_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .or(args.smtp_url.clone());
    let mail = smtp_url.map(|smtp_url| MailConfig {
        smtp_url,
        from: args.mail_from.clone(),
        link_base: args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", args.listen)),
    });
    let config = ServerConfig {
        listen: args.listen,
        db_path: if postgres.is_some() {
            PathBuf::new()
        } else {
            PathBuf::from(&db)
        },
        postgres,
        credentials: credentials(),
        rate_limits,
        durability: args.durability,
        realtime: RealtimeConfig {
            public_url: args.realtime_public_url,
            require_signatures: args.realtime_require_signatures,
            signature_max_age: (args.realtime_signature_max_age_secs > 0)
                .then(|| std::time::Duration::from_secs(args.realtime_signature_max_age_secs)),
            idle_timeout: std::time::Duration::from_secs(args.realtime_idle_timeout_secs.max(1)),
            commands_per_second: args.realtime_commands_per_second,
            login_timeout: std::time::Duration::from_secs(args.realtime_login_timeout_secs.max(1)),
            max_sockets: args.realtime_max_sockets,
            max_sockets_per_address: args.realtime_max_sockets_per_address,
            logins_per_minute: args.realtime_logins_per_minute,
            allowed_origins: args.realtime_allowed_origins,
            private_conversations: args.realtime_private_conversations,
            patches: leancloud_server::config::PatchPolicy {
                edit: !args.realtime_no_edit,
                recall: !args.realtime_no_recall,
                window: (args.realtime_patch_window_secs > 0)
                    .then(|| std::time::Duration::from_secs(args.realtime_patch_window_secs)),
            },
            ..RealtimeConfig::default()
        },
        hooks: HooksConfig {
            url: args.hooks_url,
            hook_key: std::env::var("LEANCLOUD_APP_HOOK_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
            timeout: std::time::Duration::from_millis(args.hooks_timeout_ms.max(1)),
            fail_closed: args.hooks_fail_closed,
            concurrency: args.hooks_concurrency,
            tls_roots,
            ..HooksConfig::default()
        },
        limits: ConnectionLimits {
            max_connections: args.max_connections,
            header_timeout: std::time::Duration::from_secs(args.header_timeout_secs.max(1)),
        },
        request_log: args.request_log,
        sign_max_age: args.sign_max_age_secs.map(std::time::Duration::from_secs),
        files: FilesConfig {
            dir,
            s3,
            public_url: args.public_url,
            max_bytes: args.max_file_mib.saturating_mul(1024 * 1024),
            ..FilesConfig::default()
        },
        mail,
        metrics_listen: args.metrics_listen,
        backups: args.backup_dir.clone().map(|dir| BackupConfig {
            dir,
            every: std::time::Duration::from_secs(args.backup_every_mins.max(1) * 60),
            keep: args.backup_keep.max(1),
        }),
        push,
        ..ServerConfig::for_tests("")
    };
    // The development master key is public: anyone who can reach the port would have full access.
    if !config.listen.ip().is_loopback() && config.credentials.master_key == DEV_MASTER_KEY {
        eprintln!(
            "leancloud-server: refusing to listen on {} with the development master key; set LEANCLOUD_APP_ID, \
             LEANCLOUD_APP_KEY and LEANCLOUD_APP_MASTER_KEY, or listen on a loopback address",
            config.listen
        );
        std::process::exit(2);
    }
    // Without a public URL, `/v1/route` answers `ws://<Host>/` from each request's `Host` header; reachable from
    // other machines, a cache in front that ignores `Host` could hand SDKs an attacker's address.
    if !config.listen.ip().is_loopback() && config.realtime.public_url.is_none() {
        eprintln!(
            "leancloud-server: listening on {} needs --realtime-public-url (the WebSocket address SDKs are sent \
             to by /v1/route, e.g. wss://im.example.com/); only a loopback address may go without it",
            config.listen
        );
        std::process::exit(2);
    }
    // A mailed link must point at the server's real address; off loopback there is no default to trust.
    if !config.listen.ip().is_loopback()
        && config.mail.is_some()
        && config.files.public_url.is_none()
    {
        eprintln!(
            "leancloud-server: mail (--smtp-url) on {} needs --public-url (the address the password-reset and \
             e-mail verification links point at, e.g. https://im.example.com); only a loopback address may go without it",
            config.listen
        );
        std::process::exit(2);
    }
    if let Some(url) = &config.hooks.url {
        if let Err(why) = leancloud_server::hooks::url_allowed(url, args.hooks_allow_http) {
            eprintln!("leancloud-server: {why}");
            std::process::exit(2);
        }
    }
    let database = match &config.postgres {
        Some(pg) => format!("{pg:?}"),
        None => config.db_path.display().to_string(),
    };
    // A reason a person can act on (a key file that is not a key, a port in use), not a debug dump.
    let server = leancloud_server::spawn(config).await.unwrap_or_else(|e| {
        eprintln!("leancloud-server: {e}");
        std::process::exit(2);
    });
    tracing::info!(url = %server.base_url(), db = %database, ?rate_limits, "leancloud-server listening");
    println!("leancloud-server listening on {}", server.base_url());
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acknowledged_write_survives_a_power_loss_unless_told_otherwise() {
        let defaults = Args::try_parse_from(["leancloud-server"]).expect("parses");
        assert_eq!(Durability::Full, defaults.durability);
        assert_eq!(Durability::Full, Durability::default());
        let normal =
            Args::try_parse_from(["leancloud-server", "--durability", "normal"]).expect("parses");
        assert_eq!(Durability::Normal, normal.durability);
    }

    #[test]
    fn backup_and_restore_are_commands_beside_the_server_s_flags() {
        let args = Args::try_parse_from([
            "leancloud-server",
            "backup",
            "--db",
            "a.sqlite3",
            "--to",
            "b.sqlite3",
        ])
        .expect("parses");
        assert!(matches!(args.command, Some(Command::Backup { .. })));
        let args = Args::try_parse_from(["leancloud-server", "--listen", "127.0.0.1:4000"])
            .expect("parses");
        assert!(args.command.is_none());
    }
}
