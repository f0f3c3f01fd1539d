//! One notification policy for conversation changes, whatever door they come in by (issue 21): members added
//! or removed, and attributes changed, through the REST storage API (what the `add-member` and
//! `remove-member` functions call), the console and a WebSocket command, give the online clients the same
//! `conv` pushes — `joined`/`left` to the clients concerned, `members_joined`/`members_left` to the others,
//! `updated` to the members — on every instance.

use leancloud_server::realtime::proto::{CommandType, ConvCommand, GenericCommand, OpType};
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::console::sign_in;
use crate::helpers::{spawn_app, TestApp};
use crate::realtime::{connect, Ws, QUIET, WAIT};

/// A `conv` push as the SDK reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    op: OpType,
    cid: String,
    m: Vec<String>,
    init_by: Option<String>,
    attr: Option<Value>,
}

pub fn seen(op: OpType, cid: &str, m: &[&str], init_by: Option<&str>) -> Seen {
    Seen {
        op,
        cid: cid.to_string(),
        m: m.iter().map(|s| s.to_string()).collect(),
        init_by: init_by.map(str::to_owned),
        attr: None,
    }
}

/// Every `conv` push `ws` receives until nothing more comes for a moment (waiting up to `WAIT` for `n`).
pub async fn conv_pushes(ws: &mut Ws, n: usize) -> Vec<Seen> {
    let mut frames: Vec<GenericCommand> = std::mem::take(&mut ws.pushes);
    let deadline = tokio::time::Instant::now() + WAIT;
    while frames.len() < n && tokio::time::Instant::now() < deadline {
        match ws.next(WAIT).await {
            Some(f) => frames.push(f),
            None => break,
        }
    }
    while let Some(f) = ws.next(QUIET).await {
        frames.push(f);
    }
    frames
        .into_iter()
        .filter(|f| f.command() == Some(CommandType::Conv))
        .map(|f| {
            let conv: ConvCommand = f.conv_message.clone().unwrap_or_default();
            let mut m = conv.m.clone();
            m.sort();
            Seen {
                op: f.operation().expect("an op"),
                cid: conv.cid.unwrap_or_default(),
                m,
                init_by: conv.init_by,
                attr: conv
                    .attr
                    .map(|a| serde_json::from_str(&a.data).expect("attr is JSON")),
            }
        })
        .collect()
}

pub async fn online(app: &TestApp, peer: &str) -> Ws {
    let mut ws = connect(app, "lc.protobuf2.3").await;
    ws.login(peer).await;
    ws
}

async fn members(app: &TestApp, conv: &str) -> Value {
    let (status, body) = app.get(&format!("/1.1/classes/_Conversation/{conv}")).await;
    assert_eq!(StatusCode::OK, status, "{body}");
    body["m"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_added_and_removed_through_rest_are_told_to_the_online_clients() {
    // Arrange: alice and bob in a conversation, everyone online.
    let app = spawn_app().await;
    let conv = app
        .conversation(json!({"m": ["alice", "bob"], "name": "team"}))
        .await;
    let mut alice = online(&app, "alice").await;
    let mut bob = online(&app, "bob").await;
    let mut carol = online(&app, "carol").await;

    // Act: what the add-member function sends.
    let path = format!("/1.1/classes/_Conversation/{conv}");
    let (status, body) = app
        .put(
            &path,
            json!({"m": {"__op": "AddUnique", "objects": ["carol"]}}),
        )
        .await;

    // Assert
    assert_eq!(StatusCode::OK, status, "{body}");
    assert_eq!(
        vec![seen(OpType::Joined, &conv, &[], None)],
        conv_pushes(&mut carol, 1).await
    );
    let joined = vec![seen(OpType::MembersJoined, &conv, &["carol"], None)];
    assert_eq!(joined, conv_pushes(&mut alice, 1).await);
    assert_eq!(joined, conv_pushes(&mut bob, 1).await);

    // Act: what the remove-member function sends.
    let (status, body) = app
        .put(&path, json!({"m": {"__op": "Remove", "objects": ["bob"]}}))
        .await;

    // Assert
    assert_eq!(StatusCode::OK, status, "{body}");
    assert_eq!(
        vec![seen(OpType::Left, &conv, &[], None)],
        conv_pushes(&mut bob, 1).await
    );
    let left = vec![seen(OpType::MembersLeft, &conv, &["bob"], None)];
    assert_eq!(left, conv_pushes(&mut alice, 1).await);
    assert_eq!(left, conv_pushes(&mut carol, 1).await);
    assert_eq!(json!(["alice", "carol"]), members(&app, &conv).await);

    // Act: an attribute changed through REST.
    let (status, body) = app.put(&path, json!({"name": "renamed"})).await;

    // Assert: the members hear `updated`; bob, gone, hears nothing.
    assert_eq!(StatusCode::OK, status, "{body}");
    let updated = vec![Seen {
        attr: Some(json!({"name": "renamed"})),
        ..seen(OpType::Updated, &conv, &[], None)
    }];
    assert_eq!(updated, conv_pushes(&mut alice, 1).await);
    assert_eq!(updated, conv_pushes(&mut carol, 1).await);
    assert_eq!(Vec::<Seen>::new(), conv_pushes(&mut bob, 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_started_through_rest_is_joined_by_its_online_members() {
    // Arrange
    let app = spawn_app().await;
    let mut bob = online(&app, "bob").await;
    let mut alice = online(&app, "alice").await;

    // Act: started on alice's behalf (`c`), as the create-conversation function does.
    let conv = app
        .conversation(json!({"m": ["alice", "bob"], "c": "alice", "name": "dm"}))
        .await;
    let room = app.conversation(json!({"m": ["bob"], "tr": true})).await;

    // Assert: bob is told he joined, by alice; alice, who started it, is not; a chat room tells nobody.
    assert_eq!(
        vec![seen(OpType::Joined, &conv, &[], Some("alice"))],
        conv_pushes(&mut bob, 1).await
    );
    assert_eq!(Vec::<Seen>::new(), conv_pushes(&mut alice, 0).await);
    assert!(!room.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_and_a_websocket_command_notify_as_rest_does() {
    // Arrange
    let app = spawn_app().await;
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let mut alice = online(&app, "alice").await;
    let mut bob = online(&app, "bob").await;
    let mut carol = online(&app, "carol").await;
    let console = sign_in(&app).await;

    // Act: the console adds carol.
    let (status, body) = console
        .post(
            &format!("/conversations/{conv}/members"),
            json!({"clientIds": ["carol"]}),
        )
        .await;

    // Assert
    assert_eq!(StatusCode::OK, status, "{body}");
    assert_eq!(
        vec![seen(OpType::Joined, &conv, &[], None)],
        conv_pushes(&mut carol, 1).await
    );
    let joined = vec![seen(OpType::MembersJoined, &conv, &["carol"], None)];
    assert_eq!(joined, conv_pushes(&mut alice, 1).await);
    assert_eq!(joined, conv_pushes(&mut bob, 1).await);

    // Act: the console removes bob.
    let (status, body) = console
        .write(
            Method::DELETE,
            &format!("/conversations/{conv}/members/bob"),
            None,
        )
        .await;

    // Assert
    assert_eq!(StatusCode::OK, status, "{body}");
    assert_eq!(
        vec![seen(OpType::Left, &conv, &[], None)],
        conv_pushes(&mut bob, 1).await
    );
    let left = vec![seen(OpType::MembersLeft, &conv, &["bob"], None)];
    assert_eq!(left, conv_pushes(&mut alice, 1).await);
    assert_eq!(left, conv_pushes(&mut carol, 1).await);

    // Act: alice kicks carol with a WebSocket command.
    let reply = alice
        .request(GenericCommand {
            conv_message: Some(ConvCommand {
                cid: Some(conv.clone()),
                m: vec!["carol".into()],
                ..Default::default()
            }),
            ..GenericCommand::new(CommandType::Conv, Some(OpType::Remove))
        })
        .await;

    // Assert: the same pushes, made by alice (who also hears that carol left, as every remaining member).
    assert_eq!(Some(OpType::Removed), reply.operation(), "{reply:?}");
    assert_eq!(
        vec![seen(OpType::Left, &conv, &[], Some("alice"))],
        conv_pushes(&mut carol, 1).await
    );
    assert_eq!(
        vec![seen(OpType::MembersLeft, &conv, &["carol"], Some("alice"))],
        conv_pushes(&mut alice, 1).await
    );
    assert_eq!(json!(["alice"]), members(&app, &conv).await);
}
