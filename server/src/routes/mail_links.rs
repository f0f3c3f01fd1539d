//! The pages the mailed links open (`crate::domain::verification`): `/auth/reset-password` (a form for the new
//! password) and `/auth/verify-email`, plain HTML and JavaScript embedded in the binary. The token travels in
//! the link's fragment, which the browser never sends; the page's script posts it in a JSON body to the same
//! path, so it reaches no URL the server or a proxy logs. The pages allow no inline script, no framing and no
//! referrer, and are never cached.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::domain::verification;
use crate::error::AppError;
use crate::protocol::codes;
use crate::routes::json_object;
use crate::state::AppState;

const RESET_HTML: &str = include_str!("mail_links/reset-password.html");
const VERIFY_HTML: &str = include_str!("mail_links/verify-email.html");
const PAGE_JS: &str = include_str!("mail_links/page.js");
const PAGE_CSS: &str = include_str!("mail_links/page.css");

/// Sent with every page and asset.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The pages, their assets and the two endpoints they post to.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/auth/reset-password",
            get(|| async { page("text/html; charset=utf-8", RESET_HTML) }).post(reset_password),
        )
        .route(
            "/auth/verify-email",
            get(|| async { page("text/html; charset=utf-8", VERIFY_HTML) }).post(verify_email),
        )
        .route(
            "/auth/page.js",
            get(|| async { page("text/javascript; charset=utf-8", PAGE_JS) }),
        )
        .route(
            "/auth/page.css",
            get(|| async { page("text/css; charset=utf-8", PAGE_CSS) }),
        )
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn string<'a>(body: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    body.get(field).and_then(Value::as_str)
}

fn token(body: &Map<String, Value>) -> Result<&str, AppError> {
    string(body, "token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            AppError::bad_request(
                codes::INVALID_MAIL_LINK,
                "The token of the link is missing.",
            )
        })
}

/// `POST /auth/reset-password {"token", "password"}`.
async fn reset_password(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let body = json_object(&body)?;
    let token = token(&body)?;
    let password = string(&body, "password").ok_or_else(|| {
        AppError::bad_request(codes::PASSWORD_MISSING, "Password is missing or empty.")
    })?;
    verification::reset_password(&state.svc, token, password.to_string()).await?;
    Ok(Json(json!({})))
}

/// `POST /auth/verify-email {"token"}`.
async fn verify_email(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, AppError> {
    let body = json_object(&body)?;
    verification::verify_email(&state.svc, token(&body)?).await?;
    Ok(Json(json!({})))
}
