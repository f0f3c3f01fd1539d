//! Conversations, chat rooms and service conversations themselves: create, query, update, delete; members and
//! push mutes of normal conversations; the online members of chat rooms.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{check_ids, check_limit, ids, request, result, unit, Scope, Updated};
use crate::conversations::{CreatedObject, QueryResult};
use crate::error::ValidationError;
use crate::ids::{ClientId, ConversationId};
use crate::protocol::MAX_MEMBERS;

/// Most results one query returns.
const MAX_QUERY_LIMIT: u32 = 1000;

/// Create a conversation, chat room or service conversation: `POST /1.2/rtm/<collection>` with
/// `{"name"[,"m"][,"unique"][,…custom fields]}`.
///
/// A normal conversation answers the whole new object, a chat room or service conversation
/// `{"objectId","createdAt"}`; both decode as [`CreatedObject`] (the other fields in `extra`).
///
/// ```
/// # use leancloud_im::rtm2::{Create, Scope};
/// # use leancloud_im::{ClientId, Request};
/// let create = Create::new(Scope::Conversation)
///     .name("team")
///     .members([ClientId::parse("a").unwrap(), ClientId::parse("b").unwrap()])
///     .unique(true)
///     .attribute("topic", "launch");
/// assert_eq!(
///     br#"{"name":"team","m":["a","b"],"unique":true,"topic":"launch"}"#.to_vec(),
///     create.body().unwrap().unwrap()
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Create {
    scope: Scope,
    name: Option<String>,
    members: Option<Vec<ClientId>>,
    unique: Option<bool>,
    attributes: Map<String, Value>,
}

impl Create {
    /// A new conversation of the kind `scope` names.
    pub fn new(scope: Scope) -> Self {
        Create {
            scope,
            name: None,
            members: None,
            unique: None,
            attributes: Map::new(),
        }
    }

    /// `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// `m`: the initial members (normal conversations only).
    pub fn members<I>(mut self, members: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<ClientId>,
    {
        self.members = Some(ids(members));
        self
    }

    /// `unique`: answer the existing conversation with the same members instead (normal conversations only).
    pub fn unique(mut self, unique: bool) -> Self {
        self.unique = Some(unique);
        self
    }

    /// A custom field, stored on the conversation.
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }

    fn wire(&self) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(name) = &self.name {
            m.insert("name".into(), name.as_str().into());
        }
        if let Some(members) = &self.members {
            m.insert("m".into(), json!(members));
        }
        if let Some(unique) = self.unique {
            m.insert("unique".into(), unique.into());
        }
        for (k, v) in &self.attributes {
            m.insert(k.clone(), v.clone());
        }
        m
    }

    fn check(&self) -> Result<(), ValidationError> {
        if self.scope != Scope::Conversation {
            let reason = "only a normal conversation has members and uniqueness";
            if self.members.is_some() {
                return Err(ValidationError::NotAllowed { field: "m", reason });
            }
            if self.unique.is_some() {
                return Err(ValidationError::NotAllowed {
                    field: "unique",
                    reason,
                });
            }
        }
        if let Some(members) = &self.members {
            if members.len() > MAX_MEMBERS {
                return Err(ValidationError::TooManyMembers {
                    count: members.len(),
                    max: MAX_MEMBERS,
                });
            }
        }
        if let Some(key) = self
            .attributes
            .keys()
            .find(|key| matches!(key.as_str(), "m" | "name" | "unique" | "objectId"))
        {
            return Err(ValidationError::InvalidAttribute {
                key: key.clone(),
                reason: "reserved field",
            });
        }
        Ok(())
    }
}

request!(Create => CreatedObject, POST, idempotent: false,
    path(s) { format!("/rtm/{}", s.scope.segment()) },
    body(s) { s.wire() },
    validate(s) { s.check() },
);

/// Query conversations of one kind: `GET /1.2/rtm/<collection>?where=…&skip=…&limit=…` → `{"results":[…]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    scope: Scope,
    condition: Option<Map<String, Value>>,
    skip: Option<u32>,
    limit: Option<u32>,
}

impl Query {
    /// Every conversation of the kind `scope` names (the server's default page).
    pub fn new(scope: Scope) -> Self {
        Query {
            scope,
            condition: None,
            skip: None,
            limit: None,
        }
    }

    /// `where`: a storage query condition, e.g. `{"name": "team"}`.
    pub fn condition(mut self, condition: Map<String, Value>) -> Self {
        self.condition = Some(condition);
        self
    }

    /// `skip`.
    pub fn skip(mut self, skip: u32) -> Self {
        self.skip = Some(skip);
        self
    }

    /// `limit`: 1 to 1000.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    fn params(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(condition) = &self.condition {
            q.push(("where", Value::Object(condition.clone()).to_string()));
        }
        if let Some(skip) = self.skip {
            q.push(("skip", skip.to_string()));
        }
        if let Some(limit) = self.limit {
            q.push(("limit", limit.to_string()));
        }
        q
    }
}

request!(Query => QueryResult, GET, idempotent: true,
    path(s) { format!("/rtm/{}", s.scope.segment()) },
    query(s) { s.params() },
    validate(s) { check_limit(s.limit, MAX_QUERY_LIMIT) },
);

/// Change a conversation's fields: `PUT /1.2/rtm/<collection>/<id>` with the fields (never `m`: members change
/// through [`AddMembers`] and [`RemoveMembers`]) → `{"updatedAt","objectId"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    scope: Scope,
    id: ConversationId,
    fields: Map<String, Value>,
}

impl Update {
    /// No change yet; add fields with [`Update::set`].
    pub fn new(scope: Scope, id: impl Into<ConversationId>) -> Self {
        Update {
            scope,
            id: id.into(),
            fields: Map::new(),
        }
    }

    /// Set `key` to `value` (`name`, a custom field, …).
    pub fn set(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(key.into(), value.into());
        self
    }
}

request!(Update => Updated, PUT, idempotent: false,
    path(s) { s.scope.path(&s.id) },
    body(s) { s.fields.clone() },
    validate(s) {
        if s.fields.is_empty() {
            return Err(ValidationError::EmptyList { field: "fields" });
        }
        if s.fields.contains_key("m") {
            return Err(ValidationError::NotAllowed {
                field: "m",
                reason: "members change through the members endpoints",
            });
        }
        Ok(())
    },
);

/// Delete a conversation: `DELETE /1.2/rtm/<collection>/<id>` → `{}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    scope: Scope,
    id: ConversationId,
}

impl Delete {
    /// Delete conversation `id` of the kind `scope` names.
    pub fn new(scope: Scope, id: impl Into<ConversationId>) -> Self {
        Delete {
            scope,
            id: id.into(),
        }
    }
}

request!(Delete => (), DELETE, idempotent: true,
    path(s) { s.scope.path(&s.id) },
    decode = unit,
);

/// `{"client_ids":[…]}`, the body of every member and mute change.
#[derive(Serialize)]
struct ClientIds<'a> {
    client_ids: &'a [ClientId],
}

macro_rules! id_list_change {
    ($(#[$doc:meta])* $name:ident, $method:ident, $segment:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            id: ConversationId,
            client_ids: Vec<ClientId>,
        }

        impl $name {
            /// Change normal conversation `id` for `client_ids` (at least one, at most 500, no repeats).
            pub fn new<I>(id: impl Into<ConversationId>, client_ids: I) -> Self
            where
                I: IntoIterator,
                I::Item: Into<ClientId>,
            {
                $name {
                    id: id.into(),
                    client_ids: ids(client_ids),
                }
            }
        }

        request!($name => Updated, $method, idempotent: true,
            path(s) { format!("{}/{}", Scope::Conversation.path(&s.id), $segment) },
            body(s) { ClientIds { client_ids: &s.client_ids } },
            validate(s) { check_ids("client_ids", &s.client_ids, Some(MAX_MEMBERS)) },
        );
    };
}

id_list_change!(
    /// Add members: `POST /1.2/rtm/conversations/<id>/members` with `{"client_ids":[…]}` → `{"updatedAt","objectId"}`.
    AddMembers, POST, "members"
);
id_list_change!(
    /// Remove members: `DELETE /1.2/rtm/conversations/<id>/members` with `{"client_ids":[…]}` (a body on `DELETE`).
    RemoveMembers, DELETE, "members"
);
id_list_change!(
    /// Mute offline push for clients (`mu`): `POST /1.2/rtm/conversations/<id>/mutes` with `{"client_ids":[…]}`.
    AddMutes, POST, "mutes"
);
id_list_change!(
    /// Unmute offline push: `DELETE /1.2/rtm/conversations/<id>/mutes` with `{"client_ids":[…]}`.
    RemoveMutes, DELETE, "mutes"
);

/// The members of a conversation (`GET /1.2/rtm/conversations/<id>/members`), or a random sample of the online
/// members of a chat room (`GET /1.2/rtm/chatrooms/<id>/members`) → `{"result":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members {
    scope: Scope,
    id: ConversationId,
}

impl Members {
    /// The members of conversation `id` of the kind `scope` names.
    pub fn new(scope: Scope, id: impl Into<ConversationId>) -> Self {
        Members {
            scope,
            id: id.into(),
        }
    }
}

request!(Members => Vec<ClientId>, GET, idempotent: true,
    path(s) { format!("{}/members", s.scope.path(&s.id)) },
    decode = result,
);

/// The clients that muted a conversation's offline push: `GET /1.2/rtm/conversations/<id>/mutes` →
/// `{"result":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutes {
    id: ConversationId,
}

impl Mutes {
    /// The muting clients of normal conversation `id`.
    pub fn new(id: impl Into<ConversationId>) -> Self {
        Mutes { id: id.into() }
    }
}

request!(Mutes => Vec<ClientId>, GET, idempotent: true,
    path(s) { format!("{}/mutes", Scope::Conversation.path(&s.id)) },
    decode = result,
);

/// How many clients are online in a chat room: `GET /1.2/rtm/chatrooms/<id>/members/online-count` →
/// `{"result":3}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineCount {
    id: ConversationId,
}

impl OnlineCount {
    /// The online count of chat room `id`.
    pub fn new(id: impl Into<ConversationId>) -> Self {
        OnlineCount { id: id.into() }
    }
}

request!(OnlineCount => u64, GET, idempotent: true,
    path(s) { format!("{}/members/online-count", Scope::Chatroom.path(&s.id)) },
    decode = result,
);
