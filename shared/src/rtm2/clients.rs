//! The client endpoints and the app-wide ones: online check, kick, a client's conversation blacklist, stats.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{check_ids, check_limit, request, result, results, unit};
use crate::error::ValidationError;
use crate::ids::{ClientId, ConversationId};
use crate::protocol::{MAX_KICK_REASON_CHARS, MAX_ONLINE_CHECK_IDS};
use crate::request::{check_segment, path_segment};

/// Which of these clients are online: `POST /1.2/rtm/clients/check-online` with `{"client_ids":[…]}` (1 to
/// 20) → `{"results":[…]}`, the online subset (an unknown client is offline).
///
/// ```
/// # use leancloud_im::rtm2::CheckOnline;
/// # use leancloud_im::{ClientId, Request};
/// let check = CheckOnline::new([ClientId::parse("a").unwrap(), ClientId::parse("b").unwrap()]);
/// assert_eq!(br#"{"client_ids":["a","b"]}"#.to_vec(), check.body().unwrap().unwrap());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOnline {
    client_ids: Vec<ClientId>,
}

impl CheckOnline {
    /// Check `client_ids`.
    pub fn new<I>(client_ids: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<ClientId>,
    {
        CheckOnline {
            client_ids: super::ids(client_ids),
        }
    }
}

request!(CheckOnline => Vec<ClientId>, POST, idempotent: true,
    path(_s) { "/rtm/clients/check-online".to_owned() },
    body(s) { json!({"client_ids": s.client_ids}) },
    validate(s) { check_ids("client_ids", &s.client_ids, Some(MAX_ONLINE_CHECK_IDS)) },
    decode = results,
);

/// Disconnect a client (closed with 4115 `KICKED_BY_APP`): `POST /1.2/rtm/clients/<client>/kick` with
/// `{"reason"}` (at most 20 characters) → `{}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kick {
    client: ClientId,
    reason: Option<String>,
}

impl Kick {
    /// Kick `client`.
    pub fn new(client: impl Into<ClientId>) -> Self {
        Kick {
            client: client.into(),
            reason: None,
        }
    }

    /// `reason`: shown to the client (at most 20 characters).
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

#[derive(Serialize)]
struct KickBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

request!(Kick => (), POST, idempotent: true,
    path(s) { format!("/rtm/clients/{}/kick", path_segment(s.client.as_str())) },
    body(s) { KickBody { reason: s.reason.as_deref() } },
    validate(s) {
        check_segment("client id", s.client.as_str())?;
        let len = s.reason.as_deref().map_or(0, |r| r.chars().count());
        if len > MAX_KICK_REASON_CHARS {
            return Err(ValidationError::TooLong {
                field: "reason",
                len,
                max: MAX_KICK_REASON_CHARS,
            });
        }
        Ok(())
    },
    decode = unit,
);

macro_rules! client_blacklist_change {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            client: ClientId,
            conv_id: ConversationId,
        }

        impl $name {
            /// The change of `client`'s blacklist for conversation `conv_id`.
            pub fn new(client: impl Into<ClientId>, conv_id: impl Into<ConversationId>) -> Self {
                $name {
                    client: client.into(),
                    conv_id: conv_id.into(),
                }
            }
        }

        request!($name => (), $method, idempotent: true,
            path(s) { format!("/rtm/clients/{}/blacklists", path_segment(s.client.as_str())) },
            body(s) { json!({"conv_id": s.conv_id}) },
            validate(s) { check_segment("client id", s.client.as_str()) },
            decode = unit,
        );
    };
}

client_blacklist_change!(
    /// A client blocks a conversation from inviting it: `POST /1.2/rtm/clients/<client>/blacklists` with
    /// `{"conv_id"}` → `{}`.
    BlockConversation, POST
);
client_blacklist_change!(
    /// Unblock: `DELETE /1.2/rtm/clients/<client>/blacklists` with `{"conv_id"}` → `{}`.
    UnblockConversation, DELETE
);

/// A page of a client's blocked conversations: `{"conv_ids":[…][,"next"]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationPage {
    /// `conv_ids`.
    #[serde(default)]
    pub conv_ids: Vec<ConversationId>,
    /// `next`: the cursor of the following page, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The conversations a client blocked: `GET /1.2/rtm/clients/<client>/blacklists?limit=…&next=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientBlacklist {
    client: ClientId,
    limit: Option<u32>,
    next: Option<String>,
}

impl ClientBlacklist {
    /// The first page of `client`'s blacklist.
    pub fn new(client: impl Into<ClientId>) -> Self {
        ClientBlacklist {
            client: client.into(),
            limit: None,
            next: None,
        }
    }

    /// `limit`.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// `next`: the cursor a previous page answered.
    pub fn next(mut self, next: impl Into<String>) -> Self {
        self.next = Some(next.into());
        self
    }
}

request!(ClientBlacklist => ConversationPage, GET, idempotent: true,
    path(s) { format!("/rtm/clients/{}/blacklists", path_segment(s.client.as_str())) },
    query(s) {
        let mut q = Vec::new();
        if let Some(limit) = s.limit {
            q.push(("limit", limit.to_string()));
        }
        if let Some(next) = &s.next {
            q.push(("next", next.clone()));
        }
        q
    },
    validate(s) {
        check_segment("client id", s.client.as_str())?;
        check_limit(s.limit, 1000)
    },
);

/// The app's IM figures: `{"online_user_count","user_count_today"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsResult {
    /// `online_user_count`.
    pub online_user_count: u64,
    /// `user_count_today`.
    pub user_count_today: u64,
}

/// `GET /1.2/rtm/stats` → `{"result":{"online_user_count","user_count_today"}}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats;

request!(Stats => StatsResult, GET, idempotent: true,
    path(_s) { "/rtm/stats".to_owned() },
    decode = result,
);
