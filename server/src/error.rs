//! The one error type of the HTTP layer, rendered as LeanCloud's `{"code": …, "error": …}` body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::conversations::ConvError;
use crate::domain::files::FileError;
use crate::domain::limits::Limited;
use crate::domain::messaging::{Invalid, SendError};
/// LeanCloud error codes used by this server (`leancloud-rest.md` §6).
pub use crate::protocol::codes;
use crate::store::blobs::BlobError;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    pub status: StatusCode,
    pub code: i64,
    pub message: String,
    pub retry_after: Option<u64>,
    /// What went wrong inside, for the log only (never in the response body): the [`log_app_errors`]
    /// middleware logs it once.
    pub cause: Option<String>,
}

/// The cause of an internal error, carried from the handler to [`log_app_errors`] in the response's
/// extensions.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

impl AppError {
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        AppError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            cause: None,
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

    /// Opaque to the client; the detail goes to the log, once, through [`log_app_errors`].
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        AppError {
            cause: Some(detail.to_string()),
            ..AppError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::INTERNAL,
                "Internal server error.",
            )
        }
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

/// A refused rate-limit unit: 429 with `Retry-After`.
impl From<Limited> for AppError {
    fn from(err: Limited) -> Self {
        match err {
            Limited::TooMany { retry_after_secs } => {
                AppError::rate_limited(codes::TOO_MANY_REQUESTS, err.to_string(), retry_after_secs)
            }
            Limited::DailyQuota { retry_after_secs } => {
                AppError::rate_limited(codes::INTERNAL, err.to_string(), retry_after_secs)
            }
            Limited::Store(e) => e.into(),
        }
    }
}

/// A refused send, with the parameter names of the REST API (`to_peers`, `valid_till`); the console renders
/// [`Invalid`] with its own.
impl From<SendError> for AppError {
    fn from(err: SendError) -> Self {
        match err {
            SendError::Store(e) => e.into(),
            SendError::Limited(l) => l.into(),
            SendError::Invalid(i) => invalid_send(&i, "to_peers", "valid_till"),
            SendError::Busy => AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::SERVICE_UNAVAILABLE,
                SendError::Busy.to_string(),
            ),
            SendError::Rejected(r) => AppError::bad_request(
                codes::MESSAGE_REJECTED_BY_APP,
                r.detail.unwrap_or_else(|| "MESSAGE_REJECTED_BY_APP".into()),
            ),
        }
    }
}

impl AppError {
    /// A send's broken rule as the REST API words it.
    pub fn from_invalid_send(err: Invalid) -> AppError {
        invalid_send(&err, "to_peers", "valid_till")
    }
}

/// A send that broke a rule, in the words of the REST API, naming the recipients and validity parameters as
/// the caller calls them.
pub fn invalid_send(err: &Invalid, recipients: &str, valid_till: &str) -> AppError {
    match err {
        Invalid::TooLarge { .. } => AppError::bad_request(codes::ENTITY_TOO_LARGE, err.to_string()),
        Invalid::TooManyRecipients(n) => AppError::bad_request(
            codes::INTERNAL,
            format!(
                "{recipients} has {n} client ids; at most {} are allowed.",
                crate::protocol::limits::MAX_RECIPIENTS
            ),
        ),
        Invalid::TooManyMentions(_) => AppError::bad_request(codes::INTERNAL, err.to_string()),
        Invalid::ValidTill => AppError::bad_request(
            codes::INTERNAL,
            format!("{valid_till} must be a time (ms) in the future and at most one month ahead."),
        ),
    }
}

/// A user operation's failure: LeanCloud's code (400), 206 with 403 for another user's account, 429 for a request
/// repeated too soon, 502 when the mail server did not take a mail.
impl From<crate::domain::users::UserError> for AppError {
    fn from(err: crate::domain::users::UserError) -> Self {
        use crate::domain::users::UserError;
        match err {
            UserError::Store(e) => e.into(),
            UserError::Refused { code, message } => AppError::bad_request(code, message),
            e @ UserError::SessionMissing => {
                AppError::new(StatusCode::FORBIDDEN, codes::SESSION_MISSING, e.to_string())
            }
            UserError::TooSoon {
                code,
                message,
                retry_after_secs,
            } => AppError::rate_limited(code, message, retry_after_secs),
            UserError::Unavailable(message) => {
                AppError::new(StatusCode::BAD_GATEWAY, codes::INTERNAL, message)
            }
            e @ UserError::Internal(_) => AppError::internal(e),
        }
    }
}

/// A file operation's failure: a bad or used upload token is 403, a body over the limit 413.
impl From<FileError> for AppError {
    fn from(err: FileError) -> Self {
        match err {
            FileError::Store(e) => e.into(),
            FileError::Invalid(m) => AppError::bad_request(codes::INTERNAL, m),
            FileError::Token => {
                AppError::new(StatusCode::FORBIDDEN, codes::FORBIDDEN, err.to_string())
            }
            FileError::NotFound(id) => AppError::not_found(crate::domain::files::FILE_CLASS, &id),
            FileError::Blob(BlobError::Exists) => AppError::new(
                StatusCode::FORBIDDEN,
                codes::FORBIDDEN,
                FileError::Token.to_string(),
            ),
            FileError::Blob(e @ BlobError::TooLarge { .. }) => AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::ENTITY_TOO_LARGE,
                e.to_string(),
            ),
            FileError::Blob(e @ (BlobError::InvalidKey | BlobError::Interrupted(_))) => {
                AppError::bad_request(codes::INTERNAL, e.to_string())
            }
            FileError::Blob(e @ (BlobError::Io(_) | BlobError::Remote(_))) => AppError::internal(e),
        }
    }
}

/// A refused conversation change.
impl From<ConvError> for AppError {
    fn from(err: ConvError) -> Self {
        match err {
            ConvError::Store(e) => e.into(),
            ConvError::Rejected(refusal) => AppError::bad_request(
                codes::CONVERSATION_REJECTED_BY_APP,
                refusal
                    .detail
                    .unwrap_or_else(|| "CONVERSATION_REJECTED_BY_APP".into()),
            ),
        }
    }
}

/// The storage layer's errors as LeanCloud answers them over HTTP.
impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        let code = err.code();
        match err {
            StoreError::MasterKeyRequired => AppError::master_key_required(),
            StoreError::NotFound { class, id } => AppError::not_found(&class, &id),
            StoreError::ClassNotFound(class) => AppError::class_not_found(&class),
            StoreError::Forbidden(_) | StoreError::ClassForbidden(_) => {
                AppError::new(StatusCode::FORBIDDEN, code, err.to_string())
            }
            StoreError::Sqlite(_) | StoreError::Postgres(_) | StoreError::Internal(_) => {
                AppError::internal(err)
            }
            StoreError::InvalidClassName(_)
            | StoreError::InvalidKey(_)
            | StoreError::InvalidType(_)
            | StoreError::InvalidQuery(_)
            | StoreError::UnsupportedOp(_)
            | StoreError::NoEffect
            | StoreError::TooLarge(_)
            | StoreError::Taken(_)
            | StoreError::Rule { .. }
            | StoreError::ConversationNotFound
            | StoreError::InvalidMessagingTarget
            | StoreError::SystemConversationRequired => {
                AppError::bad_request(code, err.to_string())
            }
        }
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
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(InternalCause(cause));
        }
        response
    }
}

/// Middleware: logs the cause of every internal error a handler answered, once, with the request's method
/// and path (never its query, which may hold a session token).
pub async fn log_app_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    // Cheap clones (a shared buffer), not a path copied on every request of the hot path.
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let response = next.run(req).await;
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(%method, path = uri.path(), error = %cause, "internal error");
    }
    response
}
