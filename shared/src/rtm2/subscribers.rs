//! The subscribers of service conversations.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{check_limit, request, unit, Scope};
use crate::error::Error;
use crate::ids::{ClientId, ConversationId};
use crate::request::{check_segment, path_segment};

/// Most subscribers one page lists.
const MAX_SUBSCRIBERS_LIMIT: u32 = 50;

/// Subscribe a client to a service conversation: `POST /1.2/rtm/service-conversations/<id>/subscribers` with
/// `{"client_id"}` → `{}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    id: ConversationId,
    client_id: ClientId,
}

impl Subscribe {
    /// Subscribe `client_id` to service conversation `id`.
    pub fn new(id: impl Into<ConversationId>, client_id: impl Into<ClientId>) -> Self {
        Subscribe {
            id: id.into(),
            client_id: client_id.into(),
        }
    }
}

request!(Subscribe => (), POST, idempotent: true,
    path(s) { format!("{}/subscribers", Scope::ServiceConversation.path(&s.id)) },
    body(s) { json!({"client_id": s.client_id}) },
    decode = unit,
);

/// Unsubscribe a client: `DELETE /1.2/rtm/service-conversations/<id>/subscribers/<client_id>` → `{}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    id: ConversationId,
    client_id: ClientId,
}

impl Unsubscribe {
    /// Unsubscribe `client_id` from service conversation `id`.
    pub fn new(id: impl Into<ConversationId>, client_id: impl Into<ClientId>) -> Self {
        Unsubscribe {
            id: id.into(),
            client_id: client_id.into(),
        }
    }
}

request!(Unsubscribe => (), DELETE, idempotent: true,
    path(s) {
        format!(
            "{}/subscribers/{}",
            Scope::ServiceConversation.path(&s.id),
            path_segment(s.client_id.as_str())
        )
    },
    validate(s) { check_segment("client id", s.client_id.as_str()) },
    decode = unit,
);

/// One subscription: `{"timestamp","subscriber","conv_id"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// `timestamp`: when the client subscribed, epoch milliseconds.
    pub timestamp: i64,
    /// `subscriber`.
    pub subscriber: ClientId,
    /// `conv_id`.
    pub conv_id: ConversationId,
}

/// A page of a service conversation's subscribers:
/// `GET /1.2/rtm/service-conversations/<id>/subscribers?limit=…&client_id=<after this one>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribers {
    id: ConversationId,
    limit: Option<u32>,
    after: Option<ClientId>,
}

impl Subscribers {
    /// The first page of service conversation `id`'s subscribers.
    pub fn new(id: impl Into<ConversationId>) -> Self {
        Subscribers {
            id: id.into(),
            limit: None,
            after: None,
        }
    }

    /// `limit`: 1 to 50 (the server's default).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// `client_id`: start after this subscriber (the last one of the previous page).
    pub fn after(mut self, client_id: impl Into<ClientId>) -> Self {
        self.after = Some(client_id.into());
        self
    }
}

request!(Subscribers => Vec<Subscription>, GET, idempotent: true,
    path(s) { format!("{}/subscribers", Scope::ServiceConversation.path(&s.id)) },
    query(s) {
        let mut q = Vec::new();
        if let Some(limit) = s.limit {
            q.push(("limit", limit.to_string()));
        }
        if let Some(after) = &s.after {
            q.push(("client_id", after.to_string()));
        }
        q
    },
    validate(s) { check_limit(s.limit, MAX_SUBSCRIBERS_LIMIT) },
);

/// How many clients subscribe to a service conversation: `GET /1.2/rtm/service-conversations/<id>/subscribers/count`
/// → `{"count":100}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberCount {
    id: ConversationId,
}

impl SubscriberCount {
    /// The subscriber count of service conversation `id`.
    pub fn new(id: impl Into<ConversationId>) -> Self {
        SubscriberCount { id: id.into() }
    }
}

fn count(status: u16, body: Value) -> Result<u64, Error> {
    #[derive(Deserialize)]
    struct Count {
        count: u64,
    }
    serde_json::from_value::<Count>(body)
        .map(|c| c.count)
        .map_err(|source| Error::Decode { status, source })
}

request!(SubscriberCount => u64, GET, idempotent: true,
    path(s) { format!("{}/subscribers/count", Scope::ServiceConversation.path(&s.id)) },
    decode = count,
);
