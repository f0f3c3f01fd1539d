//! One regression test per finding of the third review (`review-2026-12-part3-security.md`: the realtime
//! gateway, hooks, console, PostgreSQL bus), named after it.

use leancloud_server::realtime::proto::{CommandType, ConvCommand, GenericCommand, OpType};
use serde_json::json;

use crate::helpers::spawn_app;
use crate::realtime::{connect, WAIT};

/// R1: a login whose unread notification would be bigger than the socket's write buffer used to end right after
/// `opened`; another client could arrange it with ~52 conversations holding a 5,000-byte message each.
#[tokio::test]
async fn r1_a_login_with_seventy_big_unread_conversations_gets_them_all_and_stays_connected() {
    // Arrange: 70 conversations started with the victim, one 5,000-byte message in each
    let app = spawn_app().await;
    let text = "x".repeat(5000);
    let mut cids = Vec::new();
    for i in 0..70 {
        let conv = app
            .conversation(
                json!({"m": ["mallory", "victim"], "c": "mallory", "name": format!("c{i}")}),
            )
            .await;
        let (status, body) = app
            .send(json!({"from_peer": "mallory", "conv_id": &conv, "message": &text, "transient": false}))
            .await;
        assert_eq!(200, status.as_u16(), "{body}");
        cids.push(conv);
    }

    // Act: the victim logs in
    let mut victim = connect(&app, "lc.protobuf2.3").await;
    victim.login("victim").await;
    let mut seen: Vec<String> = Vec::new();
    let mut notifications = 0;
    while seen.len() < cids.len() {
        let frame = victim.next(WAIT).await.unwrap_or_else(|| {
            panic!("the socket closed after {} of 70 conversations", seen.len())
        });
        if let Some(unread) = frame.unread_message {
            notifications += 1;
            for t in unread.convs {
                assert_eq!((1, Some(text.as_str())), (t.unread, t.data.as_deref()));
                seen.push(t.cid);
            }
        }
    }

    // Assert: every conversation once, over several notifications, and the socket still answers
    seen.sort();
    cids.sort();
    assert_eq!(cids, seen);
    assert!(
        notifications > 1,
        "split across notifications: {notifications}"
    );
    let reply = victim
        .request(GenericCommand {
            conv_message: Some(ConvCommand {
                r#where: Some(leancloud_server::realtime::proto::JsonObjectMessage {
                    data: json!({"name": "c0"}).to_string(),
                }),
                ..Default::default()
            }),
            ..GenericCommand::new(CommandType::Conv, Some(OpType::Query))
        })
        .await;
    assert_eq!(Some(OpType::Results), reply.operation(), "{reply:?}");
}

/// The resident memory of process `pid`, in KB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// R10: the request log kept each request's whole path and query allocation (a `truncate` keeps the
/// capacity): 1,500 unauthenticated requests with 60 KB URIs grew the server by 87 MB. It now holds clipped
/// copies within a byte budget.
#[tokio::test]
async fn r10_three_thousand_unauthenticated_60_kb_requests_do_not_grow_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("r10.sqlite3");
    let (child, base) = crate::durability::start_binary(db.to_str().expect("utf-8 path"));
    let client = reqwest::Client::new();
    crate::durability::wait_ready(&client, &base).await;
    let pid = child.0.id();
    let send = |i: usize| {
        let client = client.clone();
        let url = format!("{base}/{}{i}?q={}", "p".repeat(30_000), "q".repeat(30_000));
        async move {
            let response = client.get(url).send().await.expect("answered");
            assert!(response.status().is_client_error(), "{}", response.status());
        }
    };
    // Warm up (allocator arenas, the runtime's buffers), then measure.
    for chunk in (0..200).collect::<Vec<_>>().chunks(8) {
        futures::future::join_all(chunk.iter().map(|&i| send(i))).await;
    }
    let before = rss_kb(pid);
    for chunk in (0..3000).collect::<Vec<_>>().chunks(8) {
        futures::future::join_all(chunk.iter().map(|&i| send(i))).await;
    }
    let grown_mb = rss_kb(pid).saturating_sub(before) / 1024;
    assert!(
        grown_mb < 40,
        "3,000 requests of 60 KB grew the server by {grown_mb} MB (180 MB were pinned before the fix)"
    );
}

/// R9: wrong master keys were answered at full speed (640/s at the REST API). Now ten per minute from one
/// address, at the REST API and the console's sign-in together, then 429 with `Retry-After`, the right key
/// included; other addresses and the app key are not affected.
#[tokio::test]
async fn r9_master_key_guessing_is_throttled_per_address_across_rest_and_console() {
    use leancloud_server::{DEV_APP_ID, DEV_APP_KEY, DEV_MASTER_KEY};
    let app = spawn_app().await;
    let base = app.server.base_url();
    let client = reqwest::Client::new();
    let rest = |key: String| {
        client
            .get(format!("{base}/1.1/classes/_Conversation"))
            .header("X-LC-Id", DEV_APP_ID)
            .header("X-LC-Key", key)
            .send()
    };
    for i in 0..6 {
        let r = rest(format!("guess{i},master")).await.expect("sent");
        assert_eq!(401, r.status().as_u16());
    }
    for i in 0..4 {
        let r = client
            .post(format!("{base}/console/api/session"))
            .header("Content-Type", "application/json")
            .body(json!({"masterKey": format!("console-guess{i}")}).to_string())
            .send()
            .await
            .expect("sent");
        assert_eq!(401, r.status().as_u16());
    }
    // The eleventh attempt, even with the right key, waits.
    let r = rest(format!("{DEV_MASTER_KEY},master"))
        .await
        .expect("sent");
    assert_eq!(429, r.status().as_u16());
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(json!(429), body["code"]);
    assert!(!body.to_string().contains(DEV_MASTER_KEY));
    let r = client
        .post(format!("{base}/console/api/session"))
        .header("Content-Type", "application/json")
        .body(json!({"masterKey": DEV_MASTER_KEY}).to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(429, r.status().as_u16());
    // The app key from the same address, and the master key from another address, still work.
    let r = rest(DEV_APP_KEY.to_string()).await.expect("sent");
    assert_ne!(429, r.status().as_u16());
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("client");
    let r = other
        .get(format!("{base}/1.1/classes/_Conversation"))
        .header("X-LC-Id", DEV_APP_ID)
        .header("X-LC-Key", format!("{DEV_MASTER_KEY},master"))
        .send()
        .await
        .expect("sent");
    assert_eq!(200, r.status().as_u16());
}

/// R11: mention lists were matched against the offline members by a linear scan per member (8,000 × 8,000 string
/// comparisons on a runtime thread). The lookups are sets now, and a message mentions at most 500 clients: more
/// is refused (4401), the limit itself goes through with every mention kept.
#[tokio::test]
async fn r11_a_message_mentions_at_most_five_hundred_clients() {
    use leancloud_server::realtime::proto::DirectCommand;
    let app = spawn_app().await;
    let members: Vec<String> = std::iter::once("alice".to_string())
        .chain((0..600).map(|i| format!("m{i}")))
        .collect();
    let cid = app.conversation(json!({"m": members, "c": "alice"})).await;
    let mut alice = connect(&app, "lc.protobuf2.3").await;
    alice.login("alice").await;
    let mention = |n: usize| GenericCommand {
        direct_message: Some(DirectCommand {
            msg: Some(format!("hello {n}")),
            cid: Some(cid.clone()),
            mention_pids: (0..n).map(|i| format!("m{i}")).collect(),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Direct, None)
    };
    let refused = alice.request(mention(501)).await;
    let ack = refused.ack_message.expect("an ack");
    assert_eq!(
        (Some(4401), Some("INVALID_MESSAGING_TARGET")),
        (ack.code, ack.reason.as_deref())
    );
    let accepted = alice.request(mention(500)).await;
    let ack = accepted.ack_message.expect("an ack");
    assert_eq!(None, ack.code, "{ack:?}");
    let (status, history) = app
        .get(&format!("/1.1/rtm/messages/history?convid={cid}&limit=10"))
        .await;
    assert_eq!(200, status.as_u16());
    let stored = history.as_array().expect("records");
    assert_eq!(
        1,
        stored.len(),
        "only the accepted message is stored: {history}"
    );
    assert_eq!(json!("hello 500"), stored[0]["data"]);
    assert_eq!(
        500,
        stored[0]["mention-pids"].as_array().map_or(0, Vec::len),
        "{}",
        stored[0]
    );
}

/// R2: `read` and `ack` stored a position row for any conversation id, of any length (302 rows from one
/// fresh client). Only conversations the client is in (or service conversations) move a position now.
#[tokio::test]
async fn r2_read_and_ack_move_positions_only_in_the_clients_own_conversations() {
    use leancloud_server::realtime::proto::{AckCommand, ReadCommand, ReadTuple};
    let app = spawn_app().await;
    let own = app
        .conversation(json!({"m": ["mallory", "bob"], "c": "bob"}))
        .await;
    let others = app
        .conversation(json!({"m": ["alice", "bob"], "c": "bob"}))
        .await;
    let mut mallory = connect(&app, "lc.protobuf2.3").await;
    mallory.login("mallory").await;
    let junk: Vec<String> = (0..250).map(|i| format!("junk{i:04}")).collect();
    let long = "x".repeat(40_000);
    let mut convs: Vec<ReadTuple> = junk
        .iter()
        .chain([&long, &others, &own])
        .map(|cid| ReadTuple {
            cid: cid.clone(),
            timestamp: Some(1_000),
            ..Default::default()
        })
        .collect();
    convs.truncate(253);
    mallory
        .send(&GenericCommand {
            peer_id: Some("mallory".into()),
            read_message: Some(ReadCommand {
                convs,
                ..Default::default()
            }),
            ..GenericCommand::new(CommandType::Read, None)
        })
        .await;
    for cid in [&others, &"junk-ack".to_string()] {
        mallory
            .send(&GenericCommand {
                peer_id: Some("mallory".into()),
                ack_message: Some(AckCommand {
                    cid: Some(cid.clone()),
                    tots: Some(2_000),
                    ..Default::default()
                }),
                ..GenericCommand::new(CommandType::Ack, None)
            })
            .await;
    }
    // A request after them: the server handled the frames in order before answering it.
    let reply = mallory
        .request(GenericCommand {
            conv_message: Some(ConvCommand {
                cid: Some(own.clone()),
                ..Default::default()
            }),
            ..GenericCommand::new(CommandType::Conv, Some(OpType::MaxRead))
        })
        .await;
    assert!(reply.conv_message.is_some(), "{reply:?}");

    let inspect = app.server.inspect();
    assert_eq!(
        Some((1_000, 1_000)),
        inspect.position(&own, "mallory").await,
        "a read is a delivery too"
    );
    assert_eq!(None, inspect.position(&others, "mallory").await);
    assert_eq!(None, inspect.position("junk-ack", "mallory").await);
    assert_eq!(None, inspect.position(&long, "mallory").await);
    for cid in junk.iter().take(5) {
        assert_eq!(None, inspect.position(cid, "mallory").await);
    }
}
