//! Shared state of the HTTP layer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::config::{Credentials, FaultConfig, RateLimits};
use crate::faults::Faults;
use crate::hooks::{Hooks, HooksConfig};
use crate::limits::RateLimiter;
use crate::messaging::PushLog;
use crate::realtime::{Realtime, RealtimeConfig};
use crate::store::db::Db;
use crate::store::messages::Stored;

/// The inspector keeps at most this many requests (the oldest are forgotten first).
const MAX_RECORDED_REQUESTS: usize = 100_000;

/// A request as the server saw it. `status` is 0 when the connection was dropped without a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct RequestLog {
    entries: Mutex<VecDeque<ReceivedRequest>>,
}

impl RequestLog {
    pub fn push(&self, entry: ReceivedRequest) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_RECORDED_REQUESTS {
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
}

#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
    pub credentials: Arc<Credentials>,
    pub limits: Arc<RateLimiter>,
    pub faults: Arc<Faults>,
    pub requests: Arc<RequestLog>,
    pub realtime: Arc<Realtime>,
    pub hooks: Arc<Hooks>,
    pub pushes: Arc<PushLog>,
    /// Every message as it is stored (REST and realtime sends alike), for live views such as the console.
    /// Subscribers that fall behind miss messages (they are in the store) rather than slow anyone down.
    pub feed: tokio::sync::broadcast::Sender<Arc<Stored>>,
}

impl AppState {
    pub fn new(
        db: Db,
        credentials: Credentials,
        limits: RateLimits,
        faults: FaultConfig,
        realtime: RealtimeConfig,
        hooks: HooksConfig,
    ) -> Self {
        let hooks = Hooks::start(hooks, &credentials.app_id, &credentials.master_key);
        AppState {
            db,
            credentials: Arc::new(credentials),
            limits: Arc::new(RateLimiter::new(limits)),
            faults: Arc::new(Faults::new(faults)),
            requests: Arc::new(RequestLog::default()),
            realtime: Arc::new(Realtime::new(realtime)),
            hooks,
            pushes: Arc::new(PushLog::default()),
            feed: tokio::sync::broadcast::channel(1024).0,
        }
    }
}
