//! A LeanCloud-compatible server: the storage API (`/1.1/classes/…`) and the real-time messaging REST API
//! 1.1 (`/1.1/rtm/…`) on SQLite, answering the official SDKs the way LeanCloud does.
//!
//! Start it in a test with a fresh database on a free port, drive it over HTTP, and read what it stored:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use leancloud_server::{spawn, ServerConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let server = spawn(ServerConfig::for_tests(dir.path().join("db.sqlite3"))).await?;
//! println!("listening on {}", server.base_url());
//! // … send requests with X-LC-Id: dev-app-id-gzGzoHsz and X-LC-Key: dev-master-key,master …
//! assert!(server.inspect().all_messages().is_empty());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Durability: each write is committed (SQLite WAL) before its response is sent; a single writer thread
//! commits many requests per transaction under load (group commit). See `server/README.md`.

pub mod auth;
pub mod config;
pub mod console;
pub mod domain;
pub mod error;
mod faults;
pub mod hooks;
pub mod import;
mod inspector;
pub mod key_guard;
mod listener;
pub mod mail;
pub mod metrics;
pub mod protocol;
pub mod push;
pub mod realtime;
pub mod routes;
mod server;
pub mod state;
pub mod store;
pub mod ws;

pub use config::{
    BackupConfig, ConnectionLimits, Credentials, Durability, FaultConfig, FaultKind, FilesConfig,
    HooksConfig, MailConfig, PostgresConfig, RateLimits, RealtimeConfig, ServerConfig, DEV_APP_ID,
    DEV_APP_KEY, DEV_MASTER_KEY,
};
pub use error::AppError;
pub use server::{app, spawn, Inspector, RunningServer, ServerError};
pub use state::{AppState, ReceivedRequest};
pub use store::messages::{MessageKind, StoredMessage};
