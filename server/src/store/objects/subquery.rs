//! Conditions on the answer of another query: `$inQuery` / `$notInQuery` (a pointer field pointing, or not, at
//! one of the objects another query finds) and `$select` / `$dontSelect` (a field equal, or not, to a field of
//! those objects). The inner query runs first, as the same caller (its ACLs) and under the same scan bound, and
//! the condition becomes the `$in` / `$nin` the matcher knows. At most [`MAX_INNER`] objects of an inner query
//! count, as on LeanCloud (its subquery limit).

use futures::future::BoxFuture;
use serde_json::{json, Map, Value};

use super::{find, QueryParams};
use crate::store::db::Db;
use crate::store::{Caller, StoreError, StoreResult};

/// Most objects an inner query contributes.
pub const MAX_INNER: usize = 1000;
/// Most levels of queries within queries.
const MAX_DEPTH: usize = 3;

const OPERATORS: [&str; 4] = ["$inQuery", "$notInQuery", "$select", "$dontSelect"];

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::InvalidQuery(message.into())
}

/// Whether `where_` holds a subquery anywhere (so plain queries skip the rewrite).
pub fn has_subquery(where_: &Value) -> bool {
    match where_ {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| OPERATORS.contains(&k.as_str()) || has_subquery(v)),
        Value::Array(items) => items.iter().any(has_subquery),
        _ => false,
    }
}

/// `where_` with every subquery replaced by its answer.
pub fn rewrite<'a>(
    db: &'a Db,
    caller: &'a Caller,
    where_: Value,
    max_scan: usize,
    depth: usize,
) -> BoxFuture<'a, StoreResult<Value>> {
    Box::pin(async move {
        if depth > MAX_DEPTH {
            return Err(invalid("Queries nest at most 3 levels deep."));
        }
        let Value::Object(clauses) = where_ else {
            return Ok(where_);
        };
        let mut out = Map::new();
        let mut extra: Vec<Value> = Vec::new();
        for (key, cond) in clauses {
            match (key.as_str(), cond) {
                ("$and" | "$or" | "$nor", Value::Array(subs)) => {
                    let mut rewritten = Vec::with_capacity(subs.len());
                    for sub in subs {
                        rewritten.push(rewrite(db, caller, sub, max_scan, depth).await?);
                    }
                    out.insert(key, Value::Array(rewritten));
                }
                (_, Value::Object(mut ops)) if OPERATORS.iter().any(|o| ops.contains_key(*o)) => {
                    for op in OPERATORS {
                        let Some(arg) = ops.remove(op) else { continue };
                        extra.push(condition(db, caller, &key, op, arg, max_scan, depth).await?);
                    }
                    if !ops.is_empty() {
                        out.insert(key, Value::Object(ops));
                    }
                }
                (_, cond) => {
                    out.insert(key, cond);
                }
            }
        }
        if extra.is_empty() {
            return Ok(Value::Object(out));
        }
        if !out.is_empty() {
            extra.insert(0, Value::Object(out));
        }
        Ok(json!({"$and": extra}))
    })
}

/// The `$in`/`$nin` condition one subquery operator on `key` stands for.
async fn condition(
    db: &Db,
    caller: &Caller,
    key: &str,
    op: &str,
    arg: Value,
    max_scan: usize,
    depth: usize,
) -> StoreResult<Value> {
    let (query, select_key) = match op {
        "$inQuery" | "$notInQuery" => (arg, None),
        _ => {
            let select_key = arg
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{op} needs a query and a key.")))?
                .to_string();
            let query = arg
                .get("query")
                .cloned()
                .ok_or_else(|| invalid(format!("{op} needs a query and a key.")))?;
            (query, Some(select_key))
        }
    };
    let class = query
        .get("className")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{op} needs a className.")))?
        .to_string();
    let inner_where = match query.get("where").cloned() {
        Some(w) => Some(rewrite(db, caller, w, max_scan, depth + 1).await?),
        None => None,
    };
    let q = QueryParams {
        where_: inner_where,
        limit: MAX_INNER,
        max_scan,
        ..QueryParams::default()
    };
    let found = match find(db, caller.clone(), class, q).await {
        Ok(found) => found,
        Err(StoreError::ClassNotFound(_)) => json!({"results": []}),
        Err(e) => return Err(e),
    };
    let rows = found
        .get("results")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let set = if op.starts_with("$not") || op == "$dontSelect" {
        "$nin"
    } else {
        "$in"
    };
    Ok(match select_key {
        None => {
            let ids: Vec<Value> = rows
                .iter()
                .filter_map(|r| r.get("objectId").cloned())
                .collect();
            json!({ format!("{key}.objectId"): { set: ids } })
        }
        Some(field) => {
            let values: Vec<Value> = rows
                .iter()
                .filter_map(|r| crate::store::query::lookup(r.as_object()?, &field).cloned())
                .collect();
            json!({ key: { set: values } })
        }
    })
}
