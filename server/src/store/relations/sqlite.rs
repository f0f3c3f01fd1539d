//! Relation members on SQLite (see [`crate::store::relations`]).

use rusqlite::{params, Connection};

use super::RelationChange;
use crate::store::sqlite::SqliteDb;
use crate::store::StoreResult;

/// Applies `changes` to the fields of object `owner_id` (inside the writer's transaction).
pub(crate) fn apply(
    conn: &Connection,
    owner_class: &str,
    owner_id: &str,
    changes: &[RelationChange],
) -> StoreResult<()> {
    for change in changes {
        let mut add = conn.prepare_cached(
            "INSERT OR IGNORE INTO relations (owner_class, owner_id, key, target_class, target_id) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for id in &change.add {
            add.execute(params![
                owner_class,
                owner_id,
                change.key,
                change.target_class,
                id
            ])?;
        }
        let mut remove = conn.prepare_cached(
            "DELETE FROM relations WHERE owner_class = ?1 AND owner_id = ?2 AND key = ?3 AND target_id = ?4",
        )?;
        for id in &change.remove {
            remove.execute(params![owner_class, owner_id, change.key, id])?;
        }
    }
    Ok(())
}

/// Forgets the relation fields of a deleted object.
pub(crate) fn remove_owner(
    conn: &Connection,
    owner_class: &str,
    owner_id: &str,
) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM relations WHERE owner_class = ?1 AND owner_id = ?2")?
        .execute(params![owner_class, owner_id])?;
    Ok(())
}

pub async fn targets(
    db: &SqliteDb,
    owner_class: String,
    owner_id: String,
    key: String,
) -> StoreResult<Vec<String>> {
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT target_id FROM relations WHERE owner_class = ?1 AND owner_id = ?2 AND key = ?3 ORDER BY target_id LIMIT 10000",
        )?;
        let ids = stmt
            .query_map(params![owner_class, owner_id, key], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    })
    .await
}

pub async fn owners(
    db: &SqliteDb,
    owner_class: String,
    key: String,
    target_id: String,
) -> StoreResult<Vec<String>> {
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT owner_id FROM relations WHERE owner_class = ?1 AND key = ?2 AND target_id = ?3 ORDER BY owner_id LIMIT 10000",
        )?;
        let ids = stmt
            .query_map(params![owner_class, key, target_id], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    })
    .await
}

pub async fn is_relation(db: &SqliteDb, owner_class: String, key: String) -> StoreResult<bool> {
    db.read(move |conn| {
        Ok(conn
            .prepare_cached("SELECT 1 FROM relations WHERE owner_class = ?1 AND key = ?2 LIMIT 1")?
            .exists(params![owner_class, key])?)
    })
    .await
}
