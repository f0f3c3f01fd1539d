//! Stored messages: sends, system messages to chosen clients, broadcasts, and the history API's reads.

pub(crate) mod postgres;

use md5::{Digest, Md5};
use rand::distr::{Alphanumeric, SampleString};
use rusqlite::{params, Connection, Row as SqlRow};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::store::db::Db;
use crate::store::objects::ConversationKind;
use crate::store::sqlite::shared::conversation_kind;
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
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => return postgres::store(pg, msg, member).await,
    };
    let clock = db.clone();
    // Every error below comes before the first change, so no savepoint is needed.
    db.write_unguarded(move |tx| {
        let conn = tx.conn();
        let conv = check_target(conversation_kind(conn, &msg.conv_id)?, &msg, member)?;
        let msg_id = new_message_id();
        let ts = clock.next_timestamp();
        let recipients = recipients_column(&msg.recipients);
        conn.prepare_cached(
            "INSERT INTO messages (msg_id, conv_id, from_peer, data, timestamp, kind, transient, is_room, recipients, push, push_field, valid_till, from_ip, bin, mentions)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?
        .execute(params![
            msg_id,
            msg.conv_id,
            msg.from,
            msg.data,
            ts,
            msg.kind.as_str(),
            msg.transient,
            conv.transient,
            recipients,
            msg.push.as_ref().map(Value::to_string),
            msg.push_field,
            msg.valid_till,
            msg.from_ip,
            msg.binary,
            mentions(&msg.mention_pids, msg.mention_all).map(|m| m.to_string()),
        ])?;
        let seq = conn.last_insert_rowid();
        if msg.kind == MessageKind::ToClients {
            let mut stmt = conn.prepare_cached(
                "INSERT OR IGNORE INTO message_recipients (user_conv, msg_seq, client_id) VALUES (?1, ?2, ?3)",
            )?;
            for client in &msg.recipients {
                stmt.execute(params![user_conversation_key(&msg.conv_id, client), seq, client])?;
            }
        }
        if msg.kind != MessageKind::Broadcast {
            tx.touch_last_message(&msg.conv_id, ts);
        }
        Ok(stored_message(msg, conv, seq, msg_id, ts))
    })
    .await
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

const STORED_COLUMNS: &str =
    "msg_id, conv_id, from_peer, data, timestamp, kind, transient, recipients, push, push_field, valid_till";

fn stored_from_row(r: &SqlRow<'_>) -> rusqlite::Result<StoredMessage> {
    let recipients: Option<String> = r.get(7)?;
    let push: Option<String> = r.get(8)?;
    Ok(StoredMessage {
        msg_id: r.get(0)?,
        conv_id: r.get(1)?,
        from: r.get(2)?,
        data: r.get(3)?,
        timestamp: r.get(4)?,
        kind: MessageKind::parse(&r.get::<_, String>(5)?),
        transient: r.get(6)?,
        recipients: recipients_from_column(recipients),
        push: push.and_then(|s| serde_json::from_str(&s).ok()),
        push_field: r.get(9)?,
        valid_till: r.get(10)?,
    })
}

/// All stored messages, oldest first; with `conv_id`, only that conversation's (broadcasts included).
pub fn stored(db: &Db, conv_id: Option<&str>) -> StoreResult<Vec<StoredMessage>> {
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => return postgres::stored(pg, conv_id),
    };
    db.read_blocking(|conn| {
        let rows = match conv_id {
            Some(conv) => {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {STORED_COLUMNS} FROM messages WHERE conv_id = ?1 ORDER BY seq"
                ))?;
                let rows = stmt
                    .query_map([conv], stored_from_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                rows
            }
            None => {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {STORED_COLUMNS} FROM messages ORDER BY seq"
                ))?;
                let rows = stmt
                    .query_map([], stored_from_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                rows
            }
        };
        Ok(rows)
    })
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

fn seq_of(conn: &Connection, msg_id: &str) -> StoreResult<Option<(i64, i64)>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached("SELECT timestamp, seq FROM messages WHERE msg_id = ?1")?
        .query_row([msg_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
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
) -> Value {
    let mut record = json!({
        "timestamp": timestamp,
        "conv-id": conv_id,
        "data": data,
        "from": from,
        "msg-id": msg_id,
        "is-conv": true,
        "is-room": is_room,
        "to": conv_id,
        "bin": bin,
        "from-ip": from_ip.unwrap_or_default(),
    });
    if let Some(m) = mentions {
        record["mention-pids"] = m["pids"].clone();
        record["mention-all"] = m["all"].clone();
    }
    record
}

pub async fn history(db: &Db, q: HistoryQuery) -> StoreResult<Vec<Value>> {
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => return postgres::history(pg, q).await,
    };
    db.read(move |conn| {
        // Newest-first scans start below the start point and stop above the stop point; reversed the other way.
        let at = |id: Option<&str>| id.map(|id| seq_of(conn, id)).transpose().map(Option::flatten);
        let start = bound(at(q.start_msgid.as_deref())?, q.start_ts, q.include_start, !q.reversed);
        let stop = bound(at(q.stop_msgid.as_deref())?, q.stop_ts, q.include_stop, q.reversed);
        let (upper, lower) = if q.reversed { (stop, start) } else { (start, stop) };
        let (upper_ts, upper_seq) = upper.unwrap_or((i64::MAX, i64::MAX));
        let (lower_ts, lower_seq) = lower.unwrap_or((i64::MIN, i64::MIN));
        let order = if q.reversed { "ASC" } else { "DESC" };
        let range = "(m.timestamp < ?2 OR (m.timestamp = ?2 AND m.seq <= ?3)) AND (m.timestamp > ?4 OR (m.timestamp = ?4 AND m.seq >= ?5))";
        // `?7` (the per-user key) is named in every variant so that the parameter count is always 7.
        let filter = "m.kind != 'broadcast' AND m.transient = 0 AND ?7 = ?7";
        let select = "SELECT m.timestamp, m.conv_id, m.data, m.from_peer, m.msg_id, m.is_room, m.from_ip, m.bin, m.mentions FROM messages m";
        let mut user_conv = String::new();
        let (sql, key) = match &q.scope {
            HistoryScope::ConversationFor { conv, client } => {
                user_conv = user_conversation_key(conv, client);
                (
                    format!(
                        "{select} WHERE {filter} AND {range} AND (m.conv_id = ?1 AND m.kind = 'normal' OR m.seq IN (SELECT msg_seq FROM message_recipients WHERE user_conv = ?7))
                         ORDER BY m.timestamp {order}, m.seq {order} LIMIT ?6"
                    ),
                    conv.clone(),
                )
            }
            HistoryScope::Conversation(conv) => (
                format!(
                    "{select} WHERE {filter} AND {range} AND (m.conv_id = ?1 OR m.seq IN (SELECT msg_seq FROM message_recipients WHERE user_conv = ?1))
                     ORDER BY m.timestamp {order}, m.seq {order} LIMIT ?6"
                ),
                conv.clone(),
            ),
            HistoryScope::From(from) => (
                format!("{select} WHERE {filter} AND {range} AND m.from_peer = ?1 ORDER BY m.timestamp {order}, m.seq {order} LIMIT ?6"),
                from.clone(),
            ),
            HistoryScope::All => (
                format!("{select} WHERE {filter} AND {range} AND ?1 = ?1 ORDER BY m.timestamp {order}, m.seq {order} LIMIT ?6"),
                String::new(),
            ),
        };
        let mut stmt = conn.prepare(&sql)?;
        let records = stmt
            .query_map(params![key, upper_ts, upper_seq, lower_ts, lower_seq, q.limit as i64, user_conv], |r| {
                let mentions: Option<String> = r.get(8)?;
                Ok(history_record(
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    mentions.and_then(|m| serde_json::from_str::<Value>(&m).ok()),
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(records)
    })
    .await
}
