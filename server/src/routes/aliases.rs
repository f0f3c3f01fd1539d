//! Built-in classes at their own paths (`leancloud-users-files-push.md` §1.1), answered by the storage API's
//! handlers: `/1.1/roles[/{id}]` is `/1.1/classes/_Role[/{id}]`, and `GET /1.1/users[/{id}]` is the query and get of
//! `_User` (its sign-up, update and delete are `crate::routes::users`).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::Json;
use serde_json::Value;

use crate::auth::Access;
use crate::error::AppError;
use crate::routes::classes;
use crate::state::AppState;
use crate::store::objects::ROLE;
use crate::store::users::USER_CLASS;

pub async fn create_role(
    state: State<AppState>,
    access: Access,
    raw: RawQuery,
    body: Bytes,
) -> Result<Response, AppError> {
    classes::create(state, access, Path(ROLE.into()), raw, body).await
}

pub async fn find_roles(
    state: State<AppState>,
    access: Access,
    raw: RawQuery,
) -> Result<Json<Value>, AppError> {
    classes::find(state, access, Path(ROLE.into()), raw).await
}

pub async fn get_role(
    state: State<AppState>,
    access: Access,
    Path(id): Path<String>,
    raw: RawQuery,
) -> Result<Json<Value>, AppError> {
    classes::get(state, access, Path((ROLE.into(), id)), raw).await
}

pub async fn update_role(
    state: State<AppState>,
    access: Access,
    Path(id): Path<String>,
    raw: RawQuery,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    classes::update(state, access, Path((ROLE.into(), id)), raw, body).await
}

pub async fn delete_role(
    state: State<AppState>,
    access: Access,
    Path(id): Path<String>,
    raw: RawQuery,
) -> Result<Json<Value>, AppError> {
    classes::delete(state, access, Path((ROLE.into(), id)), raw).await
}

/// `GET /1.1/users/{id}`.
pub async fn get_user(
    state: State<AppState>,
    access: Access,
    Path(id): Path<String>,
    raw: RawQuery,
) -> Result<Json<Value>, AppError> {
    classes::get(state, access, Path((USER_CLASS.into(), id)), raw).await
}

/// `GET /1.1/users`.
pub async fn find_users(
    state: State<AppState>,
    access: Access,
    raw: RawQuery,
) -> Result<Json<Value>, AppError> {
    classes::find(state, access, Path(USER_CLASS.into()), raw).await
}
