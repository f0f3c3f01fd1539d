//! Message history as the REST API 1.2 serves it (`routes/rtm2/history.rs`), and the subscribers of service
//! conversations: the queries, with no knowledge of HTTP. Records come back newest first (oldest first with
//! `reversed`), ordered by (`timestamp`, arrival); broadcasts and transient messages are not in history.
//!
//! This module holds the query's rules and its SQL (the same on both backends, with each backend's
//! placeholders through [`Args`]); `sqlite` and `postgres` run it, peers under these rules.

mod postgres;
mod sqlite;

use super::db::Db;
use super::messages::user_conversation_key;
use super::objects::ConversationKind;
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

/// A history record (the protocol's typed record, rendered by `crate::protocol::records::render`).
pub use crate::protocol::records::MessageRecord as HistoryRecord;

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

/// The records `query` selects.
pub async fn history(db: &Db, query: HistoryQuery) -> StoreResult<Vec<HistoryRecord>> {
    match db {
        Db::Sqlite(db) => sqlite::history(db, query).await,
        Db::Postgres(pg) => postgres::history(pg, query).await,
    }
}

/// Up to `limit` subscribers of `conv` whose client id sorts after `after`, in client id order.
pub async fn subscribers(
    db: &Db,
    conv: String,
    after: String,
    limit: i64,
) -> StoreResult<Vec<Subscriber>> {
    match db {
        Db::Sqlite(db) => sqlite::subscribers(db, conv, after, limit).await,
        Db::Postgres(pg) => postgres::subscribers(pg, conv, after, limit).await,
    }
}

/// Subscribe `client` to the service conversation `conv` at `now` (ms); subscribing twice keeps the first time.
pub async fn subscribe(db: &Db, conv: String, client: String, now: i64) -> StoreResult<()> {
    match db {
        Db::Sqlite(db) => sqlite::subscribe(db, conv, client, now).await,
        Db::Postgres(pg) => postgres::subscribe(pg, conv, client, now).await,
    }
}

/// Unsubscribes `client` from `conv`; `false` when it was not subscribed.
pub async fn unsubscribe(db: &Db, conv: String, client: String) -> StoreResult<bool> {
    match db {
        Db::Sqlite(db) => sqlite::unsubscribe(db, conv, client).await,
        Db::Postgres(pg) => postgres::unsubscribe(pg, conv, client).await,
    }
}

/// Only a system (service) conversation has subscribers.
pub(crate) fn subscribable(kind: Option<ConversationKind>) -> StoreResult<()> {
    match kind {
        Some(kind) if kind.system => Ok(()),
        Some(_) => Err(StoreError::SystemConversationRequired),
        None => Err(StoreError::ConversationNotFound),
    }
}
