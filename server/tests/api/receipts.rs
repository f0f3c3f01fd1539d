//! Receipts (issue 22): a `direct` sent with `r: true` gets an `rcp` back at its sender when a recipient acks
//! it, and one with `read: true` when the recipient reads; `conv/max_read` answers the positions. Who gets
//! what is asserted exactly: never the reader, never for a message without `r`, never from a non-member.

use leancloud_server::realtime::proto::{
    AckCommand, CommandType, ConvCommand, DirectCommand, GenericCommand, MaxReadTuple, OpType,
    ReadCommand, ReadTuple,
};
use serde_json::json;

use crate::helpers::{spawn_app, spawn_instances};
use crate::notify::online;
use crate::realtime::{connect, Ws, QUIET, WAIT};

/// The next frame of command `cmd` (pushes seen earlier first); others are kept aside.
pub async fn push_of(ws: &mut Ws, cmd: CommandType) -> GenericCommand {
    if let Some(at) = ws.pushes.iter().position(|f| f.command() == Some(cmd)) {
        return ws.pushes.remove(at);
    }
    loop {
        let frame = ws
            .next(WAIT)
            .await
            .unwrap_or_else(|| panic!("a {cmd:?} push before the timeout"));
        if frame.command() == Some(cmd) {
            return frame;
        }
        ws.pushes.push(frame);
    }
}

/// Asserts that no frame of command `cmd` arrives within `QUIET` (nor was seen before).
pub async fn none_of(ws: &mut Ws, cmd: CommandType) {
    while let Some(frame) = ws.next(QUIET).await {
        ws.pushes.push(frame);
    }
    let found: Vec<_> = ws
        .pushes
        .iter()
        .filter(|f| f.command() == Some(cmd))
        .collect();
    assert!(found.is_empty(), "no {cmd:?} expected, got {found:?}");
}

fn direct_with_receipt(cid: &str, text: &str, receipt: bool) -> GenericCommand {
    GenericCommand {
        direct_message: Some(DirectCommand {
            msg: Some(text.into()),
            cid: Some(cid.into()),
            r: receipt.then_some(true),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Direct, None)
    }
}

/// Sends and returns the message's (id, timestamp) from the `ack`.
async fn sent(ws: &mut Ws, cid: &str, text: &str, receipt: bool) -> (String, i64) {
    let ack = ws.request(direct_with_receipt(cid, text, receipt)).await;
    let a = ack.ack_message.expect("ack");
    (a.uid.expect("uid"), a.t.expect("t"))
}

fn ack(cid: &str, fromts: Option<i64>, tots: Option<i64>, mid: Option<&str>) -> GenericCommand {
    GenericCommand {
        ack_message: Some(AckCommand {
            cid: Some(cid.into()),
            fromts,
            tots,
            mid: mid.map(str::to_owned),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Ack, None)
    }
}

fn read(cid: &str, timestamp: i64) -> GenericCommand {
    GenericCommand {
        read_message: Some(ReadCommand {
            convs: vec![ReadTuple {
                cid: cid.into(),
                timestamp: Some(timestamp),
                mid: None,
            }],
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Read, None)
    }
}

fn max_read(cid: &str, all: bool) -> GenericCommand {
    GenericCommand {
        conv_message: Some(ConvCommand {
            cid: Some(cid.into()),
            query_all_members: all.then_some(true),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Conv, Some(OpType::MaxRead))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_and_a_read_of_a_message_sent_with_r_reach_its_sender_as_rcp() {
    // Arrange: alice and bob in a conversation, both online; alice sends one message asking for receipts and
    // one that does not.
    let app = spawn_app().await;
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let mut alice = online(&app, "alice").await;
    let mut bob = online(&app, "bob").await;
    let (wanted, t1) = sent(&mut alice, &conv, "with receipt", true).await;
    let (_plain, t2) = sent(&mut alice, &conv, "without", false).await;
    assert_eq!(vec!["with receipt", "without"], bob.texts(2).await);

    // Act: bob acks both as the SDK does (fromts..tots).
    let before = chrono::Utc::now().timestamp_millis();
    bob.send(&ack(&conv, Some(t1), Some(t2), None)).await;

    // Assert: alice gets one delivery receipt, for the message that asked; bob gets none.
    let rcp = push_of(&mut alice, CommandType::Rcp).await;
    assert_eq!(Some("alice".to_string()), rcp.peer_id);
    let r = rcp.rcp_message.expect("rcpMessage");
    assert_eq!(Some(wanted.clone()), r.id);
    assert_eq!(Some(conv.clone()), r.cid);
    assert_eq!(Some("bob".to_string()), r.from);
    assert_eq!(None, r.read, "a delivery receipt is not a read one");
    assert!(r.t.expect("t") >= before, "t is when the ack came: {r:?}");
    none_of(&mut alice, CommandType::Rcp).await;
    none_of(&mut bob, CommandType::Rcp).await;

    // Act: bob reads the conversation up to the second message.
    bob.send(&read(&conv, t2)).await;

    // Assert: alice gets a read receipt for the message that asked.
    let rcp = push_of(&mut alice, CommandType::Rcp).await;
    let r = rcp.rcp_message.expect("rcpMessage");
    assert_eq!(Some(wanted.clone()), r.id);
    assert_eq!(Some(true), r.read);
    assert_eq!(Some(t2), r.t, "t is the read position");
    assert_eq!(Some("bob".to_string()), r.from);
    none_of(&mut alice, CommandType::Rcp).await;
    none_of(&mut bob, CommandType::Rcp).await;

    // Act + assert: an ack naming the message by id (no timestamps) is a delivery receipt too.
    bob.send(&ack(&conv, None, None, Some(&wanted))).await;
    let r = push_of(&mut alice, CommandType::Rcp)
        .await
        .rcp_message
        .expect("rcpMessage");
    assert_eq!((Some(wanted), None), (r.id, r.read));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_read_answers_the_other_members_positions_and_refuses_outsiders() {
    // Arrange: bob acked up to the first message and read up to the second, carol did nothing.
    let app = spawn_app().await;
    let conv = app
        .conversation(json!({"m": ["alice", "bob", "carol"]}))
        .await;
    let mut alice = online(&app, "alice").await;
    let mut bob = online(&app, "bob").await;
    let (_, t1) = sent(&mut alice, &conv, "one", true).await;
    let (_, t2) = sent(&mut alice, &conv, "two", true).await;
    bob.send(&ack(&conv, Some(t1), Some(t1), None)).await;
    let _ = push_of(&mut alice, CommandType::Rcp).await;
    bob.send(&read(&conv, t2)).await;
    let _ = push_of(&mut alice, CommandType::Rcp).await;

    // Act
    let reply = alice.request(max_read(&conv, false)).await;
    let all = alice.request(max_read(&conv, true)).await;

    // Assert: the newest positions of the others (a read counts as delivered), and per member only those
    // with a position.
    assert_eq!(Some(OpType::MaxRead), reply.operation(), "{reply:?}");
    let c = reply.conv_message.expect("convMessage");
    assert_eq!(
        (Some(t2), Some(t2)),
        (c.max_ack_timestamp, c.max_read_timestamp)
    );
    assert!(c.max_read_tuples.is_empty());
    let c = all.conv_message.expect("convMessage");
    assert_eq!(
        vec![MaxReadTuple {
            pid: Some("bob".into()),
            max_ack_timestamp: Some(t2),
            max_read_timestamp: Some(t2),
        }],
        c.max_read_tuples
    );
    // bob's view: alice never acked anything.
    let c = bob
        .request(max_read(&conv, false))
        .await
        .conv_message
        .expect("convMessage");
    assert_eq!((None, None), (c.max_ack_timestamp, c.max_read_timestamp));

    // An outsider is refused, and its acks tell nobody anything.
    let mut eve = online(&app, "eve").await;
    let refused = eve.request(max_read(&conv, false)).await;
    assert_eq!(Some(CommandType::Error), refused.command(), "{refused:?}");
    assert_eq!(4317, refused.error_message.expect("error").code);
    eve.send(&ack(&conv, Some(t1), Some(t2), None)).await;
    eve.send(&read(&conv, t2)).await;
    none_of(&mut alice, CommandType::Rcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_reaches_a_sender_on_another_instance() {
    // Arrange: alice on one instance, bob on the other (one PostgreSQL database).
    let [a, b] = spawn_instances(|_| {}).await;
    let conv = a.conversation(json!({"m": ["alice", "bob"]})).await;
    let mut alice = connect(&a, "lc.protobuf2.3").await;
    alice.login("alice").await;
    let mut bob = connect(&b, "lc.protobuf2.3").await;
    bob.login("bob").await;
    let (wanted, t1) = sent(&mut alice, &conv, "across", true).await;
    assert_eq!(vec!["across"], bob.texts(1).await);

    // Act
    bob.send(&ack(&conv, Some(t1), Some(t1), None)).await;
    bob.send(&read(&conv, t1)).await;

    // Assert
    let first = push_of(&mut alice, CommandType::Rcp)
        .await
        .rcp_message
        .expect("rcp");
    let second = push_of(&mut alice, CommandType::Rcp)
        .await
        .rcp_message
        .expect("rcp");
    assert_eq!(
        vec![(Some(wanted.clone()), None), (Some(wanted), Some(true))],
        vec![(first.id, first.read), (second.id, second.read)]
    );
    none_of(&mut bob, CommandType::Rcp).await;
}
