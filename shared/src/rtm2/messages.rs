//! Messages through the 1.2 API: send (conversations, chat rooms, chosen clients of a service conversation),
//! edit, recall and delete.

use serde::Serialize;
use serde_json::Value;

use super::{check_ids, ids, request, unit, Scope};
use crate::error::ValidationError;
use crate::ids::{ClientId, ConversationId, MessageId};
use crate::messages::{check_size, non_empty_push, MessageBody, SentMessage};
use crate::protocol::MAX_TO_CLIENTS;
use crate::push::PushData;
use crate::request::{check_segment, path_segment};

pub(super) fn sent(_status: u16, body: Value) -> Result<SentMessage, crate::Error> {
    Ok(SentMessage::from_value(&body))
}

/// `priority` of a transient message or a chat-room message (`normal` when not sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// `high`.
    High,
    /// `normal`.
    Normal,
    /// `low`.
    Low,
}

#[derive(Serialize)]
struct SendBody<'a> {
    from_client: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_clients: Option<&'a [ClientId]>,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    transient: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    no_sync: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    push_data: Option<&'a PushData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<Priority>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mention_all: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mention_client_ids: Option<&'a [ClientId]>,
}

/// Send a message: `POST /1.2/rtm/<collection>/<id>/messages` with
/// `{"from_client"[,"to_clients"],"message"[,"transient"][,"no_sync"][,"push_data"][,"priority"][,"mention_all"][,"mention_client_ids"]}`
/// → `{"msg-id","timestamp"}`. Only the options that were set are sent.
///
/// A service conversation takes messages to chosen clients only: `to_clients` (1 to 20) is required there and
/// refused elsewhere. A chat room takes no `no_sync` or `push_data`; `priority` is for chat rooms and transient
/// messages.
///
/// ```
/// # use leancloud_im::rtm2::{Scope, SendMessage};
/// # use leancloud_im::{ClientId, ConversationId, Request};
/// let send = SendMessage::new(Scope::Conversation, ConversationId::parse("abc").unwrap(),
///     ClientId::parse("alice").unwrap(), "hi")
///     .no_sync(true)
///     .mention_clients([ClientId::parse("bob").unwrap()]);
/// assert_eq!(
///     br#"{"from_client":"alice","message":"hi","no_sync":true,"mention_client_ids":["bob"]}"#.to_vec(),
///     send.body().unwrap().unwrap()
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SendMessage {
    scope: Scope,
    id: ConversationId,
    from: ClientId,
    message: MessageBody,
    to_clients: Option<Vec<ClientId>>,
    transient: Option<bool>,
    no_sync: Option<bool>,
    push: Option<PushData>,
    priority: Option<Priority>,
    mention_all: Option<bool>,
    mention_client_ids: Option<Vec<ClientId>>,
}

impl SendMessage {
    /// Send `message` as `from` into conversation `id` of the kind `scope` names.
    pub fn new(
        scope: Scope,
        id: impl Into<ConversationId>,
        from: impl Into<ClientId>,
        message: impl Into<MessageBody>,
    ) -> Self {
        SendMessage {
            scope,
            id: id.into(),
            from: from.into(),
            message: message.into(),
            to_clients: None,
            transient: None,
            no_sync: None,
            push: None,
            priority: None,
            mention_all: None,
            mention_client_ids: None,
        }
    }

    /// `to_clients`: the recipients of a service-conversation message (1 to 20).
    pub fn to_clients<I>(mut self, clients: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<ClientId>,
    {
        self.to_clients = Some(ids(clients));
        self
    }

    /// `transient`: deliver to online clients only, do not store.
    pub fn transient(mut self, transient: bool) -> Self {
        self.transient = Some(transient);
        self
    }

    /// `no_sync`: do not copy the message to the sender's other online devices.
    pub fn no_sync(mut self, no_sync: bool) -> Self {
        self.no_sync = Some(no_sync);
        self
    }

    /// `push_data`: the offline push notification.
    pub fn push(mut self, push: PushData) -> Self {
        self.push = Some(push);
        self
    }

    /// `priority`.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// `mention_all`.
    pub fn mention_all(mut self, mention_all: bool) -> Self {
        self.mention_all = Some(mention_all);
        self
    }

    /// `mention_client_ids` (at most 20).
    pub fn mention_clients<I>(mut self, clients: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<ClientId>,
    {
        self.mention_client_ids = Some(ids(clients));
        self
    }

    fn check(&self) -> Result<(), ValidationError> {
        match (&self.to_clients, self.scope) {
            (Some(to), Scope::ServiceConversation) => {
                check_ids("to_clients", to, Some(MAX_TO_CLIENTS))?
            }
            (None, Scope::ServiceConversation) => {
                return Err(ValidationError::EmptyList {
                    field: "to_clients",
                })
            }
            (Some(_), _) => {
                return Err(ValidationError::NotAllowed {
                    field: "to_clients",
                    reason: "only a service conversation sends to chosen clients",
                })
            }
            (None, _) => {}
        }
        if self.scope == Scope::Chatroom {
            let reason = "a chat room has no offline push and no sync to other devices";
            if self.no_sync.is_some() {
                return Err(ValidationError::NotAllowed {
                    field: "no_sync",
                    reason,
                });
            }
            if self.push.is_some() {
                return Err(ValidationError::NotAllowed {
                    field: "push_data",
                    reason,
                });
            }
        } else if self.priority.is_some() && self.transient != Some(true) {
            return Err(ValidationError::NotAllowed {
                field: "priority",
                reason: "only chat-room and transient messages have a priority",
            });
        }
        if let Some(mentioned) = &self.mention_client_ids {
            check_ids("mention_client_ids", mentioned, Some(MAX_TO_CLIENTS))?;
        }
        if let Some(push) = &self.push {
            push.validate()?;
        }
        check_size(&self.message.wire_text(), non_empty_push(&self.push))
    }
}

request!(SendMessage => SentMessage, POST, idempotent: false,
    path(s) { format!("{}/messages", s.scope.path(&s.id)) },
    body(s) {
        let message = s.message.wire_text();
        serde_json::to_value(SendBody {
            from_client: s.from.as_str(),
            to_clients: s.to_clients.as_deref(),
            message: &message,
            transient: s.transient,
            no_sync: s.no_sync,
            push_data: non_empty_push(&s.push),
            priority: s.priority,
            mention_all: s.mention_all,
            mention_client_ids: s.mention_client_ids.as_deref(),
        })
        .map_err(|source| crate::Error::Decode { status: 0, source })?
    },
    validate(s) { s.check() },
    decode = sent,
);

#[derive(Serialize)]
struct PatchBody<'a> {
    from_client: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_clients: Option<&'a [ClientId]>,
}

/// The message an edit or recall names, and who sent it.
#[derive(Debug, Clone, PartialEq)]
struct Patch {
    scope: Scope,
    id: ConversationId,
    msg_id: MessageId,
    from: ClientId,
    timestamp: i64,
    to_clients: Option<Vec<ClientId>>,
}

impl Patch {
    fn path(&self) -> String {
        format!(
            "{}/messages/{}",
            self.scope.path(&self.id),
            path_segment(self.msg_id.as_str())
        )
    }

    fn body(&self, message: Option<&str>) -> Result<Value, crate::Error> {
        serde_json::to_value(PatchBody {
            from_client: self.from.as_str(),
            message,
            timestamp: self.timestamp,
            to_clients: self.to_clients.as_deref(),
        })
        .map_err(|source| crate::Error::Decode { status: 0, source })
    }

    fn check(&self) -> Result<(), ValidationError> {
        check_segment("message id", self.msg_id.as_str())?;
        match (&self.to_clients, self.scope) {
            (Some(to), Scope::ServiceConversation) => {
                check_ids("to_clients", to, Some(MAX_TO_CLIENTS))
            }
            (Some(_), _) => Err(ValidationError::NotAllowed {
                field: "to_clients",
                reason: "only a service conversation's messages to chosen clients have recipients",
            }),
            (None, _) => Ok(()),
        }
    }
}

macro_rules! patch_builders {
    ($name:ident) => {
        impl $name {
            /// `to_clients`: the recipients of a service-conversation message to chosen clients (1 to 20).
            pub fn to_clients<I>(mut self, clients: I) -> Self
            where
                I: IntoIterator,
                I::Item: Into<ClientId>,
            {
                self.patch.to_clients = Some(ids(clients));
                self
            }
        }
    };
}

/// Edit a message: `PUT /1.2/rtm/<collection>/<id>/messages/<msg_id>` with
/// `{"from_client","message","timestamp"[,"to_clients"]}` → `{"result":{}}`. `timestamp` is the message's
/// original send time (ms); with `msg_id` it names the message (a wrong pair is LeanCloud's 4404).
///
/// ```
/// # use leancloud_im::rtm2::{EditMessage, Scope};
/// # use leancloud_im::{ClientId, ConversationId, MessageId, Request};
/// let edit = EditMessage::new(Scope::Conversation, ConversationId::parse("abc").unwrap(),
///     MessageId::parse("m1").unwrap(), ClientId::parse("alice").unwrap(), 1700000000000, "fixed");
/// assert_eq!("/rtm/conversations/abc/messages/m1", edit.path());
/// assert_eq!(
///     br#"{"from_client":"alice","message":"fixed","timestamp":1700000000000}"#.to_vec(),
///     edit.body().unwrap().unwrap()
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EditMessage {
    patch: Patch,
    message: MessageBody,
}

impl EditMessage {
    /// Replace the content of message `msg_id` (sent by `from` at `timestamp` ms) with `message`.
    pub fn new(
        scope: Scope,
        id: impl Into<ConversationId>,
        msg_id: impl Into<MessageId>,
        from: impl Into<ClientId>,
        timestamp: i64,
        message: impl Into<MessageBody>,
    ) -> Self {
        EditMessage {
            patch: Patch {
                scope,
                id: id.into(),
                msg_id: msg_id.into(),
                from: from.into(),
                timestamp,
                to_clients: None,
            },
            message: message.into(),
        }
    }
}

patch_builders!(EditMessage);

request!(EditMessage => (), PUT, idempotent: true,
    path(s) { s.patch.path() },
    body(s) { s.patch.body(Some(&s.message.wire_text()))? },
    validate(s) {
        s.patch.check()?;
        check_size(&s.message.wire_text(), None)
    },
    decode = unit,
);

/// Recall a message: `PUT /1.2/rtm/<collection>/<id>/messages/<msg_id>/recall` with
/// `{"from_client","timestamp"[,"to_clients"]}` → `{"result":{}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecallMessage {
    patch: Patch,
}

impl RecallMessage {
    /// Recall message `msg_id`, sent by `from` at `timestamp` ms.
    pub fn new(
        scope: Scope,
        id: impl Into<ConversationId>,
        msg_id: impl Into<MessageId>,
        from: impl Into<ClientId>,
        timestamp: i64,
    ) -> Self {
        RecallMessage {
            patch: Patch {
                scope,
                id: id.into(),
                msg_id: msg_id.into(),
                from: from.into(),
                timestamp,
                to_clients: None,
            },
        }
    }
}

patch_builders!(RecallMessage);

request!(RecallMessage => (), PUT, idempotent: true,
    path(s) { format!("{}/recall", s.patch.path()) },
    body(s) { s.patch.body(None)? },
    validate(s) { s.patch.check() },
    decode = unit,
);

/// Delete the stored copy of a message (clients are not told):
/// `DELETE /1.2/rtm/<collection>/<id>/messages/<msg_id>?from_client=…&timestamp=…`, or for a service
/// conversation's message to one subscriber `DELETE /1.2/rtm/service-conversations/<id>/subscribers/<client>/messages/<msg_id>?…`
/// → `{}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteMessage {
    scope: Scope,
    id: ConversationId,
    msg_id: MessageId,
    from: ClientId,
    timestamp: i64,
    subscriber: Option<ClientId>,
}

impl DeleteMessage {
    /// Delete message `msg_id`, sent by `from` at `timestamp` ms.
    pub fn new(
        scope: Scope,
        id: impl Into<ConversationId>,
        msg_id: impl Into<MessageId>,
        from: impl Into<ClientId>,
        timestamp: i64,
    ) -> Self {
        DeleteMessage {
            scope,
            id: id.into(),
            msg_id: msg_id.into(),
            from: from.into(),
            timestamp,
            subscriber: None,
        }
    }

    /// The subscriber whose copy of a service-conversation message to delete.
    pub fn subscriber(mut self, client: impl Into<ClientId>) -> Self {
        self.subscriber = Some(client.into());
        self
    }
}

request!(DeleteMessage => (), DELETE, idempotent: true,
    path(s) {
        let conversation = s.scope.path(&s.id);
        let msg = path_segment(s.msg_id.as_str());
        match &s.subscriber {
            Some(client) => format!(
                "{conversation}/subscribers/{}/messages/{msg}",
                path_segment(client.as_str())
            ),
            None => format!("{conversation}/messages/{msg}"),
        }
    },
    query(s) { vec![("from_client", s.from.to_string()), ("timestamp", s.timestamp.to_string())] },
    validate(s) {
        check_segment("message id", s.msg_id.as_str())?;
        if let Some(client) = &s.subscriber {
            check_segment("client id", client.as_str())?;
        }
        match (s.scope, &s.subscriber) {
            (Scope::ServiceConversation, None) => Err(ValidationError::NotAllowed {
                field: "subscriber",
                reason: "a service conversation's message is deleted from one subscriber's copy: name it",
            }),
            (Scope::ServiceConversation, Some(_)) | (_, None) => Ok(()),
            (_, Some(_)) => Err(ValidationError::NotAllowed {
                field: "subscriber",
                reason: "only service conversations have subscribers",
            }),
        }
    },
    decode = unit,
);
