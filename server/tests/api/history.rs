use pretty_assertions::assert_eq;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

async fn history(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/1.1/rtm/messages/history?{query}")).await;
    assert_eq!(StatusCode::OK, status, "{query}: {body}");
    body.as_array().expect("array").clone()
}

fn data(records: &[Value]) -> Vec<&str> {
    records.iter().filter_map(|r| r["data"].as_str()).collect()
}

/// Sends m0..m4 from alternating senders and returns (conv, the send answers).
async fn seeded(app: &TestApp) -> (String, Vec<Value>) {
    let conv = app
        .conversation(json!({"name": "h", "m": ["a", "b"]}))
        .await;
    let mut sent = Vec::new();
    for i in 0..5 {
        let from = if i % 2 == 0 { "a" } else { "b" };
        let (status, answer) = app.send(json!({"from_peer": from, "conv_id": conv, "transient": false, "message": format!("m{i}")})).await;
        assert_eq!(StatusCode::OK, status);
        sent.push(answer);
    }
    (conv, sent)
}

#[tokio::test]
async fn history_answers_leanclouds_record_shape_newest_first() {
    let app = spawn_app().await;
    let (conv, sent) = seeded(&app).await;
    let records = history(&app, &format!("convid={conv}")).await;
    assert_eq!(vec!["m4", "m3", "m2", "m1", "m0"], data(&records));
    assert_eq!(
        json!({"timestamp": sent[4]["timestamp"], "conv-id": conv, "data": "m4", "from": "a", "msg-id": sent[4]["msg-id"],
               "is-conv": true, "is-room": false, "to": conv, "bin": false, "from-ip": "127.0.0.1"}),
        records[0]
    );
}

#[tokio::test]
async fn history_params_limit_reverse_and_page() {
    let app = spawn_app().await;
    let (conv, sent) = seeded(&app).await;
    assert_eq!(
        vec!["m4", "m3"],
        data(&history(&app, &format!("convid={conv}&limit=2")).await)
    );
    assert_eq!(
        vec!["m0", "m1", "m2"],
        data(&history(&app, &format!("convid={conv}&limit=3&reversed=True")).await)
    );
    // Paging from a message: `timestamp` (or the SDK's deprecated `max_ts`) plus `msgid`, exclusive.
    let (ts, id) = (
        sent[2]["timestamp"].as_i64().expect("ts"),
        sent[2]["msg-id"].as_str().expect("id"),
    );
    assert_eq!(
        vec!["m1", "m0"],
        data(&history(&app, &format!("convid={conv}&timestamp={ts}&msgid={id}")).await)
    );
    assert_eq!(
        vec!["m1", "m0"],
        data(&history(&app, &format!("convid={conv}&max_ts={ts}&msgid={id}")).await)
    );
    assert_eq!(
        vec!["m2", "m1", "m0"],
        data(
            &history(
                &app,
                &format!("convid={conv}&max_ts={ts}&msgid={id}&include_start=true")
            )
            .await
        )
    );
    assert_eq!(
        vec!["m3", "m4"],
        data(
            &history(
                &app,
                &format!("convid={conv}&timestamp={ts}&msgid={id}&reversed=true")
            )
            .await
        )
    );
    // A stop point.
    let (till_ts, till_id) = (
        sent[1]["timestamp"].as_i64().expect("ts"),
        sent[1]["msg-id"].as_str().expect("id"),
    );
    assert_eq!(
        vec!["m4", "m3", "m2"],
        data(
            &history(
                &app,
                &format!("convid={conv}&till_timestamp={till_ts}&till_msgid={till_id}")
            )
            .await
        )
    );
    assert_eq!(
        vec!["m4", "m3", "m2", "m1"],
        data(
            &history(
                &app,
                &format!(
                    "convid={conv}&till_timestamp={till_ts}&till_msgid={till_id}&include_stop=true"
                )
            )
            .await
        )
    );
    // By sender, and across the app.
    assert_eq!(vec!["m3", "m1"], data(&history(&app, "from=b").await));
    assert_eq!(5, history(&app, "").await.len());
}

#[tokio::test]
async fn history_leaves_out_broadcasts_and_transient_messages_and_keys_system_messages_per_user() {
    let app = spawn_app().await;
    let (conv, _) = seeded(&app).await;
    let system = app.conversation(json!({"name": "sys", "sys": true})).await;
    app.send(json!({"from_peer": "a", "conv_id": conv, "transient": true, "message": "ephemeral"}))
        .await;
    app.post(
        "/1.1/rtm/broadcast",
        json!({"from_peer": "sys", "conv_id": system, "message": "to everyone"}),
    )
    .await;
    app.send(json!({"from_peer": "sys", "conv_id": system, "transient": false, "message": "just u1", "to_peers": ["u1"]})).await;

    assert_eq!(
        vec!["m4", "m3", "m2", "m1", "m0"],
        data(&history(&app, &format!("convid={conv}")).await)
    );
    assert_eq!(
        vec!["just u1"],
        data(&history(&app, &format!("convid={system}")).await)
    );
    // LeanCloud's per-user key of a system conversation: md5(convId + ":" + clientId).
    let key = {
        use md5::{Digest, Md5};
        hex::encode(Md5::digest(format!("{system}:u1").as_bytes()))
    };
    assert_eq!(
        vec!["just u1"],
        data(&history(&app, &format!("convid={key}")).await)
    );
    assert_eq!(6, history(&app, "").await.len());
    assert_eq!(8, app.server.inspect().all_messages().len());
}
