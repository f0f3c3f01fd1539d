//! The one send path, shared by the REST API (`/1.1/rtm/messages`, `/1.1/rtm/broadcast`) and the realtime
//! gateway's `direct`: the blocking `_messageReceived` hook (client sends only), the store, delivery to
//! online sessions, then the after-hooks (`_receiversOffline`, which decides the offline push, and
//! `_messageSent`). Which path triggers which hook, and why, is in `server/README.md` § Hooks.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::hooks::Refusal;
use crate::state::AppState;
use crate::store::messages::{self, MessageKind, NewMessage, Stored};
use crate::store::objects;
use crate::store::StoreError;

/// Who sent: the REST API (the app's backend, trusted) or a realtime client on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Rest,
    Client,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `_messageReceived` dropped the message (or failed, with fail-closed hooks).
    #[error("the message was rejected by the app")]
    Rejected(Refusal),
}

/// The offline push the server would hand to a push service for members that were not online, after
/// `_receiversOffline` had its say. Kept (the latest 10,000) for tests and operators: the server sends no
/// mobile pushes itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfflinePush {
    pub msg_id: String,
    pub conv_id: String,
    pub peers: Vec<String>,
    pub payload: Value,
    /// Push even to members who muted the conversation.
    pub force: bool,
}

#[derive(Debug, Default)]
pub struct PushLog {
    entries: Mutex<VecDeque<OfflinePush>>,
}

impl PushLog {
    const MAX: usize = 10_000;

    fn push(&self, entry: OfflinePush) {
        if let Ok(mut e) = self.entries.lock() {
            if e.len() >= Self::MAX {
                e.pop_front();
            }
            e.push_back(entry);
        }
    }

    pub fn all(&self) -> Vec<OfflinePush> {
        self.entries
            .lock()
            .map(|e| e.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect()
    })
}

/// Sends `msg`: hooks, store, delivery. The message is committed before anyone receives it.
pub async fn send(
    state: &AppState,
    mut msg: NewMessage,
    origin: Origin,
    source_ip: Option<String>,
) -> Result<Stored, SendError> {
    let from_client = origin == Origin::Client;
    let mut only: Option<Vec<String>> = None;
    if from_client && state.hooks.defines("_messageReceived") {
        let members = objects::conversation(&state.db, msg.conv_id.clone())
            .await?
            .map(|k| k.members)
            .unwrap_or_default();
        let to_peers: Vec<&String> = members.iter().filter(|m| **m != msg.from).collect();
        let verdict = state
            .hooks
            .before(
                "_messageReceived",
                json!({
                    "fromPeer": &msg.from, "convId": &msg.conv_id, "toPeers": to_peers,
                    "transient": msg.transient, "bin": msg.binary, "content": &msg.data,
                    "receipt": false, "timestamp": chrono::Utc::now().timestamp_millis(),
                    "system": false, "sourceIP": source_ip,
                }),
            )
            .await;
        if let Some(refusal) = verdict.refusal("drop") {
            return Err(SendError::Rejected(refusal));
        }
        if let Some(answer) = verdict.answer() {
            if let Some(content) = answer.get("content").and_then(Value::as_str) {
                msg.data = content.to_string();
            }
            if let Some(bin) = answer.get("bin").and_then(Value::as_bool) {
                msg.binary = bin;
            }
            only = answer.get("toPeers").and_then(strings);
        }
    }
    let mut stored = messages::store(&state.db, msg, from_client).await?;
    if let Some(only) = only {
        // The hook may narrow the recipients, never add to them.
        stored.audience.retain(|p| only.contains(p));
    }
    let realtime = &state.realtime;
    let recipients: Vec<String> = stored
        .audience
        .iter()
        .filter(|p| **p != stored.from)
        .cloned()
        .collect();
    let (online, offline): (Vec<String>, Vec<String>) =
        recipients.into_iter().partition(|p| realtime.is_online(p));
    realtime.deliver(stored.clone());
    // No subscriber is not an error.
    let _ = state.feed.send(std::sync::Arc::new(stored.clone()));
    after_send(state, &stored, online, offline, source_ip);
    Ok(stored)
}

fn after_send(
    state: &AppState,
    stored: &Stored,
    online: Vec<String>,
    offline: Vec<String>,
    source_ip: Option<String>,
) {
    let hooks = &state.hooks;
    let pushable = !offline.is_empty()
        && !stored.room
        && !stored.transient
        && stored.kind != MessageKind::Broadcast;
    if pushable {
        let default = OfflinePush {
            msg_id: stored.msg_id.clone(),
            conv_id: stored.conv_id.clone(),
            peers: offline.clone(),
            payload: stored
                .push
                .clone()
                .unwrap_or_else(|| json!({"alert": "New message"})),
            force: false,
        };
        let log = state.pushes.clone();
        let mention_offline: Vec<&String> = offline
            .iter()
            .filter(|p| stored.mention_pids.contains(p))
            .collect();
        hooks.after(
            "_receiversOffline",
            json!({
                "fromPeer": &stored.from, "convId": &stored.conv_id, "offlinePeers": &offline,
                "content": &stored.data, "timestamp": stored.timestamp, "mentionAll": stored.mention_all,
                "mentionOfflinePeers": mention_offline,
            }),
            Some(Box::new(move |verdict| {
                let mut push = default;
                if let Some(answer) = verdict.answer() {
                    if answer.get("skip").and_then(Value::as_bool) == Some(true) {
                        return;
                    }
                    if let Some(peers) = answer.get("offlinePeers").and_then(strings) {
                        push.peers.retain(|p| peers.contains(p));
                    }
                    if let Some(payload) = answer.get("pushMessage") {
                        push.payload = match payload {
                            Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| payload.clone()),
                            other => other.clone(),
                        };
                    }
                    push.force = answer.get("force").and_then(Value::as_bool) == Some(true);
                }
                if !push.peers.is_empty() {
                    log.push(push);
                }
            })),
        );
    }
    hooks.after(
        "_messageSent",
        json!({
            "fromPeer": &stored.from, "convId": &stored.conv_id, "msgId": &stored.msg_id,
            "onlinePeers": online, "offlinePeers": offline, "transient": stored.transient,
            "system": stored.system, "bin": stored.binary, "content": &stored.data, "receipt": false,
            "timestamp": stored.timestamp, "sourceIP": source_ip,
        }),
        None,
    );
}
