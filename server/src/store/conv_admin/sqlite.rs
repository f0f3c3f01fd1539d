//! Conversation administration on SQLite (see [`crate::store::conv_admin`]).

use rusqlite::{params, Row as SqlRow};

use super::{Mark, Marked, Notification};
use crate::store::sqlite::SqliteDb;
use crate::store::StoreResult;

fn from_row(r: &SqlRow<'_>) -> rusqlite::Result<Marked> {
    Ok(Marked {
        client: r.get(0)?,
        role: r.get(1)?,
        at: r.get(2)?,
    })
}

pub async fn marked(
    db: &SqliteDb,
    cid: String,
    mark: Mark,
    after: String,
    limit: i64,
) -> StoreResult<Vec<Marked>> {
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT client_id, role, at FROM conv_member_marks
             WHERE cid = ?1 AND kind = ?2 AND client_id > ?3 ORDER BY client_id LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![cid, mark.kind(), after, limit], from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
    .await
}

pub async fn marks_of(
    db: &SqliteDb,
    cid: String,
    mark: Mark,
    clients: Vec<String>,
) -> StoreResult<Vec<Marked>> {
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT client_id, role, at FROM conv_member_marks
             WHERE cid = ?1 AND kind = ?2 AND client_id = ?3",
        )?;
        let mut out = Vec::new();
        for client in clients {
            let rows = stmt.query_map(params![cid, mark.kind(), client], from_row)?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    })
    .await
}

pub async fn set(
    db: &SqliteDb,
    cid: String,
    mark: Mark,
    clients: Vec<String>,
    role: Option<String>,
    at: i64,
) -> StoreResult<()> {
    db.write(move |tx| {
        let conn = tx.conn();
        let mut stmt = conn.prepare_cached(
            "INSERT INTO conv_member_marks (cid, kind, client_id, role, at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (cid, kind, client_id) DO UPDATE SET role = excluded.role, at = excluded.at",
        )?;
        for client in clients {
            stmt.execute(params![cid, mark.kind(), client, role, at])?;
        }
        Ok(())
    })
    .await
}

pub async fn unset(
    db: &SqliteDb,
    cid: String,
    mark: Mark,
    clients: Vec<String>,
) -> StoreResult<()> {
    db.write(move |tx| {
        let conn = tx.conn();
        let mut stmt = conn.prepare_cached(
            "DELETE FROM conv_member_marks WHERE cid = ?1 AND kind = ?2 AND client_id = ?3",
        )?;
        for client in clients {
            stmt.execute(params![cid, mark.kind(), client])?;
        }
        Ok(())
    })
    .await
}

pub async fn keep(db: &SqliteDb, items: Vec<Notification>, purge_before: i64) -> StoreResult<()> {
    db.write(move |tx| {
        let conn = tx.conn();
        conn.prepare_cached("DELETE FROM rtm_notifications WHERE at < ?1")?
            .execute([purge_before])?;
        let mut stmt = conn.prepare_cached(
            "INSERT INTO rtm_notifications (client_id, at, body) VALUES (?1, ?2, ?3)",
        )?;
        for n in items {
            stmt.execute(params![n.client, n.at, n.body])?;
        }
        Ok(())
    })
    .await
}

pub async fn since(
    db: &SqliteDb,
    client: String,
    since: i64,
    limit: i64,
) -> StoreResult<Vec<Notification>> {
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT client_id, at, body FROM rtm_notifications
             WHERE client_id = ?1 AND at > ?2 ORDER BY at, rowid LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![client, since, limit], |r| {
            Ok(Notification {
                client: r.get(0)?,
                at: r.get(1)?,
                body: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
    .await
}
