//! Every request of the 1.2 REST server API (`leancloud_im::rtm2`) against a local mock server: the exact request
//! line (method, path, raw query), the body bytes with the documented snake_case keys, the master signature, and
//! the typed answer (`docs/leancloud-users-files-push.md` §4 of the shared docs). Then the limits checked before
//! sending.

#![allow(clippy::unwrap_used)]

use leancloud_im::rtm2::{
    AddMemberInfo, AddMembers, AddMutes, Block, BlockConversation, Blocked, Broadcasts,
    CheckOnline, ClientBlacklist, ClientPage, Create, Delete, DeleteBroadcast, DeleteMemberInfo,
    DeleteMessage, EditMessage, GlobalBroadcast, Kick, LiftPermanentSilence, LiftTemporarySilence,
    MemberInfo, MemberInfos, Members, Mutes, OnlineCount, PermanentSilence, PermanentlySilenced,
    Priority, Query, RecallMessage, RemoveMembers, RemoveMutes, Role, Scope, SendMessage, Stats,
    StatsResult, Subscribe, SubscriberBroadcast, SubscriberCount, Subscribers, Subscription,
    TemporarySilence, Unblock, UnblockConversation, Unsubscribe, Update, UpdateMemberInfo,
};
use leancloud_im::{
    ConversationId, Error, MessageId, PushData, Request, ValidationError, MAX_MESSAGE_BYTES,
};
use pretty_assertions::assert_eq;
use serde_json::json;

mod support;
use support::*;

const EMPTY: &str = "{}";
const RESULT_EMPTY: &str = r#"{"result":{}}"#;
const UPDATED: &str = r#"{"updatedAt":"2026-01-01T00:00:00.000Z","objectId":"c1"}"#;
const SENT: &str = r#"{"msg-id":"qNkRkFWOeSqP65S9fDyHJw","timestamp":1495431811151}"#;

fn c1() -> ConversationId {
    ConversationId::parse("c1").unwrap()
}

fn mid(s: &str) -> MessageId {
    MessageId::parse(s).unwrap()
}

async fn check<R: Request>(request: &R, line: &str, body: Option<&str>, answer: &str) -> R::Response
where
    R::Response: std::fmt::Debug,
{
    assert_eq!("1.2", request.api_version(), "{line}");
    assert_wire(request, line, body, json_reply(200, answer)).await
}

fn assert_updated(updated: &leancloud_im::rtm2::Updated) {
    assert_eq!(Some("c1"), updated.object_id.as_deref());
    assert_eq!(
        "2026-01-01T00:00:00+00:00",
        updated.updated_at.unwrap().to_rfc3339()
    );
}

fn assert_sent(sent: &leancloud_im::SentMessage) {
    assert_eq!(
        Some("qNkRkFWOeSqP65S9fDyHJw"),
        sent.msg_id.as_ref().map(|id| id.as_str())
    );
    assert_eq!(Some(1495431811151), sent.timestamp);
}

#[tokio::test]
async fn conversations_are_created_queried_updated_and_deleted() {
    let created = check(
        &Create::new(Scope::Conversation)
            .name("team")
            .members([cid("a"), cid("b")])
            .unique(true)
            .attribute("topic", "发布"),
        "POST /1.2/rtm/conversations",
        Some(r#"{"name":"team","m":["a","b"],"unique":true,"topic":"\u53d1\u5e03"}"#),
        r#"{"unique":true,"updatedAt":"2026-01-01T00:00:00.000Z","name":"team","objectId":"c1","m":["a","b"],"createdAt":"2026-01-01T00:00:00.000Z","uniqueId":"0123456789abcdef0123456789abcdef"}"#,
    )
    .await;
    assert_eq!("c1", created.id.as_str());
    assert_eq!(json!(["a", "b"]), created.extra["m"]);
    let room = check(
        &Create::new(Scope::Chatroom).name("lobby"),
        "POST /1.2/rtm/chatrooms",
        Some(r#"{"name":"lobby"}"#),
        r#"{"objectId":"c1","createdAt":"2026-01-01T00:00:00.000Z"}"#,
    )
    .await;
    assert_eq!("c1", room.id.as_str());
    check(
        &Create::new(Scope::ServiceConversation).name("news"),
        "POST /1.2/rtm/service-conversations",
        Some(r#"{"name":"news"}"#),
        r#"{"objectId":"c1","createdAt":"2026-01-01T00:00:00.000Z"}"#,
    )
    .await;

    let mut condition = serde_json::Map::new();
    condition.insert("name".into(), json!("team"));
    let found = check(
        &Query::new(Scope::Conversation)
            .condition(condition)
            .skip(5)
            .limit(10),
        "GET /1.2/rtm/conversations?where=%7B%22name%22%3A%22team%22%7D&skip=5&limit=10",
        None,
        r#"{"results":[{"objectId":"c1","name":"team","m":["a"]}]}"#,
    )
    .await;
    assert_eq!(vec![cid("a")], found.results[0].members);
    check(
        &Query::new(Scope::Chatroom),
        "GET /1.2/rtm/chatrooms",
        None,
        r#"{"results":[]}"#,
    )
    .await;

    let updated = check(
        &Update::new(Scope::Conversation, c1())
            .set("name", "renamed")
            .set("level", 2),
        "PUT /1.2/rtm/conversations/c1",
        Some(r#"{"name":"renamed","level":2}"#),
        UPDATED,
    )
    .await;
    assert_updated(&updated);
    check(
        &Delete::new(Scope::ServiceConversation, c1()),
        "DELETE /1.2/rtm/service-conversations/c1",
        None,
        EMPTY,
    )
    .await;
}

#[tokio::test]
async fn members_and_mutes_change_with_client_ids_in_the_body() {
    let body = r#"{"client_ids":["a","b"]}"#;
    let add = check(
        &AddMembers::new(c1(), [cid("a"), cid("b")]),
        "POST /1.2/rtm/conversations/c1/members",
        Some(body),
        UPDATED,
    )
    .await;
    assert_updated(&add);
    check(
        &RemoveMembers::new(c1(), [cid("a"), cid("b")]),
        "DELETE /1.2/rtm/conversations/c1/members",
        Some(body),
        UPDATED,
    )
    .await;
    check(
        &AddMutes::new(c1(), [cid("a"), cid("b")]),
        "POST /1.2/rtm/conversations/c1/mutes",
        Some(body),
        UPDATED,
    )
    .await;
    check(
        &RemoveMutes::new(c1(), [cid("a"), cid("b")]),
        "DELETE /1.2/rtm/conversations/c1/mutes",
        Some(body),
        UPDATED,
    )
    .await;
    let members = check(
        &Members::new(Scope::Conversation, c1()),
        "GET /1.2/rtm/conversations/c1/members",
        None,
        r#"{"result":["a","b"]}"#,
    )
    .await;
    assert_eq!(vec![cid("a"), cid("b")], members);
    let online = check(
        &Members::new(Scope::Chatroom, c1()),
        "GET /1.2/rtm/chatrooms/c1/members",
        None,
        r#"{"result":["b"]}"#,
    )
    .await;
    assert_eq!(vec![cid("b")], online);
    let mutes = check(
        &Mutes::new(c1()),
        "GET /1.2/rtm/conversations/c1/mutes",
        None,
        r#"{"result":[]}"#,
    )
    .await;
    assert!(mutes.is_empty());
    let count = check(
        &OnlineCount::new(c1()),
        "GET /1.2/rtm/chatrooms/c1/members/online-count",
        None,
        r#"{"result":3}"#,
    )
    .await;
    assert_eq!(3, count);
}

#[tokio::test]
async fn messages_are_sent_with_only_the_options_set() {
    let sent = check(
        &SendMessage::new(Scope::Conversation, c1(), cid("alice"), "hi"),
        "POST /1.2/rtm/conversations/c1/messages",
        Some(r#"{"from_client":"alice","message":"hi"}"#),
        SENT,
    )
    .await;
    assert_sent(&sent);
    check(
        &SendMessage::new(
            Scope::Conversation,
            c1(),
            cid("alice"),
            json!({"_lctype": -1, "_lctext": "你好"}),
        )
        .transient(true)
        .no_sync(true)
        .push(PushData::new().alert("x"))
        .priority(Priority::High)
        .mention_all(false)
        .mention_clients([cid("bob")]),
        "POST /1.2/rtm/conversations/c1/messages",
        Some(
            r#"{"from_client":"alice","message":"{\"_lctype\": -1, \"_lctext\": \"\\u4f60\\u597d\"}","transient":true,"no_sync":true,"push_data":{"alert":"x"},"priority":"high","mention_all":false,"mention_client_ids":["bob"]}"#,
        ),
        SENT,
    )
    .await;
    check(
        &SendMessage::new(Scope::Chatroom, c1(), cid("alice"), "hi").priority(Priority::Low),
        "POST /1.2/rtm/chatrooms/c1/messages",
        Some(r#"{"from_client":"alice","message":"hi","priority":"low"}"#),
        SENT,
    )
    .await;
    check(
        &SendMessage::new(Scope::ServiceConversation, c1(), cid("sys"), "hi")
            .to_clients([cid("u1"), cid("u2")])
            .push(PushData::new().alert("x")),
        "POST /1.2/rtm/service-conversations/c1/messages",
        Some(
            r#"{"from_client":"sys","to_clients":["u1","u2"],"message":"hi","push_data":{"alert":"x"}}"#,
        ),
        SENT,
    )
    .await;
}

#[tokio::test]
async fn messages_are_edited_recalled_and_deleted_by_id_and_timestamp() {
    check(
        &EditMessage::new(
            Scope::Conversation,
            c1(),
            mid("m1"),
            cid("alice"),
            1700000000000,
            "fixed",
        ),
        "PUT /1.2/rtm/conversations/c1/messages/m1",
        Some(r#"{"from_client":"alice","message":"fixed","timestamp":1700000000000}"#),
        RESULT_EMPTY,
    )
    .await;
    check(
        &RecallMessage::new(
            Scope::Chatroom,
            c1(),
            mid("m1"),
            cid("alice"),
            1700000000000,
        ),
        "PUT /1.2/rtm/chatrooms/c1/messages/m1/recall",
        Some(r#"{"from_client":"alice","timestamp":1700000000000}"#),
        RESULT_EMPTY,
    )
    .await;
    // A message id may hold `/` and `+` (base64): escaped, it stays one path segment.
    check(
        &RecallMessage::new(
            Scope::ServiceConversation,
            c1(),
            mid("a/b+c"),
            cid("sys"),
            1,
        )
        .to_clients([cid("u1")]),
        "PUT /1.2/rtm/service-conversations/c1/messages/a%2Fb%2Bc/recall",
        Some(r#"{"from_client":"sys","timestamp":1,"to_clients":["u1"]}"#),
        "{}",
    )
    .await;
    check(
        &EditMessage::new(
            Scope::ServiceConversation,
            c1(),
            mid("m1"),
            cid("sys"),
            5,
            "v2",
        )
        .to_clients([cid("u1")]),
        "PUT /1.2/rtm/service-conversations/c1/messages/m1",
        Some(r#"{"from_client":"sys","message":"v2","timestamp":5,"to_clients":["u1"]}"#),
        RESULT_EMPTY,
    )
    .await;
    check(
        &DeleteMessage::new(
            Scope::Conversation,
            c1(),
            mid("m1"),
            cid("alice"),
            1700000000000,
        ),
        "DELETE /1.2/rtm/conversations/c1/messages/m1?from_client=alice&timestamp=1700000000000",
        None,
        EMPTY,
    )
    .await;
    check(
        &DeleteMessage::new(Scope::ServiceConversation, c1(), mid("m1"), cid("sys"), 7)
            .subscriber(cid("u 1")),
        "DELETE /1.2/rtm/service-conversations/c1/subscribers/u%201/messages/m1?from_client=sys&timestamp=7",
        None,
        EMPTY,
    )
    .await;
}

#[tokio::test]
async fn silence_and_blacklists_under_every_kind_of_conversation() {
    check(
        &TemporarySilence::new(Scope::Conversation, c1(), cid("bob"), 3600),
        "POST /1.2/rtm/conversations/c1/temporary-silenceds",
        Some(r#"{"client_id":"bob","ttl":3600}"#),
        EMPTY,
    )
    .await;
    check(
        &LiftTemporarySilence::new(Scope::Chatroom, c1(), cid("b&o b")),
        "DELETE /1.2/rtm/chatrooms/c1/temporary-silenceds?client_id=b%26o+b",
        None,
        EMPTY,
    )
    .await;
    let body = r#"{"client_ids":["bob","carol"]}"#;
    check(
        &PermanentSilence::new(Scope::Conversation, c1(), [cid("bob"), cid("carol")]),
        "POST /1.2/rtm/conversations/c1/permanent-silenceds",
        Some(body),
        EMPTY,
    )
    .await;
    check(
        &LiftPermanentSilence::new(Scope::ServiceConversation, c1(), [cid("bob"), cid("carol")]),
        "DELETE /1.2/rtm/service-conversations/c1/permanent-silenceds",
        Some(body),
        EMPTY,
    )
    .await;
    check(
        &Block::new(Scope::Chatroom, c1(), [cid("bob"), cid("carol")]),
        "POST /1.2/rtm/chatrooms/c1/blacklists",
        Some(body),
        EMPTY,
    )
    .await;
    check(
        &Unblock::new(Scope::Conversation, c1(), [cid("bob"), cid("carol")]),
        "DELETE /1.2/rtm/conversations/c1/blacklists",
        Some(body),
        EMPTY,
    )
    .await;
    let page = check(
        &PermanentlySilenced::new(Scope::Conversation, c1())
            .limit(2)
            .next("n1"),
        "GET /1.2/rtm/conversations/c1/permanent-silenceds?limit=2&next=n1",
        None,
        r#"{"client_ids":["bob","carol"],"next":"n2"}"#,
    )
    .await;
    assert_eq!(
        ClientPage {
            client_ids: vec![cid("bob"), cid("carol")],
            next: Some("n2".into())
        },
        page
    );
    let blocked = check(
        &Blocked::new(Scope::Chatroom, c1()),
        "GET /1.2/rtm/chatrooms/c1/blacklists",
        None,
        r#"{"client_ids":["bob"]}"#,
    )
    .await;
    assert_eq!(vec![cid("bob")], blocked.client_ids);
    assert_eq!(None, blocked.next);
}

#[tokio::test]
async fn member_roles_are_rows_of_member_infos() {
    let added = check(
        &AddMemberInfo::new(Scope::Conversation, c1(), cid("bob"), Role::Manager),
        "POST /1.2/rtm/conversations/c1/member-infos",
        Some(r#"{"clientId":"bob","role":"Manager"}"#),
        UPDATED,
    )
    .await;
    assert_updated(&added);
    check(
        &UpdateMemberInfo::new(Scope::Chatroom, c1(), "i1", cid("bob")).role(Role::Member),
        "PUT /1.2/rtm/chatrooms/c1/member-infos/i1",
        Some(r#"{"clientId":"bob","role":"Member"}"#),
        UPDATED,
    )
    .await;
    check(
        &UpdateMemberInfo::new(Scope::Conversation, c1(), "i1", cid("bob")),
        "PUT /1.2/rtm/conversations/c1/member-infos/i1",
        Some(r#"{"clientId":"bob"}"#),
        UPDATED,
    )
    .await;
    check(
        &DeleteMemberInfo::new(Scope::Conversation, c1(), "i1"),
        "DELETE /1.2/rtm/conversations/c1/member-infos/i1",
        None,
        EMPTY,
    )
    .await;
    let infos = check(
        &MemberInfos::new(Scope::Conversation, c1())
            .skip(1)
            .limit(2)
            .role(Role::Owner),
        "GET /1.2/rtm/conversations/c1/member-infos?skip=1&limit=2&role=Owner",
        None,
        r#"{"results":[{"clientId":"alice","objectId":"i0","role":"Owner"}]}"#,
    )
    .await;
    assert_eq!(
        vec![MemberInfo {
            client_id: cid("alice"),
            object_id: "i0".into(),
            role: Role::Owner
        }],
        infos
    );
}

#[tokio::test]
async fn service_conversations_have_subscribers_and_broadcasts() {
    check(
        &Subscribe::new(c1(), cid("u1")),
        "POST /1.2/rtm/service-conversations/c1/subscribers",
        Some(r#"{"client_id":"u1"}"#),
        EMPTY,
    )
    .await;
    check(
        &Unsubscribe::new(c1(), cid("u1")),
        "DELETE /1.2/rtm/service-conversations/c1/subscribers/u1",
        None,
        EMPTY,
    )
    .await;
    let subscribers = check(
        &Subscribers::new(c1()).limit(2).after(cid("u0")),
        "GET /1.2/rtm/service-conversations/c1/subscribers?limit=2&client_id=u0",
        None,
        r#"[{"timestamp":1700000000000,"subscriber":"u1","conv_id":"c1"}]"#,
    )
    .await;
    assert_eq!(
        vec![Subscription {
            timestamp: 1700000000000,
            subscriber: cid("u1"),
            conv_id: c1()
        }],
        subscribers
    );
    let count = check(
        &SubscriberCount::new(c1()),
        "GET /1.2/rtm/service-conversations/c1/subscribers/count",
        None,
        r#"{"count":100}"#,
    )
    .await;
    assert_eq!(100, count);
    let sent = check(
        &SubscriberBroadcast::new(c1(), cid("sys"), "news").push(PushData::new().alert("n")),
        "POST /1.2/rtm/service-conversations/c1/broadcasts",
        Some(r#"{"from_client":"sys","message":"news","push":{"alert":"n"}}"#),
        SENT,
    )
    .await;
    assert_sent(&sent);
}

#[tokio::test]
async fn global_broadcasts_are_sent_listed_and_withdrawn() {
    let valid_till = chrono::Utc::now().timestamp_millis() + 3_600_000;
    let body = format!(
        r#"{{"from_client":"sys","conv_id":"c1","message":"all","valid_till":{valid_till},"push":{{"alert":"a"}},"transient":false}}"#
    );
    let sent = check(
        &GlobalBroadcast::new(c1(), cid("sys"), "all")
            .valid_till(valid_till)
            .push(PushData::new().alert("a"))
            .transient(false),
        "POST /1.2/rtm/broadcasts",
        Some(&body),
        SENT,
    )
    .await;
    assert_sent(&sent);
    check(
        &GlobalBroadcast::new(c1(), cid("sys"), "all"),
        "POST /1.2/rtm/broadcasts",
        Some(r#"{"from_client":"sys","conv_id":"c1","message":"all"}"#),
        SENT,
    )
    .await;
    let listed = check(
        &Broadcasts::new().conversation(c1()).limit(5).skip(0),
        "GET /1.2/rtm/broadcasts?conv_id=c1&limit=5&skip=0",
        None,
        r#"[{"msg-id":"m1"}]"#,
    )
    .await;
    assert_eq!(json!([{"msg-id": "m1"}]), listed);
    check(
        &DeleteBroadcast::new(mid("m1")),
        "DELETE /1.2/rtm/broadcasts/m1",
        None,
        EMPTY,
    )
    .await;
}

#[tokio::test]
async fn clients_are_checked_kicked_and_keep_their_own_blacklist() {
    let online = check(
        &CheckOnline::new([cid("a"), cid("b")]),
        "POST /1.2/rtm/clients/check-online",
        Some(r#"{"client_ids":["a","b"]}"#),
        r#"{"results":["a"]}"#,
    )
    .await;
    assert_eq!(vec![cid("a")], online);
    check(
        &Kick::new(cid("bob")).reason("spam"),
        "POST /1.2/rtm/clients/bob/kick",
        Some(r#"{"reason":"spam"}"#),
        EMPTY,
    )
    .await;
    check(
        &Kick::new(cid("bob")),
        "POST /1.2/rtm/clients/bob/kick",
        Some("{}"),
        EMPTY,
    )
    .await;
    check(
        &BlockConversation::new(cid("bob"), c1()),
        "POST /1.2/rtm/clients/bob/blacklists",
        Some(r#"{"conv_id":"c1"}"#),
        EMPTY,
    )
    .await;
    check(
        &UnblockConversation::new(cid("bob"), c1()),
        "DELETE /1.2/rtm/clients/bob/blacklists",
        Some(r#"{"conv_id":"c1"}"#),
        EMPTY,
    )
    .await;
    let page = check(
        &ClientBlacklist::new(cid("bob")).limit(1).next("1"),
        "GET /1.2/rtm/clients/bob/blacklists?limit=1&next=1",
        None,
        r#"{"conv_ids":["c1"],"next":"2"}"#,
    )
    .await;
    assert_eq!(vec![c1()], page.conv_ids);
    assert_eq!(Some("2".to_owned()), page.next);
    let stats = check(
        &Stats,
        "GET /1.2/rtm/stats",
        None,
        r#"{"result":{"online_user_count":3,"user_count_today":9}}"#,
    )
    .await;
    assert_eq!(
        StatsResult {
            online_user_count: 3,
            user_count_today: 9
        },
        stats
    );
}

#[tokio::test]
async fn an_unknown_message_is_a_typed_4404_and_a_wrong_answer_a_decode_error() {
    let recall = RecallMessage::new(Scope::Conversation, c1(), mid("m9"), cid("alice"), 1);
    let (result, received) = exchange(
        &recall,
        json_reply(400, r#"{"code":4404,"error":"MESSAGE_NOT_FOUND"}"#),
    )
    .await;
    assert_eq!(1, received.len());
    let Err(Error::Api(api)) = result else {
        panic!("expected an API error, got {result:?}")
    };
    assert_eq!((400, 4404), (api.status, api.code));
    assert!(api.is_message_not_found() && !api.is_missing_conversation());

    let (result, _) = exchange(
        &Members::new(Scope::Conversation, c1()),
        json_reply(200, "{}"),
    )
    .await;
    assert!(
        matches!(result, Err(Error::Decode { status: 200, .. })),
        "{result:?}"
    );
    let (result, _) = exchange(
        &Delete::new(Scope::Conversation, c1()),
        json_reply(200, "[]"),
    )
    .await;
    assert!(
        matches!(result, Err(Error::Decode { status: 200, .. })),
        "{result:?}"
    );
}

#[test]
fn limits_are_checked_before_sending() {
    let many = |n: usize| (0..n).map(|i| cid(&format!("u{i}"))).collect::<Vec<_>>();
    let ttl = |ttl| TemporarySilence::new(Scope::Conversation, c1(), cid("b"), ttl).validate();
    assert_eq!(
        Err(ValidationError::OutOfRange {
            name: "ttl",
            value: 0,
            min: 1,
            max: 86400
        }),
        ttl(0)
    );
    assert_eq!(Ok(()), ttl(1));
    assert_eq!(Ok(()), ttl(86400));
    assert!(ttl(86401).is_err());

    assert_eq!(Ok(()), CheckOnline::new(many(20)).validate());
    assert_eq!(
        Err(ValidationError::TooManyIds {
            field: "client_ids",
            count: 21,
            max: 20
        }),
        CheckOnline::new(many(21)).validate()
    );
    assert_eq!(
        Err(ValidationError::EmptyList {
            field: "client_ids"
        }),
        CheckOnline::new(many(0)).validate()
    );
    assert_eq!(
        Err(ValidationError::DuplicateId {
            field: "client_ids",
            id: "a".into()
        }),
        PermanentSilence::new(Scope::Conversation, c1(), [cid("a"), cid("a")]).validate()
    );
    assert!(Block::new(Scope::Conversation, c1(), many(0))
        .validate()
        .is_err());
    assert!(Block::new(Scope::Conversation, c1(), many(501))
        .validate()
        .is_err());
    assert_eq!(
        Ok(()),
        Block::new(Scope::Chatroom, c1(), many(501)).validate()
    );
    assert!(AddMembers::new(c1(), many(0)).validate().is_err());

    let service = |to: Vec<_>| {
        SendMessage::new(Scope::ServiceConversation, c1(), cid("sys"), "hi")
            .to_clients(to)
            .validate()
    };
    assert_eq!(Ok(()), service(many(20)));
    assert!(matches!(
        service(many(21)),
        Err(ValidationError::TooManyIds {
            field: "to_clients",
            count: 21,
            max: 20
        })
    ));
    assert_eq!(
        Err(ValidationError::EmptyList {
            field: "to_clients"
        }),
        SendMessage::new(Scope::ServiceConversation, c1(), cid("sys"), "hi").validate()
    );
    assert!(matches!(
        SendMessage::new(Scope::Conversation, c1(), cid("a"), "hi")
            .to_clients([cid("b")])
            .validate(),
        Err(ValidationError::NotAllowed {
            field: "to_clients",
            ..
        })
    ));
    assert!(matches!(
        SendMessage::new(Scope::Chatroom, c1(), cid("a"), "hi")
            .no_sync(true)
            .validate(),
        Err(ValidationError::NotAllowed {
            field: "no_sync",
            ..
        })
    ));
    assert!(matches!(
        SendMessage::new(Scope::Conversation, c1(), cid("a"), "hi")
            .priority(Priority::High)
            .validate(),
        Err(ValidationError::NotAllowed {
            field: "priority",
            ..
        })
    ));
    assert!(SendMessage::new(Scope::Conversation, c1(), cid("a"), "hi")
        .mention_clients(many(21))
        .validate()
        .is_err());
    let big = "x".repeat(MAX_MESSAGE_BYTES + 1);
    assert!(matches!(
        EditMessage::new(
            Scope::Conversation,
            c1(),
            mid("m"),
            cid("a"),
            1,
            big.as_str()
        )
        .validate(),
        Err(ValidationError::MessageTooLarge { .. })
    ));
    assert!(
        RecallMessage::new(Scope::Conversation, c1(), mid("m"), cid("a"), 1)
            .to_clients([cid("b")])
            .validate()
            .is_err()
    );
    assert!(
        RecallMessage::new(Scope::ServiceConversation, c1(), mid("m"), cid("a"), 1)
            .to_clients(many(21))
            .validate()
            .is_err()
    );
    assert!(Kick::new(cid("b"))
        .reason("x".repeat(21))
        .validate()
        .is_err());
    assert_eq!(
        Ok(()),
        Kick::new(cid("b")).reason("理由".repeat(10)).validate()
    );
    assert!(Update::new(Scope::Conversation, c1())
        .set("m", json!(["a"]))
        .validate()
        .is_err());
    assert!(Update::new(Scope::Conversation, c1()).validate().is_err());
    assert!(Create::new(Scope::Chatroom)
        .members([cid("a")])
        .validate()
        .is_err());
    assert!(
        DeleteMessage::new(Scope::ServiceConversation, c1(), mid("m"), cid("a"), 1)
            .validate()
            .is_err()
    );
    assert!(Subscribers::new(c1()).limit(51).validate().is_err());
    assert!(GlobalBroadcast::new(c1(), cid("a"), "m")
        .valid_till(1)
        .validate()
        .is_err());
}

#[test]
fn ids_in_the_path_are_never_dot_segments() {
    // URL parsing removes `.` and `..` (escaped too): `clients/../kick` would reach another resource.
    let dot = ValidationError::InvalidId {
        kind: "client id",
        reason: "is a dot segment (. or ..), which URL parsing would remove from the path",
    };
    assert_eq!(Err(dot.clone()), Kick::new(cid("..")).validate());
    assert_eq!(
        Err(dot.clone()),
        BlockConversation::new(cid("."), c1()).validate()
    );
    assert_eq!(
        Err(dot.clone()),
        UnblockConversation::new(cid(".."), c1()).validate()
    );
    assert_eq!(Err(dot.clone()), ClientBlacklist::new(cid("..")).validate());
    assert_eq!(Err(dot), Unsubscribe::new(c1(), cid("..")).validate());
    for request in [
        RecallMessage::new(Scope::Conversation, c1(), mid(".."), cid("a"), 1).validate(),
        EditMessage::new(Scope::Conversation, c1(), mid("."), cid("a"), 1, "x").validate(),
        DeleteMessage::new(Scope::Conversation, c1(), mid(".."), cid("a"), 1).validate(),
        DeleteBroadcast::new(mid("..")).validate(),
        DeleteMemberInfo::new(Scope::Conversation, c1(), "..").validate(),
    ] {
        assert!(
            matches!(request, Err(ValidationError::InvalidId { .. })),
            "{request:?}"
        );
    }
    assert_eq!(Ok(()), Kick::new(cid("...")).validate());
}

#[tokio::test]
async fn invalid_1_2_requests_never_reach_the_server() {
    let (result, received) = exchange(
        &TemporarySilence::new(Scope::Conversation, c1(), cid("b"), 86401),
        json_reply(200, EMPTY),
    )
    .await;
    assert!(matches!(result, Err(Error::Invalid(_))), "{result:?}");
    assert!(received.is_empty());
}
