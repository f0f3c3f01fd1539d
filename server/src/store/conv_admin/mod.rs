//! Conversation administration: member roles, muted members (shutups), blocked clients (the blacklist), one
//! mark per conversation, kind and client; and the permanent notifications kept for clients that were
//! offline (`GET /1.1/rtm/notifications`). No HTTP or WebSocket types: the rules are `crate::domain`'s.

pub(crate) mod postgres;
pub(crate) mod sqlite;

use crate::store::db::Db;
use crate::store::StoreResult;

/// What a mark records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A role other than the owner's (`Manager`; `Member` is the absence of a mark).
    Role,
    /// Muted: may not send.
    Shutup,
    /// Blocked: removed and may not come back.
    Block,
    /// Muted for a while (a temporary silence): `at` is when it ends (ms), not when it was set.
    SilencedUntil,
    /// A client's own blacklist of conversations that may not add it. Kept the other way round: the mark's
    /// `cid` is the client, its `client` the conversation, so one client's list is one key range.
    ClientBlock,
}

impl Mark {
    pub const fn kind(self) -> &'static str {
        match self {
            Mark::Role => "role",
            Mark::Shutup => "shutup",
            Mark::Block => "block",
            Mark::SilencedUntil => "silenced_until",
            Mark::ClientBlock => "client_block",
        }
    }
}

/// One marked client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    pub client: String,
    /// The role, for [`Mark::Role`].
    pub role: Option<String>,
    /// ms.
    pub at: i64,
}

/// The clients marked `mark` in `cid`, by client id, from after `after` (a client id, the paging cursor),
/// at most `limit`.
pub async fn marked(
    db: &Db,
    cid: &str,
    mark: Mark,
    after: Option<String>,
    limit: i64,
) -> StoreResult<Vec<Marked>> {
    let cid = cid.to_string();
    let after = after.unwrap_or_default();
    match db {
        Db::Sqlite(db) => sqlite::marked(db, cid, mark, after, limit).await,
        Db::Postgres(pg) => postgres::marked(pg, cid, mark, after, limit).await,
    }
}

/// The marks of `clients` in `cid` (those that have one).
pub async fn marks_of(
    db: &Db,
    cid: &str,
    mark: Mark,
    clients: Vec<String>,
) -> StoreResult<Vec<Marked>> {
    let cid = cid.to_string();
    match db {
        Db::Sqlite(db) => sqlite::marks_of(db, cid, mark, clients).await,
        Db::Postgres(pg) => postgres::marks_of(pg, cid, mark, clients).await,
    }
}

/// Marks `clients` (with `role` for [`Mark::Role`]), replacing their mark of that kind.
pub async fn set(
    db: &Db,
    cid: &str,
    mark: Mark,
    clients: Vec<String>,
    role: Option<String>,
    at: i64,
) -> StoreResult<()> {
    let cid = cid.to_string();
    match db {
        Db::Sqlite(db) => sqlite::set(db, cid, mark, clients, role, at).await,
        Db::Postgres(pg) => postgres::set(pg, cid, mark, clients, role, at).await,
    }
}

/// Removes the marks of `clients`.
pub async fn unset(db: &Db, cid: &str, mark: Mark, clients: Vec<String>) -> StoreResult<()> {
    let cid = cid.to_string();
    match db {
        Db::Sqlite(db) => sqlite::unset(db, cid, mark, clients).await,
        Db::Postgres(pg) => postgres::unset(pg, cid, mark, clients).await,
    }
}

/// One kept notification: its client, its time (ms) and its JSON entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub client: String,
    pub at: i64,
    pub body: String,
}

/// Keeps notifications for `GET /1.1/rtm/notifications`; drops the ones older than `purge_before` (ms).
pub async fn keep(db: &Db, items: Vec<Notification>, purge_before: i64) -> StoreResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    match db {
        Db::Sqlite(db) => sqlite::keep(db, items, purge_before).await,
        Db::Postgres(pg) => postgres::keep(pg, items, purge_before).await,
    }
}

/// `client`'s notifications after `since` (ms), oldest first, at most `limit`.
pub async fn since(
    db: &Db,
    client: &str,
    since: i64,
    limit: i64,
) -> StoreResult<Vec<Notification>> {
    let client = client.to_string();
    match db {
        Db::Sqlite(db) => sqlite::since(db, client, since, limit).await,
        Db::Postgres(pg) => postgres::since(pg, client, since, limit).await,
    }
}
