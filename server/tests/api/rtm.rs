use leancloud_server::MessageKind;
use pretty_assertions::assert_eq;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

async fn kinds(app: &TestApp) -> (String, String, String) {
    let normal = app
        .conversation(json!({"name": "n", "m": {"__op": "Add", "objects": ["alice", "bob"]}}))
        .await;
    let system = app.conversation(json!({"name": "sys", "sys": true})).await;
    let room = app.conversation(json!({"name": "tr", "tr": true})).await;
    (normal, system, room)
}

fn error(code: i64, text: &str) -> Value {
    json!({"code": code, "error": text})
}

#[tokio::test]
async fn a_send_is_stored_and_answered_with_its_id_and_timestamp() {
    let app = spawn_app().await;
    let (normal, _, room) = kinds(&app).await;
    let (status, sent) = app.send(json!({"from_peer": "alice", "conv_id": normal, "transient": false, "message": "hello"})).await;
    assert_eq!(StatusCode::OK, status);
    let keys: Vec<&String> = sent.as_object().expect("object").keys().collect();
    assert_eq!(vec!["msg-id", "timestamp"], keys);
    // The SDK's dict message: a JSON text inside the JSON body.
    let dict = r#"{"_lctype": -1, "_lctext": "\u4f60\u597d"}"#;
    let (status, _) = app
        .send(json!({"from_peer": "alice", "conv_id": room, "transient": true, "message": dict}))
        .await;
    assert_eq!(StatusCode::OK, status);

    let stored = app.server.inspect().messages(&normal);
    assert_eq!(1, stored.len());
    let m = &stored[0];
    assert_eq!(
        (sent["msg-id"].as_str(), sent["timestamp"].as_i64()),
        (Some(m.msg_id.as_str()), Some(m.timestamp))
    );
    assert_eq!(
        ("alice", "hello", MessageKind::Normal, false),
        (m.from.as_str(), m.data.as_str(), m.kind, m.transient)
    );
    assert_eq!(
        (Vec::<String>::new(), None, None),
        (m.recipients.clone(), m.push.clone(), m.valid_till)
    );
    let in_room = &app.server.inspect().messages(&room)[0];
    assert_eq!((dict, true), (in_room.data.as_str(), in_room.transient));
    // The conversation's last-message time follows.
    let conv = app
        .server
        .inspect()
        .conversation(&normal)
        .expect("conversation");
    let iso = chrono::DateTime::from_timestamp_millis(m.timestamp)
        .expect("valid")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    assert_eq!(json!({"__type": "Date", "iso": iso}), conv["lm"]);
    assert_eq!(2, app.server.inspect().all_messages().len());
}

#[tokio::test]
async fn transient_defaults_to_true_and_non_string_messages_are_stored_as_json_text() {
    let app = spawn_app().await;
    let (normal, _, _) = kinds(&app).await;
    let (status, _) = app
        .send(json!({"from_peer": "a", "conv_id": normal, "message": ["x", 1]}))
        .await;
    assert_eq!(StatusCode::OK, status);
    let m = &app.server.inspect().messages(&normal)[0];
    assert_eq!((true, r#"["x",1]"#), (m.transient, m.data.as_str()));
}

#[tokio::test]
async fn a_system_conversation_sends_to_chosen_clients_with_push_data() {
    let app = spawn_app().await;
    let (_, system, _) = kinds(&app).await;
    let push = json!({"alert": "新消息", "badge": "Increment"});
    let (status, _) = app
        .send(json!({"from_peer": "sys", "conv_id": system, "transient": false, "message": "hi", "to_peers": ["u1", "u2", "u1"], "push_data": push}))
        .await;
    assert_eq!(StatusCode::OK, status);
    let m = &app.server.inspect().messages(&system)[0];
    assert_eq!(MessageKind::ToClients, m.kind);
    assert_eq!(vec!["u1".to_string(), "u2".to_string()], m.recipients);
    assert_eq!(
        (Some(push), Some("push_data")),
        (m.push.clone(), m.push_field.as_deref())
    );
}

#[tokio::test]
async fn broadcasts_accept_push_or_push_data_and_store_valid_till() {
    let app = spawn_app().await;
    let (_, system, _) = kinds(&app).await;
    let now = chrono::Utc::now().timestamp_millis();
    let till = now + 3_600_000;
    let (status, sent) = app
        .post("/1.1/rtm/broadcast", json!({"from_peer": "sys", "conv_id": system, "message": "m1", "push_data": {"alert": "x"}, "valid_till": till}))
        .await;
    assert_eq!(StatusCode::OK, status, "{sent}");
    assert!(sent["msg-id"].is_string() && sent["timestamp"].is_i64());
    let (status, _) = app.post("/1.1/rtm/broadcast", json!({"from_peer": "sys", "conv_id": system, "message": "m2", "push": "{\"alert\":\"y\"}"})).await;
    assert_eq!(StatusCode::OK, status);

    let stored = app.server.inspect().messages(&system);
    assert_eq!(2, stored.len());
    assert_eq!(
        (MessageKind::Broadcast, Some(till)),
        (stored[0].kind, stored[0].valid_till)
    );
    assert_eq!(
        (Some(json!({"alert": "x"})), Some("push_data")),
        (stored[0].push.clone(), stored[0].push_field.as_deref())
    );
    assert_eq!(
        (Some(json!({"alert": "y"})), Some("push")),
        (stored[1].push.clone(), stored[1].push_field.as_deref())
    );
    // Without valid_till: one month ahead.
    let default_till = stored[1].valid_till.expect("valid_till");
    assert!(
        default_till > now + 27 * 86_400_000 && default_till <= now + 32 * 86_400_000,
        "{default_till}"
    );
}

#[tokio::test]
async fn every_validation_error_answers_leanclouds_code_and_stores_nothing() {
    let app = spawn_app().await;
    let (normal, system, _) = kinds(&app).await;
    let peers: Vec<String> = (0..21).map(|i| format!("u{i}")).collect();
    let big = "x".repeat(5 * 1024 - 10);
    let now = chrono::Utc::now().timestamp_millis();
    let cases = [
        (
            "/1.1/rtm/messages",
            json!({"from_peer": "a", "conv_id": "000000000000000000000000", "transient": false, "message": "m"}),
            error(4401, "INVALID_MESSAGING_TARGET"),
        ),
        (
            "/1.1/rtm/broadcast",
            json!({"from_peer": "a", "conv_id": "000000000000000000000000", "message": "m"}),
            error(4303, "CONVERSATION_NOT_FOUND"),
        ),
        (
            "/1.1/rtm/broadcast",
            json!({"from_peer": "a", "conv_id": normal, "message": "m"}),
            error(4313, "SYSTEM_CONVERSATION_REQUIRED"),
        ),
        (
            "/1.1/rtm/messages",
            json!({"from_peer": "a", "conv_id": normal, "transient": false, "message": "m", "to_peers": ["u1"]}),
            error(4313, "SYSTEM_CONVERSATION_REQUIRED"),
        ),
        (
            "/1.1/rtm/messages",
            json!({"from_peer": "a", "conv_id": system, "transient": false, "message": "m", "to_peers": peers}),
            error(1, "to_peers has 21 client ids; at most 20 are allowed."),
        ),
        (
            "/1.1/rtm/messages",
            json!({"from_peer": "a", "conv_id": normal, "transient": false, "message": big, "push_data": {"alert": "0123456789"}}),
            error(
                413,
                "Message is too large: 5132 bytes including push data; the limit is 5120.",
            ),
        ),
        (
            "/1.1/rtm/broadcast",
            json!({"from_peer": "a", "conv_id": system, "message": "x".repeat(5121)}),
            error(
                413,
                "Message is too large: 5121 bytes including push data; the limit is 5120.",
            ),
        ),
        (
            "/1.1/rtm/broadcast",
            json!({"from_peer": "a", "conv_id": system, "message": "m", "valid_till": now + 40 * 86_400_000_i64}),
            error(
                1,
                "valid_till must be a time (ms) in the future and at most one month ahead.",
            ),
        ),
        (
            "/1.1/rtm/broadcast",
            json!({"from_peer": "a", "conv_id": system, "message": "m", "valid_till": now - 1000}),
            error(
                1,
                "valid_till must be a time (ms) in the future and at most one month ahead.",
            ),
        ),
        (
            "/1.1/rtm/messages",
            json!({"conv_id": normal, "message": "m"}),
            error(1, "Missing required parameter from_peer."),
        ),
        (
            "/1.1/rtm/messages",
            json!({"from_peer": "a", "message": "m"}),
            error(1, "Missing required parameter conv_id."),
        ),
        (
            "/1.1/rtm/messages",
            json!({"from_peer": "a", "conv_id": normal}),
            error(1, "Missing required parameter message."),
        ),
        (
            "/1.1/rtm/messages",
            json!({"from_peer": "a", "conv_id": normal, "message": "m", "transient": 3}),
            error(1, "Parameter transient must be a boolean."),
        ),
    ];
    for (path, body, expected) in cases {
        let (status, got) = app.post(path, body.clone()).await;
        assert_eq!(
            (StatusCode::BAD_REQUEST, expected),
            (status, got),
            "{path} {}",
            body.to_string().chars().take(200).collect::<String>()
        );
    }
    assert!(app.server.inspect().all_messages().is_empty());
    // Exactly at the limits is fine.
    let twenty: Vec<String> = (0..20).map(|i| format!("u{i}")).collect();
    let (status, _) = app.send(json!({"from_peer": "a", "conv_id": system, "transient": false, "message": "x".repeat(5120), "to_peers": twenty})).await;
    assert_eq!(StatusCode::OK, status);
}

#[tokio::test]
async fn the_admin_messages_endpoint_shows_what_the_inspector_shows() {
    let app = spawn_app().await;
    let (_, system, _) = kinds(&app).await;
    app.post("/1.1/rtm/broadcast", json!({"from_peer": "s", "conv_id": system, "message": "b", "push": {"alert": "a"}, "valid_till": chrono::Utc::now().timestamp_millis() + 60_000})).await;
    let (status, body) = app
        .get(&format!("/__admin/messages?conv_id={system}"))
        .await;
    assert_eq!(StatusCode::OK, status);
    let expected =
        serde_json::to_value(app.server.inspect().messages(&system)).expect("serializable");
    assert_eq!(expected, body);
    assert_eq!(json!("broadcast"), body[0]["kind"]);
    let (status, _) = app
        .call(
            crate::helpers::Key::App,
            reqwest::Method::GET,
            "/__admin/messages",
            None,
        )
        .await;
    assert_eq!(StatusCode::FORBIDDEN, status);
}

/// `lm` follows the newest message, on both backends (SQLite batches it per commit, PostgreSQL sets it in the
/// send's own statement); a broadcast leaves it alone, and a later explicit `lm` is kept.
#[tokio::test]
async fn a_send_moves_the_conversations_lm_to_its_timestamp_and_a_broadcast_does_not() {
    let app = spawn_app().await;
    let conv = app.conversation(json!({"m": ["a", "b"]})).await;
    let lm = |app: &TestApp, id: &str| {
        app.server.inspect().conversation(id).expect("stored")["lm"]["iso"]
            .as_str()
            .map(str::to_owned)
    };
    let mut last = None;
    for text in ["1", "2", "3"] {
        let (status, sent) = app
            .send(json!({"from_peer": "a", "conv_id": conv, "message": text, "transient": false}))
            .await;
        assert_eq!(StatusCode::OK, status);
        let ts = sent["timestamp"].as_i64().expect("timestamp");
        let iso = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ts)
            .expect("time")
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        assert_eq!(Some(iso.clone()), lm(&app, &conv));
        last = Some(iso);
    }
    let system = app.conversation(json!({"sys": true})).await;
    app.send(json!({"from_peer": "s", "conv_id": system, "message": "to one", "to_peers": ["u"], "transient": false}))
        .await;
    let before = lm(&app, &system);
    assert!(before.is_some(), "a message to chosen clients sets lm");
    let (status, _) = app
        .post(
            "/1.1/rtm/broadcast",
            json!({"from_peer": "s", "conv_id": system, "message": "all"}),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    assert_eq!(before, lm(&app, &system), "a broadcast leaves lm");
    let future = "2099-01-01T00:00:00.000Z";
    app.put(
        &format!("/1.1/classes/_Conversation/{conv}"),
        json!({"lm": {"__type": "Date", "iso": future}}),
    )
    .await;
    app.send(json!({"from_peer": "a", "conv_id": conv, "message": "4", "transient": false}))
        .await;
    assert_eq!(
        Some(future.to_string()),
        lm(&app, &conv),
        "a later lm is kept"
    );
    assert!(last.is_some());
}
