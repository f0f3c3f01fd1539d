//! What the realtime gateway keeps per client: read and delivery positions per conversation (unread
//! counts, offline delivery) and the broadcast cursor. Messages and conversations themselves are the
//! same rows the REST API reads and writes ([`super::messages`], [`super::objects`]).
//!
//! This module holds the positions' types; each operation runs its queries on the backend the [`Db`] names,
//! the `sqlite` or the `postgres` child.

mod postgres;
mod sqlite;

use crate::store::db::Db;
use crate::store::StoreResult;

/// The last message of a conversation as the `unread` notification carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastMessage {
    pub msg_id: String,
    pub from: String,
    pub timestamp: i64,
    pub data: String,
    pub binary: bool,
}

/// One conversation with messages the client has not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    pub conv_id: String,
    pub count: i64,
    pub last: Option<LastMessage>,
    /// One of the unread messages mentions the client (by id or `mentionAll`).
    pub mentioned: bool,
}

/// A message to hand to a client that was offline (protocol version 1: pushed with `offline: true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub seq: i64,
    pub msg_id: String,
    pub conv_id: String,
    pub from: String,
    pub timestamp: i64,
    pub data: String,
    pub binary: bool,
}

/// The last kept message (not transient) of each of `convs` that has one.
pub async fn last_messages(db: &Db, convs: Vec<String>) -> StoreResult<Vec<(String, LastMessage)>> {
    match db {
        Db::Sqlite(db) => sqlite::last_messages(db, convs).await,
        Db::Postgres(pg) => postgres::last_messages(pg, convs).await,
    }
}

/// Per conversation of `client`: how many kept messages from others arrived after its last `read`, and
/// the conversation's last message. Conversations with nothing unread are left out.
pub async fn unread(db: &Db, client: String) -> StoreResult<Vec<Unread>> {
    match db {
        Db::Sqlite(db) => sqlite::unread(db, client).await,
        Db::Postgres(pg) => postgres::unread(pg, client).await,
    }
}

/// Kept messages from others that were not delivered to `client` (after its `ack` position), oldest
/// first, at most `limit` per conversation.
pub async fn undelivered(db: &Db, client: String, limit: usize) -> StoreResult<Vec<Pending>> {
    match db {
        Db::Sqlite(db) => sqlite::undelivered(db, client, limit).await,
        Db::Postgres(pg) => postgres::undelivered(pg, client, limit).await,
    }
}

/// Broadcasts still valid at `now` that `client` was not given yet, oldest first, and the cursor to store
/// once they are handed over (the newest broadcast there is).
pub async fn pending_broadcasts(
    db: &Db,
    client: String,
    now: i64,
) -> StoreResult<(Vec<Pending>, i64)> {
    match db {
        Db::Sqlite(db) => sqlite::pending_broadcasts(db, client, now).await,
        Db::Postgres(pg) => postgres::pending_broadcasts(pg, client, now).await,
    }
}

/// Remembers that `client` has had every broadcast up to `seq`.
pub async fn set_broadcast_cursor(db: &Db, client: String, seq: i64) -> StoreResult<()> {
    match db {
        Db::Sqlite(db) => sqlite::set_broadcast_cursor(db, client, seq).await,
        Db::Postgres(pg) => postgres::set_broadcast_cursor(pg, client, seq).await,
    }
}

/// Which position a client command moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// `read`: the client has read up to the time.
    Read,
    /// `ack`: messages up to the time reached the client.
    Delivered,
}

/// Moves positions forward (never back) for `(conversation, time)` pairs of one client.
pub async fn advance(
    db: &Db,
    client: String,
    which: Position,
    marks: Vec<(String, i64)>,
) -> StoreResult<()> {
    if marks.is_empty() {
        return Ok(());
    }
    match db {
        Db::Sqlite(db) => sqlite::advance(db, client, which, marks).await,
        Db::Postgres(pg) => postgres::advance(pg, client, which, marks).await,
    }
}

/// One client's positions in a conversation (ms; 0 when it has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Positions {
    pub client: String,
    pub read_ts: i64,
    pub ack_ts: i64,
}

/// The positions in conversation `conv` of each of `clients` that has any, in the order of `clients`.
pub async fn positions_of(
    db: &Db,
    conv: String,
    clients: Vec<String>,
) -> StoreResult<Vec<Positions>> {
    if clients.is_empty() {
        return Ok(Vec::new());
    }
    let mut found = match db {
        Db::Sqlite(db) => sqlite::positions_of(db, conv, clients.clone()).await?,
        Db::Postgres(pg) => postgres::positions_of(pg, conv, clients.clone()).await?,
    };
    found.sort_by_key(|p| clients.iter().position(|c| *c == p.client));
    Ok(found)
}
