//! `/__admin/class-permissions[/{class}]` (master key): the class permissions in force, set and reset.
//! `GET` lists the classes whose permissions were set (and the built-in classes whose defaults are closed);
//! `PUT /{class}` takes LeanCloud's permissions object (`{"get": {"*": true}, "find": {"onlySignInUsers": true},
//! "create": {"users": [...], "roles": [...]}, …}`; an operation left out gets the default); `DELETE /{class}`
//! gives the class its defaults back. Each answers `{"className", "permissions", "default"}`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Access;
use crate::domain::class_permissions;
use crate::error::AppError;
use crate::routes::json_object;
use crate::state::AppState;
use crate::store::objects::validate_class_name;

pub async fn list(State(state): State<AppState>, access: Access) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let set = class_permissions::list(&state.svc).await?;
    let results: Vec<Value> = set.iter().map(|(c, p)| p.summary(c)).collect();
    Ok(Json(json!({ "results": results })))
}

pub async fn get(
    State(state): State<AppState>,
    access: Access,
    Path(class): Path<String>,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    validate_class_name(&class)?;
    let p = class_permissions::of(&state.svc, &class).await?;
    Ok(Json(p.summary(&class)))
}

pub async fn put(
    State(state): State<AppState>,
    access: Access,
    Path(class): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let body = Value::Object(json_object(&body)?);
    let p = class_permissions::set(&state.svc, &class, &body).await?;
    Ok(Json(p.summary(&class)))
}

pub async fn delete(
    State(state): State<AppState>,
    access: Access,
    Path(class): Path<String>,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let p = class_permissions::reset(&state.svc, &class).await?;
    Ok(Json(p.summary(&class)))
}
