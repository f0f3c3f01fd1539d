//! Every file in `events/` fed to its function's handler against a fresh server: the answer, and what the
//! server stored.

use std::collections::BTreeSet;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::SqsEvent;
use im_functions::ops::add_member::AddMemberOp;
use im_functions::ops::broadcast::BroadcastOp;
use im_functions::ops::create_conversation::CreateConversationOp;
use im_functions::ops::remove_member::RemoveMemberOp;
use im_functions::ops::send_message::SendMessageOp;
use im_functions::Trigger;
use leancloud_server::MessageKind;
use pretty_assertions::assert_eq;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::helpers::{events_dir, TestApp, INVALID_RECORD};

const FUNCTIONS: [&str; 8] = [
    "create-conversation",
    "add-member",
    "remove-member",
    "send-message",
    "broadcast",
    "recall-message",
    "mute-members",
    "block-members",
];
const TRIGGERS: [&str; 4] = ["http", "sqs", "schedule", "eventbridge"];

fn event_names() -> BTreeSet<String> {
    std::fs::read_dir(events_dir())
        .expect("events/")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect()
}

#[test]
fn every_function_has_a_sample_event_for_every_trigger_it_accepts() {
    let expected: BTreeSet<String> = [
        "create-conversation.http",
        "create-conversation.sqs",
        "add-member.http",
        "add-member.sqs",
        "remove-member.http",
        "remove-member.sqs",
        "send-message.http",
        "send-message.sqs",
        "send-message.schedule",
        "send-message.eventbridge",
        "broadcast.http",
        "broadcast.sqs",
        "broadcast.schedule",
        "broadcast.eventbridge",
        "recall-message.http",
        "recall-message.sqs",
        "mute-members.http",
        "mute-members.sqs",
        "block-members.http",
        "block-members.sqs",
    ]
    .iter()
    .map(|name| format!("{name}.json"))
    .collect();
    assert_eq!(expected, event_names());
    for name in event_names() {
        let (function, trigger) = name
            .trim_end_matches(".json")
            .rsplit_once('.')
            .expect("<function>.<trigger>.json");
        assert!(FUNCTIONS.contains(&function), "unknown function in {name}");
        assert!(TRIGGERS.contains(&trigger), "unknown trigger in {name}");
    }
}

/// Parse → serialize → reparse with the type each trigger arrives as, and check the trigger is detected.
#[test]
fn every_sample_event_round_trips_through_its_aws_event_type() {
    for name in event_names() {
        let text = std::fs::read_to_string(events_dir().join(&name)).expect("read");
        let trigger = name
            .trim_end_matches(".json")
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        match trigger.as_str() {
            "http" => roundtrip::<ApiGatewayV2httpRequest>(&name, &text),
            "sqs" => roundtrip::<SqsEvent>(&name, &text),
            "eventbridge" => roundtrip::<EventBridgeEvent<Value>>(&name, &text),
            _ => roundtrip::<Value>(&name, &text),
        }
        let value: Value = serde_json::from_str(&text).expect("JSON");
        let detected = Trigger::detect(value).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(
            trigger,
            detected.kind().as_str(),
            "{name} is detected as another trigger"
        );
    }
}

fn roundtrip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    name: &str,
    text: &str,
) {
    let parsed: T =
        serde_json::from_str(text).unwrap_or_else(|err| panic!("{name} does not parse: {err}"));
    let serialized = serde_json::to_string(&parsed).expect("serialize");
    let reparsed: T = serde_json::from_str(&serialized)
        .unwrap_or_else(|err| panic!("{name} does not reparse: {err}"));
    assert_eq!(parsed, reparsed, "{name} changed in a round trip");
}

#[tokio::test]
async fn create_conversation_http_event_creates_the_conversation() {
    // Arrange
    let app = TestApp::spawn().await;
    // Act
    let answer = app
        .http::<CreateConversationOp>(app.event("create-conversation.http.json"))
        .await;
    // Assert
    assert_eq!(201, answer.status, "{:?}", answer.body);
    let id = answer.body["objectId"].as_str().expect("objectId");
    assert!(answer.body["createdAt"].is_string());
    assert_eq!("Order #1042 support", answer.body["name"]);
    assert_eq!(serde_json::json!(["alice", "bob"]), answer.body["members"]);
    assert_eq!(1042, answer.body["attributes"]["order_id"]);
    let stored = app.inspect().conversation(id).expect("stored");
    assert_eq!("Order #1042 support", stored["name"]);
    assert_eq!(serde_json::json!(["alice", "bob"]), stored["m"]);
    assert_eq!("alice", stored["c"]);
    assert!(
        stored.to_string().contains("1042"),
        "custom attributes stored: {stored}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn create_conversation_sqs_event_reports_only_the_invalid_record() {
    let app = TestApp::spawn().await;
    let before = app.request_count();
    let failed = app
        .sqs::<CreateConversationOp>(app.event("create-conversation.sqs.json"))
        .await;
    assert_eq!(vec![INVALID_RECORD.to_owned()], failed);
    let created: Vec<_> = app.inspect().requests()[before..]
        .iter()
        .filter(|request| request.method == "POST")
        .map(|request| request.status)
        .collect();
    assert_eq!(vec![201, 201], created, "two conversations created");
    app.shutdown().await;
}

#[tokio::test]
async fn add_member_http_event_adds_the_members() {
    let app = TestApp::spawn().await;
    let answer = app
        .http::<AddMemberOp>(app.event("add-member.http.json"))
        .await;
    assert_eq!(200, answer.status, "{:?}", answer.body);
    assert_eq!(
        serde_json::json!(["carol", "dave"]),
        answer.body["client_ids"]
    );
    assert_eq!(app.normal.as_ref(), answer.body["conversation_id"]);
    let stored = app
        .inspect()
        .conversation(app.normal.as_ref())
        .expect("stored");
    assert_eq!(
        serde_json::json!(["alice", "bob", "carol", "dave"]),
        stored["m"]
    );
    app.shutdown().await;
}

fn members(app: &TestApp) -> Vec<String> {
    let stored = app
        .inspect()
        .conversation(app.normal.as_ref())
        .expect("stored");
    stored["m"]
        .as_array()
        .expect("m")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn remove_member_http_event_removes_the_member_and_ignores_one_that_never_was() {
    let app = TestApp::spawn().await;
    let answer = app
        .http::<RemoveMemberOp>(app.event("remove-member.http.json"))
        .await;
    assert_eq!(200, answer.status, "{:?}", answer.body);
    assert_eq!(serde_json::json!(["bob", "zoe"]), answer.body["client_ids"]);
    assert_eq!(app.normal.as_ref(), answer.body["conversation_id"]);
    assert_eq!(vec!["alice".to_owned()], members(&app));
    // The same call again (a client retry): nothing left to remove, still not an error.
    let again = app
        .http::<RemoveMemberOp>(app.event("remove-member.http.json"))
        .await;
    assert_eq!(200, again.status, "{:?}", again.body);
    assert_eq!(vec!["alice".to_owned()], members(&app));
    app.shutdown().await;
}

#[tokio::test]
async fn remove_member_sqs_event_removes_the_valid_records_members() {
    let app = TestApp::spawn().await;
    let failed = app
        .sqs::<RemoveMemberOp>(app.event("remove-member.sqs.json"))
        .await;
    assert_eq!(vec![INVALID_RECORD.to_owned()], failed);
    assert!(members(&app).is_empty(), "{:?}", members(&app));
    // Redelivered whole (SQS at-least-once): the valid records are harmless the second time.
    let failed = app
        .sqs::<RemoveMemberOp>(app.event("remove-member.sqs.json"))
        .await;
    assert_eq!(vec![INVALID_RECORD.to_owned()], failed);
    app.shutdown().await;
}

#[tokio::test]
async fn remove_member_answers_405_to_a_post_and_404_for_an_unknown_conversation() {
    let app = TestApp::spawn().await;
    let post = crate::helpers::http_event(
        "POST",
        &format!("/conversations/{}/members", app.normal.as_ref()),
        r#"{"client_ids": ["bob"]}"#,
    );
    let answer = app.http::<RemoveMemberOp>(post).await;
    answer.assert_error(405, "method_not_allowed");
    assert_eq!(Some("DELETE"), answer.header("allow"));
    let unknown = crate::helpers::http_event(
        "DELETE",
        "/conversations/000000000000000000000000/members",
        r#"{"client_ids": ["bob"]}"#,
    );
    app.http::<RemoveMemberOp>(unknown)
        .await
        .assert_error(404, "conversation_not_found");
    app.shutdown().await;
}

#[tokio::test]
async fn add_member_sqs_event_adds_the_valid_records_members() {
    let app = TestApp::spawn().await;
    let failed = app
        .sqs::<AddMemberOp>(app.event("add-member.sqs.json"))
        .await;
    assert_eq!(vec![INVALID_RECORD.to_owned()], failed);
    let stored = app
        .inspect()
        .conversation(app.normal.as_ref())
        .expect("stored");
    let members: BTreeSet<&str> = stored["m"]
        .as_array()
        .expect("m")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let expected: BTreeSet<&str> = ["alice", "bob", "erin", "grace", "heidi"]
        .into_iter()
        .collect();
    assert_eq!(expected, members);
    app.shutdown().await;
}

#[tokio::test]
async fn send_message_http_event_stores_the_message() {
    let app = TestApp::spawn().await;
    let answer = app
        .http::<SendMessageOp>(app.event("send-message.http.json"))
        .await;
    assert_eq!(200, answer.status, "{:?}", answer.body);
    let messages = app.inspect().messages(app.normal.as_ref());
    assert_eq!(1, messages.len());
    let stored = &messages[0];
    assert_eq!(
        Some(stored.msg_id.as_str()),
        answer.body["messages"][0]["msg_id"].as_str()
    );
    assert_eq!(
        Some(stored.timestamp),
        answer.body["messages"][0]["timestamp"].as_i64()
    );
    assert_eq!("alice", stored.from);
    assert_eq!("Your order #1042 has shipped 📦", stored.data);
    assert_eq!(MessageKind::Normal, stored.kind);
    assert!(!stored.transient);
    assert_eq!(
        Some("Order #1042 has shipped"),
        stored.push.as_ref().and_then(|p| p["alert"].as_str())
    );
    app.shutdown().await;
}

#[tokio::test]
async fn send_message_sqs_event_sends_the_valid_records() {
    let app = TestApp::spawn().await;
    let failed = app
        .sqs::<SendMessageOp>(app.event("send-message.sqs.json"))
        .await;
    assert_eq!(vec![INVALID_RECORD.to_owned()], failed);
    let normal = app.inspect().messages(app.normal.as_ref());
    assert_eq!(
        vec!["Thanks, got it!"],
        normal.iter().map(|m| m.data.as_str()).collect::<Vec<_>>()
    );
    let system = app.inspect().messages(app.system.as_ref());
    assert_eq!(1, system.len());
    assert_eq!(MessageKind::ToClients, system[0].kind);
    assert_eq!(vec!["alice", "bob"], system[0].recipients);
    let data: Value = serde_json::from_str(&system[0].data).expect("typed message is JSON");
    assert_eq!("Your invoice is ready", data["_lctext"]);
    app.shutdown().await;
}

#[tokio::test]
async fn send_message_schedule_events_send_the_message() {
    let app = TestApp::spawn().await;
    for (name, text) in [
        (
            "send-message.schedule.json",
            "Stand-up starts in 10 minutes",
        ),
        ("send-message.eventbridge.json", "Weekly review at 16:00"),
    ] {
        let result = app
            .invoke::<SendMessageOp>(app.event(name))
            .await
            .expect(name);
        let msg_id = result["messages"][0]["msg_id"]
            .as_str()
            .expect("msg_id")
            .to_owned();
        let stored = app.inspect().messages(app.normal.as_ref());
        let last = stored.last().expect("stored");
        assert_eq!(
            (msg_id.as_str(), text, "reminder-bot"),
            (last.msg_id.as_str(), last.data.as_str(), last.from.as_str()),
            "{name}"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn broadcast_http_event_through_a_function_url_with_a_base64_body_is_recorded() {
    let app = TestApp::spawn().await;
    let answer = app
        .http::<BroadcastOp>(app.event("broadcast.http.json"))
        .await;
    assert_eq!(200, answer.status, "{:?}", answer.body);
    let stored = app.inspect().messages(app.system.as_ref());
    assert_eq!(1, stored.len());
    assert_eq!(MessageKind::Broadcast, stored[0].kind);
    assert_eq!("announcer", stored[0].from);
    assert!(
        stored[0].data.contains("Maintenance tonight"),
        "{}",
        stored[0].data
    );
    assert_eq!(
        answer.body["msg_id"].as_str(),
        Some(stored[0].msg_id.as_str())
    );
    app.shutdown().await;
}

#[tokio::test]
async fn broadcast_sqs_and_schedule_events_are_recorded() {
    let app = TestApp::spawn().await;
    let failed = app
        .sqs::<BroadcastOp>(app.event("broadcast.sqs.json"))
        .await;
    assert_eq!(vec![INVALID_RECORD.to_owned()], failed);
    for name in ["broadcast.schedule.json", "broadcast.eventbridge.json"] {
        let result = app
            .invoke::<BroadcastOp>(app.event(name))
            .await
            .expect(name);
        assert!(result["msg_id"].is_string(), "{name}: {result}");
    }
    let mut texts: Vec<String> = app
        .inspect()
        .messages(app.system.as_ref())
        .into_iter()
        .filter(|m| m.kind == MessageKind::Broadcast)
        .map(|m| m.data)
        .collect();
    texts.sort();
    assert_eq!(
        vec![
            "Good morning! Today's digest is ready.",
            "New feature: message reactions",
            "Release notes are online",
            "Weekly newsletter is out",
        ],
        texts
    );
    app.shutdown().await;
}
