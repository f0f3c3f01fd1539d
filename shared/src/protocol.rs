//! LeanCloud's protocol facts in one place: the error codes the crate and its users act on, and the limits
//! a request must respect. The functions map these codes to their own HTTP answers, so a code is named here
//! once instead of being repeated (and drifting) in every caller.
//!
//! This module is a leaf: it imports nothing from the crate, so the request modules, the error type and the
//! crate's users can all read it without forming a module cycle.

/// Most members a normal conversation may have; LeanCloud ignores ids beyond it.
pub const MAX_MEMBERS: usize = 500;

/// Most recipients of one [`SendMessage::to_clients`](crate::SendMessage::to_clients) call (`to_peers`).
pub const MAX_RECIPIENTS: usize = 20;

/// Largest message, push payload included, that LeanCloud accepts (5 KB).
pub const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// Longest temporary silence of the 1.2 API (`ttl`, seconds): one day.
pub const MAX_SILENCE_TTL_SECONDS: u32 = 86_400;

/// Most client ids one `check-online` call may name.
pub const MAX_ONLINE_CHECK_IDS: usize = 20;

/// Most recipients (`to_clients`) of one 1.2 service-conversation message, and most `mention_client_ids`.
pub const MAX_TO_CLIENTS: usize = 20;

/// Longest `reason` of a kick (characters).
pub const MAX_KICK_REASON_CHARS: usize = 20;

/// Most records one history request returns.
pub const MAX_HISTORY_LIMIT: u32 = 1000;

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
    /// The message was sent by another client than the edit's or recall's `from_client`.
    pub const MESSAGE_OWNERSHIP_REQUIRED: i64 = 4403;
    /// No message with this id and timestamp (an edit, recall or delete).
    pub const MESSAGE_NOT_FOUND: i64 = 4404;
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
