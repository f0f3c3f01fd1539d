//! The console's conversations: list, search, create, members (through `crate::domain::conversations`).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::api::{bad, client_ids, given, page_params, reserved};
use super::{Console, Signed, SignedWrite};
use crate::domain::conversations::{self, members_body, Update};
use crate::error::AppError;
use crate::routes::{json_object, query_params};
use crate::store::db::iso_millis;
use crate::store::objects::{self, CONVERSATION};
use crate::store::operator::{self, KindFilter};
use crate::store::Caller;

fn truthy_field(data: &Map<String, Value>, key: &str) -> bool {
    matches!(data.get(key), Some(Value::Bool(true)))
        || data.get(key).and_then(Value::as_i64) == Some(1)
}

fn kind_of(data: &Map<String, Value>) -> &'static str {
    if truthy_field(data, "sys") {
        "system"
    } else if truthy_field(data, "tr") {
        "transient"
    } else {
        "normal"
    }
}

/// A conversation row as the console shows it: the storage-API form plus `kind` and `attributes`.
fn render_conversation(
    id: String,
    data: Map<String, Value>,
    created_at: i64,
    updated_at: i64,
) -> Value {
    let mut out = Map::new();
    out.insert("objectId".into(), json!(id));
    let kind = kind_of(&data);
    let attributes: Map<String, Value> = data
        .iter()
        .filter(|(k, _)| !reserved(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in data {
        out.insert(k, v);
    }
    out.insert("createdAt".into(), json!(iso_millis(created_at)));
    out.insert("updatedAt".into(), json!(iso_millis(updated_at)));
    out.insert("kind".into(), json!(kind));
    out.insert("attributes".into(), Value::Object(attributes));
    Value::Object(out)
}

/// `GET /console/api/conversations?q=&kind=&skip=&limit=`: newest first; `q` matches part of the id, part of
/// the name (any case) or a member id exactly; `kind` is `normal`, `system` or `transient`.
pub async fn conversations(
    State(console): State<Console>,
    _signed: Signed,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let params = query_params(raw.as_deref());
    let (skip, limit) = page_params(&params);
    let q = given(&params, "q").unwrap_or_default().to_string();
    let kind = match given(&params, "kind").unwrap_or("all") {
        "all" => KindFilter::All,
        "system" => KindFilter::System,
        "transient" => KindFilter::Transient,
        "normal" => KindFilter::Normal,
        other => {
            return Err(bad(format!(
                "Unknown kind {other:?}: use normal, system or transient."
            )))
        }
    };
    let (count, rows) =
        operator::search_conversations(&console.app.svc.db, q, kind, skip as i64, limit as i64)
            .await?;
    let results: Vec<Value> = rows
        .into_iter()
        .map(|r| render_conversation(r.id, r.data, r.created_at, r.updated_at))
        .collect();
    let body = json!({"results": results, "count": count, "skip": skip, "limit": limit});
    Ok(Json(body))
}

async fn load_conversation(console: &Console, id: &str) -> Result<Map<String, Value>, AppError> {
    objects::get(
        &console.app.svc.db,
        Caller::Master,
        CONVERSATION.to_string(),
        id.to_string(),
        true,
    )
    .await?
    .ok_or_else(|| AppError::not_found(CONVERSATION, id))
}

fn console_view(mut object: Map<String, Value>) -> Value {
    let kind = kind_of(&object);
    let attributes: Map<String, Value> = object
        .iter()
        .filter(|(k, _)| !reserved(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    object.insert("kind".into(), json!(kind));
    object.insert("attributes".into(), Value::Object(attributes));
    Value::Object(object)
}

/// `POST /console/api/conversations` `{"name", "members", "kind", "creator", "unique", "attributes"}`.
pub async fn create_conversation(
    State(console): State<Console>,
    _signed: SignedWrite,
    body: Bytes,
) -> Result<Response, AppError> {
    let body = json_object(&body)?;
    let mut data = Map::new();
    match body.get("name") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.trim().is_empty() => {}
        Some(Value::String(s)) => {
            data.insert("name".into(), json!(s.trim()));
        }
        Some(_) => return Err(bad("name must be a string.")),
    }
    let members = client_ids(body.get("members"), "members")?;
    data.insert("m".into(), json!(members));
    match body.get("creator").and_then(Value::as_str).map(str::trim) {
        Some(c) if !c.is_empty() => {
            data.insert("c".into(), json!(c));
        }
        _ => {}
    }
    match body.get("kind").and_then(Value::as_str).unwrap_or("normal") {
        "normal" => {}
        "system" => {
            data.insert("sys".into(), json!(true));
        }
        "transient" => {
            data.insert("tr".into(), json!(true));
        }
        other => {
            return Err(bad(format!(
                "Unknown kind {other:?}: use normal, system or transient."
            )))
        }
    }
    if body.get("unique") == Some(&Value::Bool(true)) {
        data.insert("unique".into(), json!(true));
    }
    match body.get("attributes") {
        None | Some(Value::Null) => {}
        Some(Value::Object(attrs)) => {
            for (k, v) in attrs {
                if reserved(k) || k.starts_with("__") || k.contains('.') {
                    return Err(bad(format!(
                        "Attribute {k:?} is reserved or not a valid field name."
                    )));
                }
                data.insert(k.clone(), v.clone());
            }
        }
        Some(_) => return Err(bad("attributes must be a JSON object.")),
    }
    let creator = data.get("c").and_then(Value::as_str).map(str::to_owned);
    let created = conversations::start(&console.app.svc, creator.as_deref(), data, true).await?;
    let status = if created.existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let object = load_conversation(&console, &created.id).await?;
    Ok((status, Json(console_view(object))).into_response())
}

async fn change_members(
    console: &Console,
    id: String,
    add: bool,
    members: Vec<String>,
) -> Result<Json<Value>, AppError> {
    if members.is_empty() {
        return Err(bad("Name at least one client id."));
    }
    // A clear 404 before the hooks are asked about a conversation that does not exist.
    load_conversation(console, &id).await?;
    let update = Update::master(members_body(add, &members));
    conversations::update(&console.app.svc, None, &id, update).await?;
    Ok(Json(console_view(load_conversation(console, &id).await?)))
}

/// `POST /console/api/conversations/{id}/members` `{"clientIds": […]}`: adds members.
pub async fn add_members(
    State(console): State<Console>,
    _signed: SignedWrite,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let body = json_object(&body)?;
    let members = client_ids(body.get("clientIds"), "clientIds")?;
    change_members(&console, id, true, members).await
}

/// `DELETE /console/api/conversations/{id}/members/{client}`: removes one member.
pub async fn remove_member(
    State(console): State<Console>,
    _signed: SignedWrite,
    Path((id, client)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    change_members(&console, id, false, vec![client]).await
}

/// `GET /console/api/conversations/{id}`: its fields, custom attributes and message count.
pub async fn conversation(
    State(console): State<Console>,
    _signed: Signed,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let object = load_conversation(&console, &id).await?;
    let count = operator::message_count(&console.app.svc.db, id.clone()).await?;
    let mut view = console_view(object);
    view["messageCount"] = json!(count);
    Ok(Json(view))
}
