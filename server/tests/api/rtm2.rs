//! The REST API 1.2 for the app's backend (issue 26): conversations, chat rooms and service conversations,
//! members with the same pushes as a client's own `conv/add`, mutes, messages (send, edit, recall, delete),
//! broadcasts, `check-online`, `kick` and `stats`. Exact answers and codes, the rows they leave, and what the
//! online clients receive.

use leancloud_server::realtime::proto::{CommandType, OpType};
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{is_iso_millis, spawn_app, Key, TestApp};
use crate::notify::{conv_pushes, online, seen};
use crate::realtime::{direct, Ws, WAIT};
use crate::receipts::{none_of, push_of};

const RECALLED: &str = r#"{"_lctype":-127}"#;

async fn call(app: &TestApp, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    app.call(Key::Master, method, path, Some(body)).await
}

/// Creates a conversation of the kind `prefix` names through the 1.2 API and returns its id.
async fn create(app: &TestApp, prefix: &str, body: Value) -> String {
    let (status, created) = app.post(&format!("/1.2/rtm/{prefix}"), body).await;
    assert_eq!(StatusCode::CREATED, status, "{created}");
    created["objectId"].as_str().expect("objectId").to_string()
}

fn ids_of(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("an array: {v}"))
        .iter()
        .map(|r| r["objectId"].as_str().expect("objectId").to_string())
        .collect();
    out.sort();
    out
}

/// The REST history of `cid` as (msg-id, data), newest first.
async fn history(app: &TestApp, cid: &str) -> Vec<(String, String)> {
    let (status, body) = app
        .get(&format!("/1.2/rtm/conversations/{cid}/messages"))
        .await;
    assert_eq!(StatusCode::OK, status, "{body}");
    body.as_array()
        .expect("array")
        .iter()
        .map(|r| {
            (
                r["msg-id"].as_str().unwrap_or_default().to_string(),
                r["data"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_are_created_queried_updated_and_deleted_per_kind() {
    let app = spawn_app().await;

    // Act: a unique conversation, twice with the same members in another order.
    let (status, first) = app
        .post(
            "/1.2/rtm/conversations",
            json!({"name": "plan", "m": ["SteveJobs", "BillGates"], "unique": true}),
        )
        .await;
    let (again_status, again) = app
        .post(
            "/1.2/rtm/conversations",
            json!({"name": "plan", "m": ["BillGates", "SteveJobs"], "unique": true}),
        )
        .await;

    // Assert: the whole object the first time, with LeanCloud's uniqueId; the same object the second time.
    assert_eq!(StatusCode::CREATED, status, "{first}");
    assert_eq!(json!("6c7b0e5afcae9aa1139a0afa25833dec"), first["uniqueId"]);
    assert_eq!(json!(["SteveJobs", "BillGates"]), first["m"]);
    assert_eq!(json!("plan"), first["name"]);
    assert!(is_iso_millis(&first["createdAt"]), "{first}");
    assert!(is_iso_millis(&first["updatedAt"]), "{first}");
    assert_eq!(StatusCode::OK, again_status, "{again}");
    assert_eq!(first["objectId"], again["objectId"]);
    let cid = first["objectId"].as_str().expect("id").to_string();

    // Act: a chat room and a service conversation.
    let (status, room) = app
        .post("/1.2/rtm/chatrooms", json!({"name": "lobby"}))
        .await;
    assert_eq!(StatusCode::CREATED, status, "{room}");
    let mut keys: Vec<&String> = room.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(vec!["createdAt", "objectId"], keys, "{room}");
    let room_id = room["objectId"].as_str().expect("id").to_string();
    let service = create(&app, "service-conversations", json!({"name": "news"})).await;

    // Assert: each query answers its own kind only; all-conversations every kind.
    let (_, found) = app.get("/1.2/rtm/conversations").await;
    assert_eq!(vec![cid.clone()], ids_of(&found["results"]));
    let (_, found) = app.get("/1.2/rtm/chatrooms").await;
    assert_eq!(vec![room_id.clone()], ids_of(&found["results"]));
    assert_eq!(json!(true), found["results"][0]["tr"]);
    let (_, found) = app.get("/1.2/rtm/service-conversations").await;
    assert_eq!(vec![service.clone()], ids_of(&found["results"]));
    assert_eq!(json!(true), found["results"][0]["sys"]);
    let (_, found) = app.get("/1.2/rtm/all-conversations?limit=10").await;
    let mut every = vec![cid.clone(), room_id.clone(), service.clone()];
    every.sort();
    assert_eq!(every, ids_of(&found["results"]));
    let w = crate::helpers::urlencode(r#"{"name":"lobby"}"#);
    let (_, found) = app
        .get(&format!("/1.2/rtm/all-conversations?where={w}"))
        .await;
    assert_eq!(vec![room_id.clone()], ids_of(&found["results"]));

    // Act + Assert: an update answers updatedAt and objectId and changes the row; `m` is refused.
    let (status, body) = app
        .put(
            &format!("/1.2/rtm/conversations/{cid}"),
            json!({"name": "renamed", "topic": 1}),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{body}");
    assert_eq!(json!(cid), body["objectId"]);
    assert!(is_iso_millis(&body["updatedAt"]), "{body}");
    let (_, row) = app.get(&format!("/1.1/classes/_Conversation/{cid}")).await;
    assert_eq!(
        (json!("renamed"), json!(1)),
        (row["name"].clone(), row["topic"].clone())
    );
    let (status, body) = app
        .put(
            &format!("/1.2/rtm/conversations/{cid}"),
            json!({"m": ["x"]}),
        )
        .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(1)),
        (status, body["code"].clone()),
        "{body}"
    );

    // Assert: a conversation of another kind, or none, under a prefix.
    let (status, body) = app
        .put(
            &format!("/1.2/rtm/conversations/{room_id}"),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(4314)),
        (status, body["code"].clone())
    );
    let (_, body) = app
        .put(&format!("/1.2/rtm/chatrooms/{cid}"), json!({"name": "x"}))
        .await;
    assert_eq!(json!(4316), body["code"]);
    let (_, body) = app
        .put(
            &format!("/1.2/rtm/service-conversations/{cid}"),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(json!(4313), body["code"]);
    let (status, body) = app
        .put(
            "/1.2/rtm/conversations/000000000000000000000000",
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(4303)),
        (status, body["code"].clone())
    );

    // Act + Assert: a delete answers {} and the row is gone.
    let (status, body) = app.delete(&format!("/1.2/rtm/chatrooms/{room_id}")).await;
    assert_eq!((StatusCode::OK, json!({})), (status, body));
    let (_, row) = app
        .get(&format!("/1.1/classes/_Conversation/{room_id}"))
        .await;
    assert_eq!(json!({}), row);

    // Assert: the 1.2 API is the backend's: the app key alone is refused.
    let (status, _) = app
        .call(Key::App, Method::GET, "/1.2/rtm/conversations", None)
        .await;
    assert!(
        status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_added_and_removed_by_the_backend_hear_what_a_conv_add_tells() {
    // Arrange: alice and bob are members, carol is not; all online.
    let app = spawn_app().await;
    let cid = create(&app, "conversations", json!({"m": ["alice", "bob"]})).await;
    let mut alice = online(&app, "alice").await;
    let mut carol = online(&app, "carol").await;

    // Act: the backend adds carol and dave.
    let (status, body) = app
        .post(
            &format!("/1.2/rtm/conversations/{cid}/members"),
            json!({"client_ids": ["carol", "dave", "carol"]}),
        )
        .await;

    // Assert: the answer, the row, and the pushes (no initBy: nobody's client made the change).
    assert_eq!(StatusCode::OK, status, "{body}");
    assert_eq!(json!(cid), body["objectId"]);
    assert!(is_iso_millis(&body["updatedAt"]), "{body}");
    let (_, members) = app
        .get(&format!("/1.2/rtm/conversations/{cid}/members"))
        .await;
    assert_eq!(
        json!({"result": ["alice", "bob", "carol", "dave"]}),
        members
    );
    assert_eq!(
        vec![seen(OpType::Joined, &cid, &[], None)],
        conv_pushes(&mut carol, 1).await
    );
    assert_eq!(
        vec![seen(OpType::MembersJoined, &cid, &["carol", "dave"], None)],
        conv_pushes(&mut alice, 1).await
    );

    // Act: the backend removes carol (a JSON body on DELETE).
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/1.2/rtm/conversations/{cid}/members"),
        json!({"client_ids": ["carol"]}),
    )
    .await;

    // Assert
    assert_eq!(StatusCode::OK, status);
    assert_eq!(
        vec![seen(OpType::Left, &cid, &[], None)],
        conv_pushes(&mut carol, 1).await
    );
    assert_eq!(
        vec![seen(OpType::MembersLeft, &cid, &["carol"], None)],
        conv_pushes(&mut alice, 1).await
    );
    let (_, members) = app
        .get(&format!("/1.2/rtm/conversations/{cid}/members"))
        .await;
    assert_eq!(json!({"result": ["alice", "bob", "dave"]}), members);

    // Assert: bad lists are refused and change nothing.
    for bad in [
        json!({}),
        json!({"client_ids": []}),
        json!({"client_ids": [1]}),
    ] {
        let (status, body) = app
            .post(
                &format!("/1.2/rtm/conversations/{cid}/members"),
                bad.clone(),
            )
            .await;
        assert_eq!(
            (StatusCode::BAD_REQUEST, json!(1)),
            (status, body["code"].clone()),
            "{bad}"
        );
    }
    assert!(conv_pushes(&mut alice, 0).await.is_empty());

    // Act + Assert: push mutes.
    let (status, _) = app
        .post(
            &format!("/1.2/rtm/conversations/{cid}/mutes"),
            json!({"client_ids": ["bob", "dave"]}),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    let (_, mutes) = app
        .get(&format!("/1.2/rtm/conversations/{cid}/mutes"))
        .await;
    assert_eq!(json!({"result": ["bob", "dave"]}), mutes);
    call(
        &app,
        Method::DELETE,
        &format!("/1.2/rtm/conversations/{cid}/mutes"),
        json!({"client_ids": ["bob"]}),
    )
    .await;
    let (_, row) = app.get(&format!("/1.1/classes/_Conversation/{cid}")).await;
    assert_eq!(json!(["dave"]), row["mu"]);
}

/// Sends `text` from `from` to `cid` through the 1.2 API: (msg-id, timestamp).
async fn send(app: &TestApp, cid: &str, from: &str, text: &str) -> (String, i64) {
    let (status, body) = app
        .post(
            &format!("/1.2/rtm/conversations/{cid}/messages"),
            json!({"from_client": from, "message": text}),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{body}");
    let mut keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(vec!["msg-id", "timestamp"], keys);
    (
        body["msg-id"].as_str().expect("msg-id").to_string(),
        body["timestamp"].as_i64().expect("timestamp"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_sent_edited_recalled_and_deleted_and_members_are_told() {
    // Arrange
    let app = spawn_app().await;
    let cid = create(&app, "conversations", json!({"m": ["alice", "bob"]})).await;
    let mut bob = online(&app, "bob").await;

    // Act: a send from a client that is not a member (LeanCloud lets the backend do it).
    let (mid, ts) = send(&app, &cid, "system", "hello").await;

    // Assert: bob gets it.
    assert_eq!(vec!["hello".to_string()], bob.texts(1).await);

    // Act + Assert: an edit with the wrong time, or by another sender, changes nothing.
    let path = format!("/1.2/rtm/conversations/{cid}/messages/{mid}");
    let (status, body) = app
        .put(
            &path,
            json!({"from_client": "system", "message": "x", "timestamp": ts + 1}),
        )
        .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(4404)),
        (status, body["code"].clone())
    );
    let (_, body) = app
        .put(
            &path,
            json!({"from_client": "alice", "message": "x", "timestamp": ts}),
        )
        .await;
    assert_eq!(json!(4403), body["code"]);
    let (_, body) = app
        .put(&path, json!({"from_client": "system", "timestamp": ts}))
        .await;
    assert_eq!(json!(1), body["code"], "an edit needs the message");
    none_of(&mut bob, CommandType::Patch).await;

    // Act: the edit.
    let (status, body) = app
        .put(
            &path,
            json!({"from_client": "system", "message": "hello, edited", "timestamp": ts}),
        )
        .await;

    // Assert: LeanCloud's answer, the push, the history.
    assert_eq!((StatusCode::OK, json!({"result": {}})), (status, body));
    let item = push_of(&mut bob, CommandType::Patch)
        .await
        .patch_message
        .expect("patchMessage")
        .patches
        .remove(0);
    assert_eq!(
        (Some(mid.clone()), Some("hello, edited".to_string()), None),
        (item.mid, item.data, item.recall.filter(|r| *r))
    );
    assert_eq!(
        vec![(mid.clone(), "hello, edited".to_string())],
        history(&app, &cid).await
    );

    // Act: the recall, twice.
    let recall = format!("{path}/recall");
    let (status, body) = app
        .put(&recall, json!({"from_client": "system", "timestamp": ts}))
        .await;
    let (again, again_body) = app
        .put(&recall, json!({"from_client": "system", "timestamp": ts}))
        .await;

    // Assert: one recall push; the stored message is LeanCloud's recalled message; the second changes nothing.
    assert_eq!((StatusCode::OK, json!({"result": {}})), (status, body));
    assert_eq!((StatusCode::OK, json!({"result": {}})), (again, again_body));
    let item = push_of(&mut bob, CommandType::Patch)
        .await
        .patch_message
        .expect("patchMessage")
        .patches
        .remove(0);
    assert_eq!((Some(true), Some(mid.clone())), (item.recall, item.mid));
    none_of(&mut bob, CommandType::Patch).await;
    assert_eq!(
        vec![(mid.clone(), RECALLED.to_string())],
        history(&app, &cid).await
    );

    // Act + Assert: a delete needs the right time; then the stored copy is gone, and a second delete finds none.
    let (status, body) = app
        .call(
            Key::Master,
            Method::DELETE,
            &format!("{path}?from_client=system&timestamp={}", ts + 1),
            None,
        )
        .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(4404)),
        (status, body["code"].clone())
    );
    let (status, body) = app
        .call(
            Key::Master,
            Method::DELETE,
            &format!("{path}?from_client=system&timestamp={ts}"),
            None,
        )
        .await;
    assert_eq!((StatusCode::OK, json!({})), (status, body));
    assert!(history(&app, &cid).await.is_empty());
    let (_, body) = app
        .call(
            Key::Master,
            Method::DELETE,
            &format!("{path}?from_client=system&timestamp={ts}"),
            None,
        )
        .await;
    assert_eq!(json!(4404), body["code"]);
    none_of(&mut bob, CommandType::Patch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_check_their_parameters_and_the_conversation() {
    let app = spawn_app().await;
    let cid = create(&app, "conversations", json!({"m": ["alice"]})).await;
    let path = format!("/1.2/rtm/conversations/{cid}/messages");
    for (body, code) in [
        (json!({"message": "x"}), 1),
        (json!({"from_client": "a"}), 1),
        (
            json!({"from_client": "a", "message": "x", "priority": "urgent"}),
            1,
        ),
        (
            json!({"from_client": "a", "message": "x", "transient": "maybe"}),
            1,
        ),
        (
            json!({"from_client": "a", "message": "x", "mention_client_ids": (0..21).map(|i| format!("c{i}")).collect::<Vec<_>>()}),
            1,
        ),
    ] {
        let (status, answer) = app.post(&path, body.clone()).await;
        assert_eq!(
            (StatusCode::BAD_REQUEST, json!(code)),
            (status, answer["code"].clone()),
            "{body}"
        );
    }
    let (status, body) = app
        .post(
            "/1.2/rtm/conversations/000000000000000000000000/messages",
            json!({"from_client": "a", "message": "x"}),
        )
        .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(4303)),
        (status, body["code"].clone())
    );
    // A JSON object as the message is stored as its text; the options are accepted.
    let (status, body) = app
        .post(
            &path,
            json!({"from_client": "a", "message": {"_lctype": -1, "_lctext": "hi"}, "priority": "HIGH",
                   "no_sync": true, "mention_all": true, "push_data": {"alert": "new"}}),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{body}");
    let (_, data) = history(&app, &cid).await.remove(0);
    assert_eq!(
        json!({"_lctype": -1, "_lctext": "hi"}),
        serde_json::from_str::<Value>(&data).expect("JSON")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_rooms_count_their_online_members_and_service_conversations_their_subscribers() {
    // Arrange: a chat room with three members, two online.
    let app = spawn_app().await;
    let room = create(&app, "chatrooms", json!({"m": ["a", "b", "c"]})).await;
    let _a = online(&app, "a").await;
    let mut b = online(&app, "b").await;

    // Assert
    let (_, count) = app
        .get(&format!("/1.2/rtm/chatrooms/{room}/members/online-count"))
        .await;
    assert_eq!(json!({"result": 2}), count);
    let (_, sample) = app.get(&format!("/1.2/rtm/chatrooms/{room}/members")).await;
    let mut sample: Vec<String> = serde_json::from_value(sample["result"].clone()).expect("ids");
    sample.sort();
    assert_eq!(vec!["a", "b"], sample);

    // Act + Assert: a chat room message reaches the online member.
    let (status, _) = app
        .post(
            &format!("/1.2/rtm/chatrooms/{room}/messages"),
            json!({"from_client": "a", "message": "hi room"}),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    assert_eq!(vec!["hi room".to_string()], b.texts(1).await);

    // Arrange: a service conversation with subscribers (two through the API, one by itself).
    let svc = create(
        &app,
        "service-conversations",
        json!({"name": "news", "m": ["s3"]}),
    )
    .await;
    for client in ["s1", "s2"] {
        let (status, _) = app
            .post(
                &format!("/1.2/rtm/service-conversations/{svc}/subscribers"),
                json!({"client_id": client}),
            )
            .await;
        assert_eq!(StatusCode::OK, status);
    }
    let (_, count) = app
        .get(&format!(
            "/1.2/rtm/service-conversations/{svc}/subscribers/count"
        ))
        .await;
    assert_eq!(json!({"count": 3}), count);
    let (status, body) = app
        .delete(&format!(
            "/1.2/rtm/service-conversations/{svc}/subscribers/s1"
        ))
        .await;
    assert_eq!((StatusCode::OK, json!({})), (status, body));
    let (_, count) = app
        .get(&format!(
            "/1.2/rtm/service-conversations/{svc}/subscribers/count"
        ))
        .await;
    assert_eq!(json!({"count": 2}), count);

    // Act + Assert: a message to chosen subscribers reaches those only; `to_clients` is required, at most 20.
    let mut s3 = online(&app, "s3").await;
    let mut s2 = online(&app, "s2").await;
    let path = format!("/1.2/rtm/service-conversations/{svc}/messages");
    let (status, _) = app
        .post(
            &path,
            json!({"from_client": "news", "message": "for s2", "to_clients": ["s2"]}),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    assert_eq!(vec!["for s2".to_string()], s2.texts(1).await);
    let (_, body) = app
        .post(&path, json!({"from_client": "news", "message": "x"}))
        .await;
    assert_eq!(json!(1), body["code"]);
    let many: Vec<String> = (0..21).map(|i| format!("c{i}")).collect();
    let (_, body) = app
        .post(
            &path,
            json!({"from_client": "news", "message": "x", "to_clients": many}),
        )
        .await;
    assert_eq!(json!(1), body["code"]);

    // Act + Assert: a broadcast to the subscribers reaches the one that subscribed itself.
    let (status, body) = app
        .post(
            &format!("/1.2/rtm/service-conversations/{svc}/broadcasts"),
            json!({"from_client": "news", "message": "all"}),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{body}");
    assert_eq!(vec!["all".to_string()], s3.texts(1).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_broadcasts_are_listed_while_valid_and_can_be_withdrawn() {
    let app = spawn_app().await;
    let svc = create(&app, "service-conversations", json!({"name": "news"})).await;

    // Act
    let (status, sent) = app
        .post(
            "/1.2/rtm/broadcasts",
            json!({"from_client": "news", "conv_id": svc, "message": "sale"}),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{sent}");
    let mid = sent["msg-id"].as_str().expect("msg-id").to_string();

    // Assert: listed (per service conversation, too) with its validity (a month by default).
    let (status, list) = app.get(&format!("/1.2/rtm/broadcasts?conv_id={svc}")).await;
    assert_eq!(StatusCode::OK, status);
    let list = list.as_array().expect("array").clone();
    assert_eq!(1, list.len(), "{list:?}");
    assert_eq!(
        (
            json!(mid),
            json!(svc),
            json!("news"),
            json!("sale"),
            sent["timestamp"].clone()
        ),
        (
            list[0]["msg-id"].clone(),
            list[0]["conv-id"].clone(),
            list[0]["from"].clone(),
            list[0]["data"].clone(),
            list[0]["timestamp"].clone()
        )
    );
    let valid = list[0]["valid_till"].as_i64().expect("valid_till")
        - list[0]["timestamp"].as_i64().expect("ts");
    assert!(
        (29 * 86_400_000..=31 * 86_400_000).contains(&valid),
        "{valid}"
    );
    let (_, other) = app.get("/1.2/rtm/broadcasts?conv_id=nothere").await;
    assert_eq!(json!([]), other);

    // Act + Assert: a client logging in now gets it; withdrawn, the next one does not.
    let mut early = online(&app, "early").await;
    assert_eq!(vec!["sale".to_string()], early.texts(1).await);
    let (status, body) = app.delete(&format!("/1.2/rtm/broadcasts/{mid}")).await;
    assert_eq!((StatusCode::OK, json!({})), (status, body));
    let (_, list) = app.get("/1.2/rtm/broadcasts").await;
    assert_eq!(json!([]), list);
    let mut late = online(&app, "late").await;
    assert!(late.drain_texts().await.is_empty());
    let (_, body) = app.delete(&format!("/1.2/rtm/broadcasts/{mid}")).await;
    assert_eq!(json!(4404), body["code"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_online_kick_and_stats_see_the_sessions() {
    let app = spawn_app().await;
    let mut alice = online(&app, "alice").await;
    let _bob = online(&app, "bob").await;

    // Assert: the online subset, under both names; more than 20 ids is refused.
    for path in [
        "/1.2/rtm/clients/check-online",
        "/1.2/rtm/clients/online-check",
    ] {
        let (status, body) = app
            .post(path, json!({"client_ids": ["alice", "nobody", "bob"]}))
            .await;
        assert_eq!(
            (StatusCode::OK, json!({"results": ["alice", "bob"]})),
            (status, body)
        );
    }
    let many: Vec<String> = (0..21).map(|i| format!("c{i}")).collect();
    let (status, _) = app
        .post("/1.2/rtm/clients/check-online", json!({"client_ids": many}))
        .await;
    assert_eq!(StatusCode::BAD_REQUEST, status);
    let (_, stats) = app.get("/1.2/rtm/stats").await;
    assert_eq!(json!({"result": {"online_user_count": 2}}), stats);

    // Act: the backend kicks alice; a reason over 20 characters is refused first.
    let (status, _) = app
        .post(
            "/1.2/rtm/clients/alice/kick",
            json!({"reason": "x".repeat(21)}),
        )
        .await;
    assert_eq!(StatusCode::BAD_REQUEST, status);
    let (status, body) = app
        .post("/1.2/rtm/clients/alice/kick", json!({"reason": "spam"}))
        .await;
    assert_eq!((StatusCode::OK, json!({})), (status, body));

    // Assert: her session closes with 4115 KICKED_BY_APP and the reason; she is offline.
    let closed = loop {
        let frame = alice
            .next(WAIT)
            .await
            .expect("session closed before the timeout");
        if frame.command() == Some(CommandType::Session) {
            break frame;
        }
    };
    assert_eq!(Some(OpType::Closed), closed.operation());
    let s = closed.session_message.expect("sessionMessage");
    assert_eq!(
        (
            Some(4115),
            Some("KICKED_BY_APP".to_string()),
            Some("spam".to_string())
        ),
        (s.code, s.reason, s.detail)
    );
    let (_, body) = app
        .post(
            "/1.2/rtm/clients/check-online",
            json!({"client_ids": ["alice", "bob"]}),
        )
        .await;
    assert_eq!(json!({"results": ["bob"]}), body);
}

/// The first frame a send from `ws` gets: its ack's code, if refused.
pub async fn send_code(ws: &mut Ws, cid: &str, text: &str) -> Option<i32> {
    let reply = ws.request(direct(cid, text)).await;
    reply
        .ack_message
        .and_then(|a| a.code)
        .or(reply.error_message.map(|e| e.code))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backends_sends_edits_and_recalls_share_the_messages_bucket() {
    // Arrange: two messages a minute; one send uses one.
    let app = crate::helpers::spawn_with(|c| {
        c.rate_limits = leancloud_server::RateLimits {
            messages_per_minute: Some(2),
            ..leancloud_server::RateLimits::off()
        }
    })
    .await;
    let cid = create(&app, "conversations", json!({"m": ["a"]})).await;
    let (mid, ts) = send(&app, &cid, "a", "one").await;
    let path = format!("/1.2/rtm/conversations/{cid}/messages/{mid}");

    // Act: a refused edit (wrong time) gives its unit back; the right one takes the second.
    let (_, body) = app
        .put(
            &path,
            json!({"from_client": "a", "message": "x", "timestamp": ts + 1}),
        )
        .await;
    assert_eq!(json!(4404), body["code"]);
    let (status, _) = app
        .put(
            &path,
            json!({"from_client": "a", "message": "two", "timestamp": ts}),
        )
        .await;
    assert_eq!(StatusCode::OK, status);

    // Assert: the bucket is full: a recall and a send are refused with 429, and nothing changed.
    let (status, body) = app
        .put(
            &format!("{path}/recall"),
            json!({"from_client": "a", "timestamp": ts}),
        )
        .await;
    assert_eq!(
        (StatusCode::TOO_MANY_REQUESTS, json!(429)),
        (status, body["code"].clone())
    );
    let (status, _) = app
        .post(
            &format!("/1.2/rtm/conversations/{cid}/messages"),
            json!({"from_client": "a", "message": "3"}),
        )
        .await;
    assert_eq!(StatusCode::TOO_MANY_REQUESTS, status);
    assert_eq!(vec![(mid, "two".to_string())], history(&app, &cid).await);
}
