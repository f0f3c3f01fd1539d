//! Broadcasts: to a service conversation's subscribers, and to every client of the app.

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use super::messages::sent;
use super::{check_limit, request, unit, Scope};
use crate::ids::{ClientId, ConversationId, MessageId};
use crate::messages::{check_size, non_empty_push, MessageBody, SentMessage, ValidTill};
use crate::push::PushData;
use crate::request::{check_segment, path_segment};

#[derive(Serialize)]
struct BroadcastBody<'a> {
    from_client: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    conv_id: Option<&'a str>,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_till: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    push: Option<&'a PushData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transient: Option<bool>,
}

/// Broadcast to every subscriber of a service conversation:
/// `POST /1.2/rtm/service-conversations/<id>/broadcasts` with `{"from_client","message"[,"push"]}` →
/// `{"msg-id","timestamp"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriberBroadcast {
    id: ConversationId,
    from: ClientId,
    message: MessageBody,
    push: Option<PushData>,
}

impl SubscriberBroadcast {
    /// Broadcast `message` as `from` to the subscribers of service conversation `id`.
    pub fn new(
        id: impl Into<ConversationId>,
        from: impl Into<ClientId>,
        message: impl Into<MessageBody>,
    ) -> Self {
        SubscriberBroadcast {
            id: id.into(),
            from: from.into(),
            message: message.into(),
            push: None,
        }
    }

    /// `push`: the offline push notification.
    pub fn push(mut self, push: PushData) -> Self {
        self.push = Some(push);
        self
    }
}

request!(SubscriberBroadcast => SentMessage, POST, idempotent: false,
    path(s) { format!("{}/broadcasts", Scope::ServiceConversation.path(&s.id)) },
    body(s) {
        BroadcastBody {
            from_client: s.from.as_str(),
            conv_id: None,
            message: s.message.wire_text(),
            valid_till: None,
            push: non_empty_push(&s.push),
            transient: None,
        }
    },
    validate(s) {
        if let Some(push) = &s.push {
            push.validate()?;
        }
        check_size(&s.message.wire_text(), non_empty_push(&s.push))
    },
    decode = sent,
);

/// Broadcast to every client of the app through a service conversation: `POST /1.2/rtm/broadcasts` with
/// `{"from_client","conv_id","message"[,"valid_till"][,"push"][,"transient"]}` → `{"msg-id","timestamp"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalBroadcast {
    id: ConversationId,
    from: ClientId,
    message: MessageBody,
    valid_till: Option<ValidTill>,
    push: Option<PushData>,
    transient: Option<bool>,
}

impl GlobalBroadcast {
    /// Broadcast `message` as `from` through service conversation `id`.
    pub fn new(
        id: impl Into<ConversationId>,
        from: impl Into<ClientId>,
        message: impl Into<MessageBody>,
    ) -> Self {
        GlobalBroadcast {
            id: id.into(),
            from: from.into(),
            message: message.into(),
            valid_till: None,
            push: None,
            transient: None,
        }
    }

    /// `valid_till`: offline clients get it on their next login until then (at most one month ahead).
    pub fn valid_till(mut self, valid_till: impl Into<ValidTill>) -> Self {
        self.valid_till = Some(valid_till.into());
        self
    }

    /// `push`: the offline push notification.
    pub fn push(mut self, push: PushData) -> Self {
        self.push = Some(push);
        self
    }

    /// `transient`: online clients only.
    pub fn transient(mut self, transient: bool) -> Self {
        self.transient = Some(transient);
        self
    }
}

request!(GlobalBroadcast => SentMessage, POST, idempotent: false,
    path(_s) { "/rtm/broadcasts".to_owned() },
    body(s) {
        BroadcastBody {
            from_client: s.from.as_str(),
            conv_id: Some(s.id.as_str()),
            message: s.message.wire_text(),
            valid_till: s.valid_till.map(|v| v.epoch_millis()),
            push: non_empty_push(&s.push),
            transient: s.transient,
        }
    },
    validate(s) {
        if let Some(valid_till) = &s.valid_till {
            valid_till.check(Utc::now())?;
        }
        if let Some(push) = &s.push {
            push.validate()?;
        }
        check_size(&s.message.wire_text(), non_empty_push(&s.push))
    },
    decode = sent,
);

/// The broadcasts still valid: `GET /1.2/rtm/broadcasts?conv_id=…&limit=…&skip=…`. The answer's shape is
/// undocumented, so it is returned as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Broadcasts {
    conv_id: Option<ConversationId>,
    limit: Option<u32>,
    skip: Option<u32>,
}

impl Broadcasts {
    /// Every valid broadcast (the server's default page).
    pub fn new() -> Self {
        Self::default()
    }

    /// `conv_id`: only those of this service conversation.
    pub fn conversation(mut self, id: impl Into<ConversationId>) -> Self {
        self.conv_id = Some(id.into());
        self
    }

    /// `limit`: 1 to 1000.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// `skip`.
    pub fn skip(mut self, skip: u32) -> Self {
        self.skip = Some(skip);
        self
    }
}

request!(Broadcasts => Value, GET, idempotent: true,
    path(_s) { "/rtm/broadcasts".to_owned() },
    query(s) {
        let mut q = Vec::new();
        if let Some(id) = &s.conv_id {
            q.push(("conv_id", id.to_string()));
        }
        if let Some(limit) = s.limit {
            q.push(("limit", limit.to_string()));
        }
        if let Some(skip) = s.skip {
            q.push(("skip", skip.to_string()));
        }
        q
    },
    validate(s) { check_limit(s.limit, 1000) },
);

/// Withdraw a broadcast from the clients that have not received it: `DELETE /1.2/rtm/broadcasts/<msg_id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteBroadcast {
    msg_id: MessageId,
}

impl DeleteBroadcast {
    /// Withdraw broadcast `msg_id`.
    pub fn new(msg_id: impl Into<MessageId>) -> Self {
        DeleteBroadcast {
            msg_id: msg_id.into(),
        }
    }
}

request!(DeleteBroadcast => (), DELETE, idempotent: true,
    path(s) { format!("/rtm/broadcasts/{}", path_segment(s.msg_id.as_str())) },
    validate(s) { check_segment("message id", s.msg_id.as_str()) },
    decode = unit,
);
