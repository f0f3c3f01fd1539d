//! The one send path, shared by the REST API (`/1.1/rtm/messages`, `/1.1/rtm/broadcast`), the console and the
//! realtime gateway's `direct`: the rules every message obeys ([`validate`]: size, recipients), the rate
//! limit (taken for the app's backend, given back when the send fails), the blocking `_messageReceived` hook
//! (client sends only), the store, delivery to online sessions, then the after-hooks (`_receiversOffline`,
//! which decides the offline push, and `_messageSent`). Which path triggers which hook, and why, is in
//! `server/README.md` § Hooks.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::limits::{Bucket, Limited};
use super::Services;
use crate::hooks::Refusal;
use crate::protocol::limits::{
    BROADCAST_VALID_MONTHS, MAX_MENTIONS, MAX_MESSAGE_BYTES, MAX_RECIPIENTS,
};
use crate::protocol::Hook;
use crate::store::messages::{self, MessageKind, NewMessage, Stored};
use crate::store::StoreError;
use crate::store::{objects, temp_convs};

/// Who sent: the REST API (the app's backend, trusted) or a realtime client on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Rest,
    Client,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The message breaks a rule ([`validate`]); nothing was counted or stored.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The app's rate limit refused it.
    #[error(transparent)]
    Limited(#[from] Limited),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `_messageReceived` dropped the message (or failed, with fail-closed hooks).
    #[error("the message was rejected by the app")]
    Rejected(Refusal),
    /// `_messageReceived` could not be asked in time (every hook slot busy): nothing was stored; retry.
    #[error("the server is too busy to check the message with the app: retry later")]
    Busy,
}

/// A rule a message breaks. The adapters name the parameters in their own words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error(
        "Message is too large: {size} bytes including push data; the limit is {MAX_MESSAGE_BYTES}."
    )]
    TooLarge { size: usize },
    /// More chosen recipients than [`MAX_RECIPIENTS`].
    #[error("{0} recipients; at most {MAX_RECIPIENTS} are allowed")]
    TooManyRecipients(usize),
    /// More mentioned clients than [`MAX_MENTIONS`].
    #[error("{0} mentioned clients; at most {MAX_MENTIONS} are allowed")]
    TooManyMentions(usize),
    /// A broadcast's end of validity in the past, or more than a month ahead.
    #[error("the end of validity must be in the future and at most one month ahead")]
    ValidTill,
}

/// How big a message is: its text (a binary payload as its base64 text) and its push data as JSON text.
/// The one measure [`MAX_MESSAGE_BYTES`] applies to, whatever door the message came in by.
pub fn message_size(data: &str, push: Option<&Value>) -> usize {
    data.len() + push.map_or(0, |p| p.to_string().len())
}

/// The rules every message obeys before anything is counted or stored: at most [`MAX_RECIPIENTS`] chosen
/// recipients, at most [`MAX_MESSAGE_BYTES`] by [`message_size`].
pub fn validate(msg: &NewMessage) -> Result<(), Invalid> {
    if msg.recipients.len() > MAX_RECIPIENTS {
        return Err(Invalid::TooManyRecipients(msg.recipients.len()));
    }
    if msg.mention_pids.len() > MAX_MENTIONS {
        return Err(Invalid::TooManyMentions(msg.mention_pids.len()));
    }
    let size = message_size(&msg.data, msg.push.as_ref());
    if size > MAX_MESSAGE_BYTES {
        return Err(Invalid::TooLarge { size });
    }
    Ok(())
}

/// A broadcast's end of validity (ms): `requested`, which must lie after `now` and at most a month ahead,
/// or a month ahead when none is asked for.
pub fn broadcast_valid_till(requested: Option<i64>, now: i64) -> Result<i64, Invalid> {
    let now_dt = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now)
        .unwrap_or_else(chrono::Utc::now);
    let month_ahead = now_dt
        .checked_add_months(chrono::Months::new(BROADCAST_VALID_MONTHS))
        .unwrap_or(now_dt)
        .timestamp_millis();
    match requested {
        None => Ok(month_ahead),
        Some(t) if t > now && t <= month_ahead => Ok(t),
        Some(_) => Err(Invalid::ValidTill),
    }
}

/// The bucket a send counts against: the app's backend (REST, console) is rate-limited, realtime clients
/// are limited per connection by the gateway instead.
fn bucket(msg: &NewMessage, origin: Origin) -> Option<Bucket> {
    match (origin, msg.kind) {
        (Origin::Client, _) => None,
        (Origin::Rest, MessageKind::Broadcast) => Some(Bucket::Broadcasts),
        (Origin::Rest, MessageKind::Normal | MessageKind::ToClients) => Some(Bucket::Messages),
    }
}

/// The offline push for members that were not online, after `_receiversOffline` had its say: queued for their
/// devices ([`super::push::offline`]), and the latest 10,000 kept in memory for tests and operators.
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

/// Sends `msg`: rules, rate limit, hooks, store, delivery. The message is committed before anyone receives
/// it; a send that fails after its rate-limit unit was taken gives the unit back.
pub async fn send(
    svc: &Services,
    msg: NewMessage,
    origin: Origin,
    source_ip: Option<String>,
) -> Result<Stored, SendError> {
    validate(&msg)?;
    let grant = match bucket(&msg, origin) {
        Some(b) => Some(svc.limits.take(b).await?),
        None => None,
    };
    let sent = store_and_deliver(svc, msg, origin, source_ip).await;
    if let (Err(_), Some(grant)) = (&sent, grant) {
        svc.limits.refund(grant).await;
    }
    sent
}

async fn store_and_deliver(
    svc: &Services,
    mut msg: NewMessage,
    origin: Origin,
    source_ip: Option<String>,
) -> Result<Stored, SendError> {
    let from_client = origin == Origin::Client;
    let mut only: Option<Vec<String>> = None;
    if from_client && svc.hooks.defines(Hook::MessageReceived) {
        // Only a message that may be stored is shown to the app: a sender outside the conversation (or one
        // that does not exist) is refused here, without a blocking call (the store checks again, atomically).
        let kind = target_kind(svc, &msg.conv_id).await?;
        let members = messages::check_target(kind, &msg, true)?.members;
        let to_peers: Vec<&String> = members.iter().filter(|m| **m != msg.from).collect();
        let verdict = svc
            .hooks
            .before(
                Hook::MessageReceived,
                json!({
                    "fromPeer": &msg.from, "convId": &msg.conv_id, "toPeers": to_peers,
                    "transient": msg.transient, "bin": msg.binary, "content": &msg.data,
                    "receipt": msg.receipt, "timestamp": chrono::Utc::now().timestamp_millis(),
                    "system": false, "sourceIP": source_ip,
                }),
            )
            .await;
        if let Some(refusal) = verdict.refusal("drop") {
            return Err(if refusal.busy {
                SendError::Busy
            } else {
                SendError::Rejected(refusal)
            });
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
    let mut stored = messages::store(&svc.db, msg, from_client).await?;
    if let Some(only) = only {
        // The hook may narrow the recipients, never add to them.
        let only: HashSet<String> = only.into_iter().collect();
        stored.audience.retain(|p| only.contains(p));
    }
    let realtime = &svc.presence;
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
    let _ = svc.feed.send(std::sync::Arc::new(stored.clone()));
    svc.metrics.stored(stored.kind.as_str());
    after_send(svc, &stored, online, offline, source_ip);
    Ok(stored)
}

/// Removes the stored copy of a message or a broadcast; `false` when there is none. Nobody is told: clients
/// that received it keep it.
pub async fn delete(svc: &Services, what: messages::Deletion) -> Result<bool, StoreError> {
    messages::delete(&svc.db, what).await
}

/// The broadcasts still valid at `now` (of service conversation `conv` when given), newest first.
pub async fn live_broadcasts(
    svc: &Services,
    conv: Option<String>,
    now: i64,
    skip: i64,
    limit: i64,
) -> Result<Vec<messages::LiveBroadcast>, StoreError> {
    messages::live_broadcasts(&svc.db, conv, now, skip, limit).await
}

/// The conversation a message goes to, as [`messages::check_target`] judges it: a stored conversation, or a
/// live temporary one (its members; never a system conversation or a chat room).
pub(crate) async fn target_kind(
    svc: &Services,
    cid: &str,
) -> Result<Option<objects::ConversationKind>, StoreError> {
    if !temp_convs::is_temp(cid) {
        return objects::conversation(&svc.db, cid.to_string()).await;
    }
    let now = chrono::Utc::now().timestamp_millis();
    let live = temp_convs::live(&svc.db, vec![cid.to_string()], now).await?;
    Ok(live
        .into_iter()
        .next()
        .map(|t| objects::ConversationKind::temporary(t.members)))
}

fn after_send(
    svc: &Services,
    stored: &Stored,
    online: Vec<String>,
    offline: Vec<String>,
    source_ip: Option<String>,
) {
    let hooks = &svc.hooks;
    if stored.kind == MessageKind::Broadcast {
        // A broadcast's `push` goes to every device of the app.
        if let Some(payload) = stored.push.clone() {
            let (svc, id) = (svc.clone(), stored.msg_id.clone());
            tokio::spawn(async move {
                let now = chrono::Utc::now().timestamp_millis();
                if let Err(e) = super::push::everyone(&svc, &id, &payload, now).await {
                    tracing::warn!(msg = %id, error = %e, "push: queueing a broadcast's push failed");
                }
            });
        }
    }
    let pushable = !offline.is_empty()
        && !stored.room
        && !stored.transient
        && stored.kind != MessageKind::Broadcast;
    if pushable {
        // Members who muted the conversation get no offline push, unless the hook forces one.
        let muted: HashSet<&String> = stored.muted.iter().collect();
        let unmuted: Vec<String> = offline
            .iter()
            .filter(|p| !muted.contains(p))
            .cloned()
            .collect();
        let default = OfflinePush {
            msg_id: stored.msg_id.clone(),
            conv_id: stored.conv_id.clone(),
            peers: unmuted,
            payload: stored.push.clone().unwrap_or_else(|| {
                super::push::from_template(
                    svc.push_template.as_deref(),
                    &stored.conv_id,
                    &stored.from,
                    stored.timestamp,
                )
            }),
            force: false,
        };
        let log = svc.pushes.clone();
        let queue_svc = svc.clone();
        let all_offline = offline.clone();
        let mentioned: HashSet<&String> = stored.mention_pids.iter().collect();
        let mention_offline: Vec<&String> =
            offline.iter().filter(|p| mentioned.contains(p)).collect();
        hooks.after(
            Hook::ReceiversOffline,
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
                    push.force = answer.get("force").and_then(Value::as_bool) == Some(true);
                    if push.force {
                        push.peers = all_offline.clone();
                    }
                    if let Some(peers) = answer.get("offlinePeers").and_then(strings) {
                        let peers: HashSet<String> = peers.into_iter().collect();
                        push.peers.retain(|p| peers.contains(p));
                    }
                    if let Some(payload) = answer.get("pushMessage") {
                        push.payload = match payload {
                            Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| payload.clone()),
                            other => other.clone(),
                        };
                    }
                }
                if !push.peers.is_empty() {
                    // Queued for the clients' devices (kept in the database: a restart loses none).
                    let svc = queue_svc.clone();
                    let queued = push.clone();
                    tokio::spawn(async move {
                        let now = chrono::Utc::now().timestamp_millis();
                        let (id, peers, payload) = (&queued.msg_id, &queued.peers, &queued.payload);
                        if let Err(e) = super::push::offline(&svc, id, peers, payload, now).await {
                            tracing::warn!(msg = %queued.msg_id, error = %e, "push: queueing an offline push failed");
                        }
                    });
                    log.push(push);
                }
            })),
        );
    }
    hooks.after(
        Hook::MessageSent,
        json!({
            "fromPeer": &stored.from, "convId": &stored.conv_id, "msgId": &stored.msg_id,
            "onlinePeers": online, "offlinePeers": offline, "transient": stored.transient,
            "system": stored.system, "bin": stored.binary, "content": &stored.data, "receipt": false,
            "timestamp": stored.timestamp, "sourceIP": source_ip,
        }),
        None,
    );
}

/// How many pages of history a typed `logs` (`lctype`) reads at most, looking for its messages: a rare type
/// in a long history answers with what these pages held rather than scanning everything.
const TYPED_HISTORY_PAGES: usize = 20;

/// The `_lctype` of a message's content (a typed message's JSON), if it has one.
pub fn message_type(data: &str) -> Option<i64> {
    serde_json::from_str::<Value>(data)
        .ok()?
        .get("_lctype")?
        .as_i64()
}

/// The history `logs` answers: `q` as it is, or only the messages whose `_lctype` is `lctype`, still
/// `q.limit` of them at most (pages read one after the other from the query's start).
pub async fn history(
    svc: &Services,
    mut q: messages::HistoryQuery,
    lctype: Option<i64>,
) -> Result<Vec<crate::protocol::records::MessageRecord>, StoreError> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    let Some(lctype) = lctype else {
        return messages::history(&svc.db, q).await;
    };
    let wanted = q.limit;
    let mut out = Vec::new();
    for _ in 0..TYPED_HISTORY_PAGES {
        let page = messages::history(&svc.db, q.clone()).await?;
        let full = page.len() == q.limit;
        if let Some(last) = page.last() {
            q.start_ts = Some(last.timestamp);
            q.start_msgid = Some(last.msg_id.clone());
            q.include_start = false;
        }
        out.extend(
            page.into_iter()
                .filter(|r| !r.binary && message_type(&r.data) == Some(lctype)),
        );
        if out.len() >= wanted || !full {
            break;
        }
    }
    out.truncate(wanted);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(data: &str) -> NewMessage {
        NewMessage::to_conversation("conv".into(), "alice".into(), data.into())
    }

    #[test]
    fn a_message_is_measured_with_its_push_data_as_json_text() {
        assert_eq!(5, message_size("hello", None));
        assert_eq!(5 + 14, message_size("hello", Some(&json!({"alert": "hi"}))));
        let mut at_limit = message(&"x".repeat(MAX_MESSAGE_BYTES - 2));
        at_limit.push = Some(json!(""));
        assert_eq!(Ok(()), validate(&at_limit));
        at_limit.push = Some(json!("a"));
        assert_eq!(
            Err(Invalid::TooLarge {
                size: MAX_MESSAGE_BYTES + 1
            }),
            validate(&at_limit)
        );
    }

    #[test]
    fn at_most_twenty_chosen_recipients() {
        let mut msg = message("hi");
        msg.recipients = (0..MAX_RECIPIENTS).map(|i| format!("c{i}")).collect();
        assert_eq!(Ok(()), validate(&msg));
        msg.recipients.push("one more".into());
        assert_eq!(Err(Invalid::TooManyRecipients(21)), validate(&msg));
    }

    #[test]
    fn a_broadcast_is_valid_for_a_month_at_most() {
        // 2026-01-31T00:00:00Z: a month ahead is 2026-02-28 (chrono clamps to the month's end).
        let now = 1_769_817_600_000;
        let month = 1_772_236_800_000;
        assert_eq!(Ok(month), broadcast_valid_till(None, now));
        assert_eq!(Ok(month), broadcast_valid_till(Some(month), now));
        assert_eq!(Ok(now + 1), broadcast_valid_till(Some(now + 1), now));
        assert_eq!(
            Err(Invalid::ValidTill),
            broadcast_valid_till(Some(month + 1), now)
        );
        assert_eq!(
            Err(Invalid::ValidTill),
            broadcast_valid_till(Some(now), now)
        );
    }

    /// Services on a fresh SQLite database, one message a minute for the app's backend.
    fn services(dir: &std::path::Path) -> Services {
        use crate::config::{Durability, FilesConfig, RateLimits, RealtimeConfig};
        use crate::store::db::{Db, SqliteDb};
        let db = Db::Sqlite(
            SqliteDb::open(&dir.join("db.sqlite3"), Durability::Normal).expect("database"),
        );
        let limits = RateLimits {
            messages_per_minute: Some(1),
            ..RateLimits::off()
        };
        Services {
            presence: std::sync::Arc::new(crate::realtime::Realtime::new(
                RealtimeConfig::default(),
                &db,
                "key",
            )),
            hooks: crate::hooks::Hooks::disabled(),
            limits: std::sync::Arc::new(super::super::limits::RateLimiter::new(limits)),
            feed: tokio::sync::broadcast::channel(16).0,
            pushes: std::sync::Arc::default(),
            files: super::super::files::Files::new(
                crate::store::blobs::Blobs::local(dir.join("files")).expect("files"),
                FilesConfig::default(),
            ),
            logins: std::sync::Arc::default(),
            class_permissions: std::sync::Arc::default(),
            mail: None,
            metrics: std::sync::Arc::default(),
            push_template: None,
            db,
        }
    }

    #[tokio::test]
    async fn a_send_that_fails_gives_its_rate_limit_unit_back() {
        let dir = tempfile::tempdir().expect("dir");
        let svc = services(dir.path());
        let conv = objects::create(
            &svc.db,
            "_Conversation".into(),
            json!({"m": ["alice", "bob"]})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            false,
        )
        .await
        .expect("conversation")
        .id;

        // A send to a conversation that does not exist fails after its unit was taken…
        let lost = send(&svc, message("to nowhere"), Origin::Rest, None).await;
        assert!(matches!(lost, Err(SendError::Store(_))), "{lost:?}");
        // …and gives it back: the minute's only unit is still there for a good send.
        let mut good = message("hello");
        good.conv_id = conv.clone();
        send(&svc, good.clone(), Origin::Rest, None)
            .await
            .expect("the unit was refunded");
        // Now it is used.
        let refused = send(&svc, good, Origin::Rest, None).await;
        assert!(matches!(refused, Err(SendError::Limited(_))), "{refused:?}");
        // A realtime client's sends are not counted against the app's limit.
        let mut from_client = message("from a client");
        from_client.conv_id = conv;
        send(&svc, from_client, Origin::Client, None)
            .await
            .expect("clients are limited per connection instead");
    }

    #[test]
    fn only_the_app_s_backend_is_counted_against_the_rate_limits() {
        let mut msg = message("hi");
        assert_eq!(Some(Bucket::Messages), bucket(&msg, Origin::Rest));
        assert_eq!(None, bucket(&msg, Origin::Client));
        msg.kind = MessageKind::Broadcast;
        assert_eq!(Some(Bucket::Broadcasts), bucket(&msg, Origin::Rest));
    }
}
