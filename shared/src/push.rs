//! Offline push payloads (`push_data` on sends, `push` on broadcasts).

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::ValidationError;

/// Keys LeanCloud only honours at the top level of a push payload; inside `ios` they are ignored
/// and the push silently goes to production.
const TOP_LEVEL_ONLY: [&str; 2] = ["_profile", "_apns_team_id"];

/// An iOS badge: a number or `"Increment"` (case-sensitive on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Badge {
    /// Increase the app's badge by one.
    Increment,
    /// Set the badge to this number.
    Number(u32),
}

impl From<Badge> for Value {
    fn from(badge: Badge) -> Value {
        match badge {
            Badge::Increment => Value::String("Increment".into()),
            Badge::Number(n) => Value::from(n),
        }
    }
}

impl From<u32> for Badge {
    fn from(n: u32) -> Badge {
        Badge::Number(n)
    }
}

/// A per-platform override (`ios`, `android`, …) inside [`PushData`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlatformPush(Map<String, Value>);

impl PlatformPush {
    /// An empty override.
    pub fn new() -> Self {
        Self::default()
    }

    /// `alert`: the notification text.
    pub fn alert(self, alert: impl Into<String>) -> Self {
        self.custom("alert", alert.into())
    }

    /// `title`.
    pub fn title(self, title: impl Into<String>) -> Self {
        self.custom("title", title.into())
    }

    /// `badge` (iOS).
    pub fn badge(self, badge: impl Into<Badge>) -> Self {
        self.custom("badge", badge.into())
    }

    /// `sound` (iOS).
    pub fn sound(self, sound: impl Into<String>) -> Self {
        self.custom("sound", sound.into())
    }

    /// `category` (iOS).
    pub fn category(self, category: impl Into<String>) -> Self {
        self.custom("category", category.into())
    }

    /// `silent` (Android): deliver without showing a notification.
    pub fn silent(self, silent: bool) -> Self {
        self.custom("silent", silent)
    }

    /// `action` (Android): the intent action to trigger.
    pub fn action(self, action: impl Into<String>) -> Self {
        self.custom("action", action.into())
    }

    /// Any other key.
    pub fn custom(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }
}

/// An offline push payload, in the format of the push service's `data`.
///
/// Keys appear on the wire in the order they were first set, so
/// `PushData::new().alert("新消息").badge(Badge::Increment)` encodes as the SDK's
/// `{"alert":"\u65b0\u6d88\u606f","badge":"Increment"}`.
///
/// ```
/// # use leancloud_im::{Badge, PlatformPush, PushData};
/// let push = PushData::new()
///     .alert("You have a new message")
///     .badge(Badge::Increment)
///     .ios(PlatformPush::new().sound("default").custom("_profile", "dev"))
///     .custom("convId", "abc");
/// let json = serde_json::to_string(&push).unwrap();
/// assert_eq!(
///     r#"{"alert":"You have a new message","badge":"Increment","ios":{"sound":"default"},"_profile":"dev","convId":"abc"}"#,
///     json,
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PushData(Value);

impl Default for PushData {
    fn default() -> Self {
        PushData(Value::Object(Map::new()))
    }
}

impl Serialize for PushData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl PushData {
    /// An empty payload.
    pub fn new() -> Self {
        Self::default()
    }

    /// A payload given as JSON, sent unchanged: a JSON object, or a string (which LeanCloud also
    /// accepts for a broadcast's `push`). Anything else is rejected when the request is validated.
    pub fn raw(value: Value) -> Self {
        PushData(value)
    }

    /// The payload as JSON.
    pub fn as_value(&self) -> &Value {
        &self.0
    }

    fn map(&mut self) -> &mut Map<String, Value> {
        if !self.0.is_object() {
            self.0 = Value::Object(Map::new());
        }
        match &mut self.0 {
            Value::Object(map) => map,
            _ => unreachable!("replaced by an object above"),
        }
    }

    /// `alert`: the notification text (required by Android).
    pub fn alert(self, alert: impl Into<String>) -> Self {
        self.custom("alert", alert.into())
    }

    /// `title`.
    pub fn title(self, title: impl Into<String>) -> Self {
        self.custom("title", title.into())
    }

    /// `badge`: a number or [`Badge::Increment`].
    pub fn badge(self, badge: impl Into<Badge>) -> Self {
        self.custom("badge", badge.into())
    }

    /// `sound`.
    pub fn sound(self, sound: impl Into<String>) -> Self {
        self.custom("sound", sound.into())
    }

    /// `category`.
    pub fn category(self, category: impl Into<String>) -> Self {
        self.custom("category", category.into())
    }

    /// The `ios` override. `_profile` / `_apns_team_id` set inside it are moved to the top level,
    /// the only place LeanCloud reads them.
    pub fn ios(self, platform: PlatformPush) -> Self {
        self.platform("ios", platform)
    }

    /// The `android` override.
    pub fn android(self, platform: PlatformPush) -> Self {
        self.platform("android", platform)
    }

    /// Any other per-platform override (`mi`, `hms`, `fcm`, …).
    pub fn platform(mut self, name: impl Into<String>, mut platform: PlatformPush) -> Self {
        let hoisted: Vec<(String, Value)> = TOP_LEVEL_ONLY
            .iter()
            .filter_map(|k| platform.0.shift_remove(*k).map(|v| ((*k).to_owned(), v)))
            .collect();
        let map = self.map();
        map.insert(name.into(), Value::Object(platform.0));
        for (k, v) in hoisted {
            map.insert(k, v);
        }
        self
    }

    /// `"_profile": "dev"`: deliver through the APNs sandbox (top level, as LeanCloud requires).
    pub fn profile_dev(self) -> Self {
        self.custom("_profile", "dev")
    }

    /// Any other key (custom data delivered with the notification).
    pub fn custom(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.map().insert(key.into(), value.into());
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ValidationError> {
        match self.0 {
            Value::Object(_) | Value::String(_) => Ok(()),
            _ => Err(ValidationError::InvalidPush),
        }
    }

    /// Size counted against the 5 KB message limit: the payload as the server stores it
    /// (compact JSON, UTF-8).
    pub(crate) fn wire_len(&self) -> usize {
        match &self.0 {
            Value::String(s) => s.len(),
            other => serde_json::to_vec(other).map(|v| v.len()).unwrap_or(0),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match &self.0 {
            Value::Object(map) => map.is_empty(),
            Value::String(s) => s.is_empty(),
            Value::Null => true,
            _ => false,
        }
    }
}

impl From<Value> for PushData {
    fn from(value: Value) -> Self {
        PushData::raw(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{to_python_string, PyStyle};
    use serde_json::json;

    #[test]
    fn builder_matches_the_sdk_capture_of_scenario_14() {
        let push = PushData::new().alert("新消息").badge(Badge::Increment);
        assert_eq!(
            r#"{"alert":"\u65b0\u6d88\u606f","badge":"Increment"}"#,
            to_python_string(&push, PyStyle::Compact).unwrap()
        );
    }

    #[test]
    fn profile_stays_top_level_even_when_set_inside_ios() {
        let push = PushData::new()
            .alert("a")
            .ios(
                PlatformPush::new()
                    .badge(3)
                    .custom("_profile", "dev")
                    .custom("_apns_team_id", "T"),
            )
            .android(
                PlatformPush::new()
                    .title("t")
                    .silent(true)
                    .action("com.x.OPEN"),
            );
        assert_eq!(
            json!({"alert": "a", "ios": {"badge": 3}, "_profile": "dev", "_apns_team_id": "T",
                   "android": {"title": "t", "silent": true, "action": "com.x.OPEN"}}),
            push.as_value().clone()
        );
    }

    #[test]
    fn raw_payloads_are_sent_unchanged_and_checked() {
        let raw = PushData::raw(json!({"z": 1, "alert": "x"}));
        assert_eq!(
            r#"{"z":1,"alert":"x"}"#,
            serde_json::to_string(&raw).unwrap()
        );
        assert!(raw.validate().is_ok());
        assert!(PushData::raw(json!("text")).validate().is_ok());
        assert_eq!(
            Err(ValidationError::InvalidPush),
            PushData::raw(json!([1])).validate()
        );
        assert_eq!(
            Err(ValidationError::InvalidPush),
            PushData::raw(json!(1)).validate()
        );
    }
}
