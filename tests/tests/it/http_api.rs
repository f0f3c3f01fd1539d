//! The HTTP contract beyond the sample events: function-URL and API Gateway payloads alike, stages, options.

use im_functions::ops::add_member::AddMemberOp;
use im_functions::ops::broadcast::BroadcastOp;
use im_functions::ops::create_conversation::CreateConversationOp;
use im_functions::ops::send_message::SendMessageOp;
use leancloud_server::MessageKind;
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use crate::helpers::{http_event, TestApp};

/// The sample API Gateway event turned into what a function URL sends: no route key, no path parameters.
fn as_function_url(mut event: Value) -> Value {
    let object = event.as_object_mut().expect("object");
    object.remove("pathParameters");
    object.insert("routeKey".into(), json!("$default"));
    event["requestContext"]["routeKey"] = json!("$default");
    event["requestContext"]["domainName"] = json!("abc123.lambda-url.us-east-1.on.aws");
    event
}

#[tokio::test]
async fn function_url_and_api_gateway_payloads_give_the_same_answer() {
    let app = TestApp::spawn().await;
    let gateway = app.event("add-member.http.json");
    let function_url = as_function_url(gateway.clone());
    assert_eq!(200, app.http::<AddMemberOp>(gateway).await.status);
    let answer = app.http::<AddMemberOp>(function_url).await;
    assert_eq!(200, answer.status, "{:?}", answer.body);
    assert_eq!(json!(["carol", "dave"]), answer.body["client_ids"]);
    app.shutdown().await;
}

#[tokio::test]
async fn a_named_api_gateway_stage_prefix_is_ignored_when_routing() {
    let app = TestApp::spawn().await;
    let path = format!("/prod/conversations/{}/messages", app.normal);
    let mut event = http_event(
        "POST",
        &path,
        r#"{"from_client": "alice", "message": "via stage"}"#,
    );
    event["requestContext"]["stage"] = json!("prod");
    let answer = app.http::<SendMessageOp>(event).await;
    assert_eq!(200, answer.status, "{:?}", answer.body);
    app.shutdown().await;
}

#[tokio::test]
async fn create_conversation_accepts_every_documented_field() {
    let app = TestApp::spawn().await;
    let body = json!({
        "name": "Flash sale", "members": ["alice"], "creator": "shop", "system": true,
        "transient": false, "unique": false, "attributes": {"campaign": "bf-2026", "tier": 2}
    });
    let answer = app
        .http::<CreateConversationOp>(http_event("POST", "/conversations", &body.to_string()))
        .await;
    assert_eq!(201, answer.status, "{:?}", answer.body);
    assert_eq!(true, answer.body["system"]);
    assert_eq!("bf-2026", answer.body["attributes"]["campaign"]);
    let stored = app
        .inspect()
        .conversation(answer.body["objectId"].as_str().expect("id"))
        .expect("stored");
    assert_eq!(Some(true), stored["sys"].as_bool(), "{stored}");
    app.shutdown().await;
}

#[tokio::test]
async fn an_empty_create_body_object_creates_an_unnamed_conversation() {
    let app = TestApp::spawn().await;
    let answer = app
        .http::<CreateConversationOp>(http_event("POST", "/conversations", "{}"))
        .await;
    assert_eq!(201, answer.status, "{:?}", answer.body);
    app.shutdown().await;
}

#[tokio::test]
async fn send_message_to_chosen_clients_of_a_system_conversation_and_transient_messages() {
    let app = TestApp::spawn().await;
    let to_clients: Vec<String> = (0..20).map(|i| format!("user-{i}")).collect();
    let body = json!({"from_client": "notifier", "message": {"_lctype": -1, "_lctext": "hi"}, "to_clients": to_clients});
    let path = format!("/conversations/{}/messages", app.system);
    let answer = app
        .http::<SendMessageOp>(http_event("POST", &path, &body.to_string()))
        .await;
    assert_eq!(
        200, answer.status,
        "20 recipients are allowed: {:?}",
        answer.body
    );
    let stored = app.inspect().messages(app.system.as_ref());
    assert_eq!(MessageKind::ToClients, stored[0].kind);
    assert_eq!(to_clients, stored[0].recipients);

    let body = json!({"from_client": "alice", "message": "typing…", "transient": true});
    let path = format!("/conversations/{}/messages", app.normal);
    assert_eq!(
        200,
        app.http::<SendMessageOp>(http_event("POST", &path, &body.to_string()))
            .await
            .status
    );
    let stored = app.inspect().messages(app.normal.as_ref());
    assert!(stored.last().expect("stored").transient);
    app.shutdown().await;
}

#[tokio::test]
async fn broadcast_valid_till_accepts_epoch_ms_and_rfc3339() {
    let app = TestApp::spawn().await;
    let in_a_day = now_ms() + 24 * 3600 * 1000;
    let path = format!("/conversations/{}/broadcasts", app.system);
    for valid_till in [json!(in_a_day), json!(rfc3339(in_a_day))] {
        let body = json!({"from_client": "announcer", "message": "sale", "valid_till": valid_till});
        let answer = app
            .http::<BroadcastOp>(http_event("POST", &path, &body.to_string()))
            .await;
        assert_eq!(200, answer.status, "{valid_till}: {:?}", answer.body);
        let stored = app.inspect().messages(app.system.as_ref());
        assert_eq!(
            Some(in_a_day),
            stored.last().expect("stored").valid_till,
            "{valid_till}"
        );
    }
    app.shutdown().await;
}

fn now_ms() -> i64 {
    // Whole seconds, so the RFC 3339 form names the same instant.
    chrono::Utc::now().timestamp() * 1000
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// U3: a request API Gateway received 29.5 s ago (a long cold start) is past the gateway's patience: the
/// function answers 503 and sends nothing, instead of sending after the caller was already told 503 (and
/// sending again when it retried). Before the fix the message went out and the answer was 200.
#[tokio::test]
async fn u3_a_request_the_gateway_has_given_up_on_sends_nothing() {
    let app = TestApp::spawn().await;
    let path = format!("/conversations/{}/messages", app.normal);
    let mut event = http_event(
        "POST",
        &path,
        r#"{"from_client": "alice", "message": "late"}"#,
    );
    event["requestContext"]["timeEpoch"] = json!(now_ms() - 29_500);
    let before = app.request_count();
    let answer = app.http::<SendMessageOp>(event).await;
    assert_eq!(503, answer.status, "{:?}", answer.body);
    assert_eq!(before, app.request_count(), "nothing reached LeanCloud");
    app.shutdown().await;
}
