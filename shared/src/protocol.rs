//! LeanCloud's protocol facts in one place: the error codes the crate and its users act on, and the limits
//! a request must respect. The functions map these codes to their own HTTP answers, so a code is named here
//! once instead of being repeated (and drifting) in every caller.

use crate::error::ApiError;

pub use crate::conversations::MAX_MEMBERS;
pub use crate::messages::{MAX_HISTORY_LIMIT, MAX_MESSAGE_BYTES, MAX_RECIPIENTS};

/// LeanCloud error codes (the `code` of an `{"code": …, "error": "…"}` body).
pub mod codes {
    /// Object not found; also what a conversation query answers for an unknown `_Conversation` id.
    pub const OBJECT_NOT_FOUND: i64 = 101;
    /// The conversation does not exist.
    pub const CONVERSATION_NOT_FOUND: i64 = 4303;
    /// The messaging target (a conversation) is invalid or does not exist.
    pub const INVALID_MESSAGING_TARGET: i64 = 4401;
    /// The operation needs a system conversation.
    pub const SYSTEM_CONVERSATION_REQUIRED: i64 = 4313;
    /// The operation needs a normal (not system, not transient) conversation.
    pub const NORMAL_CONVERSATION_REQUIRED: i64 = 4314;
    /// The operation needs a transient conversation.
    pub const TRANSIENT_CONVERSATION_REQUIRED: i64 = 4316;
    /// The app's quota (e.g. of broadcasts) is exceeded.
    pub const QUOTA_EXCEEDED: i64 = 4318;
}

/// Every code that means "there is no such conversation" to a caller acting on one.
pub const MISSING_CONVERSATION_CODES: [i64; 3] = [
    codes::CONVERSATION_NOT_FOUND,
    codes::INVALID_MESSAGING_TARGET,
    codes::OBJECT_NOT_FOUND,
];

/// Every code that means "the conversation exists but is of the wrong kind for this operation".
pub const WRONG_KIND_CODES: [i64; 3] = [
    codes::SYSTEM_CONVERSATION_REQUIRED,
    codes::NORMAL_CONVERSATION_REQUIRED,
    codes::TRANSIENT_CONVERSATION_REQUIRED,
];

impl ApiError {
    /// Whether the conversation an operation named does not exist. Wider than [`ApiError::is_not_found`]:
    /// a send to an unknown conversation answers 4401 ("invalid messaging target"), not 4303.
    pub fn is_missing_conversation(&self) -> bool {
        MISSING_CONVERSATION_CODES.contains(&self.code)
    }

    /// Whether the conversation is of the wrong kind (system / normal / transient required).
    pub fn is_wrong_kind(&self) -> bool {
        WRONG_KIND_CODES.contains(&self.code)
    }

    /// Whether LeanCloud refused for quota reasons, which callers treat like a rate limit.
    pub fn is_quota_exceeded(&self) -> bool {
        self.code == codes::QUOTA_EXCEEDED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: i64) -> ApiError {
        ApiError {
            status: 400,
            code,
            error: String::new(),
        }
    }

    #[test]
    fn a_send_to_an_unknown_conversation_counts_as_missing_though_it_is_not_a_101() {
        assert!(api(4401).is_missing_conversation());
        assert!(!api(4401).is_not_found());
        assert!(api(4303).is_missing_conversation() && api(4303).is_not_found());
        assert!(api(101).is_missing_conversation() && api(101).is_not_found());
        assert!(!api(4313).is_missing_conversation() && api(4313).is_wrong_kind());
        assert!(api(4318).is_quota_exceeded() && !api(4318).is_wrong_kind());
    }
}
