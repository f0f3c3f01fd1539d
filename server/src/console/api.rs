//! The console's JSON API (`/console/api/…`). Errors are LeanCloud's `{"code", "error"}` bodies, as the rest of
//! the server answers them, and the page shows them as given. Sends and broadcasts go through
//! [`messaging::send`] (hooks, store, delivery, the live feed) and count against the rate limits like the REST
//! API's; conversation changes call the conversation hooks like the storage API.
//!
//! This file: the session (sign-in, sign-out) and the helpers the other parts share; `conversations`,
//! `messages`, `operations` and `pushes` hold the rest.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::{ct_eq, Console, Signed, SignedWrite, COOKIE, SESSION_TTL};
use crate::error::AppError;
use crate::key_guard::MasterKeyGuard;
use crate::protocol::codes;
use crate::protocol::conversation::SERVER_FIELDS;
use crate::routes::json_object;
use crate::state::ConnInfo;

const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;
pub(super) const MAX_CLIENT_ID_CHARS: usize = 64;
/// Whether `key` is a field of `_Conversation` that is not a custom attribute (the console sets `name` from
/// its own field).
pub(super) fn reserved(key: &str) -> bool {
    key == "name" || SERVER_FIELDS.contains(&key)
}

pub(super) fn bad(message: impl Into<String>) -> AppError {
    AppError::bad_request(codes::INTERNAL, message)
}

/// Query parameter `name`, trimmed, when given and not empty.
pub(super) fn given<'a>(
    params: &'a std::collections::HashMap<String, String>,
    name: &str,
) -> Option<&'a str> {
    params.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

pub(super) fn page_params(params: &std::collections::HashMap<String, String>) -> (usize, usize) {
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
    conn: Option<Extension<ConnInfo>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let ip = conn.map(|Extension(c)| c.peer.ip());
    let guard = &console.app.master_keys;
    guard.admit(ip).map_err(MasterKeyGuard::refusal)?;
    let body = json_object(&body)?;
    let key = body.get("masterKey").and_then(Value::as_str).unwrap_or("");
    if key.is_empty() || !ct_eq(key, &console.app.credentials.master_key) {
        guard.record(ip);
        // Slows down guessing (the guard limits how many guesses an address gets).
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

pub(super) fn client_ids(value: Option<&Value>, what: &str) -> Result<Vec<String>, AppError> {
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
