//! Storage-API objects: what a stored object is, the ACL checks and the rules of create/update/delete/get/query
//! (the `__op` interpreter is in [`super::ops`]). Each operation runs its queries on the backend the [`Db`]
//! names: `sqlite` (fields as JSON text) or `postgres` (fields as `jsonb`), peers under these rules.

pub mod include;
pub(crate) mod postgres;
pub mod scan_key;
pub(crate) mod sqlite;
#[cfg(feature = "fuzzing")]
pub use sqlite::PrefilterCheck;
mod subquery;

pub use include::{expand_includes, IncludeTree};

use std::collections::BTreeSet;

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
    /// The wire form a client is answered (`returnACL`): an object stored without an ACL shows LeanCloud's
    /// default one, everyone reads and writes, which is what the checks apply to it.
    pub fn render_answer(&self, with_acl: bool) -> Map<String, Value> {
        let mut out = self.render(with_acl);
        if with_acl && self.acl.is_none() {
            out.insert("ACL".into(), json!({"*": {"read": true, "write": true}}));
        }
        out
    }

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

    /// ACL check: the master key passes; otherwise an entry the caller holds must grant `perm` — the public
    /// `*`, and for a signed-in user its id and `role:<name>` for each of its roles.
    pub fn allows(&self, caller: &Caller, perm: &str) -> bool {
        let Some(acl) = &self.acl else {
            return true;
        };
        let grants = |entry: &str| {
            acl.get(entry)
                .and_then(|e| e.get(perm))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        match caller {
            Caller::Master => true,
            Caller::App => grants("*"),
            Caller::User(user) => {
                grants("*")
                    || grants(&user.id)
                    || user.roles.iter().any(|r| grants(&format!("role:{r}")))
            }
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

/// The class of roles.
pub const ROLE: &str = "_Role";

/// A new `_Role` needs an ACL (LeanCloud: code 1, «Role ACL is required.») and a name of letters, digits, `_`,
/// `-` and spaces (code 139).
fn check_new_role(data: &Map<String, Value>, acl: Option<&Value>) -> StoreResult<()> {
    if acl.is_none() {
        return Err(StoreError::Rule {
            code: 1,
            message: "Role ACL is required.".into(),
        });
    }
    let name = data.get("name").and_then(Value::as_str).unwrap_or("");
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' '));
    if !valid {
        return Err(StoreError::Rule {
            code: 139,
            message: "Role's name is invalid.".into(),
        });
    }
    Ok(())
}

/// The status system's follow edges: `_Follower` (`user` is followed by `follower`) and `_Followee` (`user`
/// follows `followee`), one row per pair.
pub const FOLLOWER: &str = "_Follower";
pub const FOLLOWEE: &str = "_Followee";

/// Devices (push targets): one row per iOS `deviceToken`, or per Android `installationId`.
pub const INSTALLATION: &str = "_Installation";

/// The unique key of a device: its APNs token (hex, case-insensitive), else its installation id.
pub fn device_key(token: Option<&str>, installation_id: Option<&str>) -> Option<String> {
    match (
        token.filter(|t| !t.is_empty()),
        installation_id.filter(|i| !i.is_empty()),
    ) {
        (Some(token), _) => Some(format!("token:{}", token.to_ascii_lowercase())),
        (None, Some(id)) => Some(format!("installation:{id}")),
        (None, None) => None,
    }
}

/// The objectId of a `_User` pointer (or of a bare id string).
fn user_pointer_id(value: Option<&Value>) -> Option<&str> {
    match value? {
        Value::String(id) => Some(id),
        Value::Object(ptr) => ptr.get("objectId").and_then(Value::as_str),
        _ => None,
    }
}

/// The key that keeps a class from holding two rows for the same thing: the member set of a `unique: true`
/// conversation, the pair of a follow edge, a device's token or installation id. A create whose key exists
/// answers the existing row.
pub(crate) fn unique_key(class: &str, data: &Map<String, Value>) -> Option<String> {
    let pair = |other: &str| {
        let user = user_pointer_id(data.get("user"))?;
        let other = user_pointer_id(data.get(other))?;
        Some(format!("{user}\u{1f}{other}"))
    };
    match class {
        FOLLOWER => return pair("follower"),
        FOLLOWEE => return pair("followee"),
        INSTALLATION => {
            let text = |k: &str| data.get(k).and_then(Value::as_str);
            return device_key(text("deviceToken"), text("installationId"));
        }
        _ => {}
    }
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
    if class == ROLE {
        check_new_role(&data, acl.as_ref())?;
    }
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
    if !row.allows(&caller, "write") {
        return Err(StoreError::Forbidden("write"));
    }
    // A condition on fields, or the fields in the answer, would show what the read ACL hides.
    let readable = row.allows(&caller, "read");
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
    if !row.allows(&caller, "write") {
        return Err(StoreError::Forbidden("delete"));
    }
    if let Some(w) = where_ {
        if !row.allows(&caller, "read") {
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
    match db {
        Db::Sqlite(db) => sqlite::create(db, class, body, fetch_when_save).await,
        Db::Postgres(pg) => postgres::create(pg, class, body, fetch_when_save).await,
    }
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
    match db {
        Db::Sqlite(db) => {
            sqlite::update(db, caller, class, id, body, where_, fetch_when_save).await
        }
        Db::Postgres(pg) => {
            postgres::update(pg, caller, class, id, body, where_, fetch_when_save).await
        }
    }
}

/// Deleting a missing object answers `{}` like a successful delete, so a retried delete is harmless.
pub async fn delete(
    db: &Db,
    caller: Caller,
    class: String,
    id: String,
    where_: Option<Value>,
) -> StoreResult<()> {
    match db {
        Db::Sqlite(db) => sqlite::delete(db, caller, class, id, where_).await,
        Db::Postgres(pg) => postgres::delete(pg, caller, class, id, where_).await,
    }
}

/// The id of the oldest `class` object whose unique key (see `unique_key`) is `key`, if any.
pub async fn by_unique_key(db: &Db, class: &str, key: &str) -> StoreResult<Option<String>> {
    let (class, key) = (class.to_string(), key.to_string());
    match db {
        Db::Sqlite(db) => sqlite::by_unique_key(db, class, key).await,
        Db::Postgres(pg) => postgres::by_unique_key(pg, class, key).await,
    }
}

/// The `_Installation` objects whose `channels` hold any of `channels` (each once), read through the index the
/// database's triggers keep (`installation_channels`), never by scanning the devices.
pub async fn installations_on(
    db: &Db,
    channels: Vec<String>,
) -> StoreResult<Vec<Map<String, Value>>> {
    if channels.is_empty() {
        return Ok(Vec::new());
    }
    match db {
        Db::Sqlite(db) => sqlite::installations_on(db, channels).await,
        Db::Postgres(pg) => postgres::installations_on(pg, channels).await,
    }
}

/// `None` when missing or not readable (the API answers `{}` then).
pub async fn get(
    db: &Db,
    caller: Caller,
    class: String,
    id: String,
    with_acl: bool,
) -> StoreResult<Option<Map<String, Value>>> {
    match db {
        Db::Sqlite(db) => sqlite::get(db, caller, class, id, with_acl).await,
        Db::Postgres(pg) => postgres::get(pg, caller, class, id, with_acl).await,
    }
}

/// The Scan API's page: up to `limit` objects of `class` stored after position `after` (0: from the start),
/// in storage order, each with its position (the next page's `after`). Master key only, checked by the caller.
pub async fn scan(db: &Db, class: String, after: i64, limit: i64) -> StoreResult<Vec<(i64, Row)>> {
    match db {
        Db::Sqlite(db) => sqlite::scan(db, class, after, limit).await,
        Db::Postgres(pg) => postgres::scan(pg, class, after, limit).await,
    }
}

/// Synchronous read for the inspector: the full object with its ACL.
pub fn get_blocking(db: &Db, class: &str, id: &str) -> StoreResult<Option<Map<String, Value>>> {
    match db {
        Db::Sqlite(db) => sqlite::get_blocking(db, class, id),
        Db::Postgres(pg) => postgres::get_blocking(pg, class, id),
    }
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

/// The conditions of `where` each backend narrows the rows with (its `prefilter`, in SQL). They only narrow: the full matcher still runs on what is left, so the answer is the same.
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
            // `$all` of strings (the SDK's `containsMembers`): each one is held as the value or as an element.
            (_, Value::Object(op)) => {
                if let Some(Value::Array(all)) = op.get("$all") {
                    out.extend(
                        all.iter()
                            .filter(|v| v.is_string())
                            .map(|v| Narrowing::Field(key, v)),
                    );
                }
            }
            _ => {}
        }
    }
    out
}

/// The id of the `_File` a field value refers to, in any of the three encodings SDKs write (§2.7): the whole
/// file (`{"__type":"File","objectId",…}`), the REST form (`{"__type":"File","id"}`) or a pointer to `_File`.
pub fn file_ref(value: &Value) -> Option<&str> {
    let obj = value.as_object()?;
    match obj.get("__type").and_then(Value::as_str)? {
        "File" => obj
            .get("objectId")
            .or_else(|| obj.get("id"))
            .and_then(Value::as_str),
        "Pointer" if obj.get("className").and_then(Value::as_str) == Some("_File") => {
            obj.get("objectId").and_then(Value::as_str)
        }
        _ => None,
    }
}

/// Files in answers are whole, as LeanCloud answers them (it includes `_File` pointers by itself): every
/// top-level field of `objects` (and element of an array field) that refers to a file becomes
/// `{"__type":"File","objectId","name","url","mime_type","metaData",…}` read from `_File`; a file that is gone
/// keeps what was stored, with its `objectId`.
pub async fn expand_files(db: &Db, objects: &mut [&mut Map<String, Value>]) -> StoreResult<()> {
    let mut ids: BTreeSet<String> = BTreeSet::new();
    for object in objects.iter() {
        for value in object.values() {
            match value {
                Value::Array(items) => {
                    ids.extend(items.iter().filter_map(file_ref).map(str::to_owned))
                }
                v => ids.extend(file_ref(v).map(str::to_owned)),
            }
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    let mut files: std::collections::HashMap<String, Value> = Default::default();
    for id in ids.into_iter().take(1000) {
        let found = match get(db, Caller::Master, "_File".into(), id.clone(), false).await {
            Ok(found) => found,
            Err(StoreError::ClassNotFound(_)) => None,
            Err(e) => return Err(e),
        };
        if let Some(mut file) = found {
            file.insert("__type".into(), json!("File"));
            file.insert("id".into(), json!(id));
            files.insert(id, Value::Object(file));
        }
    }
    let whole = |value: &mut Value| {
        let Some(id) = file_ref(value).map(str::to_owned) else {
            return;
        };
        match files.get(&id) {
            Some(file) => *value = file.clone(),
            None => {
                if let Some(obj) = value.as_object_mut() {
                    obj.insert("__type".into(), json!("File"));
                    obj.remove("className");
                    obj.insert("objectId".into(), json!(id));
                }
            }
        }
    };
    for object in objects.iter_mut() {
        for value in object.values_mut() {
            match value {
                Value::Array(items) => items.iter_mut().for_each(whole),
                v => whole(v),
            }
        }
    }
    Ok(())
}

pub async fn find(db: &Db, caller: Caller, class: String, q: QueryParams) -> StoreResult<Value> {
    let lane = caller.lane();
    find_on(db, caller, lane, class, q).await
}

/// [`find`] on a chosen lane: the realtime gateway reads with the master key's visibility (its own rules
/// decide what a client sees) but not its priority, so clients' queries queue with the app key's.
pub async fn find_on(
    db: &Db,
    caller: Caller,
    lane: crate::store::Lane,
    class: String,
    mut q: QueryParams,
) -> StoreResult<Value> {
    q.where_ = crate::store::relations::rewrite_where(db, &class, q.where_.take()).await?;
    if let Some(w) = q.where_.take() {
        q.where_ = Some(if subquery::has_subquery(&w) {
            subquery::rewrite(db, &caller, w, q.max_scan, 0).await?
        } else {
            w
        });
    }
    let count = q.count;
    let built_in = BUILT_IN_CLASSES.contains(&class.as_str());
    let found = match db {
        Db::Sqlite(db) => sqlite::find(db, caller, lane, class, q).await,
        Db::Postgres(pg) => postgres::find(pg, caller, lane, class, q).await,
    };
    match found {
        // LeanCloud's own classes exist in every app, empty until their first object.
        Err(StoreError::ClassNotFound(_)) if built_in => Ok(if count {
            json!({"results": [], "count": 0})
        } else {
            json!({"results": []})
        }),
        other => other,
    }
}

/// The classes every LeanCloud app has from the start.
pub const BUILT_IN_CLASSES: [&str; 8] = [
    "_User",
    ROLE,
    "_Installation",
    "_File",
    CONVERSATION,
    FOLLOWER,
    FOLLOWEE,
    "_Notification",
];

/// `keys`: only the named fields (the first part of a dotted key), the server's own fields and the `ACL` stay.
pub fn project(object: &mut Map<String, Value>, keys: &[String]) {
    object.retain(|k, _| {
        RESERVED.contains(&k.as_str())
            || k == "ACL"
            || keys
                .iter()
                .any(|want| want.split('.').next() == Some(k.as_str()))
    });
}

/// What a query answers over the rows SQL selected: the caller's read ACL, the full `where` matcher, `order`,
/// `skip`/`limit`, `keys` and `count`. Pure (the fuzz target `server_body` calls it).
pub fn select(rows: Vec<Row>, caller: Caller, q: &QueryParams) -> StoreResult<Value> {
    let mut hits: Vec<(Row, Map<String, Value>)> = Vec::new();
    for row in rows {
        if !row.allows(&caller, "read") {
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
    } else if let Some((field, center)) = crate::store::geo::near_order(q.where_.as_ref()) {
        // `$nearSphere` without an `order`: nearest first.
        let distance = |view: &Map<String, Value>| {
            query::lookup(view, &field)
                .and_then(crate::store::geo::point)
                .map_or(f64::INFINITY, |p| {
                    crate::store::geo::radians_between(center, p)
                })
        };
        hits.sort_by(|(_, a), (_, b)| distance(a).total_cmp(&distance(b)));
    }
    let results: Vec<Value> = hits
        .into_iter()
        .skip(q.skip)
        .take(q.limit)
        .map(|(row, _)| {
            let mut out = row.render_answer(q.with_acl);
            if let Some(keys) = &q.keys {
                project(&mut out, keys);
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
    /// `mu`, the members who muted the conversation (no offline push).
    pub muted: Vec<String>,
}

impl ConversationKind {
    /// A live temporary conversation of `members`: never a system conversation or a chat room, and no one
    /// has muted it.
    pub fn temporary(members: Vec<String>) -> ConversationKind {
        ConversationKind {
            system: false,
            transient: false,
            members,
            muted: Vec::new(),
        }
    }

    /// From a conversation's fields: `sys` and `tr` count only when `true` (a stored `"true"` or `1` is not).
    pub(crate) fn from_data(data: &Map<String, Value>) -> ConversationKind {
        ConversationKind {
            system: data.get("sys") == Some(&Value::Bool(true)),
            transient: data.get("tr") == Some(&Value::Bool(true)),
            members: string_list(data.get("m")),
            muted: string_list(data.get("mu")),
        }
    }
}

/// The strings of a list field (anything else in it, or a field that is no list: none).
pub(crate) fn string_list(field: Option<&Value>) -> Vec<String> {
    match field {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The conversation `id`'s kind and members, or `None` when there is no such conversation.
pub async fn conversation(db: &Db, id: String) -> StoreResult<Option<ConversationKind>> {
    match db {
        Db::Sqlite(db) => sqlite::conversation(db, id).await,
        Db::Postgres(pg) => postgres::conversation(pg, &id).await,
    }
}
