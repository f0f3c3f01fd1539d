//! The realtime gateway over a real WebSocket: frames captured from `leancloud-realtime@4.3.1`
//! (`realtime-protocol.md`), who receives what, and every kind of bad input.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use leancloud_server::realtime::proto::{
    CommandType, ConvCommand, DirectCommand, GenericCommand, JsonObjectMessage, LogsCommand,
    OpType, SessionCommand,
};
use leancloud_server::realtime::signature::{sign, signed_string, Signed};
use leancloud_server::ws::frame::{decode, encode, Encoded};
use leancloud_server::{Credentials, DEV_APP_ID, DEV_MASTER_KEY};
use prost::Message as _;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{spawn_app, spawn_with, TestApp};

pub const WAIT: Duration = Duration::from_secs(5);
/// How long "nothing else arrives" is watched for.
pub const QUIET: Duration = Duration::from_millis(300);

fn hex_frame(hex: &str) -> Vec<u8> {
    hex::decode(hex).expect("hex")
}

pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_i: i32,
    /// Pushes that arrived while waiting for a reply.
    pub pushes: Vec<GenericCommand>,
    base64: bool,
}

pub async fn connect(app: &TestApp, protocol: &str) -> Ws {
    connect_to(&app.server.addr().to_string(), protocol).await
}

/// A WebSocket to the server at `addr` (`host:port`).
pub async fn connect_to(addr: &str, protocol: &str) -> Ws {
    let url = format!("ws://{addr}/any/path?x=1");
    let mut request = url.into_client_request().expect("request");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().expect("header"));
    let (stream, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade accepted");
    assert_eq!(
        Some(protocol),
        response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok()),
        "the offered subprotocol is echoed"
    );
    Ws {
        stream,
        next_i: 1,
        pushes: Vec::new(),
        base64: protocol.contains("base64"),
    }
}

impl Ws {
    pub async fn send_raw(&mut self, frame: Vec<u8>) {
        self.stream
            .send(Message::Binary(frame.into()))
            .await
            .expect("frame sent");
    }

    pub async fn send(&mut self, cmd: &GenericCommand) {
        let msg = match encode(cmd, self.base64) {
            Encoded::Binary(b) => Message::Binary(b.into()),
            Encoded::Text(t) => Message::Text(t.into()),
        };
        self.stream.send(msg).await.expect("frame sent");
    }

    /// The next frame, or `None` on close or after `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<GenericCommand> {
        loop {
            let item = tokio::time::timeout(wait, self.stream.next())
                .await
                .ok()??;
            match item.ok()? {
                Message::Binary(b) => {
                    return Some(decode(&b, false).expect("server frame decodes"))
                }
                Message::Text(t) => {
                    return Some(decode(t.as_bytes(), true).expect("server frame decodes"))
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Sends `cmd` with the next serial and waits for the frame carrying it; pushes are kept aside.
    pub async fn request(&mut self, mut cmd: GenericCommand) -> GenericCommand {
        let i = self.next_i;
        self.next_i += 1;
        cmd.i = Some(i);
        self.send(&cmd).await;
        loop {
            let frame = self.next(WAIT).await.expect("a reply before the timeout");
            if frame.i == Some(i) {
                return frame;
            }
            self.pushes.push(frame);
        }
    }

    pub async fn login(&mut self, peer: &str) -> GenericCommand {
        let reply = self
            .request(GenericCommand {
                app_id: Some(DEV_APP_ID.into()),
                peer_id: Some(peer.into()),
                session_message: Some(SessionCommand {
                    ua: Some("test".into()),
                    ..Default::default()
                }),
                ..GenericCommand::new(CommandType::Session, Some(OpType::Open))
            })
            .await;
        assert_eq!(Some(CommandType::Session), reply.command(), "{reply:?}");
        assert_eq!(Some(OpType::Opened), reply.operation(), "{reply:?}");
        reply
    }

    /// Every pushed message (text) received within `QUIET` of the last one, pushes seen earlier first.
    pub async fn drain_texts(&mut self) -> Vec<String> {
        self.texts(0).await
    }

    /// Like [`Ws::drain_texts`], but first waits (up to `WAIT`) until at least `n` messages have arrived: for
    /// deliveries that take a hop (the bus between instances) before the first one shows.
    pub async fn texts(&mut self, n: usize) -> Vec<String> {
        let mut frames = std::mem::take(&mut self.pushes);
        let deadline = tokio::time::Instant::now() + WAIT;
        while frames.iter().filter(|f| f.direct_message.is_some()).count() < n
            && tokio::time::Instant::now() < deadline
        {
            match self.next(WAIT).await {
                Some(frame) => frames.push(frame),
                None => break,
            }
        }
        while let Some(frame) = self.next(QUIET).await {
            frames.push(frame);
        }
        frames
            .into_iter()
            .filter_map(|f| f.direct_message.and_then(|d| d.msg))
            .collect()
    }
}

/// `session/open` for `peer` with LeanCloud's login signature (computed with the master key).
/// A fresh nonce per signature: a signature is accepted once.
pub fn nonce() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "n{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Now, in seconds, as an app's backend signs.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

pub fn signed_open(peer: &str) -> GenericCommand {
    let (t, n) = (now_secs(), nonce());
    let s = sign(
        DEV_MASTER_KEY,
        &signed_string(DEV_APP_ID, Signed::Login { client: peer }, t, &n),
    );
    GenericCommand {
        peer_id: Some(peer.into()),
        session_message: Some(SessionCommand {
            t: Some(t),
            n: Some(n),
            s: Some(s),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Session, Some(OpType::Open))
    }
}

/// A reconnect of `peer` with a session token (`r: true`, `st`), as the SDK sends it.
pub fn reopen(peer: &str, token: &str) -> GenericCommand {
    GenericCommand {
        peer_id: Some(peer.into()),
        session_message: Some(SessionCommand {
            r: Some(true),
            st: Some(token.into()),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Session, Some(OpType::Open))
    }
}

/// The session token of a `session/opened` answer.
pub fn session_token(opened: &GenericCommand) -> String {
    opened
        .session_message
        .as_ref()
        .and_then(|m| m.st.clone())
        .expect("a session token")
}

pub fn direct(cid: &str, text: &str) -> GenericCommand {
    GenericCommand {
        direct_message: Some(DirectCommand {
            msg: Some(text.into()),
            cid: Some(cid.into()),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Direct, None)
    }
}

pub fn query(where_: Value) -> GenericCommand {
    GenericCommand {
        conv_message: Some(ConvCommand {
            r#where: Some(JsonObjectMessage {
                data: where_.to_string(),
            }),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Conv, Some(OpType::Query))
    }
}

pub fn results(reply: &GenericCommand) -> Vec<Value> {
    let data = &reply
        .conv_message
        .as_ref()
        .expect("convMessage")
        .results
        .as_ref()
        .expect("results")
        .data;
    serde_json::from_str(data).expect("results are a JSON array")
}

#[tokio::test]
async fn the_sdks_captured_login_frame_is_answered_with_an_explicit_session_command() {
    let app = spawn_with(|c| {
        c.credentials = Credentials::new("emuAppId0000000-gzGzoHsz", "emuAppKey", "emuMasterKey");
    })
    .await;
    let mut ws = connect(&app, "lc.protobuf2.3").await;
    // §3.1, verbatim: session/open for Tom with i = 1.
    ws.send_raw(hex_frame("080010011a18656d754170704964303030303030302d677a477a6f48737a2203546f6d2801b2063d22086a732f342e332e3128003a2462393036336636642d643139632d346532362d623732302d666639306662636665363331900183cfde9ea13498013b")).await;
    let raw = match tokio::time::timeout(WAIT, ws.stream.next()).await {
        Ok(Some(Ok(Message::Binary(b)))) => b.to_vec(),
        other => panic!("a binary reply expected, got {other:?}"),
    };
    // cmd = session (0) must be on the wire, then op = opened (5).
    assert_eq!(&[0x08, 0x00, 0x10, 0x05], &raw[..4]);
    let reply = GenericCommand::decode(&raw[..]).expect("decodes");
    assert_eq!(Some(1), reply.i);
    assert_eq!(Some("Tom"), reply.peer_id.as_deref());
    let session = reply
        .session_message
        .expect("sessionMessage is always present");
    assert!(
        session.st.is_some() && session.st_ttl.is_some(),
        "st comes with stTtl"
    );
    // §3.7 and §3.8, verbatim: echo and session/close are answered with the documented bytes.
    ws.send_raw(hex_frame("080e2804")).await;
    assert_eq!(Some(hex_frame("080e2804")), next_binary(&mut ws).await);
    ws.send_raw(hex_frame("080010042805")).await;
    assert_eq!(Some(hex_frame("080010062805")), next_binary(&mut ws).await);
}

async fn next_binary(ws: &mut Ws) -> Option<Vec<u8>> {
    match tokio::time::timeout(WAIT, ws.stream.next()).await {
        Ok(Some(Ok(Message::Binary(b)))) => Some(b.to_vec()),
        _ => None,
    }
}

#[test]
fn the_sdks_captured_client_frames_decode_to_the_documented_commands() {
    // §3.3 conv/query by objectId.
    let q = decode(
        &hex_frame("080110072802f2061b5000aa06160a147b226f626a6563744964223a22636f6e7631227d"),
        false,
    )
    .expect("decodes");
    assert_eq!(
        (Some(CommandType::Conv), Some(OpType::Query), Some(2)),
        (q.command(), q.operation(), q.i)
    );
    assert_eq!(
        "{\"objectId\":\"conv1\"}",
        q.conv_message.expect("conv").r#where.expect("where").data
    );
    // §3.4 ack: no i, a timestamp range.
    let ack = decode(
        &hex_frame("08032203546f6dca06152205636f6e76313881d095ffbc314081d095ffbc31"),
        false,
    )
    .expect("decodes");
    let a = ack.ack_message.expect("ack");
    assert_eq!(
        (
            None,
            Some("conv1"),
            Some(1_700_000_000_001),
            Some(1_700_000_000_001)
        ),
        (ack.i, a.cid.as_deref(), a.fromts, a.tots)
    );
    // §8.2 a client send.
    let send = decode(&hex_frame("08022803c206550a237b225f6c6374657874223a226869204a65727279222c225f6c6374797065223a2d317d5a05636f6e7631722435313831376236642d393331362d343362362d393863632d393037663833656562373536a80100"), false).expect("decodes");
    let d = send.direct_message.expect("direct");
    assert_eq!(
        Some("{\"_lctext\":\"hi Jerry\",\"_lctype\":-1}"),
        d.msg.as_deref()
    );
    assert_eq!(
        (Some("conv1"), Some(false)),
        (d.cid.as_deref(), d.mention_all)
    );
    // §8.4 logs with a limit; §8.3 conv/add in the caller's order.
    let logs = decode(&hex_frame("08062803ea06090a05636f6e76311002"), false).expect("decodes");
    assert_eq!(
        Some(LogsCommand {
            cid: Some("conv1".into()),
            l: Some(2),
            ..Default::default()
        }),
        logs.logs_message
    );
    let add = decode(
        &hex_frame("080110022803f206130a054361726f6c0a03426f622205636f6e7631"),
        false,
    )
    .expect("decodes");
    assert_eq!(vec!["Carol", "Bob"], add.conv_message.expect("conv").m);
    // §6 the base64 form of a login.
    let b64 = decode(b"CAAQARoYZW11QXBwSWQwMDAwMDAwLWd6R3pvSHN6IgNUb20oAbIGPSIIanMvNC4zLjEoADokNDcwOTU2NTAtNjNkZS00YzVhLTk2MGQtYWEwYTU1MDYyYmY1kAGAvt+eoTSYATs=", true).expect("decodes");
    assert_eq!(
        (Some(CommandType::Session), Some("Tom")),
        (b64.command(), b64.peer_id.as_deref())
    );
    // And the documented minimal conv/results reply is what our encoder writes for the same command.
    let reply = GenericCommand {
        i: Some(2),
        conv_message: Some(ConvCommand {
            results: Some(JsonObjectMessage {
                data: "[{\"objectId\":\"c1\"}]".into(),
            }),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Conv, Some(OpType::Results))
    };
    assert_eq!(
        Encoded::Binary(hex_frame(
            "0801102a2802f20618a206150a135b7b226f626a6563744964223a226331227d5d"
        )),
        encode(&reply, false)
    );
}

#[tokio::test]
async fn a_subprotocol_the_sdk_never_offers_is_refused() {
    let app = spawn_app().await;
    let mut request = format!("ws://{}/", app.server.addr())
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "json".parse().expect("header"));
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(400, response.status().as_u16())
        }
        other => panic!("expected a 400 refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_frames_unknown_commands_and_unopened_peers_get_errors_and_the_socket_keeps_working(
) {
    let app = spawn_app().await;
    let mut ws = connect(&app, "lc.protobuf2.3").await;
    ws.send_raw(vec![0xff, 0xff, 0xff, 0x01, 0x02]).await;
    let err = ws.next(WAIT).await.expect("an error push");
    assert_eq!(Some(CommandType::Error), err.command());
    assert_eq!(
        "MALFORMED_COMMAND",
        err.error_message.expect("errorMessage").reason
    );
    ws.login("Tom").await;
    let unknown = ws
        .request(GenericCommand::new(
            CommandType::Presence,
            Some(OpType::Query),
        ))
        .await;
    assert_eq!(
        "UNSUPPORTED_COMMAND",
        unknown.error_message.expect("error").reason
    );
    let mut other = direct("nope", "hello");
    other.peer_id = Some("Eve".into());
    let refused = ws.request(other).await;
    assert_eq!(4105, refused.error_message.expect("error").code);
    let echo = ws
        .request(GenericCommand::new(CommandType::Echo, None))
        .await;
    assert_eq!(Some(CommandType::Echo), echo.command());
}

#[tokio::test]
async fn a_non_member_can_neither_send_to_nor_see_nor_read_a_private_conversation() {
    let app = spawn_app().await;
    // Private: its ACL grants the public nothing (without an ACL a conversation is public, so anyone may
    // find it and join, as on LeanCloud).
    let conv = app
        .conversation(json!({"m": ["A", "B"], "c": "A", "name": "private", "ACL": {}}))
        .await;
    let public = app.conversation(json!({"m": ["A"], "name": "open"})).await;
    let mut a = connect(&app, "lc.protobuf2.3").await;
    a.login("A").await;
    let mut c = connect(&app, "lc.protobuf2.3").await;
    c.login("C").await;
    let ack = c.request(direct(&conv, "let me in")).await;
    assert_eq!(Some(4401), ack.ack_message.expect("ack").code);
    assert!(results(&c.request(query(json!({"objectId": &conv}))).await).is_empty());
    let logs = c
        .request(GenericCommand {
            logs_message: Some(LogsCommand {
                cid: Some(conv.clone()),
                ..Default::default()
            }),
            ..GenericCommand::new(CommandType::Logs, None)
        })
        .await;
    assert_eq!(4312, logs.error_message.expect("error").code);
    let found = results(&c.request(query(json!({"objectId": &public}))).await);
    assert_eq!(
        json!("open"),
        found[0]["name"],
        "a public conversation can be found (and joined)"
    );
    let seen = results(&a.request(query(json!({"objectId": &conv}))).await);
    assert_eq!(
        vec![json!("A"), json!("B")],
        seen[0]["m"].as_array().cloned().unwrap_or_default()
    );
    assert!(
        app.server.inspect().messages(&conv).is_empty(),
        "the refused send stored nothing"
    );
}

#[tokio::test]
async fn rest_sends_reach_members_system_messages_only_the_chosen_client_and_broadcasts_everyone() {
    let app = spawn_app().await;
    let conv = app.conversation(json!({"m": ["A", "B"], "c": "A"})).await;
    let sys = app
        .conversation(json!({"sys": true, "name": "notices"}))
        .await;
    let mut clients = Vec::new();
    for peer in ["A", "B", "C"] {
        let mut ws = connect(&app, "lc.protobuf2.3").await;
        ws.login(peer).await;
        clients.push(ws);
    }
    for body in [
        json!({"from_peer": "bot", "conv_id": &conv, "message": "to members", "transient": false}),
        json!({"from_peer": "bot", "conv_id": &sys, "message": "to C", "transient": false, "to_peers": ["C"]}),
    ] {
        assert_eq!(200, app.send(body).await.0.as_u16());
    }
    let (status, _) = app
        .post(
            "/1.1/rtm/broadcast",
            json!({"from_peer": "bot", "conv_id": &sys, "message": "to all"}),
        )
        .await;
    assert_eq!(200, status.as_u16());
    let mut received = Vec::new();
    for ws in &mut clients {
        received.push(ws.drain_texts().await);
    }
    assert_eq!(
        vec![
            vec!["to members", "to all"],
            vec!["to members", "to all"],
            vec!["to C", "to all"]
        ],
        received
    );
}

#[tokio::test]
async fn client_sends_are_acked_stored_and_reach_the_others_but_no_session_of_the_sender() {
    let app = spawn_app().await;
    let conv = app.conversation(json!({"m": ["A", "B"], "c": "A"})).await;
    let mut a = connect(&app, "lc.protobuf2.3").await;
    a.login("A").await;
    let mut a2 = connect(&app, "lc.proto2base64.3").await;
    a2.login("A").await;
    let mut b = connect(&app, "lc.proto2base64.3").await;
    b.login("B").await;
    let ack = a
        .request(direct(&conv, "one"))
        .await
        .ack_message
        .expect("ack");
    let stored = app.server.inspect().messages(&conv);
    assert_eq!(1, stored.len());
    assert_eq!(
        (Some(stored[0].msg_id.clone()), Some(stored[0].timestamp)),
        (ack.uid, ack.t)
    );
    assert_eq!(
        ("A", "one"),
        (stored[0].from.as_str(), stored[0].data.as_str())
    );
    assert_eq!(
        Vec::<String>::new(),
        a.drain_texts().await,
        "the sending session gets only its ack"
    );
    assert_eq!(
        Vec::<String>::new(),
        a2.drain_texts().await,
        "nor does the sender's other session"
    );
    assert_eq!(vec!["one"], b.drain_texts().await);
}

fn will(cid: &str, text: &str) -> GenericCommand {
    let mut cmd = direct(cid, text);
    if let Some(dm) = cmd.direct_message.as_mut() {
        dm.will = Some(true);
    }
    cmd
}

/// Found by the fuzz target `realtime_connection`: a `{will: true}` send was delivered at once, like any other.
#[tokio::test]
async fn a_will_message_reaches_the_others_only_when_its_senders_connection_vanishes() {
    let app = spawn_app().await;
    let conv = app.conversation(json!({"m": ["A", "B"], "c": "A"})).await;
    let mut b = connect(&app, "lc.protobuf2.3").await;
    b.login("B").await;

    let mut a = connect(&app, "lc.protobuf2.3").await;
    a.login("A").await;
    for text in ["first will", "A's will"] {
        let ack = a.request(will(&conv, text)).await.ack_message.expect("ack");
        assert_eq!(None, ack.code, "{ack:?}");
        assert_eq!(Some(22), ack.uid.as_ref().map(String::len), "{ack:?}");
        assert!(ack.t.is_some_and(|t| t > 0), "{ack:?}");
    }
    assert_eq!(
        Vec::<String>::new(),
        b.drain_texts().await,
        "kept, not delivered"
    );
    assert!(
        app.server.inspect().messages(&conv).is_empty(),
        "nor stored"
    );
    // The socket is gone without a `session/close`: the newest will is sent, once.
    drop(a);
    assert_eq!(vec!["A's will"], b.texts(1).await);
    let stored = app.server.inspect().messages(&conv);
    assert_eq!(
        vec![("A", "A's will")],
        stored
            .iter()
            .map(|m| (m.from.as_str(), m.data.as_str()))
            .collect::<Vec<_>>()
    );

    // A session closed by its client takes its will with it.
    let mut a = connect(&app, "lc.protobuf2.3").await;
    a.login("A").await;
    a.request(will(&conv, "never sent")).await;
    let closed = a
        .request(GenericCommand {
            peer_id: Some("A".into()),
            ..GenericCommand::new(CommandType::Session, Some(OpType::Close))
        })
        .await;
    assert_eq!(Some(OpType::Closed), closed.operation(), "{closed:?}");
    drop(a);
    assert_eq!(Vec::<String>::new(), b.drain_texts().await);
    assert_eq!(1, app.server.inspect().messages(&conv).len());
}

#[tokio::test]
async fn an_offline_member_gets_its_unread_count_then_the_messages_through_logs() {
    let app = spawn_app().await;
    let conv = app.conversation(json!({"m": ["A", "B"], "c": "A"})).await;
    for text in ["m1", "m2"] {
        app.send(json!({"from_peer": "A", "conv_id": &conv, "message": text, "transient": false}))
            .await;
    }
    let mut b = connect(&app, "lc.protobuf2.3").await;
    b.login("B").await;
    let unread = b.next(WAIT).await.expect("an unread push");
    let tuple = &unread.unread_message.expect("unreadMessage").convs[0];
    assert_eq!(
        (conv.as_str(), 2, Some("m2")),
        (tuple.cid.as_str(), tuple.unread, tuple.data.as_deref())
    );
    let logs = b
        .request(GenericCommand {
            logs_message: Some(LogsCommand {
                cid: Some(conv.clone()),
                l: Some(10),
                ..Default::default()
            }),
            ..GenericCommand::new(CommandType::Logs, None)
        })
        .await;
    let texts: Vec<_> = logs
        .logs_message
        .expect("logs")
        .logs
        .into_iter()
        .filter_map(|l| l.data)
        .collect();
    assert_eq!(vec!["m1", "m2"], texts, "oldest first");
}

#[tokio::test]
async fn a_protocol_1_client_gets_what_it_missed_pushed_as_offline_messages() {
    let app = spawn_app().await;
    let conv = app.conversation(json!({"m": ["A", "B"], "c": "A"})).await;
    app.send(
        json!({"from_peer": "A", "conv_id": &conv, "message": "while away", "transient": false}),
    )
    .await;
    app.send(json!({"from_peer": "A", "conv_id": &conv, "message": "not kept", "transient": true}))
        .await;
    let mut b = connect(&app, "lc.protobuf2.1").await;
    b.login("B").await;
    let push = b.next(WAIT).await.expect("an offline push");
    let d = push.direct_message.expect("direct");
    assert_eq!(
        (Some("while away"), Some(true)),
        (d.msg.as_deref(), d.offline)
    );
    assert_eq!(
        Vec::<String>::new(),
        b.drain_texts().await,
        "transient messages are not kept for offline members"
    );
}

#[tokio::test]
async fn logins_and_conversation_creation_need_signatures_when_required() {
    let app = spawn_with(|c| c.realtime.require_signatures = true).await;
    let mut ws = connect(&app, "lc.protobuf2.3").await;
    let unsigned = ws
        .request(GenericCommand {
            peer_id: Some("Tom".into()),
            session_message: Some(SessionCommand::default()),
            ..GenericCommand::new(CommandType::Session, Some(OpType::Open))
        })
        .await;
    assert_eq!(4102, unsigned.error_message.expect("error").code);
    let t = now_secs();
    let s = sign(
        DEV_MASTER_KEY,
        &signed_string(DEV_APP_ID, Signed::Login { client: "Tom" }, t, "n0"),
    );
    let login = |s: String, t: i64| GenericCommand {
        peer_id: Some("Tom".into()),
        session_message: Some(SessionCommand {
            t: Some(t),
            n: Some("n0".into()),
            s: Some(s),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Session, Some(OpType::Open))
    };
    let signed = ws.request(login(s.clone(), t)).await;
    assert_eq!(Some(OpType::Opened), signed.operation());
    // The same signature again (a replay), and a signature from long ago: refused (review part 3, R7).
    let mut other = connect(&app, "lc.protobuf2.3").await;
    let replay = other.request(login(s, t)).await;
    assert_eq!(
        4102,
        replay.error_message.expect("a replay is refused").code
    );
    let old = t - 400 * 24 * 3600;
    let stale = sign(
        DEV_MASTER_KEY,
        &signed_string(DEV_APP_ID, Signed::Login { client: "Tom" }, old, "n0"),
    );
    let stale = other.request(login(stale, old)).await;
    assert_eq!(
        4102,
        stale
            .error_message
            .expect("an old signature is refused")
            .code
    );
    let start = ws
        .request(GenericCommand {
            conv_message: Some(ConvCommand {
                m: vec!["Jerry".into()],
                ..Default::default()
            }),
            ..GenericCommand::new(CommandType::Conv, Some(OpType::Start))
        })
        .await;
    assert_eq!(4302, start.error_message.expect("error").code);
}

#[tokio::test]
async fn a_second_login_with_the_same_tag_kicks_the_first() {
    let app = spawn_app().await;
    let open = |tag: &str| GenericCommand {
        app_id: Some(DEV_APP_ID.into()),
        peer_id: Some("Tom".into()),
        session_message: Some(SessionCommand {
            tag: Some(tag.into()),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Session, Some(OpType::Open))
    };
    let mut first = connect(&app, "lc.protobuf2.3").await;
    first.request(open("Mobile")).await;
    let mut second = connect(&app, "lc.protobuf2.3").await;
    second.request(open("Mobile")).await;
    let kick = first.next(WAIT).await.expect("a kick");
    assert_eq!(
        (Some(CommandType::Session), Some(OpType::Closed)),
        (kick.command(), kick.operation())
    );
    assert_eq!(
        Some(4111),
        kick.session_message.expect("sessionMessage").code
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_and_its_messages_stay_in_the_store() {
    let app = spawn_with(|c| c.realtime.queue_len = 8).await;
    let conv = app
        .conversation(json!({"m": ["Slow", "Fast"], "c": "Fast"}))
        .await;
    let mut slow = connect(&app, "lc.protobuf2.3").await;
    slow.login("Slow").await;
    let big = "x".repeat(4000);
    let sends = (0..3000).map(|_| {
        app.send(
            json!({"from_peer": "Fast", "conv_id": &conv, "message": &big, "transient": false}),
        )
    });
    let statuses = futures::stream::iter(sends)
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    assert!(
        statuses.iter().all(|(s, _)| s.as_u16() == 200),
        "no send is slowed down or refused"
    );
    assert_eq!(3000, app.server.inspect().messages(&conv).len());
    // Reading now, the client finds the connection closed long before 3,000 messages came through.
    let mut delivered = 0;
    while let Some(frame) = slow.next(WAIT).await {
        delivered += usize::from(frame.direct_message.is_some());
    }
    assert!(delivered < 3000, "disconnected after {delivered} messages");
    // The server goes on serving others.
    let mut fast = connect(&app, "lc.protobuf2.3").await;
    fast.login("Fast").await;
}

#[tokio::test]
async fn idle_connections_oversized_frames_and_command_floods_are_closed_or_refused() {
    let app = spawn_with(|c| {
        c.realtime.idle_timeout = Duration::from_millis(300);
        c.realtime.max_frame_bytes = 1024;
        c.realtime.commands_per_second = 5;
    })
    .await;
    let mut idle = connect(&app, "lc.protobuf2.3").await;
    assert!(
        idle.next(Duration::from_secs(3)).await.is_none(),
        "closed after the idle timeout"
    );
    let mut big = connect(&app, "lc.protobuf2.3").await;
    big.send_raw(vec![0u8; 4096]).await;
    assert!(
        big.next(Duration::from_secs(3)).await.is_none(),
        "closed on a frame over the limit"
    );
    let mut flood = connect(&app, "lc.protobuf2.3").await;
    for _ in 0..30 {
        flood
            .send(&GenericCommand {
                i: Some(1),
                ..GenericCommand::new(CommandType::Echo, None)
            })
            .await;
    }
    let mut refused = 0;
    while let Some(frame) = flood.next(QUIET).await {
        refused += usize::from(
            frame
                .error_message
                .is_some_and(|e| e.reason == "TOO_MANY_COMMANDS"),
        );
    }
    assert!(
        refused >= 15,
        "{refused} of 30 commands refused at 5/s with a burst of 10"
    );
}

#[tokio::test]
async fn the_rtm_router_answers_the_public_address_and_refuses_other_apps() {
    let app = spawn_with(|c| c.realtime.public_url = Some("wss://im.example.com/".into())).await;
    let url = app.url(&format!("/v1/route?appId={DEV_APP_ID}&secure=true&_t=1"));
    let body: Value = app
        .client
        .get(&url)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        json!({"server": "wss://im.example.com/", "secondary": "wss://im.example.com/", "ttl": 3600}),
        body
    );
    let other = app
        .client
        .get(app.url("/v1/route?appId=someone-else"))
        .send()
        .await
        .expect("sent");
    assert_eq!(400, other.status().as_u16());
}

#[tokio::test]
async fn a_reconnect_with_the_session_token_needs_no_signature_and_a_bad_token_is_refused() {
    let app = spawn_with(|c| c.realtime.require_signatures = true).await;
    let mut first = connect(&app, "lc.protobuf2.3").await;
    let st = session_token(&first.request(signed_open("Tom")).await);
    let mut second = connect(&app, "lc.protobuf2.3").await;
    assert_eq!(
        Some(OpType::Opened),
        second.request(reopen("Tom", &st)).await.operation()
    );
    let mut third = connect(&app, "lc.protobuf2.3").await;
    let refused = third.request(reopen("Tom", "forged")).await;
    assert_eq!(4112, refused.error_message.expect("error").code);
}

/// Issue 16 (drain): on shutdown a client is not just cut off. What was queued for it arrives, then a `goaway`
/// push (no `i`: the SDK refreshes its router endpoints and reconnects, to another instance behind the same
/// address), then a 1001 close. Before, the socket was dropped when the process exited.
#[tokio::test]
async fn on_shutdown_every_websocket_client_gets_goaway_then_a_1001_close() {
    let app = spawn_app().await;
    let mut clients = Vec::new();
    for (peer, protocol) in [("Tom", "lc.protobuf2.3"), ("Jerry", "lc.proto2base64.3")] {
        let mut ws = connect(&app, protocol).await;
        ws.login(peer).await;
        clients.push(ws);
    }
    let TestApp {
        server,
        dir,
        client,
        ..
    } = app;
    let health = format!("{}/__admin/health", server.base_url());
    let shutdown = tokio::spawn(server.shutdown());
    for ws in &mut clients {
        let goaway = ws.next(WAIT).await.expect("a goaway before the close");
        assert_eq!(Some(CommandType::Goaway), goaway.command(), "{goaway:?}");
        assert_eq!(None, goaway.i, "a push carries no serial");
        let close = tokio::time::timeout(WAIT, ws.stream.next())
            .await
            .expect("the close frame arrives")
            .expect("a frame")
            .expect("readable");
        let Message::Close(Some(frame)) = close else {
            panic!("expected a close frame, got {close:?}");
        };
        assert_eq!(1001, u16::from(frame.code));
        assert_eq!("server going away", frame.reason.as_str());
    }
    tokio::time::timeout(WAIT, shutdown)
        .await
        .expect("shutdown finishes once the clients are gone")
        .expect("shutdown task");
    assert!(
        client.get(&health).send().await.is_err(),
        "a stopped server accepts no connection"
    );
    drop(dir);
}
