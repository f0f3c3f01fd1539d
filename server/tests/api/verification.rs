//! The e-mail and SMS endpoints of users: checked as LeanCloud checks them (missing or unknown e-mail and phone,
//! unverified phone, no session), then refused with 119 since this server sends neither; codes are always 603.

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Key};

#[tokio::test]
async fn requests_are_checked_then_refused_and_no_code_is_ever_valid() {
    // Arrange: ana has an e-mail and an unverified phone; bob's phone is marked verified by the master key
    let app = spawn_app().await;
    let (status, ana) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/users",
            Some(json!({"username": "ana", "password": "p", "email": "ana@example.com", "mobilePhoneNumber": "18600000001"})),
        )
        .await;
    assert_eq!(StatusCode::CREATED, status);
    let ana_token = ana["sessionToken"].as_str().expect("token").to_string();
    let (bob, _) = app.user("bob").await;
    let (status, _) = app
        .put(
            &format!("/1.1/users/{bob}"),
            json!({"mobilePhoneNumber": "18600000002", "mobilePhoneVerified": true}),
        )
        .await;
    assert_eq!(StatusCode::OK, status);

    let code = |r: &(StatusCode, Value)| (r.0, r.1["code"].as_i64().unwrap_or(0));
    let post = |path: &'static str, body: Value| {
        let app = &app;
        async move { app.call_as(None, Method::POST, path, Some(body)).await }
    };

    // Act and assert: e-mail
    let r = post("/1.1/requestPasswordReset", json!({})).await;
    assert_eq!((StatusCode::BAD_REQUEST, 204), code(&r));
    let r = post(
        "/1.1/requestPasswordReset",
        json!({"email": "nobody@example.com"}),
    )
    .await;
    assert_eq!((StatusCode::BAD_REQUEST, 205), code(&r));
    let r = post(
        "/1.1/requestPasswordReset",
        json!({"email": "ana@example.com"}),
    )
    .await;
    assert_eq!((StatusCode::BAD_REQUEST, 119), code(&r));
    assert!(
        r.1["error"]
            .as_str()
            .expect("message")
            .contains("sends no e-mail"),
        "{}",
        r.1
    );
    let r = post(
        "/1.1/requestEmailVerify",
        json!({"email": "ana@example.com"}),
    )
    .await;
    assert_eq!((StatusCode::BAD_REQUEST, 119), code(&r));

    // SMS: a phone no user has, an unverified phone, a verified one
    let r = post(
        "/1.1/requestMobilePhoneVerify",
        json!({"mobilePhoneNumber": "18699999999"}),
    )
    .await;
    assert_eq!((StatusCode::BAD_REQUEST, 213), code(&r));
    let r = post("/1.1/requestMobilePhoneVerify", json!({})).await;
    assert_eq!((StatusCode::BAD_REQUEST, 212), code(&r));
    let r = post(
        "/1.1/requestMobilePhoneVerify",
        json!({"mobilePhoneNumber": "18600000001"}),
    )
    .await;
    assert_eq!((StatusCode::BAD_REQUEST, 119), code(&r));
    let r = post(
        "/1.1/requestLoginSmsCode",
        json!({"mobilePhoneNumber": "18600000001"}),
    )
    .await;
    assert_eq!((StatusCode::BAD_REQUEST, 215), code(&r));
    let r = post(
        "/1.1/requestPasswordResetBySmsCode",
        json!({"mobilePhoneNumber": "18600000001"}),
    )
    .await;
    assert_eq!((StatusCode::BAD_REQUEST, 215), code(&r));
    let r = post(
        "/1.1/requestLoginSmsCode",
        json!({"mobilePhoneNumber": "18600000002"}),
    )
    .await;
    assert_eq!((StatusCode::BAD_REQUEST, 119), code(&r));
    let r = post(
        "/1.1/requestSmsCode",
        json!({"mobilePhoneNumber": "18600000003"}),
    )
    .await;
    assert_eq!((StatusCode::BAD_REQUEST, 119), code(&r));

    // A phone change: a session is needed, and a number nobody has
    let r = post(
        "/1.1/requestChangePhoneNumber",
        json!({"mobilePhoneNumber": "18600000009"}),
    )
    .await;
    assert_eq!((StatusCode::FORBIDDEN, 206), code(&r));
    let r = app
        .call_as(
            Some(&ana_token),
            Method::POST,
            "/1.1/requestChangePhoneNumber",
            Some(json!({"mobilePhoneNumber": "18600000001"})),
        )
        .await;
    assert_eq!((StatusCode::BAD_REQUEST, 214), code(&r));
    let r = app
        .call_as(
            Some(&ana_token),
            Method::POST,
            "/1.1/requestChangePhoneNumber",
            Some(json!({"mobilePhoneNumber": "18600000009"})),
        )
        .await;
    assert_eq!((StatusCode::BAD_REQUEST, 119), code(&r));

    // Codes: none is valid, whichever door
    for (method, path, body) in [
        (
            Method::POST,
            "/1.1/usersByMobilePhone",
            json!({"mobilePhoneNumber": "18600000001", "smsCode": "123456"}),
        ),
        (
            Method::PUT,
            "/1.1/resetPasswordBySmsCode/123456",
            json!({"password": "x", "mobilePhoneNumber": "18600000001"}),
        ),
        (Method::POST, "/1.1/verifyMobilePhone/123456", json!({})),
        (
            Method::POST,
            "/1.1/verifySmsCode/123456",
            json!({"mobilePhoneNumber": "18600000001"}),
        ),
        (
            Method::POST,
            "/1.1/changePhoneNumber",
            json!({"mobilePhoneNumber": "18600000009", "code": "123456"}),
        ),
        (
            Method::POST,
            "/1.1/login",
            json!({"mobilePhoneNumber": "18600000001", "smsCode": "123456"}),
        ),
    ] {
        let r = app
            .call_as(Some(&ana_token), method, path, Some(body))
            .await;
        assert_eq!((StatusCode::BAD_REQUEST, 603), code(&r), "{path}: {}", r.1);
    }

    // Nothing changed: ana still logs in with her password, her phone still unverified
    let (status, me) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/login",
            Some(json!({"username": "ana", "password": "p"})),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    assert_eq!(json!(false), me["mobilePhoneVerified"]);
}
