//! LeanCloud request authentication: `X-LC-Id` plus `X-LC-Sign` or `X-LC-Key`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::config::Credentials;
use crate::error::AppError;
use crate::key_guard::MasterKeyGuard;
use crate::state::AppState;

/// Which key authenticated the request: the storage layer's [`Caller`], extracted from the headers.
pub use crate::store::Caller as Access;

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Whether an `X-LC-Sign` timestamp (ms, as the SDKs send it; seconds accepted too) is within `max_age`
/// of now.
fn fresh(ts: &str, max_age: std::time::Duration) -> bool {
    let Ok(n) = ts.trim().parse::<i64>() else {
        return false;
    };
    let ms = if n < 100_000_000_000 {
        n.saturating_mul(1000)
    } else {
        n
    };
    let now = chrono::Utc::now().timestamp_millis();
    (now.saturating_sub(ms)).unsigned_abs() <= max_age.as_millis() as u64
}

/// Checks the headers against the credentials. With `max_age`, an `X-LC-Sign` timestamp further than that
/// from the server's clock is refused, so a captured signature stops working; LeanCloud documents no such
/// window, so it is off unless configured (`--sign-max-age-secs`).
pub fn authenticate(
    headers: &HeaderMap,
    creds: &Credentials,
    max_age: Option<std::time::Duration>,
) -> Result<Access, AppError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let app_id = header("x-lc-id").or_else(|| header("x-avoscloud-application-id"));
    match app_id {
        Some(id) if ct_eq(id, &creds.app_id) => {}
        _ => return Err(AppError::unauthorized()),
    }
    if let Some(sign) = header("x-lc-sign") {
        let mut parts = sign.split(',');
        let (Some(hexdigest), Some(ts)) = (parts.next(), parts.next()) else {
            return Err(AppError::unauthorized());
        };
        let (key, access) = match parts.next() {
            None => (&creds.app_key, Access::App),
            Some("master") => (&creds.master_key, Access::Master),
            Some(_) => return Err(AppError::unauthorized()),
        };
        if parts.next().is_some() || ts.is_empty() {
            return Err(AppError::unauthorized());
        }
        if max_age.is_some_and(|age| !fresh(ts, age)) {
            return Err(AppError::unauthorized());
        }
        let mut md5 = Md5::new();
        md5.update(ts.as_bytes());
        md5.update(key.as_bytes());
        let expected = hex::encode(md5.finalize());
        return if ct_eq(hexdigest, &expected) {
            Ok(access)
        } else {
            Err(AppError::unauthorized())
        };
    }
    if let Some(key) = header("x-lc-key") {
        let (key, access) = match key.strip_suffix(",master") {
            Some(master) => (master, Access::Master),
            None => (key, Access::App),
        };
        let expected = if access.is_master() {
            &creds.master_key
        } else {
            &creds.app_key
        };
        return if ct_eq(key, expected) {
            Ok(access)
        } else {
            Err(AppError::unauthorized())
        };
    }
    Err(AppError::unauthorized())
}

/// Whether a request presents the master key (`X-LC-Key: …,master` or `X-LC-Sign: …,…,master`).
fn claims_master(headers: &HeaderMap) -> bool {
    let ends = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().ends_with(",master"))
    };
    ends("x-lc-key") || ends("x-lc-sign")
}

/// The session token of a request: `X-LC-Session`, else `?session_token=` (how the Python and iOS SDKs send it).
pub fn session_token(headers: &HeaderMap, raw_query: Option<&str>) -> Option<String> {
    if let Some(token) = headers
        .get("x-lc-session")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Some(token.to_string());
    }
    crate::routes::query_params(raw_query)
        .remove("session_token")
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Access {
    type Rejection = AppError;

    /// The key, then — for the app key — the user of the session token, if the request carries one. A token
    /// that names no user leaves the request the app key's: public operations work whatever the token (as
    /// LeanCloud documents), and what the ACL gives that user is not given.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<crate::state::ConnInfo>()
            .map(|c| c.peer.ip());
        let master = claims_master(&parts.headers);
        if master {
            state
                .master_keys
                .admit(ip)
                .map_err(MasterKeyGuard::refusal)?;
        }
        let access = match authenticate(&parts.headers, &state.credentials, state.sign_max_age) {
            Ok(access) => access,
            Err(e) => {
                if master {
                    state.master_keys.record(ip);
                }
                return Err(e);
            }
        };
        if access.is_master() {
            return Ok(access);
        }
        let Some(token) = session_token(&parts.headers, parts.uri.query()) else {
            return Ok(access);
        };
        match crate::domain::users::session_user(&state.svc, &token).await? {
            Some(user) => Ok(Access::User(std::sync::Arc::new(user))),
            None => Ok(access),
        }
    }
}
