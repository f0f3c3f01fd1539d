//! Devices: `/1.1/installations[/{id}]` (`leancloud-users-files-push.md` §3.1). `POST` saves a device — a new
//! one answers `201` with `Location`, one found by `objectId`, `deviceToken` or `installationId` is updated and
//! answers `200` (`crate::domain::installations`); `GET`, `PUT` and `DELETE` of one device and the query (master
//! key) are the storage API's on `_Installation`, which `/1.1/classes/_Installation` also serves.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use crate::auth::Access;
use crate::domain::installations;
use crate::error::AppError;
use crate::routes::{classes, json_object, query_params};
use crate::state::AppState;
use crate::store::objects::INSTALLATION;

fn path(id: String) -> Path<(String, String)> {
    Path((INSTALLATION.to_string(), id))
}

/// `POST /1.1/installations`.
pub async fn save(
    State(state): State<AppState>,
    _access: Access,
    body: Bytes,
) -> Result<Response, AppError> {
    let body = json_object(&body)?;
    let saved = installations::upsert(&state.svc, body).await?;
    if saved.existed {
        return Ok((StatusCode::OK, Json(Value::Object(saved.body))).into_response());
    }
    let mut response = (StatusCode::CREATED, Json(Value::Object(saved.body))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/1.1/installations/{}", saved.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /1.1/installations` (master key).
pub async fn find(
    State(state): State<AppState>,
    access: Access,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let params = query_params(raw.as_deref());
    Ok(Json(
        classes::find_in(&state, access, INSTALLATION, &params).await?,
    ))
}

/// `GET /1.1/installations/{id}`.
pub async fn get(
    state: State<AppState>,
    access: Access,
    Path(id): Path<String>,
    raw: RawQuery,
) -> Result<Json<Value>, AppError> {
    classes::get(state, access, path(id), raw).await
}

/// `PUT /1.1/installations/{id}`.
pub async fn update(
    state: State<AppState>,
    access: Access,
    Path(id): Path<String>,
    raw: RawQuery,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    classes::update(state, access, path(id), raw, body).await
}

/// `DELETE /1.1/installations/{id}` (master key).
pub async fn delete(
    state: State<AppState>,
    access: Access,
    Path(id): Path<String>,
    raw: RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    classes::delete(state, access, path(id), raw).await
}
