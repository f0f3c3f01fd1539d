//! The mail flows' tokens on SQLite (see [`crate::store::user_tokens`]).

use rusqlite::{params, OptionalExtension};

use super::{Kind, NewToken, Taken};
use crate::store::sqlite::SqliteDb;
use crate::store::StoreResult;

pub async fn issue(db: &SqliteDb, t: NewToken) -> StoreResult<bool> {
    db.write(move |tx| {
        let conn = tx.conn();
        conn.prepare_cached("DELETE FROM user_tokens WHERE expires_at <= ?1")?
            .execute([t.now_ms])?;
        let stored = conn
            .prepare_cached(
                "INSERT INTO user_tokens (kind, user_id, token_hash, email, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (kind, user_id) DO UPDATE SET token_hash = excluded.token_hash,
                     email = excluded.email, created_at = excluded.created_at, expires_at = excluded.expires_at
                 WHERE user_tokens.created_at <= ?7",
            )?
            .execute(params![
                t.kind.key(),
                t.user_id,
                super::hash(&t.token),
                t.email,
                t.now_ms,
                t.expires_ms,
                t.not_after_ms
            ])?;
        Ok(stored == 1)
    })
    .await
}

pub async fn withdraw(db: &SqliteDb, kind: Kind, user_id: String, hash: String) -> StoreResult<()> {
    db.write(move |tx| {
        tx.conn()
            .prepare_cached(
                "DELETE FROM user_tokens WHERE kind = ?1 AND user_id = ?2 AND token_hash = ?3",
            )?
            .execute(params![kind.key(), user_id, hash])?;
        Ok(())
    })
    .await
}

pub async fn take(db: &SqliteDb, kind: Kind, hash: String) -> StoreResult<Option<(Taken, i64)>> {
    db.write(move |tx| {
        Ok(tx
            .conn()
            .prepare_cached(
                "DELETE FROM user_tokens WHERE kind = ?1 AND token_hash = ?2
                 RETURNING user_id, email, expires_at",
            )?
            .query_row(params![kind.key(), hash], |r| {
                Ok((
                    Taken {
                        user_id: r.get(0)?,
                        email: r.get(1)?,
                    },
                    r.get(2)?,
                ))
            })
            .optional()?)
    })
    .await
}
