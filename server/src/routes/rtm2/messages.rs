//! Messages through the 1.2 API.
//!
//! - `POST {conversations,chatrooms}/{id}/messages` `{"from_client","message","transient"?,"no_sync"?,
//!   "push_data"?,"priority"?,"mention_all"?,"mention_client_ids"?}` → `{"msg-id","timestamp"}`: the sender need
//!   not be a member (as on LeanCloud); a chat room takes no `push_data`;
//! - `POST service-conversations/{id}/messages` with `to_clients` (1 to 20): to those subscribers only;
//!   `POST service-conversations/{id}/broadcasts` `{"from_client","message","push"?}`: to every subscriber;
//! - `PUT {…}/{id}/messages/{msg_id}` `{"from_client","message","timestamp"}` edits,
//!   `PUT {…}/{id}/messages/{msg_id}/recall` `{"from_client","timestamp"}` recalls: `{"result":{}}`, the
//!   stored message rewritten and the `patch` push to the online members; a wrong `from_client`/`timestamp`
//!   pair is 4403 / 4404. A recall of a recalled message changes nothing more and answers the same.
//! - `DELETE {…}/{id}/messages/{msg_id}?from_client&timestamp` removes the stored copy only (`{}`);
//! - `POST /1.2/rtm/broadcasts` `{"from_client","conv_id","message","valid_till"?,"push"?,"transient"?}`: to
//!   every client of the app; `GET /1.2/rtm/broadcasts?conv_id&skip&limit` lists the ones still valid, newest
//!   first, as history records with their `valid_till`; `DELETE /1.2/rtm/broadcasts/{msg_id}` withdraws one
//!   from the clients that have not received it yet.
//!
//! `no_sync` and `priority` are checked and accepted; this server sends no copy to the sender's other
//! devices and delivers every message at the same priority.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::Extensions;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Map, Value};

use super::{conversation_of, ids_param, patch_error, Kind};
use crate::auth::Access;
use crate::domain::messaging;
use crate::domain::patches::{self, PatchRequest};
use crate::error::{codes, AppError};
use crate::routes::rtm::{
    bool_param, broadcast_of, from_ip, int_param, message_text, param_error, push_payload,
    required_string, send_one,
};
use crate::routes::{json_object, query_params};
use crate::state::AppState;
use crate::store::messages::{Deletion, MessageKind, NewMessage};

/// The most clients one message of the 1.2 API mentions (`mention_client_ids`).
pub const MAX_MENTIONED: usize = 20;
/// The most clients a service conversation's message to chosen subscribers names.
pub const MAX_TO_CLIENTS: usize = 20;
/// The most broadcasts one listing answers, and its page when none is asked.
const BROADCASTS_MAX: i64 = 1000;
const BROADCASTS_DEFAULT: i64 = 100;

fn priority(body: &Map<String, Value>) -> Result<(), AppError> {
    match body.get("priority") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(p))
            if ["high", "normal", "low"]
                .iter()
                .any(|k| p.eq_ignore_ascii_case(k)) =>
        {
            Ok(())
        }
        Some(_) => Err(param_error(
            "Parameter priority must be high, normal or low.",
        )),
    }
}

fn mentions(body: &Map<String, Value>) -> Result<(Vec<String>, bool), AppError> {
    let all = bool_param(body, "mention_all", false)?;
    let pids = match body.get("mention_client_ids") {
        None | Some(Value::Null) => Vec::new(),
        Some(_) => ids_param(body, "mention_client_ids", MAX_MENTIONED)?,
    };
    Ok((pids, all))
}

/// The message of a send to a normal conversation or a chat room, as the body asks.
fn new_message(
    kind: Kind,
    id: String,
    body: &Map<String, Value>,
    ext: &Extensions,
) -> Result<NewMessage, AppError> {
    let from = required_string(body, "from_client")?;
    let data = message_text(body)?;
    let transient = bool_param(body, "transient", false)?;
    bool_param(body, "no_sync", false)?;
    priority(body)?;
    let (mention_pids, mention_all) = mentions(body)?;
    let (push, push_field) = if kind == Kind::ChatRoom {
        (None, None)
    } else {
        push_payload(body)?
    };
    let mut msg = NewMessage::to_conversation(id, from, data);
    msg.transient = transient;
    msg.push = push;
    msg.push_field = push_field;
    msg.from_ip = from_ip(ext);
    msg.mention_pids = mention_pids;
    msg.mention_all = mention_all;
    Ok(msg)
}

/// `POST /1.2/rtm/{conversations,chatrooms}/{id}/messages`.
pub async fn send(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path(id): Path<String>,
    ext: Extensions,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let body = json_object(&body)?;
    let msg = new_message(kind, id.clone(), &body, &ext)?;
    conversation_of(&state, kind, &id).await?;
    send_one(&state, msg).await
}

/// `POST /1.2/rtm/service-conversations/{id}/messages` with `to_clients`.
pub async fn send_to_subscribers(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    ext: Extensions,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let body = json_object(&body)?;
    let to = ids_param(&body, "to_clients", MAX_TO_CLIENTS)?;
    let mut msg = new_message(Kind::Service, id.clone(), &body, &ext)?;
    msg.kind = MessageKind::ToClients;
    msg.recipients = to;
    conversation_of(&state, Kind::Service, &id).await?;
    send_one(&state, msg).await
}

/// `POST /1.2/rtm/service-conversations/{id}/broadcasts` `{"from_client","message","push"?}`: to every
/// subscriber.
pub async fn broadcast_to_subscribers(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    ext: Extensions,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let body = json_object(&body)?;
    let msg = new_message(Kind::Service, id.clone(), &body, &ext)?;
    conversation_of(&state, Kind::Service, &id).await?;
    send_one(&state, msg).await
}

/// `timestamp`, required, as a number of ms (or a string of one).
fn timestamp_of(v: Option<&Value>) -> Result<i64, AppError> {
    match v {
        Some(Value::Number(n)) => n.as_f64().map(|f| f as i64),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| param_error("Parameter timestamp must be the message's time in ms."))
}

async fn patch(
    state: &AppState,
    kind: Kind,
    id: String,
    msg_id: String,
    body: &Map<String, Value>,
    recall: bool,
) -> Result<Json<Value>, AppError> {
    let by = required_string(body, "from_client")?;
    let timestamp = timestamp_of(body.get("timestamp"))?;
    let data = if recall {
        None
    } else {
        Some(message_text(body)?)
    };
    conversation_of(state, kind, &id).await?;
    let request = PatchRequest {
        by,
        cid: id,
        msg_id,
        recall,
        data,
        by_backend: true,
        timestamp: Some(timestamp),
        ..PatchRequest::default()
    };
    patches::patch(&state.svc, request)
        .await
        .map_err(patch_error)?;
    Ok(Json(json!({"result": {}})))
}

/// `PUT /1.2/rtm/{…}/{id}/messages/{msg_id}` `{"from_client","message","timestamp"}`.
pub async fn edit(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path((id, msg_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let body = json_object(&body)?;
    patch(&state, kind, id, msg_id, &body, false).await
}

/// `PUT /1.2/rtm/{…}/{id}/messages/{msg_id}/recall` `{"from_client","timestamp"}`.
pub async fn recall(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path((id, msg_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let body = json_object(&body)?;
    patch(&state, kind, id, msg_id, &body, true).await
}

/// `DELETE /1.2/rtm/{…}/{id}/messages/{msg_id}?from_client&timestamp`.
pub async fn delete_message(
    State(state): State<AppState>,
    access: Access,
    kind: Kind,
    Path((id, msg_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let params = query_params(raw.as_deref());
    let timestamp = int_param(&params, "timestamp")?
        .ok_or_else(|| param_error("Missing required parameter timestamp."))?;
    conversation_of(&state, kind, &id).await?;
    let what = Deletion::Message {
        conv_id: id,
        msg_id,
        timestamp,
    };
    if !messaging::delete(&state.svc, what).await? {
        return Err(AppError::bad_request(
            codes::MESSAGE_NOT_FOUND,
            "No message with this id and timestamp in this conversation.",
        ));
    }
    Ok(Json(json!({})))
}

/// `POST /1.2/rtm/broadcasts`.
pub async fn broadcast(
    State(state): State<AppState>,
    access: Access,
    ext: Extensions,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let body = json_object(&body)?;
    let msg = broadcast_of(&body, "from_client", &ext)?;
    send_one(&state, msg).await
}

/// `GET /1.2/rtm/broadcasts?conv_id&skip&limit`.
pub async fn broadcasts(
    State(state): State<AppState>,
    access: Access,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let params = query_params(raw.as_deref());
    let limit = match int_param(&params, "limit")? {
        None => BROADCASTS_DEFAULT,
        Some(n) if n <= 0 => BROADCASTS_DEFAULT,
        Some(n) => n.min(BROADCASTS_MAX),
    };
    let skip = int_param(&params, "skip")?.unwrap_or(0).max(0);
    let conv = params.get("conv_id").filter(|c| !c.is_empty()).cloned();
    let now = Utc::now().timestamp_millis();
    let live = messaging::live_broadcasts(&state.svc, conv, now, skip, limit).await?;
    Ok(Json(Value::Array(
        live.into_iter()
            .map(|b| {
                json!({
                    "msg-id": b.msg_id, "conv-id": b.conv_id, "from": b.from, "data": b.data,
                    "timestamp": b.timestamp, "valid_till": b.valid_till,
                })
            })
            .collect(),
    )))
}

/// `DELETE /1.2/rtm/broadcasts/{msg_id}`.
pub async fn delete_broadcast(
    State(state): State<AppState>,
    access: Access,
    Path(msg_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    if !messaging::delete(&state.svc, Deletion::Broadcast { msg_id }).await? {
        return Err(AppError::bad_request(
            codes::MESSAGE_NOT_FOUND,
            "No broadcast with this id.",
        ));
    }
    Ok(Json(json!({})))
}
