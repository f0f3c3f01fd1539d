//! The one-time tokens of the mail flows: a password-reset link and an e-mail verification link. A token is
//! 32 random bytes, mailed once and kept here only as its SHA-256, so a copy of the database opens no account.
//! Each user has at most one live token of each [`Kind`]: a new request replaces the last link, and is refused
//! while the last one is younger than the spacing the caller gives (one mail a minute per address, say). Taking
//! a token deletes it, whatever its age: a link works once, and only before it expires.

pub(crate) mod postgres;
pub(crate) mod sqlite;

use sha2::{Digest, Sha256};

use crate::store::db::Db;
use crate::store::StoreResult;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Set a new password.
    Reset,
    /// Mark the e-mail address verified.
    Verify,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Reset => "reset",
            Kind::Verify => "verify",
        }
    }
}

/// A token about to be mailed.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub kind: Kind,
    pub user_id: String,
    /// The address the link goes to.
    pub email: String,
    /// The token itself (only its hash is stored).
    pub token: String,
    pub now_ms: i64,
    pub expires_ms: i64,
    /// A live token created after this is not replaced: the request is too soon.
    pub not_after_ms: i64,
}

/// The user and address a taken token was mailed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub user_id: String,
    pub email: String,
}

/// The hex SHA-256 a token is stored as.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Stores `token` as the user's live token of its kind, unless the live one was created after
/// `not_after_ms` (then `false`: nothing changes). Expired tokens of every user are dropped on the way.
pub async fn issue(db: &Db, token: NewToken) -> StoreResult<bool> {
    match db {
        Db::Sqlite(db) => sqlite::issue(db, token).await,
        Db::Postgres(pg) => postgres::issue(pg, token).await,
    }
}

/// Withdraws the user's live token of `kind` (the mail could not be sent), so asking again is not too soon.
pub async fn withdraw(db: &Db, kind: Kind, user_id: String, token: &str) -> StoreResult<()> {
    let hash = hash(token);
    match db {
        Db::Sqlite(db) => sqlite::withdraw(db, kind, user_id, hash).await,
        Db::Postgres(pg) => postgres::withdraw(pg, kind, user_id, hash).await,
    }
}

/// Takes (deletes) the token of `kind`: its user and address while it is unexpired at `now_ms`, else `None`.
pub async fn take(db: &Db, kind: Kind, token: &str, now_ms: i64) -> StoreResult<Option<Taken>> {
    let hash = hash(token);
    let found = match db {
        Db::Sqlite(db) => sqlite::take(db, kind, hash).await?,
        Db::Postgres(pg) => postgres::take(pg, kind, hash).await?,
    };
    Ok(found.and_then(|(taken, expires)| (expires > now_ms).then_some(taken)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Durability;
    use crate::store::sqlite::SqliteDb;

    fn token(kind: Kind, token: &str, now_ms: i64) -> NewToken {
        NewToken {
            kind,
            user_id: "u1".into(),
            email: "u1@example.com".into(),
            token: token.into(),
            now_ms,
            expires_ms: now_ms + 1_000,
            not_after_ms: now_ms - 60,
        }
    }

    #[tokio::test]
    async fn a_token_is_spaced_replaced_single_use_and_dead_once_expired() {
        let dir = tempfile::tempdir().expect("dir");
        let db = Db::Sqlite(
            SqliteDb::open(&dir.path().join("t.sqlite3"), Durability::Normal).expect("db"),
        );
        let taken = || Taken {
            user_id: "u1".into(),
            email: "u1@example.com".into(),
        };

        // Spacing: a second request 59 ms later is refused, 60 ms later it replaces the first link
        assert!(issue(&db, token(Kind::Reset, "a", 1_000))
            .await
            .expect("issue"));
        assert!(!issue(&db, token(Kind::Reset, "b", 1_059))
            .await
            .expect("issue"));
        assert!(issue(&db, token(Kind::Verify, "v", 1_059))
            .await
            .expect("another kind"));
        assert!(issue(&db, token(Kind::Reset, "c", 1_060))
            .await
            .expect("issue"));
        assert_eq!(
            None,
            take(&db, Kind::Reset, "a", 1_100).await.expect("take")
        );
        assert_eq!(
            None,
            take(&db, Kind::Reset, "b", 1_100).await.expect("take")
        );
        // The kind must match; then one use only
        assert_eq!(
            None,
            take(&db, Kind::Verify, "c", 1_100).await.expect("take")
        );
        assert_eq!(
            Some(taken()),
            take(&db, Kind::Reset, "c", 1_100).await.expect("take")
        );
        assert_eq!(
            None,
            take(&db, Kind::Reset, "c", 1_100).await.expect("take")
        );
        // Expiry: the verification link (expires at 2,059) is dead at 2,059, and gone
        assert_eq!(
            None,
            take(&db, Kind::Verify, "v", 2_059).await.expect("take")
        );
        assert!(issue(&db, token(Kind::Verify, "w", 2_100))
            .await
            .expect("issue"));
        // A withdrawn token: asking again is not too soon, and the withdrawn link is dead
        withdraw(&db, Kind::Verify, "u1".into(), "w")
            .await
            .expect("withdraw");
        assert!(issue(&db, token(Kind::Verify, "x", 2_101))
            .await
            .expect("issue"));
        assert_eq!(
            None,
            take(&db, Kind::Verify, "w", 2_102).await.expect("take")
        );
        assert_eq!(
            Some(taken()),
            take(&db, Kind::Verify, "x", 2_102).await.expect("take")
        );
    }
}
