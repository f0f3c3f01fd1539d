//! The real-time messaging REST API 1.1: sends, broadcasts, history.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::Extensions;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Map, Value};

use crate::auth::Access;
use crate::domain::messaging::{self, broadcast_valid_till, Origin};
use crate::error::{codes, AppError};
use crate::protocol::limits::{DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT};
use crate::protocol::records::render;
use crate::routes::{json_object, query_params, truthy};
use crate::state::{AppState, ConnInfo};
use crate::store::messages::{self, HistoryQuery, HistoryScope, MessageKind, NewMessage};

pub(crate) fn param_error(message: impl Into<String>) -> AppError {
    AppError::bad_request(codes::INTERNAL, message)
}

pub(crate) fn required_string(body: &Map<String, Value>, key: &str) -> Result<String, AppError> {
    match body.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::Null) | None => Err(param_error(format!("Missing required parameter {key}."))),
        Some(Value::String(_)) => Err(param_error(format!("Parameter {key} must not be empty."))),
        Some(_) => Err(param_error(format!("Parameter {key} must be a string."))),
    }
}

/// The message text: strings as they are; any other JSON value in its compact text form.
pub(crate) fn message_text(body: &Map<String, Value>) -> Result<String, AppError> {
    match body.get("message") {
        None | Some(Value::Null) => Err(param_error("Missing required parameter message.")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
    }
}

pub(crate) fn bool_param(
    body: &Map<String, Value>,
    key: &str,
    default: bool,
) -> Result<bool, AppError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(param_error(format!("Parameter {key} must be a boolean."))),
    }
}

/// The offline push payload, from `push` (documented) or `push_data` (what the Python SDK sends); a string
/// holding JSON is taken as that JSON.
pub(crate) fn push_payload(
    body: &Map<String, Value>,
) -> Result<(Option<Value>, Option<&'static str>), AppError> {
    for key in ["push", "push_data"] {
        match body.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if s.is_empty() => continue,
            Some(Value::Object(m)) if m.is_empty() => continue,
            Some(Value::String(s)) => {
                let v =
                    serde_json::from_str::<Value>(s).unwrap_or_else(|_| Value::String(s.clone()));
                return Ok((Some(v), Some(key)));
            }
            Some(v @ Value::Object(_)) => return Ok((Some(v.clone()), Some(key))),
            Some(_) => {
                return Err(param_error(format!(
                    "Parameter {key} must be an object or a string."
                )))
            }
        }
    }
    Ok((None, None))
}

pub(crate) fn from_ip(ext: &Extensions) -> Option<String> {
    ext.get::<ConnInfo>().map(|c| c.peer.ip().to_string())
}

pub(crate) fn sent(msg_id: String, timestamp: i64) -> Json<Value> {
    Json(json!({"msg-id": msg_id, "timestamp": timestamp}))
}

/// `POST /1.1/rtm/messages`.
pub async fn send(
    State(state): State<AppState>,
    access: Access,
    ext: Extensions,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let body = json_object(&body)?;
    let from = required_string(&body, "from_peer")?;
    let conv_id = required_string(&body, "conv_id")?;
    let data = message_text(&body)?;
    // API 1.1 defaults `transient` to true for backward compatibility (the SDK always sends it).
    let transient = bool_param(&body, "transient", true)?;
    let mut recipients: Vec<String> = Vec::new();
    match body.get("to_peers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            let mut seen = std::collections::HashSet::new();
            for item in items {
                let Some(id) = item.as_str().filter(|s| !s.is_empty()) else {
                    return Err(param_error("to_peers must be an array of client ids."));
                };
                // O(1) per id: a request with 250,000 ids must not hold a worker for seconds.
                if seen.insert(id) {
                    recipients.push(id.to_string());
                }
            }
        }
        Some(_) => return Err(param_error("to_peers must be an array of client ids.")),
    }
    let (push, push_field) = push_payload(&body)?;
    let kind = if recipients.is_empty() {
        MessageKind::Normal
    } else {
        MessageKind::ToClients
    };
    let msg = NewMessage {
        conv_id,
        from,
        data,
        kind,
        transient,
        recipients,
        push,
        push_field,
        valid_till: None,
        from_ip: from_ip(&ext),
        binary: false,
        mention_pids: Vec::new(),
        mention_all: false,
        receipt: false,
    };
    send_one(&state, msg).await
}

pub(crate) async fn send_one(state: &AppState, msg: NewMessage) -> Result<Json<Value>, AppError> {
    let ip = msg.from_ip.clone();
    let stored = messaging::send(&state.svc, msg, Origin::Rest, ip).await?;
    Ok(sent(stored.msg_id, stored.timestamp))
}

/// `valid_till` as the client gave it (a number, or a string of one), checked by the domain's rule.
pub(crate) fn valid_till(body: &Map<String, Value>, now: i64) -> Result<i64, AppError> {
    let requested = match body.get("valid_till") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            match v {
                Value::Number(n) => n.as_f64().map(|f| f as i64),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or_else(|| param_error("valid_till must be a number of milliseconds."))?,
        ),
    };
    broadcast_valid_till(requested, now).map_err(AppError::from_invalid_send)
}

/// `POST /1.1/rtm/broadcast`.
pub async fn broadcast(
    State(state): State<AppState>,
    access: Access,
    ext: Extensions,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let body = json_object(&body)?;
    let msg = broadcast_of(&body, "from_peer", &ext)?;
    send_one(&state, msg).await
}

/// The broadcast a body asks for (1.1 and 1.2 alike but for the sender's key, `from_peer` / `from_client`):
/// `conv_id`, `message`, `transient`, `valid_till` (default: a month), `push` / `push_data`.
pub(crate) fn broadcast_of(
    body: &Map<String, Value>,
    from_key: &str,
    ext: &Extensions,
) -> Result<NewMessage, AppError> {
    let from = required_string(body, from_key)?;
    let conv_id = required_string(body, "conv_id")?;
    let data = message_text(body)?;
    let mut msg = NewMessage::to_conversation(conv_id, from, data);
    msg.kind = MessageKind::Broadcast;
    msg.transient = bool_param(body, "transient", false)?;
    msg.valid_till = Some(valid_till(body, Utc::now().timestamp_millis())?);
    (msg.push, msg.push_field) = push_payload(body)?;
    msg.from_ip = from_ip(ext);
    Ok(msg)
}

pub(crate) fn int_param(
    params: &std::collections::HashMap<String, String>,
    key: &str,
) -> Result<Option<i64>, AppError> {
    match params.get(key).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<f64>()
            .map(|f| Some(f as i64))
            .map_err(|_| param_error(format!("Parameter {key} must be a number."))),
    }
}

/// `GET /1.1/rtm/messages/history`.
pub async fn history(
    State(state): State<AppState>,
    access: Access,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let params = query_params(raw.as_deref());
    let non_empty = |k: &str| params.get(k).filter(|s| !s.is_empty()).cloned();
    let scope = match (non_empty("convid"), non_empty("from")) {
        (Some(conv), _) => HistoryScope::Conversation(conv),
        (None, Some(from)) => HistoryScope::From(from),
        (None, None) => HistoryScope::All,
    };
    let limit = match int_param(&params, "limit")? {
        None => DEFAULT_HISTORY_LIMIT,
        Some(n) if n <= 0 => DEFAULT_HISTORY_LIMIT,
        Some(n) => (n as usize).min(MAX_HISTORY_LIMIT),
    };
    let start_ts = match int_param(&params, "timestamp")? {
        Some(t) => Some(t),
        // Deprecated on LeanCloud but still what the Python SDK sends.
        None => int_param(&params, "max_ts")?,
    };
    let q = HistoryQuery {
        scope,
        limit,
        reversed: truthy(params.get("reversed")),
        start_ts,
        start_msgid: non_empty("msgid"),
        include_start: truthy(params.get("include_start")),
        stop_ts: int_param(&params, "till_timestamp")?,
        stop_msgid: non_empty("till_msgid"),
        include_stop: truthy(params.get("include_stop")),
    };
    let records = messages::history(&state.svc.db, q).await?;
    Ok(Json(Value::Array(records.iter().map(render).collect())))
}
