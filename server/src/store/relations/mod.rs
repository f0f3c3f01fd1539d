//! `Relation` fields (`leancloud-users-files-push.md` §1.6): a field of an object holding a set of other objects —
//! the users and child roles of a `_Role`, any app's many-to-many links. The field itself reads as
//! `{"__type":"Relation","className"}`; its members live in the `relations` table, changed by the `AddRelation`
//! and `RemoveRelation` operations (alone or in a `Batch`) in the same transaction as the object, and queried
//! with `$relatedTo` (the members of one object's field) or by equality with a pointer (the objects whose field
//! holds it: "the roles of a user").

pub(crate) mod postgres;
pub(crate) mod sqlite;

use serde_json::{json, Map, Value};

use crate::store::db::Db;
use crate::store::{StoreError, StoreResult};

/// Most objects one operation may add or remove.
const MAX_OBJECTS: usize = 1000;

/// The change an update makes to one Relation field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelationChange {
    pub key: String,
    pub target_class: String,
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::InvalidType(message.into())
}

/// The class and ids of the pointers of an `AddRelation`/`RemoveRelation`.
fn pointers(op: &Map<String, Value>) -> StoreResult<(String, Vec<String>)> {
    let Some(Value::Array(objects)) = op.get("objects") else {
        return Err(invalid(
            "A relation operation needs objects: an array of pointers.",
        ));
    };
    if objects.len() > MAX_OBJECTS {
        return Err(StoreError::TooLarge(format!(
            "A relation operation may name at most {MAX_OBJECTS} objects."
        )));
    }
    let mut class: Option<String> = None;
    let mut ids = Vec::new();
    for object in objects {
        let (Some(c), Some(id)) = (
            object.get("className").and_then(Value::as_str),
            object.get("objectId").and_then(Value::as_str),
        ) else {
            return Err(invalid(
                "A relation holds pointers: {\"__type\":\"Pointer\",\"className\",\"objectId\"}.",
            ));
        };
        match &class {
            Some(k) if k != c => {
                return Err(invalid("All objects of a relation are of one class."));
            }
            _ => class = Some(c.to_string()),
        }
        ids.push(id.to_string());
    }
    Ok((class.unwrap_or_default(), ids))
}

/// Takes the relation operations out of `body` (leaving the field's `{"__type":"Relation","className"}` in their
/// place) and answers them.
pub fn extract(body: &mut Map<String, Value>) -> StoreResult<Vec<RelationChange>> {
    let mut changes = Vec::new();
    for (key, value) in body.iter_mut() {
        let Some(op) = value.as_object() else {
            continue;
        };
        let ops: Vec<&Map<String, Value>> = match op.get("__op").and_then(Value::as_str) {
            Some("AddRelation" | "RemoveRelation") => vec![op],
            Some("Batch") => match op.get("ops") {
                Some(Value::Array(items))
                    if items.iter().all(|i| {
                        matches!(
                            i.get("__op").and_then(Value::as_str),
                            Some("AddRelation" | "RemoveRelation")
                        )
                    }) =>
                {
                    items.iter().filter_map(Value::as_object).collect()
                }
                _ => continue,
            },
            _ => continue,
        };
        let mut change = RelationChange {
            key: key.clone(),
            ..RelationChange::default()
        };
        for op in ops {
            let (class, ids) = pointers(op)?;
            if !change.target_class.is_empty() && !class.is_empty() && class != change.target_class
            {
                return Err(invalid("All objects of a relation are of one class."));
            }
            if !class.is_empty() {
                change.target_class = class;
            }
            if op.get("__op").and_then(Value::as_str) == Some("AddRelation") {
                change.add.extend(ids);
            } else {
                change.remove.extend(ids);
            }
        }
        if key.contains('.') || key.starts_with('_') {
            return Err(StoreError::InvalidKey(format!("Invalid key name: {key}.")));
        }
        *value = json!({"__type": "Relation", "className": change.target_class});
        changes.push(change);
    }
    Ok(changes)
}

/// The ids the `key` field of object `owner_id` of `owner_class` holds.
pub async fn targets(
    db: &Db,
    owner_class: String,
    owner_id: String,
    key: String,
) -> StoreResult<Vec<String>> {
    match db {
        Db::Sqlite(db) => sqlite::targets(db, owner_class, owner_id, key).await,
        Db::Postgres(pg) => postgres::targets(pg, owner_class, owner_id, key).await,
    }
}

/// The ids of the objects of `owner_class` whose `key` field holds `target_id`.
pub async fn owners(
    db: &Db,
    owner_class: String,
    key: String,
    target_id: String,
) -> StoreResult<Vec<String>> {
    match db {
        Db::Sqlite(db) => sqlite::owners(db, owner_class, key, target_id).await,
        Db::Postgres(pg) => postgres::owners(pg, owner_class, key, target_id).await,
    }
}

/// Whether the `key` field of `owner_class` is a relation (some object's field holds something).
pub async fn is_relation(db: &Db, owner_class: String, key: String) -> StoreResult<bool> {
    match db {
        Db::Sqlite(db) => sqlite::is_relation(db, owner_class, key).await,
        Db::Postgres(pg) => postgres::is_relation(pg, owner_class, key).await,
    }
}

fn pointer_parts(v: &Value) -> Option<(&str, &str)> {
    let o = v.as_object()?;
    (o.get("__type").and_then(Value::as_str) == Some("Pointer")).then_some(())?;
    Some((
        o.get("className").and_then(Value::as_str)?,
        o.get("objectId").and_then(Value::as_str)?,
    ))
}

/// `where` of a query on `class` with its relation conditions turned into `objectId` conditions the matcher
/// knows: `$relatedTo` (the members of one object's field) and equality of a relation field with a pointer (the
/// objects whose field holds it).
pub async fn rewrite_where(
    db: &Db,
    class: &str,
    where_: Option<Value>,
) -> StoreResult<Option<Value>> {
    let Some(Value::Object(mut w)) = where_ else {
        return Ok(where_);
    };
    let mut id_sets: Vec<Vec<String>> = Vec::new();
    if let Some(related) = w.remove("$relatedTo") {
        let (owner, key) = (
            related.get("object"),
            related.get("key").and_then(Value::as_str),
        );
        let (Some((owner_class, owner_id)), Some(key)) = (owner.and_then(pointer_parts), key)
        else {
            return Err(StoreError::InvalidQuery(
                "$relatedTo needs an object (a pointer) and a key.".into(),
            ));
        };
        id_sets.push(targets(db, owner_class.into(), owner_id.into(), key.into()).await?);
    }
    let candidates: Vec<(String, String)> = w
        .iter()
        .filter_map(|(k, v)| pointer_parts(v).map(|(_, id)| (k.clone(), id.to_string())))
        .collect();
    for (key, target) in candidates {
        if is_relation(db, class.to_string(), key.clone()).await? {
            w.remove(&key);
            id_sets.push(owners(db, class.to_string(), key, target).await?);
        }
    }
    for ids in id_sets {
        let condition = json!({"objectId": {"$in": ids}});
        w = match w.is_empty() {
            true => condition.as_object().cloned().unwrap_or_default(),
            false => {
                let mut and = Map::new();
                and.insert("$and".into(), json!([Value::Object(w), condition]));
                and
            }
        };
    }
    Ok(Some(Value::Object(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relation_operations_are_taken_out_and_the_field_becomes_a_relation() {
        let ptr = |id: &str| json!({"__type": "Pointer", "className": "_User", "objectId": id});
        let mut body = json!({
            "name": "mods",
            "users": {"__op": "Batch", "ops": [
                {"__op": "AddRelation", "objects": [ptr("u1"), ptr("u2")]},
                {"__op": "RemoveRelation", "objects": [ptr("u3")]}
            ]},
            "n": {"__op": "Increment", "amount": 1}
        })
        .as_object()
        .cloned()
        .expect("object");
        let changes = extract(&mut body).expect("extracted");
        assert_eq!(
            vec![RelationChange {
                key: "users".into(),
                target_class: "_User".into(),
                add: vec!["u1".into(), "u2".into()],
                remove: vec!["u3".into()],
            }],
            changes
        );
        assert_eq!(
            json!({"__type": "Relation", "className": "_User"}),
            body["users"]
        );
        assert_eq!(
            json!({"__op": "Increment", "amount": 1}),
            body["n"],
            "other operations stay"
        );
        let mut mixed = json!({"r": {"__op": "AddRelation", "objects": [ptr("a"), {"__type": "Pointer", "className": "B", "objectId": "b"}]}})
            .as_object()
            .cloned()
            .expect("object");
        assert!(extract(&mut mixed).is_err(), "one class per relation");
    }
}
