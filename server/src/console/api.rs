//! The console's JSON API (`/console/api/…`). Errors are LeanCloud's `{"code", "error"}` bodies, as the rest of
//! the server answers them, and the page shows them as given. Sends and broadcasts go through
//! [`messaging::send`] (hooks, store, delivery, the live feed) and count against the rate limits like the REST
//! API's; conversation changes call the conversation hooks like the storage API.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::{json, Map, Value};
use tokio::sync::broadcast::error::RecvError;

use super::{ct_eq, Console, Signed, SignedWrite, COOKIE, SESSION_TTL};
use crate::domain::conversations::{self, members_body, Update};
use crate::domain::limits::{BucketUsage, Usage};
use crate::domain::messaging::{self, broadcast_valid_till, Origin, SendError};
use crate::error::invalid_send;
use crate::error::AppError;
use crate::protocol::codes;
use crate::protocol::conversation::SERVER_FIELDS;
use crate::routes::{json_object, query_params};
use crate::state::ConnInfo;
use crate::store::db::iso_millis;
use crate::store::messages::{MessageKind, NewMessage, Stored};
use crate::store::objects::{self, CONVERSATION};
use crate::store::operator::{self, KindFilter};
use crate::store::Caller;

const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;
const MAX_CLIENT_ID_CHARS: usize = 64;
/// Whether `key` is a field of `_Conversation` that is not a custom attribute (the console sets `name` from
/// its own field).
fn reserved(key: &str) -> bool {
    key == "name" || SERVER_FIELDS.contains(&key)
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::bad_request(codes::INTERNAL, message)
}

fn page_params(params: &std::collections::HashMap<String, String>) -> (usize, usize) {
    let limit = params
        .get("limit")
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .map_or(DEFAULT_PAGE, |n| n.min(MAX_PAGE));
    let skip = params
        .get("skip")
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(0);
    (skip, limit)
}

fn session_cookie(headers: &HeaderMap, value: &str, max_age: u64) -> Option<HeaderValue> {
    // Secure when the browser reached us over TLS (a proxy in front says so).
    let tls = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={max_age}{secure}"
    ))
    .ok()
}

fn session_body(console: &Console, signed: &Signed) -> Value {
    let left = signed
        .expires
        .saturating_duration_since(std::time::Instant::now());
    json!({
        "signedIn": true,
        "csrfToken": signed.csrf,
        "appId": console.app.credentials.app_id,
        "expiresInSecs": left.as_secs(),
    })
}

/// `GET /console/api/session`: the session's CSRF token, or 401.
pub async fn session(State(console): State<Console>, signed: Signed) -> Json<Value> {
    Json(session_body(&console, &signed))
}

/// `POST /console/api/session` `{"masterKey"}`: signs in, setting the session cookie.
pub async fn sign_in(
    State(console): State<Console>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let body = json_object(&body)?;
    let key = body.get("masterKey").and_then(Value::as_str).unwrap_or("");
    if key.is_empty() || !ct_eq(key, &console.app.credentials.master_key) {
        // Slows down guessing without holding anything.
        tokio::time::sleep(Duration::from_millis(200)).await;
        tracing::warn!("console: sign-in refused (wrong master key)");
        return Err(AppError::new(
            StatusCode::UNAUTHORIZED,
            codes::UNAUTHORIZED,
            "Wrong master key.",
        ));
    }
    let (token, csrf) = console.sessions.create();
    let signed = Signed {
        token: token.clone(),
        csrf,
        expires: std::time::Instant::now() + SESSION_TTL,
    };
    let mut response = Json(session_body(&console, &signed)).into_response();
    if let Some(cookie) = session_cookie(&headers, &token, SESSION_TTL.as_secs()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// `DELETE /console/api/session`: signs out (the session is forgotten, the cookie cleared).
pub async fn sign_out(
    State(console): State<Console>,
    headers: HeaderMap,
    SignedWrite(signed): SignedWrite,
) -> Response {
    console.sessions.remove(&signed.token);
    let mut response = Json(json!({"signedIn": false})).into_response();
    if let Some(cookie) = session_cookie(&headers, "", 0) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

fn truthy_field(data: &Map<String, Value>, key: &str) -> bool {
    matches!(data.get(key), Some(Value::Bool(true)))
        || data.get(key).and_then(Value::as_i64) == Some(1)
}

fn kind_of(data: &Map<String, Value>) -> &'static str {
    if truthy_field(data, "sys") {
        "system"
    } else if truthy_field(data, "tr") {
        "transient"
    } else {
        "normal"
    }
}

/// A conversation row as the console shows it: the storage-API form plus `kind` and `attributes`.
fn render_conversation(
    id: String,
    data: Map<String, Value>,
    created_at: i64,
    updated_at: i64,
) -> Value {
    let mut out = Map::new();
    out.insert("objectId".into(), json!(id));
    let kind = kind_of(&data);
    let attributes: Map<String, Value> = data
        .iter()
        .filter(|(k, _)| !reserved(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in data {
        out.insert(k, v);
    }
    out.insert("createdAt".into(), json!(iso_millis(created_at)));
    out.insert("updatedAt".into(), json!(iso_millis(updated_at)));
    out.insert("kind".into(), json!(kind));
    out.insert("attributes".into(), Value::Object(attributes));
    Value::Object(out)
}

/// `GET /console/api/conversations?q=&kind=&skip=&limit=`: newest first; `q` matches part of the id, part of
/// the name (any case) or a member id exactly; `kind` is `normal`, `system` or `transient`.
pub async fn conversations(
    State(console): State<Console>,
    _signed: Signed,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let params = query_params(raw.as_deref());
    let (skip, limit) = page_params(&params);
    let q = params
        .get("q")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let kind = match params.get("kind").map(|s| s.trim()).unwrap_or("") {
        "" | "all" => KindFilter::All,
        "system" => KindFilter::System,
        "transient" => KindFilter::Transient,
        "normal" => KindFilter::Normal,
        other => {
            return Err(bad(format!(
                "Unknown kind {other:?}: use normal, system or transient."
            )))
        }
    };
    let (count, rows) =
        operator::search_conversations(&console.app.svc.db, q, kind, skip as i64, limit as i64)
            .await?;
    let results: Vec<Value> = rows
        .into_iter()
        .map(|r| render_conversation(r.id, r.data, r.created_at, r.updated_at))
        .collect();
    let body = json!({"results": results, "count": count, "skip": skip, "limit": limit});
    Ok(Json(body))
}

async fn load_conversation(console: &Console, id: &str) -> Result<Map<String, Value>, AppError> {
    objects::get(
        &console.app.svc.db,
        Caller::Master,
        CONVERSATION.to_string(),
        id.to_string(),
        true,
    )
    .await?
    .ok_or_else(|| AppError::not_found(CONVERSATION, id))
}

fn console_view(mut object: Map<String, Value>) -> Value {
    let kind = kind_of(&object);
    let attributes: Map<String, Value> = object
        .iter()
        .filter(|(k, _)| !reserved(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    object.insert("kind".into(), json!(kind));
    object.insert("attributes".into(), Value::Object(attributes));
    Value::Object(object)
}

/// `GET /console/api/conversations/{id}`: its fields, custom attributes and message count.
pub async fn conversation(
    State(console): State<Console>,
    _signed: Signed,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let object = load_conversation(&console, &id).await?;
    let count = operator::message_count(&console.app.svc.db, id.clone()).await?;
    let mut view = console_view(object);
    view["messageCount"] = json!(count);
    Ok(Json(view))
}

fn client_ids(value: Option<&Value>, what: &str) -> Result<Vec<String>, AppError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad(format!("{what} must be an array of client ids."))),
    };
    let mut ids: Vec<String> = Vec::new();
    for item in items {
        let Some(id) = item.as_str().map(str::trim).filter(|s| !s.is_empty()) else {
            return Err(bad(format!("{what} must be an array of client ids.")));
        };
        if id.chars().count() > MAX_CLIENT_ID_CHARS || id.chars().any(char::is_control) {
            return Err(bad(format!(
                "Client id {id:?} is not valid: at most {MAX_CLIENT_ID_CHARS} characters, no control characters."
            )));
        }
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}

/// `POST /console/api/conversations` `{"name", "members", "kind", "creator", "unique", "attributes"}`.
pub async fn create_conversation(
    State(console): State<Console>,
    _signed: SignedWrite,
    body: Bytes,
) -> Result<Response, AppError> {
    let body = json_object(&body)?;
    let mut data = Map::new();
    match body.get("name") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.trim().is_empty() => {}
        Some(Value::String(s)) => {
            data.insert("name".into(), json!(s.trim()));
        }
        Some(_) => return Err(bad("name must be a string.")),
    }
    let members = client_ids(body.get("members"), "members")?;
    data.insert("m".into(), json!(members));
    match body.get("creator").and_then(Value::as_str).map(str::trim) {
        Some(c) if !c.is_empty() => {
            data.insert("c".into(), json!(c));
        }
        _ => {}
    }
    match body.get("kind").and_then(Value::as_str).unwrap_or("normal") {
        "normal" => {}
        "system" => {
            data.insert("sys".into(), json!(true));
        }
        "transient" => {
            data.insert("tr".into(), json!(true));
        }
        other => {
            return Err(bad(format!(
                "Unknown kind {other:?}: use normal, system or transient."
            )))
        }
    }
    if body.get("unique") == Some(&Value::Bool(true)) {
        data.insert("unique".into(), json!(true));
    }
    match body.get("attributes") {
        None | Some(Value::Null) => {}
        Some(Value::Object(attrs)) => {
            for (k, v) in attrs {
                if reserved(k) || k.starts_with("__") || k.contains('.') {
                    return Err(bad(format!(
                        "Attribute {k:?} is reserved or not a valid field name."
                    )));
                }
                data.insert(k.clone(), v.clone());
            }
        }
        Some(_) => return Err(bad("attributes must be a JSON object.")),
    }
    let creator = data.get("c").and_then(Value::as_str).map(str::to_owned);
    let created = conversations::start(&console.app.svc, creator.as_deref(), data, true).await?;
    let status = if created.existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let object = load_conversation(&console, &created.id).await?;
    Ok((status, Json(console_view(object))).into_response())
}

async fn change_members(
    console: &Console,
    id: String,
    add: bool,
    members: Vec<String>,
) -> Result<Json<Value>, AppError> {
    if members.is_empty() {
        return Err(bad("Name at least one client id."));
    }
    // A clear 404 before the hooks are asked about a conversation that does not exist.
    load_conversation(console, &id).await?;
    let update = Update::master(members_body(add, &members));
    conversations::update(&console.app.svc, None, &id, update).await?;
    Ok(Json(console_view(load_conversation(console, &id).await?)))
}

/// `POST /console/api/conversations/{id}/members` `{"clientIds": […]}`: adds members.
pub async fn add_members(
    State(console): State<Console>,
    _signed: SignedWrite,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let body = json_object(&body)?;
    let members = client_ids(body.get("clientIds"), "clientIds")?;
    change_members(&console, id, true, members).await
}

/// `DELETE /console/api/conversations/{id}/members/{client}`: removes one member.
pub async fn remove_member(
    State(console): State<Console>,
    _signed: SignedWrite,
    Path((id, client)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    change_members(&console, id, false, vec![client]).await
}

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
    let before = match params
        .get("before")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
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

fn bucket_json(b: BucketUsage) -> Value {
    json!({
        "limit": b.limit, "used": b.used,
        "remaining": b.limit.map(|l| l.saturating_sub(b.used)),
        "resetsInSecs": b.resets_in_secs,
    })
}

fn usage_json(u: Usage) -> Value {
    json!({
        "messagesPerMinute": bucket_json(u.messages_per_minute),
        "broadcastsPerMinute": bucket_json(u.broadcasts_per_minute),
        "broadcastsPerDay": bucket_json(u.broadcasts_per_day),
    })
}

/// `GET /console/api/quota`: the rate-limit buckets' use (the broadcast page shows the daily quota left).
pub async fn quota(State(console): State<Console>, _signed: Signed) -> Json<Value> {
    Json(usage_json(console.app.svc.limits.usage().await))
}

/// Messages stored per minute over the last hour, oldest minute first (60 entries, the current minute last).
async fn per_minute(console: &Console) -> Result<Vec<Value>, AppError> {
    let now_minute = Utc::now().timestamp_millis().div_euclid(60_000);
    let first = now_minute - 59;
    let since = first * 60_000;
    let counts = operator::per_minute(&console.app.svc.db, since).await?;
    Ok((first..=now_minute)
        .map(|minute| {
            let count = counts
                .iter()
                .find(|(m, _)| *m == minute)
                .map_or(0, |(_, c)| *c);
            json!({"minute": iso_millis(minute * 60_000), "count": count})
        })
        .collect())
}

/// `GET /console/api/operations`: connected clients and their sessions, deliveries, messages per minute over
/// the last hour, the rate-limit buckets.
pub async fn operations(
    State(console): State<Console>,
    _signed: Signed,
) -> Result<Json<Value>, AppError> {
    let hub = &console.app.svc.presence.hub;
    let clients: Vec<Value> = hub
        .sessions()
        .into_iter()
        .map(|(client, sessions)| {
            let sessions: Vec<Value> = sessions
                .into_iter()
                .map(|(conn, tag)| json!({"connection": conn, "tag": tag}))
                .collect();
            json!({"clientId": client, "sessions": sessions})
        })
        .collect();
    let session_count: usize = clients
        .iter()
        .map(|c| c["sessions"].as_array().map_or(0, Vec::len))
        .sum();
    let per_minute = per_minute(&console).await?;
    let last_hour: i64 = per_minute
        .iter()
        .map(|m| m["count"].as_i64().unwrap_or(0))
        .sum();
    Ok(Json(json!({
        "onlineClients": clients.len(),
        "sessions": session_count,
        "clients": clients,
        "delivered": hub.delivered(),
        "liveViewers": console.app.svc.feed.receiver_count(),
        "messagesLastHour": last_hour,
        "messagesPerMinute": per_minute,
        "rateLimits": usage_json(console.app.svc.limits.usage().await),
    })))
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
