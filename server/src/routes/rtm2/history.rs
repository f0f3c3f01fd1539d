//! The REST API 1.2 endpoints a LeanCloud export uses: message history and service-conversation
//! subscribers (`leancloud-rest.md` §4.2, `leancloud-migration.md` §1.3).
//!
//! History: `GET /1.2/rtm/conversations/{id}/messages` (also `chatrooms/{id}`), `GET
//! /1.2/rtm/service-conversations/{id}/subscribers/{client}/messages`, `GET /1.2/rtm/clients/{client}/messages`
//! and `GET /1.2/rtm/messages`, with `msgid`+`timestamp` (start), `till_msgid`+`till_timestamp` (stop),
//! `include_start`, `include_stop`, `reversed` and `limit` (1–1000, default 100). Records are newest first
//! (oldest first with `reversed`), ordered by (`timestamp`, arrival); a bound with a `msgid` sits exactly at
//! that message, a bound with only a timestamp at that millisecond. Broadcasts and transient messages are
//! not in history. A message sent to chosen clients of a service conversation carries their ids in
//! `recipients` (an addition of this server; LeanCloud serves those per subscriber).
//!
//! Subscribers: `GET /1.2/rtm/service-conversations/{id}/subscribers?limit=(≤ 50)&client_id=<cursor>` →
//! `[{"timestamp","subscriber","conv_id"}]` ordered by client id, starting after `client_id`;
//! `POST …/subscribers` `{"client_id"}` subscribes (idempotent).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Access;
use crate::error::{codes, AppError};
use crate::protocol::records::render;
use crate::routes::{json_object, query_params, truthy};
use crate::state::AppState;
use crate::store::history::{self, End, HistoryQuery, Scope};

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
const MAX_SUBSCRIBER_LIMIT: i64 = 50;

fn param_error(message: impl Into<String>) -> AppError {
    AppError::bad_request(codes::INTERNAL, message)
}

fn int_param(params: &HashMap<String, String>, key: &str) -> Result<Option<i64>, AppError> {
    match params.get(key).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<f64>()
            .map(|f| Some(f as i64))
            .map_err(|_| param_error(format!("Parameter {key} must be a number."))),
    }
}

async fn history(
    state: AppState,
    access: Access,
    scope: Scope,
    raw: Option<String>,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let params = query_params(raw.as_deref());
    let limit = match int_param(&params, "limit")? {
        None => DEFAULT_LIMIT,
        Some(n) if n <= 0 => DEFAULT_LIMIT,
        Some(n) => n.min(MAX_LIMIT),
    };
    let non_empty = |k: &str| params.get(k).filter(|s| !s.trim().is_empty()).cloned();
    let query = HistoryQuery {
        scope,
        start: End {
            timestamp: int_param(&params, "timestamp")?,
            msg_id: non_empty("msgid"),
            inclusive: truthy(params.get("include_start")),
        },
        stop: End {
            timestamp: int_param(&params, "till_timestamp")?,
            msg_id: non_empty("till_msgid"),
            inclusive: truthy(params.get("include_stop")),
        },
        reversed: truthy(params.get("reversed")),
        limit,
    };
    let records = history::history(&state.svc.db, query).await?;
    Ok(Json(Value::Array(records.iter().map(render).collect())))
}

/// `GET /1.2/rtm/conversations/{id}/messages` and `GET /1.2/rtm/chatrooms/{id}/messages`.
pub async fn conversation_messages(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    history(state, access, Scope::Conversation(id), raw).await
}

/// `GET /1.2/rtm/service-conversations/{id}/subscribers/{client}/messages`: what one subscriber received.
pub async fn subscriber_messages(
    State(state): State<AppState>,
    access: Access,
    Path((conv, client)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    history(state, access, Scope::Subscriber { conv, client }, raw).await
}

/// `GET /1.2/rtm/clients/{client}/messages`: what one client sent.
pub async fn client_messages(
    State(state): State<AppState>,
    access: Access,
    Path(client): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    history(state, access, Scope::From(client), raw).await
}

/// `GET /1.2/rtm/messages`: the whole app's history.
pub async fn all_messages(
    State(state): State<AppState>,
    access: Access,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    history(state, access, Scope::All, raw).await
}

/// `GET /1.2/rtm/service-conversations/{id}/subscribers`.
pub async fn subscribers(
    State(state): State<AppState>,
    access: Access,
    Path(conv): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let params = query_params(raw.as_deref());
    let limit = match int_param(&params, "limit")? {
        None => MAX_SUBSCRIBER_LIMIT,
        Some(n) if n <= 0 => MAX_SUBSCRIBER_LIMIT,
        Some(n) => n.min(MAX_SUBSCRIBER_LIMIT),
    };
    let after = params.get("client_id").cloned().unwrap_or_default();
    let rows: Vec<Value> = history::subscribers(&state.svc.db, conv.clone(), after, limit)
        .await?
        .into_iter()
        .map(|s| json!({"timestamp": s.timestamp, "subscriber": s.client_id, "conv_id": conv}))
        .collect();
    Ok(Json(Value::Array(rows)))
}

/// `POST /1.2/rtm/service-conversations/{id}/subscribers` with `{"client_id"}`; subscribing twice keeps
/// the first subscription time.
pub async fn subscribe(
    State(state): State<AppState>,
    access: Access,
    Path(conv): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let body = json_object(&body)?;
    let client = match body.get("client_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(param_error("Missing required parameter client_id.")),
    };
    let now = chrono::Utc::now().timestamp_millis();
    history::subscribe(&state.svc.db, conv, client, now).await?;
    Ok(Json(json!({})))
}
