//! Storage-API objects on SQLite: the checks of [`crate::store::objects`] (which holds them), on rows whose
//! fields are JSON text, through the writer thread and the read pool of [`crate::store::sqlite`].

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

use crate::store::objects::{
    apply_update, check_delete, created_body, encode_data, narrowings, new_object_id,
    prepare_create, select, unique_key, updated_body, ConversationKind, Created, Narrowing,
    QueryParams, Row,
};
use crate::store::sqlite::shared::conversation_kind;
use crate::store::sqlite::SqliteDb;
use crate::store::{Caller, StoreError, StoreResult};

pub(crate) fn load(conn: &Connection, class: &str, id: &str) -> StoreResult<Option<Row>> {
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

pub(crate) fn class_exists(conn: &Connection, class: &str) -> StoreResult<bool> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM classes WHERE name = ?1")?;
    Ok(stmt.exists([class])?)
}

pub async fn create(
    db: &SqliteDb,
    class: String,
    body: Map<String, Value>,
    fetch_when_save: bool,
) -> StoreResult<Created> {
    db.write(move |tx| {
        let conn = tx.conn();
        let mut body = body;
        let relations = crate::store::relations::extract(&mut body)?;
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
        crate::store::relations::sqlite::apply(conn, &class, &id, &relations)?;
        let row = Row { id: id.clone(), data, acl, created_at: now, updated_at: now };
        Ok(Created { existed: false, body: created_body(&row, fetch_when_save), id })
    })
    .await
}

pub async fn update(
    db: &SqliteDb,
    caller: Caller,
    class: String,
    id: String,
    body: Map<String, Value>,
    where_: Option<Value>,
    fetch_when_save: bool,
) -> StoreResult<Map<String, Value>> {
    db.write_in(caller.lane(), move |tx| {
        let conn = tx.conn();
        let Some(mut row) = load(conn, &class, &id)? else {
            return Err(StoreError::NotFound { class, id });
        };
        let mut body = body;
        let relations = crate::store::relations::extract(&mut body)?;
        let readable = apply_update(&mut row, caller, body, where_.as_ref())?;
        crate::store::relations::sqlite::apply(conn, &class, &id, &relations)?;
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

pub async fn delete(
    db: &SqliteDb,
    caller: Caller,
    class: String,
    id: String,
    where_: Option<Value>,
) -> StoreResult<()> {
    db.write_in(caller.lane(), move |tx| {
        let conn = tx.conn();
        let Some(row) = load(conn, &class, &id)? else {
            return Ok(());
        };
        check_delete(&row, caller, where_.as_ref())?;
        conn.prepare_cached("DELETE FROM objects WHERE class = ?1 AND id = ?2")?
            .execute(params![class, id])?;
        crate::store::relations::sqlite::remove_owner(conn, &class, &id)?;
        Ok(())
    })
    .await
}

pub async fn by_unique_key(
    db: &SqliteDb,
    class: String,
    key: String,
) -> StoreResult<Option<String>> {
    db.read(move |conn| {
        Ok(conn
            .prepare_cached(
                "SELECT id FROM objects WHERE class = ?1 AND unique_key = ?2 ORDER BY seq LIMIT 1",
            )?
            .query_row(params![class, key], |r| r.get(0))
            .optional()?)
    })
    .await
}

pub async fn installations_on(
    db: &SqliteDb,
    channels: Vec<String>,
) -> StoreResult<Vec<Map<String, Value>>> {
    db.read(move |conn| {
        let mut ids = std::collections::BTreeSet::new();
        let mut stmt =
            conn.prepare_cached("SELECT id FROM installation_channels WHERE channel = ?1")?;
        for channel in &channels {
            for id in stmt.query_map([channel], |r| r.get::<_, String>(0))? {
                ids.insert(id?);
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(row) = load(conn, super::INSTALLATION, &id)? {
                out.push(row.render(false));
            }
        }
        Ok(out)
    })
    .await
}

pub async fn get(
    db: &SqliteDb,
    caller: Caller,
    class: String,
    id: String,
    with_acl: bool,
) -> StoreResult<Option<Map<String, Value>>> {
    db.read(move |conn| {
        if !class_exists(conn, &class)? {
            return Err(StoreError::ClassNotFound(class));
        }
        Ok(load(conn, &class, &id)?
            .filter(|r| r.allows(&caller, "read"))
            .map(|r| r.render_answer(with_acl)))
    })
    .await
}

pub async fn scan(
    db: &SqliteDb,
    class: String,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<(i64, Row)>> {
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

pub fn get_blocking(
    db: &SqliteDb,
    class: &str,
    id: &str,
) -> StoreResult<Option<Map<String, Value>>> {
    db.read_blocking(|conn| Ok(load(conn, class, id)?.map(|r| r.render(true))))
}

pub async fn find(
    db: &SqliteDb,
    caller: Caller,
    lane: crate::store::Lane,
    class: String,
    q: QueryParams,
) -> StoreResult<Value> {
    db.read_in(lane, move |conn| {
        if !class_exists(conn, &class)? {
            return Err(StoreError::ClassNotFound(class));
        }
        let (filter, args) = prefilter(&class, q.where_.as_ref());
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

/// The SQLite side of [`narrowings`]: SQL appended to the `WHERE` and its arguments (from `?2`). A member of a
/// conversation is found through the `conversation_members` index.
fn prefilter(class: &str, where_: Option<&Value>) -> (String, Vec<String>) {
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
            Narrowing::Field("m", Value::String(client)) if class == "_Conversation" => {
                sql.push_str(&format!(
                    " AND seq IN (SELECT conv_seq FROM conversation_members WHERE client = ?{n})"
                ));
                args.push(client.clone());
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

pub async fn conversation(db: &SqliteDb, id: String) -> StoreResult<Option<ConversationKind>> {
    db.read(move |conn| conversation_kind(conn, &id)).await
}

/// The property the SQL pre-filter must keep (review part 3): it only narrows. The rows of `class` that the
/// in-memory matcher accepts for `where_` are the same whether read through [`prefilter`] or not; `Err` names
/// a row the pre-filter lost (or kept wrongly). A `where_` the matcher refuses is no disagreement.
#[cfg(any(test, feature = "fuzzing"))]
pub fn prefilter_agrees(conn: &Connection, class: &str, where_: &Value) -> Result<(), String> {
    let read = |filter: &str, args: &[String]| -> Result<Vec<Row>, String> {
        let sql = format!(
            "SELECT id, data, acl, created_at, updated_at FROM objects WHERE class = ?1{filter} ORDER BY seq"
        );
        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&class];
        params.extend(args.iter().map(|a| a as &dyn rusqlite::ToSql));
        let mut stmt = conn.prepare(&sql).map_err(|e| format!("{sql}: {e}"))?;
        let raws = stmt
            .query_map(params.as_slice(), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .and_then(|rows| rows.collect::<Result<Vec<RawRow>, _>>())
            .map_err(|e| format!("{sql}: {e}"))?;
        raws.into_iter()
            .map(decode_row)
            .collect::<StoreResult<Vec<Row>>>()
            .map_err(|e| e.to_string())
    };
    let matching = |rows: Vec<Row>| -> Result<Option<Vec<String>>, String> {
        let mut ids = Vec::new();
        for row in rows {
            match crate::store::query::matches(&row.match_view(), where_) {
                Ok(true) => ids.push(row.id),
                Ok(false) => {}
                Err(_) => return Ok(None),
            }
        }
        Ok(Some(ids))
    };
    let (filter, args) = prefilter(class, Some(where_));
    let Some(all) = matching(read("", &[])?)? else {
        return Ok(());
    };
    let narrowed = matching(read(&filter, &args)?)?.unwrap_or_default();
    if all == narrowed {
        Ok(())
    } else {
        Err(format!(
            "where {where_}: the matcher accepts {all:?} of every row, but {narrowed:?} of the pre-filtered ones \
             ({filter})"
        ))
    }
}

/// A database of varied documents (in `_Conversation` and in an ordinary class) to check [`prefilter_agrees`]
/// against, for the fuzz target `query_prefilter`.
#[cfg(feature = "fuzzing")]
pub struct PrefilterCheck {
    conn: Connection,
}

#[cfg(feature = "fuzzing")]
impl std::fmt::Debug for PrefilterCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefilterCheck").finish_non_exhaustive()
    }
}

#[cfg(feature = "fuzzing")]
impl PrefilterCheck {
    /// Creates the database file at `path` (with the server's schema) and fills it.
    pub fn new(path: &std::path::Path) -> Result<PrefilterCheck, String> {
        let _ = std::fs::remove_file(path);
        crate::store::sqlite::SqliteDb::open(path, crate::config::Durability::Normal)
            .map_err(|e| e.to_string())?
            .close();
        let conn = Connection::open(path).map_err(|e| e.to_string())?;
        let words = [json!("a"), json!("b"), json!("me"), json!(""), json!("x y")];
        let mut docs = vec![
            json!({}),
            json!({"m": null}),
            json!({"m": []}),
            json!({"m": {"a": 1}}),
        ];
        for (i, w) in words.iter().enumerate() {
            let other = &words[(i + 1) % words.len()];
            docs.push(json!({"m": w, "k": other}));
            docs.push(json!({"m": [w, other], "k": [w], "tr": true}));
            docs.push(json!({"m": [[w]], "k": {"$all": [w]}, "tr": false}));
            docs.push(json!({"m": [w, 1, true, null], "k": w, "tr": "true"}));
        }
        for (i, doc) in docs.iter().enumerate() {
            for class in ["_Conversation", "Thing"] {
                conn.execute(
                    "INSERT INTO objects (class, id, data, acl, created_at, updated_at) VALUES (?1, ?2, ?3, NULL, 0, 0)",
                    rusqlite::params![class, format!("id{i}"), doc.to_string()],
                )
                .map_err(|e| e.to_string())?;
            }
        }
        Ok(PrefilterCheck { conn })
    }

    /// [`prefilter_agrees`] on both classes.
    pub fn check(&self, where_: &Value) -> Result<(), String> {
        for class in ["_Conversation", "Thing"] {
            prefilter_agrees(&self.conn, class, where_).map_err(|e| format!("{class}: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod prefilter_tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::prefilter_agrees;
    use crate::config::Durability;
    use crate::store::sqlite::SqliteDb;

    const WORDS: [&str; 4] = ["a", "b", "me", "x y"];

    fn word() -> impl Strategy<Value = Value> {
        prop::sample::select(WORDS.to_vec()).prop_map(Value::from)
    }

    /// A field value: a word, a bool, a number, null, or an array of those.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            word(),
            any::<bool>().prop_map(Value::from),
            (0i64..3).prop_map(Value::from),
            Just(Value::Null),
        ];
        prop_oneof![
            3 => leaf.clone(),
            2 => prop::collection::vec(leaf, 0..4).prop_map(Value::Array),
        ]
    }

    /// A condition on one field: the shapes the pre-filter narrows (equality on a word or bool, `$all` of
    /// words) and some it must leave alone.
    fn condition() -> impl Strategy<Value = Value> {
        prop_oneof![
            word(),
            any::<bool>().prop_map(Value::from),
            prop::collection::vec(word(), 0..3).prop_map(|w| json!({"$all": w})),
            (prop::collection::vec(word(), 0..3), value())
                .prop_map(|(w, v)| json!({"$all": w, "$ne": v})),
            value().prop_map(|v| json!({"$in": [v]})),
            value().prop_map(|v| json!({"$ne": v})),
            Just(json!({"$exists": true})),
        ]
    }

    fn document() -> impl Strategy<Value = serde_json::Map<String, Value>> {
        prop::collection::btree_map(prop::sample::select(vec!["m", "k", "tr"]), value(), 0..3)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The SQL pre-filter (equalities and `$all`, and on `_Conversation.m` the member index) and the
        /// in-memory matcher agree: every row the matcher accepts is among the rows SQL hands it.
        #[test]
        fn the_sql_prefilter_never_loses_a_row_the_matcher_accepts(
            docs in prop::collection::vec(document(), 1..12),
            wheres in prop::collection::vec(
                prop::collection::btree_map(prop::sample::select(vec!["m", "k", "tr", "objectId"]), condition(), 1..3),
                1..8,
            ),
        ) {
            let dir = tempfile::tempdir().expect("dir");
            let db = SqliteDb::open(&dir.path().join("p.sqlite3"), Durability::Normal).expect("db");
            db.read_blocking(|_| Ok(())).expect("open");
            let conn = rusqlite::Connection::open(dir.path().join("p.sqlite3")).expect("conn");
            for (i, doc) in docs.iter().enumerate() {
                for class in ["_Conversation", "Thing"] {
                    conn.execute(
                        "INSERT INTO objects (class, id, data, acl, created_at, updated_at) VALUES (?1, ?2, ?3, NULL, 0, 0)",
                        rusqlite::params![class, format!("id{i}"), Value::Object(doc.clone()).to_string()],
                    ).expect("row");
                }
            }
            // A member change goes through the index's update trigger.
            conn.execute(
                "UPDATE objects SET data = json_set(data, '$.m', json('[\"me\"]')) WHERE class = '_Conversation' AND id = 'id0'",
                [],
            ).expect("update");
            for w in wheres {
                let w: serde_json::Map<String, Value> = w.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                let w = Value::Object(w);
                for class in ["_Conversation", "Thing"] {
                    if let Err(why) = prefilter_agrees(&conn, class, &w) {
                        prop_assert!(false, "{class}: {why}");
                    }
                }
            }
        }
    }
}
