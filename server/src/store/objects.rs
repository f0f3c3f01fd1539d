//! Storage-API objects: `__op` application, ACL checks, create/update/delete/get/query against SQLite.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use axum::http::StatusCode;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

use crate::auth::Access;
use crate::error::{codes, AppError};
use crate::store::db::{iso_millis, Db};
use crate::store::query;

pub const CONVERSATION: &str = "_Conversation";
const RESERVED: [&str; 3] = ["objectId", "createdAt", "updatedAt"];

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
            out.insert(k.clone(), v.clone());
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
    fn match_view(&self) -> Map<String, Value> {
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
    fn allows(&self, access: Access, perm: &str) -> bool {
        match (&self.acl, access) {
            (_, Access::Master) | (None, _) => true,
            (Some(acl), Access::App) => acl
                .get("*")
                .and_then(|e| e.get(perm))
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }
}

pub fn validate_class_name(class: &str) -> Result<(), AppError> {
    let mut chars = class.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && class.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(AppError::bad_request(
            codes::INVALID_CLASS_NAME,
            format!("Invalid class name: {class}."),
        ))
    }
}

/// `_Conversation` needs the master key (LeanCloud's default class permissions for it).
pub fn check_class_access(class: &str, access: Access) -> Result<(), AppError> {
    if class == CONVERSATION {
        access.require_master()
    } else {
        Ok(())
    }
}

fn validate_key(key: &str) -> Result<(), AppError> {
    let first = key.split('.').next().unwrap_or("");
    let mut chars = first.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.split('.').any(str::is_empty);
    if ok {
        Ok(())
    } else {
        Err(AppError::bad_request(
            codes::INVALID_KEY_NAME,
            format!("Invalid key name: {key}."),
        ))
    }
}

fn invalid_type(msg: impl Into<String>) -> AppError {
    AppError::bad_request(codes::INVALID_TYPE, msg)
}

fn objects_arg(op: &Map<String, Value>) -> Result<Vec<Value>, AppError> {
    match op.get("objects") {
        Some(Value::Array(items)) => Ok(items.clone()),
        _ => Err(invalid_type("objects must be an array")),
    }
}

fn number_add(current: Option<&Value>, amount: &Value, sign: i64) -> Result<Value, AppError> {
    let cur = match current {
        None | Some(Value::Null) => json!(0),
        Some(v @ Value::Number(_)) => v.clone(),
        Some(_) => return Err(invalid_type("Increment applied to a non-number field")),
    };
    match (cur.as_i64(), amount.as_i64()) {
        (Some(a), Some(b)) => Ok(json!(a.saturating_add(sign * b))),
        _ => {
            let (Some(a), Some(b)) = (cur.as_f64(), amount.as_f64()) else {
                return Err(invalid_type("amount must be a number"));
            };
            Ok(json!(a + sign as f64 * b))
        }
    }
}

fn current_array(current: Option<&Value>) -> Result<Vec<Value>, AppError> {
    match current {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(invalid_type("array operation applied to a non-array field")),
    }
}

/// The new value of a field after `value` (plain or `__op`) is applied; `None` = unset.
fn apply_value(current: Option<&Value>, value: Value) -> Result<Option<Value>, AppError> {
    let Some(op) = value
        .as_object()
        .and_then(|m| m.get("__op"))
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Ok(Some(value));
    };
    let Value::Object(args) = value else {
        return Ok(None);
    };
    let new = match op.as_str() {
        "Delete" => return Ok(None),
        "Increment" => number_add(current, args.get("amount").unwrap_or(&json!(1)), 1)?,
        "Decrement" => number_add(current, args.get("amount").unwrap_or(&json!(1)), -1)?,
        "Add" => {
            let mut items = current_array(current)?;
            items.extend(objects_arg(&args)?);
            Value::Array(items)
        }
        "AddUnique" => {
            let mut items = current_array(current)?;
            for obj in objects_arg(&args)? {
                if !items.contains(&obj) {
                    items.push(obj);
                }
            }
            Value::Array(items)
        }
        "Remove" => {
            let remove = objects_arg(&args)?;
            let items = current_array(current)?
                .into_iter()
                .filter(|i| !remove.contains(i))
                .collect();
            Value::Array(items)
        }
        "BitAnd" | "BitOr" | "BitXor" => {
            let cur = match current {
                None | Some(Value::Null) => 0,
                Some(v) => v
                    .as_i64()
                    .ok_or_else(|| invalid_type("bit operation on a non-integer field"))?,
            };
            let arg = args
                .get("value")
                .and_then(Value::as_i64)
                .ok_or_else(|| invalid_type("value must be an integer"))?;
            json!(match op.as_str() {
                "BitAnd" => cur & arg,
                "BitOr" => cur | arg,
                _ => cur ^ arg,
            })
        }
        "Batch" => {
            let Some(Value::Array(ops)) = args.get("ops") else {
                return Err(invalid_type("Batch needs ops"));
            };
            let mut cur = current.cloned();
            for sub in ops {
                cur = apply_value(cur.as_ref(), sub.clone())?;
            }
            return Ok(cur);
        }
        other => {
            return Err(AppError::bad_request(
                codes::INTERNAL,
                format!("Unsupported __op: {other}."),
            ));
        }
    };
    Ok(Some(new))
}

fn set_path(data: &mut Map<String, Value>, key: &str, value: Value) -> Result<(), AppError> {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, parents) = parts
        .split_last()
        .ok_or_else(|| AppError::bad_request(codes::INVALID_KEY_NAME, "empty key"))?;
    let mut map = data;
    for part in parents {
        let entry = map
            .entry((*part).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        map = match entry {
            Value::Object(m) => m,
            _ => return Err(invalid_type("cannot set a nested key")),
        };
    }
    let new = apply_value(map.get(*last), value)?;
    match new {
        Some(v) => map.insert((*last).to_string(), v),
        None => map.remove(*last),
    };
    Ok(())
}

/// Applies a request body to `data`/`acl`. Reserved keys are ignored.
fn apply_body(
    data: &mut Map<String, Value>,
    acl: &mut Option<Value>,
    body: Map<String, Value>,
) -> Result<(), AppError> {
    for (key, value) in body {
        if RESERVED.contains(&key.as_str()) {
            continue;
        }
        if key == "ACL" {
            *acl = match apply_value(acl.as_ref(), value)? {
                None | Some(Value::Null) => None,
                Some(v @ Value::Object(_)) => Some(v),
                Some(_) => return Err(invalid_type("ACL must be an object")),
            };
            continue;
        }
        validate_key(&key)?;
        set_path(data, &key, value)?;
    }
    Ok(())
}

/// The member-set key of a `unique: true` conversation.
fn unique_key(class: &str, data: &Map<String, Value>) -> Option<String> {
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

fn load(conn: &Connection, class: &str, id: &str) -> Result<Option<Row>, AppError> {
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

type RawRow = (String, String, Option<String>, i64, i64);

fn decode_row((id, data, acl, created_at, updated_at): RawRow) -> Result<Row, AppError> {
    let data = match serde_json::from_str::<Value>(&data).map_err(AppError::internal)? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let acl = acl
        .map(|a| serde_json::from_str(&a))
        .transpose()
        .map_err(AppError::internal)?;
    Ok(Row {
        id,
        data,
        acl,
        created_at,
        updated_at,
    })
}

fn class_exists(conn: &Connection, class: &str) -> Result<bool, AppError> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM classes WHERE name = ?1")?;
    Ok(stmt.exists([class])?)
}

/// Outcome of a create.
#[derive(Debug)]
pub struct Created {
    pub status: StatusCode,
    pub body: Map<String, Value>,
    pub id: String,
}

pub async fn create(
    db: &Db,
    class: String,
    body: Map<String, Value>,
    fetch_when_save: bool,
) -> Result<Created, AppError> {
    db.write(move |conn| {
        let mut data = Map::new();
        let mut acl = None;
        apply_body(&mut data, &mut acl, body)?;
        let key = unique_key(&class, &data);
        if let Some(key) = &key {
            let existing: Option<String> = conn
                .prepare_cached("SELECT id FROM objects WHERE class = ?1 AND unique_key = ?2 ORDER BY seq LIMIT 1")?
                .query_row(params![class, key], |r| r.get(0))
                .optional()?;
            if let Some(id) = existing {
                let row = load(conn, &class, &id)?.ok_or_else(|| AppError::internal("unique row vanished"))?;
                return Ok(Created { status: StatusCode::OK, body: row.render(false), id });
            }
        }
        let now = chrono::Utc::now().timestamp_millis();
        let id = new_object_id();
        let data_text = serde_json::to_string(&data).map_err(AppError::internal)?;
        let acl_text = acl.as_ref().map(Value::to_string);
        conn.prepare_cached("INSERT OR IGNORE INTO classes (name) VALUES (?1)")?.execute([&class])?;
        conn.prepare_cached(
            "INSERT INTO objects (class, id, data, acl, created_at, updated_at, unique_key) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
        )?
        .execute(params![class, id, data_text, acl_text, now, key])?;
        let row = Row { id: id.clone(), data, acl, created_at: now, updated_at: now };
        let body = if fetch_when_save {
            row.render(false)
        } else {
            let mut m = Map::new();
            m.insert("objectId".into(), json!(id));
            m.insert("createdAt".into(), json!(iso_millis(now)));
            m
        };
        Ok(Created { status: StatusCode::CREATED, body, id })
    })
    .await
}

fn no_effect() -> AppError {
    AppError::bad_request(
        codes::NO_EFFECT,
        "No effect on updating/deleting a document.",
    )
}

fn acl_denied(op: &str) -> AppError {
    AppError::new(
        StatusCode::FORBIDDEN,
        codes::FORBIDDEN,
        format!("Forbidden to {op} by the object's ACL."),
    )
}

pub async fn update(
    db: &Db,
    access: Access,
    class: String,
    id: String,
    body: Map<String, Value>,
    where_: Option<Value>,
    fetch_when_save: bool,
) -> Result<Map<String, Value>, AppError> {
    db.write(move |conn| {
        let Some(mut row) = load(conn, &class, &id)? else {
            return Err(AppError::not_found(&class, &id));
        };
        if !row.allows(access, "write") {
            return Err(acl_denied("write"));
        }
        if let Some(w) = &where_ {
            if !query::matches(&row.match_view(), w)? {
                return Err(no_effect());
            }
        }
        apply_body(&mut row.data, &mut row.acl, body)?;
        let now = chrono::Utc::now().timestamp_millis().max(row.updated_at);
        row.updated_at = now;
        let data_text = serde_json::to_string(&row.data).map_err(AppError::internal)?;
        let acl_text = row.acl.as_ref().map(Value::to_string);
        conn.prepare_cached(
            "UPDATE objects SET data = ?3, acl = ?4, updated_at = ?5, unique_key = ?6 WHERE class = ?1 AND id = ?2",
        )?
        .execute(params![class, id, data_text, acl_text, now, unique_key(&class, &row.data)])?;
        if fetch_when_save {
            Ok(row.render(false))
        } else {
            let mut m = Map::new();
            m.insert("objectId".into(), json!(id));
            m.insert("updatedAt".into(), json!(iso_millis(now)));
            Ok(m)
        }
    })
    .await
}

/// Deleting a missing object answers `{}` like a successful delete, so a retried delete is harmless.
pub async fn delete(
    db: &Db,
    access: Access,
    class: String,
    id: String,
    where_: Option<Value>,
) -> Result<(), AppError> {
    db.write(move |conn| {
        let Some(row) = load(conn, &class, &id)? else {
            return Ok(());
        };
        if !row.allows(access, "write") {
            return Err(acl_denied("delete"));
        }
        if let Some(w) = &where_ {
            if !query::matches(&row.match_view(), w)? {
                return Err(no_effect());
            }
        }
        conn.prepare_cached("DELETE FROM objects WHERE class = ?1 AND id = ?2")?
            .execute(params![class, id])?;
        Ok(())
    })
    .await
}

/// `None` when missing or not readable (the API answers `{}` then).
pub async fn get(
    db: &Db,
    access: Access,
    class: String,
    id: String,
    with_acl: bool,
) -> Result<Option<Map<String, Value>>, AppError> {
    db.read(move |conn| {
        if !class_exists(conn, &class)? {
            return Err(AppError::class_not_found(&class));
        }
        Ok(load(conn, &class, &id)?
            .filter(|r| r.allows(access, "read"))
            .map(|r| r.render(with_acl)))
    })
    .await
}

/// Synchronous read for the inspector: the full object with its ACL.
pub fn get_blocking(
    db: &Db,
    class: &str,
    id: &str,
) -> Result<Option<Map<String, Value>>, AppError> {
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
}

pub async fn find(
    db: &Db,
    access: Access,
    class: String,
    q: QueryParams,
) -> Result<Value, AppError> {
    db.read(move |conn| {
        if !class_exists(conn, &class)? {
            return Err(AppError::class_not_found(&class));
        }
        let mut stmt = conn.prepare_cached(
            "SELECT id, data, acl, created_at, updated_at FROM objects WHERE class = ?1 ORDER BY seq",
        )?;
        let raws = stmt
            .query_map([&class], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
            .collect::<Result<Vec<RawRow>, _>>()?;
        let mut hits: Vec<(Row, Map<String, Value>)> = Vec::new();
        for raw in raws {
            let row = decode_row(raw)?;
            if !row.allows(access, "read") {
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
                        RESERVED.contains(&k.as_str()) || (k == "ACL" && q.with_acl) || keys.iter().any(|want| want.split('.').next() == Some(k.as_str()))
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
    })
    .await
}

/// The conversation fields the messaging API needs, read inside the writer's transaction.
#[derive(Debug, Clone, Copy)]
pub struct ConversationKind {
    pub system: bool,
    pub transient: bool,
}

pub fn conversation_kind(
    conn: &Connection,
    id: &str,
) -> Result<Option<ConversationKind>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT json_extract(data, '$.sys'), json_extract(data, '$.tr') FROM objects WHERE class = '_Conversation' AND id = ?1",
    )?;
    let kind = stmt
        .query_row([id], |r| {
            let truthy = |v: Option<i64>| v.unwrap_or(0) != 0;
            Ok(ConversationKind {
                system: truthy(r.get(0)?),
                transient: truthy(r.get(1)?),
            })
        })
        .optional()?;
    Ok(kind)
}

thread_local! {
    /// Latest message time per conversation in the writer's current batch, applied once per batch.
    static PENDING_LM: RefCell<HashMap<String, i64>> = RefCell::new(HashMap::new());
}

/// Sets the conversation's `lm` (last message time) as LeanCloud does on each stored message. Called in the
/// writer thread; the update is applied once per conversation when the batch commits ([`flush_pending`]).
pub fn touch_last_message(id: &str, ts: i64) {
    PENDING_LM.with(|pending| {
        let mut pending = pending.borrow_mut();
        match pending.get_mut(id) {
            Some(t) => *t = (*t).max(ts),
            None => {
                pending.insert(id.to_string(), ts);
            }
        }
    });
}

/// Writes the batch's `lm` updates. `lm` only moves forward: an explicit later `lm` is kept.
pub fn flush_pending(conn: &Connection) -> Result<(), AppError> {
    let pending: Vec<(String, i64)> = PENDING_LM.with(|p| p.borrow_mut().drain().collect());
    if pending.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "UPDATE objects SET data = json_set(data, '$.lm', json(?2))
         WHERE class = '_Conversation' AND id = ?1
           AND (json_extract(data, '$.lm.iso') IS NULL OR json_extract(data, '$.lm.iso') < ?3)",
    )?;
    for (id, ts) in pending {
        let iso = iso_millis(ts);
        stmt.execute(params![
            id,
            json!({"__type": "Date", "iso": iso}).to_string(),
            iso
        ])?;
    }
    Ok(())
}

pub fn discard_pending() {
    PENDING_LM.with(|p| p.borrow_mut().clear());
}
