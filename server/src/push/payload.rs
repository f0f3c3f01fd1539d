//! LeanCloud's push `data` (`leancloud-users-files-push.md` §3.3) as each provider wants it.
//!
//! - APNs: `alert` (with `title` merged into it), `badge`, `sound`, `category`, `thread-id`, `content-available`,
//!   `mutable-content`, `url-args`, `target-content-id` go into `aps`; `collapse-id`, `apns-priority` and
//!   `apns-push-type` become headers; every other key stays top-level; a ready `{"aps": …}` is sent as it is. An
//!   `ios` object replaces the whole `data` for iOS. `"badge": "Increment"` is replaced by the device's stored
//!   count plus one ([`increments_badge`], [`with_badge`]) before this; one left over is dropped.
//! - FCM: `notification` `{title, body}` from `title` and `alert` (none when `silent`), and `data.payload` = the
//!   JSON text of the LeanCloud data, which LeanCloud's Android module reads; an `fcm` (else `android`) object
//!   replaces `data` for Android.
//!
//! The internal keys `_profile` and `_apns_team_id` are never delivered.

use serde_json::{json, Map, Value};

const INTERNAL: [&str; 2] = ["_profile", "_apns_team_id"];
const INTO_APS: [&str; 9] = [
    "badge",
    "sound",
    "category",
    "thread-id",
    "content-available",
    "mutable-content",
    "url-args",
    "target-content-id",
    "alert",
];

/// Whether the iOS form of `data` asks for the device's badge plus one (`"badge": "Increment"`).
pub fn increments_badge(data: &Value) -> bool {
    let ios = data.get("ios").filter(|v| v.is_object()).unwrap_or(data);
    ios.get("badge")
        .and_then(Value::as_str)
        .is_some_and(|b| b.eq_ignore_ascii_case("increment"))
}

/// `data` with the iOS badge set to `n` (in the `ios` object when there is one).
pub fn with_badge(data: &Value, n: i64) -> Value {
    let mut out = data.clone();
    let target = match out.get("ios").filter(|v| v.is_object()) {
        Some(_) => out.get_mut("ios"),
        None => Some(&mut out),
    };
    if let Some(Value::Object(map)) = target {
        map.insert("badge".into(), json!(n));
    }
    out
}

/// The platform's own object when `data` has one (`ios`; `fcm`, else `android`), else `data` minus the other
/// platforms' objects; internal keys dropped.
fn for_platform(data: &Value, keys: &[&str]) -> Map<String, Value> {
    let whole = data.as_object().cloned().unwrap_or_default();
    let mut out = keys
        .iter()
        .find_map(|k| whole.get(*k).and_then(Value::as_object).cloned())
        .unwrap_or_else(|| {
            whole
                .into_iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "ios" | "android" | "fcm" | "mi" | "hms" | "mz" | "vivo" | "oppo"
                    )
                })
                .collect()
        });
    for k in INTERNAL {
        out.remove(k);
    }
    out
}

/// An APNs request's body and headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Apns {
    pub body: Value,
    pub push_type: String,
    pub priority: Option<String>,
    pub collapse_id: Option<String>,
}

pub fn apns(data: &Value) -> Apns {
    let mut d = for_platform(data, &["ios"]);
    let header = |d: &mut Map<String, Value>, k: &str| {
        d.remove(k).map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
    };
    let collapse_id = header(&mut d, "collapse-id");
    let priority = header(&mut d, "apns-priority");
    let explicit_type = header(&mut d, "apns-push-type");
    if !d.contains_key("aps") {
        let mut aps = Map::new();
        for k in INTO_APS {
            if let Some(v) = d.remove(k) {
                aps.insert(k.to_string(), v);
            }
        }
        if let Some(title) = d.remove("title") {
            let alert = match aps.remove("alert") {
                Some(Value::Object(mut a)) => {
                    a.entry("title").or_insert(title);
                    Value::Object(a)
                }
                Some(body) => json!({"title": title, "body": body}),
                None => json!({ "title": title }),
            };
            aps.insert("alert".into(), alert);
        }
        if aps.get("badge").is_some_and(|b| !b.is_number()) {
            aps.remove("badge");
        }
        d.insert("aps".into(), Value::Object(aps));
    }
    // Built here or given ready, a push without an alert that wakes the app is a background push.
    let background = d["aps"].get("alert").is_none() && d["aps"].get("content-available").is_some();
    Apns {
        push_type: explicit_type
            .unwrap_or_else(|| if background { "background" } else { "alert" }.into()),
        priority: priority.or_else(|| background.then(|| "5".to_string())),
        body: Value::Object(d),
        collapse_id,
    }
}

/// The FCM HTTP v1 `message` for registration `token`, kept `ttl_secs` at most.
pub fn fcm(data: &Value, token: &str, ttl_secs: i64) -> Value {
    let d = for_platform(data, &["fcm", "android"]);
    let text = |k: &str| match d.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(o)) => o.get("body").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    let mut message = Map::new();
    message.insert("token".into(), json!(token));
    if d.get("silent") != Some(&Value::Bool(true)) {
        let mut notification = Map::new();
        if let Some(title) = text("title") {
            notification.insert("title".into(), json!(title));
        }
        if let Some(body) = text("alert") {
            notification.insert("body".into(), json!(body));
        }
        message.insert("notification".into(), Value::Object(notification));
    }
    message.insert(
        "data".into(),
        json!({"payload": Value::Object(d).to_string()}),
    );
    message.insert(
        "android".into(),
        json!({"priority": "HIGH", "ttl": format!("{}s", ttl_secs.max(0))}),
    );
    json!({ "message": message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_increment_badge_becomes_the_devices_count() {
        let plain = json!({"alert": "hi", "badge": "Increment"});
        assert!(increments_badge(&plain));
        assert_eq!(json!({"alert": "hi", "badge": 5}), with_badge(&plain, 5));
        let own = json!({"alert": "x", "ios": {"alert": "hi", "badge": "increment"}});
        assert!(increments_badge(&own));
        assert_eq!(
            json!({"alert": "x", "ios": {"alert": "hi", "badge": 2}}),
            with_badge(&own, 2)
        );
        assert!(!increments_badge(&json!({"alert": "hi", "badge": 3})));
    }

    #[test]
    fn leancloud_data_becomes_an_apns_body_and_headers() {
        let a = apns(&json!({
            "alert": "hi", "title": "Tom", "badge": 2, "sound": "default", "p": "custom",
            "collapse-id": "c1", "_profile": "dev", "android": {"alert": "no"}
        }));
        assert_eq!(
            json!({"aps": {"alert": {"title": "Tom", "body": "hi"}, "badge": 2, "sound": "default"}, "p": "custom"}),
            a.body
        );
        assert_eq!(
            ("alert".to_string(), None, Some("c1".to_string())),
            (a.push_type, a.priority, a.collapse_id)
        );
        let silent = apns(&json!({"content-available": 1, "badge": "Increment"}));
        assert_eq!(json!({"aps": {"content-available": 1}}), silent.body);
        assert_eq!(
            ("background".to_string(), Some("5".to_string())),
            (silent.push_type, silent.priority)
        );
        let own =
            apns(&json!({"alert": "x", "ios": {"aps": {"alert": "mine"}}, "_apns_team_id": "T"}));
        assert_eq!(json!({"aps": {"alert": "mine"}}), own.body);
        // A ready background `aps` gets the priority Apple requires of background pushes, as a built one does.
        let ready = apns(&json!({"aps": {"content-available": 1}, "k": "v"}));
        assert_eq!(
            (
                json!({"aps": {"content-available": 1}, "k": "v"}),
                "background".to_string(),
                Some("5".to_string())
            ),
            (ready.body, ready.push_type, ready.priority)
        );
    }

    #[test]
    fn leancloud_data_becomes_an_fcm_message_with_the_payload_leanclouds_module_reads() {
        let m = fcm(
            &json!({"alert": "hi", "title": "Tom", "action": "open", "_profile": "dev"}),
            "reg-1",
            604_800,
        );
        let payload = m["message"]["data"]["payload"].as_str().expect("a string");
        assert_eq!(
            json!({"alert": "hi", "title": "Tom", "action": "open"}),
            serde_json::from_str::<Value>(payload).expect("json")
        );
        assert_eq!(
            (
                json!("reg-1"),
                json!({"title": "Tom", "body": "hi"}),
                json!({"priority": "HIGH", "ttl": "604800s"})
            ),
            (
                m["message"]["token"].clone(),
                m["message"]["notification"].clone(),
                m["message"]["android"].clone()
            )
        );
        let silent = fcm(
            &json!({"alert": "x", "fcm": {"silent": true, "k": "v"}}),
            "r",
            0,
        );
        assert_eq!(Value::Null, silent["message"]["notification"]);
        let payload = silent["message"]["data"]["payload"]
            .as_str()
            .expect("a string");
        assert_eq!(
            json!({"k": "v", "silent": true}),
            serde_json::from_str::<Value>(payload).expect("json")
        );
    }
}
