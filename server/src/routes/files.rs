//! The file API as the official SDKs call it (`leancloud-users-files-push.md` §2): `POST /1.1/fileTokens`, the
//! `PUT` of the bytes to the `upload_url` it answers, `POST /1.1/fileCallback`, `POST /1.1/files` (external
//! files), `GET`/`DELETE /1.1/files/{id}`, and the bytes themselves at `GET /{key}` (`Range`, `ETag`,
//! `Cache-Control`). Decoding and rendering only: the rules are `crate::domain::files`.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::auth::Access;
use crate::domain::files::{self, NewUpload, FILE_CLASS};
use crate::error::{codes, AppError};
use crate::routes::{json_object, query_params};
use crate::state::AppState;
use crate::store::blobs::valid_key;
use crate::store::objects;

/// The server's public address, for file URLs: `--public-url`, else the scheme and `Host` of the request.
fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.svc.files.config.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| matches!(*p, "http" | "https"))
        .unwrap_or("http");
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("127.0.0.1");
    format!("{proto}://{host}")
}

fn optional_string(body: &Map<String, Value>, key: &str) -> Result<Option<String>, AppError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(AppError::bad_request(
            codes::INVALID_TYPE,
            format!("{key} must be a string."),
        )),
    }
}

/// `POST /1.1/fileTokens`.
pub async fn file_token(
    State(state): State<AppState>,
    access: Access,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let body = json_object(&body)?;
    let meta_data = match body.get("metaData") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(AppError::bad_request(
                codes::INVALID_TYPE,
                "metaData must be an object.",
            ))
        }
    };
    let req = NewUpload {
        name: optional_string(&body, "name")?.unwrap_or_default(),
        mime_type: optional_string(&body, "mime_type")?,
        meta_data,
        acl: body.get("ACL").filter(|a| a.is_object()).cloned(),
        key: optional_string(&body, "key")?,
        keep_file_name: body.get("keep_file_name") == Some(&Value::Bool(true)),
    };
    let base = public_base(&state, &headers);
    Ok(Json(Value::Object(
        files::issue_upload(&state.svc, access, req, &base).await?,
    )))
}

/// `PUT /upload/{key}?token=…`: the bytes, raw. Answers exactly 200 with an empty body (the Python SDK
/// counts anything else as a failure).
pub async fn upload(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, AppError> {
    let params = query_params(raw.as_deref());
    let token = params.get("token").map(String::as_str).unwrap_or("");
    files::receive_upload(&state.svc, &key, token, body.into_data_stream()).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /1.1/fileCallback` `{"token", "result"}`: always `{}` (the SDKs ignore the answer; the Python SDK
/// sends it without a session, and sometimes after it deleted the file).
pub async fn file_callback(
    State(state): State<AppState>,
    _access: Access,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let body = json_object(&body)?;
    if let Some(token) = body.get("token").and_then(Value::as_str) {
        let result = body.get("result") != Some(&Value::Bool(false));
        files::callback(&state.svc, token, result).await?;
    }
    Ok(Json(json!({})))
}

/// `POST /1.1/files` `{"name", "url", "mime_type", "metaData", "ACL"}`: an external file.
pub async fn create_external(
    State(state): State<AppState>,
    access: Access,
    body: Bytes,
) -> Result<Response, AppError> {
    external(state, access, None, body).await
}

/// `POST /1.1/files/{name}`: the same, as the JS storage SDK 3.x posts it (the name in the path).
pub async fn create_external_named(
    State(state): State<AppState>,
    access: Access,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    external(state, access, Some(name), body).await
}

async fn external(
    state: AppState,
    access: Access,
    name: Option<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    let mut body = json_object(&body)?;
    if let Some(name) = name {
        body.entry("name").or_insert(Value::String(name));
    }
    let created = files::create_external(&state.svc, &access, body).await?;
    let mut response = (StatusCode::CREATED, Json(Value::Object(created.body))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/1.1/files/{}", created.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /1.1/files/{id}`: the `_File` object (`{}` when there is none, as a get of any class answers).
pub async fn get(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let found = objects::get(&state.svc.db, access, FILE_CLASS.to_string(), id, false).await;
    match found {
        Ok(found) => Ok(Json(found.map_or_else(|| json!({}), Value::Object))),
        Err(crate::store::StoreError::ClassNotFound(_)) => Ok(Json(json!({}))),
        Err(e) => Err(e.into()),
    }
}

/// `DELETE /1.1/files/{id}`: `200 {}` (the Python SDK requires exactly 200).
pub async fn delete(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    files::delete(&state.svc, access, &id).await?;
    Ok(Json(json!({})))
}

/// One `Range` of a body of `size` bytes: `(start, len)`; `Err(())` when it cannot be satisfied.
pub fn byte_range(header: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // several ranges: answered with the whole body
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.parse::<u64>().ok(), last.parse::<u64>().ok()) {
        (Some(a), Some(b)) if a <= b && a < size => Ok((a, b.min(size - 1) - a + 1)),
        (Some(a), None) if last.is_empty() && a < size => Ok((a, size - a)),
        (None, Some(n)) if first.is_empty() && n > 0 => {
            let n = n.min(size);
            Ok((size - n, n))
        }
        _ if first.is_empty() && last.is_empty() => return None,
        _ => Err(()),
    };
    Some(range)
}

/// `GET`/`HEAD /{key}`: a stored file's bytes with its content type, `ETag`, a year of caching, `Range`;
/// anything else at an unknown path is the API's 404.
pub async fn serve(State(state): State<AppState>, req: Request) -> Response {
    let key = req.uri().path().trim_start_matches('/').to_string();
    let head = req.method() == Method::HEAD;
    if !(req.method() == Method::GET || head) || !valid_key(&key) {
        return not_found();
    }
    let reader = match state.svc.files.blobs.open(&key).await {
        Ok(Some(reader)) => reader,
        Ok(None) => return not_found(),
        Err(e) => return AppError::internal(e).into_response(),
    };
    let meta = reader.meta.clone();
    let etag = format!("\"{}\"", meta.md5);
    let headers = req.headers();
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| byte_range(r, meta.size));
    let (status, start, len) = match range {
        None => (StatusCode::OK, 0, meta.size),
        Some(Ok((start, len))) => (StatusCode::PARTIAL_CONTENT, start, len),
        Some(Err(())) => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{}", meta.size))],
            )
                .into_response()
        }
    };
    let body = if head {
        Body::empty()
    } else {
        match reader.stream(start, len).await {
            Ok(stream) => Body::from_stream(stream),
            Err(e) => return AppError::internal(e).into_response(),
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
    h.insert(header::CONTENT_TYPE, value(&meta.content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ETAG, value(&etag));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            value(&format!("bytes {start}-{}/{}", start + len - 1, meta.size)),
        );
    }
    response
}

fn not_found() -> Response {
    AppError::new(StatusCode::NOT_FOUND, codes::OBJECT_NOT_FOUND, "Not found.").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_rfc_9110_reads_them() {
        assert_eq!(Some(Ok((0, 10))), byte_range("bytes=0-9", 100));
        assert_eq!(Some(Ok((90, 10))), byte_range("bytes=90-", 100));
        assert_eq!(Some(Ok((95, 5))), byte_range("bytes=-5", 100));
        assert_eq!(Some(Ok((0, 100))), byte_range("bytes=-500", 100));
        assert_eq!(Some(Ok((98, 2))), byte_range("bytes=98-200", 100));
        assert_eq!(Some(Err(())), byte_range("bytes=100-", 100));
        assert_eq!(Some(Err(())), byte_range("bytes=5-1", 100));
        assert_eq!(None, byte_range("bytes=0-1,5-6", 100));
        assert_eq!(None, byte_range("items=0-1", 100));
    }
}
