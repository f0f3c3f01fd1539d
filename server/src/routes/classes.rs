//! The storage API: `/1.1/classes/{className}[/{objectId}]`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::auth::Access;
use crate::error::{codes, AppError};
use crate::hooks::Refusal;
use crate::routes::scan::{strip_private, strip_private_value};
use crate::routes::{json_object, parse_json_param, query_params, truthy};
use crate::state::AppState;
use crate::store::objects::{
    self, check_class_access, validate_class_name, QueryParams, CONVERSATION,
};
use crate::store::query::parse_order;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

fn guard(class: &str, access: Access) -> Result<(), AppError> {
    validate_class_name(class)?;
    Ok(check_class_access(class, access)?)
}

pub async fn create(
    State(state): State<AppState>,
    access: Access,
    Path(class): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, AppError> {
    guard(&class, access)?;
    let params = query_params(raw.as_deref());
    let body = json_object(&body)?;
    if class == CONVERSATION {
        conversation_start_hook(&state, &body).await?;
    }
    let mut created = objects::create(
        &state.db,
        class.clone(),
        body,
        truthy(params.get("fetchWhenSave")),
    )
    .await?;
    strip_private(&class, &mut created.body);
    let status = if created.existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    if class == CONVERSATION && !created.existed {
        state
            .hooks
            .conversation_changed("_conversationStarted", None, &created.id, &[]);
    }
    let mut response = (status, Json(Value::Object(created.body))).into_response();
    if !created.existed {
        if let Ok(location) = HeaderValue::from_str(&format!("/1.1/classes/{class}/{}", created.id))
        {
            response.headers_mut().insert(header::LOCATION, location);
        }
    }
    Ok(response)
}

pub async fn find(
    State(state): State<AppState>,
    access: Access,
    Path(class): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    guard(&class, access)?;
    let q = find_params(&query_params(raw.as_deref()), state.max_scan)?;
    let mut found = objects::find(&state.db, access, class.clone(), q).await?;
    strip_private_value(&class, &mut found);
    Ok(Json(found))
}

/// A find's query string (`where`, `keys`, `order`, `limit`, `skip`, `count`, `returnACL`) as [`QueryParams`].
/// Pure (the fuzz target `server_body` calls it).
pub fn find_params(
    params: &HashMap<String, String>,
    max_scan: usize,
) -> Result<QueryParams, AppError> {
    let limit = match params.get("limit").map(|s| s.trim().parse::<i64>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (0..=MAX_LIMIT as i64).contains(&n) => n as usize,
        Some(_) => DEFAULT_LIMIT,
    };
    let skip = params
        .get("skip")
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(0);
    Ok(QueryParams {
        where_: parse_json_param(params.get("where"))?,
        keys: params.get("keys").map(|k| {
            k.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        }),
        limit,
        skip,
        order: params
            .get("order")
            .map(|o| parse_order(o))
            .unwrap_or_default(),
        count: truthy(params.get("count")),
        with_acl: truthy(params.get("returnACL")),
        max_scan,
    })
}

pub async fn get(
    State(state): State<AppState>,
    access: Access,
    Path((class, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    guard(&class, access)?;
    let params = query_params(raw.as_deref());
    let found = objects::get(
        &state.db,
        access,
        class.clone(),
        id,
        truthy(params.get("returnACL")),
    )
    .await?;
    let mut found = found.map_or_else(|| json!({}), Value::Object);
    strip_private_value(&class, &mut found);
    Ok(Json(found))
}

pub async fn update(
    State(state): State<AppState>,
    access: Access,
    Path((class, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    guard(&class, access)?;
    let params = query_params(raw.as_deref());
    let mut body = json_object(&body)?;
    let where_ = parse_json_param(params.get("where"))?;
    let fetch = truthy(params.get("fetchWhenSave"));
    let member_change = if class == CONVERSATION {
        conversation_update_hooks(&state, &id, &mut body).await?
    } else {
        None
    };
    let mut out = objects::update(
        &state.db,
        access,
        class.clone(),
        id.clone(),
        body,
        where_,
        fetch,
    )
    .await?;
    strip_private(&class, &mut out);
    if let Some((add, members)) = member_change {
        let hook = if add {
            "_conversationAdded"
        } else {
            "_conversationRemoved"
        };
        state.hooks.conversation_changed(hook, None, &id, &members);
    }
    Ok(Json(Value::Object(out)))
}

pub async fn delete(
    State(state): State<AppState>,
    access: Access,
    Path((class, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    guard(&class, access)?;
    let params = query_params(raw.as_deref());
    let where_ = parse_json_param(params.get("where"))?;
    objects::delete(&state.db, access, class, id, where_).await?;
    Ok(Json(json!({})))
}

/// A conversation change refused by the app's hook, as LeanCloud answers it over REST.
fn rejected(refusal: Refusal) -> AppError {
    AppError::bad_request(
        codes::CONVERSATION_REJECTED_BY_APP,
        refusal
            .detail
            .unwrap_or_else(|| "CONVERSATION_REJECTED_BY_APP".into()),
    )
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `_conversationStart` for a conversation created through the storage API.
async fn conversation_start_hook(
    state: &AppState,
    body: &Map<String, Value>,
) -> Result<(), AppError> {
    let members = string_list(body.get("m"));
    let attr: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "m" | "c" | "ACL"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let init_by = body.get("c").and_then(Value::as_str);
    state
        .hooks
        .conversation_start(init_by, &members, &attr)
        .await
        .map_err(rejected)
}

/// The hooks of an update of a conversation through the storage API: `m` changed with
/// `Add`/`AddUnique` is `_conversationAdd`, with `Remove` `_conversationRemove`, and any other field
/// `_conversationUpdate` (whose answer may rewrite them). Returns the member change, for the after-hook.
async fn conversation_update_hooks(
    state: &AppState,
    id: &str,
    body: &mut Map<String, Value>,
) -> Result<Option<(bool, Vec<String>)>, AppError> {
    let mut change = None;
    if let Some(op) = body.get("m").and_then(Value::as_object) {
        let add = match op.get("__op").and_then(Value::as_str) {
            Some("Add" | "AddUnique") => Some(true),
            Some("Remove") => Some(false),
            _ => None,
        };
        if let Some(add) = add {
            let members = string_list(op.get("objects"));
            state
                .hooks
                .conversation_members(add, None, id, &members)
                .await
                .map_err(rejected)?;
            change = Some((add, members));
        }
    }
    let attr: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| k.as_str() != "m")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !attr.is_empty() {
        if let Some(rewritten) = state
            .hooks
            .conversation_update(None, id, &attr)
            .await
            .map_err(rejected)?
        {
            body.retain(|k, _| k == "m");
            body.extend(rewritten);
        }
    }
    Ok(change)
}
