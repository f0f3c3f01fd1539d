//! Class permissions on SQLite (see [`crate::store::class_permissions`]).

use rusqlite::{params, OptionalExtension};
use serde_json::Value;

use crate::store::sqlite::SqliteDb;
use crate::store::{StoreError, StoreResult};

fn parse(text: &str) -> StoreResult<Value> {
    serde_json::from_str(text).map_err(StoreError::internal)
}

pub async fn load(db: &SqliteDb, class: String) -> StoreResult<Option<Value>> {
    db.read(move |conn| {
        conn.prepare_cached("SELECT permissions FROM class_permissions WHERE class = ?1")?
            .query_row([class], |r| r.get::<_, String>(0))
            .optional()?
            .map(|t| parse(&t))
            .transpose()
    })
    .await
}

pub async fn load_all(db: &SqliteDb) -> StoreResult<Vec<(String, Value)>> {
    db.read(move |conn| {
        let mut stmt =
            conn.prepare_cached("SELECT class, permissions FROM class_permissions ORDER BY class")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(class, text)| Ok((class, parse(&text)?)))
            .collect()
    })
    .await
}

pub async fn save(db: &SqliteDb, class: String, value: Option<Value>, now: i64) -> StoreResult<()> {
    db.write(move |tx| {
        let conn = tx.conn();
        match value {
            Some(v) => conn
                .prepare_cached(
                    "INSERT INTO class_permissions (class, permissions, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (class) DO UPDATE SET permissions = excluded.permissions, updated_at = excluded.updated_at",
                )?
                .execute(params![class, v.to_string(), now])?,
            None => conn
                .prepare_cached("DELETE FROM class_permissions WHERE class = ?1")?
                .execute([class])?,
        };
        Ok(())
    })
    .await
}

pub async fn fields(db: &SqliteDb, class: String) -> StoreResult<Vec<String>> {
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT j.key FROM objects, json_each(objects.data) AS j WHERE objects.class = ?1",
        )?;
        let keys = stmt
            .query_map([class], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(keys)
    })
    .await
}
