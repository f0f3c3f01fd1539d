//! Connections without their sockets, for the fuzz target `realtime_connection` (review part 3: the realtime
//! connection as a state machine). Each [`Link`] is a real [`Conn`] on a real server state (SQLite, the hub,
//! the domain operations): a frame goes through the same decoding, rate limit and dispatch as one read from a
//! WebSocket, and what the hub hands over for its sessions goes through the same `outbound` as in the socket
//! loop. Only the socket's read/write loop (timeouts, flushing) is left out.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::connection::Conn;
use super::frame::{self, Encoded, Subprotocol};
use crate::config::{Durability, ServerConfig};
use crate::realtime::hub::{OnlineClient, Outbound};
use crate::realtime::proto::GenericCommand;
use crate::state::AppState;
use crate::store::db::Db;
use crate::store::sqlite::SqliteDb;

/// A server state on a scratch SQLite database, with no rate limits on the commands or logins it gets.
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    state: AppState,
    path: PathBuf,
}

/// One connection (binary protobuf frames, protocol version 3).
pub struct Link {
    conn: Conn,
    rx: mpsc::Receiver<Outbound>,
}

impl Harness {
    /// Creates (replacing) the database at `path` with the server's schema.
    pub fn new(path: &Path) -> Result<Harness, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let db = SqliteDb::open(path, Durability::Normal).map_err(|e| e.to_string())?;
        let mut config = ServerConfig::for_tests(path);
        config.realtime.commands_per_second = 1_000_000;
        config.realtime.logins_per_minute = 0;
        let files = crate::domain::files::Files::new(
            crate::store::blobs::Blobs::open_configured(&config.files, &config.files_dir())
                .map_err(|e| e.to_string())?,
            config.files.clone(),
        );
        let state = runtime.block_on(async { AppState::new(Db::Sqlite(db), config, files, None) });
        Ok(Harness {
            runtime,
            state,
            path: path.to_owned(),
        })
    }

    pub fn connect(&self) -> Link {
        let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
        let (conn, rx) = Conn::new(
            self.state.clone(),
            Subprotocol {
                base64: false,
                version: 3,
            },
            Some(peer),
        );
        Link { conn, rx }
    }

    /// Handles one frame on `link` as if read from its socket; returns the frames it would write.
    pub fn frame(&self, link: &mut Link, command: &GenericCommand) -> Vec<GenericCommand> {
        let bytes = match frame::encode(command, false) {
            Encoded::Binary(bytes) => bytes,
            Encoded::Text(text) => text.into_bytes(),
        };
        self.raw(link, &bytes)
    }

    /// Handles arbitrary bytes as one binary frame.
    pub fn raw(&self, link: &mut Link, bytes: &[u8]) -> Vec<GenericCommand> {
        self.runtime.block_on(link.conn.frame(bytes, false));
        std::mem::take(&mut link.conn.out)
    }

    /// What the hub handed over for `link`'s sessions since last asked, as the frames it would write.
    pub fn pushed(&self, link: &mut Link) -> Vec<GenericCommand> {
        while let Ok(item) = link.rx.try_recv() {
            link.conn.outbound(item);
        }
        std::mem::take(&mut link.conn.out)
    }

    /// Ends `link` as a socket that vanished does (its sessions end, the hub forgets them, their will messages
    /// are sent).
    pub fn close(&self, mut link: Link) {
        self.runtime.block_on(link.conn.close_all(true));
    }

    /// The hub's view: every online client id with its sessions (connection id, tag).
    pub fn hub_sessions(&self) -> Vec<OnlineClient> {
        self.state.svc.presence.hub.sessions()
    }

    /// The client ids `link` has sessions for.
    pub fn sessions_of(link: &Link) -> Vec<(u64, String)> {
        link.conn
            .sessions
            .keys()
            .map(|peer| (link.conn.id, peer.to_string()))
            .collect()
    }

    /// The members the store has for conversation `cid` (empty when there is none).
    pub fn members(&self, cid: &str) -> Vec<String> {
        self.runtime.block_on(async {
            crate::domain::messaging::target_kind(&self.state.svc, cid)
                .await
                .ok()
                .flatten()
                .map(|kind| kind.members)
                .unwrap_or_default()
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("conn", &self.conn.id)
            .finish_non_exhaustive()
    }
}
