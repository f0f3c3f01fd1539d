//! The e-mail and SMS flows of `_User` (password reset by mail or by SMS code, e-mail and phone verification,
//! login and sign-up by SMS code, phone number change). This server sends no e-mail and no SMS
//! (`leancloud-users-files-push.md` §1.1: delivery is out of scope), so it answers them as LeanCloud does when
//! the app has not enabled them: every request is checked first as LeanCloud checks it (204/205 for the
//! e-mail, 212/213/214/215 for the phone, 206 without the user's session), then refused with 119 and a message
//! that says why; and since no code is ever sent, every code offered is invalid (603). An app that depends on
//! these flows sees a clear error at once, never a request that seems to succeed and delivers nothing.

use serde_json::{Map, Value};

use super::users::UserError;
use super::Services;

/// Every SMS code is refused with 603 (none is ever sent).
pub use super::users::invalid_sms_code as invalid_code;
use crate::protocol::codes;
use crate::store::users::{self, UserKey};
use crate::store::Caller;

/// What a client asks to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `POST /1.1/requestPasswordReset {"email"}`.
    PasswordResetEmail,
    /// `POST /1.1/requestEmailVerify {"email"}`.
    EmailVerify,
    /// `POST /1.1/requestMobilePhoneVerify {"mobilePhoneNumber"}`.
    PhoneVerify,
    /// `POST /1.1/requestPasswordResetBySmsCode {"mobilePhoneNumber"}`.
    PasswordResetSms,
    /// `POST /1.1/requestLoginSmsCode {"mobilePhoneNumber"}`.
    LoginSms,
    /// `POST /1.1/requestChangePhoneNumber {"mobilePhoneNumber"}` (the signed-in user's new number).
    ChangePhone,
    /// `POST /1.1/requestSmsCode {"mobilePhoneNumber"}` (an app's own SMS code, no user involved).
    SmsCode,
}

const NO_MAIL: &str = "This server sends no e-mail: password reset and e-mail verification by mail are not available. Please enable the option to verify user emails in application settings.";
const NO_SMS: &str =
    "This server sends no SMS: SMS codes are not available (SMS sending is not enabled for this app).";

fn refused(code: i64, message: &str) -> UserError {
    UserError::Refused {
        code,
        message: message.to_string(),
    }
}

fn non_empty<'a>(body: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    body.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn verified(row: &crate::store::objects::Row, field: &str) -> bool {
    row.data.get(field) == Some(&Value::Bool(true))
}

/// Checks a request as LeanCloud would before sending anything, then refuses it: nothing is sent here.
pub async fn request(
    svc: &Services,
    caller: &Caller,
    what: Request,
    body: &Map<String, Value>,
) -> Result<(), UserError> {
    match what {
        Request::PasswordResetEmail | Request::EmailVerify => {
            let email = non_empty(body, "email").ok_or_else(|| {
                refused(
                    codes::EMAIL_MISSING,
                    "The email is missing, and must be specified.",
                )
            })?;
            if users::find_by(&svc.db, UserKey::Email, email.to_string())
                .await?
                .is_none()
            {
                return Err(refused(
                    codes::EMAIL_NOT_FOUND,
                    "A user with the specified email was not found.",
                ));
            }
            Err(refused(codes::MASTER_KEY_REQUIRED, NO_MAIL))
        }
        Request::PhoneVerify | Request::PasswordResetSms | Request::LoginSms => {
            let phone = phone(body)?;
            let row = users::find_by(&svc.db, UserKey::Phone, phone.to_string())
                .await?
                .ok_or_else(|| {
                    refused(
                        codes::PHONE_NOT_FOUND,
                        "A user with the specified mobile phone number was not found.",
                    )
                })?;
            if what != Request::PhoneVerify && !verified(&row, "mobilePhoneVerified") {
                return Err(refused(
                    codes::PHONE_NOT_VERIFIED,
                    "The mobile phone number was not verified.",
                ));
            }
            Err(refused(codes::MASTER_KEY_REQUIRED, NO_SMS))
        }
        Request::ChangePhone => {
            let phone = phone(body)?;
            if users::find_by(&svc.db, UserKey::Phone, phone.to_string())
                .await?
                .is_some()
            {
                return Err(refused(
                    codes::PHONE_TAKEN,
                    "Mobile phone number has already been taken.",
                ));
            }
            // The user's own session; the master key names no user, and nothing would be sent anyway.
            if caller.user_id().is_none() && !caller.is_master() {
                return Err(UserError::SessionMissing);
            }
            Err(refused(codes::MASTER_KEY_REQUIRED, NO_SMS))
        }
        Request::SmsCode => {
            phone(body)?;
            Err(refused(codes::MASTER_KEY_REQUIRED, NO_SMS))
        }
    }
}

fn phone(body: &Map<String, Value>) -> Result<&str, UserError> {
    non_empty(body, "mobilePhoneNumber").ok_or_else(|| {
        refused(
            codes::PHONE_MISSING,
            "The mobile phone number is missing, and must be specified.",
        )
    })
}
