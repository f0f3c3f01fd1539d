//! The storage API's `__op` interpreter: how a request body changes an object's fields. Pure: no SQL, no
//! HTTP, so it is unit-tested on its own.

use serde_json::{json, Map, Value};

use crate::store::StoreError;

/// Keys a body may not set (the server owns them).
pub const RESERVED: [&str; 3] = ["objectId", "createdAt", "updatedAt"];
/// Elements an array field may hold after an `Add`/`AddUnique`, and an `objects` operand may carry: the
/// array operations run on the single writer thread, so their cost must stay bounded.
pub const MAX_ARRAY_LEN: usize = 10_000;

/// Writes a key of `v` that is the same for two values exactly when they are equal as `serde_json::Value`s:
/// JSON text with the keys of every object sorted (object equality ignores key order) and `-0.0` written as
/// `0.0` (the two compare equal). Linear in the size of `v`, for arrays and objects as for scalars.
fn canonical_key(v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_key(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_key(item, out);
            }
            out.push('}');
        }
        Value::Number(n) if n.is_f64() && n.as_f64() == Some(0.0) => out.push_str("0.0"),
        other => out.push_str(&other.to_string()),
    }
}

fn key_of(v: &Value) -> String {
    let mut key = String::new();
    canonical_key(v, &mut key);
    key
}

/// Membership in O(1) for any value (by its canonical key), so `AddUnique` and `Remove` are O(n + m) in the
/// size of the values, compound ones included.
#[derive(Default)]
struct ValueSet {
    keys: std::collections::HashSet<String>,
}

impl ValueSet {
    fn of<'a>(values: impl IntoIterator<Item = &'a Value>) -> Self {
        let mut set = ValueSet::default();
        for v in values {
            set.insert(v);
        }
        set
    }

    fn insert(&mut self, v: &Value) -> bool {
        self.keys.insert(key_of(v))
    }

    fn contains(&self, v: &Value) -> bool {
        self.keys.contains(&key_of(v))
    }
}

fn check_len(len: usize) -> Result<(), StoreError> {
    if len > MAX_ARRAY_LEN {
        return Err(StoreError::TooLarge(format!(
            "An array may hold at most {MAX_ARRAY_LEN} elements; this one would hold {len}."
        )));
    }
    Ok(())
}

fn validate_key(key: &str) -> Result<(), StoreError> {
    let first = key.split('.').next().unwrap_or("");
    let mut chars = first.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.split('.').any(str::is_empty);
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidKey(format!("Invalid key name: {key}.")))
    }
}

fn invalid_type(msg: impl Into<String>) -> StoreError {
    StoreError::InvalidType(msg.into())
}

fn objects_arg(op: &Map<String, Value>) -> Result<Vec<Value>, StoreError> {
    match op.get("objects") {
        Some(Value::Array(items)) => {
            check_len(items.len())?;
            Ok(items.clone())
        }
        _ => Err(invalid_type("objects must be an array")),
    }
}

fn number_add(current: Option<&Value>, amount: &Value, sign: i64) -> Result<Value, StoreError> {
    let cur = match current {
        None | Some(Value::Null) => json!(0),
        Some(v @ Value::Number(_)) => v.clone(),
        Some(_) => return Err(invalid_type("Increment applied to a non-number field")),
    };
    match (cur.as_i64(), amount.as_i64()) {
        (Some(a), Some(b)) => {
            // in i128, so that e.g. -1 decremented by i64::MIN (= i64::MAX) is not refused for its operand
            let exact = i128::from(a) + i128::from(sign) * i128::from(b);
            i64::try_from(exact)
                .map(|n| json!(n))
                .map_err(|_| invalid_type("Increment or Decrement would overflow a 64-bit integer"))
        }
        _ => {
            let (Some(a), Some(b)) = (cur.as_f64(), amount.as_f64()) else {
                return Err(invalid_type("amount must be a number"));
            };
            let sum = a + sign as f64 * b;
            // JSON has no infinity: json!(inf) would silently store null
            if !sum.is_finite() {
                return Err(invalid_type(
                    "Increment or Decrement would overflow a 64-bit float",
                ));
            }
            Ok(json!(sum))
        }
    }
}

fn current_array(current: Option<&Value>) -> Result<Vec<Value>, StoreError> {
    match current {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(invalid_type("array operation applied to a non-array field")),
    }
}

/// The new value of a field after `value` (plain or `__op`) is applied; `None` = unset.
pub fn apply_value(current: Option<&Value>, value: Value) -> Result<Option<Value>, StoreError> {
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
            let add = objects_arg(&args)?;
            check_len(items.len() + add.len())?;
            items.extend(add);
            Value::Array(items)
        }
        "AddUnique" => {
            let items = current_array(current)?;
            let add = objects_arg(&args)?;
            let mut seen = ValueSet::of(&items);
            let fresh: Vec<&Value> = add.iter().filter(|v| seen.insert(v)).collect();
            check_len(items.len() + fresh.len())?;
            let fresh: Vec<Value> = fresh.into_iter().cloned().collect();
            let mut items = items;
            items.extend(fresh);
            Value::Array(items)
        }
        "Remove" => {
            let remove = objects_arg(&args)?;
            let gone = ValueSet::of(&remove);
            let items = current_array(current)?
                .into_iter()
                .filter(|i| !gone.contains(i))
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
            return Err(StoreError::UnsupportedOp(other.to_string()));
        }
    };
    Ok(Some(new))
}

fn set_path(data: &mut Map<String, Value>, key: &str, value: Value) -> Result<(), StoreError> {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, parents) = parts
        .split_last()
        .ok_or_else(|| StoreError::InvalidKey("empty key".into()))?;
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
pub fn apply_body(
    data: &mut Map<String, Value>,
    acl: &mut Option<Value>,
    body: Map<String, Value>,
) -> Result<(), StoreError> {
    for (key, value) in body {
        if RESERVED.contains(&key.as_str()) {
            continue;
        }
        let first = key.split('.').next().unwrap_or("");
        if key.contains('.') && (RESERVED.contains(&first) || first == "ACL") {
            return Err(StoreError::InvalidKey(format!("Invalid key name: {key}.")));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(current: Value, op: Value) -> Option<Value> {
        apply_value(Some(&current), op).expect("op applies")
    }

    #[test]
    fn add_unique_keeps_order_and_skips_what_is_there() {
        let out = applied(
            json!(["a", "b"]),
            json!({"__op": "AddUnique", "objects": ["b", "c", "c"]}),
        );
        assert_eq!(Some(json!(["a", "b", "c"])), out);
    }

    #[test]
    fn remove_takes_every_copy_and_ignores_absent_values() {
        let out = applied(
            json!(["a", "b", "a"]),
            json!({"__op": "Remove", "objects": ["a", "z"]}),
        );
        assert_eq!(Some(json!(["b"])), out);
    }

    #[test]
    fn increment_on_a_missing_field_starts_at_zero_and_delete_unsets() {
        assert_eq!(
            Some(json!(3)),
            apply_value(None, json!({"__op": "Increment", "amount": 3})).expect("applies")
        );
        assert_eq!(None, applied(json!(5), json!({"__op": "Delete"})));
    }

    #[test]
    fn a_dotted_key_sets_a_nested_value_and_reserved_keys_are_ignored() {
        let mut data = Map::new();
        let mut acl = None;
        let body = json!({"color.text": "#333", "objectId": "x", "ACL": {"*": {"read": true}}});
        let Value::Object(body) = body else {
            unreachable!()
        };
        apply_body(&mut data, &mut acl, body).expect("applies");
        assert_eq!(json!({"color": {"text": "#333"}}), Value::Object(data));
        assert_eq!(Some(json!({"*": {"read": true}})), acl);
    }

    #[test]
    fn unknown_ops_and_wrong_types_are_typed_errors() {
        let err = apply_value(None, json!({"__op": "Frobnicate"})).expect_err("refused");
        assert_eq!("Unsupported __op: Frobnicate.", err.to_string());
        let err = apply_value(Some(&json!("text")), json!({"__op": "Add", "objects": [1]}))
            .expect_err("refused");
        assert_eq!(crate::protocol::codes::INVALID_TYPE, err.code());
    }
}

/// Property tests of the array and number operations against a plain reference model (`Vec::contains` and
/// `Value`'s own equality, i128 arithmetic).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Scalars with many collisions: a few small ints, floats (0.0 and -0.0 among them), short strings.
    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..4).prop_map(|n| json!(n)),
            prop::sample::select(vec![0.0f64, -0.0, 0.5, 1.0, -2.5]).prop_map(|f| json!(f)),
            "[ab]{0,2}".prop_map(Value::String),
        ]
    }

    /// Any JSON value, nested up to 3 levels; objects are built in the generated key order, so equal
    /// objects with their keys in another order occur.
    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec(("[abc]", inner), 0..3)
                    .prop_map(|kvs| Value::Object(kvs.into_iter().collect())),
            ]
        })
    }

    fn values() -> impl Strategy<Value = Vec<Value>> {
        prop::collection::vec(value(), 0..12)
    }

    fn op(name: &str, objects: &[Value]) -> Value {
        json!({"__op": name, "objects": objects})
    }

    fn array_after(current: &[Value], op: Value) -> Result<Vec<Value>, StoreError> {
        match apply_value(Some(&Value::Array(current.to_vec())), op)? {
            Some(Value::Array(items)) => Ok(items),
            other => panic!("an array operation gave {other:?}"),
        }
    }

    /// The reference: `current`, then each added value that is not there yet, in the order given.
    fn model_add_unique(current: &[Value], add: &[Value]) -> Vec<Value> {
        let mut out = current.to_vec();
        for v in add {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        out
    }

    /// Integers with their edges: where checked arithmetic matters.
    fn int() -> impl Strategy<Value = i64> {
        prop_oneof![
            -3i64..4,
            any::<i64>(),
            prop::sample::select(vec![i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1]),
        ]
    }

    /// Floats with their edges: where a sum overflows to infinity.
    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            prop::num::f64::NORMAL | prop::num::f64::ZERO,
            prop::sample::select(vec![f64::MAX, -f64::MAX, 1e308, -1e308, 0.5]),
        ]
    }

    proptest! {
        #[test]
        fn add_unique_matches_the_model(current in values(), add in values()) {
            let got = array_after(&current, op("AddUnique", &add)).expect("within the limits");
            prop_assert_eq!(&got, &model_add_unique(&current, &add));
            // what was there stays, first and in its order; every added value is there; nothing added twice
            prop_assert_eq!(&got[..current.len()], &current[..]);
            prop_assert!(add.iter().all(|v| got.contains(v)));
            let tail = &got[current.len()..];
            for (i, v) in tail.iter().enumerate() {
                prop_assert!(!current.contains(v) && !tail[..i].contains(v), "{} added twice", v);
            }
        }

        #[test]
        fn add_unique_onto_distinct_values_leaves_no_duplicates(current in values(), add in values()) {
            let distinct = model_add_unique(&[], &current);
            let got = array_after(&distinct, op("AddUnique", &add)).expect("within the limits");
            for (i, v) in got.iter().enumerate() {
                prop_assert!(!got[..i].contains(v), "{} twice in {:?}", v, got);
            }
        }

        #[test]
        fn add_unique_twice_is_add_unique_once(current in values(), add in values()) {
            let once = array_after(&current, op("AddUnique", &add)).expect("applies");
            let twice = array_after(&once, op("AddUnique", &add)).expect("applies");
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn remove_matches_the_model(current in values(), remove in values()) {
            let got = array_after(&current, op("Remove", &remove)).expect("applies");
            let model: Vec<Value> = current.iter().filter(|v| !remove.contains(v)).cloned().collect();
            prop_assert_eq!(&got, &model);
            prop_assert!(got.iter().all(|v| !remove.contains(v)));
        }

        #[test]
        fn add_appends_exactly(current in values(), add in values()) {
            let got = array_after(&current, op("Add", &add)).expect("within the limits");
            prop_assert_eq!(got, [current, add].concat());
        }

    }

    // Arrays at the limit are 10,000 values: fewer cases keep these two about as fast as the others.
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn array_results_never_exceed_the_limit(
            held in (MAX_ARRAY_LEN - 20)..=MAX_ARRAY_LEN,
            start in 0usize..(MAX_ARRAY_LEN + 40),
            count in 0usize..40,
            which in 0usize..3,
        ) {
            let current: Vec<Value> = (0..held).map(|i| json!(i)).collect();
            let add: Vec<Value> = (start..start + count).map(|i| json!(i)).collect();
            let name = ["Add", "AddUnique", "Remove"][which];
            let model_len = match name {
                "Add" => held + count,
                "AddUnique" => model_add_unique(&current, &add).len(),
                _ => current.iter().filter(|v| !add.contains(v)).count(),
            };
            match array_after(&current, op(name, &add)) {
                Ok(items) => {
                    prop_assert!(items.len() <= MAX_ARRAY_LEN);
                    prop_assert_eq!(items.len(), model_len);
                }
                Err(e) => {
                    prop_assert!(matches!(e, StoreError::TooLarge(_)), "{}", e);
                    prop_assert!(model_len > MAX_ARRAY_LEN, "{} refused at {} elements", name, model_len);
                }
            }
        }

        #[test]
        fn an_operand_above_the_limit_is_refused_whatever_it_adds(extra in 1usize..5, which in 0usize..3) {
            let add: Vec<Value> = vec![json!(1); MAX_ARRAY_LEN + extra];
            let name = ["Add", "AddUnique", "Remove"][which];
            let err = apply_value(None, op(name, &add)).expect_err("refused");
            prop_assert!(matches!(err, StoreError::TooLarge(_)), "{}", err);
        }

    }

    proptest! {
        #[test]
        fn increment_and_decrement_are_exact_or_refused(current in int(), amount in int(), down in any::<bool>()) {
            let name = if down { "Decrement" } else { "Increment" };
            let exact = if down {
                i128::from(current) - i128::from(amount)
            } else {
                i128::from(current) + i128::from(amount)
            };
            let got = apply_value(Some(&json!(current)), json!({"__op": name, "amount": amount}));
            match i64::try_from(exact) {
                Ok(n) => prop_assert_eq!(got.expect("representable"), Some(json!(n))),
                Err(_) => prop_assert!(
                    matches!(got, Err(StoreError::InvalidType(_))),
                    "{} {} by {} gave {:?}", name, current, amount, got
                ),
            }
        }

        #[test]
        fn float_increments_are_finite_sums_or_refused(
            current in float(),
            amount in float(),
        ) {
            let got = apply_value(Some(&json!(current)), json!({"__op": "Increment", "amount": amount}));
            let sum = current + amount;
            if sum.is_finite() {
                prop_assert_eq!(got.expect("finite"), Some(json!(sum)));
            } else {
                prop_assert!(matches!(got, Err(StoreError::InvalidType(_))), "{:?}", got);
            }
        }
    }
}
