//! LeanCloud's error codes, shared by the REST layer and the realtime gateway (`leancloud-rest.md` §6,
//! `realtime-protocol.md` §3.1 and §8).

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

// Realtime (`leancloud-realtime` `src/error.js`).
pub const APP_NOT_AVAILABLE: i64 = 4100;
pub const SIGNATURE_FAILED: i64 = 4102;
pub const INVALID_LOGIN: i64 = 4103;
pub const SESSION_REQUIRED: i64 = 4105;
pub const SESSION_CONFLICT: i64 = 4111;
pub const SESSION_TOKEN_EXPIRED: i64 = 4112;
pub const MESSAGE_SENT_QUOTA_EXCEEDED: i64 = 4116;
pub const CONVERSATION_API_FAILED: i64 = 4301;
pub const CONVERSATION_SIGNATURE_FAILED: i64 = 4302;
pub const CONVERSATION_NOT_FOUND: i64 = 4303;
pub const CONVERSATION_FULL: i64 = 4304;
pub const CONVERSATION_REJECTED_BY_APP: i64 = 4305;
pub const CONVERSATION_UPDATE_FAILED: i64 = 4306;
pub const CONVERSATION_READ_ONLY: i64 = 4307;
pub const CONVERSATION_NOT_ALLOWED: i64 = 4308;
pub const CONVERSATION_UPDATE_REJECTED: i64 = 4309;
pub const CONVERSATION_QUERY_FAILED: i64 = 4310;
pub const CONVERSATION_LOG_FAILED: i64 = 4311;
pub const CONVERSATION_LOG_REJECTED: i64 = 4312;
pub const SYSTEM_CONVERSATION_REQUIRED: i64 = 4313;
pub const NORMAL_CONVERSATION_REQUIRED: i64 = 4314;
pub const CONVERSATION_MEMBERSHIP_REQUIRED: i64 = 4317;
pub const INVALID_MESSAGING_TARGET: i64 = 4401;
pub const MESSAGE_REJECTED_BY_APP: i64 = 4402;
