//! Conversation administration (issue 22): member roles (`conv/member_info_update`, `_ConversationMemberInfo`),
//! shutups (`conv/add_shutup`, `remove_shutup`, `query_shutup`), the blacklist (`blacklist` `block`,
//! `unblock`, `query`), the owner who cannot leave, and `GET /1.1/rtm/notifications` for what a client
//! missed while offline. Exact reply fields, and who heard which push.

use leancloud_server::realtime::proto::{
    BlacklistCommand, CommandType, ConvCommand, ConvMemberInfo, DirectCommand, ErrorCommand,
    GenericCommand, OpType,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_instances, Key, TestApp};
use crate::notify::online;
use crate::realtime::{connect, Ws, QUIET, WAIT};

/// The next `conv` push with op `op` (pushes seen earlier first); others are kept aside.
async fn conv_push(ws: &mut Ws, op: OpType) -> ConvCommand {
    let wanted = |f: &GenericCommand| {
        f.command() == Some(CommandType::Conv) && f.operation() == Some(op) && f.i.is_none()
    };
    if let Some(at) = ws.pushes.iter().position(wanted) {
        return ws.pushes.remove(at).conv_message.expect("convMessage");
    }
    loop {
        let frame = ws
            .next(WAIT)
            .await
            .unwrap_or_else(|| panic!("a {op:?} push before the timeout"));
        if wanted(&frame) {
            assert!(frame.server_ts.is_some(), "serverTs on {frame:?}");
            return frame.conv_message.expect("convMessage");
        }
        ws.pushes.push(frame);
    }
}

/// The `conv` pushes' ops that arrive within `QUIET` (with those seen earlier), taking them.
async fn conv_ops(ws: &mut Ws) -> Vec<OpType> {
    while let Some(frame) = ws.next(QUIET).await {
        ws.pushes.push(frame);
    }
    let frames = std::mem::take(&mut ws.pushes);
    frames
        .into_iter()
        .filter(|f| f.command() == Some(CommandType::Conv))
        .filter_map(|f| f.operation())
        .collect()
}

fn conv_cmd(op: OpType, conv: ConvCommand) -> GenericCommand {
    GenericCommand {
        conv_message: Some(conv),
        ..GenericCommand::new(CommandType::Conv, Some(op))
    }
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn role_update(cid: &str, target: &str, role: &str) -> GenericCommand {
    conv_cmd(
        OpType::MemberInfoUpdate,
        ConvCommand {
            cid: Some(cid.into()),
            target_client_id: Some(target.into()),
            info: Some(ConvMemberInfo {
                pid: Some(target.into()),
                role: Some(role.into()),
                info_id: None,
            }),
            ..Default::default()
        },
    )
}

fn with_members(op: OpType, cid: &str, m: &[&str]) -> GenericCommand {
    conv_cmd(
        op,
        ConvCommand {
            cid: Some(cid.into()),
            m: ids(m),
            ..Default::default()
        },
    )
}

fn blacklist(op: OpType, cid: &str, m: &[&str]) -> GenericCommand {
    GenericCommand {
        blacklist_message: Some(BlacklistCommand {
            src_cid: Some(cid.into()),
            to_pids: ids(m),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Blacklist, Some(op))
    }
}

fn text(cid: &str, text: &str) -> GenericCommand {
    GenericCommand {
        direct_message: Some(DirectCommand {
            msg: Some(text.into()),
            cid: Some(cid.into()),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Direct, None)
    }
}

/// The error reply's (code, reason).
fn error_of(reply: &GenericCommand) -> (i32, String) {
    assert_eq!(Some(CommandType::Error), reply.command(), "{reply:?}");
    let e = reply.error_message.as_ref().expect("errorMessage");
    (e.code, e.reason.clone())
}

fn failure(code: i32, reason: &str, pids: &[&str]) -> ErrorCommand {
    ErrorCommand {
        code,
        reason: reason.into(),
        pids: ids(pids),
        ..Default::default()
    }
}

/// A GET with the app key and `client`'s realtime session token.
async fn get_as_client(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    let response = app
        .request(Key::App, Method::GET, path)
        .header("X-LC-IM-Session-Token", token)
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

fn token_of(opened: &GenericCommand) -> String {
    opened
        .session_message
        .as_ref()
        .and_then(|s| s.st.clone())
        .expect("st")
}

fn where_cid(cid: &str) -> String {
    let w = json!({ "cid": cid }).to_string();
    url::form_urlencoded::byte_serialize(w.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_changes_roles_and_every_member_hears_it() {
    // Arrange: alice created the conversation (its owner); bob and carol are members; all online.
    let app = spawn_app().await;
    let cid = app
        .conversation(json!({"c": "alice", "m": ["alice", "bob", "carol"]}))
        .await;
    let mut alice = online(&app, "alice").await;
    let mut bob = online(&app, "bob").await;
    let mut carol = connect(&app, "lc.protobuf2.3").await;
    let carol_token = token_of(&carol.login("carol").await);

    // Act + Assert: a member cannot promote itself; nobody can be made owner; a role must be known.
    let reply = bob.request(role_update(&cid, "bob", "Manager")).await;
    assert_eq!(
        (4320, "CONVERSATION_OPERATION_UNAUTHORIZED".to_string()),
        error_of(&reply)
    );
    let reply = alice.request(role_update(&cid, "bob", "Owner")).await;
    assert_eq!(
        (5130, "OWNER_PROMOTION_NOT_ALLOWED".to_string()),
        error_of(&reply)
    );
    let reply = alice.request(role_update(&cid, "bob", "King")).await;
    assert_eq!(
        (4321, "UNKNOWN_CONVERSATION_ROLE".to_string()),
        error_of(&reply)
    );
    let reply = alice.request(role_update(&cid, "zed", "Manager")).await;
    assert_eq!(4317, error_of(&reply).0, "not a member");
    assert!(
        conv_ops(&mut carol).await.is_empty(),
        "refusals tell nobody"
    );

    // Act: the owner makes bob a manager.
    let reply = alice.request(role_update(&cid, "bob", "Manager")).await;

    // Assert: the reply, and member_info_changed to every member, the owner included.
    assert_eq!(
        Some(OpType::MemberInfoUpdated),
        reply.operation(),
        "{reply:?}"
    );
    assert!(reply.conv_message.is_some(), "the SDK reads convMessage");
    for ws in [&mut alice, &mut bob, &mut carol] {
        let push = conv_push(ws, OpType::MemberInfoChanged).await;
        assert_eq!(Some(cid.clone()), push.cid);
        assert_eq!(Some("alice".to_string()), push.init_by);
        let info = push.info.expect("info");
        assert_eq!(Some("bob".to_string()), info.pid);
        assert_eq!(Some("Manager".to_string()), info.role);
    }

    // Assert: `_ConversationMemberInfo` as a member asks it (getAllMemberInfo), and refused without a token.
    let path = format!(
        "/1.1/classes/_ConversationMemberInfo?client_id=carol&where={}",
        where_cid(&cid)
    );
    let (status, body) = get_as_client(&app, &path, &carol_token).await;
    assert_eq!(StatusCode::OK, status, "{body}");
    let rows: Vec<(String, String)> = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            assert_eq!(cid, r["cid"].as_str().unwrap_or_default());
            (
                r["clientId"].as_str().unwrap_or_default().to_string(),
                r["role"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        vec![
            ("alice".to_string(), "Owner".to_string()),
            ("bob".to_string(), "Manager".to_string())
        ],
        rows
    );
    let (status, _) = get_as_client(&app, &path, "1.forged").await;
    assert_eq!(StatusCode::UNAUTHORIZED, status);
    let (status, _) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/classes/_ConversationMemberInfo",
            Some(json!({"cid": cid, "clientId": "carol", "role": "Manager"})),
        )
        .await;
    assert!(!status.is_success(), "no writes through the storage API");

    // Act + Assert: back to Member; the row goes.
    let reply = alice.request(role_update(&cid, "bob", "Member")).await;
    assert_eq!(
        Some(OpType::MemberInfoUpdated),
        reply.operation(),
        "{reply:?}"
    );
    let push = conv_push(&mut carol, OpType::MemberInfoChanged).await;
    assert_eq!(Some("Member".to_string()), push.info.and_then(|i| i.role));
    let (_, body) = get_as_client(&app, &path, &carol_token).await;
    assert_eq!(
        1,
        body["results"].as_array().map(Vec::len).unwrap_or(0),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_cannot_leave_and_only_the_owner_and_managers_remove_others() {
    // Arrange: alice created both conversations; in the first, bob is a manager.
    let app = spawn_app().await;
    let cid = app
        .conversation(json!({"c": "alice", "m": ["alice", "bob", "carol", "dave", "erin"]}))
        .await;
    let plain = app
        .conversation(json!({"c": "alice", "m": ["alice", "bob"]}))
        .await;
    let mut alice = online(&app, "alice").await;
    let mut bob = online(&app, "bob").await;
    let mut carol = online(&app, "carol").await;
    let reply = alice.request(role_update(&cid, "bob", "Manager")).await;
    assert_eq!(
        Some(OpType::MemberInfoUpdated),
        reply.operation(),
        "{reply:?}"
    );

    // Act: the owner quits, and removes itself with dave.
    let quit = alice
        .request(with_members(OpType::Remove, &cid, &["alice"]))
        .await;
    let partial = alice
        .request(with_members(OpType::Remove, &cid, &["alice", "dave"]))
        .await;
    let kick_owner = bob
        .request(with_members(OpType::Remove, &cid, &["alice"]))
        .await;

    // Assert
    let quit = quit.conv_message.expect("convMessage");
    assert!(quit.allowed_pids.is_empty());
    assert_eq!(
        vec![failure(4324, "CONVERSATION_NEED_OWNER", &["alice"])],
        quit.failed_pids
    );
    let partial = partial.conv_message.expect("convMessage");
    assert_eq!(ids(&["dave"]), partial.allowed_pids);
    assert_eq!(
        vec![failure(4324, "CONVERSATION_NEED_OWNER", &["alice"])],
        partial.failed_pids
    );
    assert_eq!(
        vec![failure(4324, "CONVERSATION_NEED_OWNER", &["alice"])],
        kick_owner.conv_message.expect("c").failed_pids
    );
    assert_eq!(
        ids(&["dave"]),
        conv_push(&mut carol, OpType::MembersLeft).await.m
    );

    // Act + Assert: without managers the creator may leave (LeanCloud's own suite asks both).
    let quit = alice
        .request(with_members(OpType::Remove, &plain, &["alice"]))
        .await
        .conv_message
        .expect("convMessage");
    assert_eq!(ids(&["alice"]), quit.allowed_pids);
    assert!(quit.failed_pids.is_empty());

    // Act + Assert: a plain member cannot remove others, but can leave.
    let reply = carol
        .request(with_members(OpType::Remove, &cid, &["bob"]))
        .await
        .conv_message
        .expect("convMessage");
    assert!(reply.allowed_pids.is_empty());
    assert_eq!(
        vec![failure(
            4320,
            "CONVERSATION_OPERATION_UNAUTHORIZED",
            &["bob"]
        )],
        reply.failed_pids
    );
    assert!(
        !conv_ops(&mut bob).await.contains(&OpType::Left),
        "bob was not removed"
    );

    // Act + Assert: the manager bob removes erin.
    let reply = bob
        .request(with_members(OpType::Remove, &cid, &["erin"]))
        .await
        .conv_message
        .expect("convMessage");
    assert_eq!(ids(&["erin"]), reply.allowed_pids);
    assert!(reply.failed_pids.is_empty());
    let (_, conv) = app.get(&format!("/1.1/classes/_Conversation/{cid}")).await;
    assert_eq!(json!(["alice", "bob", "carol"]), conv["m"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_member_cannot_send_until_the_owner_unmutes_it() {
    // Arrange
    let app = spawn_app().await;
    let cid = app
        .conversation(json!({"c": "alice", "m": ["alice", "bob", "carol"]}))
        .await;
    let mut alice = online(&app, "alice").await;
    let mut bob = online(&app, "bob").await;
    let mut carol = online(&app, "carol").await;

    // Act + Assert: no clients, or too many, are refused before anything else.
    let reply = alice
        .request(with_members(OpType::AddShutup, &cid, &[]))
        .await;
    assert_eq!(4301, error_of(&reply).0);
    let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let reply = alice.request(blacklist(OpType::Block, &cid, &many)).await;
    assert_eq!(4301, error_of(&reply).0);

    // Act + Assert: a member may not mute.
    let reply = carol
        .request(with_members(OpType::AddShutup, &cid, &["bob"]))
        .await;
    assert_eq!(4320, error_of(&reply).0);

    // Act: the owner mutes bob, itself and an outsider.
    let reply = alice
        .request(with_members(
            OpType::AddShutup,
            &cid,
            &["bob", "alice", "zed"],
        ))
        .await;

    // Assert: the reply; `shutuped` to bob only, `members_shutuped` to every member.
    assert_eq!(Some(OpType::ShutupAdded), reply.operation(), "{reply:?}");
    let conv = reply.conv_message.expect("convMessage");
    assert_eq!(ids(&["bob"]), conv.allowed_pids);
    assert_eq!(
        vec![
            failure(4324, "CONVERSATION_NEED_OWNER", &["alice"]),
            failure(4317, "CONVERSATION_MEMBERSHIP_REQUIRED", &["zed"]),
        ],
        conv.failed_pids
    );
    assert_eq!(
        Some("alice".to_string()),
        conv_push(&mut bob, OpType::Shutuped).await.init_by
    );
    for ws in [&mut alice, &mut bob, &mut carol] {
        let push = conv_push(ws, OpType::MembersShutuped).await;
        assert_eq!(ids(&["bob"]), push.m);
        assert_eq!(Some("alice".to_string()), push.init_by);
    }
    assert!(!conv_ops(&mut carol).await.contains(&OpType::Shutuped));
    assert!(!conv_ops(&mut alice).await.contains(&OpType::Shutuped));

    // Assert: bob's send is refused with SILENCED, carol's is not; any member lists the muted.
    let ack = bob.request(text(&cid, "hello?")).await;
    assert_eq!(Some(CommandType::Ack), ack.command());
    assert_eq!(Some(4563), ack.ack_message.expect("ack").code);
    assert!(carol.drain_texts().await.is_empty(), "nothing delivered");
    let ack = carol.request(text(&cid, "hi")).await;
    assert_eq!(None, ack.ack_message.expect("ack").code);
    let reply = carol
        .request(conv_cmd(
            OpType::QueryShutup,
            ConvCommand {
                cid: Some(cid.clone()),
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(Some(OpType::ShutupResult), reply.operation(), "{reply:?}");
    let conv = reply.conv_message.expect("convMessage");
    assert_eq!(ids(&["bob"]), conv.m);
    assert_eq!(None, conv.next);

    // Act + Assert: bob cannot unmute itself; the owner can, and bob speaks again.
    let reply = bob
        .request(with_members(OpType::RemoveShutup, &cid, &["bob"]))
        .await;
    assert_eq!(4320, error_of(&reply).0);
    let reply = alice
        .request(with_members(OpType::RemoveShutup, &cid, &["bob"]))
        .await;
    assert_eq!(Some(OpType::ShutupRemoved), reply.operation());
    assert_eq!(ids(&["bob"]), reply.conv_message.expect("c").allowed_pids);
    conv_push(&mut bob, OpType::Unshutuped).await;
    assert_eq!(
        ids(&["bob"]),
        conv_push(&mut bob, OpType::MembersUnshutuped).await.m
    );
    let ack = bob.request(text(&cid, "back")).await;
    assert_eq!(None, ack.ack_message.expect("ack").code);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_client_is_removed_and_cannot_come_back_until_unblocked() {
    // Arrange
    let app = spawn_app().await;
    let cid = app
        .conversation(json!({"c": "alice", "m": ["alice", "bob", "carol"]}))
        .await;
    let mut alice = online(&app, "alice").await;
    let mut bob = online(&app, "bob").await;
    let mut carol = online(&app, "carol").await;

    // Act + Assert: a member may not block.
    let reply = carol
        .request(blacklist(OpType::Block, &cid, &["bob"]))
        .await;
    assert_eq!(4320, error_of(&reply).0);

    // Act: the owner blocks bob (and tries itself).
    let reply = alice
        .request(blacklist(OpType::Block, &cid, &["bob", "alice"]))
        .await;

    // Assert: the reply; bob hears `left` and `blocked`; the others `members_left` and `members_blocked`.
    assert_eq!(Some(CommandType::Blacklist), reply.command(), "{reply:?}");
    assert_eq!(Some(OpType::Blocked), reply.operation());
    let bl = reply.blacklist_message.expect("blacklistMessage");
    assert_eq!(ids(&["bob"]), bl.allowed_pids);
    assert_eq!(
        vec![failure(4324, "CONVERSATION_NEED_OWNER", &["alice"])],
        bl.failed_pids
    );
    assert_eq!(
        Some("alice".to_string()),
        conv_push(&mut bob, OpType::Left).await.init_by
    );
    assert_eq!(
        Some("alice".to_string()),
        conv_push(&mut bob, OpType::Blocked).await.init_by
    );
    for ws in [&mut alice, &mut carol] {
        assert_eq!(ids(&["bob"]), conv_push(ws, OpType::MembersLeft).await.m);
        assert_eq!(ids(&["bob"]), conv_push(ws, OpType::MembersBlocked).await.m);
    }
    assert!(
        !conv_ops(&mut bob).await.contains(&OpType::MembersBlocked),
        "bob is no longer a member"
    );
    let (_, conv) = app.get(&format!("/1.1/classes/_Conversation/{cid}")).await;
    assert_eq!(json!(["alice", "carol"]), conv["m"]);

    // Assert: bob can neither join nor be added; he cannot send.
    for (ws, who) in [(&mut bob, "joining"), (&mut alice, "added")] {
        let reply = ws
            .request(with_members(OpType::Add, &cid, &["bob"]))
            .await
            .conv_message
            .expect("convMessage");
        assert!(reply.allowed_pids.is_empty(), "{who}");
        assert_eq!(
            vec![failure(4548, "BLOCKED_BY_CONV", &["bob"])],
            reply.failed_pids,
            "{who}"
        );
    }
    let ack = bob.request(text(&cid, "let me in")).await;
    assert!(ack.ack_message.and_then(|a| a.code).is_some() || ack.error_message.is_some());

    // Assert: the owner lists the blocked; a member may not.
    let reply = alice.request(blacklist(OpType::Query, &cid, &[])).await;
    assert_eq!(Some(OpType::QueryResult), reply.operation(), "{reply:?}");
    assert_eq!(
        ids(&["bob"]),
        reply
            .blacklist_message
            .expect("blacklistMessage")
            .blocked_pids
    );
    let reply = carol.request(blacklist(OpType::Query, &cid, &[])).await;
    assert_eq!(4320, error_of(&reply).0);

    // Act + Assert: unblocked, bob hears it and may join again.
    let reply = alice
        .request(blacklist(OpType::Unblock, &cid, &["bob"]))
        .await;
    assert_eq!(Some(OpType::Unblocked), reply.operation());
    assert_eq!(
        ids(&["bob"]),
        reply.blacklist_message.expect("b").allowed_pids
    );
    conv_push(&mut bob, OpType::Unblocked).await;
    assert_eq!(
        ids(&["bob"]),
        conv_push(&mut carol, OpType::MembersUnblocked).await.m
    );
    let reply = bob
        .request(with_members(OpType::Add, &cid, &["bob"]))
        .await
        .conv_message
        .expect("convMessage");
    assert_eq!(ids(&["bob"]), reply.allowed_pids);
}

/// `GET /1.1/rtm/notifications` as the SDK asks it on reconnect.
async fn notifications(app: &TestApp, client: &str, token: &str, since: i64) -> Value {
    let path = format!(
        "/1.1/rtm/notifications?client_id={client}&start_ts={since}&notification_type=permanent"
    );
    let (status, body) = get_as_client(app, &path, token).await;
    assert_eq!(StatusCode::OK, status, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_while_offline_is_answered_by_rtm_notifications() {
    // Arrange: bob logs in (and keeps his session token), then goes offline.
    let app = spawn_app().await;
    let cid = app
        .conversation(json!({"c": "alice", "m": ["alice", "bob", "carol"]}))
        .await;
    let mut alice = online(&app, "alice").await;
    let mut bob = connect(&app, "lc.protobuf2.3").await;
    let opened = bob.login("bob").await;
    let token = token_of(&opened);
    let since = opened.server_ts.expect("serverTs in opened");
    drop(bob);

    // Act: while he is away, alice mutes him and then removes him.
    alice
        .request(with_members(OpType::AddShutup, &cid, &["bob"]))
        .await;
    let reply = alice
        .request(with_members(OpType::Remove, &cid, &["bob"]))
        .await;
    assert_eq!(ids(&["bob"]), reply.conv_message.expect("c").allowed_pids);

    // Assert: what he missed, oldest first, in the shape the SDK dispatches.
    let mut body = json!({});
    for _ in 0..50 {
        body = notifications(&app, "bob", &token, since).await;
        if body["notifications"].as_array().map(Vec::len) >= Some(3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let list = body["notifications"].as_array().expect("notifications");
    let ops: Vec<&str> = list.iter().filter_map(|n| n["op"].as_str()).collect();
    assert_eq!(vec!["shutuped", "members_shutuped", "left"], ops, "{body}");
    let left = &list[2];
    assert_eq!("conv", left["cmd"]);
    assert_eq!(cid, left["cid"].as_str().unwrap_or_default());
    assert_eq!("alice", left["initBy"]);
    assert_eq!(1, left["notificationType"]);
    assert!(left["serverTs"].as_i64() > Some(since));
    assert_eq!(json!(["bob"]), list[1]["m"]);
    assert_eq!(false, body["hasMore"]);

    // Assert: from the last one on, nothing; carol's token does not read bob's; the paging says hasMore.
    let last = left["serverTs"].as_i64().unwrap_or_default();
    let after = notifications(&app, "bob", &token, last).await;
    assert_eq!(json!([]), after["notifications"]);
    let (status, _) = get_as_client(
        &app,
        &format!("/1.1/rtm/notifications?client_id=bob&start_ts={since}"),
        "0.nope",
    )
    .await;
    assert_eq!(StatusCode::UNAUTHORIZED, status);
    let (status, page) = get_as_client(
        &app,
        &format!("/1.1/rtm/notifications?client_id=bob&start_ts={since}&limit=1"),
        &token,
    )
    .await;
    assert_eq!(StatusCode::OK, status);
    assert_eq!(true, page["hasMore"]);
    assert_eq!(
        1,
        page["notifications"].as_array().map(Vec::len).unwrap_or(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutups_blocks_and_roles_reach_members_on_another_instance() {
    // Arrange: alice on one instance, bob and carol on the other (one PostgreSQL database).
    let [a, b] = spawn_instances(|_| {}).await;
    let cid = a
        .conversation(json!({"c": "alice", "m": ["alice", "bob", "carol"]}))
        .await;
    let mut alice = connect(&a, "lc.protobuf2.3").await;
    alice.login("alice").await;
    let mut bob = connect(&b, "lc.protobuf2.3").await;
    bob.login("bob").await;
    let mut carol = connect(&b, "lc.protobuf2.3").await;
    carol.login("carol").await;

    // Act
    alice.request(role_update(&cid, "carol", "Manager")).await;
    alice
        .request(with_members(OpType::AddShutup, &cid, &["bob"]))
        .await;

    // Assert: the pushes crossed; the mute holds on bob's instance.
    let info = conv_push(&mut bob, OpType::MemberInfoChanged).await;
    assert_eq!(Some("carol".to_string()), info.info.and_then(|i| i.pid));
    conv_push(&mut bob, OpType::Shutuped).await;
    assert_eq!(
        ids(&["bob"]),
        conv_push(&mut carol, OpType::MembersShutuped).await.m
    );
    let ack = bob.request(text(&cid, "muted?")).await;
    assert_eq!(Some(4563), ack.ack_message.expect("ack").code);

    // Act + Assert: the manager on instance b blocks bob; alice on a hears it.
    let reply = carol
        .request(blacklist(OpType::Block, &cid, &["bob"]))
        .await;
    assert_eq!(
        ids(&["bob"]),
        reply.blacklist_message.expect("b").allowed_pids
    );
    assert_eq!(
        ids(&["bob"]),
        conv_push(&mut alice, OpType::MembersBlocked).await.m
    );
    conv_push(&mut bob, OpType::Blocked).await;
}
