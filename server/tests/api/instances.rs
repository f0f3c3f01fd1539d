//! Issue 16: several instances on one PostgreSQL database behave as one server. A client on one instance
//! receives, in order, what reached another; a broadcast reaches every instance's clients; the rate limit holds
//! for the app; a tagged login takes over the tag's session on any instance; a session token from one instance
//! logs in on another; and an instance killed under load loses no acknowledged message while its clients carry
//! on through the other. These run on PostgreSQL whichever backend the rest of the suite uses.

use std::collections::HashSet;

use leancloud_server::realtime::proto::{CommandType, GenericCommand, OpType, SessionCommand};
use leancloud_server::{RateLimits, DEV_APP_ID, DEV_MASTER_KEY};
use pretty_assertions::assert_eq;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::durability::{create_conversation, Senders};
use crate::helpers::{fresh_postgres, spawn_instances, start_binary, wait_ready, TestApp};
use crate::notify::{conv_pushes, online, seen};
use crate::realtime::{
    connect, connect_to, direct, reopen, session_token, signed_open, QUIET, WAIT,
};

fn open_tagged(peer: &str, tag: &str) -> GenericCommand {
    GenericCommand {
        app_id: Some(DEV_APP_ID.into()),
        peer_id: Some(peer.into()),
        session_message: Some(SessionCommand {
            tag: Some(tag.into()),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Session, Some(OpType::Open))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_on_one_instance_gets_in_order_what_reached_the_other_by_rest_and_by_a_client() {
    let [a, b] = spawn_instances(|_| {}).await;
    let conv = b.conversation(json!({"m": ["alice", "bob"]})).await;
    let mut bob = connect(&a, "lc.protobuf2.3").await;
    bob.login("bob").await;
    let mut alice = connect(&b, "lc.protobuf2.3").await;
    alice.login("alice").await;

    let mut expected = Vec::new();
    for i in 0..12 {
        let text = if i % 2 == 0 {
            let text = format!("rest-{i}");
            let (status, _) = b
                .send(json!({"from_peer": "alice", "conv_id": conv, "message": text, "transient": false}))
                .await;
            assert_eq!(StatusCode::OK, status);
            text
        } else {
            let text = format!("client-{i}");
            let ack = alice.request(direct(&conv, &text)).await;
            assert_eq!(Some(CommandType::Ack), ack.command(), "{ack:?}");
            text
        };
        expected.push(text);
    }
    assert_eq!(expected, bob.texts(12).await);
    assert_eq!(
        Vec::<String>::new(),
        alice.drain_texts().await,
        "the sender gets none of its own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_through_one_instance_reaches_the_clients_of_both() {
    let [a, b] = spawn_instances(|_| {}).await;
    let system = a.conversation(json!({"sys": true, "name": "news"})).await;
    let mut on_a = connect(&a, "lc.protobuf2.3").await;
    on_a.login("u1").await;
    let mut on_b = connect(&b, "lc.protobuf2.3").await;
    on_b.login("u2").await;
    let (status, body) = a
        .post(
            "/1.1/rtm/broadcast",
            json!({"from_peer": "sys", "conv_id": system, "message": "to all"}),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{body}");
    assert_eq!(vec!["to all"], on_a.texts(1).await);
    assert_eq!(vec!["to all"], on_b.texts(1).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_holds_for_the_app_across_instances() {
    let [a, b] = spawn_instances(|c| {
        c.rate_limits = RateLimits {
            messages_per_minute: Some(3),
            ..RateLimits::off()
        }
    })
    .await;
    let conv = a.conversation(json!({"m": ["x"]})).await;
    let body = json!({"from_peer": "x", "conv_id": conv, "message": "m", "transient": false});
    let mut statuses = Vec::new();
    for app in [&a, &b, &a, &b, &a] {
        statuses.push(app.send(body.clone()).await.0.as_u16());
    }
    assert_eq!(vec![200, 200, 200, 429, 429], statuses);
    assert_eq!(3, a.server.inspect().messages(&conv).len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tagged_login_on_one_instance_takes_over_the_tags_session_on_the_other() {
    let [a, b] = spawn_instances(|_| {}).await;
    let mut first = connect(&a, "lc.protobuf2.3").await;
    first.request(open_tagged("Tom", "Mobile")).await;
    let mut untagged = connect(&a, "lc.protobuf2.3").await;
    untagged.login("Tom").await;
    let mut second = connect(&b, "lc.protobuf2.3").await;
    assert_eq!(
        Some(OpType::Opened),
        second
            .request(open_tagged("Tom", "Mobile"))
            .await
            .operation()
    );
    let kick = first.next(WAIT).await.expect("a kick");
    assert_eq!(
        (Some(CommandType::Session), Some(OpType::Closed), Some(4111)),
        (
            kick.command(),
            kick.operation(),
            kick.session_message.and_then(|m| m.code)
        )
    );
    assert!(
        untagged.next(QUIET).await.is_none(),
        "a session without the tag stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_token_from_one_instance_logs_in_on_the_other_and_unread_counts_are_shared() {
    let [a, b] = spawn_instances(|c| c.realtime.require_signatures = true).await;
    let conv = a.conversation(json!({"m": ["Tom", "Ann"]})).await;
    let mut on_a = connect(&a, "lc.protobuf2.3").await;
    let st = session_token(&on_a.request(signed_open("Tom")).await);
    drop(on_a);
    for text in ["u1", "u2"] {
        a.send(json!({"from_peer": "Ann", "conv_id": conv, "message": text, "transient": false}))
            .await;
    }
    let mut on_b = connect(&b, "lc.protobuf2.3").await;
    let reopened = on_b.request(reopen("Tom", &st)).await;
    assert_eq!(Some(OpType::Opened), reopened.operation(), "{reopened:?}");
    let unread = on_b.next(WAIT).await.expect("an unread push");
    let tuple = &unread.unread_message.expect("unreadMessage").convs[0];
    assert_eq!(
        (conv.as_str(), 2, Some("u2")),
        (tuple.cid.as_str(), tuple.unread, tuple.data.as_deref())
    );
}

/// Two server processes on one database; the one 16 senders and a client use is killed with SIGKILL. Every
/// send it acknowledged is stored, the other instance serves on, and the client logs in there with its session
/// token and is told of every message it had not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_under_16_senders_loses_no_acknowledged_message_and_its_client_moves_over(
) {
    let url = fresh_postgres().await;
    // Instance A's connections carry a name, so the test can tell when PostgreSQL is done with them.
    let (mut a, base_a) = start_binary(&format!(
        "{url}{}application_name=instance-a",
        if url.contains('?') { '&' } else { '?' }
    ));
    let (mut b, base_b) = start_binary(&url);
    let client = reqwest::Client::new();
    wait_ready(&mut a, &base_a).await;
    wait_ready(&mut b, &base_b).await;
    let conv = create_conversation(
        &client,
        &base_a,
        json!({"name": "kill", "m": ["reader", "writer"]}),
    )
    .await;
    let mut reader = connect_to(base_a.trim_start_matches("http://"), "lc.protobuf2.3").await;
    let st = session_token(&reader.login("reader").await);

    let senders = Senders::start(&client, &base_a, &conv, "writer", 16);
    senders.wait_for(500).await;
    assert!(
        backends(&url, "instance-a").await > 0,
        "instance A's connections are named"
    );
    a.0.kill().expect("SIGKILL");
    let _ = a.0.wait();
    let acked = senders.finish().await;
    // A statement PostgreSQL received before the kill still runs to its commit (a send that was stored but
    // never answered); the backend ends when it finds its client gone. Count what is stored after that.
    backends_gone(&url, "instance-a").await;

    let stored: Vec<Value> = client
        .get(format!("{base_b}/__admin/messages?conv_id={conv}"))
        .header("X-LC-Id", DEV_APP_ID)
        .header("X-LC-Key", format!("{DEV_MASTER_KEY},master"))
        .send()
        .await
        .expect("the other instance answers")
        .json()
        .await
        .expect("json");
    let stored_ids: HashSet<&str> = stored.iter().filter_map(|m| m["msg_id"].as_str()).collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| !stored_ids.contains(id.as_str()))
        .collect();
    assert!(acked.len() >= 500);
    assert_eq!(
        Vec::<&String>::new(),
        lost,
        "{} acknowledged, {} stored",
        acked.len(),
        stored.len()
    );

    // The reader's socket died with its instance; it logs in on the other with its token.
    while reader.next(WAIT).await.is_some() {}
    let mut moved = connect_to(base_b.trim_start_matches("http://"), "lc.protobuf2.3").await;
    let reopened = moved.request(reopen("reader", &st)).await;
    assert_eq!(Some(OpType::Opened), reopened.operation(), "{reopened:?}");
    let unread = moved.next(WAIT).await.expect("an unread push");
    let tuple = &unread.unread_message.expect("unreadMessage").convs[0];
    assert_eq!(
        (conv.as_str(), stored.len() as i32),
        (tuple.cid.as_str(), tuple.unread)
    );
}

/// An event over PostgreSQL's 8,000-byte notification limit (a 5 KB message of quotes to a conversation of 600
/// members) goes through `bus_payloads` and still arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_too_large_for_one_notification_still_reaches_the_other_instance() {
    let [a, b] = spawn_instances(|_| {}).await;
    let mut members: Vec<String> = (0..600).map(|i| format!("member-{i:05}")).collect();
    members.push("bob".into());
    let conv = b.conversation(json!({"m": members})).await;
    let mut bob = connect(&a, "lc.protobuf2.3").await;
    bob.login("bob").await;
    let text = "\"".repeat(5000);
    let (status, body) = b
        .send(json!({"from_peer": "member-00001", "conv_id": conv, "message": text, "transient": false}))
        .await;
    assert_eq!(StatusCode::OK, status, "{body}");
    assert_eq!(vec![text], bob.texts(1).await);
}

/// The offline push goes only to members online on no instance: bob, online on A, is not pushed for a send
/// through B; carol, online nowhere, is. After bob logs out on A he is pushed too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_online_on_another_instance_gets_no_offline_push() {
    let [a, b] = spawn_instances(|_| {}).await;
    let conv = b
        .conversation(json!({"m": ["alice", "bob", "carol"]}))
        .await;
    let mut bob = connect(&a, "lc.protobuf2.3").await;
    bob.login("bob").await;
    // Presence travels on the bus: B learns of bob's login, then of his logout, a moment later.
    pushes_go_to(
        &b,
        &conv,
        &["carol"],
        "B never learnt that bob is online on A",
    )
    .await;
    drop(bob);
    pushes_go_to(
        &b,
        &conv,
        &["bob", "carol"],
        "B never learnt that bob went offline",
    )
    .await;
}

/// Sends alice's messages to `conv` through `app` until the offline push of one goes to `peers` (fails with
/// `what` after `WAIT`).
async fn pushes_go_to(app: &TestApp, conv: &str, peers: &[&str], what: &str) {
    let body =
        json!({"from_peer": "alice", "conv_id": conv, "message": "probe", "transient": false});
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _) = app.send(body.clone()).await;
        assert_eq!(StatusCode::OK, status);
        let last = app
            .server
            .inspect()
            .offline_pushes()
            .last()
            .cloned()
            .expect("a push");
        if last.peers == peers {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {last:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Issue 21: a member change made through REST on one instance reaches the clients on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_member_change_on_one_instance_is_told_to_clients_on_the_other() {
    // Arrange: two instances on one PostgreSQL database; the clients are on B.
    let [a, b] = spawn_instances(|_| {}).await;
    // Started on alice's behalf: its own `joined` could otherwise reach her on B after her login, over the bus.
    let conv = a.conversation(json!({"m": ["alice"], "c": "alice"})).await;
    let mut alice = online(&b, "alice").await;
    let mut carol = online(&b, "carol").await;

    // Act: the change goes to A.
    let path = format!("/1.1/classes/_Conversation/{conv}");
    let (status, body) = a
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
    assert_eq!(
        vec![seen(OpType::MembersJoined, &conv, &["carol"], None)],
        conv_pushes(&mut alice, 1).await
    );

    // Act + Assert: and a removal.
    let (status, _) = a
        .put(
            &path,
            json!({"m": {"__op": "Remove", "objects": ["carol"]}}),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    assert_eq!(
        vec![seen(OpType::Left, &conv, &[], None)],
        conv_pushes(&mut carol, 1).await
    );
    assert_eq!(
        vec![seen(OpType::MembersLeft, &conv, &["carol"], None)],
        conv_pushes(&mut alice, 1).await
    );
}

/// How many backends of `application` are connected to the database of `url`.
async fn backends(url: &str, application: &str) -> i64 {
    let (pg, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("test cluster reachable");
    let driver = tokio::spawn(connection);
    let n = pg
        .query_one(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
            &[&application],
        )
        .await
        .expect("pg_stat_activity")
        .get(0);
    drop(pg);
    let _ = driver.await;
    n
}

/// Waits until no backend of `application` is connected to the database of `url`.
async fn backends_gone(url: &str, application: &str) {
    for _ in 0..500 {
        if backends(url, application).await == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the killed instance's PostgreSQL backends did not end");
}

#[tokio::test]
async fn class_permissions_set_on_one_instance_hold_on_the_other_within_two_seconds() {
    async fn create(app: &TestApp) -> (StatusCode, Value) {
        app.call(
            crate::helpers::Key::App,
            reqwest::Method::POST,
            "/1.1/classes/_Conversation",
            Some(json!({"name": "open", "m": ["x"]})),
        )
        .await
    }
    // Arrange: B has read the default (closed) permissions of `_Conversation`.
    let [a, b] = spawn_instances(|_| {}).await;
    assert_eq!(StatusCode::FORBIDDEN, create(&b).await.0);

    // Act
    let (status, _) = a
        .put(
            "/__admin/class-permissions/_Conversation",
            json!({"create": {"*": true}}),
        )
        .await;
    assert_eq!(StatusCode::OK, status);

    // Assert: in force on A at once, on B once its copy is older than two seconds.
    assert_eq!(StatusCode::CREATED, create(&a).await.0);
    let started = std::time::Instant::now();
    loop {
        let (status, body) = create(&b).await;
        if status == StatusCode::CREATED {
            break;
        }
        assert_eq!(StatusCode::FORBIDDEN, status, "{body}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(4),
            "B still refuses after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (_, on_b) = b.get("/__admin/class-permissions/_Conversation").await;
    assert_eq!(json!({"*": true}), on_b["permissions"]["create"]);
}

#[tokio::test]
async fn bus_events_are_counted_on_both_instances() {
    // Arrange: y online on b; a send on a reaches it through the bus
    let [a, b] = spawn_instances(|c| {
        c.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let conv = a
        .conversation(json!({"name": "bus", "m": ["x", "y"]}))
        .await;
    let mut ws = crate::realtime::connect(&b, "lc.protobuf2.3").await;
    ws.login("y").await;

    // Act
    let (status, _) = a
        .send(json!({"from_peer": "x", "conv_id": conv, "message": "across", "transient": false}))
        .await;
    // The conversation's creation may still be on its way to b and reach y first: only messages count.
    let pushed = ws.texts(1).await;
    let (on_a, _) = crate::metrics::scrape(&a).await;
    let (on_b, _) = crate::metrics::scrape(&b).await;

    // Assert
    assert_eq!(StatusCode::OK, status);
    assert_eq!(vec!["across".to_string()], pushed);
    let count = |m: &std::collections::HashMap<String, f64>, event: &str| {
        m.get(&format!("leancloud_bus_events_total{{event=\"{event}\"}}"))
            .copied()
            .unwrap_or(0.0)
    };
    assert!(count(&on_a, "published") >= 1.0, "{on_a:?}");
    assert!(count(&on_b, "received") >= 1.0, "{on_b:?}");
    assert_eq!(
        (0.0, 0.0),
        (count(&on_a, "rejected"), count(&on_b, "rejected"))
    );
}
