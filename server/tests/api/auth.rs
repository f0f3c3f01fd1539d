use leancloud_server::{DEV_APP_ID, DEV_APP_KEY, DEV_MASTER_KEY};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{sign, spawn_app};

type Headers<'a> = Vec<(&'a str, String)>;

async fn status_with(headers: &[(&str, String)], path: &str) -> (StatusCode, Value) {
    let app = spawn_app().await;
    let mut builder = app.client.get(app.url(path));
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let response = builder.send().await.expect("sent");
    let status = response.status();
    (status, response.json().await.expect("json"))
}

#[tokio::test]
async fn wrong_or_missing_credentials_get_leanclouds_401_body() {
    let id = ("X-LC-Id", DEV_APP_ID.to_string());
    let cases: Vec<(&str, Headers)> = vec![
        ("no headers", vec![]),
        ("id only", vec![id.clone()]),
        (
            "wrong id",
            vec![
                ("X-LC-Id", "other".into()),
                ("X-LC-Key", format!("{DEV_MASTER_KEY},master")),
            ],
        ),
        ("wrong key", vec![id.clone(), ("X-LC-Key", "nope".into())]),
        (
            "app key marked master",
            vec![id.clone(), ("X-LC-Key", format!("{DEV_APP_KEY},master"))],
        ),
        (
            "bad signature",
            vec![
                id.clone(),
                (
                    "X-LC-Sign",
                    "00000000000000000000000000000000,1795629353982,master".into(),
                ),
            ],
        ),
        (
            "upper-case signature",
            vec![
                id.clone(),
                (
                    "X-LC-Sign",
                    sign("1795629353982", DEV_MASTER_KEY, true).to_uppercase(),
                ),
            ],
        ),
        (
            "signature without timestamp",
            vec![id.clone(), ("X-LC-Sign", "abc".into())],
        ),
        (
            "app-key signature marked master",
            vec![
                id.clone(),
                (
                    "X-LC-Sign",
                    format!("{},master", sign("1", DEV_APP_KEY, false)),
                ),
            ],
        ),
    ];
    for (case, headers) in cases {
        let (status, body) = status_with(&headers, "/1.1/classes/Thing").await;
        assert_eq!(
            (
                StatusCode::UNAUTHORIZED,
                json!({"code": 401, "error": "Unauthorized."})
            ),
            (status, body),
            "case {case}"
        );
    }
}

#[tokio::test]
async fn master_and_app_keys_are_accepted_by_key_and_by_signature() {
    let id = ("X-LC-Id", DEV_APP_ID.to_string());
    let cases: Vec<(&str, Headers, StatusCode)> = vec![
        (
            "X-LC-Key master",
            vec![id.clone(), ("X-LC-Key", format!("{DEV_MASTER_KEY},master"))],
            StatusCode::OK,
        ),
        (
            "X-LC-Sign master",
            vec![
                id.clone(),
                ("X-LC-Sign", sign("1795629353982", DEV_MASTER_KEY, true)),
            ],
            StatusCode::OK,
        ),
        // The app key passes authentication but `_Conversation`'s class permissions keep it to the master key.
        (
            "X-LC-Key app",
            vec![id.clone(), ("X-LC-Key", DEV_APP_KEY.into())],
            StatusCode::FORBIDDEN,
        ),
        (
            "X-LC-Sign app",
            vec![
                id.clone(),
                ("X-LC-Sign", sign("1795629355310", DEV_APP_KEY, false)),
            ],
            StatusCode::FORBIDDEN,
        ),
    ];
    for (case, headers, expected) in cases {
        let (status, body) = status_with(&headers, "/1.1/classes/_Conversation").await;
        assert_eq!(expected, status, "case {case}: {body}");
        if expected == StatusCode::OK {
            assert_eq!(json!({"results": []}), body, "case {case}");
        } else {
            assert_eq!(
                json!({"code": 403, "error": "Forbidden to find by class permissions."}),
                body,
                "case {case}"
            );
        }
    }
}

#[tokio::test]
async fn master_only_operations_refuse_the_app_key() {
    let app = spawn_app().await;
    let refused = json!({"code": 119, "error": "The operation requires the master key."});
    let cases = [
        (
            reqwest::Method::POST,
            "/1.1/rtm/messages",
            Some(json!({"from_peer": "a", "conv_id": "x", "transient": false, "message": "m"})),
        ),
        (
            reqwest::Method::POST,
            "/1.1/rtm/broadcast",
            Some(json!({"from_peer": "a", "conv_id": "x", "message": "m"})),
        ),
        (reqwest::Method::GET, "/1.1/rtm/messages/history", None),
        (
            reqwest::Method::PUT,
            "/__admin/faults",
            Some(json!({"rate": 1.0, "kinds": ["5xx"]})),
        ),
    ];
    for (method, path, body) in cases {
        let (status, got) = app
            .call(crate::helpers::Key::App, method.clone(), path, body)
            .await;
        assert_eq!(
            (StatusCode::FORBIDDEN, refused.clone()),
            (status, got),
            "{method} {path}"
        );
    }
    assert!(app.server.inspect().all_messages().is_empty());
}

#[tokio::test]
async fn a_doubled_leading_slash_is_routed_like_a_single_one() {
    let app = spawn_app().await;
    let conv = app.conversation(json!({"name": "c"})).await;
    let (status, body) = app
        .post(
            "//1.1/rtm/messages",
            json!({"from_peer": "a", "conv_id": conv, "transient": false, "message": "b"}),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{body}");
    assert_eq!(1, app.server.inspect().messages(&conv).len());
}
