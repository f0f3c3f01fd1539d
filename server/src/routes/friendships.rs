//! The follow graph over REST: `POST|DELETE /1.1/users/{id}/friendship/{target}`, `GET
//! /1.1/users/{id}/followers`, `/followees` and `/followersAndFollowees` (queries of `_Follower`/`_Followee`
//! with the storage API's parameters). The rules are `crate::domain::friendships`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::auth::Access;
use crate::domain::friendships;
use crate::error::AppError;
use crate::routes::classes::find_in;
use crate::routes::{json_object, parse_json_param, query_params, truthy};
use crate::state::AppState;
use crate::store::objects::{FOLLOWEE, FOLLOWER};

/// `POST /1.1/users/{id}/friendship/{target}`, the body (optional) the attributes of the follow.
pub async fn follow(
    State(state): State<AppState>,
    access: Access,
    Path((user, target)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let attributes = if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
        Map::new()
    } else {
        json_object(&body)?
    };
    friendships::follow(&state.svc, &access, &user, &target, attributes).await?;
    Ok(Json(json!({})))
}

/// `DELETE /1.1/users/{id}/friendship/{target}`.
pub async fn unfollow(
    State(state): State<AppState>,
    access: Access,
    Path((user, target)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    friendships::unfollow(&state.svc, &access, &user, &target).await?;
    Ok(Json(json!({})))
}

/// The query of `class` for `user`'s edges with the request's parameters.
async fn edges(
    state: &AppState,
    access: Access,
    class: &str,
    user: &str,
    mut params: HashMap<String, String>,
) -> Result<Value, AppError> {
    let request_where = parse_json_param(params.get("where"))?;
    let where_ = friendships::edges_of(user, request_where);
    params.insert("where".into(), where_.to_string());
    find_in(state, access, class, &params).await
}

/// `GET /1.1/users/{id}/followers`: `{"results":[_Follower rows]}`.
pub async fn followers(
    State(state): State<AppState>,
    access: Access,
    Path(user): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let params = query_params(raw.as_deref());
    Ok(Json(edges(&state, access, FOLLOWER, &user, params).await?))
}

/// `GET /1.1/users/{id}/followees`: `{"results":[_Followee rows]}`.
pub async fn followees(
    State(state): State<AppState>,
    access: Access,
    Path(user): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let params = query_params(raw.as_deref());
    Ok(Json(edges(&state, access, FOLLOWEE, &user, params).await?))
}

/// `GET /1.1/users/{id}/followersAndFollowees`: `{"followers":[…],"followees":[…]}`, and with `count=1`
/// `followers_count` and `followees_count`.
pub async fn followers_and_followees(
    State(state): State<AppState>,
    access: Access,
    Path(user): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let params = query_params(raw.as_deref());
    let count = truthy(params.get("count"));
    let mut out = Map::new();
    for (class, name) in [(FOLLOWER, "followers"), (FOLLOWEE, "followees")] {
        let mut found = edges(&state, access.clone(), class, &user, params.clone()).await?;
        out.insert(
            name.into(),
            found
                .get_mut("results")
                .map(Value::take)
                .unwrap_or(json!([])),
        );
        if count {
            out.insert(
                format!("{name}_count"),
                found.get("count").cloned().unwrap_or(json!(0)),
            );
        }
    }
    Ok(Json(Value::Object(out)))
}
