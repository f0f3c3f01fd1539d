//! Conversation queries and settings (issue 22, second part): `conv/query` with `$regex` and `$options`,
//! `limit: 0`, the `compact` and last-message flags; `conv/count`; `conv/mute` / `conv/unmute`; `logs` with
//! `l: 0` and `lctype`; `mentioned` in the `unread` notification. Across instances on PostgreSQL.

use leancloud_server::realtime::proto::{
    CommandType, ConvCommand, DirectCommand, GenericCommand, JsonObjectMessage, LogsCommand, OpType,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_instances};
use crate::notify::online;
use crate::realtime::{connect, direct, Ws};
use crate::receipts::{none_of, push_of};

fn query(where_: Value, limit: Option<i32>, flag: Option<i32>) -> GenericCommand {
    GenericCommand {
        conv_message: Some(ConvCommand {
            r#where: Some(JsonObjectMessage {
                data: where_.to_string(),
            }),
            limit,
            flag,
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Conv, Some(OpType::Query))
    }
}

/// The rows of a `conv/query` answer (panics on anything else).
async fn rows(ws: &mut Ws, cmd: GenericCommand) -> Vec<Value> {
    let reply = ws.request(cmd).await;
    assert_eq!(Some(OpType::Results), reply.operation(), "{reply:?}");
    let data = reply
        .conv_message
        .expect("convMessage")
        .results
        .expect("results")
        .data;
    serde_json::from_str::<Vec<Value>>(&data).expect("an array of conversations")
}

fn ids(rows: &[Value]) -> Vec<&str> {
    rows.iter().filter_map(|r| r["objectId"].as_str()).collect()
}

fn conv_op(cid: &str, op: OpType) -> GenericCommand {
    GenericCommand {
        conv_message: Some(ConvCommand {
            cid: Some(cid.into()),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Conv, Some(op))
    }
}

fn logs(cid: &str, l: Option<i32>, lctype: Option<i32>) -> GenericCommand {
    GenericCommand {
        logs_message: Some(LogsCommand {
            cid: Some(cid.into()),
            l,
            lctype,
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Logs, None)
    }
}

/// Sends and returns the message's (id, timestamp) from the `ack`.
async fn sent(ws: &mut Ws, cmd: GenericCommand) -> (String, i64) {
    let ack = ws.request(cmd).await.ack_message.expect("ack");
    (ack.uid.expect("uid"), ack.t.expect("t"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conv_query_takes_regex_with_options_limit_zero_and_the_compact_and_last_message_flags() {
    // Arrange: two conversations of alice's with names alike but for case, one of someone else's.
    let app = spawn_app().await;
    let conv = app
        .conversation(json!({"m": ["alice", "bob"], "name": "js-realtime-sdk-testconv"}))
        .await;
    let other = app
        .conversation(json!({"m": ["alice"], "name": "JS-REALTIME-SDK.other"}))
        .await;
    let _hidden = app
        .conversation(json!({"m": ["carol"], "name": "js-realtime-sdk-hidden", "ACL": {"carol": {"read": true}}}))
        .await;
    let mut alice = online(&app, "alice").await;
    sent(&mut alice, direct(&conv, "first")).await;
    let (mid, ts) = sent(&mut alice, direct(&conv, "last")).await;

    // Act + assert: `matches` with and without `i`, and the SDK's quoted `contains`, `startsWith`, `endsWith`.
    let by_name = |cond: Value| query(json!({ "name": cond }), None, None);
    let mut found = ids(&rows(
        &mut alice,
        by_name(json!({"$regex": "realtime-SDK", "$options": "i"})),
    )
    .await)
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    found.sort();
    let mut both = vec![conv.clone(), other.clone()];
    both.sort();
    assert_eq!(
        both, found,
        "case-insensitive: both of alice's, not carol's"
    );
    let exact = rows(&mut alice, by_name(json!({"$regex": "REALTIME-SDK"}))).await;
    assert_eq!(vec![other.as_str()], ids(&exact));
    let contains = rows(
        &mut alice,
        by_name(json!({"$regex": "\\Qsdk.other\\E", "$options": "i"})),
    )
    .await;
    assert_eq!(
        vec![other.as_str()],
        ids(&contains),
        "\\Q…\\E is literal: '.' is no wildcard"
    );
    let starts = rows(&mut alice, by_name(json!({"$regex": "^\\Qjs-realtime\\E"}))).await;
    assert_eq!(vec![conv.as_str()], ids(&starts));
    let ends = rows(&mut alice, by_name(json!({"$regex": "\\Qtestconv\\E$"}))).await;
    assert_eq!(vec![conv.as_str()], ids(&ends));

    // A pattern the server cannot run is refused with CONVERSATION_QUERY_FAILED, never ignored.
    let refused = alice.request(by_name(json!({"$regex": "(?=js)"}))).await;
    assert_eq!(Some(CommandType::Error), refused.command(), "{refused:?}");
    assert_eq!(4310, refused.error_message.expect("error").code);

    // limit 0: nothing.
    let none = rows(&mut alice, query(json!({"objectId": &conv}), Some(0), None)).await;
    assert!(none.is_empty(), "{none:?}");

    // Without flags: members, no last message.
    let plain = rows(&mut alice, query(json!({"objectId": &conv}), None, Some(0))).await;
    assert_eq!(json!(["alice", "bob"]), plain[0]["m"]);
    assert_eq!(None, plain[0].get("msg"));

    // compact (bit 1): no `m`.
    let compact = rows(&mut alice, query(json!({"objectId": &conv}), None, Some(1))).await;
    assert_eq!(1, compact.len());
    assert_eq!(None, compact[0].get("m"), "{:?}", compact[0]);
    assert_eq!(json!("js-realtime-sdk-testconv"), compact[0]["name"]);

    // Last message (bit 2), with compact too: the last message's content, sender, id and time.
    let last = rows(&mut alice, query(json!({"objectId": &conv}), None, Some(3))).await;
    let row = &last[0];
    assert_eq!(
        (json!("last"), json!("alice"), json!(mid), json!(ts), None),
        (
            row["msg"].clone(),
            row["msg_from"].clone(),
            row["msg_mid"].clone(),
            row["msg_timestamp"].clone(),
            row.get("m")
        )
    );
    // A conversation without messages has no `msg`.
    let empty = rows(
        &mut alice,
        query(json!({"objectId": &other}), None, Some(2)),
    )
    .await;
    assert_eq!(None, empty[0].get("msg"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regex_works_in_the_storage_api_too() {
    let app = spawn_app().await;
    let conv = app
        .conversation(json!({"m": ["alice"], "name": "Hello World"}))
        .await;
    let (status, body) = app
        .get(
            "/1.1/classes/_Conversation?where=%7B%22name%22%3A%7B%22%24regex%22%3A%22%5Ehello%22%2C%22%24options%22%3A%22i%22%7D%7D",
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{body}");
    assert_eq!(
        json!([conv]),
        json!(body["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["objectId"].clone())
            .collect::<Vec<_>>())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_answers_the_members_and_mute_keeps_the_client_in_mu_for_itself() {
    // Arrange
    let app = spawn_app().await;
    let conv = app
        .conversation(json!({"m": ["alice", "bob", "carol"]}))
        .await;
    let mut alice = online(&app, "alice").await;
    let mut bob = online(&app, "bob").await;

    // Act + assert: count is `result` with the number of members.
    let count = alice.request(conv_op(&conv, OpType::Count)).await;
    assert_eq!(Some(OpType::Result), count.operation(), "{count:?}");
    assert_eq!(Some(3), count.conv_message.expect("convMessage").count);

    // mute: `updated` with the time; alice's id in `mu`; nobody else hears of it.
    let muted = alice.request(conv_op(&conv, OpType::Mute)).await;
    assert_eq!(Some(OpType::Updated), muted.operation(), "{muted:?}");
    assert!(muted.conv_message.expect("convMessage").udate.is_some());
    let (_, row) = app.get(&format!("/1.1/classes/_Conversation/{conv}")).await;
    assert_eq!(json!(["alice"]), row["mu"]);
    none_of(&mut bob, CommandType::Conv).await;
    // bob mutes too; muting twice changes nothing.
    bob.request(conv_op(&conv, OpType::Mute)).await;
    alice.request(conv_op(&conv, OpType::Mute)).await;
    let (_, row) = app.get(&format!("/1.1/classes/_Conversation/{conv}")).await;
    assert_eq!(json!(["alice", "bob"]), row["mu"]);
    // The query the SDK makes shows it.
    let seen = rows(&mut alice, query(json!({"objectId": &conv}), None, None)).await;
    assert_eq!(json!(["alice", "bob"]), seen[0]["mu"]);

    // unmute: out of `mu` again.
    let unmuted = alice.request(conv_op(&conv, OpType::Unmute)).await;
    assert_eq!(Some(OpType::Updated), unmuted.operation(), "{unmuted:?}");
    let (_, row) = app.get(&format!("/1.1/classes/_Conversation/{conv}")).await;
    assert_eq!(json!(["bob"]), row["mu"]);

    // An outsider may neither mute nor see a missing conversation's count.
    let mut eve = online(&app, "eve").await;
    let refused = eve.request(conv_op(&conv, OpType::Mute)).await;
    assert_eq!(4317, refused.error_message.expect("error").code);
    let missing = eve
        .request(conv_op("000000000000000000000000", OpType::Count))
        .await;
    assert_eq!(4303, missing.error_message.expect("error").code);
    let (_, row) = app.get(&format!("/1.1/classes/_Conversation/{conv}")).await;
    assert_eq!(json!(["bob"]), row["mu"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_with_l_zero_is_empty_and_lctype_keeps_one_type() {
    // Arrange: plain text, then typed messages of two types, interleaved.
    let app = spawn_app().await;
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let mut alice = online(&app, "alice").await;
    let typed = |t: i32, text: &str| json!({"_lctype": t, "_lctext": text}).to_string();
    sent(&mut alice, direct(&conv, "plain")).await;
    let (t1, _) = sent(&mut alice, direct(&conv, &typed(-1, "one"))).await;
    sent(&mut alice, direct(&conv, &typed(-2, "image"))).await;
    let (t2, _) = sent(&mut alice, direct(&conv, &typed(-1, "two"))).await;
    sent(&mut alice, direct(&conv, &typed(-1, "three"))).await;

    // Act + assert
    let reply = alice.request(logs(&conv, Some(0), None)).await;
    assert!(
        reply.logs_message.expect("logs").logs.is_empty(),
        "l: 0 answers nothing"
    );
    let reply = alice.request(logs(&conv, Some(2), Some(-1))).await;
    let got: Vec<String> = reply
        .logs_message
        .expect("logs")
        .logs
        .into_iter()
        .map(|l| l.msg_id.expect("msgId"))
        .collect();
    // The two newest of type -1, oldest first as `logs` answers: "two" and "three".
    let reply_all = alice.request(logs(&conv, None, Some(-1))).await;
    let all: Vec<String> = reply_all
        .logs_message
        .expect("logs")
        .logs
        .into_iter()
        .map(|l| l.data.expect("data"))
        .collect();
    assert_eq!(
        vec![typed(-1, "one"), typed(-1, "two"), typed(-1, "three")],
        all
    );
    assert_eq!(2, got.len());
    assert_eq!(t2, got[0]);
    assert!(!got.contains(&t1));
    let none = alice.request(logs(&conv, None, Some(1000))).await;
    assert!(none.logs_message.expect("logs").logs.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_says_mentioned_only_where_an_unread_message_mentions_the_client() {
    // Arrange: while bob is offline, alice mentions him in one conversation, mentions all in a second,
    // mentions carol in a third.
    let app = spawn_app().await;
    let by_id = app
        .conversation(json!({"m": ["alice", "bob", "carol"]}))
        .await;
    let by_all = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let other = app
        .conversation(json!({"m": ["alice", "bob", "carol"]}))
        .await;
    let mut alice = online(&app, "alice").await;
    let mention = |cid: &str, pids: &[&str], all: bool| GenericCommand {
        direct_message: Some(DirectCommand {
            msg: Some("hey".into()),
            cid: Some(cid.into()),
            mention_pids: pids.iter().map(|p| p.to_string()).collect(),
            mention_all: all.then_some(true),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Direct, None)
    };
    sent(&mut alice, mention(&by_id, &["bob"], false)).await;
    sent(&mut alice, direct(&by_id, "after")).await;
    sent(&mut alice, mention(&by_all, &[], true)).await;
    sent(&mut alice, mention(&other, &["carol"], false)).await;

    // Act: bob logs in (protocol v3: unread counts).
    let mut bob = connect(&app, "lc.protobuf2.3").await;
    bob.login("bob").await;
    let unread = push_of(&mut bob, CommandType::Unread).await;

    // Assert
    let convs = unread.unread_message.expect("unreadMessage").convs;
    let of = |cid: &str| {
        convs
            .iter()
            .find(|c| c.cid == cid)
            .map(|c| (c.unread, c.mentioned))
    };
    assert_eq!(Some((2, Some(true))), of(&by_id));
    assert_eq!(Some((1, Some(true))), of(&by_all));
    assert_eq!(Some((1, None)), of(&other));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_made_on_one_instance_is_seen_from_the_other() {
    // Arrange: one PostgreSQL database, two instances.
    let [a, b] = spawn_instances(|_| {}).await;
    let conv = a.conversation(json!({"m": ["alice", "bob"]})).await;
    let mut alice = connect(&a, "lc.protobuf2.3").await;
    alice.login("alice").await;
    let mut bob = connect(&b, "lc.protobuf2.3").await;
    bob.login("bob").await;

    // Act
    alice.request(conv_op(&conv, OpType::Mute)).await;

    // Assert
    let seen = rows(&mut bob, query(json!({"objectId": &conv}), None, None)).await;
    assert_eq!(json!(["alice"]), seen[0]["mu"]);
    let count = bob.request(conv_op(&conv, OpType::Count)).await;
    assert_eq!(Some(2), count.conv_message.expect("convMessage").count);
}

fn start_temp(members: &[&str], ttl: Option<i32>, unique: bool) -> GenericCommand {
    GenericCommand {
        conv_message: Some(ConvCommand {
            m: members.iter().map(|m| m.to_string()).collect(),
            temp_conv: Some(true),
            temp_conv_ttl: ttl,
            unique: unique.then_some(true),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Conv, Some(OpType::Start))
    }
}

fn temp_query(ids: &[&str]) -> GenericCommand {
    GenericCommand {
        conv_message: Some(ConvCommand {
            temp_conv_ids: ids.iter().map(|i| i.to_string()).collect(),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Conv, Some(OpType::Query))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_conversation_is_started_shared_by_unique_queried_by_id_and_expires() {
    // Arrange
    let app = spawn_app().await;
    let mut alice = online(&app, "alice").await;
    let mut bob = online(&app, "bob").await;

    // Act: alice starts one (unique, 60 s), then again; bob starts one with the same members.
    let started = alice.request(start_temp(&["bob"], Some(60), true)).await;
    assert_eq!(Some(OpType::Started), started.operation(), "{started:?}");
    let c = started.conv_message.expect("convMessage");
    let cid = c.cid.expect("cid");
    assert!(cid.starts_with("_tmp:"), "{cid}");
    assert!(c.cdate.is_some());
    assert!(
        (59..=60).contains(&c.temp_conv_ttl.expect("tempConvTTL")),
        "{:?}",
        c.temp_conv_ttl
    );
    let again = alice.request(start_temp(&["bob"], Some(60), true)).await;
    assert_eq!(
        Some(cid.clone()),
        again.conv_message.expect("convMessage").cid,
        "unique: the same one"
    );
    let from_bob = bob.request(start_temp(&["alice"], None, true)).await;
    assert_eq!(
        Some(cid.clone()),
        from_bob.conv_message.expect("convMessage").cid,
        "the same members"
    );
    let not_unique = alice.request(start_temp(&["bob"], Some(60), false)).await;
    assert_ne!(
        Some(cid.clone()),
        not_unique.conv_message.expect("convMessage").cid
    );
    // No `_Conversation` row, no notification.
    let (_, listed) = app.get("/1.1/classes/_Conversation").await;
    assert_eq!(json!([]), listed["results"]);
    none_of(&mut bob, CommandType::Conv).await;

    // A message reaches the other member; the conversation answers by id to its members only.
    sent(&mut alice, direct(&cid, "temporary hello")).await;
    assert_eq!(vec!["temporary hello"], bob.texts(1).await);
    let found = rows(&mut bob, temp_query(&[&cid, "_tmp:nothing"])).await;
    assert_eq!(1, found.len(), "{found:?}");
    assert_eq!(
        (
            json!(cid),
            json!(["alice", "bob"]),
            json!(true),
            json!("alice")
        ),
        (
            found[0]["objectId"].clone(),
            found[0]["m"].clone(),
            found[0]["tempConv"].clone(),
            found[0]["c"].clone()
        )
    );
    let ttl = found[0]["ttl"].as_i64().expect("ttl");
    assert!((1..=60).contains(&ttl), "{ttl}");
    let mut eve = online(&app, "eve").await;
    assert!(rows(&mut eve, temp_query(&[&cid])).await.is_empty());
    let refused = eve
        .request(direct(&cid, "intruder"))
        .await
        .ack_message
        .expect("ack");
    assert_eq!(
        Some(4323),
        refused.code,
        "not a member: it does not exist for eve"
    );

    // A bad TTL is refused.
    let bad = alice.request(start_temp(&["bob"], Some(0), false)).await;
    assert_eq!(4301, bad.error_message.expect("error").code);

    // Expiry: a 1 s conversation refuses sends with 4323 once expired, and is no longer found.
    let short = alice.request(start_temp(&["carol"], Some(1), true)).await;
    let short = short.conv_message.expect("convMessage").cid.expect("cid");
    sent(&mut alice, direct(&short, "in time")).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let late = alice
        .request(direct(&short, "too late"))
        .await
        .ack_message
        .expect("ack");
    assert_eq!(
        (Some(4323), None),
        (late.code, late.reason.as_deref()),
        "the code alone: the SDK names it and gives its own message"
    );
    assert!(rows(&mut alice, temp_query(&[&short])).await.is_empty());
    // Starting the same members again gives a new one.
    let renewed = alice.request(start_temp(&["carol"], Some(60), true)).await;
    assert_ne!(Some(short), renewed.conv_message.expect("convMessage").cid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_conversation_is_shared_by_two_instances() {
    let [a, b] = spawn_instances(|_| {}).await;
    let mut alice = connect(&a, "lc.protobuf2.3").await;
    alice.login("alice").await;
    let mut bob = connect(&b, "lc.protobuf2.3").await;
    bob.login("bob").await;
    let cid = alice
        .request(start_temp(&["bob"], Some(60), true))
        .await
        .conv_message
        .expect("convMessage")
        .cid
        .expect("cid");
    let from_bob = bob.request(start_temp(&["alice"], Some(60), true)).await;
    assert_eq!(
        Some(cid.clone()),
        from_bob.conv_message.expect("convMessage").cid
    );
    sent(&mut bob, direct(&cid, "across")).await;
    assert_eq!(vec!["across"], alice.texts(1).await);
    assert_eq!(1, rows(&mut alice, temp_query(&[&cid])).await.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_on_one_device_clears_the_count_on_the_clients_other_sessions() {
    // Arrange: bob on two sockets (two devices), on two instances; alice sends him two messages, one
    // mentioning him.
    let [a, b] = spawn_instances(|_| {}).await;
    let conv = a.conversation(json!({"m": ["alice", "bob"]})).await;
    let mut alice = connect(&a, "lc.protobuf2.3").await;
    alice.login("alice").await;
    let mut phone = connect(&a, "lc.protobuf2.3").await;
    phone.login("bob").await;
    let mut laptop = connect(&b, "lc.protobuf2.3").await;
    laptop.login("bob").await;
    sent(&mut alice, direct(&conv, "one")).await;
    let (last, ts) = sent(&mut alice, direct(&conv, "two")).await;
    assert_eq!(vec!["one", "two"], laptop.texts(2).await);

    // Act: bob reads on his phone.
    phone
        .send(&GenericCommand {
            read_message: Some(leancloud_server::realtime::proto::ReadCommand {
                convs: vec![leancloud_server::realtime::proto::ReadTuple {
                    cid: conv.clone(),
                    timestamp: Some(ts),
                    mid: None,
                }],
                ..Default::default()
            }),
            ..GenericCommand::new(CommandType::Read, None)
        })
        .await;

    // Assert: the laptop (other instance) hears 0 unread, not mentioned, with the last message; alice nothing.
    let unread = push_of(&mut laptop, CommandType::Unread).await;
    assert_eq!(Some("bob".to_string()), unread.peer_id);
    let convs = unread.unread_message.expect("unreadMessage").convs;
    assert_eq!(1, convs.len(), "{convs:?}");
    let t = &convs[0];
    assert_eq!(
        (
            conv.as_str(),
            0,
            Some(false),
            Some(last.as_str()),
            Some(ts),
            Some("two"),
            Some("alice")
        ),
        (
            t.cid.as_str(),
            t.unread,
            t.mentioned,
            t.mid.as_deref(),
            t.timestamp,
            t.data.as_deref(),
            t.from.as_deref()
        )
    );
    none_of(&mut alice, CommandType::Unread).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_conversations_history_is_read_by_its_members_until_it_expires() {
    // Arrange
    let app = spawn_app().await;
    let mut alice = online(&app, "alice").await;
    let mut bob = online(&app, "bob").await;
    let started = alice.request(start_temp(&["bob"], Some(1), false)).await;
    let cid = started.conv_message.expect("convMessage").cid.expect("cid");
    sent(&mut alice, direct(&cid, "one")).await;
    sent(&mut alice, direct(&cid, "two")).await;
    assert_eq!(vec!["one", "two"], bob.texts(2).await);
    let logs = |cid: &str| GenericCommand {
        logs_message: Some(LogsCommand {
            cid: Some(cid.into()),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Logs, None)
    };

    // Act
    let read = bob.request(logs(&cid)).await;
    let mut eve = online(&app, "eve").await;
    let by_eve = eve.request(logs(&cid)).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let expired = bob.request(logs(&cid)).await;

    // Assert
    let texts: Vec<String> = read
        .logs_message
        .expect("logs")
        .logs
        .into_iter()
        .filter_map(|l| l.data)
        .collect();
    assert_eq!(vec!["one", "two"], texts);
    assert_eq!(4323, by_eve.error_message.expect("error").code);
    assert_eq!(4323, expired.error_message.expect("error").code);
}
