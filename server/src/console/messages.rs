//! The console's messages: a conversation's history, sends and broadcasts (through
//! `crate::domain::messaging`), and the live stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::Extensions;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Map, Value};
use tokio::sync::broadcast::error::RecvError;

use super::api::{bad, client_ids, given, page_params};
use super::{Console, Signed, SignedWrite};
use crate::domain::messaging::{self, broadcast_valid_till, Origin, SendError};
use crate::error::invalid_send;
use crate::error::AppError;
use crate::routes::{json_object, query_params};
use crate::state::ConnInfo;
use crate::store::messages::{MessageKind, NewMessage, Stored};
use crate::store::operator::{self};

#[allow(clippy::too_many_arguments)]
fn message_json(
    seq: i64,
    msg_id: &str,
    conv_id: &str,
    from: &str,
    data: &str,
    timestamp: i64,
    kind: MessageKind,
    transient: bool,
    recipients: &[String],
    binary: bool,
) -> Value {
    json!({
        "seq": seq, "msgId": msg_id, "convId": conv_id, "from": from, "data": data,
        "timestamp": timestamp, "kind": kind.as_str(), "transient": transient,
        "recipients": recipients, "binary": binary,
    })
}

fn stored_json(s: &Stored) -> Value {
    let recipients: &[String] = if s.kind == MessageKind::ToClients {
        &s.audience
    } else {
        &[]
    };
    message_json(
        s.seq,
        &s.msg_id,
        &s.conv_id,
        &s.from,
        &s.data,
        s.timestamp,
        s.kind,
        s.transient,
        recipients,
        s.binary,
    )
}

/// `GET /console/api/conversations/{id}/messages?limit=&before=`: every stored message of the conversation
/// (broadcasts, transient messages and messages to chosen clients included), newest first; `before` is the
/// `seq` of the last message of the previous page, and `next` the cursor of the following one.
pub async fn messages(
    State(console): State<Console>,
    _signed: Signed,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let params = query_params(raw.as_deref());
    let (_, limit) = page_params(&params);
    let before = match given(&params, "before") {
        None => None,
        Some(s) => Some(
            s.parse::<i64>()
                .map_err(|_| bad("before must be a message's seq number."))?,
        ),
    };
    let (total, rows) =
        operator::messages_page(&console.app.svc.db, id, before, limit as i64).await?;
    let results: Vec<Value> = rows
        .into_iter()
        .map(|m| {
            message_json(
                m.seq,
                &m.msg_id,
                &m.conv_id,
                &m.from,
                &m.data,
                m.timestamp,
                m.kind,
                m.transient,
                &m.recipients,
                m.binary,
            )
        })
        .collect();
    let next = (results.len() == limit)
        .then(|| results.last().map(|m| m["seq"].clone()))
        .flatten();
    let body = json!({"results": results, "total": total, "limit": limit, "next": next});
    Ok(Json(body))
}

fn required(body: &Map<String, Value>, key: &str) -> Result<String, AppError> {
    match body.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(bad(format!("Missing required parameter {key}.")))
        }
        Some(_) => Err(bad(format!("Parameter {key} must be a string."))),
    }
}

/// The message text: a string as it is, any other JSON value as its compact text (as `/1.1/rtm/messages`).
fn message_text(body: &Map<String, Value>) -> Result<String, AppError> {
    match body.get("message") {
        None | Some(Value::Null) => Err(bad("Missing required parameter message.")),
        Some(Value::String(s)) if s.is_empty() => Err(bad("Missing required parameter message.")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
    }
}

fn peer_ip(ext: &Extensions) -> Option<String> {
    ext.get::<ConnInfo>().map(|c| c.peer.ip().to_string())
}

fn sent(stored: &Stored) -> Json<Value> {
    Json(json!({
        "msgId": stored.msg_id, "timestamp": stored.timestamp, "message": stored_json(stored),
    }))
}

/// `POST /console/api/messages` `{"convId", "from", "message", "toClients"?, "transient"?}`: a message as any
/// client id, or (with `toClients`) a system message to chosen clients.
pub async fn send(
    State(console): State<Console>,
    _signed: SignedWrite,
    ext: Extensions,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let body = json_object(&body)?;
    let conv_id = required(&body, "convId")?;
    let from = required(&body, "from")?;
    let data = message_text(&body)?;
    let recipients = client_ids(body.get("toClients"), "toClients")?;
    let transient = match body.get("transient") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("Parameter transient must be a boolean.")),
    };
    let mut msg = NewMessage::to_conversation(conv_id, from, data);
    msg.transient = transient;
    if !recipients.is_empty() {
        msg.kind = MessageKind::ToClients;
        msg.recipients = recipients;
    }
    msg.from_ip = peer_ip(&ext);
    send_one(&console, msg).await
}

/// Sends through the domain's one send path; a broken rule is worded with the console's parameter names.
async fn send_one(console: &Console, msg: NewMessage) -> Result<Json<Value>, AppError> {
    let ip = msg.from_ip.clone();
    match messaging::send(&console.app.svc, msg, Origin::Rest, ip).await {
        Ok(stored) => Ok(sent(&stored)),
        Err(SendError::Invalid(e)) => Err(invalid_send(&e, "toClients", "validTill")),
        Err(e) => Err(e.into()),
    }
}

/// `POST /console/api/broadcasts` `{"convId", "from", "message", "validTill"?}` (epoch ms, at most a month
/// ahead; default a month). Checked before the quota is counted, so a refused broadcast costs none.
pub async fn broadcast(
    State(console): State<Console>,
    _signed: SignedWrite,
    ext: Extensions,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let body = json_object(&body)?;
    let conv_id = required(&body, "convId")?;
    let from = required(&body, "from")?;
    let data = message_text(&body)?;
    let requested = match body.get("validTill") {
        None | Some(Value::Null) => None,
        // Not a number: refused as out of range.
        Some(v) => Some(v.as_f64().map_or(0, |f| f as i64)),
    };
    let valid_till = broadcast_valid_till(requested, Utc::now().timestamp_millis())
        .map_err(|e| invalid_send(&e, "toClients", "validTill"))?;
    let mut msg = NewMessage::to_conversation(conv_id, from, data);
    msg.kind = MessageKind::Broadcast;
    msg.valid_till = Some(valid_till);
    msg.from_ip = peer_ip(&ext);
    send_one(&console, msg).await
}

/// `GET /console/api/live[?conv=ID]`: server-sent events, one `message` event per message as it is stored
/// (whatever sent it), only that conversation's with `conv`. A `ready` event opens the stream; `lagged` says
/// how many messages a slow reader missed (they are in the store). The stream ends with the session.
pub async fn live(
    State(console): State<Console>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> impl IntoResponse {
    let params = query_params(raw.as_deref());
    let conv = params.get("conv").filter(|c| !c.is_empty()).cloned();
    let rx = console.app.svc.feed.subscribe();
    struct Live {
        rx: tokio::sync::broadcast::Receiver<std::sync::Arc<Stored>>,
        console: Console,
        token: String,
        conv: Option<String>,
        started: bool,
    }
    let init = Live {
        rx,
        console,
        token: signed.token,
        conv,
        started: false,
    };
    let stream = futures::stream::unfold(init, |mut live| async move {
        if !live.started {
            live.started = true;
            let ready = Event::default().event("ready").data("{}");
            return Some((Ok::<Event, Infallible>(ready), live));
        }
        loop {
            // Wake now and then to end the stream once the session is gone (sign-out, expiry).
            let next = tokio::time::timeout(Duration::from_secs(15), live.rx.recv()).await;
            live.console.sessions.get(&live.token)?;
            match next {
                Err(_elapsed) => continue,
                Ok(Ok(msg)) => {
                    if live.conv.as_deref().is_some_and(|c| c != msg.conv_id) {
                        continue;
                    }
                    let event = Event::default()
                        .event("message")
                        .id(msg.seq.to_string())
                        .data(stored_json(&msg).to_string());
                    return Some((Ok(event), live));
                }
                Ok(Err(RecvError::Lagged(n))) => {
                    let event = Event::default()
                        .event("lagged")
                        .data(json!({"missed": n}).to_string());
                    return Some((Ok(event), live));
                }
                Ok(Err(RecvError::Closed)) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(20)))
}
