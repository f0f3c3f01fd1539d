//! Moderation under `conversations/<id>`, `chatrooms/<id>` and `service-conversations/<id>`: temporary and
//! permanent silence, blacklists, and member roles (`member-infos`).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{check_ids, check_limit, ids, request, results, unit, ClientPage, Scope, Updated};
use crate::error::ValidationError;
use crate::ids::{ClientId, ConversationId};
use crate::protocol::{MAX_MEMBERS, MAX_SILENCE_TTL_SECONDS};
use crate::request::{check_segment, path_segment};

/// Most blocked clients of a chat room or service conversation (a normal conversation: [`MAX_MEMBERS`]).
const MAX_LARGE_BLACKLIST: usize = 10_000;
/// Most entries one list page returns.
const MAX_PAGE_LIMIT: u32 = 1000;

/// Silence one client for `ttl` seconds: `POST /1.2/rtm/<collection>/<id>/temporary-silenceds` with
/// `{"client_id","ttl"}` → `{}`. `ttl` is 1 to 86,400 (a day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemporarySilence {
    scope: Scope,
    id: ConversationId,
    client_id: ClientId,
    ttl: u32,
}

impl TemporarySilence {
    /// Silence `client_id` in conversation `id` for `ttl_seconds`.
    pub fn new(
        scope: Scope,
        id: impl Into<ConversationId>,
        client_id: impl Into<ClientId>,
        ttl_seconds: u32,
    ) -> Self {
        TemporarySilence {
            scope,
            id: id.into(),
            client_id: client_id.into(),
            ttl: ttl_seconds,
        }
    }
}

request!(TemporarySilence => (), POST, idempotent: true,
    path(s) { format!("{}/temporary-silenceds", s.scope.path(&s.id)) },
    body(s) { json!({"client_id": s.client_id, "ttl": s.ttl}) },
    validate(s) {
        if !(1..=MAX_SILENCE_TTL_SECONDS).contains(&s.ttl) {
            return Err(ValidationError::OutOfRange {
                name: "ttl",
                value: i64::from(s.ttl),
                min: 1,
                max: i64::from(MAX_SILENCE_TTL_SECONDS),
            });
        }
        Ok(())
    },
    decode = unit,
);

/// Lift a client's temporary silence: `DELETE /1.2/rtm/<collection>/<id>/temporary-silenceds?client_id=…` → `{}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiftTemporarySilence {
    scope: Scope,
    id: ConversationId,
    client_id: ClientId,
}

impl LiftTemporarySilence {
    /// Lift the temporary silence of `client_id` in conversation `id`.
    pub fn new(
        scope: Scope,
        id: impl Into<ConversationId>,
        client_id: impl Into<ClientId>,
    ) -> Self {
        LiftTemporarySilence {
            scope,
            id: id.into(),
            client_id: client_id.into(),
        }
    }
}

request!(LiftTemporarySilence => (), DELETE, idempotent: true,
    path(s) { format!("{}/temporary-silenceds", s.scope.path(&s.id)) },
    query(s) { vec![("client_id", s.client_id.to_string())] },
    decode = unit,
);

#[derive(Serialize)]
struct ClientIds<'a> {
    client_ids: &'a [ClientId],
}

/// The most ids one list of `scope` may hold.
fn list_limit(scope: Scope) -> usize {
    match scope {
        Scope::Conversation => MAX_MEMBERS,
        Scope::Chatroom | Scope::ServiceConversation => MAX_LARGE_BLACKLIST,
    }
}

macro_rules! id_list_change {
    ($(#[$doc:meta])* $name:ident, $method:ident, $segment:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            scope: Scope,
            id: ConversationId,
            client_ids: Vec<ClientId>,
        }

        impl $name {
            /// The change for `client_ids` (at least one, no repeats) in conversation `id`.
            pub fn new<I>(scope: Scope, id: impl Into<ConversationId>, client_ids: I) -> Self
            where
                I: IntoIterator,
                I::Item: Into<ClientId>,
            {
                $name {
                    scope,
                    id: id.into(),
                    client_ids: ids(client_ids),
                }
            }
        }

        request!($name => (), $method, idempotent: true,
            path(s) { format!("{}/{}", s.scope.path(&s.id), $segment) },
            body(s) { ClientIds { client_ids: &s.client_ids } },
            validate(s) { check_ids("client_ids", &s.client_ids, Some(list_limit(s.scope))) },
            decode = unit,
        );
    };
}

id_list_change!(
    /// Silence clients until lifted: `POST /1.2/rtm/<collection>/<id>/permanent-silenceds` with
    /// `{"client_ids":[…]}` → `{}`.
    PermanentSilence, POST, "permanent-silenceds"
);
id_list_change!(
    /// Lift a permanent silence: `DELETE /1.2/rtm/<collection>/<id>/permanent-silenceds` with `{"client_ids":[…]}`.
    LiftPermanentSilence, DELETE, "permanent-silenceds"
);
id_list_change!(
    /// Block clients: `POST /1.2/rtm/<collection>/<id>/blacklists` with `{"client_ids":[…]}` → `{}`. Blocked
    /// members are removed and cannot join again.
    Block, POST, "blacklists"
);
id_list_change!(
    /// Unblock clients: `DELETE /1.2/rtm/<collection>/<id>/blacklists` with `{"client_ids":[…]}` → `{}`.
    Unblock, DELETE, "blacklists"
);

macro_rules! id_list_page {
    ($(#[$doc:meta])* $name:ident, $segment:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            scope: Scope,
            id: ConversationId,
            limit: Option<u32>,
            next: Option<String>,
        }

        impl $name {
            /// The first page for conversation `id`.
            pub fn new(scope: Scope, id: impl Into<ConversationId>) -> Self {
                $name {
                    scope,
                    id: id.into(),
                    limit: None,
                    next: None,
                }
            }

            /// `limit`: the page size (server default 10).
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

        request!($name => ClientPage, GET, idempotent: true,
            path(s) { format!("{}/{}", s.scope.path(&s.id), $segment) },
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
            validate(s) { check_limit(s.limit, MAX_PAGE_LIMIT) },
        );
    };
}

id_list_page!(
    /// The permanently silenced clients: `GET /1.2/rtm/<collection>/<id>/permanent-silenceds?limit=…&next=…` →
    /// `{"client_ids":[…][,"next"]}`.
    PermanentlySilenced, "permanent-silenceds"
);
id_list_page!(
    /// The blocked clients: `GET /1.2/rtm/<collection>/<id>/blacklists?limit=…&next=…` →
    /// `{"client_ids":[…][,"next"]}`.
    Blocked, "blacklists"
);

/// A member's role in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// `Member`.
    Member,
    /// `Manager`.
    Manager,
    /// `Owner`.
    Owner,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Member => "Member",
            Role::Manager => "Manager",
            Role::Owner => "Owner",
        }
    }
}

/// One member info: `{"clientId","objectId","role"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// `clientId`.
    #[serde(rename = "clientId")]
    pub client_id: ClientId,
    /// `objectId`: the info's id, for [`UpdateMemberInfo`] and [`DeleteMemberInfo`].
    #[serde(rename = "objectId")]
    pub object_id: String,
    /// `role`.
    pub role: Role,
}

#[derive(Serialize)]
struct InfoBody<'a> {
    #[serde(rename = "clientId")]
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
}

fn check_info_id(info_id: &str) -> Result<(), ValidationError> {
    if info_id.is_empty() {
        return Err(ValidationError::EmptyId {
            kind: "member info id",
        });
    }
    check_segment("member info id", info_id)
}

/// Give a member a role: `POST /1.2/rtm/<collection>/<id>/member-infos` with `{"clientId","role"}` →
/// `{"updatedAt","objectId"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddMemberInfo {
    scope: Scope,
    id: ConversationId,
    client_id: ClientId,
    role: Role,
}

impl AddMemberInfo {
    /// Give `client_id` `role` in conversation `id`.
    pub fn new(
        scope: Scope,
        id: impl Into<ConversationId>,
        client_id: impl Into<ClientId>,
        role: Role,
    ) -> Self {
        AddMemberInfo {
            scope,
            id: id.into(),
            client_id: client_id.into(),
            role,
        }
    }
}

request!(AddMemberInfo => Updated, POST, idempotent: false,
    path(s) { format!("{}/member-infos", s.scope.path(&s.id)) },
    body(s) { InfoBody { client_id: s.client_id.as_str(), role: Some(s.role) } },
);

/// Change a member info: `PUT /1.2/rtm/<collection>/<id>/member-infos/<info_id>` with `{"clientId"[,"role"]}` →
/// `{"updatedAt","objectId"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateMemberInfo {
    scope: Scope,
    id: ConversationId,
    info_id: String,
    client_id: ClientId,
    role: Option<Role>,
}

impl UpdateMemberInfo {
    /// Change member info `info_id` (of `client_id`) in conversation `id`.
    pub fn new(
        scope: Scope,
        id: impl Into<ConversationId>,
        info_id: impl Into<String>,
        client_id: impl Into<ClientId>,
    ) -> Self {
        UpdateMemberInfo {
            scope,
            id: id.into(),
            info_id: info_id.into(),
            client_id: client_id.into(),
            role: None,
        }
    }

    /// `role`.
    pub fn role(mut self, role: Role) -> Self {
        self.role = Some(role);
        self
    }
}

request!(UpdateMemberInfo => Updated, PUT, idempotent: true,
    path(s) { format!("{}/member-infos/{}", s.scope.path(&s.id), path_segment(&s.info_id)) },
    body(s) { InfoBody { client_id: s.client_id.as_str(), role: s.role } },
    validate(s) { check_info_id(&s.info_id) },
);

/// Remove a member info: `DELETE /1.2/rtm/<collection>/<id>/member-infos/<info_id>` → `{}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteMemberInfo {
    scope: Scope,
    id: ConversationId,
    info_id: String,
}

impl DeleteMemberInfo {
    /// Remove member info `info_id` from conversation `id`.
    pub fn new(scope: Scope, id: impl Into<ConversationId>, info_id: impl Into<String>) -> Self {
        DeleteMemberInfo {
            scope,
            id: id.into(),
            info_id: info_id.into(),
        }
    }
}

request!(DeleteMemberInfo => (), DELETE, idempotent: true,
    path(s) { format!("{}/member-infos/{}", s.scope.path(&s.id), path_segment(&s.info_id)) },
    validate(s) { check_info_id(&s.info_id) },
    decode = unit,
);

/// The member infos: `GET /1.2/rtm/<collection>/<id>/member-infos?skip=…&limit=…&role=…` →
/// `{"results":[{"clientId","objectId","role"}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfos {
    scope: Scope,
    id: ConversationId,
    skip: Option<u32>,
    limit: Option<u32>,
    role: Option<Role>,
}

impl MemberInfos {
    /// Every member info of conversation `id` (the server's default page).
    pub fn new(scope: Scope, id: impl Into<ConversationId>) -> Self {
        MemberInfos {
            scope,
            id: id.into(),
            skip: None,
            limit: None,
            role: None,
        }
    }

    /// `skip`.
    pub fn skip(mut self, skip: u32) -> Self {
        self.skip = Some(skip);
        self
    }

    /// `limit`.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// `role`: only members with this role.
    pub fn role(mut self, role: Role) -> Self {
        self.role = Some(role);
        self
    }
}

request!(MemberInfos => Vec<MemberInfo>, GET, idempotent: true,
    path(s) { format!("{}/member-infos", s.scope.path(&s.id)) },
    query(s) {
        let mut q = Vec::new();
        if let Some(skip) = s.skip {
            q.push(("skip", skip.to_string()));
        }
        if let Some(limit) = s.limit {
            q.push(("limit", limit.to_string()));
        }
        if let Some(role) = s.role {
            q.push(("role", role.as_str().to_owned()));
        }
        q
    },
    validate(s) { check_limit(s.limit, MAX_PAGE_LIMIT) },
    decode = results,
);
