//! The web console at `/console/`: pages embedded in the binary (`assets/`, plain JavaScript, no CDN) over a
//! small JSON API at `/console/api/…` ([`api`]).
//!
//! Sign-in exchanges the master key for a random session token kept here in memory and handed to the browser
//! as an `HttpOnly; SameSite=Strict; Path=/console` cookie; the key itself never travels again, never in a URL
//! and never in a log (the request log records paths only). Every API call needs the session; writes also
//! need the session's CSRF token in `X-CSRF-Token` (the page reads it from `GET /console/api/session`). Every
//! console response carries a Content-Security-Policy that allows no inline script, and the page renders all
//! stored data as text (`textContent`), so a message holding `<script>` is shown, never run.

mod api;
mod conversations;
mod messages;
mod operations;
mod permissions;
mod pushes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "lc_console";
/// The header a write must carry, equal to the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts after sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at once; signing in beyond it forgets the oldest.
const MAX_SESSIONS: usize = 1024;

/// Sent with every console response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const FAVICON: &[u8] = include_bytes!("assets/favicon.svg");

#[derive(Debug)]
struct Session {
    csrf: String,
    expires: Instant,
}

/// Signed-in sessions, by token. Lost on restart (signing in again is cheap).
#[derive(Debug, Default)]
pub struct Sessions {
    by_token: Mutex<HashMap<String, Session>>,
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Sessions {
    /// A new session: `(token, csrf token)`.
    fn create(&self) -> (String, String) {
        let (token, csrf) = (random_token(), random_token());
        if let Ok(mut map) = self.by_token.lock() {
            let now = Instant::now();
            map.retain(|_, s| s.expires > now);
            if map.len() >= MAX_SESSIONS {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, s)| s.expires)
                    .map(|(t, _)| t.clone());
                if let Some(oldest) = oldest {
                    map.remove(&oldest);
                }
            }
            map.insert(
                token.clone(),
                Session {
                    csrf: csrf.clone(),
                    expires: now + SESSION_TTL,
                },
            );
        }
        (token, csrf)
    }

    /// The CSRF token and expiry of a live session.
    fn get(&self, token: &str) -> Option<(String, Instant)> {
        let mut map = self.by_token.lock().ok()?;
        match map.get(token) {
            Some(s) if s.expires > Instant::now() => Some((s.csrf.clone(), s.expires)),
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }

    fn remove(&self, token: &str) {
        if let Ok(mut map) = self.by_token.lock() {
            map.remove(token);
        }
    }
}

/// The console's router state: the server's state and the sessions.
#[derive(Debug, Clone)]
pub struct Console {
    pub app: AppState,
    pub sessions: Arc<Sessions>,
}

/// The pages and the JSON API, to be mounted at `/console`.
pub fn router(app: AppState) -> Router {
    let console = Console {
        app,
        sessions: Arc::new(Sessions::default()),
    };
    let api = Router::new()
        .route(
            "/session",
            get(api::session).post(api::sign_in).delete(api::sign_out),
        )
        .route(
            "/conversations",
            get(conversations::conversations).post(conversations::create_conversation),
        )
        .route("/conversations/{id}", get(conversations::conversation))
        .route(
            "/conversations/{id}/members",
            post(conversations::add_members),
        )
        .route(
            "/conversations/{id}/members/{client}",
            delete(conversations::remove_member),
        )
        .route("/conversations/{id}/messages", get(messages::messages))
        .route("/messages", post(messages::send))
        .route("/broadcasts", post(messages::broadcast))
        .route("/quota", get(operations::quota))
        .route("/operations", get(operations::operations))
        .route("/pushes", get(pushes::pushes))
        .route("/permissions", get(permissions::list))
        .route(
            "/permissions/{class}",
            axum::routing::put(permissions::put).delete(permissions::reset),
        )
        .route("/live", get(messages::live))
        .fallback(api_not_found);
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/app.css", get(app_css))
        .route("/favicon.svg", get(favicon))
        .nest("/api", api)
        .fallback(index)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(console)
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Every page path answers the one HTML document; the script routes by the URL's fragment.
async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML.as_bytes())
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS.as_bytes())
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS.as_bytes())
}

async fn favicon() -> Response {
    asset("image/svg+xml", FAVICON)
}

async fn api_not_found() -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        crate::protocol::codes::OBJECT_NOT_FOUND,
        "Not found.",
    )
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The session token from the request's cookies.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn not_signed_in() -> AppError {
    AppError::new(
        StatusCode::UNAUTHORIZED,
        crate::protocol::codes::UNAUTHORIZED,
        "Not signed in: sign in to the console with the master key.",
    )
}

fn csrf_refused() -> AppError {
    AppError::new(
        StatusCode::FORBIDDEN,
        crate::protocol::codes::FORBIDDEN,
        "Missing or wrong X-CSRF-Token header.",
    )
}

/// A signed-in request (any API call).
#[derive(Debug, Clone)]
pub struct Signed {
    pub token: String,
    pub csrf: String,
    pub expires: Instant,
}

impl FromRequestParts<Console> for Signed {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, AppError> {
        let token = cookie_token(&parts.headers).ok_or_else(not_signed_in)?;
        let (csrf, expires) = console.sessions.get(&token).ok_or_else(not_signed_in)?;
        Ok(Signed {
            token,
            csrf,
            expires,
        })
    }
}

/// A signed-in write: the session plus its CSRF token in `X-CSRF-Token`.
#[derive(Debug, Clone)]
pub struct SignedWrite(pub Signed);

impl FromRequestParts<Console> for SignedWrite {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, AppError> {
        let signed = Signed::from_request_parts(parts, console).await?;
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if sent.is_empty() || !ct_eq(sent, &signed.csrf) {
            return Err(csrf_refused());
        }
        Ok(SignedWrite(signed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; lc_console=abc; b=2"),
        );
        assert_eq!(Some("abc".to_string()), cookie_token(&headers));
        headers.insert(header::COOKIE, HeaderValue::from_static("lc_console="));
        assert_eq!(None, cookie_token(&headers));
    }

    #[test]
    fn a_removed_session_is_gone() {
        let sessions = Sessions::default();
        let (token, csrf) = sessions.create();
        assert_eq!(Some(csrf), sessions.get(&token).map(|(c, _)| c));
        sessions.remove(&token);
        assert_eq!(None, sessions.get(&token));
    }
}
