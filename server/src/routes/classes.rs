//! The storage API: `/1.1/classes/{className}[/{objectId}]`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Access;
use crate::domain::class_permissions;
use crate::domain::conversations::{self, Update};
use crate::error::{codes, AppError};
use crate::routes::scan::{strip_private, strip_private_value};
use crate::routes::{json_object, parse_json_param, query_params, truthy};
use crate::state::AppState;
use crate::store::class_permissions::Op;
use crate::store::objects::include::{MAX_INCLUDE_DEPTH, MAX_INCLUDE_PATHS};
use crate::store::objects::{self, validate_class_name, IncludeTree, QueryParams, CONVERSATION};
use crate::store::query::parse_order;
use crate::store::users::USER_CLASS;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// A valid class name, and the class permission of `op` (reads and deletes).
async fn guard(state: &AppState, class: &str, op: Op, access: &Access) -> Result<(), AppError> {
    validate_class_name(class)?;
    Ok(class_permissions::check(&state.svc, class, op, access).await?)
}

/// A valid class name, and the class permissions of a create or update of `body` (`add_fields` included).
async fn guard_write(
    state: &AppState,
    class: &str,
    op: Op,
    access: &Access,
    body: &serde_json::Map<String, Value>,
) -> Result<(), AppError> {
    validate_class_name(class)?;
    Ok(class_permissions::check_write(&state.svc, class, op, access, body).await?)
}

pub async fn create(
    State(state): State<AppState>,
    access: Access,
    Path(class): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, AppError> {
    validate_class_name(&class)?;
    let params = query_params(raw.as_deref());
    let body = json_object(&body)?;
    guard_write(&state, &class, Op::Create, &access, &body).await?;
    let fetch = truthy(params.get("fetchWhenSave"));
    if class == USER_CLASS {
        // The Python SDK signs up this way: the same as `POST /1.1/users`.
        return crate::routes::users::sign_up_response(
            &state,
            body,
            truthy(params.get("failOnNotExist")),
        )
        .await;
    }
    let mut created = if class == CONVERSATION {
        // Started by the app's backend, on behalf of its creator `c` if it names one.
        let by = body.get("c").and_then(Value::as_str).map(str::to_owned);
        conversations::start(&state.svc, by.as_deref(), body, fetch).await?
    } else {
        objects::create(&state.svc.db, class.clone(), body, fetch).await?
    };
    strip_private(&class, &mut created.body);
    let status = if created.existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
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
    let params = query_params(raw.as_deref());
    Ok(Json(find_in(&state, access, &class, &params).await?))
}

/// A query of `class` as `access` (class permission, ACL) with the request's parameters, files and `include`s
/// whole and `_User`'s private fields left out.
pub async fn find_in(
    state: &AppState,
    access: Access,
    class: &str,
    params: &HashMap<String, String>,
) -> Result<Value, AppError> {
    guard(state, class, Op::Find, &access).await?;
    let q = find_params(params, state.max_scan)?;
    let include = include_param(params)?;
    let mut found = objects::find(&state.svc.db, access.clone(), class.to_string(), q).await?;
    if let Some(Value::Array(results)) = found.get_mut("results") {
        let mut maps: Vec<&mut serde_json::Map<String, Value>> = results
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .collect();
        objects::expand_files(&state.svc.db, &mut maps).await?;
        objects::expand_includes(&state.svc.db, &access, &mut maps, &include, state.max_scan)
            .await?;
    }
    strip_private_value(class, &mut found);
    Ok(found)
}

/// The `keys` parameter (`keys=name,score`): the fields to answer, on queries and gets alike.
fn keys_param(params: &HashMap<String, String>) -> Option<Vec<String>> {
    params.get("keys").map(|k| {
        k.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// The `include` parameter: the pointer paths to answer whole (400/102 beyond its limits).
pub fn include_param(params: &HashMap<String, String>) -> Result<IncludeTree, AppError> {
    IncludeTree::parse(params.get("include").map(String::as_str)).ok_or_else(|| {
        AppError::bad_request(
            codes::INVALID_QUERY,
            format!(
                "include takes at most {MAX_INCLUDE_PATHS} paths of at most {MAX_INCLUDE_DEPTH} fields each."
            ),
        )
    })
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
        keys: keys_param(params),
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
    guard(&state, &class, Op::Get, &access).await?;
    let params = query_params(raw.as_deref());
    let include = include_param(&params)?;
    let found = objects::get(
        &state.svc.db,
        access.clone(),
        class.clone(),
        id,
        truthy(params.get("returnACL")),
    )
    .await?;
    let mut found = found.map_or_else(|| json!({}), Value::Object);
    if let Value::Object(map) = &mut found {
        if let Some(keys) = keys_param(&params) {
            objects::project(map, &keys);
        }
        if !map.is_empty() {
            objects::expand_files(&state.svc.db, &mut [&mut *map]).await?;
            objects::expand_includes(&state.svc.db, &access, &mut [map], &include, state.max_scan)
                .await?;
        }
    }
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
    validate_class_name(&class)?;
    if class == USER_CLASS {
        return crate::routes::users::update_user(&state, access, &id, raw.as_deref(), &body).await;
    }
    let params = query_params(raw.as_deref());
    let body = json_object(&body)?;
    guard_write(&state, &class, Op::Update, &access, &body).await?;
    let where_ = parse_json_param(params.get("where"))?;
    let fetch = truthy(params.get("fetchWhenSave"));
    let mut out = if class == CONVERSATION {
        let update = Update {
            caller: access,
            body,
            where_,
            fetch,
        };
        conversations::update(&state.svc, None, &id, update).await?
    } else {
        objects::update(
            &state.svc.db,
            access,
            class.clone(),
            id,
            body,
            where_,
            fetch,
        )
        .await?
    };
    strip_private(&class, &mut out);
    Ok(Json(Value::Object(out)))
}

pub async fn delete(
    State(state): State<AppState>,
    access: Access,
    Path((class, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    guard(&state, &class, Op::Delete, &access).await?;
    if class == USER_CLASS {
        crate::domain::users::delete(&state.svc, &access, &id).await?;
        return Ok(Json(json!({})));
    }
    let params = query_params(raw.as_deref());
    let where_ = parse_json_param(params.get("where"))?;
    objects::delete(&state.svc.db, access, class, id, where_).await?;
    Ok(Json(json!({})))
}
