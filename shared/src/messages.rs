//! Sending, broadcasting and reading messages (`/1.1/rtm/…`).

use std::time::SystemTime;

use chrono::{DateTime, Months, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::conversations::body_bytes;
use crate::error::{Error, ValidationError};
use crate::ids::{ClientId, ConversationId, MessageId};
use crate::json::{to_python_string, PyStyle};
use crate::protocol::{MAX_HISTORY_LIMIT, MAX_MESSAGE_BYTES, MAX_RECIPIENTS};
use crate::push::PushData;
use crate::request::{impl_send, py_bool, Request};

/// A message's content.
///
/// A [`Json`](MessageBody::Json) object (e.g. a rich-media message `{"_lctype": -1, "_lctext": "…"}`)
/// is sent as the SDK sends a `dict`: serialised with Python's default `json.dumps` (`", "` and
/// `": "` separators, `ensure_ascii`) and embedded as a string.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageBody {
    /// A plain string, sent as is.
    Text(String),
    /// A JSON value, sent as its Python-style serialisation (a JSON string is sent as is).
    Json(Value),
}

impl From<&str> for MessageBody {
    fn from(s: &str) -> Self {
        MessageBody::Text(s.to_owned())
    }
}

impl From<String> for MessageBody {
    fn from(s: String) -> Self {
        MessageBody::Text(s)
    }
}

impl From<Value> for MessageBody {
    fn from(v: Value) -> Self {
        MessageBody::Json(v)
    }
}

impl MessageBody {
    /// The `message` string as it goes on the wire.
    ///
    /// ```
    /// # use leancloud_im::MessageBody;
    /// let body = MessageBody::from(serde_json::json!({"_lctype": -1, "_lctext": "你好"}));
    /// assert_eq!(r#"{"_lctype": -1, "_lctext": "\u4f60\u597d"}"#, body.wire_text());
    /// ```
    pub fn wire_text(&self) -> String {
        match self {
            MessageBody::Text(s) => s.clone(),
            MessageBody::Json(Value::String(s)) => s.clone(),
            // Serialising a serde_json Value cannot fail.
            MessageBody::Json(v) => to_python_string(v, PyStyle::Default).unwrap_or_default(),
        }
    }
}

pub(crate) fn check_size(message: &str, push: Option<&PushData>) -> Result<(), ValidationError> {
    let bytes = message.len() + push.map_or(0, PushData::wire_len);
    if bytes > MAX_MESSAGE_BYTES {
        return Err(ValidationError::MessageTooLarge {
            bytes,
            limit: MAX_MESSAGE_BYTES,
        });
    }
    Ok(())
}

pub(crate) fn non_empty_push(push: &Option<PushData>) -> Option<&PushData> {
    push.as_ref().filter(|p| !p.is_empty())
}

/// The answer to a send or broadcast: `{"msg-id", "timestamp"}` (asynchronous delivery; older
/// servers answered `{}`, hence the options).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// `msg-id`.
    #[serde(rename = "msg-id", default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<MessageId>,
    /// `timestamp` in epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

impl SentMessage {
    /// Lenient: any JSON is a success (as for the SDK); the fields are read when present.
    pub(crate) fn from_value(value: &Value) -> SentMessage {
        SentMessage {
            msg_id: value
                .get("msg-id")
                .and_then(Value::as_str)
                .and_then(|s| MessageId::parse(s).ok()),
            timestamp: value.get("timestamp").and_then(Value::as_i64),
        }
    }
}

#[derive(Serialize)]
struct SendBody<'a> {
    from_peer: &'a str,
    conv_id: &'a str,
    transient: bool,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_peers: Option<&'a [ClientId]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    push_data: Option<&'a PushData>,
}

/// Send a message as any client: `POST /1.1/rtm/messages` with
/// `{"from_peer","conv_id","transient","message"[,"to_peers"][,"push_data"]}`.
///
/// `transient` is always sent (API 1.1 defaults it to `true` when absent; this request defaults to
/// `false`, like the SDK).
///
/// ```
/// # use leancloud_im::{Badge, ClientId, ConversationId, PushData, Request, SendMessage};
/// let send = SendMessage::new(
///     ConversationId::parse("abc").unwrap(),
///     ClientId::parse("sys").unwrap(),
///     "hi",
/// )
/// .to_clients([ClientId::parse("u1").unwrap(), ClientId::parse("u2").unwrap()])
/// .push(PushData::new().alert("新消息").badge(Badge::Increment));
/// assert_eq!(
///     br#"{"from_peer":"sys","conv_id":"abc","transient":false,"message":"hi","to_peers":["u1","u2"],"push_data":{"alert":"\u65b0\u6d88\u606f","badge":"Increment"}}"#.to_vec(),
///     send.body().unwrap().unwrap()
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SendMessage {
    conv_id: ConversationId,
    from: ClientId,
    body: MessageBody,
    transient: bool,
    to_peers: Option<Vec<ClientId>>,
    push: Option<PushData>,
}

impl SendMessage {
    /// Send `body` to conversation `conv_id` as client `from`.
    pub fn new(
        conv_id: impl Into<ConversationId>,
        from: impl Into<ClientId>,
        body: impl Into<MessageBody>,
    ) -> Self {
        SendMessage {
            conv_id: conv_id.into(),
            from: from.into(),
            body: body.into(),
            transient: false,
            to_peers: None,
            push: None,
        }
    }

    /// `transient`: deliver only to online clients, do not store (default `false`).
    pub fn transient(mut self, transient: bool) -> Self {
        self.transient = transient;
        self
    }

    /// `to_peers`: in a system conversation, deliver only to these clients (1 to
    /// [`MAX_RECIPIENTS`] distinct ids). An empty list is an error rather than, as in the SDK, a
    /// send to every subscriber.
    pub fn to_clients<I>(mut self, clients: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<ClientId>,
    {
        self.to_peers = Some(clients.into_iter().map(Into::into).collect());
        self
    }

    /// `push_data`: the offline push notification.
    pub fn push(mut self, push: PushData) -> Self {
        self.push = Some(push);
        self
    }
}

impl Request for SendMessage {
    type Response = SentMessage;

    fn method(&self) -> http::Method {
        http::Method::POST
    }

    fn path(&self) -> String {
        "/rtm/messages".to_owned()
    }

    fn body(&self) -> Result<Option<Vec<u8>>, Error> {
        let message = self.body.wire_text();
        let body = SendBody {
            from_peer: self.from.as_str(),
            conv_id: self.conv_id.as_str(),
            transient: self.transient,
            message: &message,
            to_peers: self.to_peers.as_deref(),
            push_data: non_empty_push(&self.push),
        };
        Ok(Some(body_bytes(&body)?))
    }

    fn validate(&self) -> Result<(), ValidationError> {
        if let Some(peers) = &self.to_peers {
            if peers.is_empty() {
                return Err(ValidationError::NoRecipients);
            }
            if peers.len() > MAX_RECIPIENTS {
                return Err(ValidationError::TooManyRecipients {
                    count: peers.len(),
                    max: MAX_RECIPIENTS,
                });
            }
            for (i, peer) in peers.iter().enumerate() {
                if peers[..i].contains(peer) {
                    return Err(ValidationError::DuplicateRecipient(peer.to_string()));
                }
            }
        }
        if let Some(push) = &self.push {
            push.validate()?;
        }
        check_size(&self.body.wire_text(), non_empty_push(&self.push))
    }

    fn is_idempotent(&self) -> bool {
        false
    }

    fn decode(&self, _status: u16, body: Value) -> Result<SentMessage, Error> {
        Ok(SentMessage::from_value(&body))
    }
}

/// When a broadcast expires, as a timestamp or epoch milliseconds (at most one month ahead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidTill {
    /// A point in time.
    At(DateTime<Utc>),
    /// Epoch milliseconds (UTC), as the wire carries it.
    EpochMillis(i64),
}

impl ValidTill {
    /// The value sent as `valid_till`.
    pub fn epoch_millis(&self) -> i64 {
        match self {
            ValidTill::At(at) => at.timestamp_millis(),
            ValidTill::EpochMillis(ms) => *ms,
        }
    }

    /// Check that it lies after `now` and at most one calendar month after it.
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), ValidationError> {
        let ms = self.epoch_millis();
        if ms <= now.timestamp_millis() {
            return Err(ValidationError::ValidTillOutOfRange {
                valid_till_ms: ms,
                reason: "it is not in the future",
            });
        }
        let limit = now.checked_add_months(Months::new(1)).unwrap_or(now);
        if ms > limit.timestamp_millis() {
            return Err(ValidationError::ValidTillOutOfRange {
                valid_till_ms: ms,
                reason: "it is more than one month ahead",
            });
        }
        Ok(())
    }
}

impl From<DateTime<Utc>> for ValidTill {
    fn from(at: DateTime<Utc>) -> Self {
        ValidTill::At(at)
    }
}

impl From<i64> for ValidTill {
    fn from(ms: i64) -> Self {
        ValidTill::EpochMillis(ms)
    }
}

impl From<SystemTime> for ValidTill {
    fn from(at: SystemTime) -> Self {
        ValidTill::At(at.into())
    }
}

#[derive(Serialize)]
struct BroadcastBody<'a> {
    from_peer: &'a str,
    conv_id: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    push: Option<&'a PushData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_till: Option<i64>,
}

/// Broadcast in a system conversation to every client of the app: `POST /1.1/rtm/broadcast` with
/// `{"from_peer","conv_id","message"[,"push"][,"valid_till"]}`.
///
/// The push payload goes in `push`, the field LeanCloud documents (and the JS SDK sends); the
/// Python SDK sends `push_data`, which the documented API does not read.
///
/// ```
/// # use leancloud_im::{Broadcast, ClientId, ConversationId, PushData, Request};
/// let b = Broadcast::new(
///     ConversationId::parse("abc").unwrap(),
///     ClientId::parse("sys").unwrap(),
///     serde_json::json!({"_lctype": -1, "_lctext": "hi"}),
/// )
/// .push(PushData::new().alert("x"));
/// assert_eq!(
///     br#"{"from_peer":"sys","conv_id":"abc","message":"{\"_lctype\": -1, \"_lctext\": \"hi\"}","push":{"alert":"x"}}"#.to_vec(),
///     b.body().unwrap().unwrap()
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    conv_id: ConversationId,
    from: ClientId,
    body: MessageBody,
    valid_till: Option<ValidTill>,
    push: Option<PushData>,
}

impl Broadcast {
    /// Broadcast `body` through system conversation `conv_id` as client `from`.
    pub fn new(
        conv_id: impl Into<ConversationId>,
        from: impl Into<ClientId>,
        body: impl Into<MessageBody>,
    ) -> Self {
        Broadcast {
            conv_id: conv_id.into(),
            from: from.into(),
            body: body.into(),
            valid_till: None,
            push: None,
        }
    }

    /// `valid_till`: clients that come online later stop receiving it after this time (server
    /// default and maximum: one month).
    pub fn valid_till(mut self, valid_till: impl Into<ValidTill>) -> Self {
        self.valid_till = Some(valid_till.into());
        self
    }

    /// `push`: the offline push notification.
    pub fn push(mut self, push: PushData) -> Self {
        self.push = Some(push);
        self
    }
}

impl Request for Broadcast {
    type Response = SentMessage;

    fn method(&self) -> http::Method {
        http::Method::POST
    }

    fn path(&self) -> String {
        "/rtm/broadcast".to_owned()
    }

    fn body(&self) -> Result<Option<Vec<u8>>, Error> {
        let message = self.body.wire_text();
        let body = BroadcastBody {
            from_peer: self.from.as_str(),
            conv_id: self.conv_id.as_str(),
            message: &message,
            push: non_empty_push(&self.push),
            valid_till: self.valid_till.map(|v| v.epoch_millis()),
        };
        Ok(Some(body_bytes(&body)?))
    }

    fn validate(&self) -> Result<(), ValidationError> {
        if let Some(valid_till) = &self.valid_till {
            valid_till.check(Utc::now())?;
        }
        if let Some(push) = &self.push {
            push.validate()?;
        }
        check_size(&self.body.wire_text(), non_empty_push(&self.push))
    }

    fn is_idempotent(&self) -> bool {
        false
    }

    fn decode(&self, _status: u16, body: Value) -> Result<SentMessage, Error> {
        Ok(SentMessage::from_value(&body))
    }
}

/// One stored message, as `/1.1/rtm/messages/history` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// `timestamp`: when the server received it, epoch milliseconds.
    pub timestamp: i64,
    /// `conv-id`.
    #[serde(rename = "conv-id")]
    pub conv_id: ConversationId,
    /// `data`: the message content.
    pub data: String,
    /// `from`: the sender.
    pub from: ClientId,
    /// `msg-id`.
    #[serde(rename = "msg-id")]
    pub msg_id: MessageId,
    /// `is-conv`.
    #[serde(rename = "is-conv", default)]
    pub is_conv: bool,
    /// `is-room`: sent in a chat room.
    #[serde(rename = "is-room", default)]
    pub is_room: bool,
    /// `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `bin`: binary content (base64 in `data`).
    #[serde(default)]
    pub bin: bool,
    /// `from-ip`.
    #[serde(rename = "from-ip", default, skip_serializing_if = "Option::is_none")]
    pub from_ip: Option<String>,
    /// Any other field the server returned.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HistoryScope {
    Conversation(ConversationId),
    Client(ClientId),
    All,
}

/// Read stored messages, newest first: `GET /1.1/rtm/messages/history?convid=…&limit=…&reversed=…&max_ts=…&msgid=…`.
///
/// ```
/// # use leancloud_im::{ConversationId, MessageHistory, MessageId, Request};
/// let h = MessageHistory::conversation(ConversationId::parse("abc").unwrap())
///     .limit(10)
///     .reversed(true)
///     .before(1700000000500)
///     .before_message(MessageId::parse("mid").unwrap());
/// assert_eq!(
///     vec![("convid", "abc".to_string()), ("limit", "10".into()), ("reversed", "True".into()),
///          ("max_ts", "1700000000500".into()), ("msgid", "mid".into())],
///     h.query()
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHistory {
    scope: HistoryScope,
    limit: Option<u32>,
    reversed: Option<bool>,
    before: Option<i64>,
    before_message: Option<MessageId>,
}

impl MessageHistory {
    fn with_scope(scope: HistoryScope) -> Self {
        MessageHistory {
            scope,
            limit: None,
            reversed: None,
            before: None,
            before_message: None,
        }
    }

    /// Messages of one conversation (`convid`).
    pub fn conversation(id: impl Into<ConversationId>) -> Self {
        Self::with_scope(HistoryScope::Conversation(id.into()))
    }

    /// Messages sent by one client (`from`).
    pub fn client(id: impl Into<ClientId>) -> Self {
        Self::with_scope(HistoryScope::Client(id.into()))
    }

    /// Every message of the app.
    pub fn all() -> Self {
        Self::with_scope(HistoryScope::All)
    }

    /// `limit`: 1 to [`MAX_HISTORY_LIMIT`] (server default 100).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// `reversed`: oldest first, starting after [`before`](Self::before).
    pub fn reversed(mut self, reversed: bool) -> Self {
        self.reversed = Some(reversed);
        self
    }

    /// `max_ts`: start before this time (epoch milliseconds), as the SDK's `before_time`.
    pub fn before(mut self, timestamp_ms: i64) -> Self {
        self.before = Some(timestamp_ms);
        self
    }

    /// [`before`](Self::before) from a timestamp.
    pub fn before_time(self, at: DateTime<Utc>) -> Self {
        self.before(at.timestamp_millis())
    }

    /// `msgid`: start at this message; needs [`before`](Self::before) set to its timestamp.
    pub fn before_message(mut self, id: impl Into<MessageId>) -> Self {
        self.before_message = Some(id.into());
        self
    }
}

impl Request for MessageHistory {
    type Response = Vec<HistoryRecord>;

    fn method(&self) -> http::Method {
        http::Method::GET
    }

    fn path(&self) -> String {
        "/rtm/messages/history".to_owned()
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        match &self.scope {
            HistoryScope::Conversation(id) => q.push(("convid", id.to_string())),
            HistoryScope::Client(id) => q.push(("from", id.to_string())),
            HistoryScope::All => {}
        }
        if let Some(limit) = self.limit {
            q.push(("limit", limit.to_string()));
        }
        if let Some(reversed) = self.reversed {
            q.push(("reversed", py_bool(reversed)));
        }
        if let Some(before) = self.before {
            q.push(("max_ts", before.to_string()));
        }
        if let Some(msg) = &self.before_message {
            q.push(("msgid", msg.to_string()));
        }
        q
    }

    fn body(&self) -> Result<Option<Vec<u8>>, Error> {
        Ok(None)
    }

    fn validate(&self) -> Result<(), ValidationError> {
        if let Some(limit) = self.limit.filter(|l| !(1..=MAX_HISTORY_LIMIT).contains(l)) {
            return Err(ValidationError::OutOfRange {
                name: "limit",
                value: i64::from(limit),
                min: 1,
                max: i64::from(MAX_HISTORY_LIMIT),
            });
        }
        if self.before_message.is_some() && self.before.is_none() {
            return Err(ValidationError::MessageIdWithoutTimestamp);
        }
        Ok(())
    }

    fn is_idempotent(&self) -> bool {
        true
    }
}

impl_send!(SendMessage, Broadcast, MessageHistory);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::Badge;
    use chrono::TimeZone;
    use serde_json::json;

    fn cid(s: &str) -> ClientId {
        ClientId::parse(s).unwrap()
    }

    fn conv() -> ConversationId {
        ConversationId::parse("abc").unwrap()
    }

    fn body<R: Request>(r: &R) -> String {
        String::from_utf8(r.body().unwrap().unwrap()).unwrap()
    }

    #[test]
    fn send_bodies_match_the_sdk_captures() {
        let cases = [
            (
                SendMessage::new(conv(), cid("alice"), "hello"),
                r#"{"from_peer":"alice","conv_id":"abc","transient":false,"message":"hello"}"#,
            ),
            (
                SendMessage::new(
                    conv(),
                    cid("alice"),
                    json!({"_lctype": -1, "_lctext": "你好"}),
                )
                .transient(true),
                r#"{"from_peer":"alice","conv_id":"abc","transient":true,"message":"{\"_lctype\": -1, \"_lctext\": \"\\u4f60\\u597d\"}"}"#,
            ),
            (
                SendMessage::new(conv(), cid("sys"), "hi")
                    .to_clients([cid("u1"), cid("u2")])
                    .push(PushData::new().alert("新消息").badge(Badge::Increment)),
                r#"{"from_peer":"sys","conv_id":"abc","transient":false,"message":"hi","to_peers":["u1","u2"],"push_data":{"alert":"\u65b0\u6d88\u606f","badge":"Increment"}}"#,
            ),
            (
                SendMessage::new(conv(), cid("a"), "b").push(PushData::new()),
                r#"{"from_peer":"a","conv_id":"abc","transient":false,"message":"b"}"#,
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(expected, body(&request), "for {request:?}");
        }
    }

    #[test]
    fn broadcast_bodies_match_the_captures_except_for_the_documented_push_field() {
        let b = Broadcast::new(conv(), cid("sys"), "m").valid_till(1767225600000);
        assert_eq!(
            r#"{"from_peer":"sys","conv_id":"abc","message":"m","valid_till":1767225600000}"#,
            body(&b)
        );
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let b = Broadcast::new(conv(), cid("sys"), "m")
            .valid_till(at)
            .push(PushData::new().alert("x"));
        assert_eq!(
            r#"{"from_peer":"sys","conv_id":"abc","message":"m","push":{"alert":"x"},"valid_till":1767225600000}"#,
            body(&b)
        );
    }

    #[test]
    fn recipients_are_validated_before_sending() {
        let send = |n: usize| {
            SendMessage::new(conv(), cid("sys"), "hi")
                .to_clients((0..n).map(|i| cid(&format!("u{i}"))))
        };
        assert_eq!(Err(ValidationError::NoRecipients), send(0).validate());
        assert_eq!(Ok(()), send(1).validate());
        assert_eq!(Ok(()), send(20).validate());
        assert_eq!(
            Err(ValidationError::TooManyRecipients { count: 21, max: 20 }),
            send(21).validate()
        );
        let dup =
            SendMessage::new(conv(), cid("sys"), "hi").to_clients([cid("a"), cid("b"), cid("a")]);
        assert_eq!(
            Err(ValidationError::DuplicateRecipient("a".into())),
            dup.validate()
        );
    }

    #[test]
    fn message_size_counts_the_push_payload() {
        let exact = "x".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(
            Ok(()),
            SendMessage::new(conv(), cid("a"), exact.as_str()).validate()
        );
        let over = "x".repeat(MAX_MESSAGE_BYTES + 1);
        assert_eq!(
            Err(ValidationError::MessageTooLarge {
                bytes: MAX_MESSAGE_BYTES + 1,
                limit: MAX_MESSAGE_BYTES
            }),
            SendMessage::new(conv(), cid("a"), over.as_str()).validate()
        );
        // 5100 bytes of text fit alone, but not with a 33-byte push payload.
        let text = "x".repeat(5100);
        let push = PushData::new().alert("y".repeat(20)); // {"alert":"yyyy…"} = 32 bytes
        assert_eq!(
            Ok(()),
            SendMessage::new(conv(), cid("a"), text.as_str()).validate()
        );
        assert_eq!(
            Err(ValidationError::MessageTooLarge {
                bytes: 5100 + 32,
                limit: MAX_MESSAGE_BYTES
            }),
            SendMessage::new(conv(), cid("a"), text.as_str())
                .push(push.clone())
                .validate()
        );
        assert!(matches!(
            Broadcast::new(conv(), cid("a"), text.as_str())
                .push(push)
                .validate(),
            Err(ValidationError::MessageTooLarge { .. })
        ));
        // multi-byte text counts in UTF-8 bytes
        let cjk = "你".repeat(1707); // 5121 bytes
        assert!(SendMessage::new(conv(), cid("a"), cjk.as_str())
            .validate()
            .is_err());
    }

    #[test]
    fn valid_till_must_be_in_the_next_month() {
        let now = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
        let ok = [
            now + chrono::Duration::hours(1),
            Utc.with_ymd_and_hms(2026, 2, 15, 12, 0, 0).unwrap(),
        ];
        for at in ok {
            assert_eq!(Ok(()), ValidTill::from(at).check(now), "for {at}");
        }
        let bad = [
            now,
            now - chrono::Duration::days(1),
            Utc.with_ymd_and_hms(2026, 2, 15, 12, 0, 1).unwrap(),
        ];
        for at in bad {
            assert!(ValidTill::from(at).check(now).is_err(), "for {at}");
        }
        assert!(
            ValidTill::from(1767225600000).check(now).is_err(),
            "epoch ms in the past"
        );
        let far = Broadcast::new(conv(), cid("a"), "m")
            .valid_till(Utc::now() + chrono::Duration::days(62));
        assert!(matches!(
            far.validate(),
            Err(ValidationError::ValidTillOutOfRange { .. })
        ));
    }

    #[test]
    fn history_needs_a_timestamp_for_a_message_id_and_a_sane_limit() {
        let h = MessageHistory::conversation(conv()).before_message(MessageId::parse("m").unwrap());
        assert_eq!(
            Err(ValidationError::MessageIdWithoutTimestamp),
            h.validate()
        );
        assert!(MessageHistory::all().limit(0).validate().is_err());
        assert!(MessageHistory::all().limit(1001).validate().is_err());
        assert_eq!(
            vec![("from", "u1".to_string()), ("limit", "5".into())],
            MessageHistory::client(cid("u1")).limit(5).query()
        );
        assert!(MessageHistory::all().query().is_empty());
    }

    #[test]
    fn non_object_json_messages_are_sent_as_strings() {
        assert_eq!("[\"x\", 1]", MessageBody::from(json!(["x", 1])).wire_text());
        assert_eq!("plain", MessageBody::from(json!("plain")).wire_text());
        assert_eq!("1.5", MessageBody::from(json!(1.5)).wire_text());
    }
}
