//! Users and sessions over REST (`leancloud-users-files-push.md` §1.1): `POST /1.1/users` (and `POST
//! /1.1/classes/_User`, the Python SDK's sign-up), `POST /1.1/login`, `GET /1.1/users/me`, token refresh, password
//! change, `/1.1/users/{id}` as `/1.1/classes/_User/{id}`, and `POST /1.1/rtm/sign`. Decoding and rendering
//! only: the rules are `crate::domain::users`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

use crate::auth::{session_token, Access};
use crate::domain::{class_permissions, users};
use crate::error::{codes, AppError};
use crate::routes::{json_object, parse_json_param, query_params, truthy};
use crate::state::{AppState, ConnInfo};
use crate::store::class_permissions::Op;
use crate::store::users::USER_CLASS;

/// A sign-up's answer: 201 with `Location` for a new user, 200 for a known `authData` account.
pub async fn sign_up_response(
    state: &AppState,
    body: Map<String, Value>,
    fail_on_not_exist: bool,
) -> Result<Response, AppError> {
    let signed = users::sign_up(&state.svc, body, fail_on_not_exist).await?;
    let status = if signed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (status, Json(Value::Object(signed.user))).into_response();
    if signed.created {
        if let Ok(location) = HeaderValue::from_str(&format!("/1.1/users/{}", signed.id)) {
            response.headers_mut().insert(header::LOCATION, location);
        }
    }
    Ok(response)
}

/// `POST /1.1/users`. A session token sent along (the SDKs send the previous user's) is ignored.
pub async fn sign_up(
    State(state): State<AppState>,
    access: Access,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, AppError> {
    let params = query_params(raw.as_deref());
    let body = json_object(&body)?;
    class_permissions::check_write(&state.svc, USER_CLASS, Op::Create, &access, &body).await?;
    sign_up_response(&state, body, truthy(params.get("failOnNotExist"))).await
}

/// `POST /1.1/login`.
pub async fn login(
    State(state): State<AppState>,
    _access: Access,
    conn: Option<Extension<ConnInfo>>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let body = json_object(&body)?;
    let ip = conn.map(|Extension(c)| c.peer.ip().to_string());
    Ok(Json(Value::Object(
        users::login(&state.svc, &body, ip).await?,
    )))
}

/// `GET /1.1/users/me`: the token in `X-LC-Session` or `?session_token=`.
pub async fn me(
    State(state): State<AppState>,
    _access: Access,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let token = session_token(&headers, raw.as_deref()).unwrap_or_default();
    Ok(Json(Value::Object(users::me(&state.svc, &token).await?)))
}

/// `PUT /1.1/users/{id}/refreshSessionToken`.
pub async fn refresh_session_token(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(Value::Object(
        users::refresh_token(&state.svc, &access, &id).await?,
    )))
}

/// `PUT /1.1/users/{id}/updatePassword` `{"old_password","new_password"}`.
pub async fn update_password(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let body = json_object(&body)?;
    let field = |name: &str| match body.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(AppError::bad_request(
            codes::INTERNAL,
            format!("{name} must be a string."),
        )),
    };
    let (old, new) = (field("old_password")?, field("new_password")?);
    Ok(Json(Value::Object(
        users::update_password(&state.svc, &access, &id, old, new).await?,
    )))
}

/// `PUT /1.1/users/{id}` (also reached as `/1.1/classes/_User/{id}`).
pub async fn update(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    update_user(&state, access, &id, raw.as_deref(), &body).await
}

pub async fn update_user(
    state: &AppState,
    access: Access,
    id: &str,
    raw: Option<&str>,
    body: &Bytes,
) -> Result<Json<Value>, AppError> {
    let params = query_params(raw);
    let body = json_object(body)?;
    class_permissions::check_write(&state.svc, USER_CLASS, Op::Update, &access, &body).await?;
    let where_ = parse_json_param(params.get("where"))?;
    let fetch = truthy(params.get("fetchWhenSave")) || truthy(params.get("new"));
    Ok(Json(Value::Object(
        users::update(&state.svc, access, id, body, where_, fetch).await?,
    )))
}

/// `DELETE /1.1/users/{id}` (also reached as `/1.1/classes/_User/{id}`).
pub async fn delete(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    class_permissions::check(&state.svc, USER_CLASS, Op::Delete, &access).await?;
    users::delete(&state.svc, &access, &id).await?;
    Ok(Json(json!({})))
}

/// `POST /1.1/rtm/sign` `{"session_token"}`: the IM login signature of that user.
pub async fn rtm_sign(
    State(state): State<AppState>,
    _access: Access,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let body = json_object(&body)?;
    let token = body
        .get("session_token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let creds = &state.credentials;
    Ok(Json(
        users::rtm_sign(&state.svc, &creds.app_id, &creds.master_key, token).await?,
    ))
}
