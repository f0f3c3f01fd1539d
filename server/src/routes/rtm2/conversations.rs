//! Conversations of the three kinds through the 1.2 API: create, query, update, delete; the members and
//! push mutes of a normal conversation; a chat room's online members; a service conversation's subscribers.
//!
//! - `POST {prefix}` with the conversation's fields: a normal conversation answers the whole object (with
//!   `uniqueId` for `unique: true`; the same members again answer the existing one), a chat room or service
//!   conversation `{"objectId","createdAt"}`;
//! - `GET {prefix}?where&skip&limit&order` → `{"results"}` (only that kind; `/1.2/rtm/all-conversations`:
//!   every kind);
//! - `PUT {prefix}/{id}` with any field but `m` (the members endpoints change those) → `{"updatedAt","objectId"}`,
//!   and `updated` to the online members;
//! - `DELETE {prefix}/{id}` → `{}`;
//! - `POST` / `DELETE /1.2/rtm/conversations/{id}/members` `{"client_ids"}` → `{"updatedAt","objectId"}`, with the
//!   `joined` / `left` and `members_joined` / `members_left` pushes and the `_conversationAdd` / `…Remove`
//!   hooks of a client's own `conv/add` / `conv/remove`; `GET` → `{"result":[…]}`;
//! - `POST` / `DELETE /1.2/rtm/conversations/{id}/mutes` `{"client_ids"}` (the `mu` field: no offline push) →
//!   `{"updatedAt","objectId"}`; `GET` → `{"result":[…]}`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use rand::seq::SliceRandom;
use serde_json::{json, Map, Value};

use super::{admin_error, conversation_of, ids_param, Kind, MAX_IDS};
use crate::auth::Access;
use crate::domain::conv_admin;
use crate::domain::conversations::{self, members_body, Update};
use crate::error::AppError;
use crate::protocol::conversation::{CLASS, MEMBERS, UNIQUE, UNIQUE_ID};
use crate::routes::classes::find_params;
use crate::routes::rtm::param_error;
use crate::routes::{json_object, query_params};
use crate::state::AppState;
use crate::store::history;
use crate::store::objects;

/// The most online members a chat room's member sample names.
pub const ONLINE_SAMPLE: usize = 100;

/// `POST /1.2/rtm/{conversations,chatrooms,service-conversations}`.
pub async fn create(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    access.require_master()?;
    let mut body = json_object(&body)?;
    match body.get(MEMBERS) {
        None | Some(Value::Null) => {
            body.insert(MEMBERS.into(), json!([]));
        }
        Some(Value::Array(items)) if items.iter().all(|i| i.as_str().is_some()) => {}
        Some(_) => return Err(param_error("Parameter m must be an array of client ids.")),
    }
    if let Some(flag) = kind.flag() {
        body.insert(flag.into(), Value::Bool(true));
    }
    for other in ["tr", "sys"] {
        if Some(other) != kind.flag() && body.get(other) == Some(&Value::Bool(true)) {
            return Err(param_error(format!(
                "Parameter {other} is not allowed here: use {}.",
                match other {
                    "tr" => Kind::ChatRoom.prefix(),
                    _ => Kind::Service.prefix(),
                }
            )));
        }
    }
    if body.get(UNIQUE) == Some(&Value::Bool(true)) && !body.contains_key(UNIQUE_ID) {
        let members = conversations::strings(body.get(MEMBERS));
        body.insert(
            UNIQUE_ID.into(),
            Value::String(conversations::unique_id(&members)),
        );
    }
    let by = body.get("c").and_then(Value::as_str).map(str::to_owned);
    let whole = kind == Kind::Conversation;
    let created = conversations::start(&state.svc, by.as_deref(), body, whole).await?;
    let status = if created.existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    if whole {
        return Ok((status, Json(Value::Object(created.body))));
    }
    let mut answer = Map::new();
    answer.insert("objectId".into(), json!(created.id));
    if let Some(at) = created.body.get("createdAt") {
        answer.insert("createdAt".into(), at.clone());
    }
    Ok((status, Json(Value::Object(answer))))
}

/// The `where` a query of `kind` adds to the caller's.
fn kind_where(kind: Kind) -> Value {
    match kind {
        Kind::Conversation => json!({"tr": {"$ne": true}, "sys": {"$ne": true}}),
        Kind::ChatRoom => json!({"tr": true}),
        Kind::Service => json!({"sys": true}),
    }
}

async fn find(
    state: &AppState,
    kind: Option<Kind>,
    raw: Option<String>,
) -> Result<Json<Value>, AppError> {
    let params = query_params(raw.as_deref());
    let mut q = find_params(&params, state.max_scan)?;
    if let Some(kind) = kind {
        q.where_ = Some(match q.where_.take() {
            None => kind_where(kind),
            Some(w) => json!({"$and": [w, kind_where(kind)]}),
        });
    }
    let found = objects::find(&state.svc.db, Access::Master, CLASS.to_string(), q).await?;
    Ok(Json(found))
}

/// `GET /1.2/rtm/{conversations,chatrooms,service-conversations}?where&skip&limit&order`.
pub async fn query(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    find(&state, Some(kind), raw).await
}

/// `GET /1.2/rtm/all-conversations?where&skip&limit&order`: every kind.
pub async fn all_conversations(
    State(state): State<AppState>,
    access: Access,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    find(&state, None, raw).await
}

fn updated(id: &str, out: &Map<String, Value>) -> Json<Value> {
    Json(json!({
        "updatedAt": out.get("updatedAt").cloned().unwrap_or(Value::Null),
        "objectId": id,
    }))
}

/// `PUT /1.2/rtm/{…}/{id}`: any field but `m`.
pub async fn update(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let body = json_object(&body)?;
    if body.contains_key(MEMBERS) {
        return Err(param_error(
            "Members are changed through the members endpoints, not with m.",
        ));
    }
    for flag in ["tr", "sys"] {
        if body.contains_key(flag) {
            return Err(param_error(format!(
                "A conversation's kind ({flag}) cannot change."
            )));
        }
    }
    if body.is_empty() {
        return Err(param_error("Nothing to update."));
    }
    conversation_of(&state, kind, &id).await?;
    let out = conversations::update(&state.svc, None, &id, Update::master(body)).await?;
    Ok(updated(&id, &out))
}

/// `DELETE /1.2/rtm/{…}/{id}`.
pub async fn remove(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    conversation_of(&state, kind, &id).await?;
    conversations::delete(&state.svc, &id).await?;
    Ok(Json(json!({})))
}

/// `POST /1.2/rtm/conversations/{id}/members` `{"client_ids"}`.
pub async fn add_members(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let ids = ids_param(&json_object(&body)?, "client_ids", MAX_IDS)?;
    conversation_of(&state, Kind::Conversation, &id).await?;
    let out = conv_admin::add_by_backend(&state.svc, &id, &ids)
        .await
        .map_err(admin_error)?;
    Ok(updated(&id, &out))
}

/// `DELETE /1.2/rtm/conversations/{id}/members` `{"client_ids"}` (a JSON body on DELETE).
pub async fn remove_members(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let ids = ids_param(&json_object(&body)?, "client_ids", MAX_IDS)?;
    conversation_of(&state, Kind::Conversation, &id).await?;
    let update = Update::master(members_body(false, &ids));
    let out = conversations::update(&state.svc, None, &id, update).await?;
    Ok(updated(&id, &out))
}

/// `GET /1.2/rtm/conversations/{id}/members` → `{"result":[…]}`.
pub async fn members(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let conv = conversation_of(&state, Kind::Conversation, &id).await?;
    Ok(Json(json!({ "result": conv.members })))
}

async fn set_mutes(
    state: &AppState,
    id: &str,
    body: &Bytes,
    mute: bool,
) -> Result<Json<Value>, AppError> {
    let ids = ids_param(&json_object(body)?, "client_ids", MAX_IDS)?;
    conversation_of(state, Kind::Conversation, id).await?;
    let out = conversations::mute_many(&state.svc, id, &ids, mute).await?;
    Ok(updated(id, &out))
}

/// `POST /1.2/rtm/conversations/{id}/mutes` `{"client_ids"}`.
pub async fn mute(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    set_mutes(&state, &id, &body, true).await
}

/// `DELETE /1.2/rtm/conversations/{id}/mutes` `{"client_ids"}`.
pub async fn unmute(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    set_mutes(&state, &id, &body, false).await
}

/// `GET /1.2/rtm/conversations/{id}/mutes` → `{"result":[…]}`.
pub async fn mutes(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let conv = conversation_of(&state, Kind::Conversation, &id).await?;
    Ok(Json(json!({ "result": conv.muted })))
}

/// The members of chat room `id` that are online (on any instance).
async fn online(state: &AppState, id: &str) -> Result<Vec<String>, AppError> {
    let conv = conversation_of(state, Kind::ChatRoom, id).await?;
    let presence = &state.svc.presence;
    Ok(conv
        .members
        .into_iter()
        .filter(|m| presence.is_online(m))
        .collect())
}

/// `GET /1.2/rtm/chatrooms/{id}/members` → `{"result":[…]}`: a random sample (at most [`ONLINE_SAMPLE`]) of
/// the online members.
pub async fn online_members(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let mut found = online(&state, &id).await?;
    found.shuffle(&mut rand::rng());
    found.truncate(ONLINE_SAMPLE);
    Ok(Json(json!({ "result": found })))
}

/// `GET /1.2/rtm/chatrooms/{id}/members/online-count` → `{"result": n}`.
pub async fn online_count(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let found = online(&state, &id).await?;
    Ok(Json(json!({ "result": found.len() })))
}

/// `GET /1.2/rtm/service-conversations/{id}/subscribers/count` → `{"count": n}`: the clients subscribed
/// through this API and the ones that subscribed themselves (`m`).
pub async fn subscriber_count(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let conv = conversation_of(&state, Kind::Service, &id).await?;
    let listed = history::subscribers(&state.svc.db, id, String::new(), i64::MAX).await?;
    let mut all: std::collections::HashSet<String> =
        listed.into_iter().map(|s| s.client_id).collect();
    all.extend(conv.members);
    Ok(Json(json!({ "count": all.len() })))
}

/// `DELETE /1.2/rtm/service-conversations/{id}/subscribers/{client}` → `{}`; the client also leaves `m` if
/// it subscribed itself.
pub async fn unsubscribe(
    State(state): State<AppState>,
    access: Access,
    Path((id, client)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let conv = conversation_of(&state, Kind::Service, &id).await?;
    history::unsubscribe(&state.svc.db, id.clone(), client.clone()).await?;
    if conv.members.contains(&client) {
        let update = Update::master(members_body(false, &[client]));
        conversations::update(&state.svc, None, &id, update).await?;
    }
    Ok(Json(json!({})))
}
