//! Clients through the 1.2 API:
//!
//! - `POST /1.2/rtm/clients/check-online` (and its older name `online-check`) `{"client_ids":[≤ 20]}` →
//!   `{"results":[…]}`: the ones with a session on any instance (an unknown client is offline);
//! - `POST /1.2/rtm/clients/{client}/kick` `{"reason"?}` (at most 20 characters) → `{}`: the client's sessions,
//!   on every instance, close with 4115 `KICKED_BY_APP` and the reason as the detail;
//! - `GET /1.2/rtm/stats` → `{"result":{"online_user_count"}}`: the clients online now. LeanCloud's
//!   `user_count_today` is not kept by this server and is left out.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::ids_param;
use crate::auth::Access;
use crate::error::AppError;
use crate::routes::json_object;
use crate::routes::rtm::param_error;
use crate::state::AppState;

/// The most clients one `check-online` asks about.
pub const MAX_CHECK: usize = 20;
/// The longest kick reason (characters).
pub const MAX_REASON_CHARS: usize = 20;

/// `POST /1.2/rtm/clients/check-online` `{"client_ids"}`.
pub async fn check_online(
    State(state): State<AppState>,
    access: Access,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let ids = ids_param(&json_object(&body)?, "client_ids", MAX_CHECK)?;
    let presence = &state.svc.presence;
    let online: Vec<String> = ids.into_iter().filter(|c| presence.is_online(c)).collect();
    Ok(Json(json!({ "results": online })))
}

/// `POST /1.2/rtm/clients/{client}/kick` `{"reason"?}`.
pub async fn kick(
    State(state): State<AppState>,
    access: Access,
    Path(client): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let body = json_object(&body)?;
    let reason = match body.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) if r.chars().count() <= MAX_REASON_CHARS => Some(r.clone()),
        Some(Value::String(_)) => {
            return Err(param_error(format!(
                "Parameter reason is at most {MAX_REASON_CHARS} characters."
            )))
        }
        Some(_) => return Err(param_error("Parameter reason must be a string.")),
    };
    state.svc.presence.kick(&client, reason.as_deref());
    Ok(Json(json!({})))
}

/// `GET /1.2/rtm/stats`.
pub async fn stats(State(state): State<AppState>, access: Access) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    Ok(Json(
        json!({"result": {"online_user_count": state.svc.presence.online_count()}}),
    ))
}
