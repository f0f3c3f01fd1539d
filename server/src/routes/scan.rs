//! The Scan API, `GET /1.1/scan/classes/{class}`: every object of a class in a stable order, paged by an
//! opaque `cursor`, without the `skip` limits of queries. LeanCloud recommends it for exports.
//!
//! Master key only (as on LeanCloud). `limit` 1–1000 (default 100); the answer is
//! `{"results":[…],"cursor":"…"}`, and `cursor` is `null` on the last page. `returnACL=true` adds each
//! object's `ACL`; `where` filters each page (a page may then hold fewer than `limit`). Files are answered whole,
//! as in queries. Pages are in storage order, or with `scan_key=field` (`-field`: descending) in the order of
//! that field (`store::objects::scan_key`: objects without it last, ties in storage order).

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::auth::Access;
use crate::error::{codes, AppError};
use crate::routes::{parse_json_param, query_params, truthy};
use crate::state::AppState;
use crate::store::objects::scan_key::{scan_by_key, ScanKey};
use crate::store::objects::{self, validate_class_name, Row};
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

/// A keyed scan's cursor: its order, and the sort value and position of the last row served.
fn encode_key_cursor(key: &ScanKey, value: &Value, seq: i64) -> String {
    hex::encode(format!(
        "key:{}",
        json!([key.field, key.descending, value, seq])
    ))
}

/// The resume point of a keyed cursor, if it was made for the same order.
fn decode_key_cursor(cursor: &str, key: &ScanKey) -> Option<(Value, i64)> {
    let raw = hex::decode(cursor.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let parts: Value = serde_json::from_str(text.strip_prefix("key:")?).ok()?;
    let [field, descending, value, seq] = parts.as_array()?.as_slice() else {
        return None;
    };
    if field.as_str()? != key.field || descending.as_bool()? != key.descending {
        return None;
    }
    Some((value.clone(), seq.as_i64()?))
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
    let cursor = params.get("cursor").filter(|c| !c.trim().is_empty());
    let invalid_cursor = || AppError::bad_request(codes::INTERNAL, "Invalid cursor.");
    let scan_key = match params.get("scan_key").filter(|k| !k.trim().is_empty()) {
        None => None,
        Some(raw) => Some(
            ScanKey::parse(raw).map_err(|e| AppError::bad_request(codes::INVALID_KEY_NAME, e))?,
        ),
    };
    let with_acl = truthy(params.get("returnACL"));
    let where_ = parse_json_param(params.get("where"))?;
    // Each row, and the cursor that resumes after the last one.
    let (rows, next): (Vec<Row>, Option<String>) = match scan_key {
        None => {
            let after = match cursor {
                None => 0,
                Some(c) => decode_cursor(c).ok_or_else(invalid_cursor)?,
            };
            let rows = objects::scan(&state.svc.db, class.clone(), after, limit).await?;
            let next = rows.last().map(|(seq, _)| encode_cursor(*seq));
            (rows.into_iter().map(|(_, row)| row).collect(), next)
        }
        Some(key) => {
            let after = match cursor {
                None => None,
                Some(c) => Some(decode_key_cursor(c, &key).ok_or_else(invalid_cursor)?),
            };
            let rows = scan_by_key(&state.svc.db, class.clone(), key.clone(), after, limit).await?;
            let next = rows
                .last()
                .map(|(value, seq, _)| encode_key_cursor(&key, value, *seq));
            (rows.into_iter().map(|(_, _, row)| row).collect(), next)
        }
    };
    let full = rows.len() as i64 == limit;
    let mut results: Vec<Map<String, Value>> = Vec::with_capacity(rows.len());
    for row in rows {
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
    let cursor = match next {
        Some(next) if full => json!(next),
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
    fn keyed_cursors_round_trip_only_for_their_own_order() {
        let key = ScanKey::parse("-n").expect("key");
        let cursor = encode_key_cursor(&key, &json!(7), 42);
        assert_eq!(Some((json!(7), 42)), decode_key_cursor(&cursor, &key));
        assert_eq!(
            None,
            decode_key_cursor(&cursor, &ScanKey::parse("n").expect("key"))
        );
        assert_eq!(None, decode_key_cursor(&encode_cursor(42), &key));
        assert_eq!(None, decode_cursor(&cursor));
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
