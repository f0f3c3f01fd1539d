//! Users on PostgreSQL (see [`crate::store::users`]): lookups on the expression indexes of migration 3; a
//! create or change takes a transaction-scoped lock on the user class, so two instances cannot give two users
//! one username at the same time.

use deadpool_postgres::GenericClient;
use serde_json::{Map, Value};

use super::{apply, unique_value, UserKey, USER_CLASS};
use crate::store::objects::postgres::{row_of, COLUMNS};
use crate::store::objects::{encode_data, new_object_id, Row};
use crate::store::postgres::Pg;
use crate::store::{StoreError, StoreResult};

/// Held while a user is created or changed.
const USERS_LOCK: i64 = 0x6c63_7573_6572;

fn lookup_sql(key: UserKey) -> String {
    let field = key.field();
    format!(
        "SELECT {COLUMNS} FROM objects WHERE class = '_User' AND (data ->> '{field}') = $1 LIMIT 2"
    )
}

async fn lookup(c: &impl GenericClient, key: UserKey, value: &str) -> StoreResult<Vec<Row>> {
    let stmt = c.prepare_cached(&lookup_sql(key)).await?;
    Ok(c.query(&stmt, &[&value])
        .await?
        .iter()
        .map(row_of)
        .collect())
}

async fn check_unique(
    c: &impl GenericClient,
    data: &Map<String, Value>,
    keys: &[UserKey],
    id: &str,
) -> StoreResult<()> {
    for &key in keys {
        if let Some(value) = unique_value(data, key) {
            if lookup(c, key, value).await?.iter().any(|r| r.id != id) {
                return Err(StoreError::Taken(key.field()));
            }
        }
    }
    Ok(())
}

pub async fn find_by(pg: &Pg, key: UserKey, value: String) -> StoreResult<Option<Row>> {
    let client = pg.client().await?;
    Ok(lookup(&client, key, &value).await?.into_iter().next())
}

pub async fn get(pg: &Pg, id: String) -> StoreResult<Option<Row>> {
    let client = pg.client().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM objects WHERE class = '_User' AND id = $1"
        ))
        .await?;
    Ok(client.query_opt(&stmt, &[&id]).await?.as_ref().map(row_of))
}

pub async fn find_by_auth(
    pg: &Pg,
    platform: String,
    id_field: String,
    id: String,
) -> StoreResult<Option<Row>> {
    let client = pg.client().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM objects WHERE class = '_User'
               AND (data #>> ARRAY['authData', $1, $2]) = $3 ORDER BY seq LIMIT 1"
        ))
        .await?;
    Ok(client
        .query_opt(&stmt, &[&platform, &id_field, &id])
        .await?
        .as_ref()
        .map(row_of))
}

pub async fn create(pg: &Pg, data: Map<String, Value>, acl: Option<Value>) -> StoreResult<Row> {
    let data_text = encode_data(&data)?;
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&USERS_LOCK])
        .await?;
    check_unique(&tx, &data, &UserKey::UNIQUE, "").await?;
    let now = chrono::Utc::now().timestamp_millis();
    let id = new_object_id();
    tx.execute(
        "INSERT INTO classes (name) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&USER_CLASS],
    )
    .await?;
    tx.execute(
        "INSERT INTO objects (class, id, data, acl, created_at, updated_at)
         VALUES ('_User', $1, $2::text::jsonb, $3, $4, $4)",
        &[&id, &data_text, &acl, &now],
    )
    .await?;
    tx.commit().await?;
    Ok(Row {
        id,
        data,
        acl,
        created_at: now,
        updated_at: now,
    })
}

pub async fn set_fields(
    pg: &Pg,
    id: String,
    changes: Vec<(String, Option<Value>)>,
) -> StoreResult<Option<Row>> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&USERS_LOCK])
        .await?;
    let found = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM objects WHERE class = '_User' AND id = $1 FOR UPDATE"),
            &[&id],
        )
        .await?;
    let Some(mut row) = found.as_ref().map(row_of) else {
        return Ok(None);
    };
    let touched = apply(&mut row.data, changes);
    check_unique(&tx, &row.data, &touched, &id).await?;
    row.updated_at = chrono::Utc::now().timestamp_millis().max(row.updated_at);
    let data_text = encode_data(&row.data)?;
    tx.execute(
        "UPDATE objects SET data = $2::text::jsonb, updated_at = $3 WHERE class = '_User' AND id = $1",
        &[&id, &data_text, &row.updated_at],
    )
    .await?;
    tx.commit().await?;
    Ok(Some(row))
}
