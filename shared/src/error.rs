//! The crate's one error type, and the errors it wraps.

use std::fmt;
use std::time::Duration;

use crate::config::ConfigError;
use crate::protocol::{codes, MISSING_CONVERSATION_CODES, WRONG_KIND_CODES};

/// A `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How long LeanCloud keeps answering 429 once a per-minute bucket is exceeded ("一分钟内 … 持续返回
/// 429 错误码，一分钟后会重新处理请求"), used when a 429 carries no `Retry-After` header.
pub const RATE_LIMIT_PENALTY: Duration = Duration::from_secs(60);

/// The longest `Retry-After` taken from a response (an hour). A larger value, up to `u64::MAX` seconds, would
/// overflow an `Instant` or pause a bucket for the life of the process (review finding L6).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// LeanCloud's error body `{"code": …, "error": "…"}`, with the HTTP status it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status of the response (LeanCloud also reports some errors with `200`).
    pub status: u16,
    /// LeanCloud's error code, e.g. `4301` or `101`; `1` when the body had no `code` (as the SDK does).
    pub code: i64,
    /// LeanCloud's error text.
    pub error: String,
}

impl ApiError {
    /// LeanCloud's "object not found" (`101`) or "conversation not found" (`4303`).
    pub fn is_not_found(&self) -> bool {
        self.code == codes::OBJECT_NOT_FOUND || self.code == codes::CONVERSATION_NOT_FOUND
    }

    /// Whether the conversation an operation named does not exist. Wider than [`ApiError::is_not_found`]:
    /// a send to an unknown conversation answers 4401 ("invalid messaging target"), not 4303.
    pub fn is_missing_conversation(&self) -> bool {
        MISSING_CONVERSATION_CODES.contains(&self.code)
    }

    /// Whether the message an edit, recall or delete named does not exist (4404: no message with that id
    /// and timestamp).
    pub fn is_message_not_found(&self) -> bool {
        self.code == codes::MESSAGE_NOT_FOUND
    }

    /// Whether the conversation is of the wrong kind (system / normal / transient required).
    pub fn is_wrong_kind(&self) -> bool {
        WRONG_KIND_CODES.contains(&self.code)
    }

    /// Whether LeanCloud refused for quota reasons, which callers treat like a rate limit.
    pub fn is_quota_exceeded(&self) -> bool {
        self.code == codes::QUOTA_EXCEEDED
    }

    /// Parse an error body the way the SDK does: any JSON object with an `error` key is an error;
    /// `code` defaults to 1 and `error` may be any JSON value.
    pub(crate) fn from_body(status: u16, value: &serde_json::Value) -> Option<ApiError> {
        let obj = value.as_object()?;
        let error = obj.get("error")?;
        let code = obj
            .get("code")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(1);
        let error = match error {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Some(ApiError {
            status,
            code,
            error,
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LeanCloud error [{}] {} (HTTP {})",
            self.code, self.error, self.status
        )
    }
}

impl std::error::Error for ApiError {}

/// A request that was rejected before anything was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// An id was empty.
    #[error("{kind} is empty")]
    EmptyId {
        /// Which id ("client id", "conversation id", "message id").
        kind: &'static str,
    },
    /// An id was longer than LeanCloud allows.
    #[error("{kind} is {len} characters long; the limit is {max}")]
    IdTooLong {
        /// Which id.
        kind: &'static str,
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An id contained characters that are not allowed.
    #[error("{kind} is invalid: {reason}")]
    InvalidId {
        /// Which id.
        kind: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// `to_clients` was set to an empty list (the SDK would silently send to the whole conversation).
    #[error("the recipient list is empty; leave it unset to send to the whole conversation")]
    NoRecipients,
    /// More than [`MAX_RECIPIENTS`](crate::MAX_RECIPIENTS) recipients.
    #[error("{count} recipients; at most {max} are allowed per request")]
    TooManyRecipients {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The same recipient appeared twice (its client id). A `String`, not a `ClientId`, so that this module
    /// does not depend on `ids` (which depends on it).
    #[error("recipient {0} is listed more than once")]
    DuplicateRecipient(String),
    /// A member update with no member ids.
    #[error("the member list is empty")]
    NoMembers,
    /// More members than a conversation may have.
    #[error("{count} members; a conversation has at most {max}")]
    TooManyMembers {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The message plus its push payload exceeds LeanCloud's 5 KB limit.
    #[error("the message with its push data is {bytes} bytes; the limit is {limit}")]
    MessageTooLarge {
        /// Size of the message plus push payload in bytes.
        bytes: usize,
        /// The limit ([`MAX_MESSAGE_BYTES`](crate::MAX_MESSAGE_BYTES)).
        limit: usize,
    },
    /// A broadcast's `valid_till` is in the past or more than one month ahead.
    #[error("valid_till {valid_till_ms} (epoch ms) is out of range: {reason}")]
    ValidTillOutOfRange {
        /// The requested expiry in epoch milliseconds.
        valid_till_ms: i64,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A numeric parameter is outside what the server accepts.
    #[error("{name} = {value} is out of range ({min}..={max})")]
    OutOfRange {
        /// Parameter name as sent on the wire.
        name: &'static str,
        /// The value given.
        value: i64,
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// A raw push payload that is neither a JSON object nor a string.
    #[error("push data must be a JSON object or a string")]
    InvalidPush,
    /// A custom attribute whose key LeanCloud would reject or that clashes with a built-in field.
    #[error("attribute {key:?} is not allowed: {reason}")]
    InvalidAttribute {
        /// The key.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// A conversation cannot be both a system conversation and a chat room.
    #[error("a conversation cannot be both system and transient")]
    ConflictingKinds,
    /// A history query starting at a message id needs that message's timestamp too.
    #[error("before_message needs before (the message's timestamp)")]
    MessageIdWithoutTimestamp,
    /// A query's `where` that is not a JSON object.
    #[error("a query's where must be a JSON object")]
    InvalidWhere,
    /// A list of ids that must name at least one.
    #[error("`{field}` is empty; name at least one")]
    EmptyList {
        /// The field as sent on the wire.
        field: &'static str,
    },
    /// A list of ids longer than the endpoint accepts.
    #[error("`{field}` names {count}; at most {max} are allowed per request")]
    TooManyIds {
        /// The field as sent on the wire.
        field: &'static str,
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The same id appears twice in a list.
    #[error("`{field}` lists {id} more than once")]
    DuplicateId {
        /// The field as sent on the wire.
        field: &'static str,
        /// The repeated id.
        id: String,
    },
    /// A field this kind of conversation or this endpoint does not take.
    #[error("`{field}` is not allowed here: {reason}")]
    NotAllowed {
        /// The field as sent on the wire.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A text longer than the endpoint accepts.
    #[error("`{field}` is {len} characters long; the limit is {max}")]
    TooLong {
        /// The field as sent on the wire.
        field: &'static str,
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Everything that can go wrong when calling LeanCloud.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// LeanCloud answered with its error body `{"code", "error"}` (whatever the HTTP status).
    #[error(transparent)]
    Api(ApiError),
    /// HTTP 429. LeanCloud keeps rejecting for a minute once a bucket is exceeded, so this is not
    /// retried automatically; wait [`Error::retry_after`].
    #[error("rate limited (HTTP 429); retry after {} s", retry_after.as_secs())]
    RateLimited {
        /// How long to wait: the `Retry-After` header (at most [`MAX_RETRY_AFTER`]), else [`RATE_LIMIT_PENALTY`].
        retry_after: Duration,
        /// The error body, if the 429 carried LeanCloud's JSON error.
        api: Option<ApiError>,
    },
    /// A response that is neither a success body nor LeanCloud's error body (HTML from a gateway,
    /// plain text, an empty body, or a non-2xx JSON body without `error`).
    #[error("unexpected HTTP {status} response from {url}: {body:?}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The request URL (it carries no credentials).
        url: String,
        /// The start of the response body.
        body: String,
    },
    /// The request could not be sent or its response could not be read.
    #[error("transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// The caller's deadline (or the per-attempt timeout) passed before a response arrived.
    #[error("timed out before LeanCloud answered")]
    Timeout,
    /// A 2xx JSON body that does not have the expected shape.
    #[error("could not decode the HTTP {status} response: {source}")]
    Decode {
        /// HTTP status.
        status: u16,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The request was rejected before anything was sent.
    #[error("invalid request: {0}")]
    Invalid(#[from] ValidationError),
    /// The client configuration is missing or malformed.
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
}

impl Error {
    /// May the same request succeed if it is sent again later? True for timeouts, connection
    /// failures, 5xx answers and 429 (after [`Error::retry_after`]).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(api) => api.status >= 500,
            Error::RateLimited { .. } | Error::Timeout | Error::Transport(_) => true,
            Error::Status { status, .. } => *status >= 500,
            Error::Decode { .. } | Error::Invalid(_) | Error::Config(_) => false,
        }
    }

    /// For [`Error::RateLimited`], how long to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The HTTP status of the response, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(api) => Some(api.status),
            Error::RateLimited { .. } => Some(429),
            Error::Status { status, .. } | Error::Decode { status, .. } => Some(*status),
            Error::Transport(e) => e.status().map(|s| s.as_u16()),
            Error::Timeout | Error::Invalid(_) | Error::Config(_) => None,
        }
    }

    /// LeanCloud's error code, when the response carried one.
    pub fn api_code(&self) -> Option<i64> {
        match self {
            Error::Api(api) => Some(api.code),
            Error::RateLimited { api: Some(api), .. } => Some(api.code),
            _ => None,
        }
    }

    /// The LeanCloud error body, when there was one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(api) => Some(api),
            Error::RateLimited { api, .. } => api.as_ref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_bodies_are_parsed_like_the_sdk() {
        let api = ApiError::from_body(
            400,
            &json!({"code": 4301, "error": "CONVERSATION_API_FAILED"}),
        );
        assert_eq!(
            Some(ApiError {
                status: 400,
                code: 4301,
                error: "CONVERSATION_API_FAILED".into()
            }),
            api
        );
        let no_code = ApiError::from_body(200, &json!({"error": "boom"})).unwrap();
        assert_eq!(1, no_code.code, "the SDK defaults a missing code to 1");
        assert_eq!(None, ApiError::from_body(500, &json!({"foo": 1})));
        assert_eq!(None, ApiError::from_body(200, &json!([{"error": 1}])));
    }

    #[test]
    fn display_texts_are_stable() {
        let api = ApiError {
            status: 400,
            code: 4301,
            error: "CONVERSATION_API_FAILED".into(),
        };
        assert_eq!(
            "LeanCloud error [4301] CONVERSATION_API_FAILED (HTTP 400)",
            api.to_string()
        );
        assert_eq!(
            "LeanCloud error [4301] CONVERSATION_API_FAILED (HTTP 400)",
            Error::Api(api).to_string()
        );
        let limited = Error::RateLimited {
            retry_after: RATE_LIMIT_PENALTY,
            api: None,
        };
        assert_eq!(
            "rate limited (HTTP 429); retry after 60 s",
            limited.to_string()
        );
        assert_eq!(
            "invalid request: 21 recipients; at most 20 are allowed per request",
            Error::from(ValidationError::TooManyRecipients { count: 21, max: 20 }).to_string()
        );
    }

    #[test]
    fn a_send_to_an_unknown_conversation_counts_as_missing_though_it_is_not_a_101() {
        let api = |code| ApiError {
            status: 400,
            code,
            error: String::new(),
        };
        assert!(api(4401).is_missing_conversation());
        assert!(!api(4401).is_not_found());
        assert!(api(4303).is_missing_conversation() && api(4303).is_not_found());
        assert!(api(101).is_missing_conversation() && api(101).is_not_found());
        assert!(!api(4313).is_missing_conversation() && api(4313).is_wrong_kind());
        assert!(api(4318).is_quota_exceeded() && !api(4318).is_wrong_kind());
    }

    #[test]
    fn retryability_follows_the_kind_of_failure() {
        let api = |status| {
            Error::Api(ApiError {
                status,
                code: 1,
                error: "x".into(),
            })
        };
        let cases = [
            (api(400), false),
            (api(200), false),
            (api(503), true),
            (
                Error::Status {
                    status: 502,
                    url: String::new(),
                    body: String::new(),
                },
                true,
            ),
            (
                Error::Status {
                    status: 200,
                    url: String::new(),
                    body: String::new(),
                },
                false,
            ),
            (Error::Timeout, true),
            (
                Error::RateLimited {
                    retry_after: RATE_LIMIT_PENALTY,
                    api: None,
                },
                true,
            ),
            (Error::Invalid(ValidationError::NoRecipients), false),
        ];
        for (error, expected) in cases {
            assert_eq!(
                expected,
                error.is_retryable(),
                "when the error was {error:?}"
            );
        }
    }
}
