//! The console's class permissions: the classes whose permissions were set (and the closed built-in ones), set
//! and reset (through `crate::domain::class_permissions`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::{Console, Signed, SignedWrite};
use crate::domain::class_permissions;
use crate::error::AppError;
use crate::routes::json_object;

/// `GET /console/api/permissions`: `{"results": [{"className", "permissions", "default"}]}`.
pub async fn list(
    State(console): State<Console>,
    _signed: Signed,
) -> Result<Json<Value>, AppError> {
    let set = class_permissions::list(&console.app.svc).await?;
    let results: Vec<Value> = set.iter().map(|(c, p)| p.summary(c)).collect();
    Ok(Json(json!({ "results": results })))
}

/// `PUT /console/api/permissions/{class}` with LeanCloud's permissions object.
pub async fn put(
    State(console): State<Console>,
    _signed: SignedWrite,
    Path(class): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let body = Value::Object(json_object(&body)?);
    let p = class_permissions::set(&console.app.svc, &class, &body).await?;
    Ok(Json(p.summary(&class)))
}

/// `DELETE /console/api/permissions/{class}`: back to the defaults.
pub async fn reset(
    State(console): State<Console>,
    _signed: SignedWrite,
    Path(class): Path<String>,
) -> Result<Json<Value>, AppError> {
    let p = class_permissions::reset(&console.app.svc, &class).await?;
    Ok(Json(p.summary(&class)))
}
