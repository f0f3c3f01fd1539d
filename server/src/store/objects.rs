//! Storage-API objects: ACL checks and create/update/delete/get/query, on SQLite here and on PostgreSQL in
//! its child [`postgres`] (the `__op` interpreter is in [`super::ops`]).

pub(crate) mod postgres;

use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

use crate::store::db::Db;
use crate::store::ops::{apply_body, RESERVED};
use crate::store::time::iso_millis;
use crate::store::{query, Caller, StoreError, StoreResult};

pub const CONVERSATION: &str = "_Conversation";
/// Largest stored object (its fields as JSON), as LeanCloud's 128 KB limit.
pub const MAX_OBJECT_BYTES: usize = 128 * 1024;

pub(crate) fn encode_data(data: &Map<String, Value>) -> StoreResult<String> {
    let text = serde_json::to_string(data).map_err(StoreError::internal)?;
    if text.len() > MAX_OBJECT_BYTES {
        return Err(StoreError::TooLarge(format!(
            "An object may be at most {MAX_OBJECT_BYTES} bytes of JSON; this one would be {}.",
            text.len()
        )));
    }
    Ok(text)
}

/// One stored object.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub data: Map<String, Value>,
    pub acl: Option<Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Row {
    /// The wire form: fields, `objectId`, ISO `createdAt`/`updatedAt`, and `ACL` when asked for.
    pub fn render(&self, with_acl: bool) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("objectId".into(), json!(self.id));
        for (k, v) in &self.data {
            // Stored before keys were checked whole: never let data stand in for what the server owns.
            if !RESERVED.contains(&k.as_str()) && k != "ACL" {
                out.insert(k.clone(), v.clone());
            }
        }
        if with_acl {
            if let Some(acl) = &self.acl {
                out.insert("ACL".into(), acl.clone());
            }
        }
        out.insert("createdAt".into(), json!(iso_millis(self.created_at)));
        out.insert("updatedAt".into(), json!(iso_millis(self.updated_at)));
        out
    }

    /// The form `where` is evaluated on: dates as Date objects.
    pub(crate) fn match_view(&self) -> Map<String, Value> {
        let mut out = self.data.clone();
        out.insert("objectId".into(), json!(self.id));
        out.insert(
            "createdAt".into(),
            json!({"__type": "Date", "iso": iso_millis(self.created_at)}),
        );
        out.insert(
            "updatedAt".into(),
            json!({"__type": "Date", "iso": iso_millis(self.updated_at)}),
        );
        if let Some(acl) = &self.acl {
            out.insert("ACL".into(), acl.clone());
        }
        out
    }

    /// ACL check for requests without the master key. There are no users or sessions, so only the public
    /// (`*`) entry can grant access.
    pub fn allows(&self, caller: Caller, perm: &str) -> bool {
        match (&self.acl, caller) {
            (_, Caller::Master) | (None, _) => true,
            (Some(acl), Caller::App) => acl
                .get("*")
                .and_then(|e| e.get(perm))
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }
}

pub fn validate_class_name(class: &str) -> StoreResult<()> {
    let mut chars = class.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && class.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidClassName(class.to_string()))
    }
}

/// `_Conversation` needs the master key (LeanCloud's default class permissions for it).
pub fn check_class_access(class: &str, caller: Caller) -> StoreResult<()> {
    if class == CONVERSATION {
        caller.require_master()
    } else {
        Ok(())
    }
}

/// The member-set key of a `unique: true` conversation.
pub(crate) fn unique_key(class: &str, data: &Map<String, Value>) -> Option<String> {
    if class != CONVERSATION || data.get("unique") != Some(&Value::Bool(true)) {
        return None;
    }
    let members: BTreeSet<String> = match data.get("m") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect(),
        _ => BTreeSet::new(),
    };
    Some(serde_json::to_string(&members).unwrap_or_default())
}

pub fn new_object_id() -> String {
    let secs = chrono::Utc::now().timestamp() as u32;
    let random: [u8; 8] = rand::random();
    format!("{secs:08x}{}", hex::encode(random))
}

fn load(conn: &Connection, class: &str, id: &str) -> StoreResult<Option<Row>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, data, acl, created_at, updated_at FROM objects WHERE class = ?1 AND id = ?2",
    )?;
    let raw = stmt
        .query_row(params![class, id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get(3)?,
                r.get(4)?,
            ))
        })
        .optional()?;
    raw.map(decode_row).transpose()
}

pub(crate) type RawRow = (String, String, Option<String>, i64, i64);

pub(crate) fn decode_row((id, data, acl, created_at, updated_at): RawRow) -> StoreResult<Row> {
    let data = match serde_json::from_str::<Value>(&data).map_err(StoreError::internal)? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let acl = acl
        .map(|a| serde_json::from_str(&a))
        .transpose()
        .map_err(StoreError::internal)?;
    Ok(Row {
        id,
        data,
        acl,
        created_at,
        updated_at,
    })
}

fn class_exists(conn: &Connection, class: &str) -> StoreResult<bool> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM classes WHERE name = ?1")?;
    Ok(stmt.exists([class])?)
}

/// Outcome of a create.
#[derive(Debug)]
pub struct Created {
    /// A `unique: true` conversation with the same members existed already: nothing was created.
    pub existed: bool,
    pub body: Map<String, Value>,
    pub id: String,
}

/// What a create stores: the fields, the ACL and the unique-member key.
pub(crate) type Prepared = (Map<String, Value>, Option<Value>, Option<String>);

/// The fields, ACL and unique-member key a create of `body` in `class` stores.
pub(crate) fn prepare_create(class: &str, body: Map<String, Value>) -> StoreResult<Prepared> {
    let mut data = Map::new();
    let mut acl = None;
    apply_body(&mut data, &mut acl, body)?;
    let key = unique_key(class, &data);
    Ok((data, acl, key))
}

/// A create's answer: the whole object with `fetchWhenSave`, else its id and creation time.
pub(crate) fn created_body(row: &Row, fetch_when_save: bool) -> Map<String, Value> {
    if fetch_when_save {
        row.render(false)
    } else {
        let mut m = Map::new();
        m.insert("objectId".into(), json!(row.id));
        m.insert("createdAt".into(), json!(iso_millis(row.created_at)));
        m
    }
}

/// Checks an update of `row` by `caller` under the condition `where_`, applies `body` to it and moves its
/// `updatedAt`. Returns whether the caller may read the row (what the answer may show).
pub(crate) fn apply_update(
    row: &mut Row,
    caller: Caller,
    body: Map<String, Value>,
    where_: Option<&Value>,
) -> StoreResult<bool> {
    if !row.allows(caller, "write") {
        return Err(StoreError::Forbidden("write"));
    }
    // A condition on fields, or the fields in the answer, would show what the read ACL hides.
    let readable = row.allows(caller, "read");
    if let Some(w) = where_ {
        if !readable {
            return Err(StoreError::Forbidden("read"));
        }
        if !query::matches(&row.match_view(), w)? {
            return Err(StoreError::NoEffect);
        }
    }
    apply_body(&mut row.data, &mut row.acl, body)?;
    row.updated_at = chrono::Utc::now().timestamp_millis().max(row.updated_at);
    Ok(readable)
}

/// An update's answer: the whole object with `fetchWhenSave` (when readable), else its id and update time.
pub(crate) fn updated_body(row: &Row, fetch_when_save: bool, readable: bool) -> Map<String, Value> {
    if fetch_when_save && readable {
        row.render(false)
    } else {
        let mut m = Map::new();
        m.insert("objectId".into(), json!(row.id));
        m.insert("updatedAt".into(), json!(iso_millis(row.updated_at)));
        m
    }
}

/// Whether `caller` may delete `row` under the condition `where_`.
pub(crate) fn check_delete(row: &Row, caller: Caller, where_: Option<&Value>) -> StoreResult<()> {
    if !row.allows(caller, "write") {
        return Err(StoreError::Forbidden("delete"));
    }
    if let Some(w) = where_ {
        if !row.allows(caller, "read") {
            return Err(StoreError::Forbidden("read"));
        }
        if !query::matches(&row.match_view(), w)? {
            return Err(StoreError::NoEffect);
        }
    }
    Ok(())
}

pub async fn create(
    db: &Db,
    class: String,
    body: Map<String, Value>,
    fetch_when_save: bool,
) -> StoreResult<Created> {
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => return postgres::create(pg, class, body, fetch_when_save).await,
    };
    db.write(move |tx| {
        let conn = tx.conn();
        let (data, acl, key) = prepare_create(&class, body)?;
        if let Some(key) = &key {
            let existing: Option<String> = conn
                .prepare_cached("SELECT id FROM objects WHERE class = ?1 AND unique_key = ?2 ORDER BY seq LIMIT 1")?
                .query_row(params![class, key], |r| r.get(0))
                .optional()?;
            if let Some(id) = existing {
                let row = load(conn, &class, &id)?.ok_or_else(|| StoreError::internal("unique row vanished"))?;
                return Ok(Created { existed: true, body: row.render(false), id });
            }
        }
        let now = chrono::Utc::now().timestamp_millis();
        let id = new_object_id();
        let data_text = encode_data(&data)?;
        let acl_text = acl.as_ref().map(Value::to_string);
        conn.prepare_cached("INSERT OR IGNORE INTO classes (name) VALUES (?1)")?.execute([&class])?;
        conn.prepare_cached(
            "INSERT INTO objects (class, id, data, acl, created_at, updated_at, unique_key) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
        )?
        .execute(params![class, id, data_text, acl_text, now, key])?;
        let row = Row { id: id.clone(), data, acl, created_at: now, updated_at: now };
        Ok(Created { existed: false, body: created_body(&row, fetch_when_save), id })
    })
    .await
}

pub async fn update(
    db: &Db,
    caller: Caller,
    class: String,
    id: String,
    body: Map<String, Value>,
    where_: Option<Value>,
    fetch_when_save: bool,
) -> StoreResult<Map<String, Value>> {
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => {
            return postgres::update(pg, caller, class, id, body, where_, fetch_when_save).await
        }
    };
    db.write_in(caller.lane(), move |tx| {
        let conn = tx.conn();
        let Some(mut row) = load(conn, &class, &id)? else {
            return Err(StoreError::NotFound { class, id });
        };
        let readable = apply_update(&mut row, caller, body, where_.as_ref())?;
        let data_text = encode_data(&row.data)?;
        let acl_text = row.acl.as_ref().map(Value::to_string);
        conn.prepare_cached(
            "UPDATE objects SET data = ?3, acl = ?4, updated_at = ?5, unique_key = ?6 WHERE class = ?1 AND id = ?2",
        )?
        .execute(params![class, id, data_text, acl_text, row.updated_at, unique_key(&class, &row.data)])?;
        Ok(updated_body(&row, fetch_when_save, readable))
    })
    .await
}

/// Deleting a missing object answers `{}` like a successful delete, so a retried delete is harmless.
pub async fn delete(
    db: &Db,
    caller: Caller,
    class: String,
    id: String,
    where_: Option<Value>,
) -> StoreResult<()> {
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => return postgres::delete(pg, caller, class, id, where_).await,
    };
    db.write_in(caller.lane(), move |tx| {
        let conn = tx.conn();
        let Some(row) = load(conn, &class, &id)? else {
            return Ok(());
        };
        check_delete(&row, caller, where_.as_ref())?;
        conn.prepare_cached("DELETE FROM objects WHERE class = ?1 AND id = ?2")?
            .execute(params![class, id])?;
        Ok(())
    })
    .await
}

/// `None` when missing or not readable (the API answers `{}` then).
pub async fn get(
    db: &Db,
    caller: Caller,
    class: String,
    id: String,
    with_acl: bool,
) -> StoreResult<Option<Map<String, Value>>> {
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => return postgres::get(pg, caller, class, id, with_acl).await,
    };
    db.read(move |conn| {
        if !class_exists(conn, &class)? {
            return Err(StoreError::ClassNotFound(class));
        }
        Ok(load(conn, &class, &id)?
            .filter(|r| r.allows(caller, "read"))
            .map(|r| r.render(with_acl)))
    })
    .await
}

/// The Scan API's page: up to `limit` objects of `class` stored after position `after` (0: from the start),
/// in storage order, each with its position (the next page's `after`). Master key only, checked by the caller.
pub async fn scan(db: &Db, class: String, after: i64, limit: i64) -> StoreResult<Vec<(i64, Row)>> {
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => return postgres::scan(pg, class, after, limit).await,
    };
    db.read(move |conn| {
        if !class_exists(conn, &class)? {
            return Err(StoreError::ClassNotFound(class));
        }
        let mut stmt = conn.prepare_cached(
            "SELECT seq, id, data, acl, created_at, updated_at FROM objects
             WHERE class = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![class, after, limit], |r| {
                let raw: RawRow = (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
                Ok((r.get::<_, i64>(0)?, raw))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(seq, raw)| Ok((seq, decode_row(raw)?)))
            .collect()
    })
    .await
}

/// Synchronous read for the inspector: the full object with its ACL.
pub fn get_blocking(db: &Db, class: &str, id: &str) -> StoreResult<Option<Map<String, Value>>> {
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => return postgres::get_blocking(pg, class, id),
    };
    db.read_blocking(|conn| Ok(load(conn, class, id)?.map(|r| r.render(true))))
}

#[derive(Debug, Clone, Default)]
pub struct QueryParams {
    pub where_: Option<Value>,
    pub keys: Option<Vec<String>>,
    pub limit: usize,
    pub skip: usize,
    pub order: Vec<(String, bool)>,
    pub count: bool,
    pub with_acl: bool,
    /// Most rows the query may read (after the SQL-side conditions); more is an error, not a slow answer.
    pub max_scan: usize,
}

pub use crate::protocol::limits::MAX_SCANNED_ROWS;

/// A condition at the top level of `where` that SQL can check before any JSON is decoded in Rust.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Narrowing<'a> {
    /// `objectId` equal to a string.
    IdIs(&'a str),
    /// `objectId` `$in` a list of strings.
    IdIn(Vec<&'a str>),
    /// A plain field equal to a string or to `true`/`false`, as the value or as an array element.
    Field(&'a str, &'a Value),
}

/// The conditions of `where` each backend narrows the rows with (SQLite below, PostgreSQL in its child
/// module). They only narrow: the full matcher still runs on what is left, so the answer is the same.
pub(crate) fn narrowings(where_: Option<&Value>) -> Vec<Narrowing<'_>> {
    let Some(Value::Object(conds)) = where_ else {
        return Vec::new();
    };
    let plain = |k: &str| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let mut out = Vec::new();
    for (key, cond) in conds {
        if !plain(key) {
            continue;
        }
        match (key.as_str(), cond) {
            ("objectId", Value::String(id)) => out.push(Narrowing::IdIs(id)),
            ("objectId", Value::Object(op)) => {
                if let Some(Value::Array(ids)) = op.get("$in") {
                    if op.len() == 1 && ids.iter().all(Value::is_string) {
                        out.push(Narrowing::IdIn(
                            ids.iter().filter_map(Value::as_str).collect(),
                        ));
                    }
                }
            }
            ("createdAt" | "updatedAt" | "ACL", _) => {}
            (_, Value::String(_) | Value::Bool(_)) => out.push(Narrowing::Field(key, cond)),
            _ => {}
        }
    }
    out
}

/// The SQLite side of [`narrowings`]: SQL appended to the `WHERE` and its arguments (from `?2`).
fn prefilter(where_: Option<&Value>) -> (String, Vec<String>) {
    let mut sql = String::new();
    let mut args: Vec<String> = Vec::new();
    for narrowing in narrowings(where_) {
        let n = args.len() + 2;
        match narrowing {
            Narrowing::IdIs(id) => {
                sql.push_str(&format!(" AND id = ?{n}"));
                args.push(id.to_string());
            }
            Narrowing::IdIn(ids) => {
                sql.push_str(&format!(" AND id IN (SELECT value FROM json_each(?{n}))"));
                args.push(json!(ids).to_string());
            }
            Narrowing::Field(key, Value::Bool(b)) => {
                // An array may hold the value as an element: leave those to the matcher.
                let t = if *b { "true" } else { "false" };
                sql.push_str(&format!(" AND json_type(data, ?{n}) IN ('{t}', 'array')"));
                args.push(format!("$.{key}"));
            }
            Narrowing::Field(key, v) => {
                sql.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM json_each(data, ?{n}) j WHERE j.type = 'text' AND j.value = ?{})",
                    n + 1
                ));
                args.push(format!("$.{key}"));
                args.push(v.as_str().unwrap_or_default().to_string());
            }
        }
    }
    (sql, args)
}

pub async fn find(db: &Db, caller: Caller, class: String, q: QueryParams) -> StoreResult<Value> {
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => return postgres::find(pg, caller, class, q).await,
    };
    db.read_in(caller.lane(), move |conn| {
        if !class_exists(conn, &class)? {
            return Err(StoreError::ClassNotFound(class));
        }
        let (filter, args) = prefilter(q.where_.as_ref());
        let sql = format!(
            "SELECT id, data, acl, created_at, updated_at FROM objects WHERE class = ?1{filter} ORDER BY seq LIMIT {}",
            q.max_scan + 1
        );
        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&class];
        params.extend(args.iter().map(|a| a as &dyn rusqlite::ToSql));
        let mut stmt = conn.prepare_cached(&sql)?;
        let raws = stmt
            .query_map(params.as_slice(), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
            .collect::<Result<Vec<RawRow>, _>>()?;
        if raws.len() > q.max_scan {
            return Err(StoreError::InvalidQuery(format!(
                "The query would read more than {} objects; narrow it with an equality on objectId or another field.",
                q.max_scan
            )));
        }
        let rows = raws.into_iter().map(decode_row).collect::<StoreResult<Vec<Row>>>()?;
        select(rows, caller, &q)
    })
    .await
}

/// What a query answers over the rows SQL selected: the caller's read ACL, the full `where` matcher, `order`,
/// `skip`/`limit`, `keys` and `count`. Pure (the fuzz target `server_body` calls it).
pub fn select(rows: Vec<Row>, caller: Caller, q: &QueryParams) -> StoreResult<Value> {
    let mut hits: Vec<(Row, Map<String, Value>)> = Vec::new();
    for row in rows {
        if !row.allows(caller, "read") {
            continue;
        }
        let view = row.match_view();
        if let Some(w) = &q.where_ {
            if !query::matches(&view, w)? {
                continue;
            }
        }
        hits.push((row, view));
    }
    let count = hits.len();
    if !q.order.is_empty() {
        hits.sort_by(|(_, a), (_, b)| {
            for (field, desc) in &q.order {
                let o = query::sort_cmp(query::lookup(a, field), query::lookup(b, field));
                let o = if *desc { o.reverse() } else { o };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    let results: Vec<Value> = hits
        .into_iter()
        .skip(q.skip)
        .take(q.limit)
        .map(|(row, _)| {
            let mut out = row.render(q.with_acl);
            if let Some(keys) = &q.keys {
                out.retain(|k, _| {
                    RESERVED.contains(&k.as_str())
                        || (k == "ACL" && q.with_acl)
                        || keys
                            .iter()
                            .any(|want| want.split('.').next() == Some(k.as_str()))
                });
            }
            Value::Object(out)
        })
        .collect();
    let mut body = json!({"results": results});
    if q.count {
        body["count"] = json!(count);
    }
    Ok(body)
}

/// The conversation fields the messaging API needs, read inside the writer's transaction.
#[derive(Debug, Clone)]
pub struct ConversationKind {
    pub system: bool,
    pub transient: bool,
    /// `m`, the member ids (for delivery).
    pub members: Vec<String>,
}

impl ConversationKind {
    /// From a conversation's fields: `sys` and `tr` count only when `true` (a stored `"true"` or `1` is not).
    pub(crate) fn from_data(data: &Map<String, Value>) -> ConversationKind {
        ConversationKind {
            system: data.get("sys") == Some(&Value::Bool(true)),
            transient: data.get("tr") == Some(&Value::Bool(true)),
            members: match data.get("m") {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            },
        }
    }
}

/// The conversation `id`'s kind and members, or `None` when there is no such conversation.
pub async fn conversation(db: &Db, id: String) -> StoreResult<Option<ConversationKind>> {
    match db {
        Db::Sqlite(db) => db.read(move |conn| conversation_kind(conn, &id)).await,
        Db::Postgres(pg) => postgres::conversation(pg, &id).await,
    }
}

pub fn conversation_kind(conn: &Connection, id: &str) -> StoreResult<Option<ConversationKind>> {
    let mut stmt = conn.prepare_cached(
        // json_type: a field stored as "true", 1.0 or an object is simply not `true` (never a type error).
        "SELECT json_type(data, '$.sys') = 'true', json_type(data, '$.tr') = 'true', json_extract(data, '$.m') FROM objects WHERE class = '_Conversation' AND id = ?1",
    )?;
    let kind = stmt
        .query_row([id], |r| {
            let truthy = |v: Option<i64>| v.unwrap_or(0) != 0;
            let members: Option<String> = r.get(2)?;
            Ok(ConversationKind {
                system: truthy(r.get(0)?),
                transient: truthy(r.get(1)?),
                members: members
                    .and_then(|m| serde_json::from_str::<Vec<Value>>(&m).ok())
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            })
        })
        .optional()?;
    Ok(kind)
}
