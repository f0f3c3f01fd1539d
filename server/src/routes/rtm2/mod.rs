//! The REST API 1.2 for the app's backend (master key), `/1.2/rtm/…` (`leancloud-users-files-push.md` §4):
//! thin adapters over the domain layer, so a change made here is the change a client's own command makes —
//! the same hooks, the same pushes to online clients, the same rows.
//!
//! - [`conversations`]: conversations, chat rooms and service conversations (create, query, update, delete),
//!   members, push mutes, chat rooms' online members, service conversations' subscribers;
//! - [`messages`]: sends, edits, recalls and deletes of messages; broadcasts to a service conversation's
//!   subscribers and global broadcasts;
//! - [`moderation`]: temporary and permanent silences, blacklists (of a conversation, of a client), member
//!   roles (`member-infos`);
//! - [`clients`]: `check-online` (and its older name `online-check`), `kick`, `stats`;
//! - [`history`]: message history and service subscribers' history (what a LeanCloud export uses).
//!
//! The three kinds of conversation have their own path prefix; a conversation of another kind under a prefix
//! is refused (4314 `NORMAL_CONVERSATION_REQUIRED`, 4316 `TRANSIENT_CONVERSATION_REQUIRED`, 4313
//! `SYSTEM_CONVERSATION_REQUIRED`), an unknown one is 4303 `CONVERSATION_NOT_FOUND`. Errors are
//! `{"code","error"}` with status 400 (429 for a rate limit).

pub mod clients;
pub mod conversations;
pub mod history;
pub mod messages;
pub mod moderation;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{delete, get, post, put};
use axum::Router;
use serde_json::{Map, Value};

use crate::domain::conv_admin::AdminError;
use crate::domain::moderation::SilenceError;
use crate::domain::patches::PatchError;
use crate::error::{codes, AppError};
use crate::routes::rtm::param_error;
use crate::state::AppState;
use crate::store::objects::{self, ConversationKind};

/// The most client ids one request names (`client_ids`), as LeanCloud's member limit.
pub const MAX_IDS: usize = 500;

/// Which path prefix a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/1.2/rtm/conversations`: `tr` and `sys` false.
    Conversation,
    /// `/1.2/rtm/chatrooms`: `tr` true.
    ChatRoom,
    /// `/1.2/rtm/service-conversations`: `sys` true.
    Service,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Conversation, Kind::ChatRoom, Kind::Service];

    pub const fn prefix(self) -> &'static str {
        match self {
            Kind::Conversation => "/1.2/rtm/conversations",
            Kind::ChatRoom => "/1.2/rtm/chatrooms",
            Kind::Service => "/1.2/rtm/service-conversations",
        }
    }

    /// The field a conversation of this kind has set (`tr`, `sys`), if any.
    pub const fn flag(self) -> Option<&'static str> {
        match self {
            Kind::Conversation => None,
            Kind::ChatRoom => Some("tr"),
            Kind::Service => Some("sys"),
        }
    }

    fn matches(self, conv: &ConversationKind) -> bool {
        match self {
            Kind::Conversation => !conv.transient && !conv.system,
            Kind::ChatRoom => conv.transient,
            Kind::Service => conv.system,
        }
    }

    fn mismatch(self) -> AppError {
        let (code, what) = match self {
            Kind::Conversation => (codes::NORMAL_CONVERSATION_REQUIRED, "a normal conversation"),
            Kind::ChatRoom => (codes::TRANSIENT_CONVERSATION_REQUIRED, "a chat room"),
            Kind::Service => (
                codes::SYSTEM_CONVERSATION_REQUIRED,
                "a service conversation",
            ),
        };
        AppError::bad_request(code, format!("The conversation is not {what}."))
    }
}

/// The prefix of the request's path: a handler serves the three kinds and learns which from here.
impl<S: Send + Sync> FromRequestParts<S> for Kind {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Kind, AppError> {
        let path = parts.uri.path().trim_start_matches('/');
        Ok(if path.starts_with("1.2/rtm/chatrooms") {
            Kind::ChatRoom
        } else if path.starts_with("1.2/rtm/service-conversations") {
            Kind::Service
        } else {
            Kind::Conversation
        })
    }
}

pub fn not_found() -> AppError {
    AppError::bad_request(codes::CONVERSATION_NOT_FOUND, "Conversation not found.")
}

/// Conversation `id` of `kind`, or the error that says why not.
pub async fn conversation_of(
    state: &AppState,
    kind: Kind,
    id: &str,
) -> Result<ConversationKind, AppError> {
    let conv = objects::conversation(&state.svc.db, id.to_string())
        .await?
        .ok_or_else(not_found)?;
    if !kind.matches(&conv) {
        return Err(kind.mismatch());
    }
    Ok(conv)
}

/// A list of client ids under `key`: non-empty strings, duplicates dropped, at most `max`.
pub fn ids_param(
    body: &Map<String, Value>,
    key: &str,
    max: usize,
) -> Result<Vec<String>, AppError> {
    let Some(Value::Array(items)) = body.get(key) else {
        return Err(param_error(format!(
            "Parameter {key} must be an array of client ids."
        )));
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(id) = item.as_str().filter(|s| !s.is_empty()) else {
            return Err(param_error(format!(
                "Parameter {key} must be an array of client ids."
            )));
        };
        if seen.insert(id) {
            out.push(id.to_string());
        }
    }
    if out.is_empty() {
        return Err(param_error(format!("Parameter {key} must not be empty.")));
    }
    if out.len() > max {
        return Err(param_error(format!(
            "Parameter {key} names {} clients; at most {max} are allowed.",
            out.len()
        )));
    }
    Ok(out)
}

/// A member-administration failure in LeanCloud's codes.
pub fn admin_error(e: AdminError) -> AppError {
    match e {
        AdminError::Conv(e) => e.into(),
        AdminError::NotFound => not_found(),
        e @ AdminError::Unauthorized => {
            AppError::bad_request(codes::CONVERSATION_OPERATION_UNAUTHORIZED, e.to_string())
        }
        e @ AdminError::NotMember => {
            AppError::bad_request(codes::CONVERSATION_MEMBERSHIP_REQUIRED, e.to_string())
        }
        e @ AdminError::UnknownRole(_) => {
            AppError::bad_request(codes::UNKNOWN_CONVERSATION_ROLE, e.to_string())
        }
        e @ AdminError::OwnerPromotion => {
            AppError::bad_request(codes::OWNER_PROMOTION_NOT_ALLOWED, e.to_string())
        }
        e @ AdminError::Blocked(_) => AppError::bad_request(codes::BLOCKED_BY_CONV, e.to_string()),
    }
}

pub fn silence_error(e: SilenceError) -> AppError {
    match e {
        SilenceError::Admin(e) => admin_error(e),
        e @ SilenceError::Ttl => param_error(e.to_string()),
        e @ SilenceError::Owner => {
            AppError::bad_request(codes::CONVERSATION_NEED_OWNER, e.to_string())
        }
    }
}

pub fn patch_error(e: PatchError) -> AppError {
    let message = e.to_string();
    let code = match e {
        PatchError::Store(s) => return s.into(),
        PatchError::Limited(l) => return l.into(),
        PatchError::NotFound => codes::MESSAGE_NOT_FOUND,
        PatchError::NotOwner => codes::MESSAGE_OWNERSHIP_REQUIRED,
        PatchError::Empty => codes::INTERNAL,
        PatchError::TooLarge(_) => codes::ENTITY_TOO_LARGE,
        PatchError::EditDisabled => codes::MESSAGE_EDIT_DISABLED,
        PatchError::RecallDisabled => codes::MESSAGE_RECALL_DISABLED,
        PatchError::TooLate(_) | PatchError::Rejected(_) => codes::MESSAGE_UPDATE_REJECTED_BY_APP,
    };
    AppError::bad_request(code, message)
}

/// Every 1.2 route, merged into [`crate::app`]'s router.
pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for kind in Kind::ALL {
        let p = kind.prefix();
        r = r
            .route(p, post(conversations::create).get(conversations::query))
            .route(
                &format!("{p}/{{id}}"),
                put(conversations::update).delete(conversations::remove),
            )
            .route(
                &format!("{p}/{{id}}/messages/{{mid}}"),
                put(messages::edit).delete(messages::delete_message),
            )
            .route(
                &format!("{p}/{{id}}/messages/{{mid}}/recall"),
                put(messages::recall).post(messages::recall),
            )
            .route(
                &format!("{p}/{{id}}/temporary-silenceds"),
                post(moderation::silence_for).delete(moderation::lift_silence),
            )
            .route(
                &format!("{p}/{{id}}/permanent-silenceds"),
                post(moderation::silence)
                    .delete(moderation::unsilence)
                    .get(moderation::silenced),
            )
            .route(
                &format!("{p}/{{id}}/blacklists"),
                post(moderation::block)
                    .delete(moderation::unblock)
                    .get(moderation::blocked),
            );
        if kind != Kind::Service {
            r = r
                .route(
                    &format!("{p}/{{id}}/member-infos"),
                    post(moderation::add_role).get(moderation::roles),
                )
                .route(
                    &format!("{p}/{{id}}/member-infos/{{info}}"),
                    put(moderation::update_role).delete(moderation::remove_role),
                );
        }
    }
    let c = Kind::Conversation.prefix();
    let room = Kind::ChatRoom.prefix();
    let svc = Kind::Service.prefix();
    r.route(
        &format!("{c}/{{id}}/members"),
        post(conversations::add_members)
            .delete(conversations::remove_members)
            .get(conversations::members),
    )
    .route(
        &format!("{c}/{{id}}/mutes"),
        post(conversations::mute)
            .delete(conversations::unmute)
            .get(conversations::mutes),
    )
    .route(
        &format!("{c}/{{id}}/messages"),
        post(messages::send).get(history::conversation_messages),
    )
    .route(
        &format!("{room}/{{id}}/messages"),
        post(messages::send).get(history::conversation_messages),
    )
    .route(
        &format!("{room}/{{id}}/members"),
        get(conversations::online_members),
    )
    .route(
        &format!("{room}/{{id}}/members/online-count"),
        get(conversations::online_count),
    )
    .route(
        &format!("{svc}/{{id}}/messages"),
        post(messages::send_to_subscribers),
    )
    .route(
        &format!("{svc}/{{id}}/broadcasts"),
        post(messages::broadcast_to_subscribers),
    )
    .route(
        &format!("{svc}/{{id}}/subscribers"),
        get(history::subscribers).post(history::subscribe),
    )
    .route(
        &format!("{svc}/{{id}}/subscribers/count"),
        get(conversations::subscriber_count),
    )
    .route(
        &format!("{svc}/{{id}}/subscribers/{{client}}"),
        delete(conversations::unsubscribe),
    )
    .route(
        &format!("{svc}/{{id}}/subscribers/{{client}}/messages"),
        get(history::subscriber_messages),
    )
    .route(
        "/1.2/rtm/broadcasts",
        post(messages::broadcast).get(messages::broadcasts),
    )
    .route(
        "/1.2/rtm/broadcasts/{mid}",
        delete(messages::delete_broadcast),
    )
    .route("/1.2/rtm/clients/check-online", post(clients::check_online))
    .route("/1.2/rtm/clients/online-check", post(clients::check_online))
    .route("/1.2/rtm/clients/{client}/kick", post(clients::kick))
    .route(
        "/1.2/rtm/clients/{client}/blacklists",
        post(moderation::client_block)
            .delete(moderation::client_unblock)
            .get(moderation::client_blocked),
    )
    .route(
        "/1.2/rtm/clients/{client}/messages",
        get(history::client_messages),
    )
    .route("/1.2/rtm/messages", get(history::all_messages))
    .route("/1.2/rtm/stats", get(clients::stats))
    .route(
        "/1.2/rtm/all-conversations",
        get(conversations::all_conversations),
    )
}
