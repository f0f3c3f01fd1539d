//! `recall-message`, `mute-members` and `block-members` fed their sample events against a fresh server, what the
//! server holds afterwards (read back with the client crate's 1.2 requests, `leancloud_im::rtm2`), and the 1.2
//! requests of the client crate against the server.

use im_functions::ops::block_members::BlockMembersOp;
use im_functions::ops::mute_members::MuteMembersOp;
use im_functions::ops::recall_message::RecallMessageOp;
use leancloud_im::rtm2::{
    AddMembers, Block, Blocked, CheckOnline, Create, EditMessage, LiftPermanentSilence,
    LiftTemporarySilence, Members, PermanentSilence, PermanentlySilenced, RecallMessage, Scope,
    TemporarySilence, Unblock,
};
use leancloud_im::{ClientId, ConversationId, Error, MessageId, SendMessage};
use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::helpers::{http_event, TestApp, INVALID_RECORD};

fn ids(names: &[&str]) -> Vec<ClientId> {
    names
        .iter()
        .map(|name| ClientId::parse(*name).expect("id"))
        .collect()
}

/// Send as alice into the normal conversation; the message id and timestamp.
async fn send(app: &TestApp, text: &str) -> (MessageId, i64) {
    let sent = app
        .app
        .client
        .execute(&SendMessage::new(&app.normal, &ids(&["alice"])[0], text))
        .await
        .expect("sent");
    (
        sent.msg_id.expect("msg-id"),
        sent.timestamp.expect("timestamp"),
    )
}

fn stored_data(app: &TestApp, msg_id: &MessageId) -> String {
    app.inspect()
        .messages(app.normal.as_ref())
        .into_iter()
        .find(|m| m.msg_id == msg_id.as_str())
        .map(|m| m.data)
        .unwrap_or_default()
}

/// A sample event with the message placeholders replaced too (`events/README.md`).
fn with_messages(event: Value, first: &(MessageId, i64), second: &(MessageId, i64)) -> Value {
    let text = event
        .to_string()
        .replace("SECOND_MESSAGE_ID", second.0.as_str())
        .replace("SECOND_MESSAGE_TIMESTAMP", &second.1.to_string())
        .replace("MESSAGE_ID", first.0.as_str())
        .replace("MESSAGE_TIMESTAMP", &first.1.to_string());
    serde_json::from_str(&text).expect("JSON")
}

#[tokio::test]
async fn recall_message_events_recall_and_edit_through_the_1_2_api() {
    let app = TestApp::spawn().await;
    let first = send(&app, "Where is my order?").await;
    let second = send(&app, "Thanks, got it!").await;
    let event = with_messages(app.event("recall-message.http.json"), &first, &second);
    let answer = app.http::<RecallMessageOp>(event.clone()).await;
    assert_eq!(200, answer.status, "{:?}", answer.body);
    assert_eq!(
        serde_json::json!({"conversation_id": app.normal.as_ref(), "msg_id": first.0.as_str(),
            "timestamp": first.1, "recalled": true}),
        answer.body
    );
    assert_eq!(r#"{"_lctype":-127}"#, stored_data(&app, &first.0));
    // A repeated recall (a client retry) changes nothing and is not an error.
    assert_eq!(200, app.http::<RecallMessageOp>(event).await.status);

    let event = with_messages(app.event("recall-message.sqs.json"), &first, &second);
    assert_eq!(
        vec![INVALID_RECORD.to_owned()],
        app.sqs::<RecallMessageOp>(event).await
    );
    assert_eq!("Thanks, got it! (edited)", stored_data(&app, &second.0));

    let unknown = http_event(
        "POST",
        &format!(
            "/conversations/{}/messages/{}/recall",
            app.normal.as_ref(),
            second.0
        ),
        &format!(
            r#"{{"from_client": "alice", "timestamp": {}}}"#,
            second.1 + 1
        ),
    );
    app.http::<RecallMessageOp>(unknown)
        .await
        .assert_error(404, "message_not_found");
    app.shutdown().await;
}

async fn listed(app: &TestApp, blocked: bool) -> Vec<ClientId> {
    let client = &app.app.client;
    let page = if blocked {
        client
            .execute(&Blocked::new(Scope::Conversation, &app.normal).limit(100))
            .await
    } else {
        client
            .execute(&PermanentlySilenced::new(Scope::Conversation, &app.normal).limit(100))
            .await
    };
    page.expect("listed").client_ids
}

#[tokio::test]
async fn mute_members_events_silence_and_lift() {
    let app = TestApp::spawn().await;
    let answer = app
        .http::<MuteMembersOp>(app.event("mute-members.http.json"))
        .await;
    assert_eq!(200, answer.status, "{:?}", answer.body);
    assert_eq!(3600, answer.body["ttl"]);
    assert_eq!(
        vec![INVALID_RECORD.to_owned()],
        app.sqs::<MuteMembersOp>(app.event("mute-members.sqs.json"))
            .await
    );
    assert_eq!(ids(&["erin"]), listed(&app, false).await);
    let lift = http_event(
        "DELETE",
        &format!("/conversations/{}/silenced", app.normal.as_ref()),
        r#"{"client_ids": ["erin"]}"#,
    );
    assert_eq!(200, app.http::<MuteMembersOp>(lift).await.status);
    assert!(listed(&app, false).await.is_empty());
    app.shutdown().await;
}

#[tokio::test]
async fn block_members_events_block_remove_and_unblock() {
    let app = TestApp::spawn().await;
    let client = &app.app.client;
    client
        .execute(&AddMembers::new(
            &app.normal,
            ids(&["carol", "grace", "heidi"]),
        ))
        .await
        .expect("added");
    let answer = app
        .http::<BlockMembersOp>(app.event("block-members.http.json"))
        .await;
    assert_eq!(200, answer.status, "{:?}", answer.body);
    assert_eq!(ids(&["heidi"]), listed(&app, true).await);
    assert_eq!(
        vec![INVALID_RECORD.to_owned()],
        app.sqs::<BlockMembersOp>(app.event("block-members.sqs.json"))
            .await
    );
    assert_eq!(ids(&["grace"]), listed(&app, true).await);
    let members = client
        .execute(&Members::new(Scope::Conversation, &app.normal))
        .await
        .expect("members");
    assert_eq!(ids(&["alice", "bob", "carol"]), members);
    app.shutdown().await;
}

/// The client crate's 1.2 requests, answered by the server: created, silenced, blocked, checked, recalled.
#[tokio::test]
async fn the_1_2_requests_of_the_client_crate_are_understood_by_the_server() {
    let app = TestApp::spawn().await;
    let client = &app.app.client;
    let created = client
        .execute(
            &Create::new(Scope::Conversation)
                .name("1.2")
                .members(ids(&["olga", "pat", "quinn"])),
        )
        .await
        .expect("created");
    let conv: ConversationId = created.id;
    let scope = Scope::Conversation;
    client
        .execute(&TemporarySilence::new(
            scope,
            &conv,
            ids(&["pat"])[0].clone(),
            60,
        ))
        .await
        .expect("silenced for a minute");
    client
        .execute(&LiftTemporarySilence::new(
            scope,
            &conv,
            ids(&["pat"])[0].clone(),
        ))
        .await
        .expect("lifted");
    client
        .execute(&PermanentSilence::new(scope, &conv, ids(&["pat", "quinn"])))
        .await
        .expect("silenced");
    let page = client
        .execute(&PermanentlySilenced::new(scope, &conv).limit(1))
        .await
        .expect("first page");
    assert_eq!(1, page.client_ids.len());
    assert!(page.next.is_some(), "a second page: {page:?}");
    client
        .execute(&LiftPermanentSilence::new(
            scope,
            &conv,
            ids(&["pat", "quinn"]),
        ))
        .await
        .expect("lifted");
    client
        .execute(&Block::new(scope, &conv, ids(&["quinn"])))
        .await
        .expect("blocked");
    let err = client
        .execute(&AddMembers::new(&conv, ids(&["quinn"])))
        .await
        .expect_err("a blocked client cannot be added");
    assert_eq!(Some(4548), err.api_code(), "{err}");
    client
        .execute(&Unblock::new(scope, &conv, ids(&["quinn"])))
        .await
        .expect("unblocked");
    client
        .execute(&AddMembers::new(&conv, ids(&["quinn"])))
        .await
        .expect("added again");
    let online = client
        .execute(&CheckOnline::new(ids(&["olga", "nobody"])))
        .await
        .expect("checked");
    assert!(online.is_empty(), "no client is connected: {online:?}");

    let sent = client
        .execute(&SendMessage::new(&conv, &ids(&["olga"])[0], "v1"))
        .await
        .expect("sent");
    let (msg_id, ts) = (sent.msg_id.expect("id"), sent.timestamp.expect("ts"));
    client
        .execute(&EditMessage::new(
            scope,
            &conv,
            &msg_id,
            &ids(&["olga"])[0],
            ts,
            "v2",
        ))
        .await
        .expect("edited");
    let err = client
        .execute(&RecallMessage::new(
            scope,
            &conv,
            &msg_id,
            &ids(&["pat"])[0],
            ts,
        ))
        .await
        .expect_err("not pat's message");
    assert!(matches!(&err, Error::Api(api) if api.code == 4403), "{err}");
    client
        .execute(&RecallMessage::new(
            scope,
            &conv,
            &msg_id,
            &ids(&["olga"])[0],
            ts,
        ))
        .await
        .expect("recalled");
    app.shutdown().await;
}
