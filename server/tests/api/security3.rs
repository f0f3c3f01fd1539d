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
    let (mut child, base) = crate::helpers::start_binary(db.to_str().expect("utf-8 path"));
    let client = reqwest::Client::new();
    crate::helpers::wait_ready(&mut child, &base).await;
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

fn open_as(peer: &str) -> GenericCommand {
    GenericCommand {
        app_id: Some(leancloud_server::DEV_APP_ID.into()),
        peer_id: Some(peer.into()),
        session_message: Some(Default::default()),
        ..GenericCommand::new(CommandType::Session, Some(OpType::Open))
    }
}

/// The error a refused command was answered with: (code, reason).
fn error_of(reply: &GenericCommand) -> (i32, String) {
    let e = reply
        .error_message
        .as_ref()
        .unwrap_or_else(|| panic!("an error reply: {reply:?}"));
    (e.code, e.reason.clone())
}

/// R3: one WebSocket opened 300 sessions (300 client ids) in 0.2 s, each accepted, each a login's work.
#[tokio::test]
async fn r3_a_connection_holds_sixteen_sessions_and_a_client_id_sixty_four() {
    let app = crate::helpers::spawn_with(|c| c.realtime.logins_per_minute = 0).await;
    let mut ws = connect(&app, "lc.protobuf2.3").await;
    for i in 0..16 {
        let reply = ws.request(open_as(&format!("c{i}"))).await;
        assert_eq!(Some(OpType::Opened), reply.operation(), "{reply:?}");
    }
    let refused = ws.request(open_as("c16")).await;
    assert_eq!((429, "TOO_MANY_SESSIONS".to_string()), error_of(&refused));
    // A client id already open here logs in again (a reconnect), and the socket still works.
    let again = ws.request(open_as("c3")).await;
    assert_eq!(Some(OpType::Opened), again.operation(), "{again:?}");
    assert_eq!(16, app.server.inspect().online_clients());

    // One client id over 64 sockets: the 65th login is refused, the others stay.
    let mut sockets = Vec::new();
    for _ in 0..64 {
        let mut s = connect(&app, "lc.protobuf2.3").await;
        s.login("many").await;
        sockets.push(s);
    }
    let mut extra = connect(&app, "lc.protobuf2.3").await;
    let refused = extra.request(open_as("many")).await;
    assert_eq!((429, "TOO_MANY_SESSIONS".to_string()), error_of(&refused));
    drop(sockets.pop());
    // Its session ends once the server sees the close; then the login goes through.
    let mut opened = None;
    for _ in 0..50 {
        let reply = extra.request(open_as("many")).await;
        if reply.operation() == Some(OpType::Opened) {
            opened = Some(reply);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(opened.is_some(), "a freed slot is taken again");
}

/// R4: a socket that never opened a session kept its slot for the 380 s idle timeout, renewed by any frame;
/// 24 such sockets shut REST and the console out.
#[tokio::test]
async fn r4_a_socket_without_a_session_is_closed_after_the_login_timeout_whatever_it_sends() {
    let app = crate::helpers::spawn_with(|c| {
        c.realtime.login_timeout = std::time::Duration::from_millis(600);
    })
    .await;
    let mut silent = connect(&app, "lc.protobuf2.3").await;
    let mut chatty = connect(&app, "lc.protobuf2.3").await;
    let mut logged_in = connect(&app, "lc.protobuf2.3").await;
    logged_in.login("honest").await;
    let started = std::time::Instant::now();
    // `echo` every 100 ms is answered, but does not keep a session-less socket open.
    let mut closed_at = None;
    while started.elapsed() < std::time::Duration::from_secs(3) {
        chatty
            .send(&GenericCommand {
                i: Some(1),
                ..GenericCommand::new(CommandType::Echo, None)
            })
            .await;
        if chatty
            .next(std::time::Duration::from_millis(100))
            .await
            .is_none()
        {
            closed_at = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let closed_at = closed_at.expect("the echoing socket without a session is closed");
    assert!(
        closed_at < std::time::Duration::from_millis(1500),
        "{closed_at:?}"
    );
    assert!(silent.next(WAIT).await.is_none(), "the silent one too");
    // The socket with a session is not affected.
    let echo = logged_in
        .request(GenericCommand::new(CommandType::Echo, None))
        .await;
    assert_eq!(Some(CommandType::Echo), echo.command());
}

/// The status of a WebSocket upgrade that the server refuses, `None` when it is accepted.
async fn upgrade_status(addr: std::net::SocketAddr) -> Option<u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "lc.protobuf2.3".parse().expect("header"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => None,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Some(response.status().as_u16())
        }
        Err(e) => panic!("neither accepted nor answered: {e}"),
    }
}

/// R4: WebSockets have a budget of their own, so REST keeps its share of the connection cap; and optionally a
/// share per address.
#[tokio::test]
async fn r4_websockets_beyond_their_budget_are_refused_with_503_and_rest_is_still_served() {
    let app = crate::helpers::spawn_with(|c| {
        c.limits.max_connections = 8;
        c.realtime.max_sockets = Some(3);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(&app, "lc.protobuf2.3").await);
    }
    assert_eq!(Some(503), upgrade_status(app.server.addr()).await);
    let date = app
        .client
        .get(app.url("/1.1/date"))
        .send()
        .await
        .expect("REST answers");
    assert_eq!(200, date.status().as_u16());
    drop(held.pop());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        None,
        upgrade_status(app.server.addr()).await,
        "a freed slot is taken again"
    );

    let per_address = crate::helpers::spawn_with(|c| {
        c.realtime.max_sockets_per_address = 2;
    })
    .await;
    let _a = connect(&per_address, "lc.protobuf2.3").await;
    let _b = connect(&per_address, "lc.protobuf2.3").await;
    assert_eq!(Some(503), upgrade_status(per_address.server.addr()).await);
}

/// R5: the SDK's member query (`containsMembers`: `m` `$all`) read the whole class and failed past the scan
/// bound (4310 at 100,001 conversations); it now narrows to the client's own conversations in SQL.
#[tokio::test]
async fn r5_the_member_query_reads_only_the_clients_conversations_past_the_scan_bound() {
    let app = crate::helpers::spawn_with(|c| c.max_scanned_rows = 40).await;
    for i in 0..60 {
        app.conversation(json!({"m": [format!("x{i}"), "y"], "name": format!("other{i}")}))
            .await;
    }
    let mut mine = Vec::new();
    for i in 0..3 {
        mine.push(
            app.conversation(json!({"m": ["me", format!("z{i}")], "name": format!("mine{i}")}))
                .await,
        );
    }
    let mut ws = connect(&app, "lc.protobuf2.3").await;
    ws.login("me").await;
    let reply = ws
        .request(GenericCommand {
            conv_message: Some(ConvCommand {
                r#where: Some(leancloud_server::realtime::proto::JsonObjectMessage {
                    data: json!({"m": {"$all": ["me"]}}).to_string(),
                }),
                limit: Some(100),
                ..Default::default()
            }),
            ..GenericCommand::new(CommandType::Conv, Some(OpType::Query))
        })
        .await;
    assert_eq!(Some(OpType::Results), reply.operation(), "{reply:?}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&reply.conv_message.unwrap().results.unwrap().data).unwrap();
    let mut ids: Vec<String> = rows
        .iter()
        .map(|r| r["objectId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    mine.sort();
    assert_eq!(mine, ids);
    // A member removed from a conversation no longer finds it: the index follows `m`.
    let (status, body) = app
        .put(
            &format!("/1.1/classes/_Conversation/{}", mine[0]),
            json!({"m": {"__op": "Remove", "objects": ["me"]}}),
        )
        .await;
    assert_eq!(200, status.as_u16(), "{body}");
    let reply = ws
        .request(GenericCommand {
            conv_message: Some(ConvCommand {
                r#where: Some(leancloud_server::realtime::proto::JsonObjectMessage {
                    data: json!({"m": "me"}).to_string(),
                }),
                limit: Some(100),
                ..Default::default()
            }),
            ..GenericCommand::new(CommandType::Conv, Some(OpType::Query))
        })
        .await;
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&reply.conv_message.unwrap().results.unwrap().data).unwrap();
    assert_eq!(2, rows.len(), "{rows:?}");
}

/// R8: any database role could `NOTIFY leancloud_realtime` with a made-up delivery, and every instance pushed
/// it to the victim as a message from whoever the notification named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r8_forged_bus_notifications_are_dropped_and_counted() {
    let [a, b] = crate::helpers::spawn_instances(|_| {}).await;
    let conv = a.conversation(json!({"m": ["ceo", "victim"]})).await;
    let mut victim = connect(&a, "lc.protobuf2.3").await;
    victim.login("victim").await;
    let forged = json!({
        "from": 42, "type": "deliver", "at": chrono::Utc::now().timestamp_millis(),
        "msg": {
            "seq": 1, "msg_id": "forged000000000000000", "timestamp": chrono::Utc::now().timestamp_millis(),
            "conv_id": &conv, "from": "ceo", "data": "wire the money to account 42", "binary": false,
            "kind": "normal", "transient": false, "room": false, "system": false, "audience": ["victim"],
            "valid_till": null, "mention_pids": [], "mention_all": false, "push": null
        }
    })
    .to_string();
    let url = &a.config.postgres.as_ref().expect("on PostgreSQL").url;
    let (pg, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("test cluster reachable");
    tokio::spawn(connection);
    let before = a.server.inspect().bus_rejected();
    // Unsealed, and sealed with a made-up tag.
    for payload in [forged.clone(), format!("{}{forged}", "ab".repeat(32))] {
        pg.execute("SELECT pg_notify('leancloud_realtime', $1)", &[&payload])
            .await
            .expect("notify");
    }
    let mut waited = 0;
    while a.server.inspect().bus_rejected() < before + 2 && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(before + 2, a.server.inspect().bus_rejected());
    // A real message through the other instance still arrives, and it is the only one.
    let (status, body) = b
        .send(json!({"from_peer": "ceo", "conv_id": &conv, "message": "hello", "transient": false}))
        .await;
    assert_eq!(200, status.as_u16(), "{body}");
    assert_eq!(vec!["hello".to_string()], victim.texts(1).await);
}

/// L-h: timestamps were non-decreasing, not increasing, and unread counts and offline delivery compare
/// `timestamp > position`: a message stamped in the same millisecond as the one a client had just read was
/// neither counted nor pushed. Now every message of a conversation has a timestamp of its own.
#[tokio::test]
async fn l_h_messages_sent_at_once_get_distinct_increasing_timestamps() {
    let app = spawn_app().await;
    let conv = app.conversation(json!({"m": ["a", "b"]})).await;
    let sends = (0..40).map(|i| {
        app.send(json!({"from_peer": "a", "conv_id": &conv, "message": format!("m{i}"), "transient": false}))
    });
    for (status, body) in futures::future::join_all(sends).await {
        assert_eq!(200, status.as_u16(), "{body}");
    }
    let stored = app.server.inspect().messages(&conv);
    assert_eq!(40, stored.len());
    let stamps: Vec<i64> = stored.iter().map(|m| m.timestamp).collect();
    assert!(
        stamps.windows(2).all(|w| w[0] < w[1]),
        "in storage order, strictly increasing: {stamps:?}"
    );
}

/// L-f: off loopback, `/v1/route` echoed each request's `Host` header when no public URL was set; the server
/// now refuses to start that way, and says which flag it needs.
#[test]
fn l_f_a_public_listen_address_needs_the_realtime_public_url() {
    let dir = tempfile::tempdir().expect("dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leancloud-server"))
        .args(["--listen", "0.0.0.0:0", "--db"])
        .arg(dir.path().join("db.sqlite3"))
        .env("LEANCLOUD_APP_ID", "l-f-app")
        .env("LEANCLOUD_APP_KEY", "l-f-key")
        .env("LEANCLOUD_APP_MASTER_KEY", "l-f-master-key-not-the-dev-one")
        .output()
        .expect("runs");
    assert_eq!(Some(2), out.status.code());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs --realtime-public-url"), "{stderr}");
    assert!(
        !stderr.contains("l-f-master-key"),
        "no secret in the message"
    );
}

/// The status of a WebSocket upgrade from a page at `origin` (`None`: no `Origin`, as native SDKs).
async fn upgrade_from(addr: std::net::SocketAddr, origin: Option<&str>) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/")
        .into_client_request()
        .expect("request");
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        "lc.protobuf2.3".parse().expect("header"),
    );
    if let Some(origin) = origin {
        headers.insert("Origin", origin.parse().expect("header"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("neither accepted nor answered: {e}"),
    }
}

/// L-e: any web page could open the WebSocket from a visitor's browser (and, with signatures off, log in as
/// anyone). With an allow-list, only the app's pages may; native SDKs send no `Origin` and are let in.
#[tokio::test]
async fn l_e_only_allowed_web_origins_open_the_websocket_and_native_clients_always_do() {
    let app = crate::helpers::spawn_with(|c| {
        c.realtime.allowed_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let addr = app.server.addr();
    assert_eq!(
        101,
        upgrade_from(addr, Some("https://app.example.com")).await
    );
    assert_eq!(
        101,
        upgrade_from(addr, Some("HTTPS://APP.EXAMPLE.COM/")).await
    );
    assert_eq!(101, upgrade_from(addr, None).await);
    assert_eq!(403, upgrade_from(addr, Some("https://evil.example")).await);
    // Without a list, every page may (LeanCloud's default).
    let open = spawn_app().await;
    assert_eq!(
        101,
        upgrade_from(open.server.addr(), Some("https://evil.example")).await
    );
}

/// L-g: any logged-in client could list every conversation started over the WebSocket, members and all. With
/// `--realtime-private-conversations` they get a members-only read ACL.
#[tokio::test]
async fn l_g_private_conversations_are_listed_only_to_their_members() {
    let app = crate::helpers::spawn_with(|c| c.realtime.private_conversations = true).await;
    let mut alice = connect(&app, "lc.protobuf2.3").await;
    alice.login("alice").await;
    let started = alice
        .request(GenericCommand {
            conv_message: Some(ConvCommand {
                m: vec!["bob".into()],
                attr: Some(leancloud_server::realtime::proto::JsonObjectMessage {
                    data: json!({"name": "secret plans"}).to_string(),
                }),
                ..Default::default()
            }),
            ..GenericCommand::new(CommandType::Conv, Some(OpType::Start))
        })
        .await;
    let cid = started.conv_message.expect("started").cid.expect("cid");
    let names = |reply: &GenericCommand| -> Vec<String> {
        crate::realtime::results(reply)
            .iter()
            .map(|r| r["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let mut bob = connect(&app, "lc.protobuf2.3").await;
    bob.login("bob").await;
    let mut eve = connect(&app, "lc.protobuf2.3").await;
    eve.login("eve").await;
    let all = json!({});
    assert_eq!(
        vec!["secret plans"],
        names(&bob.request(crate::realtime::query(all.clone())).await)
    );
    assert_eq!(
        Vec::<String>::new(),
        names(&eve.request(crate::realtime::query(all)).await)
    );
    let (status, _) = app
        .call(
            crate::helpers::Key::App,
            reqwest::Method::GET,
            &format!("/1.1/classes/_Conversation/{cid}"),
            None,
        )
        .await;
    assert_ne!(200, status.as_u16(), "the app key alone does not read it");
    // The members still talk in it.
    let ack = alice
        .request(crate::realtime::direct(&cid, "hi bob"))
        .await
        .ack_message
        .expect("ack");
    assert_eq!(None, ack.code);
    assert_eq!(vec!["hi bob".to_string()], bob.texts(1).await);
}

/// The unread bomb of the hardening bench: a client id that logs in again and again (each login reads and sends
/// its unread conversations) is refused after its burst, at once and cheaply, until its bucket refills.
#[tokio::test]
async fn a_client_id_logging_in_again_and_again_is_refused_after_its_burst() {
    let app = spawn_app().await;
    let mut ws = connect(&app, "lc.protobuf2.3").await;
    for _ in 0..30 {
        let reply = ws.request(open_as("again")).await;
        assert_eq!(Some(OpType::Opened), reply.operation(), "{reply:?}");
    }
    let refused = ws.request(open_as("again")).await;
    assert_eq!((429, "TOO_MANY_LOGINS".to_string()), error_of(&refused));
    assert!(
        refused
            .error_message
            .unwrap()
            .detail
            .unwrap()
            .contains("retry in"),
        "says when"
    );
    let other = ws.request(open_as("someone-else")).await;
    assert_eq!(Some(OpType::Opened), other.operation(), "{other:?}");
}

/// The login limit counts only authenticated logins: with signatures required, someone without the client's
/// signature used to use up its 30 logins by sending unsigned ones, and the client's own signed login was then
/// refused as too frequent.
#[tokio::test]
async fn failed_logins_do_not_use_up_a_client_ids_login_limit() {
    let app = crate::helpers::spawn_with(|c| c.realtime.require_signatures = true).await;
    let mut mallory = connect(&app, "lc.protobuf2.3").await;
    for _ in 0..40 {
        let refused = mallory.request(open_as("victim")).await;
        assert_eq!((4102, "SIGNATURE_FAILED".to_string()), error_of(&refused));
    }
    let mut victim = connect(&app, "lc.protobuf2.3").await;
    let opened = victim.request(crate::realtime::signed_open("victim")).await;
    assert_eq!(Some(OpType::Opened), opened.operation(), "{opened:?}");
}
