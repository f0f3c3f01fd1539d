//! The push API: `POST /1.1/push` (master key) — `data`, `where` / `channels` over `_Installation`, `prod`,
//! `push_time`, `expiration_time` / `expiration_interval` — answered `{"objectId","createdAt"}` of its
//! `_Notification` record (`GET /1.1/tables/Notifications/{id}`, Python's `Notification.fetch`); and
//! `GET /__admin/pushes?ref_id&limit` (master key): the newest queued jobs and their outcome, for operators and
//! tests. The rules are `crate::domain::push`'s.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Access;
use crate::domain::push::{self, PushError, NOTIFICATION};
use crate::error::{codes, AppError};
use crate::routes::{classes, json_object, query_params};
use crate::state::AppState;
use crate::store::push_queue;
use crate::store::time::iso_millis;

/// The largest push request LeanCloud takes (bytes).
pub const MAX_BODY: usize = 4096;
const RECENT_DEFAULT: i64 = 100;
const RECENT_MAX: i64 = 1000;

impl From<PushError> for AppError {
    fn from(e: PushError) -> AppError {
        match e {
            PushError::Invalid(m) => AppError::bad_request(codes::INTERNAL, m),
            PushError::Store(s) => s.into(),
        }
    }
}

/// `POST /1.1/push`.
pub async fn send(
    State(state): State<AppState>,
    access: Access,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    if body.len() >= MAX_BODY {
        return Err(AppError::bad_request(
            codes::INTERNAL,
            format!("A push request is at most {} bytes.", MAX_BODY - 1),
        ));
    }
    let now = chrono::Utc::now().timestamp_millis();
    let prod = headers.get("x-lc-prod").and_then(|v| v.to_str().ok());
    let req = push::request(json_object(&body)?, prod, now)?;
    Ok(Json(Value::Object(push::send(&state.svc, req, now).await?)))
}

/// `GET /1.1/tables/Notifications/{id}`: a `_Notification` record.
pub async fn notification(
    state: State<AppState>,
    access: Access,
    Path(id): Path<String>,
    raw: RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    classes::get(state, access, Path((NOTIFICATION.to_string(), id)), raw).await
}

/// `GET /__admin/pushes?ref_id&limit`: the newest jobs, newest first.
pub async fn recent(
    State(state): State<AppState>,
    access: Access,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let params = query_params(raw.as_deref());
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(RECENT_DEFAULT)
        .min(RECENT_MAX);
    let ref_id = params.get("ref_id").filter(|r| !r.is_empty()).cloned();
    let jobs = push_queue::recent(&state.svc.db, ref_id, limit).await?;
    Ok(Json(Value::Array(
        jobs.into_iter()
            .map(|j| {
                json!({
                    "id": j.id, "source": j.source, "ref_id": j.ref_id, "installation": j.installation_id,
                    "platform": j.platform, "target": j.target, "payload": j.payload, "profile": j.profile,
                    "state": j.state.as_str(), "attempts": j.attempts, "error": j.last_error,
                    "due_at": iso_millis(j.due_at), "created_at": iso_millis(j.created_at),
                    "done_at": j.done_at.map(iso_millis),
                })
            })
            .collect(),
    )))
}
