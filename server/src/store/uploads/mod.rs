//! Upload tokens of the file API (`crate::domain::files`): each `POST /1.1/fileTokens` issues one, bound to the
//! file's object and key, a size limit and an expiry; the `PUT` of the body marks it used; the callback or the
//! expiry removes it. The token itself is never stored, only its hash.

mod postgres;
mod sqlite;

use crate::store::db::Db;
use crate::store::StoreResult;

/// One issued upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Hex SHA-1 of the token.
    pub token_hash: String,
    /// The `_File` object it is for.
    pub object_id: String,
    pub key: String,
    pub mime_type: String,
    pub max_size: u64,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
    /// The body arrived.
    pub uploaded: bool,
}

pub async fn issue(db: &Db, upload: Upload) -> StoreResult<()> {
    match db {
        Db::Sqlite(db) => sqlite::issue(db, upload).await,
        Db::Postgres(pg) => postgres::issue(pg, upload).await,
    }
}

pub async fn find(db: &Db, token_hash: String) -> StoreResult<Option<Upload>> {
    match db {
        Db::Sqlite(db) => sqlite::find(db, token_hash).await,
        Db::Postgres(pg) => postgres::find(pg, token_hash).await,
    }
}

/// Marks the upload's body as arrived; `false` when it already was (or the token is gone).
pub async fn mark_uploaded(db: &Db, token_hash: String) -> StoreResult<bool> {
    match db {
        Db::Sqlite(db) => sqlite::mark_uploaded(db, token_hash).await,
        Db::Postgres(pg) => postgres::mark_uploaded(pg, token_hash).await,
    }
}

pub async fn remove(db: &Db, token_hash: String) -> StoreResult<()> {
    match db {
        Db::Sqlite(db) => sqlite::remove(db, token_hash).await,
        Db::Postgres(pg) => postgres::remove(pg, token_hash).await,
    }
}

/// Forgets every upload of the `_File` object `object_id` (it was deleted).
pub async fn remove_for_object(db: &Db, object_id: String) -> StoreResult<()> {
    match db {
        Db::Sqlite(db) => sqlite::remove_for_object(db, object_id).await,
        Db::Postgres(pg) => postgres::remove_for_object(pg, object_id).await,
    }
}

/// At most `limit` uploads whose token expired before `now`, oldest first.
pub async fn expired(db: &Db, now: i64, limit: i64) -> StoreResult<Vec<Upload>> {
    match db {
        Db::Sqlite(db) => sqlite::expired(db, now, limit).await,
        Db::Postgres(pg) => postgres::expired(pg, now, limit).await,
    }
}
