//! Users and sessions (issue 24) as the official SDKs call them: sign-up (`POST /1.1/users`, and `POST
//! /1.1/classes/_User` as the Python SDK does), login by username, e-mail or phone, `users/me`, token refresh,
//! password change, LeanCloud's error codes, lockout after failed logins, the `_User` write rule, ACL entries
//! naming a user, file deletion by its owner, and `POST /1.1/rtm/sign`.

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Key, TestApp};

/// A request with the app key and `token` as `X-LC-Session`.
async fn as_user(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut builder = app
        .request(Key::App, method, path)
        .header("X-LC-Session", token);
    if let Some(body) = body {
        builder = builder.body(body.to_string());
    }
    let response = builder.send().await.expect("sent");
    let status = response.status();
    (status, response.json().await.expect("json"))
}

async fn sign_up(app: &TestApp, body: Value) -> Value {
    let (status, user) = app
        .call(Key::App, Method::POST, "/1.1/users", Some(body))
        .await;
    assert_eq!(StatusCode::CREATED, status, "{user}");
    user
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("a string, got {v}"))
        .to_string()
}

#[tokio::test]
async fn a_sign_up_stores_an_argon2id_hash_and_answers_the_user_with_its_token() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .request(Key::App, Method::POST, "/1.1/users")
        .header("X-LC-Session", "a-previous-users-token")
        .body(json!({"username": "tester1", "password": "password1", "email": "t1@example.com", "gender": "f"}).to_string())
        .send()
        .await
        .expect("sent");
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().expect("ascii").to_string());
    let user: Value = response.json().await.expect("json");

    // Assert
    assert_eq!(StatusCode::CREATED, status);
    let id = s(&user["objectId"]);
    assert_eq!(Some(format!("/1.1/users/{id}")), location);
    assert_eq!(24, id.len());
    let token = s(&user["sessionToken"]);
    assert_eq!(25, token.len());
    assert!(token
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
    assert_eq!(user["createdAt"], user["updatedAt"]);
    let mut shown = user.as_object().expect("object").clone();
    for k in ["objectId", "sessionToken", "createdAt", "updatedAt"] {
        shown.remove(k);
    }
    assert_eq!(
        json!({"username": "tester1", "email": "t1@example.com", "gender": "f", "emailVerified": false, "mobilePhoneVerified": false}),
        Value::Object(shown),
        "every field sent but the password"
    );
    let stored = app.server.inspect().object("_User", &id).expect("stored");
    let hash = s(&stored["password"]);
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("password1"));
    // Nobody is shown the hash or the token, not even the master key.
    let (_, read) = app.get(&format!("/1.1/users/{id}")).await;
    assert_eq!(json!("tester1"), read["username"]);
    for private in ["password", "salt", "sessionToken"] {
        assert!(read.get(private).is_none(), "{private} in {read}");
    }
    let (_, listed) = app.get("/1.1/classes/_User").await;
    assert!(listed.to_string().contains("tester1"));
    assert!(!listed.to_string().contains(&token));
    assert!(!listed.to_string().contains("argon2"));
}

#[tokio::test]
async fn sign_ups_are_refused_with_leanclouds_codes() {
    let app = spawn_app().await;
    sign_up(&app, json!({"username": "taken", "password": "p", "email": "e@x.io", "mobilePhoneNumber": "+8613800000000"})).await;
    for (body, code) in [
        (json!({"password": "p"}), 200),
        (json!({"username": "u"}), 201),
        (json!({"username": "taken", "password": "p"}), 202),
        (
            json!({"username": "other", "password": "p", "email": "e@x.io"}),
            203,
        ),
        (
            json!({"username": "other", "password": "p", "mobilePhoneNumber": "+8613800000000"}),
            214,
        ),
        (json!({"username": "  ", "password": "p"}), 217),
        (json!({"username": "other", "password": ""}), 218),
    ] {
        let (status, answer) = app
            .call(Key::App, Method::POST, "/1.1/users", Some(body.clone()))
            .await;
        assert_eq!(
            (StatusCode::BAD_REQUEST, json!(code)),
            (status, answer["code"].clone()),
            "{body} → {answer}"
        );
    }
    // The Python SDK's sign-up: the storage API on `_User` behaves the same.
    let (status, answer) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/classes/_User?fetchWhenSave=false",
            Some(json!({"username": "taken", "password": "p"})),
        )
        .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(202)),
        (status, answer["code"].clone())
    );
    let (status, created) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/classes/_User",
            Some(json!({"username": "py", "password": "p"})),
        )
        .await;
    assert_eq!(StatusCode::CREATED, status);
    assert_eq!(25, s(&created["sessionToken"]).len());
}

#[tokio::test]
async fn login_by_username_email_or_phone_answers_the_same_token_and_wrong_passwords_lock_the_account(
) {
    // Arrange
    let app = spawn_app().await;
    let user = sign_up(&app, json!({"username": "ana", "password": "pw-1", "email": "ana@x.io", "mobilePhoneNumber": "+8613900000000"})).await;
    let token = s(&user["sessionToken"]);

    // Act
    let mut answers = Vec::new();
    for body in [
        json!({"username": "ana", "password": "pw-1"}),
        json!({"email": "ana@x.io", "password": "pw-1"}),
        json!({"mobilePhoneNumber": "+8613900000000", "password": "pw-1"}),
        json!({"username": "ana", "password": "pw-2"}),
        json!({"username": "nobody", "password": "pw-1"}),
    ] {
        answers.push(
            app.call(Key::App, Method::POST, "/1.1/login", Some(body))
                .await,
        );
    }
    for _ in 0..5 {
        app.call(
            Key::App,
            Method::POST,
            "/1.1/login",
            Some(json!({"username": "ana", "password": "wrong"})),
        )
        .await;
    }
    let locked = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/login",
            Some(json!({"username": "ana", "password": "pw-1"})),
        )
        .await;

    // Assert
    for (status, answer) in &answers[..3] {
        assert_eq!(StatusCode::OK, *status, "{answer}");
        assert_eq!(json!(token), answer["sessionToken"]);
        assert_eq!(user["objectId"], answer["objectId"]);
        assert!(answer.get("password").is_none());
    }
    assert_eq!(
        (
            StatusCode::BAD_REQUEST,
            json!({"code": 210, "error": "The username and password mismatch."})
        ),
        answers[3].clone()
    );
    assert_eq!(
        (
            StatusCode::BAD_REQUEST,
            json!({"code": 211, "error": "Could not find user."})
        ),
        answers[4].clone()
    );
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(219)),
        (locked.0, locked.1["code"].clone()),
        "six failures in 15 minutes lock the account, the right password too"
    );
}

#[tokio::test]
async fn the_session_token_names_the_user_until_it_is_refreshed_or_the_password_changes() {
    // Arrange
    let app = spawn_app().await;
    let user = sign_up(&app, json!({"username": "bo", "password": "old-pw"})).await;
    let other = sign_up(&app, json!({"username": "cy", "password": "pw"})).await;
    let id = s(&user["objectId"]);
    let first = s(&user["sessionToken"]);

    // Act
    let by_header = as_user(&app, &first, Method::GET, "/1.1/users/me", None).await;
    let by_query = app
        .call(
            Key::App,
            Method::GET,
            &format!("/1.1/users/me?session_token={first}"),
            None,
        )
        .await;
    let bad = as_user(&app, "nosuchtoken", Method::GET, "/1.1/users/me", None).await;
    let by_other = as_user(
        &app,
        &s(&other["sessionToken"]),
        Method::PUT,
        &format!("/1.1/users/{id}/refreshSessionToken"),
        None,
    )
    .await;
    let refreshed = as_user(
        &app,
        &first,
        Method::PUT,
        &format!("/1.1/users/{id}/refreshSessionToken"),
        None,
    )
    .await;
    let second = s(&refreshed.1["sessionToken"]);
    let old_token = as_user(&app, &first, Method::GET, "/1.1/users/me", None).await;
    let wrong_old = as_user(
        &app,
        &second,
        Method::PUT,
        &format!("/1.1/users/{id}/updatePassword"),
        Some(json!({"old_password": "nope", "new_password": "new-pw"})),
    )
    .await;
    let changed = as_user(
        &app,
        &second,
        Method::PUT,
        &format!("/1.1/users/{id}/updatePassword"),
        Some(json!({"old_password": "old-pw", "new_password": "new-pw"})),
    )
    .await;
    let login_old = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/login",
            Some(json!({"username": "bo", "password": "old-pw"})),
        )
        .await;
    let login_new = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/login",
            Some(json!({"username": "bo", "password": "new-pw"})),
        )
        .await;

    // Assert
    assert_eq!(StatusCode::OK, by_header.0);
    assert_eq!(
        (json!(id.clone()), json!(first.clone())),
        (
            by_header.1["objectId"].clone(),
            by_header.1["sessionToken"].clone()
        )
    );
    assert_eq!(by_header, by_query);
    assert_eq!(
        (
            StatusCode::BAD_REQUEST,
            json!({"code": 211, "error": "Could not find user."})
        ),
        bad
    );
    assert_eq!(
        (StatusCode::FORBIDDEN, json!(206)),
        (by_other.0, by_other.1["code"].clone())
    );
    assert_eq!(StatusCode::OK, refreshed.0);
    assert_ne!(first, second);
    assert_eq!(json!(id.clone()), refreshed.1["objectId"]);
    assert_eq!(
        StatusCode::BAD_REQUEST,
        old_token.0,
        "the old token is gone"
    );
    assert_eq!(json!(210), wrong_old.1["code"]);
    assert_eq!(StatusCode::OK, changed.0, "{:?}", changed.1);
    let third = s(&changed.1["sessionToken"]);
    assert_ne!(second, third, "a password change moves the token");
    assert_eq!(json!(210), login_old.1["code"]);
    assert_eq!(
        (StatusCode::OK, json!(third)),
        (login_new.0, login_new.1["sessionToken"].clone())
    );
}

#[tokio::test]
async fn acl_entries_naming_a_user_let_that_user_in_and_nobody_else() {
    // Arrange
    let app = spawn_app().await;
    let ana = sign_up(&app, json!({"username": "ana", "password": "p"})).await;
    let bob = sign_up(&app, json!({"username": "bob", "password": "p"})).await;
    let (ana_id, ana_token, bob_token) = (
        s(&ana["objectId"]),
        s(&ana["sessionToken"]),
        s(&bob["sessionToken"]),
    );
    let (_, note) = app
        .post(
            "/1.1/classes/Note",
            json!({"text": "ana's", "ACL": {ana_id.clone(): {"read": true, "write": true}}}),
        )
        .await;
    let path = format!("/1.1/classes/Note/{}", s(&note["objectId"]));

    // Act
    let by_ana = as_user(&app, &ana_token, Method::GET, &path, None).await;
    let by_bob = as_user(&app, &bob_token, Method::GET, &path, None).await;
    let by_app = app.call(Key::App, Method::GET, &path, None).await;
    let stale = as_user(&app, "stale-token", Method::GET, &path, None).await;
    let ana_finds = as_user(&app, &ana_token, Method::GET, "/1.1/classes/Note", None).await;
    let bob_finds = as_user(&app, &bob_token, Method::GET, "/1.1/classes/Note", None).await;
    let bob_writes = as_user(
        &app,
        &bob_token,
        Method::PUT,
        &path,
        Some(json!({"text": "bob's"})),
    )
    .await;
    let ana_writes = as_user(
        &app,
        &ana_token,
        Method::PUT,
        &path,
        Some(json!({"text": "still ana's"})),
    )
    .await;
    let bob_edits_ana = as_user(
        &app,
        &bob_token,
        Method::PUT,
        &format!("/1.1/users/{ana_id}"),
        Some(json!({"nickname": "hacked"})),
    )
    .await;
    let ana_edits_ana = as_user(
        &app,
        &ana_token,
        Method::PUT,
        &format!("/1.1/classes/_User/{ana_id}"),
        Some(json!({"nickname": "ana", "username": "bob"})),
    )
    .await;

    // Assert
    assert_eq!(json!("ana's"), by_ana.1["text"]);
    assert_eq!((StatusCode::OK, json!({})), by_bob);
    assert_eq!((StatusCode::OK, json!({})), by_app);
    assert_eq!(
        (StatusCode::OK, json!({})),
        stale,
        "a stale token is the app key"
    );
    assert_eq!(1, ana_finds.1["results"].as_array().expect("results").len());
    assert_eq!(json!([]), bob_finds.1["results"]);
    assert_eq!(StatusCode::FORBIDDEN, bob_writes.0);
    assert_eq!(StatusCode::OK, ana_writes.0);
    assert_eq!(
        (StatusCode::FORBIDDEN, json!(206)),
        (bob_edits_ana.0, bob_edits_ana.1["code"].clone())
    );
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(202)),
        (ana_edits_ana.0, ana_edits_ana.1["code"].clone()),
        "a username is unique on updates too"
    );
}

#[tokio::test]
async fn a_file_is_deleted_by_its_uploader_and_refused_to_other_users() {
    // Arrange
    let app = spawn_app().await;
    let ana = sign_up(&app, json!({"username": "ana", "password": "p"})).await;
    let bob = sign_up(&app, json!({"username": "bob", "password": "p"})).await;
    let (ana_token, bob_token) = (s(&ana["sessionToken"]), s(&bob["sessionToken"]));
    let (status, token) = as_user(
        &app,
        &ana_token,
        Method::POST,
        "/1.1/fileTokens",
        Some(json!({"name": "mine.txt"})),
    )
    .await;
    assert_eq!(StatusCode::OK, status, "{token}");
    let put = app
        .client
        .put(s(&token["upload_url"]))
        .body("ana's bytes")
        .send()
        .await
        .expect("put");
    assert_eq!(StatusCode::OK, put.status());
    let path = format!("/1.1/files/{}", s(&token["objectId"]));

    // Act
    let by_bob = as_user(&app, &bob_token, Method::DELETE, &path, None).await;
    let by_app = app.call(Key::App, Method::DELETE, &path, None).await;
    let (_, row) = app.get(&path).await;
    let by_ana = as_user(&app, &ana_token, Method::DELETE, &path, None).await;
    let body = app.client.get(s(&token["url"])).send().await.expect("get");

    // Assert
    assert_eq!(StatusCode::FORBIDDEN, by_bob.0);
    assert_eq!(StatusCode::FORBIDDEN, by_app.0);
    assert_eq!(ana["objectId"], row["metaData"]["owner"]);
    assert_eq!((StatusCode::OK, json!({})), by_ana);
    assert_eq!(
        StatusCode::NOT_FOUND,
        body.status(),
        "its bytes went with it"
    );
}

#[tokio::test]
async fn rtm_sign_answers_a_login_signature_for_the_users_client_id() {
    // Arrange
    let app = spawn_app().await;
    let ana = sign_up(&app, json!({"username": "ana", "password": "p"})).await;

    // Act
    let signed = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/rtm/sign",
            Some(json!({"session_token": ana["sessionToken"]})),
        )
        .await;
    let refused = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/rtm/sign",
            Some(json!({"session_token": "nosuchtoken"})),
        )
        .await;

    // Assert
    assert_eq!(StatusCode::OK, signed.0);
    let answer = signed.1;
    assert_eq!(ana["objectId"], answer["client_id"]);
    let ts = answer["timestamp"].as_i64().expect("a JSON number");
    let nonce = s(&answer["nonce"]);
    let expected = leancloud_server::realtime::signature::sign(
        leancloud_server::DEV_MASTER_KEY,
        &format!(
            "{}:{}::{ts}:{nonce}",
            leancloud_server::DEV_APP_ID,
            s(&ana["objectId"])
        ),
    );
    assert_eq!(json!(expected), answer["signature"]);
    assert_eq!(json!(211), refused.1["code"]);
}

#[tokio::test]
async fn an_anonymous_login_creates_a_user_each_time_and_a_known_auth_data_account_logs_in() {
    let app = spawn_app().await;
    let anon = sign_up(
        &app,
        json!({"authData": {"anonymous": {"id": "3d6a1a6e-0001"}}}),
    )
    .await;
    assert_eq!(25, s(&anon["username"]).len());
    assert_eq!(
        json!({"anonymous": {"id": "3d6a1a6e-0001"}}),
        anon["authData"]
    );
    let (status, again) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/users",
            Some(json!({"authData": {"anonymous": {"id": "3d6a1a6e-0001"}}})),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "the same account: logged in");
    assert_eq!(
        (anon["objectId"].clone(), anon["sessionToken"].clone()),
        (again["objectId"].clone(), again["sessionToken"].clone())
    );
    let (status, missing) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/users?failOnNotExist=true",
            Some(json!({"authData": {"weixin": {"openid": "o-unknown", "access_token": "t"}}})),
        )
        .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(211)),
        (status, missing["code"].clone())
    );
}

#[tokio::test]
async fn only_the_master_key_queries_users_and_anyone_gets_one_by_id() {
    let app = spawn_app().await;
    let ana = sign_up(
        &app,
        json!({"username": "ana", "password": "p", "email": "ana@x.io"}),
    )
    .await;
    let by_app = app.call(Key::App, Method::GET, "/1.1/users", None).await;
    let by_user = as_user(
        &app,
        &s(&ana["sessionToken"]),
        Method::GET,
        "/1.1/classes/_User",
        None,
    )
    .await;
    let (_, by_master) = app.get("/1.1/users").await;
    let one = app
        .call(
            Key::App,
            Method::GET,
            &format!("/1.1/users/{}", s(&ana["objectId"])),
            None,
        )
        .await;
    assert_eq!(
        (
            StatusCode::FORBIDDEN,
            json!({"code": 403, "error": "Forbidden to find by class permissions."})
        ),
        by_app
    );
    assert_eq!(StatusCode::FORBIDDEN, by_user.0);
    assert_eq!(1, by_master["results"].as_array().expect("results").len());
    assert_eq!(
        (StatusCode::OK, json!("ana")),
        (one.0, one.1["username"].clone())
    );
}
