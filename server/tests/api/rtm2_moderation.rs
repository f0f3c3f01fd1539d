//! Moderation through the REST API 1.2 (issue 26): temporary and permanent silences (a silenced member's next
//! send refused with 4315 / 4563), blacklists (a blocked member removed and its rejoin refused with 4548),
//! member roles (`member-infos`) and a client's own blacklist of conversations.

use leancloud_server::realtime::proto::{ConvCommand, GenericCommand, OpType};
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Key, TestApp};
use crate::notify::{conv_pushes, online, seen};
use crate::rtm2::send_code;

async fn conversation(app: &TestApp, body: Value) -> String {
    let (status, created) = app.post("/1.2/rtm/conversations", body).await;
    assert_eq!(StatusCode::CREATED, status, "{created}");
    created["objectId"].as_str().expect("objectId").to_string()
}

async fn delete_with(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    app.call(Key::Master, Method::DELETE, path, Some(body))
        .await
}

fn join(cid: &str, who: &[&str]) -> GenericCommand {
    GenericCommand {
        conv_message: Some(ConvCommand {
            cid: Some(cid.into()),
            m: who.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }),
        ..GenericCommand::new(
            leancloud_server::realtime::proto::CommandType::Conv,
            Some(OpType::Add),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silenced_members_are_refused_with_leanclouds_codes_until_lifted() {
    // Arrange: alice owns the conversation; bob is a member, online.
    let app = spawn_app().await;
    let cid = conversation(&app, json!({"c": "alice", "m": ["alice", "bob"]})).await;
    let mut bob = online(&app, "bob").await;
    assert_eq!(None, send_code(&mut bob, &cid, "before").await);

    // Act: a permanent silence.
    let path = format!("/1.2/rtm/conversations/{cid}/permanent-silenceds");
    let (status, body) = app.post(&path, json!({"client_ids": ["bob"]})).await;

    // Assert: {}; bob hears he is muted; his next send is refused with 4563; he is listed.
    assert_eq!((StatusCode::OK, json!({})), (status, body));
    let heard = conv_pushes(&mut bob, 2).await;
    assert!(
        heard.contains(&seen(OpType::Shutuped, &cid, &[], None)),
        "{heard:?}"
    );
    assert_eq!(Some(4563), send_code(&mut bob, &cid, "muted").await);
    let (_, listed) = app.get(&path).await;
    assert_eq!(json!({"client_ids": ["bob"]}), listed);

    // Act + Assert: lifted, bob speaks again; the owner cannot be silenced (nothing changes).
    let (status, body) = delete_with(&app, &path, json!({"client_ids": ["bob"]})).await;
    assert_eq!((StatusCode::OK, json!({})), (status, body));
    assert_eq!(None, send_code(&mut bob, &cid, "free").await);
    let (status, body) = app
        .post(&path, json!({"client_ids": ["bob", "alice"]}))
        .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(4324)),
        (status, body["code"].clone())
    );
    let (_, listed) = app.get(&path).await;
    assert_eq!(json!({"client_ids": []}), listed);

    // Act: a temporary silence; bad ttls first.
    let temp = format!("/1.2/rtm/conversations/{cid}/temporary-silenceds");
    for ttl in [json!(0), json!(86_401), json!("soon")] {
        let (status, body) = app
            .post(&temp, json!({"client_id": "bob", "ttl": ttl}))
            .await;
        assert_eq!(
            (StatusCode::BAD_REQUEST, json!(1)),
            (status, body["code"].clone()),
            "{ttl}"
        );
    }
    let (status, body) = app
        .post(&temp, json!({"client_id": "bob", "ttl": 60}))
        .await;

    // Assert: refused with 4315 until lifted.
    assert_eq!((StatusCode::OK, json!({})), (status, body));
    assert_eq!(Some(4315), send_code(&mut bob, &cid, "quiet").await);
    let (status, body) = app
        .call(
            Key::Master,
            Method::DELETE,
            &format!("{temp}?client_id=bob"),
            None,
        )
        .await;
    assert_eq!((StatusCode::OK, json!({})), (status, body));
    assert_eq!(None, send_code(&mut bob, &cid, "again").await);

    // Assert: only the allowed messages are stored.
    let (_, history) = app
        .get(&format!("/1.2/rtm/conversations/{cid}/messages"))
        .await;
    let texts: Vec<&str> = history
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["data"].as_str().expect("data"))
        .collect();
    assert_eq!(vec!["again", "free", "before"], texts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_member_is_removed_and_cannot_come_back_until_unblocked() {
    // Arrange
    let app = spawn_app().await;
    let cid = conversation(&app, json!({"c": "alice", "m": ["alice", "bob", "carol"]})).await;
    let mut bob = online(&app, "bob").await;
    let mut carol = online(&app, "carol").await;

    // Act
    let path = format!("/1.2/rtm/conversations/{cid}/blacklists");
    let (status, body) = app.post(&path, json!({"client_ids": ["bob"]})).await;

    // Assert: bob is out (he hears it), carol hears he left; he is listed.
    assert_eq!((StatusCode::OK, json!({})), (status, body));
    let (_, members) = app
        .get(&format!("/1.2/rtm/conversations/{cid}/members"))
        .await;
    assert_eq!(json!({"result": ["alice", "carol"]}), members);
    let heard = conv_pushes(&mut bob, 2).await;
    assert!(
        heard.contains(&seen(OpType::Left, &cid, &[], None)),
        "{heard:?}"
    );
    assert!(
        heard.contains(&seen(OpType::Blocked, &cid, &[], None)),
        "{heard:?}"
    );
    let heard = conv_pushes(&mut carol, 2).await;
    assert!(
        heard.contains(&seen(OpType::MembersLeft, &cid, &["bob"], None)),
        "{heard:?}"
    );
    let (_, listed) = app.get(&path).await;
    assert_eq!(json!({"client_ids": ["bob"]}), listed);

    // Assert: his rejoin is refused with 4548, and so is the backend adding him.
    let reply = bob
        .request(join(&cid, &["bob"]))
        .await
        .conv_message
        .expect("convMessage");
    assert!(reply.allowed_pids.is_empty());
    assert_eq!(
        vec![4548],
        reply.failed_pids.iter().map(|f| f.code).collect::<Vec<_>>()
    );
    let (status, body) = app
        .post(
            &format!("/1.2/rtm/conversations/{cid}/members"),
            json!({"client_ids": ["bob", "dan"]}),
        )
        .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(4548)),
        (status, body["code"].clone())
    );
    let (_, members) = app
        .get(&format!("/1.2/rtm/conversations/{cid}/members"))
        .await;
    assert_eq!(
        json!({"result": ["alice", "carol"]}),
        members,
        "nothing added"
    );

    // Act + Assert: unblocked, he may join again; the owner cannot be blocked.
    let (status, _) = delete_with(&app, &path, json!({"client_ids": ["bob"]})).await;
    assert_eq!(StatusCode::OK, status);
    let reply = bob
        .request(join(&cid, &["bob"]))
        .await
        .conv_message
        .expect("convMessage");
    assert_eq!(vec!["bob".to_string()], reply.allowed_pids);
    let (_, body) = app.post(&path, json!({"client_ids": ["alice"]})).await;
    assert_eq!(json!(4324), body["code"]);

    // Assert: the chat room and service conversation prefixes take the same requests.
    let (_, room) = app.post("/1.2/rtm/chatrooms", json!({"m": ["x"]})).await;
    let room = room["objectId"].as_str().expect("id").to_string();
    let (status, _) = app
        .post(
            &format!("/1.2/rtm/chatrooms/{room}/blacklists"),
            json!({"client_ids": ["spammer"]}),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    let (_, listed) = app
        .get(&format!("/1.2/rtm/chatrooms/{room}/blacklists?limit=1"))
        .await;
    assert_eq!(json!({"client_ids": ["spammer"]}), listed);
    let (_, body) = app
        .post(
            &format!("/1.2/rtm/conversations/{room}/blacklists"),
            json!({"client_ids": ["y"]}),
        )
        .await;
    assert_eq!(json!(4314), body["code"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_roles_are_set_listed_and_dropped_through_member_infos() {
    let app = spawn_app().await;
    let cid = conversation(&app, json!({"c": "alice", "m": ["alice", "bob", "carol"]})).await;
    let mut carol = online(&app, "carol").await;
    let path = format!("/1.2/rtm/conversations/{cid}/member-infos");

    // Act
    let (status, body) = app
        .post(&path, json!({"clientId": "bob", "role": "Manager"}))
        .await;

    // Assert: the answer, the list, the push to the members.
    assert_eq!(StatusCode::OK, status, "{body}");
    assert_eq!(json!(format!("{cid}:bob")), body["objectId"]);
    let (_, list) = app.get(&path).await;
    assert_eq!(
        json!({"results": [
            {"clientId": "alice", "objectId": format!("{cid}:alice"), "role": "Owner"},
            {"clientId": "bob", "objectId": format!("{cid}:bob"), "role": "Manager"},
        ]}),
        list
    );
    let heard = conv_pushes(&mut carol, 1).await;
    assert_eq!(1, heard.len(), "{heard:?}");
    let (_, only) = app.get(&format!("{path}?role=Manager")).await;
    assert_eq!(1, only["results"].as_array().expect("array").len());

    // Assert: LeanCloud's refusals.
    let (_, body) = app
        .post(&path, json!({"clientId": "bob", "role": "King"}))
        .await;
    assert_eq!(json!(4321), body["code"]);
    let (_, body) = app
        .post(&path, json!({"clientId": "bob", "role": "Owner"}))
        .await;
    assert_eq!(json!(5130), body["code"]);
    let (_, body) = app
        .post(&path, json!({"clientId": "zed", "role": "Manager"}))
        .await;
    assert_eq!(json!(4317), body["code"]);

    // Act + Assert: the info is changed and dropped by its id.
    let (status, _) = app
        .put(&format!("{path}/{cid}:bob"), json!({"role": "Member"}))
        .await;
    assert_eq!(StatusCode::OK, status);
    let (_, list) = app.get(&format!("{path}?role=Manager")).await;
    assert_eq!(json!({"results": []}), list);
    app.post(&path, json!({"clientId": "carol", "role": "Manager"}))
        .await;
    let (status, body) = app.delete(&format!("{path}/{cid}:carol")).await;
    assert_eq!((StatusCode::OK, json!({})), (status, body));
    let (_, list) = app.get(&path).await;
    assert_eq!(
        1,
        list["results"].as_array().expect("array").len(),
        "{list}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_blacklisting_a_conversation_cannot_be_added_to_it_but_may_join() {
    let app = spawn_app().await;
    let cid = conversation(&app, json!({"m": ["alice"]})).await;
    let other = conversation(&app, json!({"m": ["alice"]})).await;
    let mut alice = online(&app, "alice").await;
    let mut bob = online(&app, "bob").await;

    // Act
    let path = "/1.2/rtm/clients/bob/blacklists";
    for conv in [&cid, &other] {
        let (status, body) = app.post(path, json!({"conv_id": conv})).await;
        assert_eq!((StatusCode::OK, json!({})), (status, body));
    }

    // Assert: listed, in pages.
    let mut both = [cid.clone(), other.clone()];
    both.sort();
    let (_, page) = app.get(&format!("{path}?limit=1")).await;
    assert_eq!(json!({"conv_ids": [both[0]], "next": both[0]}), page);
    let (_, page) = app.get(&format!("{path}?limit=1&next={}", both[0])).await;
    assert_eq!(json!({"conv_ids": [both[1]]}), page);

    // Assert: alice cannot add him, nor can the backend; he may join himself.
    let reply = alice
        .request(join(&cid, &["bob"]))
        .await
        .conv_message
        .expect("convMessage");
    assert!(reply.allowed_pids.is_empty(), "{reply:?}");
    assert_eq!(
        vec![4548],
        reply.failed_pids.iter().map(|f| f.code).collect::<Vec<_>>()
    );
    let (_, body) = app
        .post(
            &format!("/1.2/rtm/conversations/{other}/members"),
            json!({"client_ids": ["bob"]}),
        )
        .await;
    assert_eq!(json!(4548), body["code"]);
    let reply = bob
        .request(join(&cid, &["bob"]))
        .await
        .conv_message
        .expect("convMessage");
    assert_eq!(vec!["bob".to_string()], reply.allowed_pids);

    // Act + Assert: removed from his list, the backend may add him.
    let (status, _) = delete_with(&app, path, json!({"conv_id": other})).await;
    assert_eq!(StatusCode::OK, status);
    let (status, _) = app
        .post(
            &format!("/1.2/rtm/conversations/{other}/members"),
            json!({"client_ids": ["bob"]}),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
}
