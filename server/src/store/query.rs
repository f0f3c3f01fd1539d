//! `where` matching, ordering and projection over JSON documents (the storage API's query language subset).

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::store::time::parse_iso_millis;
use crate::store::StoreError;

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::InvalidQuery(msg.into())
}

/// Looks up `a.b.c` in a document.
pub fn lookup<'a>(doc: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut current = doc.get(parts.next()?)?;
    for part in parts {
        current = match current {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

enum Scalar<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
    Date(i64),
    Other,
}

fn scalar(v: &Value) -> Scalar<'_> {
    match v {
        Value::Null => Scalar::Null,
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Number(n) => Scalar::Num(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Scalar::Str(s),
        Value::Object(map) if map.get("__type").and_then(Value::as_str) == Some("Date") => {
            match map
                .get("iso")
                .and_then(Value::as_str)
                .and_then(parse_iso_millis)
            {
                Some(ms) => Scalar::Date(ms),
                None => Scalar::Other,
            }
        }
        _ => Scalar::Other,
    }
}

fn rank(s: &Scalar<'_>) -> u8 {
    match s {
        Scalar::Null => 0,
        Scalar::Bool(_) => 1,
        Scalar::Num(_) => 2,
        Scalar::Str(_) => 3,
        Scalar::Date(_) => 4,
        Scalar::Other => 5,
    }
}

/// Ordering of two values of comparable kinds (numbers, strings, dates; an ISO string against a date).
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (scalar(a), scalar(b)) {
        (Scalar::Num(x), Scalar::Num(y)) => x.partial_cmp(&y),
        (Scalar::Str(x), Scalar::Str(y)) => Some(x.cmp(y)),
        (Scalar::Date(x), Scalar::Date(y)) => Some(x.cmp(&y)),
        (Scalar::Date(x), Scalar::Str(y)) => parse_iso_millis(y).map(|y| x.cmp(&y)),
        (Scalar::Str(x), Scalar::Date(y)) => parse_iso_millis(x).map(|x| x.cmp(&y)),
        (Scalar::Bool(x), Scalar::Bool(y)) => Some(x.cmp(&y)),
        _ => None,
    }
}

fn is_pointer(v: &Value) -> Option<(&str, &str)> {
    let map = v.as_object()?;
    if map.get("__type")?.as_str()? != "Pointer" {
        return None;
    }
    Some((
        map.get("className")?.as_str()?,
        map.get("objectId")?.as_str()?,
    ))
}

fn values_eq(a: &Value, b: &Value) -> bool {
    if let (Some(p), Some(q)) = (is_pointer(a), is_pointer(b)) {
        return p == q;
    }
    match (scalar(a), scalar(b)) {
        (Scalar::Null, Scalar::Null) => true,
        (Scalar::Num(x), Scalar::Num(y)) => x == y,
        (Scalar::Date(_), Scalar::Date(_) | Scalar::Str(_)) | (Scalar::Str(_), Scalar::Date(_)) => {
            compare(a, b) == Some(Ordering::Equal)
        }
        _ => a == b,
    }
}

/// Equality as LeanCloud applies it: an array field matches a scalar when one of its elements does.
fn field_eq(field: Option<&Value>, expected: &Value) -> bool {
    match field {
        None => expected.is_null(),
        Some(Value::Array(items)) if !expected.is_array() => {
            items.iter().any(|item| values_eq(item, expected))
        }
        Some(value) => values_eq(value, expected),
    }
}

fn field_cmp(field: Option<&Value>, bound: &Value, accept: fn(Ordering) -> bool) -> bool {
    match field {
        None => false,
        Some(Value::Array(items)) => items
            .iter()
            .any(|item| compare(item, bound).is_some_and(accept)),
        Some(value) => compare(value, bound).is_some_and(accept),
    }
}

fn is_operator_object(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| !m.is_empty() && m.keys().all(|k| k.starts_with('$')))
}

fn array_arg<'a>(op: &str, v: &'a Value) -> Result<&'a Vec<Value>, StoreError> {
    v.as_array()
        .ok_or_else(|| invalid(format!("{op} expects an array")))
}

fn field_matches(field: Option<&Value>, cond: &Value) -> Result<bool, StoreError> {
    if !is_operator_object(cond) {
        return Ok(field_eq(field, cond));
    }
    let Some(ops) = cond.as_object() else {
        return Ok(false);
    };
    for (op, arg) in ops {
        let ok = match op.as_str() {
            "$regex" => regex_matches(field, arg, ops.get("$options"))?,
            // Read with `$regex`.
            "$options" if ops.contains_key("$regex") => true,
            "$ne" => !field_eq(field, arg),
            "$in" => array_arg(op, arg)?.iter().any(|x| field_eq(field, x)),
            "$nin" => !array_arg(op, arg)?.iter().any(|x| field_eq(field, x)),
            "$all" => {
                let wanted = array_arg(op, arg)?;
                match field {
                    Some(Value::Array(items)) => {
                        wanted.iter().all(|w| items.iter().any(|i| values_eq(i, w)))
                    }
                    // A scalar is the array of itself (MongoDB's rule, which LeanCloud follows).
                    Some(scalar) => {
                        !wanted.is_empty() && wanted.iter().all(|w| values_eq(scalar, w))
                    }
                    None => false,
                }
            }
            "$exists" => {
                let want = arg
                    .as_bool()
                    .ok_or_else(|| invalid("$exists expects a boolean"))?;
                field.is_some_and(|v| !v.is_null()) == want
            }
            "$gt" => field_cmp(field, arg, |o| o == Ordering::Greater),
            "$gte" => field_cmp(field, arg, |o| o != Ordering::Less),
            "$lt" => field_cmp(field, arg, |o| o == Ordering::Less),
            "$lte" => field_cmp(field, arg, |o| o != Ordering::Greater),
            "$nearSphere" => crate::store::geo::near(field, arg, ops)?,
            // Read with `$nearSphere`.
            d if crate::store::geo::DISTANCE_OPS.contains(&d)
                && ops.contains_key("$nearSphere") =>
            {
                true
            }
            "$within" => crate::store::geo::within(field, arg)?,
            "$size" => {
                let n = arg
                    .as_u64()
                    .ok_or_else(|| invalid("$size expects a number"))?;
                matches!(field, Some(Value::Array(items)) if items.len() as u64 == n)
            }
            other => return Err(invalid(format!("Unsupported query operator {other}."))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Longest `$regex` pattern accepted, and the compiled program's size cap: a query cannot make the server
/// build an unbounded automaton.
const MAX_REGEX_LEN: usize = 1024;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// LeanCloud's (Java / PCRE) `\Q…\E` literal quoting, which the SDKs' `contains`, `startsWith` and
/// `endsWith` send, rewritten as escaped text for the `regex` crate.
fn unquote_literals(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(start) = rest.find("\\Q") {
        // A `\\Q` (escaped backslash then Q) is not a quote: copy it as it is.
        let escaped = rest[..start]
            .chars()
            .rev()
            .take_while(|c| *c == '\\')
            .count()
            % 2
            == 1;
        if escaped {
            out.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let literal = &rest[start + 2..];
        let (text, after) = match literal.find("\\E") {
            Some(end) => (&literal[..end], &literal[end + 2..]),
            None => (literal, ""),
        };
        out.push_str(&regex::escape(text));
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `{"$regex": pattern, "$options": "imsx"}` against a string field (or any string of an array field).
/// The `regex` crate's syntax: no lookaround nor backreferences (refused as an invalid query).
fn regex_matches(
    field: Option<&Value>,
    pattern: &Value,
    options: Option<&Value>,
) -> Result<bool, StoreError> {
    let pattern = pattern
        .as_str()
        .ok_or_else(|| invalid("$regex expects a string"))?;
    if pattern.len() > MAX_REGEX_LEN {
        return Err(invalid(format!(
            "$regex is longer than {MAX_REGEX_LEN} bytes"
        )));
    }
    let options = match options {
        None => "",
        Some(v) => v
            .as_str()
            .ok_or_else(|| invalid("$options expects a string"))?,
    };
    let mut builder = regex::RegexBuilder::new(&unquote_literals(pattern));
    builder.size_limit(REGEX_SIZE_LIMIT);
    for flag in options.chars() {
        match flag {
            'i' => builder.case_insensitive(true),
            'm' => builder.multi_line(true),
            's' => builder.dot_matches_new_line(true),
            'x' => builder.ignore_whitespace(true),
            other => return Err(invalid(format!("Unsupported $options flag {other}."))),
        };
    }
    let re = builder
        .build()
        .map_err(|e| invalid(format!("invalid $regex: {e}")))?;
    Ok(match field {
        Some(Value::String(s)) => re.is_match(s),
        Some(Value::Array(items)) => items
            .iter()
            .any(|i| i.as_str().is_some_and(|s| re.is_match(s))),
        _ => false,
    })
}

/// Does `doc` satisfy `where`? `doc` has `objectId` and `createdAt`/`updatedAt` as Date objects.
pub fn matches(doc: &Map<String, Value>, where_: &Value) -> Result<bool, StoreError> {
    let Some(clauses) = where_.as_object() else {
        return Err(invalid("where must be a JSON object"));
    };
    for (key, cond) in clauses {
        let ok = match key.as_str() {
            "$or" => {
                let mut any = false;
                for sub in array_arg(key, cond)? {
                    if matches(doc, sub)? {
                        any = true;
                        break;
                    }
                }
                any
            }
            "$and" => {
                let mut all = true;
                for sub in array_arg(key, cond)? {
                    if !matches(doc, sub)? {
                        all = false;
                        break;
                    }
                }
                all
            }
            k if k.starts_with('$') => {
                return Err(invalid(format!("Unsupported query operator {k}.")))
            }
            k => field_matches(lookup(doc, k), cond)?,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Total order used by `order`: missing < null < bool < number < string < date < other; same kinds compare
/// by value.
pub fn sort_cmp(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => {
            let (sx, sy) = (scalar(x), scalar(y));
            match rank(&sx).cmp(&rank(&sy)) {
                Ordering::Equal => {
                    compare(x, y).unwrap_or_else(|| x.to_string().cmp(&y.to_string()))
                }
                other => other,
            }
        }
    }
}

/// Parses `order=createdAt,-name` into `(field, descending)` pairs.
pub fn parse_order(order: &str) -> Vec<(String, bool)> {
    order
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| match k.strip_prefix('-') {
            Some(field) => (field.to_string(), true),
            None => (k.strip_prefix('+').unwrap_or(k).to_string(), false),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn array_fields_match_by_element_and_dates_compare_with_dates() {
        let d = doc(json!({"m": ["a", "b"], "n": 3,
            "updatedAt": {"__type": "Date", "iso": "2026-01-02T00:00:00.000Z"}}));
        let cases = [
            (json!({"m": "a"}), true),
            (json!({"m": "z"}), false),
            (json!({"m": {"$in": ["z", "b"]}}), true),
            (json!({"m": {"$nin": ["a"]}}), false),
            (json!({"m": {"$all": ["b", "a"]}}), true),
            (json!({"m": {"$all": ["a", "c"]}}), false),
            (json!({"n": {"$all": [3]}}), true),
            (json!({"n": {"$all": [3, 4]}}), false),
            (json!({"n": {"$all": []}}), false),
            (json!({"n": {"$gt": 2, "$lte": 3}}), true),
            (json!({"n": {"$ne": 3}}), false),
            (json!({"x": {"$exists": false}}), true),
            (
                json!({"updatedAt": {"$gt": {"__type": "Date", "iso": "2026-01-01T00:00:00.000Z"}}}),
                true,
            ),
            (
                json!({"updatedAt": {"$lt": {"__type": "Date", "iso": "2026-01-01T00:00:00.000Z"}}}),
                false,
            ),
            (json!({"$or": [{"n": 1}, {"m": "b"}]}), true),
            (json!({"$and": [{"n": 3}, {"m": "c"}]}), false),
        ];
        for (where_, expected) in cases {
            assert_eq!(
                expected,
                matches(&d, &where_).ok() == Some(true),
                "when where was {where_}"
            );
        }
    }

    #[test]
    fn unknown_operators_are_rejected() {
        let err = matches(&doc(json!({})), &json!({"a": {"$near": 1}})).err();
        assert_eq!(
            Some(crate::protocol::codes::INVALID_QUERY),
            err.map(|e| e.code())
        );
    }

    #[test]
    fn regex_with_options_and_quoted_literals() {
        let d = doc(json!({"name": "js-realtime-sdk-testconv", "tags": ["a.b", "c"]}));
        let cases = [
            (
                json!({"name": {"$regex": "REALTIME-SDK", "$options": "i"}}),
                true,
            ),
            (json!({"name": {"$regex": "REALTIME-SDK"}}), false),
            (json!({"name": {"$regex": "\\Qrealtime-sdk\\E"}}), true),
            (json!({"name": {"$regex": "^\\Qjs-realtime\\E"}}), true),
            (json!({"name": {"$regex": "^\\QJS-REALTIME\\E"}}), false),
            (json!({"name": {"$regex": "\\Qtestconv\\E$"}}), true),
            (json!({"name": {"$regex": "\\Q.*\\E"}}), false),
            (json!({"tags": {"$regex": "^\\Qa.b\\E$"}}), true),
            (json!({"tags": {"$regex": "^a\\\\Qx"}}), false),
            (json!({"missing": {"$regex": ".*"}}), false),
        ];
        for (where_, expected) in cases {
            assert_eq!(
                Some(expected),
                matches(&d, &where_).ok(),
                "when where was {where_}"
            );
        }
        for bad in [
            json!({"name": {"$regex": "(?=x)"}}),
            json!({"name": {"$regex": "("}}),
            json!({"name": {"$regex": 1}}),
            json!({"name": {"$regex": "a", "$options": "q"}}),
            json!({"name": {"$options": "i"}}),
        ] {
            assert_eq!(
                Some(crate::protocol::codes::INVALID_QUERY),
                matches(&d, &bad).err().map(|e| e.code()),
                "when where was {bad}"
            );
        }
    }
}
