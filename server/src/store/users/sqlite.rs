//! Users on SQLite (see [`crate::store::users`]): lookups on the expression indexes of migration 5; creates and
//! changes in the writer thread, so the uniqueness check and the write are one step.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::{apply, unique_value, UserKey, USER_CLASS};
use crate::store::objects::sqlite::{decode_row, load, RawRow};
use crate::store::objects::{encode_data, new_object_id, Row};
use crate::store::sqlite::SqliteDb;
use crate::store::{StoreError, StoreResult};

/// The lookup of each key, written out so each uses its index (`json_extract(data, '$.field')`).
fn lookup_sql(key: UserKey) -> &'static str {
    match key {
        UserKey::SessionToken => "SELECT id, data, acl, created_at, updated_at FROM objects WHERE class = '_User' AND json_extract(data, '$.sessionToken') = ?1 LIMIT 2",
        UserKey::Username => "SELECT id, data, acl, created_at, updated_at FROM objects WHERE class = '_User' AND json_extract(data, '$.username') = ?1 LIMIT 2",
        UserKey::Email => "SELECT id, data, acl, created_at, updated_at FROM objects WHERE class = '_User' AND json_extract(data, '$.email') = ?1 LIMIT 2",
        UserKey::Phone => "SELECT id, data, acl, created_at, updated_at FROM objects WHERE class = '_User' AND json_extract(data, '$.mobilePhoneNumber') = ?1 LIMIT 2",
    }
}

fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

/// The users whose `key` is `value` (at most two: enough to tell one from several).
fn lookup(conn: &Connection, key: UserKey, value: &str) -> StoreResult<Vec<Row>> {
    let mut stmt = conn.prepare_cached(lookup_sql(key))?;
    let rows = stmt
        .query_map([value], raw)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(decode_row).collect()
}

/// Refuses `data` when another user than `id` has one of its `keys`.
fn check_unique(
    conn: &Connection,
    data: &Map<String, Value>,
    keys: &[UserKey],
    id: &str,
) -> StoreResult<()> {
    for &key in keys {
        if let Some(value) = unique_value(data, key) {
            if lookup(conn, key, value)?.iter().any(|r| r.id != id) {
                return Err(StoreError::Taken(key.field()));
            }
        }
    }
    Ok(())
}

pub async fn find_by(db: &SqliteDb, key: UserKey, value: String) -> StoreResult<Option<Row>> {
    db.read(move |conn| Ok(lookup(conn, key, &value)?.into_iter().next()))
        .await
}

pub async fn get(db: &SqliteDb, id: String) -> StoreResult<Option<Row>> {
    db.read(move |conn| load(conn, USER_CLASS, &id)).await
}

pub async fn find_by_auth(
    db: &SqliteDb,
    platform: String,
    id_field: String,
    id: String,
) -> StoreResult<Option<Row>> {
    db.read(move |conn| {
        let path = format!("$.authData.{platform}.{id_field}");
        let mut stmt = conn.prepare_cached(
            "SELECT id, data, acl, created_at, updated_at FROM objects
             WHERE class = '_User' AND json_extract(data, ?1) = ?2 ORDER BY seq LIMIT 1",
        )?;
        let found = stmt.query_row(params![path, id], raw).optional()?;
        found.map(decode_row).transpose()
    })
    .await
}

pub async fn create(
    db: &SqliteDb,
    data: Map<String, Value>,
    acl: Option<Value>,
) -> StoreResult<Row> {
    db.write(move |tx| {
        let conn = tx.conn();
        check_unique(conn, &data, &UserKey::UNIQUE, "")?;
        let now = chrono::Utc::now().timestamp_millis();
        let id = new_object_id();
        let data_text = encode_data(&data)?;
        let acl_text = acl.as_ref().map(Value::to_string);
        conn.prepare_cached("INSERT OR IGNORE INTO classes (name) VALUES (?1)")?
            .execute([USER_CLASS])?;
        conn.prepare_cached(
            "INSERT INTO objects (class, id, data, acl, created_at, updated_at) VALUES ('_User', ?1, ?2, ?3, ?4, ?4)",
        )?
        .execute(params![id, data_text, acl_text, now])?;
        Ok(Row {
            id,
            data,
            acl,
            created_at: now,
            updated_at: now,
        })
    })
    .await
}

pub async fn set_fields(
    db: &SqliteDb,
    id: String,
    changes: Vec<(String, Option<Value>)>,
) -> StoreResult<Option<Row>> {
    db.write(move |tx| {
        let conn = tx.conn();
        let Some(mut row) = load(conn, USER_CLASS, &id)? else {
            return Ok(None);
        };
        let touched = apply(&mut row.data, changes);
        check_unique(conn, &row.data, &touched, &id)?;
        row.updated_at = chrono::Utc::now().timestamp_millis().max(row.updated_at);
        conn.prepare_cached(
            "UPDATE objects SET data = ?2, updated_at = ?3 WHERE class = '_User' AND id = ?1",
        )?
        .execute(params![id, encode_data(&row.data)?, row.updated_at])?;
        Ok(Some(row))
    })
    .await
}
