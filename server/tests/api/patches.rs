//! Edits and recalls (issue 22): `patch` `modify` answered with `modified` and `lastPatchTime`, the `patch` push
//! to the other members, history (`logs`, the REST history) showing the new version, and only the sender may
//! patch.

use leancloud_server::realtime::proto::{
    CommandType, GenericCommand, LogsCommand, OpType, PatchCommand, PatchItem,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};
use crate::notify::online;
use crate::realtime::{direct, Ws};
use crate::receipts::{none_of, push_of};

const RECALLED: &str = r#"{"_lctype":-127}"#;

async fn sent(ws: &mut Ws, cid: &str, text: &str) -> (String, i64) {
    let a = ws
        .request(direct(cid, text))
        .await
        .ack_message
        .expect("ack");
    (a.uid.expect("uid"), a.t.expect("t"))
}

fn patch(item: PatchItem) -> GenericCommand {
    GenericCommand {
        patch_message: Some(PatchCommand {
            patches: vec![item],
            last_patch_time: Some(1),
        }),
        ..GenericCommand::new(CommandType::Patch, Some(OpType::Modify))
    }
}

fn edit(cid: &str, mid: &str, ts: i64, data: &str) -> GenericCommand {
    patch(PatchItem {
        cid: Some(cid.into()),
        mid: Some(mid.into()),
        timestamp: Some(ts),
        data: Some(data.into()),
        mention_pids: vec!["carol".into()],
        ..Default::default()
    })
}

fn recall(cid: &str, mid: &str, ts: i64) -> GenericCommand {
    patch(PatchItem {
        cid: Some(cid.into()),
        mid: Some(mid.into()),
        timestamp: Some(ts),
        recall: Some(true),
        ..Default::default()
    })
}

/// The conversation's `logs` as (id, data, patchTimestamp), oldest first.
async fn logs(ws: &mut Ws, cid: &str) -> Vec<(String, String, Option<i64>)> {
    let reply = ws
        .request(GenericCommand {
            logs_message: Some(LogsCommand {
                cid: Some(cid.into()),
                ..Default::default()
            }),
            ..GenericCommand::new(CommandType::Logs, None)
        })
        .await;
    reply
        .logs_message
        .expect("logs")
        .logs
        .into_iter()
        .map(|l| {
            (
                l.msg_id.unwrap_or_default(),
                l.data.unwrap_or_default(),
                l.patch_timestamp,
            )
        })
        .collect()
}

async fn rest_history(app: &TestApp, cid: &str) -> Vec<(String, String)> {
    let (status, body) = app
        .get(&format!("/1.1/rtm/messages/history?convid={cid}"))
        .await;
    assert_eq!(StatusCode::OK, status, "{body}");
    body.as_array()
        .expect("array")
        .iter()
        .map(|r: &Value| {
            (
                r["msg-id"].as_str().unwrap_or_default().to_string(),
                r["data"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_and_a_recall_reach_the_other_members_and_history_shows_them() {
    // Arrange: alice, bob and carol in a conversation; alice sent two messages.
    let app = spawn_app().await;
    let conv = app
        .conversation(json!({"m": ["alice", "bob", "carol"]}))
        .await;
    let mut alice = online(&app, "alice").await;
    let mut bob = online(&app, "bob").await;
    let (first, t1) = sent(&mut alice, &conv, "first").await;
    let (second, t2) = sent(&mut alice, &conv, "second").await;
    assert_eq!(vec!["first", "second"], bob.texts(2).await);

    // Act: alice edits the first and recalls the second.
    let before = chrono::Utc::now().timestamp_millis();
    let edited = alice
        .request(edit(&conv, &first, t1, "first, edited"))
        .await;
    let recalled = alice.request(recall(&conv, &second, t2)).await;

    // Assert: each is answered `modified` with its patch time.
    assert_eq!(
        (Some(CommandType::Patch), Some(OpType::Modified)),
        (edited.command(), edited.operation()),
        "{edited:?}"
    );
    let edit_time = edited
        .patch_message
        .expect("patchMessage")
        .last_patch_time
        .expect("lastPatchTime");
    let recall_time = recalled
        .patch_message
        .expect("patchMessage")
        .last_patch_time
        .expect("lastPatchTime");
    assert!(
        edit_time >= before && recall_time >= edit_time,
        "{edit_time} {recall_time}"
    );

    // bob gets both patches, in order, with the new content; the sender gets none of its own.
    let push = push_of(&mut bob, CommandType::Patch).await;
    assert_eq!(Some(OpType::Modify), push.operation());
    assert_eq!(Some("bob".to_string()), push.peer_id);
    let item = push.patch_message.expect("patchMessage").patches.remove(0);
    assert_eq!(
        PatchItem {
            cid: Some(conv.clone()),
            mid: Some(first.clone()),
            timestamp: Some(t1),
            data: Some("first, edited".into()),
            patch_timestamp: Some(edit_time),
            from: Some("alice".into()),
            mention_pids: vec!["carol".into()],
            ..Default::default()
        },
        item
    );
    let item = push_of(&mut bob, CommandType::Patch)
        .await
        .patch_message
        .expect("patch")
        .patches
        .remove(0);
    assert_eq!(
        PatchItem {
            cid: Some(conv.clone()),
            mid: Some(second.clone()),
            timestamp: Some(t2),
            recall: Some(true),
            data: Some(RECALLED.into()),
            patch_timestamp: Some(recall_time),
            from: Some("alice".into()),
            ..Default::default()
        },
        item
    );
    none_of(&mut alice, CommandType::Patch).await;

    // History shows the new versions, in `logs` (with patchTimestamp) and the REST history.
    assert_eq!(
        vec![
            (first.clone(), "first, edited".to_string(), Some(edit_time)),
            (second.clone(), RECALLED.to_string(), Some(recall_time)),
        ],
        logs(&mut bob, &conv).await
    );
    assert_eq!(
        vec![
            (second, RECALLED.to_string()),
            (first, "first, edited".to_string())
        ],
        rest_history(&app, &conv).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_sender_may_patch_a_message_and_an_unknown_one_is_not_found() {
    // Arrange
    let app = spawn_app().await;
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let other = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let mut alice = online(&app, "alice").await;
    let mut bob = online(&app, "bob").await;
    let (mid, t) = sent(&mut alice, &conv, "mine").await;
    assert_eq!(vec!["mine"], bob.texts(1).await);

    // Act
    let by_bob = bob.request(recall(&conv, &mid, t)).await;
    let by_bob_edit = bob.request(edit(&conv, &mid, t, "hijacked")).await;
    let unknown = alice.request(recall(&conv, "no-such-message", t)).await;
    let wrong_conv = alice.request(recall(&other, &mid, t)).await;
    let empty_edit = alice
        .request(patch(PatchItem {
            cid: Some(conv.clone()),
            mid: Some(mid.clone()),
            ..Default::default()
        }))
        .await;

    // Assert: refused with LeanCloud's codes, nothing changed, nobody told.
    let code = |r: &GenericCommand| r.error_message.as_ref().map(|e| (e.code, e.reason.clone()));
    assert_eq!(
        Some((4403, "MESSAGE_OWNERSHIP_REQUIRED".to_string())),
        code(&by_bob)
    );
    assert_eq!(
        Some((4403, "MESSAGE_OWNERSHIP_REQUIRED".to_string())),
        code(&by_bob_edit)
    );
    assert_eq!(
        Some((4404, "MESSAGE_NOT_FOUND".to_string())),
        code(&unknown)
    );
    assert_eq!(
        Some((4404, "MESSAGE_NOT_FOUND".to_string())),
        code(&wrong_conv)
    );
    assert_eq!(
        Some(CommandType::Error),
        empty_edit.command(),
        "{empty_edit:?}"
    );
    assert_eq!(
        vec![(mid, "mine".to_string(), None)],
        logs(&mut alice, &conv).await
    );
    none_of(&mut alice, CommandType::Patch).await;
    none_of(&mut bob, CommandType::Patch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_off_edits_and_a_time_limit_refuse_clients_with_leanclouds_codes() {
    // Arrange: edits are off; recalls allowed for 1 s after sending.
    let app = crate::helpers::spawn_with(|c| {
        c.realtime.patches = leancloud_server::config::PatchPolicy {
            edit: false,
            recall: true,
            window: Some(std::time::Duration::from_secs(1)),
        }
    })
    .await;
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let mut alice = online(&app, "alice").await;
    let mut bob = online(&app, "bob").await;
    let (fresh, t1) = sent(&mut alice, &conv, "fresh").await;
    let (old, t2) = sent(&mut alice, &conv, "old").await;
    assert_eq!(vec!["fresh", "old"], bob.texts(2).await);

    // Act
    let edited = alice.request(edit(&conv, &fresh, t1, "changed")).await;
    let recalled = alice.request(recall(&conv, &fresh, t1)).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let too_late = alice.request(recall(&conv, &old, t2)).await;

    // Assert
    let error = |r: &GenericCommand| {
        r.error_message
            .as_ref()
            .map(|e| (e.code, e.reason.clone(), e.detail.clone()))
    };
    assert_eq!(
        Some((
            4406,
            "MESSAGE_EDIT_DISABLED".to_string(),
            Some("clients may not edit messages in this app".to_string())
        )),
        error(&edited)
    );
    assert_eq!(Some(OpType::Modified), recalled.operation(), "{recalled:?}");
    assert_eq!(
        Some((
            4407,
            "MESSAGE_RECALL_DISABLED".to_string(),
            Some("a message may be edited or recalled only within 1 s of being sent".to_string())
        )),
        error(&too_late)
    );
    assert_eq!(
        vec![
            (fresh.clone(), RECALLED.to_string()),
            (old.clone(), "old".to_string()),
        ],
        logs(&mut bob, &conv)
            .await
            .into_iter()
            .map(|(id, data, _)| (id, data))
            .collect::<Vec<_>>()
    );
    let item = push_of(&mut bob, CommandType::Patch)
        .await
        .patch_message
        .expect("patch")
        .patches
        .remove(0);
    assert_eq!((Some(fresh), Some(true)), (item.mid, item.recall));
    none_of(&mut bob, CommandType::Patch).await;
}

/// `session/open` for `peer` with the `lastPatchTime` the SDK sends.
fn open_since(peer: &str, last_patch_time: i64) -> GenericCommand {
    GenericCommand {
        app_id: Some(leancloud_server::DEV_APP_ID.into()),
        peer_id: Some(peer.into()),
        session_message: Some(leancloud_server::realtime::proto::SessionCommand {
            last_patch_time: Some(last_patch_time),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Session, Some(OpType::Open))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_logging_in_gets_the_patches_it_missed_since_its_last_patch_time() {
    // Arrange: alice sent three messages to bob and one to carol; bob went offline at `since`; then alice
    // edited one, recalled one (after `since`), carol's message was edited too, and bob edited his own.
    let app = spawn_app().await;
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    let elsewhere = app.conversation(json!({"m": ["alice", "carol"]})).await;
    let mut alice = online(&app, "alice").await;
    let (early, te) = sent(&mut alice, &conv, "edited before").await;
    let (edited, t1) = sent(&mut alice, &conv, "to edit").await;
    let (recalled, t2) = sent(&mut alice, &conv, "to recall").await;
    let (not_bobs, t3) = sent(&mut alice, &elsewhere, "carol's").await;
    let _ = alice.request(edit(&conv, &early, te, "seen online")).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let since = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let edit_time = alice
        .request(edit(&conv, &edited, t1, "edited offline"))
        .await
        .patch_message
        .and_then(|p| p.last_patch_time)
        .expect("lastPatchTime");
    let recall_time = alice
        .request(recall(&conv, &recalled, t2))
        .await
        .patch_message
        .and_then(|p| p.last_patch_time)
        .expect("lastPatchTime");
    let _ = alice
        .request(edit(&elsewhere, &not_bobs, t3, "carol's, edited"))
        .await;
    let mut bob_earlier = online(&app, "bob").await;
    let (own, t4) = sent(&mut bob_earlier, &conv, "bob's").await;
    let _ = bob_earlier
        .request(edit(&conv, &own, t4, "bob's, edited"))
        .await;
    drop(bob_earlier);

    // Act: bob logs in with the lastPatchTime of before he went offline.
    let mut bob = crate::realtime::connect(&app, "lc.protobuf2.3").await;
    let opened = bob.request(open_since("bob", since)).await;
    assert_eq!(Some(OpType::Opened), opened.operation(), "{opened:?}");

    // Assert: one `patch` push with exactly the two patches of others' messages in his conversations since then.
    let push = push_of(&mut bob, CommandType::Patch).await;
    let items: Vec<_> = push
        .patch_message
        .expect("patchMessage")
        .patches
        .into_iter()
        .map(|p| {
            (
                p.mid.unwrap_or_default(),
                p.data.unwrap_or_default(),
                p.recall,
                p.patch_timestamp,
                p.from,
                p.timestamp,
            )
        })
        .collect();
    assert_eq!(
        vec![
            (
                edited,
                "edited offline".to_string(),
                None,
                Some(edit_time),
                Some("alice".to_string()),
                Some(t1)
            ),
            (
                recalled,
                RECALLED.to_string(),
                Some(true),
                Some(recall_time),
                Some("alice".to_string()),
                Some(t2)
            ),
        ],
        items
    );
    none_of(&mut bob, CommandType::Patch).await;

    // A login with a lastPatchTime after the last patch gets none; nor does one without.
    let mut again = crate::realtime::connect(&app, "lc.protobuf2.3").await;
    let _ = again.request(open_since("bob", recall_time + 1_000)).await;
    none_of(&mut again, CommandType::Patch).await;
    let mut plain = online(&app, "bob").await;
    none_of(&mut plain, CommandType::Patch).await;
}
