//! HTTP routes, grouped per resource.

pub mod admin;
pub mod aliases;
pub mod batch;
pub mod class_permissions;
pub mod classes;
pub mod cloud_query;
pub mod conv_admin;
pub mod files;
pub mod friendships;
pub mod installations;
pub mod mail_links;
pub mod push;
pub mod rtm;
pub mod rtm2;
pub mod scan;
pub mod users;
pub mod verification;

use std::collections::HashMap;

use axum::body::Bytes;
use serde_json::{Map, Value};

use crate::error::AppError;

/// Query-string parameters, decoded leniently: `+` is a space, and characters the SDK leaves unencoded
/// (`:` `,` `$` in `where`) are taken as they are.
pub fn query_params(raw: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// `true`, `True` (Python's spelling), `1`.
pub fn truthy(v: Option<&String>) -> bool {
    matches!(
        v.map(|s| s.trim().to_ascii_lowercase()).as_deref(),
        Some("true" | "1" | "yes")
    )
}

/// The request body as a JSON object; an empty body is `{}`.
pub fn json_object(body: &Bytes) -> Result<Map<String, Value>, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AppError::invalid_json()),
    }
}

pub fn parse_json_param(v: Option<&String>) -> Result<Option<Value>, AppError> {
    match v {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => serde_json::from_str(s)
            .map(Some)
            .map_err(|_| AppError::invalid_json()),
    }
}
