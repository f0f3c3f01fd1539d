//! The one error type of the HTTP layer, rendered as LeanCloud's `{"code": …, "error": …}` body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// LeanCloud error codes used by this server (`leancloud-rest.md` §6).
pub mod codes {
    pub const INTERNAL: i64 = 1;
    pub const OBJECT_NOT_FOUND: i64 = 101;
    pub const INVALID_QUERY: i64 = 102;
    pub const INVALID_CLASS_NAME: i64 = 103;
    pub const INVALID_KEY_NAME: i64 = 105;
    pub const INVALID_JSON: i64 = 107;
    pub const INVALID_TYPE: i64 = 111;
    pub const MASTER_KEY_REQUIRED: i64 = 119;
    pub const NO_EFFECT: i64 = 305;
    pub const UNAUTHORIZED: i64 = 401;
    pub const FORBIDDEN: i64 = 403;
    pub const ENTITY_TOO_LARGE: i64 = 413;
    pub const TOO_MANY_REQUESTS: i64 = 429;
    pub const CONVERSATION_NOT_FOUND: i64 = 4303;
    pub const SYSTEM_CONVERSATION_REQUIRED: i64 = 4313;
    pub const INVALID_MESSAGING_TARGET: i64 = 4401;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    pub status: StatusCode,
    pub code: i64,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl AppError {
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        AppError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: i64, message: impl Into<String>) -> Self {
        AppError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized() -> Self {
        AppError::new(
            StatusCode::UNAUTHORIZED,
            codes::UNAUTHORIZED,
            "Unauthorized.",
        )
    }

    pub fn master_key_required() -> Self {
        AppError::new(
            StatusCode::FORBIDDEN,
            codes::MASTER_KEY_REQUIRED,
            "The operation requires the master key.",
        )
    }

    pub fn invalid_json() -> Self {
        AppError::bad_request(
            codes::INVALID_JSON,
            "Malformed json object. A json dictionary is expected.",
        )
    }

    pub fn not_found(class: &str, id: &str) -> Self {
        AppError::new(
            StatusCode::NOT_FOUND,
            codes::OBJECT_NOT_FOUND,
            format!("Could not find object by id '{id}' for class '{class}'."),
        )
    }

    pub fn class_not_found(class: &str) -> Self {
        AppError::new(
            StatusCode::NOT_FOUND,
            codes::OBJECT_NOT_FOUND,
            format!("Class or object doesn't exists: {class}."),
        )
    }

    /// Opaque to the client; the detail goes to the log.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "Internal server error.",
        )
    }

    pub fn rate_limited(code: i64, message: impl Into<String>, retry_after_secs: u64) -> Self {
        AppError {
            retry_after: Some(retry_after_secs.max(1)),
            ..AppError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} [{}] {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for AppError {}

impl From<rusqlite::Error> for AppError {
    fn from(err: rusqlite::Error) -> Self {
        AppError::internal(err)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            axum::Json(json!({"code": self.code, "error": self.message})),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
