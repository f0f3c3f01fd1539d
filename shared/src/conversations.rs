//! `_Conversation` objects: create, get, query, delete, and member changes.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{ApiError, Error, ValidationError};
use crate::ids::{ClientId, ConversationId};
use crate::json::{to_python_json, to_python_string, PyStyle};
use crate::protocol::MAX_MEMBERS;
use crate::request::{impl_send, Request};

const CLASS_PATH: &str = "/classes/_Conversation";

/// Fields with a fixed meaning; custom attributes may not use them.
const RESERVED_KEYS: [&str; 13] = [
    "objectId",
    "createdAt",
    "updatedAt",
    "ACL",
    "name",
    "c",
    "m",
    "mu",
    "lm",
    "sys",
    "tr",
    "unique",
    "uniqueId",
];

/// Encode a timestamp as LeanCloud's Date value, `{"__type":"Date","iso":"…Z"}` (UTC, milliseconds),
/// for use in query conditions and attributes.
///
/// ```
/// # use chrono::{TimeZone, Utc};
/// let d = leancloud_im::date_value(&Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
/// assert_eq!(serde_json::json!({"__type": "Date", "iso": "2026-01-01T00:00:00.000Z"}), d);
/// ```
pub fn date_value(at: &DateTime<Utc>) -> Value {
    json!({"__type": "Date", "iso": at.to_rfc3339_opts(SecondsFormat::Millis, true)})
}

/// A date as LeanCloud returns it: a plain ISO string (`createdAt`) or a Date object (`lm`).
fn parse_date(value: &Value) -> Option<DateTime<Utc>> {
    let iso = match value {
        Value::String(s) => s.as_str(),
        Value::Object(obj) => obj.get("iso")?.as_str()?,
        _ => return None,
    };
    DateTime::parse_from_rfc3339(iso)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn check_attribute_key(key: &str) -> Result<(), ValidationError> {
    if RESERVED_KEYS.contains(&key) {
        return Err(ValidationError::InvalidAttribute {
            key: key.to_owned(),
            reason: "reserved field",
        });
    }
    let mut chars = key.chars();
    let starts_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ValidationError::InvalidAttribute {
            key: key.to_owned(),
            reason: "must start with a letter and contain only letters, digits and _",
        });
    }
    Ok(())
}

/// Drop repeated ids, keeping the first occurrence (so the wire order is the caller's order).
fn dedup(ids: impl IntoIterator<Item = ClientId>) -> Vec<ClientId> {
    let mut out: Vec<ClientId> = Vec::new();
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// A `_Conversation` as the server returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// `objectId`.
    pub id: ConversationId,
    /// `name`.
    pub name: Option<String>,
    /// `c`: the creator.
    pub creator: Option<ClientId>,
    /// `m`: members (normal conversations only).
    pub members: Vec<ClientId>,
    /// `mu`: members who muted offline push.
    pub muted_members: Vec<ClientId>,
    /// `lm`: time of the last message.
    pub last_message_at: Option<DateTime<Utc>>,
    /// `sys`: a system conversation.
    pub system: bool,
    /// `tr`: a transient conversation (chat room).
    pub transient: bool,
    /// `unique`.
    pub unique: bool,
    /// `createdAt`.
    pub created_at: Option<DateTime<Utc>>,
    /// `updatedAt`.
    pub updated_at: Option<DateTime<Utc>>,
    /// `ACL`, when requested with `returnACL`.
    pub acl: Option<Value>,
    /// Every other field (custom attributes, `attr`, `uniqueId`, …), in server order.
    pub attributes: Map<String, Value>,
}

impl Conversation {
    /// Build from a server JSON object.
    pub fn from_json(mut obj: Map<String, Value>) -> Result<Conversation, String> {
        let id = match obj.shift_remove("objectId") {
            Some(Value::String(s)) => {
                ConversationId::parse(s).map_err(|e| format!("objectId: {e}"))?
            }
            _ => return Err("missing objectId".into()),
        };
        fn ids(v: Option<Value>, key: &str) -> Result<Vec<ClientId>, String> {
            match v {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(v) => serde_json::from_value(v).map_err(|e| format!("{key}: {e}")),
            }
        }
        fn date(v: Option<Value>, key: &str) -> Result<Option<DateTime<Utc>>, String> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(v) => parse_date(&v)
                    .map(Some)
                    .ok_or_else(|| format!("{key}: not a date: {v}")),
            }
        }
        let flag = |v: Option<Value>| v.and_then(|v| v.as_bool()).unwrap_or(false);
        let name = match obj.shift_remove("name") {
            Some(Value::String(s)) => Some(s),
            None | Some(Value::Null) => None,
            Some(other) => return Err(format!("name: not a string: {other}")),
        };
        let creator = match obj.shift_remove("c") {
            // Server data is trusted as is; only ids this crate puts in URLs are validated.
            Some(c @ Value::String(_)) => {
                Some(serde_json::from_value(c).map_err(|e| format!("c: {e}"))?)
            }
            _ => None,
        };
        Ok(Conversation {
            id,
            name,
            creator,
            members: ids(obj.shift_remove("m"), "m")?,
            muted_members: ids(obj.shift_remove("mu"), "mu")?,
            last_message_at: date(obj.shift_remove("lm"), "lm")?,
            system: flag(obj.shift_remove("sys")),
            transient: flag(obj.shift_remove("tr")),
            unique: flag(obj.shift_remove("unique")),
            created_at: date(obj.shift_remove("createdAt"), "createdAt")?,
            updated_at: date(obj.shift_remove("updatedAt"), "updatedAt")?,
            acl: obj.shift_remove("ACL"),
            attributes: obj,
        })
    }

    /// The server's JSON shape (field names as LeanCloud uses them).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("objectId".into(), self.id.as_str().into());
        if let Some(name) = &self.name {
            m.insert("name".into(), name.as_str().into());
        }
        if let Some(c) = &self.creator {
            m.insert("c".into(), c.as_str().into());
        }
        m.insert("m".into(), json!(self.members));
        if !self.muted_members.is_empty() {
            m.insert("mu".into(), json!(self.muted_members));
        }
        if let Some(lm) = &self.last_message_at {
            m.insert("lm".into(), date_value(lm));
        }
        for (key, flag) in [
            ("sys", self.system),
            ("tr", self.transient),
            ("unique", self.unique),
        ] {
            if flag {
                m.insert(key.into(), true.into());
            }
        }
        for (key, at) in [
            ("createdAt", &self.created_at),
            ("updatedAt", &self.updated_at),
        ] {
            if let Some(at) = at {
                m.insert(
                    key.into(),
                    at.to_rfc3339_opts(SecondsFormat::Millis, true).into(),
                );
            }
        }
        if let Some(acl) = &self.acl {
            m.insert("ACL".into(), acl.clone());
        }
        for (k, v) in &self.attributes {
            m.insert(k.clone(), v.clone());
        }
        m
    }
}

impl<'de> Deserialize<'de> for Conversation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let obj = Map::deserialize(deserializer)?;
        Conversation::from_json(obj).map_err(de::Error::custom)
    }
}

impl Serialize for Conversation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// The answer to a create: `{"objectId", "createdAt", …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedObject {
    /// `objectId` of the new conversation.
    #[serde(rename = "objectId")]
    pub id: ConversationId,
    /// `createdAt`.
    #[serde(rename = "createdAt")]
    pub created_at: DateTime<Utc>,
    /// Any other field the server returned.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The answer to an update: `{"updatedAt", …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdatedObject {
    /// `updatedAt`, when the server returned it.
    #[serde(rename = "updatedAt", default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    /// Any other field the server returned.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The answer to a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    /// Matching conversations (empty when only counting).
    #[serde(default)]
    pub results: Vec<Conversation>,
    /// Total number of matches, when [`QueryConversations::count`] was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// Create a conversation: `POST /1.1/classes/_Conversation?fetchWhenSave=false`.
///
/// The body is what the SDK's `Conversation(name, is_system, is_transient, is_unique)` plus
/// `add_member(..)` and `set(..)` send: `name`, `sys`/`tr` (only when true), `unique` (when set,
/// and not for transient conversations), `c`, custom attributes, then the initial members as
/// `{"m":{"__op":"Add","objects":[…]}}`.
///
/// ```
/// # use leancloud_im::{ClientId, CreateConversation, Request};
/// let create = CreateConversation::new()
///     .name("u")
///     .unique(true)
///     .members([ClientId::parse("a").unwrap(), ClientId::parse("b").unwrap()]);
/// assert_eq!(
///     br#"{"name":"u","unique":true,"m":{"__op":"Add","objects":["a","b"]}}"#.to_vec(),
///     create.body().unwrap().unwrap()
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateConversation {
    name: Option<String>,
    system: bool,
    transient: bool,
    unique: Option<bool>,
    creator: Option<ClientId>,
    attributes: Map<String, Value>,
    members: Vec<ClientId>,
}

impl CreateConversation {
    /// A conversation without a name, members or attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Initial members (added to any already given; repeated ids are sent once).
    pub fn members<I>(mut self, members: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<ClientId>,
    {
        self.members.extend(members.into_iter().map(Into::into));
        self
    }

    /// `c`: the creator.
    pub fn creator(mut self, creator: impl Into<ClientId>) -> Self {
        self.creator = Some(creator.into());
        self
    }

    /// `sys: true`: a system conversation (service account).
    pub fn system(mut self, system: bool) -> Self {
        self.system = system;
        self
    }

    /// `tr: true`: a transient conversation (chat room).
    pub fn transient(mut self, transient: bool) -> Self {
        self.transient = transient;
        self
    }

    /// `unique`: return the existing conversation with exactly these members instead of creating
    /// one. Like the SDK, it is not sent for transient conversations.
    pub fn unique(mut self, unique: bool) -> Self {
        self.unique = Some(unique);
        self
    }

    /// A custom attribute, stored as a top-level field (as the SDK's `conv.set(key, value)`).
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }

    /// Several custom attributes, in the map's order.
    pub fn attributes(mut self, attributes: Map<String, Value>) -> Self {
        self.attributes.extend(attributes);
        self
    }

    fn wire(&self) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(name) = &self.name {
            m.insert("name".into(), name.as_str().into());
        }
        if self.system {
            m.insert("sys".into(), true.into());
        }
        if self.transient {
            m.insert("tr".into(), true.into());
        } else if let Some(unique) = self.unique {
            m.insert("unique".into(), unique.into());
        }
        if let Some(creator) = &self.creator {
            m.insert("c".into(), creator.as_str().into());
        }
        for (k, v) in &self.attributes {
            m.insert(k.clone(), v.clone());
        }
        let members = dedup(self.members.iter().cloned());
        if !members.is_empty() {
            m.insert("m".into(), json!({"__op": "Add", "objects": members}));
        }
        m
    }
}

impl Request for CreateConversation {
    type Response = CreatedObject;

    fn method(&self) -> http::Method {
        http::Method::POST
    }

    fn path(&self) -> String {
        CLASS_PATH.to_owned()
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        vec![("fetchWhenSave", "false".into())]
    }

    fn body(&self) -> Result<Option<Vec<u8>>, Error> {
        Ok(Some(body_bytes(&self.wire())?))
    }

    fn validate(&self) -> Result<(), ValidationError> {
        if self.system && self.transient {
            return Err(ValidationError::ConflictingKinds);
        }
        for key in self.attributes.keys() {
            check_attribute_key(key)?;
        }
        let count = dedup(self.members.iter().cloned()).len();
        if count > MAX_MEMBERS {
            return Err(ValidationError::TooManyMembers {
                count,
                max: MAX_MEMBERS,
            });
        }
        Ok(())
    }

    fn is_idempotent(&self) -> bool {
        false
    }
}

/// Serialising this crate's request bodies cannot fail (string keys, no custom serializers); the
/// error is mapped rather than unwrapped so a future change cannot turn it into a panic.
pub(crate) fn body_bytes(value: &impl Serialize) -> Result<Vec<u8>, Error> {
    to_python_json(value, PyStyle::Compact).map_err(|source| Error::Decode { status: 0, source })
}

/// Fetch one conversation: `GET /1.1/classes/_Conversation/<id>` (no query string).
///
/// LeanCloud answers `200 {}` for a missing id; that becomes [`Error::Api`] with code 101
/// ("Object not found"), the code the SDK's `query.first()` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetConversation {
    id: ConversationId,
}

impl GetConversation {
    /// Fetch conversation `id`.
    pub fn new(id: impl Into<ConversationId>) -> Self {
        GetConversation { id: id.into() }
    }
}

impl Request for GetConversation {
    type Response = Conversation;

    fn method(&self) -> http::Method {
        http::Method::GET
    }

    fn path(&self) -> String {
        format!("{CLASS_PATH}/{}", self.id)
    }

    fn body(&self) -> Result<Option<Vec<u8>>, Error> {
        Ok(None)
    }

    fn is_idempotent(&self) -> bool {
        true
    }

    fn decode(&self, status: u16, body: Value) -> Result<Conversation, Error> {
        if body
            .as_object()
            .is_some_and(|o| !o.contains_key("objectId"))
        {
            return Err(Error::Api(ApiError {
                status,
                code: 101,
                error: "Object not found".into(),
            }));
        }
        serde_json::from_value(body).map_err(|source| Error::Decode { status, source })
    }
}

/// Query conversations: `GET /1.1/classes/_Conversation?where=…&include=…&keys=…&returnACL=…&limit=…&skip=…&order=…&count=1`
/// (the SDK's parameter order).
///
/// ```
/// # use leancloud_im::{QueryConversations, Request, Client, Config};
/// # use serde_json::json;
/// let q = QueryConversations::new().where_(json!({"sys": true})).count(true);
/// # let client = Client::new(Config::builder("TestAppId-gzGzoHsz").master_key("k").api_server("http://127.0.0.1").build().unwrap()).unwrap();
/// assert_eq!(
///     "http://127.0.0.1/1.1/classes/_Conversation?where=%7B%22sys%22%3Atrue%7D&limit=0&count=1",
///     client.url_for(&q)
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryConversations {
    where_: Option<Value>,
    include: Vec<String>,
    keys: Vec<String>,
    return_acl: bool,
    limit: Option<u32>,
    skip: Option<u32>,
    order: Vec<String>,
    count: bool,
}

impl QueryConversations {
    /// All conversations (the server's default limit of 100 applies).
    pub fn new() -> Self {
        Self::default()
    }

    /// `where`: a LeanCloud condition object, e.g. `{"m": {"$in": ["a"]}}`; use [`date_value`]
    /// for dates.
    pub fn where_(mut self, condition: Value) -> Self {
        self.where_ = Some(condition);
        self
    }

    /// `include`: pointer fields to expand.
    pub fn include<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.include.extend(keys.into_iter().map(Into::into));
        self
    }

    /// `keys`: only return these fields.
    pub fn keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// `returnACL=true`: include each conversation's ACL.
    pub fn return_acl(mut self, return_acl: bool) -> Self {
        self.return_acl = return_acl;
        self
    }

    /// `limit` (0..=1000; the server's default is 100).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// `skip`.
    pub fn skip(mut self, skip: u32) -> Self {
        self.skip = Some(skip);
        self
    }

    /// `order`: a comma-separated list of fields, `-` for descending (e.g. `"-updatedAt"`);
    /// appended to any order already given.
    pub fn order(mut self, order: impl Into<String>) -> Self {
        self.order.push(order.into());
        self
    }

    /// Sort ascending by `key` (then by any key added later).
    pub fn ascending(self, key: impl Into<String>) -> Self {
        self.order(key)
    }

    /// Sort descending by `key` (then by any key added later).
    pub fn descending(self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.order(format!("-{key}"))
    }

    /// `count=1`: also return the number of matches. Without an explicit [`limit`](Self::limit)
    /// this sends `limit=0` like the SDK's `count()`, so only the count comes back.
    pub fn count(mut self, count: bool) -> Self {
        self.count = count;
        self
    }
}

impl Request for QueryConversations {
    type Response = QueryResult;

    fn method(&self) -> http::Method {
        http::Method::GET
    }

    fn path(&self) -> String {
        CLASS_PATH.to_owned()
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(w) = &self.where_ {
            // validate() rejects what cannot be encoded; this cannot fail for a serde_json Value.
            q.push((
                "where",
                to_python_string(w, PyStyle::Compact).unwrap_or_default(),
            ));
        }
        if !self.include.is_empty() {
            q.push(("include", self.include.join(",")));
        }
        if !self.keys.is_empty() {
            q.push(("keys", self.keys.join(",")));
        }
        if self.return_acl {
            q.push(("returnACL", "true".into()));
        }
        match (self.limit, self.count) {
            (Some(limit), _) => q.push(("limit", limit.to_string())),
            (None, true) => q.push(("limit", "0".into())),
            (None, false) => {}
        }
        if let Some(skip) = self.skip {
            q.push(("skip", skip.to_string()));
        }
        if !self.order.is_empty() {
            q.push(("order", self.order.join(",")));
        }
        if self.count {
            q.push(("count", "1".into()));
        }
        q
    }

    fn body(&self) -> Result<Option<Vec<u8>>, Error> {
        Ok(None)
    }

    fn validate(&self) -> Result<(), ValidationError> {
        if self.where_.as_ref().is_some_and(|w| !w.is_object()) {
            return Err(ValidationError::InvalidWhere);
        }
        if let Some(limit) = self.limit.filter(|l| *l > 1000) {
            return Err(ValidationError::OutOfRange {
                name: "limit",
                value: i64::from(limit),
                min: 0,
                max: 1000,
            });
        }
        Ok(())
    }

    fn is_idempotent(&self) -> bool {
        true
    }
}

/// Delete a conversation: `DELETE /1.1/classes/_Conversation/<id>` with body `{}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteConversation {
    id: ConversationId,
}

impl DeleteConversation {
    /// Delete conversation `id`.
    pub fn new(id: impl Into<ConversationId>) -> Self {
        DeleteConversation { id: id.into() }
    }
}

impl Request for DeleteConversation {
    type Response = ();

    fn method(&self) -> http::Method {
        http::Method::DELETE
    }

    fn path(&self) -> String {
        format!("{CLASS_PATH}/{}", self.id)
    }

    fn body(&self) -> Result<Option<Vec<u8>>, Error> {
        Ok(Some(b"{}".to_vec()))
    }

    fn is_idempotent(&self) -> bool {
        true
    }

    fn decode(&self, _status: u16, _body: Value) -> Result<(), Error> {
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MemberUpdate {
    id: ConversationId,
    members: Vec<ClientId>,
}

impl MemberUpdate {
    fn new<I>(id: ConversationId, members: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<ClientId>,
    {
        MemberUpdate {
            id,
            members: dedup(members.into_iter().map(Into::into)),
        }
    }

    fn body(&self, op: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(Some(body_bytes(
            &json!({"m": {"__op": op, "objects": self.members}}),
        )?))
    }

    fn validate(&self) -> Result<(), ValidationError> {
        if self.members.is_empty() {
            return Err(ValidationError::NoMembers);
        }
        if self.members.len() > MAX_MEMBERS {
            return Err(ValidationError::TooManyMembers {
                count: self.members.len(),
                max: MAX_MEMBERS,
            });
        }
        Ok(())
    }
}

macro_rules! member_request {
    ($(#[$doc:meta])* $name:ident, $op:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(MemberUpdate);

        impl $name {
            /// Update conversation `id` with these client ids (repeats are sent once).
            pub fn new<I>(id: impl Into<ConversationId>, members: I) -> Self
            where
                I: IntoIterator,
                I::Item: Into<ClientId>,
            {
                $name(MemberUpdate::new(id.into(), members))
            }
        }

        impl Request for $name {
            type Response = UpdatedObject;

            fn method(&self) -> http::Method {
                http::Method::PUT
            }

            fn path(&self) -> String {
                format!("{CLASS_PATH}/{}", self.0.id)
            }

            fn query(&self) -> Vec<(&'static str, String)> {
                vec![("fetchWhenSave", "false".into())]
            }

            fn body(&self) -> Result<Option<Vec<u8>>, Error> {
                self.0.body($op)
            }

            fn validate(&self) -> Result<(), ValidationError> {
                self.0.validate()
            }

            fn is_idempotent(&self) -> bool {
                true
            }
        }
    };
}

member_request! {
    /// Add members: `PUT /1.1/classes/_Conversation/<id>?fetchWhenSave=false` with
    /// `{"m":{"__op":"AddUnique","objects":[…]}}`.
    ///
    /// The SDK's `add_member` sends `Add`, which duplicates a member when a request is repeated;
    /// `AddUnique` makes adding idempotent, so it can be retried safely.
    ///
    /// ```
    /// # use leancloud_im::{AddMembers, ClientId, ConversationId, Request};
    /// let add = AddMembers::new(
    ///     ConversationId::parse("abc").unwrap(),
    ///     [ClientId::parse("x").unwrap(), ClientId::parse("y").unwrap()],
    /// );
    /// assert_eq!(
    ///     br#"{"m":{"__op":"AddUnique","objects":["x","y"]}}"#.to_vec(),
    ///     add.body().unwrap().unwrap()
    /// );
    /// ```
    AddMembers, "AddUnique"
}

member_request! {
    /// Remove members: `PUT /1.1/classes/_Conversation/<id>?fetchWhenSave=false` with
    /// `{"m":{"__op":"Remove","objects":[…]}}`.
    RemoveMembers, "Remove"
}

impl_send!(
    CreateConversation,
    GetConversation,
    QueryConversations,
    DeleteConversation,
    AddMembers,
    RemoveMembers
);

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn cid(s: &str) -> ClientId {
        ClientId::parse(s).unwrap()
    }

    fn body<R: Request>(r: &R) -> String {
        String::from_utf8(r.body().unwrap().unwrap()).unwrap()
    }

    #[test]
    fn create_bodies_match_the_sdk_captures() {
        let cases = [
            (
                CreateConversation::new().name("测试 conv"),
                r#"{"name":"\u6d4b\u8bd5 conv"}"#,
            ),
            (
                CreateConversation::new().name("sys").system(true),
                r#"{"name":"sys","sys":true}"#,
            ),
            (
                CreateConversation::new()
                    .name("tr")
                    .transient(true)
                    .unique(true),
                r#"{"name":"tr","tr":true}"#,
            ),
            (
                CreateConversation::new()
                    .name("u")
                    .unique(true)
                    .members([cid("a"), cid("b")]),
                r#"{"name":"u","unique":true,"m":{"__op":"Add","objects":["a","b"]}}"#,
            ),
            (CreateConversation::new(), "{}"),
        ];
        for (request, expected) in cases {
            assert_eq!(expected, body(&request), "for {request:?}");
        }
    }

    #[test]
    fn create_with_attributes_and_creator_keeps_a_stable_order() {
        let create = CreateConversation::new()
            .name("n")
            .unique(false)
            .creator(cid("alice"))
            .attribute("topic", "café")
            .attribute("attr", json!({"k": "v"}))
            .members([cid("a"), cid("b"), cid("a")]);
        assert_eq!(
            r#"{"name":"n","unique":false,"c":"alice","topic":"caf\u00e9","attr":{"k":"v"},"m":{"__op":"Add","objects":["a","b"]}}"#,
            body(&create)
        );
    }

    #[test]
    fn create_rejects_reserved_attributes_and_conflicting_kinds() {
        let bad = CreateConversation::new().attribute("m", json!([]));
        assert!(matches!(
            bad.validate(),
            Err(ValidationError::InvalidAttribute { .. })
        ));
        let bad = CreateConversation::new().attribute("1x", 1);
        assert!(matches!(
            bad.validate(),
            Err(ValidationError::InvalidAttribute { .. })
        ));
        let bad = CreateConversation::new().system(true).transient(true);
        assert_eq!(Err(ValidationError::ConflictingKinds), bad.validate());
        let many = CreateConversation::new().members((0..501).map(|i| cid(&format!("u{i}"))));
        assert_eq!(
            Err(ValidationError::TooManyMembers {
                count: 501,
                max: 500
            }),
            many.validate()
        );
    }

    #[test]
    fn member_updates_use_add_unique_and_remove() {
        let id = ConversationId::parse("abc").unwrap();
        let add = AddMembers::new(&id, [cid("x"), cid("y"), cid("x")]);
        assert_eq!(
            r#"{"m":{"__op":"AddUnique","objects":["x","y"]}}"#,
            body(&add)
        );
        assert_eq!("/classes/_Conversation/abc", add.path());
        assert_eq!(http::Method::PUT, add.method());
        assert!(add.is_idempotent());
        let remove = RemoveMembers::new(&id, [cid("c")]);
        assert_eq!(r#"{"m":{"__op":"Remove","objects":["c"]}}"#, body(&remove));
        let empty = AddMembers::new(&id, Vec::<ClientId>::new());
        assert_eq!(Err(ValidationError::NoMembers), empty.validate());
    }

    #[test]
    fn query_parameters_follow_the_sdk_order() {
        let since = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let q = QueryConversations::new()
            .where_(json!({"m": {"$in": ["a"]}, "updatedAt": {"$gt": date_value(&since)}}))
            .keys(["name", "m"])
            .limit(10)
            .skip(5)
            .descending("updatedAt");
        let params: Vec<(&str, String)> = q.query();
        assert_eq!(
            vec![
                ("where", r#"{"m":{"$in":["a"]},"updatedAt":{"$gt":{"__type":"Date","iso":"2026-01-01T00:00:00.000Z"}}}"#.to_string()),
                ("keys", "name,m".into()),
                ("limit", "10".into()),
                ("skip", "5".into()),
                ("order", "-updatedAt".into()),
            ],
            params
        );
        assert!(QueryConversations::new()
            .where_(json!([1]))
            .validate()
            .is_err());
        assert!(QueryConversations::new().limit(1001).validate().is_err());
    }

    #[test]
    fn conversations_decode_every_documented_field() {
        let value = json!({
            "objectId": "abc", "name": "n", "c": "alice", "m": ["a", "b"], "mu": ["b"],
            "lm": {"__type": "Date", "iso": "2026-01-02T03:04:05.678Z"},
            "sys": false, "tr": false, "unique": true, "topic": "x",
            "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z",
            "ACL": {"*": {"read": true}}
        });
        let conv: Conversation = serde_json::from_value(value.clone()).unwrap();
        assert_eq!("abc", conv.id.as_str());
        assert_eq!(Some(cid("alice")), conv.creator);
        assert_eq!(vec![cid("a"), cid("b")], conv.members);
        assert_eq!(vec![cid("b")], conv.muted_members);
        assert_eq!(
            Some(
                Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
                    + chrono::Duration::milliseconds(678)
            ),
            conv.last_message_at
        );
        assert!(conv.unique && !conv.system && !conv.transient);
        assert_eq!(Some(&json!("x")), conv.attributes.get("topic"));
        assert_eq!(Some(json!({"*": {"read": true}})), conv.acl);
        let again: Conversation =
            serde_json::from_value(serde_json::to_value(&conv).unwrap()).unwrap();
        assert_eq!(conv, again, "serialising keeps every field");
        assert!(serde_json::from_value::<Conversation>(json!({"name": "x"})).is_err());
        assert!(serde_json::from_value::<Conversation>(
            json!({"objectId": "a", "createdAt": "yesterday"})
        )
        .is_err());
    }
}
