//! `POST /1.1/batch` (and `/1.1/batch/save`, the iOS SDK's): several storage requests in one, as the SDKs'
//! `saveAll`/`destroyAll` send them — `{"requests":[{"method","path","body"}]}` — answered with one entry per
//! request, in order: `{"success": <its answer>}` or `{"error": {"code","error"}}`. Each request runs through the
//! API router itself with the batch's own credentials and session, so it is checked and answered exactly as if
//! it had come alone; one failing does not stop the others (LeanCloud's batch is not a transaction either).

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request};
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};
use tower::ServiceExt;

use crate::auth::Access;
use crate::error::{codes, AppError};
use crate::routes::json_object;
use crate::state::ConnInfo;

/// Most requests one batch may carry.
pub const MAX_REQUESTS: usize = 100;

/// The headers a request of the batch inherits from the batch.
const INHERITED: [&str; 7] = [
    "x-lc-id",
    "x-lc-key",
    "x-lc-sign",
    "x-lc-session",
    "x-avoscloud-application-id",
    "x-lc-prod",
    "user-agent",
];

fn refused(message: impl Into<String>) -> AppError {
    AppError::bad_request(codes::INTERNAL, message.into())
}

/// One request of the batch: its method, its path under `/1.1/` and its body.
fn parse_request(item: &Value) -> Result<(Method, String, Option<Value>), String> {
    let method = item
        .get("method")
        .and_then(Value::as_str)
        .and_then(|m| m.to_ascii_uppercase().parse::<Method>().ok())
        .filter(|m| {
            matches!(
                *m,
                Method::GET | Method::POST | Method::PUT | Method::DELETE
            )
        })
        .ok_or("Each request needs a method: GET, POST, PUT or DELETE.")?;
    let mut path = item
        .get("path")
        .and_then(Value::as_str)
        .ok_or("Each request needs a path.")?
        .to_string();
    // The SDKs write `/1.1/classes/…`; a path without the version is taken as 1.1.
    if !path.starts_with("/1.1/") {
        path = format!("/1.1/{}", path.trim_start_matches('/'));
    }
    if path.starts_with("/1.1/batch") || path.contains("..") || path.contains("//") {
        return Err(format!("Unsupported path in a batch: {path}."));
    }
    if let Some(Value::Object(params)) = item.get("params") {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                format!("{}={}", urlencode(k), urlencode(&v))
            })
            .collect();
        if !query.is_empty() {
            path = format!(
                "{path}{}{}",
                if path.contains('?') { '&' } else { '?' },
                query.join("&")
            );
        }
    }
    Ok((method, path, item.get("body").cloned()))
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Runs the batch in `body` through `api`.
pub async fn run(
    api: Router,
    _access: Access,
    headers: HeaderMap,
    conn: Option<Extension<ConnInfo>>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let body = json_object(&body)?;
    let Some(Value::Array(requests)) = body.get("requests") else {
        return Err(refused("A batch needs requests: an array."));
    };
    if requests.len() > MAX_REQUESTS {
        return Err(refused(format!(
            "A batch may carry at most {MAX_REQUESTS} requests; this one has {}.",
            requests.len()
        )));
    }
    let mut answers = Vec::with_capacity(requests.len());
    for item in requests {
        let (method, path, body) = match parse_request(item) {
            Ok(parsed) => parsed,
            Err(message) => {
                answers.push(json!({"error": {"code": codes::INTERNAL, "error": message}}));
                continue;
            }
        };
        let mut request = Request::builder().method(method).uri(&path);
        for name in INHERITED {
            if let Some(value) = headers.get(name) {
                request = request.header(name, value);
            }
        }
        request = request.header("content-type", "application/json");
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let mut request = request
            .body(body)
            .map_err(|e| refused(format!("Invalid request {path}: {e}")))?;
        if let Some(Extension(conn)) = &conn {
            request.extensions_mut().insert(conn.clone());
        }
        let response = api
            .clone()
            .oneshot(request)
            .await
            .map_err(AppError::internal)?;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .map_err(AppError::internal)?;
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        answers.push(if status.is_success() {
            json!({ "success": answer })
        } else {
            let mut error = Map::new();
            error.insert(
                "code".into(),
                answer
                    .get("code")
                    .cloned()
                    .unwrap_or(json!(status.as_u16())),
            );
            error.insert(
                "error".into(),
                answer
                    .get("error")
                    .cloned()
                    .unwrap_or_else(|| json!(status.canonical_reason().unwrap_or("error"))),
            );
            json!({ "error": Value::Object(error) })
        });
    }
    Ok(Json(Value::Array(answers)))
}
