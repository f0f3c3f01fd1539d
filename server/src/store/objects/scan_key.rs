//! Scans ordered by a field (the Scan API's `scan_key`, LeanCloud's order for `GET /1.1/scan/classes/{class}`):
//! every object of a class by the field's value, ascending or descending, ties (and objects without the field,
//! which come last) in storage order. Paged by keyset, not offset: a page resumes after the last row served, by
//! its sort value and storage position, so each page costs the same however deep the scan is and no object is
//! served twice or skipped when others are added meanwhile.
//!
//! The field is compared as each backend orders its values (SQLite: numbers, then text, objects as their JSON
//! text; PostgreSQL: `jsonb`'s order); a class whose field holds one type (the documented use) scans the same on both.

use rusqlite::types::Value as SqlValue;
use serde_json::Value;

use super::Row;
use crate::store::db::Db;
use crate::store::postgres::{Params, Pg};
use crate::store::sqlite::SqliteDb;
use crate::store::{StoreError, StoreResult};

/// The order of a keyed scan: `field` (`objectId`, `createdAt`, `updatedAt` or a top-level field of the data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanKey {
    pub field: String,
    pub descending: bool,
}

impl ScanKey {
    /// `field` or `-field` (descending); a field name as in queries (letters, digits, `_`, a letter first).
    pub fn parse(raw: &str) -> Result<ScanKey, String> {
        let (descending, field) = match raw.trim().strip_prefix('-') {
            Some(field) => (true, field),
            None => (false, raw.trim()),
        };
        let mut chars = field.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("Invalid scan_key: {raw}."));
        }
        Ok(ScanKey {
            field: field.to_owned(),
            descending,
        })
    }
}

/// A page of a keyed scan: each row with its sort value (`null` without the field) and storage position.
pub type KeyedPage = Vec<(Value, i64, Row)>;

/// Up to `limit` objects of `class` in the order of `key`, after (`sort value`, `position`) when given.
pub async fn scan_by_key(
    db: &Db,
    class: String,
    key: ScanKey,
    after: Option<(Value, i64)>,
    limit: i64,
) -> StoreResult<KeyedPage> {
    match db {
        Db::Sqlite(db) => sqlite(db, class, key, after, limit).await,
        Db::Postgres(pg) => postgres(pg, class, key, after, limit).await,
    }
}

/// Where a page resumes, as placeholders: the last sort value's (none when it was `null`) and its position's.
type Resume = (Option<String>, String);

/// The `WHERE` and `ORDER BY` of a keyed page over the sort expression `k`.
fn page_sql(k: &str, key: &ScanKey, after: Option<&Resume>) -> (String, String) {
    let (op, dir) = if key.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let cond = match after {
        None => "TRUE".to_owned(),
        Some((None, seq)) => format!("({k}) IS NULL AND seq > {seq}"),
        Some((Some(value), seq)) => format!(
            "(({k}) IS NOT NULL AND (({k}) {op} {value} OR (({k}) = {value} AND seq > {seq}))) OR ({k}) IS NULL"
        ),
    };
    (cond, format!("({k}) IS NULL, {k} {dir}, seq"))
}

fn to_sql(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

fn from_sql(value: SqlValue) -> Value {
    match value {
        SqlValue::Null | SqlValue::Blob(_) => Value::Null,
        SqlValue::Integer(i) => Value::from(i),
        SqlValue::Real(f) => Value::from(f),
        SqlValue::Text(s) => Value::String(s),
    }
}

async fn sqlite(
    db: &SqliteDb,
    class: String,
    key: ScanKey,
    after: Option<(Value, i64)>,
    limit: i64,
) -> StoreResult<KeyedPage> {
    db.read(move |conn| {
        if !super::sqlite::class_exists(conn, &class)? {
            return Err(StoreError::ClassNotFound(class));
        }
        let mut values: Vec<SqlValue> = vec![SqlValue::Text(class), SqlValue::Integer(limit)];
        let mut push = |v: SqlValue| {
            values.push(v);
            format!("?{}", values.len())
        };
        let k = match key.field.as_str() {
            "objectId" => "id".to_owned(),
            "createdAt" => "created_at".to_owned(),
            "updatedAt" => "updated_at".to_owned(),
            field => format!(
                "json_extract(data, {})",
                push(SqlValue::Text(format!("$.\"{field}\"")))
            ),
        };
        let resume: Option<Resume> = after.as_ref().map(|(value, seq)| {
            let value = (!value.is_null()).then(|| push(to_sql(value)));
            (value, push(SqlValue::Integer(*seq)))
        });
        let (cond, order) = page_sql(&k, &key, resume.as_ref());
        let sql = format!(
            "SELECT seq, id, data, acl, created_at, updated_at, {k} FROM objects
             WHERE class = ?1 AND ({cond}) ORDER BY {order} LIMIT ?2"
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values.iter()), |r| {
                let raw: super::sqlite::RawRow =
                    (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
                Ok((r.get::<_, SqlValue>(6)?, r.get::<_, i64>(0)?, raw))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(k, seq, raw)| Ok((from_sql(k), seq, super::sqlite::decode_row(raw)?)))
            .collect()
    })
    .await
}

async fn postgres(
    pg: &Pg,
    class: String,
    key: ScanKey,
    after: Option<(Value, i64)>,
    limit: i64,
) -> StoreResult<KeyedPage> {
    let client = pg.client().await?;
    if !super::postgres::class_exists(&client, &class).await? {
        return Err(StoreError::ClassNotFound(class));
    }
    let mut params = Params::default();
    let class_p = params.push(class);
    let limit_p = params.push(limit);
    let k = match key.field.as_str() {
        "objectId" => "to_jsonb(id)".to_owned(),
        "createdAt" => "to_jsonb(created_at)".to_owned(),
        "updatedAt" => "to_jsonb(updated_at)".to_owned(),
        field => format!("(data -> {}::text)", params.push(field.to_owned())),
    };
    // Every placeholder must appear in the statement: a resume point without a value pushes none.
    let resume: Option<Resume> = after.map(|(value, seq)| {
        let value = (!value.is_null()).then(|| format!("{}::jsonb", params.push(value)));
        (value, params.push(seq))
    });
    let (cond, order) = page_sql(&k, &key, resume.as_ref());
    let sql = format!(
        "SELECT {}, seq, {k} FROM objects WHERE class = {class_p} AND ({cond}) ORDER BY {order} LIMIT {limit_p}",
        super::postgres::COLUMNS
    );
    let rows = client.query(&sql, &params.refs()).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let k: Option<Value> = r.get(6);
            (
                k.unwrap_or(Value::Null),
                r.get(5),
                super::postgres::row_of(r),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_keys_are_fields_ascending_or_descending() {
        assert_eq!(
            Ok(ScanKey {
                field: "random".into(),
                descending: false
            }),
            ScanKey::parse("random")
        );
        assert_eq!(
            Ok(ScanKey {
                field: "createdAt".into(),
                descending: true
            }),
            ScanKey::parse("-createdAt")
        );
        for bad in ["", "-", "a.b", "1a", "a\"", "a b"] {
            assert!(ScanKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sort_values_round_trip_through_sqlite_values() {
        for v in [
            Value::Null,
            Value::from(3),
            Value::from(2.5),
            Value::from("x"),
        ] {
            assert_eq!(v, from_sql(to_sql(&v)));
        }
    }
}
