//! Message history as the REST API 1.2 serves it (`routes/history2.rs`), and the subscribers of service
//! conversations: the queries, with no knowledge of HTTP. Records come back newest first (oldest first with
//! `reversed`), ordered by (`timestamp`, arrival); broadcasts and transient messages are not in history.

pub(crate) mod postgres;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, OptionalExtension};

use super::db::Db;
use super::messages::{recipients_from_column, user_conversation_key};
use super::objects::ConversationKind;
use super::sqlite::shared::conversation_kind;
use super::{StoreError, StoreResult};

/// Which messages a history query covers.
#[derive(Debug, Clone)]
pub enum Scope {
    /// A conversation's messages, and those sent to it as chosen recipients.
    Conversation(String),
    /// What one subscriber of a service conversation received.
    Subscriber { conv: String, client: String },
    /// What one client sent.
    From(String),
    /// The whole app's.
    All,
}

/// One end of the range: a message (`msg_id`, whose timestamp must match `timestamp` when both are given), or
/// a millisecond.
#[derive(Debug, Clone, Default)]
pub struct End {
    pub timestamp: Option<i64>,
    pub msg_id: Option<String>,
    pub inclusive: bool,
}

/// A history query: newest first from `start` down to `stop` (the other way round with `reversed`).
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    pub scope: Scope,
    pub start: End,
    pub stop: End,
    pub reversed: bool,
    pub limit: i64,
}

/// One stored message as history lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRecord {
    pub timestamp: i64,
    pub conv_id: String,
    pub data: String,
    pub from: String,
    pub msg_id: String,
    pub is_room: bool,
    pub from_ip: Option<String>,
    pub binary: bool,
    pub ack_at: Option<i64>,
    /// For a message to chosen clients of a service conversation: who it went to (empty for any other).
    pub recipients: Vec<String>,
}

/// A subscriber of a service conversation and when it subscribed (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub client_id: String,
    pub timestamp: i64,
}

/// `(timestamp, seq)` of a resolved end; `seq` only when it names a message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bound {
    ts: i64,
    seq: Option<i64>,
    inclusive: bool,
}

/// Placeholders of one query's parameters, in order: SQLite's `?` or PostgreSQL's `$n`.
pub(crate) trait Args {
    fn text(&mut self, v: String) -> String;
    fn int(&mut self, v: i64) -> String;
}

impl Args for Vec<SqlValue> {
    fn text(&mut self, v: String) -> String {
        self.push(SqlValue::Text(v));
        "?".into()
    }
    fn int(&mut self, v: i64) -> String {
        self.push(SqlValue::Integer(v));
        "?".into()
    }
}

impl Bound {
    /// SQL condition keeping the rows below (`below`) or above this bound.
    fn condition(&self, below: bool, args: &mut impl Args) -> String {
        let (strict, eq) = match (below, self.inclusive) {
            (true, true) => ("<", "<="),
            (true, false) => ("<", "<"),
            (false, true) => (">", ">="),
            (false, false) => (">", ">"),
        };
        match self.seq {
            Some(seq) => {
                let (t1, t2, s) = (args.int(self.ts), args.int(self.ts), args.int(seq));
                format!("(m.timestamp {strict} {t1} OR (m.timestamp = {t2} AND m.seq {eq} {s}))")
            }
            None => format!("m.timestamp {eq} {}", args.int(self.ts)),
        }
    }
}

/// The bound an end names: its message (`at`: that message's timestamp and seq, when it is stored and
/// agrees with the end's timestamp), else its timestamp alone.
pub(crate) fn resolve(end: &End, at: Option<(i64, i64)>) -> Option<Bound> {
    let at = at.filter(|(t, _)| end.timestamp.is_none_or(|ts| ts == *t));
    match (at, end.timestamp) {
        (Some((t, seq)), _) => Some(Bound {
            ts: t,
            seq: Some(seq),
            inclusive: end.inclusive,
        }),
        (None, Some(t)) => Some(Bound {
            ts: t,
            seq: None,
            inclusive: end.inclusive,
        }),
        (None, None) => None,
    }
}

/// The history query on either backend: the same SQL, with the backend's placeholders.
pub(crate) fn history_sql(
    query: &HistoryQuery,
    start: Option<Bound>,
    stop: Option<Bound>,
    args: &mut impl Args,
) -> String {
    let mut conds = vec![
        "m.kind != 'broadcast'".to_string(),
        "m.transient = FALSE".to_string(),
    ];
    match &query.scope {
        Scope::Conversation(conv) => {
            let (c, k) = (args.text(conv.clone()), args.text(conv.clone()));
            conds.push(format!(
                "(m.conv_id = {c} OR m.seq IN (SELECT msg_seq FROM message_recipients WHERE user_conv = {k}))"
            ));
        }
        Scope::Subscriber { conv, client } => {
            let (c, k) = (
                args.text(conv.clone()),
                args.text(user_conversation_key(conv, client)),
            );
            conds.push(format!(
                "((m.conv_id = {c} AND m.kind = 'normal') OR m.seq IN (SELECT msg_seq FROM message_recipients WHERE user_conv = {k}))"
            ));
        }
        Scope::From(from) => conds.push(format!("m.from_peer = {}", args.text(from.clone()))),
        Scope::All => {}
    }
    if let Some(b) = start {
        conds.push(b.condition(!query.reversed, args));
    }
    if let Some(b) = stop {
        conds.push(b.condition(query.reversed, args));
    }
    let order = if query.reversed { "ASC" } else { "DESC" };
    let limit = args.int(query.limit);
    format!(
        "SELECT m.timestamp, m.conv_id, m.data, m.from_peer, m.msg_id, m.is_room, m.from_ip, (m.bin OR COALESCE(mm.bin, FALSE)), mm.ack_at, m.recipients
         FROM messages m LEFT JOIN message_meta mm ON mm.msg_id = m.msg_id
         WHERE {} ORDER BY m.timestamp {order}, m.seq {order} LIMIT {limit}",
        conds.join(" AND ")
    )
}

fn message_at(conn: &rusqlite::Connection, end: &End) -> StoreResult<Option<(i64, i64)>> {
    let Some(id) = &end.msg_id else {
        return Ok(None);
    };
    Ok(conn
        .prepare_cached("SELECT timestamp, seq FROM messages WHERE msg_id = ?1")?
        .query_row([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .optional()?)
}

/// The records `query` selects.
pub async fn history(db: &Db, query: HistoryQuery) -> StoreResult<Vec<HistoryRecord>> {
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => return postgres::history(pg, query).await,
    };
    db.read(move |conn| {
        let start = resolve(&query.start, message_at(conn, &query.start)?);
        let stop = resolve(&query.stop, message_at(conn, &query.stop)?);
        let mut args: Vec<SqlValue> = Vec::new();
        let sql = history_sql(&query, start, stop, &mut args);
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt
            .query_map(params_from_iter(args), |r| {
                Ok(HistoryRecord {
                    timestamp: r.get(0)?,
                    conv_id: r.get(1)?,
                    data: r.get(2)?,
                    from: r.get(3)?,
                    msg_id: r.get(4)?,
                    is_room: r.get(5)?,
                    from_ip: r.get(6)?,
                    binary: r.get::<_, Option<bool>>(7)?.unwrap_or(false),
                    ack_at: r.get(8)?,
                    recipients: recipients_from_column(r.get(9)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    })
    .await
}

/// Up to `limit` subscribers of `conv` whose client id sorts after `after`, in client id order.
pub async fn subscribers(
    db: &Db,
    conv: String,
    after: String,
    limit: i64,
) -> StoreResult<Vec<Subscriber>> {
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => return postgres::subscribers(pg, conv, after, limit).await,
    };
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT client_id, timestamp FROM service_subscribers
             WHERE conv_id = ?1 AND client_id > ?2 ORDER BY client_id LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(rusqlite::params![conv, after, limit], |r| {
                Ok(Subscriber {
                    client_id: r.get(0)?,
                    timestamp: r.get(1)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    })
    .await
}

/// Subscribe `client` to the service conversation `conv` at `now` (ms); subscribing twice keeps the first time.
pub async fn subscribe(db: &Db, conv: String, client: String, now: i64) -> StoreResult<()> {
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => return postgres::subscribe(pg, conv, client, now).await,
    };
    db.write(move |tx| {
        let conn = tx.conn();
        subscribable(conversation_kind(conn, &conv)?)?;
        conn.prepare_cached(
            "INSERT OR IGNORE INTO service_subscribers (conv_id, client_id, timestamp) VALUES (?1, ?2, ?3)",
        )?
        .execute(rusqlite::params![conv, client, now])?;
        Ok(())
    })
    .await
}

/// Only a system (service) conversation has subscribers.
pub(crate) fn subscribable(kind: Option<ConversationKind>) -> StoreResult<()> {
    match kind {
        Some(kind) if kind.system => Ok(()),
        Some(_) => Err(StoreError::SystemConversationRequired),
        None => Err(StoreError::ConversationNotFound),
    }
}
