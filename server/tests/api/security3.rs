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
