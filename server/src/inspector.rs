//! The read-only view of a running server for tests and tools ([`crate::RunningServer::inspect`]): what it stored,
//! the requests it received, the hooks' and the bus's counters, who is online, the fault settings.

use serde_json::{Map, Value};

use crate::config::FaultConfig;
use crate::state::{AppState, ReceivedRequest};
use crate::store::messages::{self, StoredMessage};
use crate::store::objects;

/// Read-only view of what the server stored and received, for tests.
#[derive(Debug, Clone)]
pub struct Inspector {
    state: AppState,
}

impl Inspector {
    pub(crate) fn new(state: AppState) -> Inspector {
        Inspector { state }
    }

    /// Messages of one conversation, oldest first; broadcasts included.
    pub fn messages(&self, conv_id: &str) -> Vec<StoredMessage> {
        messages::stored(&self.state.svc.db, Some(conv_id)).unwrap_or_default()
    }

    /// Every stored message, oldest first.
    pub fn all_messages(&self) -> Vec<StoredMessage> {
        messages::stored(&self.state.svc.db, None).unwrap_or_default()
    }

    /// A conversation as the storage API renders it, with its `ACL`.
    pub fn conversation(&self, id: &str) -> Option<Value> {
        self.object(objects::CONVERSATION, id)
    }

    /// Any stored object, with its `ACL`.
    pub fn object(&self, class: &str, id: &str) -> Option<Value> {
        objects::get_blocking(&self.state.svc.db, class, id)
            .ok()
            .flatten()
            .map(|m: Map<String, Value>| Value::Object(m))
    }

    /// The delivery and read positions `(ack_ts, read_ts)` of `client` in conversation `conv`, if it has any.
    pub async fn position(&self, conv: &str, client: &str) -> Option<(i64, i64)> {
        crate::store::realtime::positions_of(&self.state.svc.db, conv.into(), vec![client.into()])
            .await
            .ok()?
            .first()
            .map(|p| (p.ack_ts, p.read_ts))
    }

    /// Whether this server counts metrics (`--metrics-listen`).
    pub fn metrics_enabled(&self) -> bool {
        self.state.svc.metrics.enabled()
    }

    /// Every request received (the latest 100,000), oldest first.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.state.requests.all()
    }

    /// The offline pushes the server decided on (after `_receiversOffline`), oldest first.
    pub fn offline_pushes(&self) -> Vec<crate::domain::messaging::OfflinePush> {
        self.state.svc.pushes.all()
    }

    /// Hook calls made, failed, and after-hook calls dropped because the queue was full.
    pub fn hook_counts(&self) -> (u64, u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.state.svc.hooks.stats;
        (
            s.calls.load(Relaxed),
            s.failures.load(Relaxed),
            s.dropped.load(Relaxed),
        )
    }

    /// Bus notifications this instance dropped as unsealed, forged, stale or unreadable.
    pub fn bus_rejected(&self) -> u64 {
        self.state.svc.presence.bus.rejected()
    }

    /// Blocking hook calls refused because no slot came free in time.
    pub fn hook_busy(&self) -> u64 {
        self.state
            .svc
            .hooks
            .stats
            .busy
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Client ids with a realtime session open.
    pub fn online_clients(&self) -> usize {
        self.state.svc.presence.hub.online_clients()
    }

    /// The current fault configuration (with `max_faults` counted down).
    pub fn faults(&self) -> FaultConfig {
        self.state.faults.get()
    }
}
