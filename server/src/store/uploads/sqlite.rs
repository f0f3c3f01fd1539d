//! Upload tokens on SQLite (`file_uploads`, migration 004).

use rusqlite::{params, OptionalExtension, Row};

use super::Upload;
use crate::store::sqlite::SqliteDb;
use crate::store::StoreResult;

const COLUMNS: &str = "token_hash, object_id, key, mime_type, max_size, expires_at, uploaded";

fn upload(r: &Row<'_>) -> rusqlite::Result<Upload> {
    Ok(Upload {
        token_hash: r.get(0)?,
        object_id: r.get(1)?,
        key: r.get(2)?,
        mime_type: r.get(3)?,
        max_size: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        expires_at: r.get(5)?,
        uploaded: r.get(6)?,
    })
}

pub(super) async fn issue(db: &SqliteDb, u: Upload) -> StoreResult<()> {
    db.write(move |tx| {
        tx.conn().execute(
            &format!("INSERT INTO file_uploads ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
            params![
                u.token_hash,
                u.object_id,
                u.key,
                u.mime_type,
                i64::try_from(u.max_size).unwrap_or(i64::MAX),
                u.expires_at,
                u.uploaded
            ],
        )?;
        Ok(())
    })
    .await
}

pub(super) async fn find(db: &SqliteDb, token_hash: String) -> StoreResult<Option<Upload>> {
    db.read(move |conn| {
        Ok(conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM file_uploads WHERE token_hash = ?1"),
                [token_hash],
                upload,
            )
            .optional()?)
    })
    .await
}

pub(super) async fn mark_uploaded(db: &SqliteDb, token_hash: String) -> StoreResult<bool> {
    db.write(move |tx| {
        let n = tx.conn().execute(
            "UPDATE file_uploads SET uploaded = 1 WHERE token_hash = ?1 AND uploaded = 0",
            [token_hash],
        )?;
        Ok(n == 1)
    })
    .await
}

pub(super) async fn remove(db: &SqliteDb, token_hash: String) -> StoreResult<()> {
    db.write(move |tx| {
        tx.conn().execute(
            "DELETE FROM file_uploads WHERE token_hash = ?1",
            [token_hash],
        )?;
        Ok(())
    })
    .await
}

pub(super) async fn remove_for_object(db: &SqliteDb, object_id: String) -> StoreResult<()> {
    db.write(move |tx| {
        tx.conn()
            .execute("DELETE FROM file_uploads WHERE object_id = ?1", [object_id])?;
        Ok(())
    })
    .await
}

pub(super) async fn expired(db: &SqliteDb, now: i64, limit: i64) -> StoreResult<Vec<Upload>> {
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM file_uploads WHERE expires_at < ?1 ORDER BY expires_at LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(params![now, limit], upload)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })
    .await
}
