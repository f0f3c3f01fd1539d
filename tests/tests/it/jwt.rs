//! H1: in JWT mode (`ApiAuth=JWT`) any holder of a valid token could broadcast to every user, send as any
//! `from_client` and add anyone to any conversation: the functions never read `requestContext.authorizer`.
//! Now a JWT caller acts only as its identity claim (`sub`) unless the token carries the admin scope, and is
//! answered 403 before anything reaches LeanCloud. Before the fix every refused case below answered 200.

use im_functions::ops::add_member::AddMemberOp;
use im_functions::ops::broadcast::BroadcastOp;
use im_functions::ops::create_conversation::CreateConversationOp;
use im_functions::ops::remove_member::RemoveMemberOp;
use im_functions::ops::schedules::SchedulesOp;
use im_functions::ops::send_message::SendMessageOp;
use im_functions::Operation;
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use crate::helpers::{http_event, TestApp};

const ADMIN_SCOPE: &str = "leancloud-im/admin";

/// `event` as API Gateway's JWT authorizer passes it: the token's claims and scopes.
fn with_jwt(mut event: Value, sub: Option<&str>, scopes: &[&str]) -> Value {
    let mut claims = json!({"iss": "https://issuer.example", "aud": "app"});
    if let Some(sub) = sub {
        claims["sub"] = json!(sub);
    }
    event["requestContext"]["authorizer"] = json!({"jwt": {"claims": claims, "scopes": scopes}});
    event
}

async fn status<Op: Operation>(app: &TestApp, event: Value) -> (i64, Value) {
    let answer = app.http::<Op>(event).await;
    (answer.status, answer.body)
}

/// The LeanCloud calls the server received.
fn calls(app: &TestApp) -> usize {
    app.request_count()
}

#[tokio::test]
async fn h1_a_jwt_caller_acts_only_as_itself_unless_it_has_the_admin_scope() {
    let app = TestApp::spawn().await;
    let normal = app.normal.to_string();
    let system = app.system.to_string();
    let messages = format!("/conversations/{normal}/messages");
    let members = format!("/conversations/{normal}/members");
    let broadcasts = format!("/conversations/{system}/broadcasts");
    let user = |method: &str, path: &str, body: Value| {
        with_jwt(
            http_event(method, path, &body.to_string()),
            Some("alice"),
            &[],
        )
    };

    let before = calls(&app);
    let refused = [
        (
            status::<SendMessageOp>(
                &app,
                user(
                    "POST",
                    &messages,
                    json!({"from_client": "bob", "message": "I am bob"}),
                ),
            )
            .await,
            "`from_client` is \"bob\"",
        ),
        (
            status::<BroadcastOp>(
                &app,
                user(
                    "POST",
                    &broadcasts,
                    json!({"from_client": "system", "message": "to all"}),
                ),
            )
            .await,
            "needs the admin scope",
        ),
        (
            status::<AddMemberOp>(
                &app,
                user("POST", &members, json!({"client_ids": ["mallory"]})),
            )
            .await,
            "`client_ids` is \"mallory\"",
        ),
        (
            status::<AddMemberOp>(
                &app,
                user(
                    "POST",
                    &members,
                    json!({"client_ids": ["alice", "mallory"]}),
                ),
            )
            .await,
            "names 2 clients",
        ),
        (
            status::<RemoveMemberOp>(
                &app,
                user("DELETE", &members, json!({"client_ids": ["bob"]})),
            )
            .await,
            "`client_ids` is \"bob\"",
        ),
        (
            status::<CreateConversationOp>(
                &app,
                user(
                    "POST",
                    "/conversations",
                    json!({"name": "x", "members": ["bob"]}),
                ),
            )
            .await,
            "must include the caller",
        ),
        (
            status::<CreateConversationOp>(
                &app,
                user(
                    "POST",
                    "/conversations",
                    json!({"members": ["alice"], "system": true}),
                ),
            )
            .await,
            "system conversation needs the admin scope",
        ),
        (
            status::<SchedulesOp>(&app, user("GET", "/schedules", json!({}))).await,
            "needs the admin scope",
        ),
        (
            // A token without the identity claim can do nothing.
            status::<SendMessageOp>(
                &app,
                with_jwt(
                    http_event(
                        "POST",
                        &messages,
                        r#"{"from_client":"alice","message":"hi"}"#,
                    ),
                    None,
                    &[],
                ),
            )
            .await,
            "no `sub` claim",
        ),
    ];
    for ((status, body), expected) in &refused {
        assert_eq!(403, *status, "{body}");
        assert_eq!("forbidden", body["error"]["code"], "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(expected),
            "{message:?} should say {expected:?}"
        );
    }
    assert_eq!(before, calls(&app), "nothing refused reached LeanCloud");

    // What a user may do: act as itself.
    let (code, body) = status::<SendMessageOp>(
        &app,
        user(
            "POST",
            &messages,
            json!({"from_client": "alice", "message": "hi"}),
        ),
    )
    .await;
    assert_eq!(200, code, "{body}");
    let (code, body) = status::<AddMemberOp>(
        &app,
        user("POST", &members, json!({"client_ids": ["alice"]})),
    )
    .await;
    assert_eq!(200, code, "{body}");
    let (code, body) = status::<RemoveMemberOp>(
        &app,
        user("DELETE", &members, json!({"client_ids": ["alice"]})),
    )
    .await;
    assert_eq!(200, code, "{body}");
    let (code, body) = status::<CreateConversationOp>(
        &app,
        user(
            "POST",
            "/conversations",
            json!({"members": ["alice", "bob"]}),
        ),
    )
    .await;
    assert_eq!(201, code, "{body}");

    // The admin scope lifts the binding; IAM (no JWT) is trusted as before.
    let admin = with_jwt(
        http_event(
            "POST",
            &broadcasts,
            r#"{"from_client":"system","message":"to all"}"#,
        ),
        Some("ops"),
        &[ADMIN_SCOPE],
    );
    let (code, body) = status::<BroadcastOp>(&app, admin).await;
    assert_eq!(200, code, "{body}");
    let iam = http_event(
        "POST",
        &messages,
        r#"{"from_client":"bob","message":"from the backend"}"#,
    );
    let (code, body) = status::<SendMessageOp>(&app, iam).await;
    assert_eq!(200, code, "{body}");
    app.shutdown().await;
}
