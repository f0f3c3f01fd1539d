//! The operator console's queries (the console API in `console/` serves them): conversation search, a
//! conversation's stored messages, message counts. Knows nothing of HTTP.
//!
//! This module holds the rows' types and the paging rule; each query runs on the backend the [`Db`] names,
//! the `sqlite` or the `postgres` child.

mod postgres;
mod sqlite;

use serde_json::{Map, Value};

use super::db::Db;
use super::messages::MessageKind;
use super::StoreResult;

/// Which conversations a search lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindFilter {
    All,
    Normal,
    System,
    Transient,
}

/// A conversation as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationRow {
    pub id: String,
    pub data: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One stored message, whatever its kind (broadcasts, transient messages and messages to chosen clients too).
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    pub seq: i64,
    pub msg_id: String,
    pub conv_id: String,
    pub from: String,
    pub data: String,
    pub timestamp: i64,
    pub kind: MessageKind,
    pub transient: bool,
    pub recipients: Vec<String>,
    pub binary: bool,
}

/// Conversations matching `q` (part of the id, part of the name in any case, or a member id exactly; empty:
/// all) and `kind`, newest first: how many match, and the page `skip`..`skip + limit`.
pub async fn search_conversations(
    db: &Db,
    q: String,
    kind: KindFilter,
    skip: i64,
    limit: i64,
) -> StoreResult<(i64, Vec<ConversationRow>)> {
    match db {
        Db::Sqlite(db) => sqlite::search_conversations(db, q, kind, skip, limit).await,
        Db::Postgres(pg) => postgres::search_conversations(pg, q, kind, skip, limit).await,
    }
}

/// How many messages `conv` has stored.
pub async fn message_count(db: &Db, conv: String) -> StoreResult<i64> {
    match db {
        Db::Sqlite(db) => sqlite::message_count(db, conv).await,
        Db::Postgres(pg) => postgres::message_count(pg, conv).await,
    }
}

/// Where a page of [`messages_page`] starts: below the message `before` (its timestamp and seq, `cursor`, when it
/// is stored), else below `before` as a bare seq, else at the newest message.
pub(crate) fn page_start(before: Option<i64>, cursor: Option<(i64, i64)>) -> (i64, i64) {
    match (before, cursor) {
        (_, Some(c)) => c,
        (Some(seq), None) => (i64::MAX, seq),
        (None, None) => (i64::MAX, i64::MAX),
    }
}

/// `conv`'s stored messages, newest first, before the message whose `seq` is `before` (`None`: the newest):
/// how many it has in all, and up to `limit` of them.
pub async fn messages_page(
    db: &Db,
    conv: String,
    before: Option<i64>,
    limit: i64,
) -> StoreResult<(i64, Vec<MessageRow>)> {
    match db {
        Db::Sqlite(db) => sqlite::messages_page(db, conv, before, limit).await,
        Db::Postgres(pg) => postgres::messages_page(pg, conv, before, limit).await,
    }
}

/// Messages stored per minute (`timestamp / 60000`) since `since` (ms), oldest minute first; minutes with none
/// are left out.
pub async fn per_minute(db: &Db, since: i64) -> StoreResult<Vec<(i64, i64)>> {
    match db {
        Db::Sqlite(db) => sqlite::per_minute(db, since).await,
        Db::Postgres(pg) => postgres::per_minute(pg, since).await,
    }
}
