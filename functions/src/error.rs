//! The one error type of the functions, and the one place that maps it to HTTP and to Lambda diagnostics.

use std::time::Duration;

use lambda_runtime::Diagnostic;
use leancloud_im::protocol::codes;
use leancloud_im::ValidationError;
use serde::Serialize;

/// The `error.code` of every error answer: the documented contract of `functions/openapi.yaml` as one
/// exhaustive type, so a new code cannot appear without being named here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidJson,
    InvalidRequest,
    TooManyRecipients,
    MessageTooLarge,
    InvalidEvent,
    UnsupportedTrigger,
    Forbidden,
    RouteNotFound,
    MethodNotAllowed,
    ConversationNotFound,
    MessageNotFound,
    ScheduleNotFound,
    WrongConversationKind,
    RateLimited,
    DailyQuotaExceeded,
    BudgetExhausted,
    InProgress,
    ServiceUnavailable,
    BackendUnavailable,
    BackendError,
    InternalError,
}

impl ErrorCode {
    /// The wire string (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::TooManyRecipients => "too_many_recipients",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::InvalidEvent => "invalid_event",
            ErrorCode::UnsupportedTrigger => "unsupported_trigger",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RouteNotFound => "route_not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::ConversationNotFound => "conversation_not_found",
            ErrorCode::MessageNotFound => "message_not_found",
            ErrorCode::ScheduleNotFound => "schedule_not_found",
            ErrorCode::WrongConversationKind => "wrong_conversation_kind",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::DailyQuotaExceeded => "daily_quota_exceeded",
            ErrorCode::BudgetExhausted => "budget_exhausted",
            ErrorCode::InProgress => "in_progress",
            ErrorCode::ServiceUnavailable => "service_unavailable",
            ErrorCode::BackendUnavailable => "backend_unavailable",
            ErrorCode::BackendError => "backend_error",
            ErrorCode::InternalError => "internal_error",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in one invocation (or one SQS record).
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// The Lambda event itself has the wrong shape (not a payload problem).
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// A trigger this function is not wired for (or no AWS trigger at all).
    #[error("{function} does not accept {trigger} events")]
    UnsupportedTrigger {
        function: &'static str,
        trigger: String,
    },
    /// The payload (HTTP body, queue record, schedule input) failed decoding or validation.
    #[error("{message}")]
    InvalidInput { code: ErrorCode, message: String },
    /// A JWT caller asked for what its identity does not allow (review finding H1).
    #[error("{message}")]
    Forbidden { message: String },
    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("method {method} is not allowed on {path}; use {allowed}")]
    MethodNotAllowed {
        method: String,
        path: String,
        /// The methods the route takes, for the message and the `Allow` header.
        allowed: &'static str,
    },
    /// A schedule name that does not exist in this stack's group.
    #[error("no schedule named {name:?}")]
    ScheduleNotFound { name: String },
    /// The invocation's deadline came before the work was done (our own limit, not LeanCloud's).
    #[error("the invocation ran out of time before all of the work was done")]
    DeadlineExceeded,
    #[error("LeanCloud request failed: {0}")]
    LeanCloud(#[from] leancloud_im::Error),
    /// Our own daily broadcast budget is used up: refused before LeanCloud is called, and retrying today cannot help.
    #[error("{message}")]
    QuotaExhausted {
        message: String,
        retry_after: Duration,
    },
    /// Our own throttling (the shared rate budget is used up, or another invocation holds the work): try later.
    #[error("{message}")]
    Throttled {
        code: ErrorCode,
        message: String,
        retry_after: Duration,
    },
    /// A service of our own (idempotency table, budget store, bulk queue) failed; the detail is logged only.
    #[error("{service} is unavailable: {detail}")]
    Unavailable {
        service: &'static str,
        detail: String,
    },
    /// A record's processing panicked; isolated so its neighbours still complete.
    #[error("internal error while processing the record")]
    Panicked,
}

/// What an HTTP caller sees for an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub code: ErrorCode,
    pub message: String,
    pub leancloud_code: Option<i64>,
    pub retry_after: Option<Duration>,
}

impl FunctionError {
    pub fn invalid(code: ErrorCode, message: impl Into<String>) -> Self {
        FunctionError::InvalidInput {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::invalid(ErrorCode::InvalidRequest, message)
    }

    /// Whether trying again later may succeed (SQS redelivery, Scheduler retry).
    pub fn is_retryable(&self) -> bool {
        match self {
            FunctionError::LeanCloud(err) => {
                err.is_retryable() || err.api().is_some_and(|api| api.is_quota_exceeded())
            }
            FunctionError::Panicked
            | FunctionError::Unavailable { .. }
            | FunctionError::Throttled { .. }
            | FunctionError::DeadlineExceeded => true,
            _ => false,
        }
    }

    /// The single mapping from errors to HTTP answers. Backend details are logged, never returned.
    pub fn to_http(&self) -> HttpError {
        let plain = |status, code, message: String| HttpError {
            status,
            code,
            message,
            leancloud_code: None,
            retry_after: None,
        };
        match self {
            FunctionError::InvalidInput { code, message } => plain(400, *code, message.clone()),
            FunctionError::InvalidEvent(reason) => {
                plain(400, ErrorCode::InvalidEvent, reason.clone())
            }
            FunctionError::UnsupportedTrigger { .. } => {
                plain(400, ErrorCode::UnsupportedTrigger, self.to_string())
            }
            FunctionError::Forbidden { message } => {
                plain(403, ErrorCode::Forbidden, message.clone())
            }
            FunctionError::RouteNotFound { .. } => {
                plain(404, ErrorCode::RouteNotFound, self.to_string())
            }
            FunctionError::MethodNotAllowed { .. } => {
                plain(405, ErrorCode::MethodNotAllowed, self.to_string())
            }
            FunctionError::ScheduleNotFound { .. } => {
                plain(404, ErrorCode::ScheduleNotFound, self.to_string())
            }
            // The fan-out reported this as a LeanCloud timeout before: the same answer, now named for what it is.
            FunctionError::DeadlineExceeded => plain(
                503,
                ErrorCode::BackendUnavailable,
                "LeanCloud could not be reached in time".into(),
            ),
            FunctionError::Panicked => plain(500, ErrorCode::InternalError, self.to_string()),
            FunctionError::QuotaExhausted {
                message,
                retry_after,
            } => HttpError {
                retry_after: Some((*retry_after).max(Duration::from_secs(1))),
                ..plain(429, ErrorCode::DailyQuotaExceeded, message.clone())
            },
            FunctionError::Throttled {
                code,
                message,
                retry_after,
            } => HttpError {
                retry_after: Some((*retry_after).max(Duration::from_secs(1))),
                ..plain(429, *code, message.clone())
            },
            FunctionError::Unavailable { service, .. } => HttpError {
                retry_after: Some(Duration::from_secs(1)),
                ..plain(
                    503,
                    ErrorCode::ServiceUnavailable,
                    format!("{service} is unavailable; retry later"),
                )
            },
            FunctionError::LeanCloud(err) => leancloud_to_http(err),
        }
    }
}

fn leancloud_to_http(err: &leancloud_im::Error) -> HttpError {
    use leancloud_im::Error;
    let api_code = err.api_code();
    let with = |status, code, message: String| HttpError {
        status,
        code,
        message,
        leancloud_code: api_code,
        retry_after: None,
    };
    match err {
        Error::Invalid(validation) => {
            let (code, message) = validation_code(validation);
            with(400, code, message)
        }
        Error::RateLimited { retry_after, .. } => HttpError {
            retry_after: Some((*retry_after).max(Duration::from_secs(1))),
            ..with(
                429,
                ErrorCode::RateLimited,
                "LeanCloud rate limit reached; retry later".into(),
            )
        },
        Error::Api(api) if api.is_missing_conversation() => with(
            404,
            ErrorCode::ConversationNotFound,
            format!("conversation not found ({})", api.error),
        ),
        Error::Api(api) if api.is_message_not_found() => with(
            404,
            ErrorCode::MessageNotFound,
            format!(
                "no message with this id and timestamp in the conversation ({})",
                api.error
            ),
        ),
        Error::Api(api) if api.code == codes::MESSAGE_OWNERSHIP_REQUIRED => with(
            403,
            ErrorCode::Forbidden,
            format!("the message was not sent by `from_client` ({})", api.error),
        ),
        Error::Api(api) if api.is_wrong_kind() => with(
            409,
            ErrorCode::WrongConversationKind,
            format!(
                "the conversation is of the wrong kind for this operation ({})",
                api.error
            ),
        ),
        Error::Api(api) if api.is_quota_exceeded() => HttpError {
            retry_after: Some(Duration::from_secs(60)),
            ..with(
                429,
                ErrorCode::RateLimited,
                format!("LeanCloud quota exceeded ({})", api.error),
            )
        },
        Error::Api(api) if api.status == 503 => with(
            503,
            ErrorCode::BackendUnavailable,
            "LeanCloud is unavailable".into(),
        ),
        Error::Api(api) => with(
            502,
            ErrorCode::BackendError,
            format!("LeanCloud rejected the request ({})", api.error),
        ),
        Error::Status { status: 503, .. } | Error::Transport(_) | Error::Timeout => with(
            503,
            ErrorCode::BackendUnavailable,
            "LeanCloud could not be reached in time".into(),
        ),
        _ => with(
            502,
            ErrorCode::BackendError,
            "LeanCloud answered with an unexpected response".into(),
        ),
    }
}

/// Input error code and message for a validation failure found by the client crate.
pub fn validation_code(err: &ValidationError) -> (ErrorCode, String) {
    let code = match err {
        ValidationError::TooManyRecipients { .. } => ErrorCode::TooManyRecipients,
        ValidationError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
        _ => ErrorCode::InvalidRequest,
    };
    (code, err.to_string())
}

impl From<ValidationError> for FunctionError {
    fn from(err: ValidationError) -> Self {
        let (code, message) = validation_code(&err);
        FunctionError::InvalidInput { code, message }
    }
}

impl From<FunctionError> for Diagnostic {
    fn from(err: FunctionError) -> Self {
        let error_type = match &err {
            FunctionError::InvalidEvent(_) => "InvalidEvent",
            FunctionError::UnsupportedTrigger { .. } => "UnsupportedTrigger",
            FunctionError::InvalidInput { .. } => "InvalidPayload",
            FunctionError::Forbidden { .. } => "Forbidden",
            FunctionError::RouteNotFound { .. } | FunctionError::MethodNotAllowed { .. } => {
                "InvalidEvent"
            }
            FunctionError::ScheduleNotFound { .. } => "InvalidPayload",
            FunctionError::DeadlineExceeded => "Retryable",
            FunctionError::Panicked => "Panicked",
            FunctionError::QuotaExhausted { .. } => "QuotaExhausted",
            FunctionError::Unavailable { .. } | FunctionError::Throttled { .. } => "Retryable",
            FunctionError::LeanCloud(_) if err.is_retryable() => "Retryable",
            FunctionError::LeanCloud(_) => "LeanCloud",
        };
        // The HTTP message is the sanitized one: no URLs, no bodies, never the master key.
        let error_message = match &err {
            FunctionError::Unavailable { .. } => err.to_http().message,
            FunctionError::DeadlineExceeded => format!("{} (HTTP 503)", err.to_http().message),
            FunctionError::LeanCloud(_) => {
                let http = err.to_http();
                match http.leancloud_code {
                    Some(code) => format!(
                        "{} (LeanCloud code {code}, HTTP {})",
                        http.message, http.status
                    ),
                    None => format!("{} (HTTP {})", http.message, http.status),
                }
            }
            _ => err.to_string(),
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leancloud_im::{ApiError, Error};

    fn api(status: u16, code: i64) -> FunctionError {
        FunctionError::LeanCloud(Error::Api(ApiError {
            status,
            code,
            error: "LeanCloud says no".to_owned(),
        }))
    }

    #[test]
    fn our_own_refusals_are_not_blamed_on_leancloud() {
        let cases = [
            (
                FunctionError::QuotaExhausted {
                    message: "the daily broadcast budget of 30 is used up".to_owned(),
                    retry_after: Duration::from_secs(3600),
                },
                429,
                "daily_quota_exceeded",
                false,
                "QuotaExhausted",
            ),
            (
                FunctionError::Throttled {
                    code: ErrorCode::BudgetExhausted,
                    message: "the send budget is used up; retry later".to_owned(),
                    retry_after: Duration::from_secs(20),
                },
                429,
                "budget_exhausted",
                true,
                "Retryable",
            ),
            (
                FunctionError::Unavailable {
                    service: "the idempotency table",
                    detail: "dispatch failure: connection refused to http://10.0.0.9".to_owned(),
                },
                503,
                "service_unavailable",
                true,
                "Retryable",
            ),
        ];
        for (error, status, code, retryable, error_type) in cases {
            let http = error.to_http();
            assert_eq!(
                (status, code),
                (http.status, http.code.as_str()),
                "for {error:?}"
            );
            assert_eq!(None, http.leancloud_code, "for {error:?}");
            assert!(http.retry_after.is_some(), "for {error:?}");
            assert!(!http.message.contains("LeanCloud"), "{}", http.message);
            assert!(!http.message.contains("10.0.0.9"), "{}", http.message);
            assert_eq!(retryable, error.is_retryable(), "for {error:?}");
            let diagnostic = Diagnostic::from(error);
            assert_eq!(error_type, diagnostic.error_type);
            assert!(!diagnostic.error_message.contains("10.0.0.9"));
        }
    }

    #[test]
    fn leancloud_errors_map_to_the_documented_statuses() {
        let cases = [
            (api(404, 4303), 404, "conversation_not_found", Some(4303)),
            (api(400, 4401), 404, "conversation_not_found", Some(4401)),
            (api(404, 101), 404, "conversation_not_found", Some(101)),
            (api(400, 4313), 409, "wrong_conversation_kind", Some(4313)),
            (api(400, 4314), 409, "wrong_conversation_kind", Some(4314)),
            (api(400, 4316), 409, "wrong_conversation_kind", Some(4316)),
            (api(400, 4318), 429, "rate_limited", Some(4318)),
            (api(400, 4404), 404, "message_not_found", Some(4404)),
            (api(400, 4403), 403, "forbidden", Some(4403)),
            (api(400, 4301), 502, "backend_error", Some(4301)),
            (api(401, 401), 502, "backend_error", Some(401)),
            (api(503, 1), 503, "backend_unavailable", Some(1)),
            (
                FunctionError::LeanCloud(Error::Timeout),
                503,
                "backend_unavailable",
                None,
            ),
            (
                FunctionError::LeanCloud(Error::Status {
                    status: 502,
                    url: "http://10.0.0.1/1.1/rtm/messages".to_owned(),
                    body: "<html>bad gateway</html>".to_owned(),
                }),
                502,
                "backend_error",
                None,
            ),
            (
                FunctionError::LeanCloud(Error::RateLimited {
                    retry_after: Duration::from_millis(1500),
                    api: None,
                }),
                429,
                "rate_limited",
                None,
            ),
        ];
        for (err, status, code, leancloud_code) in cases {
            let http = err.to_http();
            assert_eq!(
                (status, code, leancloud_code),
                (http.status, http.code.as_str(), http.leancloud_code),
                "for {err:?}"
            );
            assert!(
                !http.message.contains("10.0.0.1") && !http.message.contains("<html>"),
                "{http:?}"
            );
        }
    }

    #[test]
    fn rate_limits_carry_retry_after_rounded_up_to_whole_seconds() {
        let err = FunctionError::LeanCloud(Error::RateLimited {
            retry_after: Duration::from_millis(1500),
            api: None,
        });
        let response = crate::lambda::http::error_response(&err);
        let retry_after = response
            .headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok());
        assert_eq!(Some("2"), retry_after);
        assert!(err.is_retryable());
    }

    #[test]
    fn diagnostics_name_the_error_kind_and_hide_backend_details() {
        let cases = [
            (FunctionError::InvalidEvent("x".into()), "InvalidEvent"),
            (
                FunctionError::invalid_request("missing field"),
                "InvalidPayload",
            ),
            (api(503, 1), "Retryable"),
            (api(404, 4303), "LeanCloud"),
            (FunctionError::LeanCloud(Error::Timeout), "Retryable"),
        ];
        for (err, error_type) in cases {
            let diagnostic = Diagnostic::from(err);
            assert_eq!(error_type, diagnostic.error_type);
        }
        let diagnostic = Diagnostic::from(FunctionError::LeanCloud(Error::Status {
            status: 500,
            url: "http://10.0.0.1/1.1/rtm/messages".to_owned(),
            body: "Traceback (most recent call last)".to_owned(),
        }));
        assert!(
            !diagnostic.error_message.contains("Traceback"),
            "{}",
            diagnostic.error_message
        );
        assert!(
            !diagnostic.error_message.contains("10.0.0.1"),
            "{}",
            diagnostic.error_message
        );
    }
}
