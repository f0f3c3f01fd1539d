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
pub const USERNAME_MISSING: i64 = 200;
pub const PASSWORD_MISSING: i64 = 201;
pub const USERNAME_TAKEN: i64 = 202;
pub const EMAIL_TAKEN: i64 = 203;
pub const SESSION_MISSING: i64 = 206;
pub const PASSWORD_MISMATCH: i64 = 210;
pub const USER_NOT_FOUND: i64 = 211;
pub const PHONE_TAKEN: i64 = 214;
pub const USERNAME_BLANK: i64 = 217;
pub const PASSWORD_BLANK: i64 = 218;
pub const LOGIN_LOCKED: i64 = 219;
pub const CQL_SYNTAX: i64 = 300;
pub const NO_EFFECT: i64 = 305;
pub const UNAUTHORIZED: i64 = 401;
pub const FORBIDDEN: i64 = 403;
pub const ENTITY_TOO_LARGE: i64 = 413;
pub const TOO_MANY_REQUESTS: i64 = 429;
pub const SERVICE_UNAVAILABLE: i64 = 503;

// Realtime (`leancloud-realtime` `src/error.js`).
pub const APP_NOT_AVAILABLE: i64 = 4100;
pub const SIGNATURE_FAILED: i64 = 4102;
pub const INVALID_LOGIN: i64 = 4103;
pub const SESSION_REQUIRED: i64 = 4105;
pub const SESSION_CONFLICT: i64 = 4111;
pub const SESSION_TOKEN_EXPIRED: i64 = 4112;
/// The app's backend closed the client's sessions (`POST /1.2/rtm/clients/{client}/kick`).
pub const KICKED_BY_APP: i64 = 4115;
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
pub const MESSAGE_OWNERSHIP_REQUIRED: i64 = 4403;
pub const MESSAGE_NOT_FOUND: i64 = 4404;
pub const MESSAGE_UPDATE_REJECTED_BY_APP: i64 = 4405;
pub const MESSAGE_EDIT_DISABLED: i64 = 4406;
pub const MESSAGE_RECALL_DISABLED: i64 = 4407;
pub const TRANSIENT_CONVERSATION_REQUIRED: i64 = 4316;
/// A temporary conversation that expired or never existed.
pub const TEMPORARY_CONVERSATION_EXPIRED: i64 = 4323;
pub const QUOTA_EXCEEDED: i64 = 4318;
/// A member silenced for a while (a temporary silence, `…/temporary-silenceds`) sending.
pub const TEMPORARILY_SILENCED: i64 = 4315;
/// Blacklisted in the conversation (a blocked client joining or added): `BLOCKED_BY_CONV`.
pub const BLOCKED_BY_CONV: i64 = 4548;
/// Not the owner (or a manager) for a member-management operation.
pub const CONVERSATION_OPERATION_UNAUTHORIZED: i64 = 4320;
pub const UNKNOWN_CONVERSATION_ROLE: i64 = 4321;
/// The owner cannot leave or be removed.
pub const CONVERSATION_NEED_OWNER: i64 = 4324;
/// A muted member (shutup) sending.
pub const SILENCED: i64 = 4563;
/// `member_info_update` to the role `Owner`.
pub const OWNER_PROMOTION_NOT_ALLOWED: i64 = 5130;

/// Why a realtime command was refused: the code and the reason name the official SDKs read (`error.code`,
/// `error.reason`; `realtime-protocol.md` §3.1). One list, so a reply never pairs a code with another
/// code's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Internal,
    MalformedCommand,
    UnsupportedCommand,
    EmptyMessage,
    MessageTooLarge,
    TooManyCommands,
    /// Over the sessions one connection, or one client id, may hold (`protocol::limits`).
    TooManySessions,
    /// A client id logging in faster than its login rate allows.
    TooManyLogins,
    /// The server is too busy to run a blocking hook in time: retry later (the message was not stored).
    Overloaded,
    AppNotAvailable,
    SignatureFailed,
    InvalidLogin,
    SessionNotOpened,
    SessionConflict,
    SessionTokenExpired,
    ConversationApiFailed,
    ConversationSignatureFailed,
    ConversationNotFound,
    ConversationRejectedByApp,
    ConversationUpdateRejected,
    ConversationQueryFailed,
    ConversationLogRejected,
    SystemConversationRequired,
    ConversationMembershipRequired,
    TemporaryConversationExpired,
    InvalidMessagingTarget,
    MessageRejectedByApp,
    MessageOwnershipRequired,
    MessageNotFound,
    MessageEditDisabled,
    MessageRecallDisabled,
    MessageUpdateRejectedByApp,
    BlockedByConv,
    ConversationOperationUnauthorized,
    UnknownConversationRole,
    ConversationNeedOwner,
    Silenced,
    TemporarilySilenced,
    OwnerPromotionNotAllowed,
}

impl Reason {
    pub const fn code(self) -> i64 {
        match self {
            Reason::Internal
            | Reason::MalformedCommand
            | Reason::UnsupportedCommand
            | Reason::EmptyMessage => INTERNAL,
            Reason::MessageTooLarge => ENTITY_TOO_LARGE,
            Reason::TooManyCommands | Reason::TooManySessions | Reason::TooManyLogins => {
                TOO_MANY_REQUESTS
            }
            Reason::Overloaded => SERVICE_UNAVAILABLE,
            Reason::AppNotAvailable => APP_NOT_AVAILABLE,
            Reason::SignatureFailed => SIGNATURE_FAILED,
            Reason::InvalidLogin => INVALID_LOGIN,
            Reason::SessionNotOpened => SESSION_REQUIRED,
            Reason::SessionConflict => SESSION_CONFLICT,
            Reason::SessionTokenExpired => SESSION_TOKEN_EXPIRED,
            Reason::ConversationApiFailed => CONVERSATION_API_FAILED,
            Reason::ConversationSignatureFailed => CONVERSATION_SIGNATURE_FAILED,
            Reason::ConversationNotFound => CONVERSATION_NOT_FOUND,
            Reason::ConversationRejectedByApp => CONVERSATION_REJECTED_BY_APP,
            Reason::ConversationUpdateRejected => CONVERSATION_UPDATE_REJECTED,
            Reason::ConversationQueryFailed => CONVERSATION_QUERY_FAILED,
            Reason::ConversationLogRejected => CONVERSATION_LOG_REJECTED,
            Reason::SystemConversationRequired => SYSTEM_CONVERSATION_REQUIRED,
            Reason::ConversationMembershipRequired => CONVERSATION_MEMBERSHIP_REQUIRED,
            Reason::TemporaryConversationExpired => TEMPORARY_CONVERSATION_EXPIRED,
            Reason::InvalidMessagingTarget => INVALID_MESSAGING_TARGET,
            Reason::MessageRejectedByApp => MESSAGE_REJECTED_BY_APP,
            Reason::MessageOwnershipRequired => MESSAGE_OWNERSHIP_REQUIRED,
            Reason::MessageNotFound => MESSAGE_NOT_FOUND,
            Reason::MessageEditDisabled => MESSAGE_EDIT_DISABLED,
            Reason::MessageRecallDisabled => MESSAGE_RECALL_DISABLED,
            Reason::MessageUpdateRejectedByApp => MESSAGE_UPDATE_REJECTED_BY_APP,
            Reason::BlockedByConv => BLOCKED_BY_CONV,
            Reason::ConversationOperationUnauthorized => CONVERSATION_OPERATION_UNAUTHORIZED,
            Reason::UnknownConversationRole => UNKNOWN_CONVERSATION_ROLE,
            Reason::ConversationNeedOwner => CONVERSATION_NEED_OWNER,
            Reason::Silenced => SILENCED,
            Reason::TemporarilySilenced => TEMPORARILY_SILENCED,
            Reason::OwnerPromotionNotAllowed => OWNER_PROMOTION_NOT_ALLOWED,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Reason::Internal => "INTERNAL_ERROR",
            Reason::MalformedCommand => "MALFORMED_COMMAND",
            Reason::UnsupportedCommand => "UNSUPPORTED_COMMAND",
            Reason::EmptyMessage => "EMPTY_MESSAGE",
            Reason::MessageTooLarge => "MESSAGE_TOO_LARGE",
            Reason::TooManyCommands => "TOO_MANY_COMMANDS",
            Reason::TooManySessions => "TOO_MANY_SESSIONS",
            Reason::TooManyLogins => "TOO_MANY_LOGINS",
            Reason::Overloaded => "SERVER_OVERLOADED",
            Reason::AppNotAvailable => "APP_NOT_AVAILABLE",
            Reason::SignatureFailed => "SIGNATURE_FAILED",
            Reason::InvalidLogin => "INVALID_LOGIN",
            Reason::SessionNotOpened => "SESSION_NOT_OPENED",
            Reason::SessionConflict => "SESSION_CONFLICT",
            Reason::SessionTokenExpired => "SESSION_TOKEN_EXPIRED",
            Reason::ConversationApiFailed => "CONVERSATION_API_FAILED",
            Reason::ConversationSignatureFailed => "CONVERSATION_SIGNATURE_FAILED",
            Reason::ConversationNotFound => "CONVERSATION_NOT_FOUND",
            Reason::ConversationRejectedByApp => "CONVERSATION_REJECTED_BY_APP",
            Reason::ConversationUpdateRejected => "CONVERSATION_UPDATE_REJECTED",
            Reason::ConversationQueryFailed => "CONVERSATION_QUERY_FAILED",
            Reason::ConversationLogRejected => "CONVERSATION_LOG_REJECTED",
            Reason::SystemConversationRequired => "SYSTEM_CONVERSATION_REQUIRED",
            Reason::ConversationMembershipRequired => "CONVERSATION_MEMBERSHIP_REQUIRED",
            Reason::TemporaryConversationExpired => "TEMPORARY_CONVERSATION_EXPIRED",
            Reason::InvalidMessagingTarget => "INVALID_MESSAGING_TARGET",
            Reason::MessageRejectedByApp => "MESSAGE_REJECTED_BY_APP",
            Reason::MessageOwnershipRequired => "MESSAGE_OWNERSHIP_REQUIRED",
            Reason::MessageNotFound => "MESSAGE_NOT_FOUND",
            Reason::MessageEditDisabled => "MESSAGE_EDIT_DISABLED",
            Reason::MessageRecallDisabled => "MESSAGE_RECALL_DISABLED",
            Reason::MessageUpdateRejectedByApp => "MESSAGE_UPDATE_REJECTED_BY_APP",
            Reason::BlockedByConv => "BLOCKED_BY_CONV",
            Reason::ConversationOperationUnauthorized => "CONVERSATION_OPERATION_UNAUTHORIZED",
            Reason::UnknownConversationRole => "UNKNOWN_CONVERSATION_ROLE",
            Reason::ConversationNeedOwner => "CONVERSATION_NEED_OWNER",
            Reason::Silenced => "SILENCED",
            Reason::TemporarilySilenced => "SILENCED",
            Reason::OwnerPromotionNotAllowed => "OWNER_PROMOTION_NOT_ALLOWED",
        }
    }
}

/// A unique value given twice (a follow of a user already followed).
pub const DUPLICATE_VALUE: i64 = 137;
/// `requestPasswordReset`/`requestEmailVerify` without an `email`, or with one no user has.
pub const EMAIL_MISSING: i64 = 204;
pub const EMAIL_NOT_FOUND: i64 = 205;
/// SMS flows without a `mobilePhoneNumber`, with one no user has, or with one not verified.
pub const PHONE_MISSING: i64 = 212;
pub const PHONE_NOT_FOUND: i64 = 213;
pub const PHONE_NOT_VERIFIED: i64 = 215;
/// An SMS code that was not sent, has expired or was used.
pub const INVALID_SMS_CODE: i64 = 603;
/// A mailed link (password reset, e-mail verification) whose token is unknown, used or expired: LeanCloud's
/// code for a verification code that does not hold.
pub const INVALID_MAIL_LINK: i64 = 603;
/// An e-mail address a mail cannot be sent to.
pub const INVALID_EMAIL: i64 = 125;
/// A second mail to the same address too soon (LeanCloud: 请不要往同一个邮件地址发送太多邮件。).
pub const TOO_MANY_EMAILS: i64 = 601;

#[cfg(test)]
mod tests {
    use super::*;
    use leancloud_im::protocol::codes as client;

    /// The client crate (what the functions act on) and the server name the same codes alike.
    #[test]
    fn the_codes_the_client_crate_knows_are_the_server_s() {
        assert_eq!(client::OBJECT_NOT_FOUND, OBJECT_NOT_FOUND);
        assert_eq!(client::CONVERSATION_NOT_FOUND, CONVERSATION_NOT_FOUND);
        assert_eq!(client::INVALID_MESSAGING_TARGET, INVALID_MESSAGING_TARGET);
        assert_eq!(
            client::SYSTEM_CONVERSATION_REQUIRED,
            SYSTEM_CONVERSATION_REQUIRED
        );
        assert_eq!(
            client::NORMAL_CONVERSATION_REQUIRED,
            NORMAL_CONVERSATION_REQUIRED
        );
        assert_eq!(
            client::TRANSIENT_CONVERSATION_REQUIRED,
            TRANSIENT_CONVERSATION_REQUIRED
        );
        assert_eq!(client::QUOTA_EXCEEDED, QUOTA_EXCEEDED);
        assert_eq!(
            leancloud_im::protocol::MAX_MESSAGE_BYTES,
            crate::protocol::limits::MAX_MESSAGE_BYTES
        );
        assert_eq!(
            leancloud_im::protocol::MAX_RECIPIENTS,
            crate::protocol::limits::MAX_RECIPIENTS
        );
    }

    #[test]
    fn a_reason_s_name_is_the_name_of_its_code_where_leancloud_has_one() {
        for (reason, code) in [
            (Reason::ConversationNotFound, 4303),
            (Reason::InvalidMessagingTarget, 4401),
            (Reason::SessionConflict, 4111),
            (Reason::MessageTooLarge, 413),
            (Reason::MessageOwnershipRequired, 4403),
            (Reason::MessageNotFound, 4404),
            (Reason::MessageEditDisabled, 4406),
            (Reason::MessageRecallDisabled, 4407),
            (Reason::MessageUpdateRejectedByApp, 4405),
            (Reason::TemporaryConversationExpired, 4323),
        ] {
            assert_eq!(code, reason.code(), "{}", reason.name());
        }
    }
}
