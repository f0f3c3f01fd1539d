//! The e-mail and SMS endpoints of users over REST: the `request…` endpoints (checked, then refused: this server
//! sends neither) and the endpoints that take a code (`usersByMobilePhone`, `resetPasswordBySmsCode`,
//! `verifyMobilePhone`, `changePhoneNumber`, `verifySmsCode`), which no code can pass. The rules are
//! `crate::domain::verification`.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde_json::{Map, Value};

use crate::auth::Access;
use crate::domain::verification::{self, Request};
use crate::error::AppError;
use crate::routes::json_object;
use crate::state::AppState;

fn body_object(body: &Bytes) -> Result<Map<String, Value>, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
        Ok(Map::new())
    } else {
        json_object(body)
    }
}

async fn request(
    state: &AppState,
    access: &Access,
    what: Request,
    body: &Bytes,
) -> Result<Json<Value>, AppError> {
    let body = body_object(body)?;
    verification::request(&state.svc, access, what, &body).await?;
    Ok(Json(Value::Object(Map::new())))
}

macro_rules! request_route {
    ($name:ident, $what:expr, $doc:literal) => {
        #[doc = $doc]
        pub async fn $name(
            State(state): State<AppState>,
            access: Access,
            body: Bytes,
        ) -> Result<Json<Value>, AppError> {
            request(&state, &access, $what, &body).await
        }
    };
}

request_route!(
    password_reset,
    Request::PasswordResetEmail,
    "`POST /1.1/requestPasswordReset`."
);
request_route!(
    email_verify,
    Request::EmailVerify,
    "`POST /1.1/requestEmailVerify`."
);
request_route!(
    phone_verify,
    Request::PhoneVerify,
    "`POST /1.1/requestMobilePhoneVerify`."
);
request_route!(
    password_reset_sms,
    Request::PasswordResetSms,
    "`POST /1.1/requestPasswordResetBySmsCode`."
);
request_route!(
    login_sms,
    Request::LoginSms,
    "`POST /1.1/requestLoginSmsCode`."
);
request_route!(
    change_phone,
    Request::ChangePhone,
    "`POST /1.1/requestChangePhoneNumber`."
);
request_route!(sms_code, Request::SmsCode, "`POST /1.1/requestSmsCode`.");

/// Every endpoint that takes an SMS code (its body, if any, must still be JSON): 603.
pub async fn with_code(_access: Access, body: Bytes) -> Result<Json<Value>, AppError> {
    body_object(&body)?;
    Err(verification::invalid_code().into())
}
