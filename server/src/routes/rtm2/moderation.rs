//! Moderation through the 1.2 API, under `conversations/{id}`, `chatrooms/{id}` and `service-conversations/{id}`:
//!
//! - `POST …/temporary-silenceds` `{"client_id","ttl"}` (1 to 86,400 s) → `{}`; `DELETE …?client_id=` → `{}`;
//!   a silenced client's sends are refused with 4315 until then;
//! - `POST` / `DELETE …/permanent-silenceds` `{"client_ids"}` → `{}`; `GET …?limit&next` →
//!   `{"client_ids":[…]}` (+ `"next"` when there are more); their sends are refused with 4563 `SILENCED`;
//! - `POST` / `DELETE …/blacklists` `{"client_ids"}` → `{}` (blocked members are removed, with the `left` /
//!   `members_left` pushes, and cannot join or be added until unblocked: 4548 `BLOCKED_BY_CONV`); `GET` as
//!   for silences;
//! - `POST …/member-infos` `{"clientId","role"}` → `{"updatedAt","objectId"}`, `PUT …/member-infos/{infoId}`
//!   `{"role"}`, `DELETE …/member-infos/{infoId}` (back to `Member`) → `{}`, `GET …?skip&limit&role` →
//!   `{"results":[{"clientId","objectId","role"}]}` (the owner and the managers; `objectId` is
//!   `{cid}:{clientId}`, as `/1.1/classes/_ConversationMemberInfo` answers it);
//! - `POST` / `DELETE /1.2/rtm/clients/{client}/blacklists` `{"conv_id"}` → `{}`: the client keeps that
//!   conversation from adding it (it may still join by itself); `GET …?limit&next` → `{"conv_ids":[…]}`.
//!
//! The conversation's owner cannot be silenced or blocked (4324 `CONVERSATION_NEED_OWNER`, nothing changed).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Map, Value};

use super::{admin_error, conversation_of, ids_param, silence_error, Kind, MAX_IDS};
use crate::auth::Access;
use crate::domain::conv_admin::{self, MEMBER};
use crate::domain::moderation;
use crate::error::{codes, AppError};
use crate::routes::rtm::{int_param, param_error, required_string};
use crate::routes::{json_object, query_params};
use crate::state::AppState;
use crate::store::conv_admin::Mark;

fn done() -> Json<Value> {
    Json(json!({}))
}

/// `ttl`: whole seconds.
fn ttl_of(body: &Map<String, Value>) -> Result<i64, AppError> {
    match body.get("ttl") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| param_error("Parameter ttl must be a number of seconds."))
}

/// `POST …/{id}/temporary-silenceds` `{"client_id","ttl"}`.
pub async fn silence_for(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let body = json_object(&body)?;
    let client = required_string(&body, "client_id")?;
    let ttl = ttl_of(&body)?;
    conversation_of(&state, kind, &id).await?;
    let now = chrono::Utc::now().timestamp_millis();
    moderation::silence_for(&state.svc, &id, &client, ttl, now)
        .await
        .map_err(silence_error)?;
    Ok(done())
}

/// `DELETE …/{id}/temporary-silenceds?client_id=`.
pub async fn lift_silence(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let params = query_params(raw.as_deref());
    let client = params
        .get("client_id")
        .filter(|c| !c.is_empty())
        .cloned()
        .ok_or_else(|| param_error("Missing required parameter client_id."))?;
    conversation_of(&state, kind, &id).await?;
    moderation::lift_silence(&state.svc, &id, &client)
        .await
        .map_err(admin_error)?;
    Ok(done())
}

/// The `client_ids` of a silence or block of `id`, refused whole when they name the owner.
async fn targets(
    state: &AppState,
    kind: Kind,
    id: &str,
    body: &Bytes,
) -> Result<Vec<String>, AppError> {
    let ids = ids_param(&json_object(body)?, "client_ids", MAX_IDS)?;
    conversation_of(state, kind, id).await?;
    let conv = conv_admin::load(&state.svc, id)
        .await
        .map_err(admin_error)?;
    if let Some(owner) = ids.iter().find(|c| conv.is_owner(c)) {
        return Err(AppError::bad_request(
            codes::CONVERSATION_NEED_OWNER,
            format!("{owner} owns the conversation: it cannot be silenced or blocked."),
        ));
    }
    Ok(ids)
}

async fn shutup(
    state: AppState,
    kind: Kind,
    id: String,
    body: Bytes,
    add: bool,
) -> Result<Json<Value>, AppError> {
    let ids = targets(&state, kind, &id, &body).await?;
    conv_admin::shutup(&state.svc, None, &id, &ids, add)
        .await
        .map_err(admin_error)?;
    Ok(done())
}

/// `POST …/{id}/permanent-silenceds` `{"client_ids"}`.
pub async fn silence(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    shutup(state, kind, id, body, true).await
}

/// `DELETE …/{id}/permanent-silenceds` `{"client_ids"}`.
pub async fn unsilence(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    shutup(state, kind, id, body, false).await
}

/// A page of `mark`ed clients of `id`: `{"client_ids"}` and `"next"` when there are more.
async fn listed(
    state: AppState,
    kind: Kind,
    id: String,
    raw: Option<String>,
    mark: Mark,
) -> Result<Json<Value>, AppError> {
    let params = query_params(raw.as_deref());
    let limit = int_param(&params, "limit")?;
    let next = params.get("next").cloned();
    conversation_of(&state, kind, &id).await?;
    let (ids, next) = conv_admin::listed(&state.svc, None, &id, mark, limit, next)
        .await
        .map_err(admin_error)?;
    let mut out = json!({ "client_ids": ids });
    if let Some(next) = next {
        out["next"] = json!(next);
    }
    Ok(Json(out))
}

/// `GET …/{id}/permanent-silenceds?limit&next`.
pub async fn silenced(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    listed(state, kind, id, raw, Mark::Shutup).await
}

async fn set_block(
    state: AppState,
    kind: Kind,
    id: String,
    body: Bytes,
    add: bool,
) -> Result<Json<Value>, AppError> {
    let ids = targets(&state, kind, &id, &body).await?;
    conv_admin::block(&state.svc, None, &id, &ids, add)
        .await
        .map_err(admin_error)?;
    Ok(done())
}

/// `POST …/{id}/blacklists` `{"client_ids"}`.
pub async fn block(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    set_block(state, kind, id, body, true).await
}

/// `DELETE …/{id}/blacklists` `{"client_ids"}`.
pub async fn unblock(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    set_block(state, kind, id, body, false).await
}

/// `GET …/{id}/blacklists?limit&next`.
pub async fn blocked(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    listed(state, kind, id, raw, Mark::Block).await
}

fn info_id(cid: &str, client: &str) -> String {
    format!("{cid}:{client}")
}

async fn set_role(
    state: &AppState,
    kind: Kind,
    id: &str,
    client: &str,
    role: &str,
) -> Result<Json<Value>, AppError> {
    conversation_of(state, kind, id).await?;
    conv_admin::update_role(&state.svc, None, id, client, role)
        .await
        .map_err(admin_error)?;
    Ok(Json(json!({
        "updatedAt": crate::store::time::iso_millis(chrono::Utc::now().timestamp_millis()),
        "objectId": info_id(id, client),
    })))
}

/// `POST …/{id}/member-infos` `{"clientId","role"}`.
pub async fn add_role(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let body = json_object(&body)?;
    let client = required_string(&body, "clientId")?;
    let role = required_string(&body, "role")?;
    set_role(&state, kind, &id, &client, &role).await
}

/// The client of member info `info` of conversation `id` (`{cid}:{clientId}`), or the body's `clientId`.
fn info_client(id: &str, info: &str, body: &Map<String, Value>) -> Result<String, AppError> {
    if let Some(client) = info
        .strip_prefix(id)
        .and_then(|rest| rest.strip_prefix(':'))
    {
        if !client.is_empty() {
            return Ok(client.to_string());
        }
    }
    match body.get("clientId") {
        Some(Value::String(c)) if !c.is_empty() => Ok(c.clone()),
        _ => Err(AppError::bad_request(
            codes::OBJECT_NOT_FOUND,
            format!("No member info {info} in this conversation."),
        )),
    }
}

/// `PUT …/{id}/member-infos/{infoId}` `{"role"}`.
pub async fn update_role(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path((id, info)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let body = json_object(&body)?;
    let client = info_client(&id, &info, &body)?;
    let role = required_string(&body, "role")?;
    set_role(&state, kind, &id, &client, &role).await
}

/// `DELETE …/{id}/member-infos/{infoId}`: the member's role back to `Member`.
pub async fn remove_role(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path((id, info)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let client = info_client(&id, &info, &Map::new())?;
    let _ = set_role(&state, kind, &id, &client, MEMBER).await?;
    Ok(done())
}

/// `GET …/{id}/member-infos?skip&limit&role`.
pub async fn roles(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let params = query_params(raw.as_deref());
    let skip = int_param(&params, "skip")?.unwrap_or(0).max(0) as usize;
    let limit = int_param(&params, "limit")?
        .filter(|l| *l > 0)
        .unwrap_or(100) as usize;
    let only = params.get("role").filter(|r| !r.is_empty());
    conversation_of(&state, kind, &id).await?;
    let roles = conv_admin::roles(&state.svc, &id)
        .await
        .map_err(admin_error)?;
    let results: Vec<Value> = roles
        .into_iter()
        .filter(|(_, role)| only.is_none_or(|o| o == role))
        .skip(skip)
        .take(limit)
        .map(|(client, role)| {
            json!({"clientId": client, "objectId": info_id(&id, &client), "role": role})
        })
        .collect();
    Ok(Json(json!({ "results": results })))
}

async fn client_blacklist(
    state: AppState,
    client: String,
    body: Bytes,
    add: bool,
) -> Result<Json<Value>, AppError> {
    let body = json_object(&body)?;
    let conv = required_string(&body, "conv_id")?;
    moderation::client_block(&state.svc, &client, &conv, add).await?;
    Ok(done())
}

/// `POST /1.2/rtm/clients/{client}/blacklists` `{"conv_id"}`.
pub async fn client_block(
    State(state): State<AppState>,
    access: Access,
    Path(client): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    client_blacklist(state, client, body, true).await
}

/// `DELETE /1.2/rtm/clients/{client}/blacklists` `{"conv_id"}`.
pub async fn client_unblock(
    State(state): State<AppState>,
    access: Access,
    Path(client): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    client_blacklist(state, client, body, false).await
}

/// `GET /1.2/rtm/clients/{client}/blacklists?limit&next` → `{"conv_ids"}` (+ `"next"`).
pub async fn client_blocked(
    State(state): State<AppState>,
    access: Access,
    Path(client): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let params = query_params(raw.as_deref());
    let limit = int_param(&params, "limit")?;
    let (ids, next) =
        moderation::client_blocks(&state.svc, &client, limit, params.get("next").cloned()).await?;
    let mut out = json!({ "conv_ids": ids });
    if let Some(next) = next {
        out["next"] = json!(next);
    }
    Ok(Json(out))
}
