//! Stored messages: sends, system messages to chosen clients, broadcasts, and the history API's reads. This
//! module holds what a message is and the rules of storing and listing one; each operation runs its queries on
//! the backend the [`Db`] names, `sqlite` or `postgres`, peers under these rules.

mod postgres;
mod sqlite;

use md5::{Digest, Md5};
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::protocol::records::MessageRecord;
use crate::store::db::Db;
use crate::store::objects::ConversationKind;
use crate::store::{StoreError, StoreResult};

/// How a message was addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// To the conversation's members (or a chat room's or system conversation's audience).
    Normal,
    /// From a system conversation to chosen clients (`to_peers`).
    ToClients,
    /// `/1.1/rtm/broadcast`: to every client of the app.
    Broadcast,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Normal => "normal",
            MessageKind::ToClients => "to_clients",
            MessageKind::Broadcast => "broadcast",
        }
    }

    pub fn parse(s: &str) -> MessageKind {
        match s {
            "to_clients" => MessageKind::ToClients,
            "broadcast" => MessageKind::Broadcast,
            _ => MessageKind::Normal,
        }
    }
}

/// A message as stored, for tests and tools (see [`crate::Inspector`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub msg_id: String,
    pub conv_id: String,
    pub from: String,
    pub data: String,
    pub timestamp: i64,
    pub kind: MessageKind,
    pub transient: bool,
    pub recipients: Vec<String>,
    pub push: Option<Value>,
    /// Which request key carried `push`: `"push"` or `"push_data"`.
    pub push_field: Option<String>,
    pub valid_till: Option<i64>,
}

/// A validated message ready to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub conv_id: String,
    pub from: String,
    pub data: String,
    pub kind: MessageKind,
    pub transient: bool,
    pub recipients: Vec<String>,
    pub push: Option<Value>,
    pub push_field: Option<&'static str>,
    pub valid_till: Option<i64>,
    pub from_ip: Option<String>,
    /// The payload is bytes (base64 in `data`), from a realtime client's `binaryMsg`.
    pub binary: bool,
    /// Mentions, from a realtime client's send.
    pub mention_pids: Vec<String>,
    pub mention_all: bool,
    /// The sender asks for receipts (a realtime client's `r: true`).
    pub receipt: bool,
}

impl NewMessage {
    /// A message to a conversation's members with every optional field unset.
    pub fn to_conversation(conv_id: String, from: String, data: String) -> NewMessage {
        NewMessage {
            conv_id,
            from,
            data,
            kind: MessageKind::Normal,
            transient: false,
            recipients: Vec::new(),
            push: None,
            push_field: None,
            valid_till: None,
            from_ip: None,
            binary: false,
            mention_pids: Vec::new(),
            mention_all: false,
            receipt: false,
        }
    }
}

/// A message once committed, with who it is for: what delivery needs (on this instance, or on another
/// through the realtime bus).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    pub seq: i64,
    pub msg_id: String,
    pub timestamp: i64,
    pub conv_id: String,
    pub from: String,
    pub data: String,
    pub binary: bool,
    pub kind: MessageKind,
    pub transient: bool,
    /// The conversation is a chat room (`tr`).
    pub room: bool,
    /// The conversation is a system conversation (`sys`).
    pub system: bool,
    /// Normal: the conversation's members; to-clients: the chosen clients; broadcast: empty (everyone).
    pub audience: Vec<String>,
    pub valid_till: Option<i64>,
    pub mention_pids: Vec<String>,
    pub mention_all: bool,
    /// The offline push payload the sender gave.
    pub push: Option<Value>,
    /// The members who muted the conversation (`mu`): no offline push unless the hook forces one.
    #[serde(default)]
    pub muted: Vec<String>,
}

pub fn new_message_id() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 22)
}

/// Per-user history key of a system conversation (LeanCloud: `md5(sysConvId + ":" + clientId)`).
pub fn user_conversation_key(conv_id: &str, client_id: &str) -> String {
    let mut md5 = Md5::new();
    md5.update(conv_id.as_bytes());
    md5.update(b":");
    md5.update(client_id.as_bytes());
    hex::encode(md5.finalize())
}

/// Checks the conversation and stores the message in one job of the writer. With `member` (a realtime
/// client's send) the sender must be in the conversation's `m`, and system conversations only receive; the
/// REST API's master-key sends are bound by neither.
pub async fn store(db: &Db, msg: NewMessage, member: bool) -> StoreResult<Stored> {
    match db {
        Db::Sqlite(db) => sqlite::store(db, msg, member).await,
        Db::Postgres(pg) => postgres::store(pg, msg, member).await,
    }
}

/// The conversation a message may be stored in, or why not: broadcasts and messages to chosen clients need a
/// system conversation; with `member` (a realtime client's send) the sender must be in `m`, and system
/// conversations only receive.
pub(crate) fn check_target(
    kind: Option<ConversationKind>,
    msg: &NewMessage,
    member: bool,
) -> StoreResult<ConversationKind> {
    let conv = match (kind, msg.kind) {
        (None, MessageKind::Broadcast) => return Err(StoreError::ConversationNotFound),
        (None, _) => return Err(StoreError::InvalidMessagingTarget),
        (Some(c), MessageKind::Broadcast | MessageKind::ToClients) if !c.system => {
            return Err(StoreError::SystemConversationRequired);
        }
        (Some(c), _) => c,
    };
    if member && (conv.system || !conv.members.contains(&msg.from)) {
        return Err(StoreError::InvalidMessagingTarget);
    }
    Ok(conv)
}

/// What delivery needs of a message committed as `seq` at `ts`.
pub(crate) fn stored_message(
    msg: NewMessage,
    conv: ConversationKind,
    seq: i64,
    msg_id: String,
    ts: i64,
) -> Stored {
    let audience = match msg.kind {
        MessageKind::Normal => conv.members,
        MessageKind::ToClients => msg.recipients,
        MessageKind::Broadcast => Vec::new(),
    };
    Stored {
        seq,
        msg_id,
        timestamp: ts,
        conv_id: msg.conv_id,
        from: msg.from,
        data: msg.data,
        binary: msg.binary,
        kind: msg.kind,
        transient: msg.transient,
        room: conv.transient,
        system: conv.system,
        audience,
        valid_till: msg.valid_till,
        mention_pids: msg.mention_pids,
        mention_all: msg.mention_all,
        push: msg.push,
        muted: conv.muted,
    }
}

/// The `recipients` column: the JSON list of a message's chosen recipients, NULL when it has none.
pub(crate) fn recipients_column(recipients: &[String]) -> Option<String> {
    (!recipients.is_empty()).then(|| json!(recipients).to_string())
}

/// The chosen recipients back from the `recipients` column (none for NULL).
pub(crate) fn recipients_from_column(column: Option<String>) -> Vec<String> {
    column
        .and_then(|list| serde_json::from_str(&list).ok())
        .unwrap_or_default()
}

/// The `mentions` column: `{"pids":[…],"all":bool}`, or NULL when nobody is mentioned.
pub(crate) fn mentions(pids: &[String], all: bool) -> Option<Value> {
    (!pids.is_empty() || all).then(|| json!({"pids": pids, "all": all}))
}

/// All stored messages, oldest first; with `conv_id`, only that conversation's (broadcasts included).
pub fn stored(db: &Db, conv_id: Option<&str>) -> StoreResult<Vec<StoredMessage>> {
    match db {
        Db::Sqlite(db) => sqlite::stored(db, conv_id),
        Db::Postgres(pg) => postgres::stored(pg, conv_id),
    }
}

/// Which messages the history API returns.
#[derive(Debug, Clone, Default)]
pub enum HistoryScope {
    Conversation(String),
    /// A conversation as one client sees it: its messages, and of the messages to chosen clients only
    /// those to this client.
    ConversationFor {
        conv: String,
        client: String,
    },
    From(String),
    #[default]
    All,
}

/// `GET /1.1/rtm/messages/history` parameters, already parsed.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub scope: HistoryScope,
    pub limit: usize,
    /// Oldest first when true.
    pub reversed: bool,
    pub start_ts: Option<i64>,
    pub start_msgid: Option<String>,
    pub include_start: bool,
    pub stop_ts: Option<i64>,
    pub stop_msgid: Option<String>,
    pub include_stop: bool,
}

/// A bound `(timestamp, seq)` on the scan, from the bound's message (`at`: its timestamp and seq, when it
/// names a stored one) or its timestamp alone: the record at the bound itself is included when `inclusive`.
pub(crate) fn bound(
    at: Option<(i64, i64)>,
    ts: Option<i64>,
    inclusive: bool,
    upper: bool,
) -> Option<(i64, i64)> {
    let at = at.filter(|(t, _)| ts.is_none_or(|ts| ts == *t));
    match (at, ts) {
        (Some((t, seq)), _) => Some((
            t,
            if inclusive {
                seq
            } else if upper {
                seq - 1
            } else {
                seq + 1
            },
        )),
        // Without a message id the timestamp alone bounds, exclusive unless asked otherwise.
        (None, Some(t)) => Some(match (inclusive, upper) {
            (true, true) => (t, i64::MAX),
            (true, false) => (t, i64::MIN),
            (false, true) => (t, i64::MIN),
            (false, false) => (t, i64::MAX),
        }),
        (None, None) => None,
    }
}

/// A history record as the 1.1 API answers it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn history_record(
    timestamp: i64,
    conv_id: String,
    data: String,
    from: String,
    msg_id: String,
    is_room: bool,
    from_ip: Option<String>,
    bin: bool,
    mentions: Option<Value>,
) -> MessageRecord {
    let (mention_pids, mention_all) = match &mentions {
        Some(m) => (
            m["pids"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            m["all"].as_bool().unwrap_or(false),
        ),
        None => (Vec::new(), false),
    };
    MessageRecord {
        timestamp,
        conv_id,
        data,
        from,
        msg_id,
        is_room,
        from_ip,
        binary: bin,
        mention_pids,
        mention_all,
        ..MessageRecord::default()
    }
}

/// A stored message as a patch or a receipt needs it: where it is, who sent it, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef {
    pub msg_id: String,
    pub conv_id: String,
    pub from: String,
    pub timestamp: i64,
}

/// The message with id `msg_id`, if one is stored (messages to a conversation's members only: broadcasts and
/// messages to chosen clients are never patched nor receipted).
pub async fn find(db: &Db, msg_id: String) -> StoreResult<Option<MessageRef>> {
    match db {
        Db::Sqlite(db) => sqlite::find(db, msg_id).await,
        Db::Postgres(pg) => postgres::find(pg, msg_id).await,
    }
}

/// Which messages of a conversation a receipt is for.
#[derive(Debug, Clone)]
pub struct ReceiptQuery {
    pub conv_id: String,
    /// The client that acked or read: its own messages are left out.
    pub reader: String,
    /// Sent at or after this time (ms)…
    pub from_ts: i64,
    /// …and at or before this one.
    pub to_ts: i64,
    /// Only this message, when given.
    pub msg_id: Option<String>,
    /// The newest first (else the oldest first), at most this many.
    pub newest_first: bool,
    pub limit: usize,
}

/// The messages of a conversation sent with `r: true` by other clients than the reader, in the query's range.
pub async fn receipt_requests(db: &Db, q: ReceiptQuery) -> StoreResult<Vec<MessageRef>> {
    match db {
        Db::Sqlite(db) => sqlite::receipt_requests(db, q).await,
        Db::Postgres(pg) => postgres::receipt_requests(pg, q).await,
    }
}

/// A message's new content: an edit, or a recall (which stores the recalled-message content).
#[derive(Debug, Clone)]
pub struct Rewrite {
    pub msg_id: String,
    /// Base64 of the bytes when `binary`.
    pub data: String,
    pub binary: bool,
    pub mention_pids: Vec<String>,
    pub mention_all: bool,
    /// When (ms); kept as the message's `patchTimestamp`.
    pub at: i64,
}

/// Replaces a stored message's content (see [`Rewrite`]); `false` when there is no such message, or when it
/// holds that content already (a second recall changes nothing).
pub async fn rewrite(db: &Db, rewrite: Rewrite) -> StoreResult<bool> {
    match db {
        Db::Sqlite(db) => sqlite::rewrite(db, rewrite).await,
        Db::Postgres(pg) => postgres::rewrite(pg, rewrite).await,
    }
}

/// Which stored message a delete removes: a conversation's message by id and send time, or a broadcast by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// A message of conversation `conv_id` (normal or to chosen clients) sent at `timestamp` (ms).
    Message {
        conv_id: String,
        msg_id: String,
        timestamp: i64,
    },
    /// A broadcast: clients that did not receive it yet will not.
    Broadcast { msg_id: String },
}

/// Removes the stored copy of a message (with its per-recipient history keys and its metadata); `false` when
/// nothing matched. Clients that received it keep it: nobody is told.
pub async fn delete(db: &Db, what: Deletion) -> StoreResult<bool> {
    match db {
        Db::Sqlite(db) => sqlite::delete(db, what).await,
        Db::Postgres(pg) => postgres::delete(pg, what).await,
    }
}

/// A broadcast still valid at `now`: its id, sender, content, time and end of validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveBroadcast {
    pub msg_id: String,
    pub conv_id: String,
    pub from: String,
    pub data: String,
    pub timestamp: i64,
    pub valid_till: i64,
}

/// The broadcasts still valid at `now` (of service conversation `conv_id` when given), newest first, after
/// skipping `skip`, at most `limit`.
pub async fn live_broadcasts(
    db: &Db,
    conv_id: Option<String>,
    now: i64,
    skip: i64,
    limit: i64,
) -> StoreResult<Vec<LiveBroadcast>> {
    match db {
        Db::Sqlite(db) => sqlite::live_broadcasts(db, conv_id, now, skip, limit).await,
        Db::Postgres(pg) => postgres::live_broadcasts(pg, conv_id, now, skip, limit).await,
    }
}

/// A message as its last edit or recall left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patched {
    pub msg_id: String,
    pub conv_id: String,
    pub from: String,
    pub timestamp: i64,
    pub data: String,
    pub binary: bool,
    pub mention_pids: Vec<String>,
    pub mention_all: bool,
    pub patched_at: i64,
}

impl Patched {
    pub(crate) fn new(
        r: MessageRef,
        data: String,
        binary: bool,
        mentions: Option<Value>,
        patched_at: i64,
    ) -> Patched {
        let record = history_record(
            r.timestamp,
            r.conv_id,
            data,
            r.from,
            r.msg_id,
            false,
            None,
            binary,
            mentions,
        );
        Patched {
            msg_id: record.msg_id,
            conv_id: record.conv_id,
            from: record.from,
            timestamp: record.timestamp,
            data: record.data,
            binary: record.binary,
            mention_pids: record.mention_pids,
            mention_all: record.mention_all,
            patched_at,
        }
    }
}

/// Messages of the conversations `client` is a member of, sent by others and edited or recalled after `since`
/// (ms), oldest patch first, at most `limit`.
pub async fn patched_since(
    db: &Db,
    client: String,
    since: i64,
    limit: usize,
) -> StoreResult<Vec<Patched>> {
    match db {
        Db::Sqlite(db) => sqlite::patched_since(db, client, since, limit).await,
        Db::Postgres(pg) => postgres::patched_since(pg, client, since, limit).await,
    }
}

pub async fn history(db: &Db, q: HistoryQuery) -> StoreResult<Vec<MessageRecord>> {
    match db {
        Db::Sqlite(db) => sqlite::history(db, q).await,
        Db::Postgres(pg) => postgres::history(pg, q).await,
    }
}
