//! The storage layer's own error: what went wrong, with no HTTP or WebSocket in it. The REST layer maps it
//! to LeanCloud's HTTP answers (`crate::error`), the realtime gateway to `error`/`ack` codes.

use crate::protocol::codes;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("The operation requires the master key.")]
    MasterKeyRequired,
    #[error("Invalid class name: {0}.")]
    InvalidClassName(String),
    /// The whole message: `Invalid key name: k.` or what else was wrong with a key.
    #[error("{0}")]
    InvalidKey(String),
    #[error("{0}")]
    InvalidType(String),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("Unsupported __op: {0}.")]
    UnsupportedOp(String),
    #[error("Could not find object by id '{id}' for class '{class}'.")]
    NotFound { class: String, id: String },
    #[error("Class or object doesn't exists: {0}.")]
    ClassNotFound(String),
    #[error("No effect on updating/deleting a document.")]
    NoEffect,
    /// `op` is `write` or `delete`.
    #[error("Forbidden to {0} by the object's ACL.")]
    Forbidden(&'static str),
    /// The class's permissions do not let this caller `{0}` (LeanCloud's wording).
    #[error("Forbidden to {0} by class permissions.")]
    ClassForbidden(&'static str),
    /// An object or array over the size limits.
    #[error("{0}")]
    TooLarge(String),
    /// A rule of a built-in class broken (a `_Role` without ACL or with an invalid name), with its code.
    #[error("{message}")]
    Rule { code: i64, message: String },
    /// A sign-up or update would give a second user this `username`, `email` or `mobilePhoneNumber`.
    #[error("{}", taken_message(.0))]
    Taken(&'static str),
    #[error("CONVERSATION_NOT_FOUND")]
    ConversationNotFound,
    #[error("INVALID_MESSAGING_TARGET")]
    InvalidMessagingTarget,
    #[error("SYSTEM_CONVERSATION_REQUIRED")]
    SystemConversationRequired,
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// Something that should not happen (a stored row that does not decode, the writer gone).
    #[error("{0}")]
    Internal(String),
}

impl StoreError {
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        StoreError::Internal(detail.to_string())
    }

    /// LeanCloud's code for this error.
    pub fn code(&self) -> i64 {
        match self {
            StoreError::MasterKeyRequired => codes::MASTER_KEY_REQUIRED,
            StoreError::InvalidClassName(_) => codes::INVALID_CLASS_NAME,
            StoreError::InvalidKey(_) => codes::INVALID_KEY_NAME,
            StoreError::InvalidType(_) => codes::INVALID_TYPE,
            StoreError::InvalidQuery(_) => codes::INVALID_QUERY,
            StoreError::UnsupportedOp(_) => codes::INTERNAL,
            StoreError::NotFound { .. } | StoreError::ClassNotFound(_) => codes::OBJECT_NOT_FOUND,
            StoreError::NoEffect => codes::NO_EFFECT,
            StoreError::Forbidden(_) | StoreError::ClassForbidden(_) => codes::FORBIDDEN,
            StoreError::TooLarge(_) => codes::ENTITY_TOO_LARGE,
            StoreError::Rule { code, .. } => *code,
            StoreError::Taken("email") => codes::EMAIL_TAKEN,
            StoreError::Taken("mobilePhoneNumber") => codes::PHONE_TAKEN,
            StoreError::Taken(_) => codes::USERNAME_TAKEN,
            StoreError::ConversationNotFound => codes::CONVERSATION_NOT_FOUND,
            StoreError::InvalidMessagingTarget => codes::INVALID_MESSAGING_TARGET,
            StoreError::SystemConversationRequired => codes::SYSTEM_CONVERSATION_REQUIRED,
            StoreError::Sqlite(_) | StoreError::Postgres(_) | StoreError::Internal(_) => {
                codes::INTERNAL
            }
        }
    }

    /// Whether the client caused it (as opposed to the server failing).
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(_) | StoreError::Postgres(_) | StoreError::Internal(_)
        )
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

fn taken_message(field: &str) -> &'static str {
    match field {
        "email" => "Email has already been taken.",
        "mobilePhoneNumber" => "Mobile phone number has already been taken.",
        _ => "Username has already been taken.",
    }
}
