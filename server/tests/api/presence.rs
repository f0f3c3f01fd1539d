//! Anonymous login and presence (issue 22): `session/open` without `peerId` gets a server-chosen id back in
//! `opened`; `session/query` (`client.ping(ids)`) answers which of the ids are online, on any instance.

use leancloud_server::realtime::proto::{CommandType, GenericCommand, OpType, SessionCommand};
use leancloud_server::DEV_APP_ID;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_instances};
use crate::notify::online;
use crate::realtime::{connect, direct, reopen, session_token, WAIT};

fn ping(ids: &[&str]) -> GenericCommand {
    GenericCommand {
        session_message: Some(SessionCommand {
            session_peer_ids: ids.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Session, Some(OpType::Query))
    }
}

fn online_ids(reply: &GenericCommand) -> Vec<String> {
    assert_eq!(
        (Some(CommandType::Session), Some(OpType::QueryResult)),
        (reply.command(), reply.operation()),
        "{reply:?}"
    );
    reply
        .session_message
        .as_ref()
        .expect("sessionMessage")
        .online_session_peer_ids
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_without_peer_id_gets_a_server_chosen_id_that_works_as_any_other() {
    // Arrange
    let app = spawn_app().await;
    let mut anon = connect(&app, "lc.protobuf2.3").await;

    // Act: two anonymous logins.
    let open = GenericCommand {
        app_id: Some(DEV_APP_ID.into()),
        session_message: Some(SessionCommand {
            ua: Some("test".into()),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Session, Some(OpType::Open))
    };
    let opened = anon.request(open.clone()).await;
    let mut other = connect(&app, "lc.protobuf2.3").await;
    let opened_too = other.request(open).await;

    // Assert: each gets its own id (and a session token for it), which then sends and receives like any.
    assert_eq!(Some(OpType::Opened), opened.operation(), "{opened:?}");
    let id = opened.peer_id.clone().expect("the chosen id in opened");
    let id_too = opened_too.peer_id.clone().expect("the chosen id in opened");
    assert!(!id.is_empty() && id.len() <= 64, "{id}");
    assert_ne!(id, id_too);
    let token = session_token(&opened);
    let conv = app.conversation(json!({"m": [id.clone(), "bob"]})).await;
    let mut bob = online(&app, "bob").await;
    let ack = anon.request(direct(&conv, "hi from anon")).await;
    assert_eq!(Some(CommandType::Ack), ack.command(), "{ack:?}");
    assert_eq!(vec!["hi from anon"], bob.texts(1).await);
    // The token resumes that id on a new connection.
    let mut again = connect(&app, "lc.protobuf2.3").await;
    let resumed = again.request(reopen(&id, &token)).await;
    assert_eq!(
        (Some(OpType::Opened), Some(id)),
        (resumed.operation(), resumed.peer_id.clone()),
        "{resumed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_query_answers_the_online_ids_among_those_asked() {
    // Arrange: alice and bob online, carol logged in then closed.
    let app = spawn_app().await;
    let mut alice = online(&app, "alice").await;
    let _bob = online(&app, "bob").await;
    let mut carol = online(&app, "carol").await;
    let _ = carol.stream.close(None).await;
    drop(carol);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // Act
    let reply = alice
        .request(ping(&["bob", "carol", "nobody", "alice"]))
        .await;

    // Assert: in the order asked, only those online.
    assert_eq!(
        vec!["bob".to_string(), "alice".to_string()],
        online_ids(&reply)
    );
    let empty = alice.request(ping(&[])).await;
    assert!(online_ids(&empty).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_query_sees_clients_on_another_instance() {
    let [a, b] = spawn_instances(|_| {}).await;
    let mut alice = connect(&a, "lc.protobuf2.3").await;
    alice.login("alice").await;
    let mut bob = connect(&b, "lc.protobuf2.3").await;
    bob.login("bob").await;

    // The other instance learns of bob through the bus: ask until it has (bounded by WAIT).
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    while tokio::time::Instant::now() < deadline {
        seen = online_ids(&alice.request(ping(&["bob", "ghost"])).await);
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(vec!["bob".to_string()], seen);
}
