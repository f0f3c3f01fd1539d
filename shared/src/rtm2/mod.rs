//! LeanCloud's REST server API 1.2 for conversations (`/1.2/rtm/…`): conversations, chat rooms and service
//! conversations, their members and mutes, messages (send, edit, recall, delete), moderation (silence,
//! blacklists, member roles), global broadcasts and the client endpoints (online check, kick, stats).
//!
//! Every request is plain data with `.send(&client)`, signed with the master key like the 1.1 requests; the
//! bodies are compact JSON with the documented snake_case keys, in the documented order. Limits the API
//! documents are checked before anything is sent ([`ValidationError`]): `ttl` 1 to 86,400 s, at most 20
//! `to_clients`, `mention_client_ids` and online-check ids, non-empty id lists.
//!
//! ```
//! use leancloud_im::rtm2::{Scope, TemporarySilence};
//! use leancloud_im::{ClientId, ConversationId, Request};
//!
//! let silence = TemporarySilence::new(
//!     Scope::Conversation,
//!     ConversationId::parse("abc").unwrap(),
//!     ClientId::parse("bob").unwrap(),
//!     3600,
//! );
//! assert_eq!("/rtm/conversations/abc/temporary-silenceds", silence.path());
//! assert_eq!(br#"{"client_id":"bob","ttl":3600}"#.to_vec(), silence.body().unwrap().unwrap());
//! ```

mod broadcasts;
mod clients;
mod conversations;
mod messages;
mod moderation;
mod subscribers;

pub use broadcasts::{Broadcasts, DeleteBroadcast, GlobalBroadcast, SubscriberBroadcast};
pub use clients::{
    BlockConversation, CheckOnline, ClientBlacklist, ConversationPage, Kick, Stats, StatsResult,
    UnblockConversation,
};
pub use conversations::{
    AddMembers, AddMutes, Create, Delete, Members, Mutes, OnlineCount, Query, RemoveMembers,
    RemoveMutes, Update,
};
pub use messages::{DeleteMessage, EditMessage, Priority, RecallMessage, SendMessage};
pub use moderation::{
    AddMemberInfo, Block, Blocked, DeleteMemberInfo, LiftPermanentSilence, LiftTemporarySilence,
    MemberInfo, MemberInfos, PermanentSilence, PermanentlySilenced, Role, TemporarySilence,
    Unblock, UpdateMemberInfo,
};
pub use subscribers::{Subscribe, SubscriberCount, Subscribers, Subscription, Unsubscribe};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, ValidationError};
use crate::ids::{ClientId, ConversationId};

/// The kind of conversation a request addresses, i.e. its collection under `/1.2/rtm/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `conversations`: normal conversations (`sys` and `tr` false).
    Conversation,
    /// `chatrooms`: chat rooms (`tr: true`).
    Chatroom,
    /// `service-conversations`: system conversations (`sys: true`).
    ServiceConversation,
}

impl Scope {
    /// The collection's path segment.
    pub fn segment(self) -> &'static str {
        match self {
            Scope::Conversation => "conversations",
            Scope::Chatroom => "chatrooms",
            Scope::ServiceConversation => "service-conversations",
        }
    }

    /// `/rtm/<collection>/<id>`.
    pub(crate) fn path(self, id: &ConversationId) -> String {
        format!("/rtm/{}/{}", self.segment(), id.as_str())
    }
}

/// The answer to an update (`PUT`, member and mute changes, member infos): `{"updatedAt", "objectId"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Updated {
    /// `objectId`, when the server returned it.
    #[serde(rename = "objectId", default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// `updatedAt`, when the server returned it.
    #[serde(rename = "updatedAt", default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    /// Any other field the server returned.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One page of client ids (silenced or blocked clients): `{"client_ids":[…], "next"?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientPage {
    /// `client_ids`.
    #[serde(default)]
    pub client_ids: Vec<ClientId>,
    /// `next`: the cursor of the following page, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// An answer that carries nothing (`{}`, `{"result":{}}`): any JSON object is a success.
pub(crate) fn unit(status: u16, body: Value) -> Result<(), Error> {
    serde_json::from_value::<Map<String, Value>>(body)
        .map(drop)
        .map_err(|source| Error::Decode { status, source })
}

/// The `result` of `{"result": …}` (singular, as the members and online-count endpoints answer).
pub(crate) fn result<T: serde::de::DeserializeOwned>(status: u16, body: Value) -> Result<T, Error> {
    #[derive(Deserialize)]
    struct Wrapped<T> {
        result: T,
    }
    serde_json::from_value::<Wrapped<T>>(body)
        .map(|wrapped| wrapped.result)
        .map_err(|source| Error::Decode { status, source })
}

/// The `results` of `{"results":[…]}`.
pub(crate) fn results<T: serde::de::DeserializeOwned>(
    status: u16,
    body: Value,
) -> Result<Vec<T>, Error> {
    #[derive(Deserialize)]
    struct Results<T> {
        results: Vec<T>,
    }
    serde_json::from_value::<Results<T>>(body)
        .map(|r| r.results)
        .map_err(|source| Error::Decode { status, source })
}

/// A list of client ids: non-empty, at most `max`, no id twice.
pub(crate) fn check_ids(
    field: &'static str,
    ids: &[ClientId],
    max: Option<usize>,
) -> Result<(), ValidationError> {
    if ids.is_empty() {
        return Err(ValidationError::EmptyList { field });
    }
    if let Some(max) = max.filter(|max| ids.len() > *max) {
        return Err(ValidationError::TooManyIds {
            field,
            count: ids.len(),
            max,
        });
    }
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(ValidationError::DuplicateId {
                field,
                id: id.to_string(),
            });
        }
    }
    Ok(())
}

/// `limit` within `1..=max`.
pub(crate) fn check_limit(limit: Option<u32>, max: u32) -> Result<(), ValidationError> {
    match limit {
        Some(limit) if !(1..=max).contains(&limit) => Err(ValidationError::OutOfRange {
            name: "limit",
            value: i64::from(limit),
            min: 1,
            max: i64::from(max),
        }),
        _ => Ok(()),
    }
}

/// Collect ids from any iterable of things that convert to [`ClientId`].
pub(crate) fn ids<I>(ids: I) -> Vec<ClientId>
where
    I: IntoIterator,
    I::Item: Into<ClientId>,
{
    ids.into_iter().map(Into::into).collect()
}

/// Implement [`Request`](crate::Request) for a 1.2 request and give it `.send(&client)`:
///
/// ```text
/// request!(Type => Response, METHOD, idempotent: bool,
///     path(s) { … },                 // the path after /1.2
///     query(s) { … },                // optional: the query parameters
///     body(s) { … },                 // optional: a value serialised as the compact JSON body
///     validate(s) { … },             // optional: checks before sending
///     decode = function,             // optional: fn(u16, Value) -> Result<Response, Error>
/// );
/// ```
macro_rules! request {
    (
        $ty:ident => $resp:ty, $method:ident, idempotent: $idempotent:expr,
        path($ps:ident) $path:block
        $(, query($qs:ident) $query:block)?
        $(, body($bs:ident) $body:block)?
        $(, validate($vs:ident) $validate:block)?
        $(, decode = $decode:path)?
        $(,)?
    ) => {
        impl $crate::request::Request for $ty {
            type Response = $resp;

            fn api_version(&self) -> &'static str {
                $crate::request::API_VERSION_2
            }

            fn method(&self) -> http::Method {
                http::Method::$method
            }

            fn path(&self) -> String {
                let $ps = self;
                $path
            }

            $(
                fn query(&self) -> Vec<(&'static str, String)> {
                    let $qs = self;
                    $query
                }
            )?

            fn body(&self) -> Result<Option<Vec<u8>>, $crate::error::Error> {
                $crate::rtm2::request!(@body self $(, $bs, $body)?)
            }

            $(
                fn validate(&self) -> Result<(), $crate::error::ValidationError> {
                    let $vs = self;
                    $validate
                }
            )?

            fn is_idempotent(&self) -> bool {
                $idempotent
            }

            $(
                fn decode(
                    &self,
                    status: u16,
                    body: serde_json::Value,
                ) -> Result<$resp, $crate::error::Error> {
                    $decode(status, body)
                }
            )?
        }

        $crate::request::impl_send!($ty);
    };
    (@body $self:ident) => {
        Ok(None)
    };
    (@body $self:ident, $bs:ident, $body:block) => {{
        let $bs = $self;
        Ok(Some($crate::conversations::body_bytes(&$body)?))
    }};
}
pub(crate) use request;
