//! Upload tokens on PostgreSQL (`file_uploads`, migration 002).

use tokio_postgres::Row;

use super::Upload;
use crate::store::postgres::Pg;
use crate::store::StoreResult;

const COLUMNS: &str = "token_hash, object_id, key, mime_type, max_size, expires_at, uploaded";

fn upload(r: &Row) -> Upload {
    Upload {
        token_hash: r.get(0),
        object_id: r.get(1),
        key: r.get(2),
        mime_type: r.get(3),
        max_size: u64::try_from(r.get::<_, i64>(4)).unwrap_or(0),
        expires_at: r.get(5),
        uploaded: r.get(6),
    }
}

pub(super) async fn issue(pg: &Pg, u: Upload) -> StoreResult<()> {
    let client = pg.client().await?;
    client
        .execute(
            &format!("INSERT INTO file_uploads ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
            &[
                &u.token_hash,
                &u.object_id,
                &u.key,
                &u.mime_type,
                &i64::try_from(u.max_size).unwrap_or(i64::MAX),
                &u.expires_at,
                &u.uploaded,
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn find(pg: &Pg, token_hash: String) -> StoreResult<Option<Upload>> {
    let client = pg.client().await?;
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM file_uploads WHERE token_hash = $1"),
            &[&token_hash],
        )
        .await?;
    Ok(row.as_ref().map(upload))
}

pub(super) async fn mark_uploaded(pg: &Pg, token_hash: String) -> StoreResult<bool> {
    let client = pg.client().await?;
    let n = client
        .execute(
            "UPDATE file_uploads SET uploaded = TRUE WHERE token_hash = $1 AND NOT uploaded",
            &[&token_hash],
        )
        .await?;
    Ok(n == 1)
}

pub(super) async fn remove(pg: &Pg, token_hash: String) -> StoreResult<()> {
    let client = pg.client().await?;
    client
        .execute(
            "DELETE FROM file_uploads WHERE token_hash = $1",
            &[&token_hash],
        )
        .await?;
    Ok(())
}

pub(super) async fn remove_for_object(pg: &Pg, object_id: String) -> StoreResult<()> {
    let client = pg.client().await?;
    client
        .execute(
            "DELETE FROM file_uploads WHERE object_id = $1",
            &[&object_id],
        )
        .await?;
    Ok(())
}

pub(super) async fn expired(pg: &Pg, now: i64, limit: i64) -> StoreResult<Vec<Upload>> {
    let client = pg.client().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM file_uploads WHERE expires_at < $1 ORDER BY expires_at LIMIT $2"
            ),
            &[&now, &limit],
        )
        .await?;
    Ok(rows.iter().map(upload).collect())
}
