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
/// Most bytes of paths and queries the log holds in all, whatever its entry capacity.
pub const MAX_RECORDED_BYTES: usize = 4 * 1024 * 1024;

/// `s` cut to [`MAX_RECORDED_URI_PART`] bytes (at a character boundary, marked with `…`), in an allocation of
/// its own size: a `truncate` would keep the whole capacity of the request's string alive.
fn clip(s: &str) -> String {
    if s.len() <= MAX_RECORDED_URI_PART {
        return s.to_owned();
    }
    let mut end = MAX_RECORDED_URI_PART;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + '…'.len_utf8());
    out.push_str(&s[..end]);
    out.push('…');
    out
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

impl ReceivedRequest {
    /// The bytes this entry holds on the heap.
    fn heap_bytes(&self) -> usize {
        self.method.capacity()
            + self.path.capacity()
            + self.query.as_ref().map_or(0, String::capacity)
    }
}

/// The latest requests: at most `capacity` of them and [`MAX_RECORDED_BYTES`] of their paths and queries
/// (clipped), the oldest dropped first.
#[derive(Debug, Default)]
pub struct RequestLog {
    entries: Mutex<(VecDeque<ReceivedRequest>, usize)>,
    capacity: usize,
}

impl RequestLog {
    pub fn new(capacity: usize) -> Self {
        RequestLog {
            entries: Mutex::new((VecDeque::new(), 0)),
            capacity,
        }
    }

    pub fn push(&self, entry: ReceivedRequest) {
        if self.capacity == 0 {
            return;
        }
        let entry = ReceivedRequest {
            method: clip(&entry.method),
            path: clip(&entry.path),
            query: entry.query.as_deref().map(clip),
            ..entry
        };
        let size = entry.heap_bytes();
        if let Ok(mut guard) = self.entries.lock() {
            let (entries, bytes) = &mut *guard;
            while entries.len() >= self.capacity
                || (*bytes + size > MAX_RECORDED_BYTES && !entries.is_empty())
            {
                if let Some(old) = entries.pop_front() {
                    *bytes -= old.heap_bytes();
                }
            }
            *bytes += size;
            entries.push_back(entry);
        }
    }

    /// The bytes of paths and queries held now.
    pub fn bytes(&self) -> usize {
        self.entries.lock().map(|g| g.1).unwrap_or_default()
    }

    pub fn all(&self) -> Vec<ReceivedRequest> {
        self.entries
            .lock()
            .map(|e| e.0.iter().cloned().collect())
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
    /// Wrong master keys per address (REST and console).
    pub master_keys: Arc<crate::key_guard::MasterKeyGuard>,
}

impl AppState {
    /// The state of a server started with `config` on `db` (starts the hook workers: needs a runtime).
    pub fn new(
        db: Db,
        config: ServerConfig,
        files: Arc<Files>,
        mail: Option<Arc<crate::mail::Mailer>>,
    ) -> Self {
        let credentials = config.credentials;
        let metrics = Arc::new(crate::metrics::Metrics::new(
            config.metrics_listen.is_some(),
        ));
        if let (true, Db::Sqlite(sqlite)) = (metrics.enabled(), &db) {
            sqlite.attach_metrics(metrics.clone());
        }
        let hooks = Hooks::start(
            config.hooks,
            &credentials.app_id,
            &credentials.master_key,
            metrics.clone(),
        );
        let mut realtime = config.realtime.clone();
        realtime.max_sockets = Some(config.limits.websockets(realtime.max_sockets));
        let realtime = Arc::new(Realtime::new(realtime, &db, &credentials.master_key));
        let limits =
            Arc::new(RateLimiter::for_db(config.rate_limits, &db).with_metrics(metrics.clone()));
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
                mail,
                metrics,
                push_template: config.push.template.map(Arc::new),
            },
            credentials: Arc::new(credentials),
            faults: Arc::new(Faults::new(config.faults)),
            requests: Arc::new(RequestLog::new(config.request_log)),
            sign_max_age: config.sign_max_age,
            max_scan: config.max_scanned_rows,
            master_keys: Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path_len: usize, query_len: usize) -> ReceivedRequest {
        ReceivedRequest {
            method: "GET".into(),
            path: format!("/{}", "p".repeat(path_len)),
            query: Some("q".repeat(query_len)),
            status: 404,
            at: Utc::now(),
        }
    }

    #[test]
    fn entries_are_clipped_into_small_allocations_and_the_log_is_bounded_in_bytes() {
        let log = RequestLog::new(1_000_000);
        for _ in 0..20_000 {
            log.push(request(30_000, 30_000));
        }
        let all = log.all();
        assert!(log.bytes() <= MAX_RECORDED_BYTES, "{}", log.bytes());
        assert!(
            all.len() >= MAX_RECORDED_BYTES / 1100,
            "{} entries kept",
            all.len()
        );
        let newest = all.last().expect("an entry");
        assert_eq!(MAX_RECORDED_URI_PART + '…'.len_utf8(), newest.path.len());
        assert!(newest.path.capacity() < 600, "{}", newest.path.capacity());
        let sum: usize = all.iter().map(ReceivedRequest::heap_bytes).sum();
        assert_eq!(sum, log.bytes());
    }

    #[test]
    fn the_entry_capacity_still_holds_and_short_requests_stay_whole() {
        let log = RequestLog::new(3);
        for i in 0..5 {
            log.push(request(i, 1));
        }
        let paths: Vec<usize> = log.all().iter().map(|r| r.path.len()).collect();
        assert_eq!(vec![3, 4, 5], paths);
        assert_eq!(0, {
            let off = RequestLog::new(0);
            off.push(request(1, 1));
            off.all().len()
        });
    }
}
