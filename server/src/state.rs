//! Shared state of the HTTP layer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::config::{Credentials, ServerConfig};
use crate::domain::files::Files;
use crate::domain::limits::RateLimiter;
use crate::domain::messaging::PushLog;
use crate::domain::Services;
use crate::faults::Faults;
use crate::hooks::Hooks;
use crate::realtime::Realtime;
use crate::store::db::Db;

/// Longest path, and longest query, kept per request: the log must not become a memory sink for
/// unauthenticated 64 KB URIs.
const MAX_RECORDED_URI_PART: usize = 512;

fn clip(mut s: String) -> String {
    if s.len() > MAX_RECORDED_URI_PART {
        let mut end = MAX_RECORDED_URI_PART;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// A request as the server saw it. `status` is 0 when the connection was dropped without a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    pub at: DateTime<Utc>,
}

/// The latest requests, at most `capacity` of them, paths and queries clipped.
#[derive(Debug, Default)]
pub struct RequestLog {
    entries: Mutex<VecDeque<ReceivedRequest>>,
    capacity: usize,
}

impl RequestLog {
    pub fn new(capacity: usize) -> Self {
        RequestLog {
            entries: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    pub fn push(&self, mut entry: ReceivedRequest) {
        if self.capacity == 0 {
            return;
        }
        entry.path = clip(entry.path);
        entry.query = entry.query.map(clip);
        if let Ok(mut entries) = self.entries.lock() {
            while entries.len() >= self.capacity {
                entries.pop_front();
            }
            entries.push_back(entry);
        }
    }

    pub fn all(&self) -> Vec<ReceivedRequest> {
        self.entries
            .lock()
            .map(|e| e.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Per-connection data the server loop puts into each request's extensions.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// Notified to close the connection without answering (fault mode).
    pub kill: Arc<Notify>,
    /// This connection's slot under the connection cap, held as long as the socket lives (a WebSocket
    /// keeps it after the upgrade).
    pub slot: Arc<tokio::sync::OwnedSemaphorePermit>,
}

/// The composition root: the domain's [`Services`] and what only the HTTP side needs (credentials, the
/// request log, fault injection, request limits).
#[derive(Clone, Debug)]
pub struct AppState {
    pub svc: Services,
    pub credentials: Arc<Credentials>,
    pub faults: Arc<Faults>,
    pub requests: Arc<RequestLog>,
    pub sign_max_age: Option<std::time::Duration>,
    pub max_scan: usize,
}

impl AppState {
    /// The state of a server started with `config` on `db` (starts the hook workers: needs a runtime).
    pub fn new(db: Db, config: ServerConfig, files: Arc<Files>) -> Self {
        let credentials = config.credentials;
        let hooks = Hooks::start(config.hooks, &credentials.app_id, &credentials.master_key);
        let realtime = Arc::new(Realtime::new(config.realtime, &db, &credentials.master_key));
        let limits = Arc::new(RateLimiter::for_db(config.rate_limits, &db));
        AppState {
            svc: Services {
                db,
                hooks,
                presence: realtime,
                limits,
                feed: tokio::sync::broadcast::channel(1024).0,
                pushes: Arc::new(PushLog::default()),
                files,
                logins: crate::domain::credentials::login_failures(),
                class_permissions: std::sync::Arc::default(),
            },
            credentials: Arc::new(credentials),
            faults: Arc::new(Faults::new(config.faults)),
            requests: Arc::new(RequestLog::new(config.request_log)),
            sign_max_age: config.sign_max_age,
            max_scan: config.max_scanned_rows,
        }
    }
}
