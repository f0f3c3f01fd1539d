//! Temporary conversations on SQLite (see [`crate::store::temp_convs`]).

use rusqlite::{params, Connection, OptionalExtension, Row as SqlRow};

use super::{members_key, members_of, new_id, NewTempConv, TempConv};
use crate::store::sqlite::SqliteDb;
use crate::store::StoreResult;

fn from_row(r: &SqlRow<'_>) -> rusqlite::Result<TempConv> {
    Ok(TempConv {
        id: r.get(0)?,
        members: members_of(&r.get::<_, String>(1)?),
        creator: r.get(2)?,
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
    })
}

/// The members of a live temporary conversation (for the message store).
pub(crate) fn live_members(
    conn: &Connection,
    id: &str,
    now: i64,
) -> StoreResult<Option<Vec<String>>> {
    Ok(conn
        .prepare_cached("SELECT members FROM temp_conversations WHERE id = ?1 AND expires_at > ?2")?
        .query_row(params![id, now], |r| r.get::<_, String>(0))
        .optional()?
        .map(|m| members_of(&m)))
}

pub async fn start(db: &SqliteDb, new: NewTempConv) -> StoreResult<TempConv> {
    db.write(move |tx| {
        let conn = tx.conn();
        conn.prepare_cached("DELETE FROM temp_conversations WHERE expires_at <= ?1")?
            .execute([new.now])?;
        let key = members_key(&new.members);
        if new.unique {
            let found = conn
                .prepare_cached(
                    "SELECT id, members, creator, created_at, expires_at FROM temp_conversations
                     WHERE members = ?1 AND expires_at > ?2 ORDER BY created_at DESC LIMIT 1",
                )?
                .query_row(params![key, new.now], from_row)
                .optional()?;
            if let Some(found) = found {
                return Ok(found);
            }
        }
        let conv = TempConv {
            id: new_id(),
            members: new.members,
            creator: new.creator,
            created_at: new.now,
            expires_at: new.now.saturating_add(new.ttl_ms),
        };
        conn.prepare_cached(
            "INSERT INTO temp_conversations (id, members, creator, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![conv.id, key, conv.creator, conv.created_at, conv.expires_at])?;
        Ok(conv)
    })
    .await
}

pub async fn live(db: &SqliteDb, ids: Vec<String>, now: i64) -> StoreResult<Vec<TempConv>> {
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT id, members, creator, created_at, expires_at FROM temp_conversations
             WHERE id = ?1 AND expires_at > ?2",
        )?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(conv) = stmt.query_row(params![id, now], from_row).optional()? {
                out.push(conv);
            }
        }
        Ok(out)
    })
    .await
}
