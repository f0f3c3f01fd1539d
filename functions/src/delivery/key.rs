//! The idempotency key: what makes a retried HTTP call, a redelivered SQS record or a repeated schedule fire
//! send once (zero2prod's `idempotency/key.rs` shape: a newtype that owns its validation).

use serde::Serialize;

use crate::error::FunctionError;

/// Longest accepted caller-supplied key.
pub const MAX_KEY_LEN: usize = 255;

/// A key the ledger de-duplicates with. Caller-supplied keys are validated ([`IdempotencyKey::parse`]);
/// keys a trigger implies (an SQS message id, a rule and its scheduled time) are taken as they are.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// A caller's key: 1 to [`MAX_KEY_LEN`] bytes without control characters.
    pub fn parse(key: impl Into<String>) -> Result<Self, FunctionError> {
        let key = key.into();
        if key.is_empty() || key.len() > MAX_KEY_LEN || key.chars().any(char::is_control) {
            return Err(FunctionError::invalid_request(format!(
                "`idempotency_key` must be 1 to {MAX_KEY_LEN} bytes without control characters"
            )));
        }
        Ok(IdempotencyKey(key))
    }

    /// A key the trigger implies; not length-checked, since the caller did not choose it.
    pub fn implied(key: impl Into<String>) -> Self {
        IdempotencyKey(key.into())
    }

    /// A fresh random key (128 bits), for work that must carry its own key: a bulk record put on the queue
    /// without one would otherwise be keyed by its SQS message id, which a dead-letter redrive replaces
    /// (review finding U2).
    pub fn generated(prefix: &str) -> Self {
        IdempotencyKey(format!("{prefix}-{:032x}", rand::random::<u128>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ledger key in `namespace` (the operation's name): the same key in two operations never collides.
    pub fn namespaced(&self, namespace: &str) -> String {
        format!("{namespace}#{}", self.0)
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> String {
        key.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_keys_are_checked_and_namespaced_per_operation() {
        assert!(IdempotencyKey::parse("order-1@2026-01-01T00:00:00Z").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("x".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("a\nb").is_err());
        let key = IdempotencyKey::parse("k-1").expect("valid");
        assert_eq!("send-message#k-1", key.namespaced("send-message"));
        assert_ne!(key.namespaced("send-message"), key.namespaced("broadcast"));
    }
}
