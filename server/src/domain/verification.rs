//! The e-mail and SMS flows of `_User` (password reset by mail or by SMS code, e-mail and phone verification,
//! login and sign-up by SMS code, phone number change). Every request is checked first as LeanCloud checks it
//! (204/205 for the e-mail, 212/213/214/215 for the phone, 206 without the user's session).
//!
//! Mail: with an SMTP server configured (`crate::mail`), a password reset or an e-mail verification mails the
//! user a link to this server's page (`/auth/reset-password`, `/auth/verify-email`) carrying a one-time token
//! (`crate::store::user_tokens`: 1 hour for a reset, 24 hours for a verification, one mail of each kind per
//! address and minute, 429 and 601 "Too many emails" sooner). The page posts the token back: a reset sets the
//! new password (argon2id), ends every session of the old one and clears the account's failed logins; both mark
//! the address verified, as the mail proved it is the user's. A token works once, only for the address it was
//! sent to. Without an SMTP server the requests are refused with 119 and a message that says why.
//!
//! SMS: this server sends none (`leancloud-users-files-push.md` §1.1: delivery is out of scope), so those
//! requests are refused with 119 after their checks, and every code offered is invalid (603). An app that
//! depends on them sees a clear error at once, never a request that seems to succeed and delivers nothing.

use std::time::Duration;

use serde_json::{Map, Value};

use super::users::{account_key, set_password, UserError};
use super::Services;
use crate::mail::{MailError, Mailer};

/// Every SMS code is refused with 603 (none is ever sent).
pub use super::users::invalid_sms_code as invalid_code;
use crate::protocol::codes;
use crate::store::user_tokens::{self, Kind, NewToken};
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

const NO_MAIL: &str = "This server sends no e-mail (no SMTP server is configured): password reset and e-mail verification by mail are not available. Please enable the option to verify user emails in application settings.";
const TOO_MANY: &str = "Too many emails to the same address: please wait a minute before asking again. 请不要往同一个邮件地址发送太多邮件。";
const NOT_SENT: &str =
    "The mail could not be sent: the mail server did not accept it. Please try again later.";
const INVALID_LINK: &str =
    "This link is invalid, was already used or has expired: please ask for a new one.";

/// How long a password-reset link works.
pub const RESET_TTL: Duration = Duration::from_secs(3600);
/// How long an e-mail verification link works.
pub const VERIFY_TTL: Duration = Duration::from_secs(24 * 3600);
/// One mail of each kind per address in this long.
pub const MAIL_SPACING: Duration = Duration::from_secs(60);
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
            let row = users::find_by(&svc.db, UserKey::Email, email.to_string())
                .await?
                .ok_or_else(|| {
                    refused(
                        codes::EMAIL_NOT_FOUND,
                        "A user with the specified email was not found.",
                    )
                })?;
            let Some(mailer) = &svc.mail else {
                return Err(refused(codes::MASTER_KEY_REQUIRED, NO_MAIL));
            };
            let kind = if what == Request::PasswordResetEmail {
                Kind::Reset
            } else {
                Kind::Verify
            };
            mail_link(svc, mailer, kind, &row.id, email).await
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

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Mails user `user_id` at `email` a link of `kind` with a new token (replacing the last one), unless the last
/// mail of that kind went out less than [`MAIL_SPACING`] ago. A mail that could not be sent takes its token back.
async fn mail_link(
    svc: &Services,
    mailer: &Mailer,
    kind: Kind,
    user_id: &str,
    email: &str,
) -> Result<(), UserError> {
    let token = hex::encode(rand::random::<[u8; 32]>());
    let now = now_ms();
    let ttl = match kind {
        Kind::Reset => RESET_TTL,
        Kind::Verify => VERIFY_TTL,
    };
    let issued = user_tokens::issue(
        &svc.db,
        NewToken {
            kind,
            user_id: user_id.to_string(),
            email: email.to_string(),
            token: token.clone(),
            now_ms: now,
            expires_ms: now + millis(ttl),
            not_after_ms: now - millis(MAIL_SPACING),
        },
    )
    .await?;
    if !issued {
        return Err(UserError::TooSoon {
            code: codes::TOO_MANY_EMAILS,
            message: TOO_MANY.to_string(),
            retry_after_secs: MAIL_SPACING.as_secs(),
        });
    }
    let (subject, text) = match kind {
        Kind::Reset => (
            "Reset your password",
            format!(
                "Someone asked to reset the password of the account with this e-mail address.\n\n\
                 To choose a new password, open this link within an hour:\n\n{}\n\n\
                 If it was not you, ignore this mail: your password stays as it is.\n",
                mailer.link("reset-password", &token)
            ),
        ),
        Kind::Verify => (
            "Verify your e-mail address",
            format!(
                "Please confirm that this e-mail address is yours by opening this link within a day:\n\n{}\n\n\
                 If you did not sign up, ignore this mail.\n",
                mailer.link("verify-email", &token)
            ),
        ),
    };
    if let Err(e) = mailer.send(email, subject, text).await {
        user_tokens::withdraw(&svc.db, kind, user_id.to_string(), &token).await?;
        return Err(match e {
            MailError::Recipient => refused(codes::INVALID_EMAIL, "The email address was invalid."),
            MailError::NotSent => UserError::Unavailable(NOT_SENT.to_string()),
        });
    }
    Ok(())
}

/// Takes a mailed token of `kind`: the user it was sent to, while the user still has the address it went to.
async fn take_link(
    svc: &Services,
    kind: Kind,
    token: &str,
) -> Result<crate::store::objects::Row, UserError> {
    let invalid = || refused(codes::INVALID_MAIL_LINK, INVALID_LINK);
    let taken = user_tokens::take(&svc.db, kind, token, now_ms())
        .await?
        .ok_or_else(invalid)?;
    let row = users::get(&svc.db, taken.user_id)
        .await?
        .ok_or_else(invalid)?;
    if row.data.get("email").and_then(Value::as_str) != Some(taken.email.as_str()) {
        return Err(invalid());
    }
    Ok(row)
}

/// The page of a reset link posts its token and the new password: the password is set (argon2id), every
/// session of the old one ends, the account's failed logins are forgotten and the address counts as verified.
pub async fn reset_password(
    svc: &Services,
    token: &str,
    password: String,
) -> Result<(), UserError> {
    if password.is_empty() {
        return Err(refused(codes::PASSWORD_BLANK, "Password is blank."));
    }
    let row = take_link(svc, Kind::Reset, token).await?;
    let row = set_password(
        svc,
        &row.id,
        password,
        vec![("emailVerified".into(), Some(Value::Bool(true)))],
    )
    .await?;
    for key in UserKey::UNIQUE {
        if let Some(value) = row.data.get(key.field()).and_then(Value::as_str) {
            svc.logins.clear(&account_key(key, value));
        }
    }
    Ok(())
}

/// The page of a verification link posts its token: the address it was sent to is marked verified.
pub async fn verify_email(svc: &Services, token: &str) -> Result<(), UserError> {
    let row = take_link(svc, Kind::Verify, token).await?;
    users::set_fields(
        &svc.db,
        row.id,
        vec![("emailVerified".into(), Some(Value::Bool(true)))],
    )
    .await?;
    Ok(())
}

fn phone(body: &Map<String, Value>) -> Result<&str, UserError> {
    non_empty(body, "mobilePhoneNumber").ok_or_else(|| {
        refused(
            codes::PHONE_MISSING,
            "The mobile phone number is missing, and must be specified.",
        )
    })
}
