//! The REST side of conversation administration: `GET /1.1/classes/_ConversationMemberInfo` (what the SDK's
//! `getAllMemberInfo` asks, with `where: {cid}`) and `GET /1.1/rtm/notifications` (the permanent
//! notifications a client missed while offline, asked on reconnect). Both answer the master key, or a client
//! (`client_id`) with its realtime session token in `X-LC-IM-Session-Token`.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Access;
use crate::domain::conv_admin::{self, AdminError, NOTIFICATIONS_PAGE_DEFAULT};
use crate::error::{codes, AppError};
use crate::routes::query_params;
use crate::state::AppState;

pub const IM_SESSION_TOKEN: &str = "x-lc-im-session-token";

/// The client the request speaks for: `None` with the master key; else `client_id`, whose realtime session
/// token must be in `X-LC-IM-Session-Token`.
fn client_of(
    state: &AppState,
    access: &Access,
    headers: &HeaderMap,
    client_id: Option<&String>,
) -> Result<Option<String>, AppError> {
    if matches!(access, Access::Master) {
        return Ok(client_id.cloned());
    }
    let client = client_id.filter(|c| !c.is_empty()).ok_or_else(|| {
        AppError::bad_request(codes::INTERNAL, "Missing required parameter client_id.")
    })?;
    let token = headers
        .get(IM_SESSION_TOKEN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !state.svc.presence.token_valid(token, client) {
        return Err(AppError::new(
            StatusCode::UNAUTHORIZED,
            codes::SESSION_TOKEN_EXPIRED,
            "Invalid or expired realtime session token.",
        ));
    }
    Ok(Some(client.clone()))
}

/// `GET /1.1/classes/_ConversationMemberInfo?where={"cid":…}`: the members of `cid` with a role other than
/// `Member` (the owner, the managers) as `{objectId, cid, clientId, role}` rows. A client sees the
/// conversations it is a member of.
pub async fn member_infos(
    State(state): State<AppState>,
    access: Access,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let params = query_params(raw.as_deref());
    let client = client_of(&state, &access, &headers, params.get("client_id"))?;
    let where_: Value = match params.get("where") {
        Some(w) => serde_json::from_str(w).map_err(|_| {
            AppError::bad_request(codes::INVALID_QUERY, "where must be a JSON object.")
        })?,
        None => json!({}),
    };
    let Some(cid) = where_.get("cid").and_then(Value::as_str) else {
        return Err(AppError::bad_request(
            codes::INVALID_QUERY,
            "where must name the conversation (cid).",
        ));
    };
    let only = where_.get("clientId").and_then(Value::as_str);
    let svc = &state.svc;
    let conv = match conv_admin::load(svc, cid).await {
        Ok(conv) => conv,
        Err(AdminError::NotFound) => return Ok(Json(json!({"results": []}))),
        Err(e) => return Err(admin_error(e)),
    };
    if let Some(client) = &client {
        if !conv.is_member(client) && !conv.is_owner(client) {
            return Ok(Json(json!({"results": []})));
        }
    }
    let roles = conv_admin::roles(svc, cid).await.map_err(admin_error)?;
    let results: Vec<Value> = roles
        .into_iter()
        .filter(|(c, _)| only.is_none_or(|o| o == c))
        .map(|(client, role)| {
            json!({
                "objectId": format!("{cid}:{client}"),
                "cid": cid,
                "clientId": client,
                "role": role,
            })
        })
        .collect();
    Ok(Json(json!({ "results": results })))
}

fn admin_error(e: AdminError) -> AppError {
    match e {
        AdminError::Conv(crate::domain::conversations::ConvError::Store(e)) => e.into(),
        other => AppError::bad_request(codes::INTERNAL, other.to_string()),
    }
}

/// `GET /1.1/rtm/notifications?client_id&start_ts&notification_type=permanent[&limit]`:
/// `{"notifications": [{cmd, op, serverTs, notificationType, …}], "hasMore"}`, oldest first.
pub async fn notifications(
    State(state): State<AppState>,
    access: Access,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let params = query_params(raw.as_deref());
    let client =
        client_of(&state, &access, &headers, params.get("client_id"))?.ok_or_else(|| {
            AppError::bad_request(codes::INTERNAL, "Missing required parameter client_id.")
        })?;
    let since = match params.get("start_ts") {
        None => 0,
        Some(t) => t.trim().parse::<f64>().map(|t| t as i64).map_err(|_| {
            AppError::bad_request(codes::INTERNAL, "start_ts must be a timestamp in ms.")
        })?,
    };
    let limit = match params.get("limit") {
        None => NOTIFICATIONS_PAGE_DEFAULT,
        Some(l) => l
            .trim()
            .parse::<i64>()
            .map_err(|_| AppError::bad_request(codes::INTERNAL, "limit must be a number."))?,
    };
    let (notifications, more) = conv_admin::notifications(&state.svc, &client, since, limit)
        .await
        .map_err(AppError::from)?;
    Ok(Json(
        json!({ "notifications": notifications, "hasMore": more }),
    ))
}
