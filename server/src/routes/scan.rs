//! The Scan API, `GET /1.1/scan/classes/{class}`: every object of a class in a stable order, paged by an
//! opaque `cursor`, without the `skip` limits of queries. LeanCloud recommends it for exports.
//!
//! Master key only (as on LeanCloud). `limit` 1–1000 (default 100); the answer is
//! `{"results":[…],"cursor":"…"}`, and `cursor` is `null` on the last page. `returnACL=true` adds each
//! object's `ACL`; `where` filters each page (a page may then hold fewer than `limit`). Files are answered whole,
//! as in queries. `scan_key` (LeanCloud's order by a field) is not supported: pages are in storage order.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::auth::Access;
use crate::error::{codes, AppError};
use crate::routes::{parse_json_param, query_params, truthy};
use crate::state::AppState;
use crate::store::objects::{self, validate_class_name};
use crate::store::query;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

/// Fields of `_User` that are stored (hashes, LeanCloud's salt, the session token) but never served.
pub use crate::domain::users::PRIVATE_FIELDS as PRIVATE_USER_FIELDS;

/// Removes the fields a class never serves (`_User`'s `password`, `salt` and `sessionToken`) from a rendered
/// object.
pub fn strip_private(class: &str, object: &mut Map<String, Value>) {
    if class == "_User" {
        for field in PRIVATE_USER_FIELDS {
            object.remove(field);
        }
    }
}

/// [`strip_private`] on every object of a query answer (`{"results":[…]}`) or on a single object.
pub fn strip_private_value(class: &str, value: &mut Value) {
    if class != "_User" {
        return;
    }
    match value {
        Value::Object(map) if map.contains_key("results") => {
            if let Some(Value::Array(items)) = map.get_mut("results") {
                for item in items {
                    if let Value::Object(obj) = item {
                        strip_private(class, obj);
                    }
                }
            }
        }
        Value::Object(map) => strip_private(class, map),
        _ => {}
    }
}

fn encode_cursor(seq: i64) -> String {
    hex::encode(format!("seq:{seq}"))
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let raw = hex::decode(cursor.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    text.strip_prefix("seq:")?.parse().ok()
}

/// `GET /1.1/scan/classes/{class}`.
pub async fn scan(
    State(state): State<AppState>,
    access: Access,
    Path(class): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    validate_class_name(&class)?;
    let params = query_params(raw.as_deref());
    let limit = match params.get("limit").map(|s| s.trim().parse::<i64>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return Err(AppError::bad_request(
                codes::INTERNAL,
                format!("limit must be an integer from 1 to {MAX_LIMIT}."),
            ))
        }
    };
    let after = match params.get("cursor").filter(|c| !c.trim().is_empty()) {
        None => 0,
        Some(c) => decode_cursor(c)
            .ok_or_else(|| AppError::bad_request(codes::INTERNAL, "Invalid cursor."))?,
    };
    let with_acl = truthy(params.get("returnACL"));
    let where_ = parse_json_param(params.get("where"))?;
    let rows = objects::scan(&state.svc.db, class.clone(), after, limit).await?;
    let last = rows.last().map(|(seq, _)| *seq);
    let full = rows.len() as i64 == limit;
    let mut results: Vec<Map<String, Value>> = Vec::with_capacity(rows.len());
    for (_, row) in rows {
        // `where` filters each page: a page may hold fewer than `limit`, the cursor still moves on.
        if let Some(w) = &where_ {
            if !query::matches(&row.match_view(), w)? {
                continue;
            }
        }
        let mut out = row.render(with_acl);
        strip_private(&class, &mut out);
        results.push(out);
    }
    let mut maps: Vec<&mut Map<String, Value>> = results.iter_mut().collect();
    objects::expand_files(&state.svc.db, &mut maps).await?;
    let cursor = match last {
        Some(seq) if full => json!(encode_cursor(seq)),
        _ => Value::Null,
    };
    let body = json!({"results": results, "cursor": cursor});
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(Some(42), decode_cursor(&encode_cursor(42)));
        assert_eq!(None, decode_cursor("zz"));
        assert_eq!(None, decode_cursor(&hex::encode("other:1")));
    }

    #[test]
    fn user_passwords_and_salts_are_never_served() {
        let mut v =
            json!({"results": [{"objectId": "u1", "username": "a", "password": "h", "salt": "s"}]});
        strip_private_value("_User", &mut v);
        assert_eq!(json!({"results": [{"objectId": "u1", "username": "a"}]}), v);
        let mut other = json!({"objectId": "p1", "password": "kept"});
        strip_private_value("Post", &mut other);
        assert_eq!(json!({"objectId": "p1", "password": "kept"}), other);
    }
}
