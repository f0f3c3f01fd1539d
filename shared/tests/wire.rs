//! Every operation against a local mock server: the exact request line, query string, headers and
//! body bytes, compared with the requests captured from the Python SDK 3.0.2
//! (`docs/leancloud-rest.md` §10 of the shared docs), plus response and error handling.

// Helpers outside #[test] functions are not covered by clippy.toml's allow-unwrap-in-tests; a panic
// is how they report a failed expectation.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{TimeZone, Utc};
use leancloud_im::{
    date_value, AddMembers, Badge, Broadcast, Client, ClientId, ClientOptions, Config,
    ConversationId, CreateConversation, DeleteConversation, Error, GetConversation, MessageHistory,
    MessageId, PushData, QueryConversations, RemoveMembers, SendMessage, ValidationError,
    RATE_LIMIT_PENALTY,
};
use pretty_assertions::assert_eq;
use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

mod support;
use support::*;

/// The capture listener's default answer.
const DEFAULT_ANSWER: &str = r#"{"objectId":"abc","createdAt":"2026-01-01T00:00:00.000Z"}"#;

/// A port nothing listens on, so every connect is refused at once. Not a port freed by the test: the
/// wiremock servers of tests running in parallel bind ephemeral ports and could take it in between (a
/// flaky failure seen when the whole suite ran); port 1 is below the ephemeral range and unused.
const REFUSED_PORT: u16 = 1;

fn abc() -> ConversationId {
    ConversationId::parse("abc").unwrap()
}

// ---- conversations ----------------------------------------------------------------------------

#[tokio::test]
async fn create_conversation_scenarios_01_to_04_match_the_captures() {
    let _serial = counting_retries().await;
    let line = "POST /1.1/classes/_Conversation?fetchWhenSave=false";
    let cases = [
        (
            CreateConversation::new().name("测试 conv"),
            r#"{"name":"\u6d4b\u8bd5 conv"}"#,
        ),
        (
            CreateConversation::new().name("sys").system(true),
            r#"{"name":"sys","sys":true}"#,
        ),
        (
            CreateConversation::new()
                .name("tr")
                .transient(true)
                .unique(true),
            r#"{"name":"tr","tr":true}"#,
        ),
        (
            CreateConversation::new()
                .name("u")
                .unique(true)
                .members([cid("a"), cid("b")]),
            r#"{"name":"u","unique":true,"m":{"__op":"Add","objects":["a","b"]}}"#,
        ),
        (CreateConversation::new(), "{}"),
    ];
    for (request, body) in cases {
        let created =
            assert_wire(&request, line, Some(body), json_reply(200, DEFAULT_ANSWER)).await;
        assert_eq!("abc", created.id.as_str());
        assert_eq!(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            created.created_at
        );
    }
}

#[tokio::test]
async fn create_with_custom_attributes_sends_them_as_top_level_fields() {
    let _serial = counting_retries().await;
    let request = CreateConversation::new()
        .name("team")
        .attribute("topic", "launch 🚀")
        .attribute("level", 2)
        .members([cid("alice")]);
    let created = assert_wire(
        &request,
        "POST /1.1/classes/_Conversation?fetchWhenSave=false",
        Some(r#"{"name":"team","topic":"launch \ud83d\ude80","level":2,"m":{"__op":"Add","objects":["alice"]}}"#),
        json_reply(201, r#"{"createdAt":"2015-06-29T01:39:35.931Z","objectId":"558e20cbe4b060308e3eb36c"}"#),
    )
    .await;
    assert_eq!("558e20cbe4b060308e3eb36c", created.id.as_str());
}

#[tokio::test]
async fn query_first_scenario_05_and_non_ascii_scenario_40() {
    let _serial = counting_retries().await;
    let q = QueryConversations::new()
        .where_(json!({"name": "test"}))
        .limit(1);
    let result = assert_wire(
        &q,
        "GET /1.1/classes/_Conversation?where=%7B%22name%22%3A%22test%22%7D&limit=1",
        None,
        json_reply(200, r#"{"results": [{"objectId": "abc", "name": "n", "m": ["a"], "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z"}]}"#),
    )
    .await;
    assert_eq!(1, result.results.len());
    assert_eq!(vec![cid("a")], result.results[0].members);
    assert_eq!(None, result.count);

    let q = QueryConversations::new()
        .where_(json!({"name": "测试 conv"}))
        .limit(1);
    assert_wire(
        &q,
        "GET /1.1/classes/_Conversation?where=%7B%22name%22%3A%22%5Cu6d4b%5Cu8bd5+conv%22%7D&limit=1",
        None,
        json_reply(200, r#"{"results":[]}"#),
    )
    .await;
}

#[tokio::test]
async fn query_find_scenario_06_matches_the_capture() {
    let _serial = counting_retries().await;
    let since = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let q = QueryConversations::new()
        .where_(json!({"m": {"$in": ["a"]}, "updatedAt": {"$gt": date_value(&since)}}))
        .descending("updatedAt")
        .skip(5)
        .limit(10)
        .keys(["name", "m"]);
    assert_wire(
        &q,
        "GET /1.1/classes/_Conversation?where=%7B%22m%22%3A%7B%22%24in%22%3A%5B%22a%22%5D%7D%2C%22updatedAt%22%3A%7B%22%24gt%22%3A%7B%22__type%22%3A%22Date%22%2C%22iso%22%3A%222026-01-01T00%3A00%3A00.000Z%22%7D%7D%7D&keys=name%2Cm&limit=10&skip=5&order=-updatedAt",
        None,
        json_reply(200, r#"{"results":[]}"#),
    )
    .await;
}

#[tokio::test]
async fn query_count_scenario_07_matches_the_capture() {
    let _serial = counting_retries().await;
    let q = QueryConversations::new()
        .where_(json!({"sys": true}))
        .count(true);
    let result = assert_wire(
        &q,
        "GET /1.1/classes/_Conversation?where=%7B%22sys%22%3Atrue%7D&limit=0&count=1",
        None,
        json_reply(200, r#"{"results":[],"count":7}"#),
    )
    .await;
    assert_eq!(Some(7), result.count);
    assert!(result.results.is_empty());
}

#[tokio::test]
async fn query_with_or_include_acl_and_two_orders_scenario_41() {
    let _serial = counting_retries().await;
    let q = QueryConversations::new()
        .where_(json!({"$or": [{"tr": true}, {"sys": true}]}))
        .return_acl(true)
        .include(["c"])
        .ascending("createdAt")
        .descending("name");
    assert_wire(
        &q,
        "GET /1.1/classes/_Conversation?where=%7B%22%24or%22%3A%5B%7B%22tr%22%3Atrue%7D%2C%7B%22sys%22%3Atrue%7D%5D%7D&include=c&returnACL=true&order=createdAt%2C-name",
        None,
        json_reply(200, r#"{"results":[]}"#),
    )
    .await;
}

#[tokio::test]
async fn get_conversation_scenario_19_and_missing_object() {
    let _serial = counting_retries().await;
    let conv = assert_wire(
        &GetConversation::new(abc()),
        "GET /1.1/classes/_Conversation/abc",
        None,
        json_reply(200, r#"{"objectId":"abc","name":"n","createdAt":"2026-01-01T00:00:00.000Z","updatedAt":"2026-01-01T00:00:00.000Z"}"#),
    )
    .await;
    assert_eq!(Some("n".to_string()), conv.name);
    assert!(conv.members.is_empty());

    let (result, _) = exchange(&GetConversation::new(abc()), json_reply(200, "{}")).await;
    let err = result.unwrap_err();
    assert_eq!(
        Some(101),
        err.api_code(),
        "LeanCloud answers {{}} for a missing id: {err}"
    );
    assert!(err.api().unwrap().is_not_found());
}

#[tokio::test]
async fn delete_scenario_21_sends_an_empty_object() {
    let _serial = counting_retries().await;
    assert_wire(
        &DeleteConversation::new(abc()),
        "DELETE /1.1/classes/_Conversation/abc",
        Some("{}"),
        json_reply(200, "{}"),
    )
    .await;
}

#[tokio::test]
async fn add_and_remove_members_use_idempotent_ops() {
    let _serial = counting_retries().await;
    let updated = assert_wire(
        &AddMembers::new(abc(), [cid("x"), cid("y")]),
        "PUT /1.1/classes/_Conversation/abc?fetchWhenSave=false",
        Some(r#"{"m":{"__op":"AddUnique","objects":["x","y"]}}"#),
        json_reply(200, r#"{"updatedAt":"2015-06-30T18:02:52.248Z"}"#),
    )
    .await;
    assert_eq!(
        Some(
            Utc.with_ymd_and_hms(2015, 6, 30, 18, 2, 52).unwrap()
                + chrono::Duration::milliseconds(248)
        ),
        updated.updated_at
    );

    // scenario 10b: the SDK's add_unique("m", "x")
    assert_wire(
        &AddMembers::new(abc(), [cid("x")]),
        "PUT /1.1/classes/_Conversation/abc?fetchWhenSave=false",
        Some(r#"{"m":{"__op":"AddUnique","objects":["x"]}}"#),
        json_reply(200, DEFAULT_ANSWER),
    )
    .await;

    // scenario 10a
    let updated = assert_wire(
        &RemoveMembers::new(abc(), [cid("c")]),
        "PUT /1.1/classes/_Conversation/abc?fetchWhenSave=false",
        Some(r#"{"m":{"__op":"Remove","objects":["c"]}}"#),
        json_reply(200, DEFAULT_ANSWER),
    )
    .await;
    assert_eq!(None, updated.updated_at);
}

// ---- messages ---------------------------------------------------------------------------------

#[tokio::test]
async fn send_scenarios_12_to_14_match_the_captures() {
    let _serial = counting_retries().await;
    let cases = [
        (
            SendMessage::new(abc(), cid("alice"), "hello"),
            r#"{"from_peer":"alice","conv_id":"abc","transient":false,"message":"hello"}"#,
        ),
        (
            SendMessage::new(
                abc(),
                cid("alice"),
                json!({"_lctype": -1, "_lctext": "你好"}),
            )
            .transient(true),
            r#"{"from_peer":"alice","conv_id":"abc","transient":true,"message":"{\"_lctype\": -1, \"_lctext\": \"\\u4f60\\u597d\"}"}"#,
        ),
        (
            SendMessage::new(abc(), cid("sys"), "hi")
                .to_clients([cid("u1"), cid("u2")])
                .push(PushData::new().alert("新消息").badge(Badge::Increment)),
            r#"{"from_peer":"sys","conv_id":"abc","transient":false,"message":"hi","to_peers":["u1","u2"],"push_data":{"alert":"\u65b0\u6d88\u606f","badge":"Increment"}}"#,
        ),
    ];
    for (request, body) in cases {
        let sent = assert_wire(
            &request,
            "POST /1.1/rtm/messages",
            Some(body),
            json_reply(200, DEFAULT_ANSWER),
        )
        .await;
        assert_eq!(
            None, sent.msg_id,
            "the capture listener's answer has no msg-id"
        );
    }
}

#[tokio::test]
async fn send_returns_the_message_id_and_timestamp() {
    let _serial = counting_retries().await;
    let sent = assert_wire(
        &SendMessage::new(abc(), cid("a"), "b"),
        "POST /1.1/rtm/messages",
        Some(r#"{"from_peer":"a","conv_id":"abc","transient":false,"message":"b"}"#),
        json_reply(
            200,
            r#"{"msg-id":"qNkRkFWOeSqP65S9fDyHJw","timestamp":1495431811151}"#,
        ),
    )
    .await;
    assert_eq!(
        Some(MessageId::parse("qNkRkFWOeSqP65S9fDyHJw").unwrap()),
        sent.msg_id
    );
    assert_eq!(Some(1495431811151), sent.timestamp);
}

#[tokio::test]
async fn broadcast_scenarios_15_and_16_with_push_in_the_documented_field() {
    let _serial = counting_retries().await;
    // scenario 15, except that the push payload goes in `push` (the SDK sends `push_data`)
    assert_wire(
        &Broadcast::new(abc(), cid("sys"), json!({"_lctype": -1, "_lctext": "hi"})).push(PushData::new().alert("x")),
        "POST /1.1/rtm/broadcast",
        Some(r#"{"from_peer":"sys","conv_id":"abc","message":"{\"_lctype\": -1, \"_lctext\": \"hi\"}","push":{"alert":"x"}}"#),
        json_reply(200, DEFAULT_ANSWER),
    )
    .await;

    // scenario 16 used a fixed instant that is now in the past; shift it into the valid window.
    let valid_till = Utc::now().timestamp_millis() + 86_400_000;
    let expected =
        format!(r#"{{"from_peer":"sys","conv_id":"abc","message":"m","valid_till":{valid_till}}}"#);
    assert_wire(
        &Broadcast::new(abc(), cid("sys"), "m").valid_till(valid_till),
        "POST /1.1/rtm/broadcast",
        Some(&expected),
        json_reply(200, "{}"),
    )
    .await;
}

#[tokio::test]
async fn broadcast_valid_till_as_a_timestamp_is_sent_as_epoch_millis() {
    let _serial = counting_retries().await;
    // scenario 17 crashes the SDK; here a DateTime works.
    let at = Utc::now() + chrono::Duration::days(7);
    let expected = format!(
        r#"{{"from_peer":"sys","conv_id":"abc","message":"m","valid_till":{}}}"#,
        at.timestamp_millis()
    );
    assert_wire(
        &Broadcast::new(abc(), cid("sys"), "m").valid_till(at),
        "POST /1.1/rtm/broadcast",
        Some(&expected),
        json_reply(200, "{}"),
    )
    .await;
}

#[tokio::test]
async fn message_history_scenario_18_matches_the_capture() {
    let _serial = counting_retries().await;
    let history = MessageHistory::conversation(abc())
        .limit(10)
        .reversed(true)
        .before(1700000000500)
        .before_message(MessageId::parse("mid").unwrap());
    let records = assert_wire(
        &history,
        "GET /1.1/rtm/messages/history?convid=abc&limit=10&reversed=True&max_ts=1700000000500&msgid=mid",
        None,
        json_reply(200, r#"[{"timestamp": 1408008498571, "conv-id": "abc", "data": "hi", "from": "u1", "msg-id": "vdkGm4dtRNmhQ5gqUTFBiA", "is-conv": true, "is-room": false, "to": "abc", "bin": false, "from-ip": "127.0.0.1"}]"#),
    )
    .await;
    assert_eq!(1, records.len());
    let r = &records[0];
    assert_eq!(
        (1408008498571, "vdkGm4dtRNmhQ5gqUTFBiA", "u1", "hi"),
        (
            r.timestamp,
            r.msg_id.as_str(),
            r.from.as_str(),
            r.data.as_str()
        )
    );
    assert!(r.is_conv && !r.is_room && !r.bin);
    assert_eq!(Some("127.0.0.1".to_string()), r.from_ip);

    let by_client = MessageHistory::client(cid("u1")).limit(5);
    assert_wire(
        &by_client,
        "GET /1.1/rtm/messages/history?from=u1&limit=5",
        None,
        json_reply(200, "[]"),
    )
    .await;
    assert_wire(
        &MessageHistory::all(),
        "GET /1.1/rtm/messages/history",
        None,
        json_reply(200, "[]"),
    )
    .await;
}

// ---- transport conventions --------------------------------------------------------------------

#[tokio::test]
async fn stage_environment_and_hook_key_are_sent_like_the_sdk_scenario_50() {
    let _serial = counting_retries().await;
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(json_reply(200, DEFAULT_ANSWER))
        .mount(&server)
        .await;
    let config = Config::from_lookup(|name| {
        match name {
            "LEANCLOUD_APP_ID" => Some(APP_ID.into()),
            "LEANCLOUD_APP_MASTER_KEY" => Some(MASTER_KEY.into()),
            "LEANCLOUD_APP_HOOK_KEY" => Some("hk123".into()),
            "LEANCLOUD_APP_ENV" => Some("stage".into()),
            // a trailing slash does not double the path separator (scenario 30 does)
            "LEANCLOUD_API_SERVER" => Some(format!("{}/", server.uri())),
            _ => None,
        }
    })
    .unwrap();
    let client = Client::new(config).unwrap();
    CreateConversation::new().send(&client).await.unwrap();
    let received = server.received_requests().await.unwrap();
    assert_eq!(
        "POST /1.1/classes/_Conversation?fetchWhenSave=false",
        request_line(&received[0])
    );
    assert_eq!("0", header(&received[0], "x-lc-prod"));
    assert_eq!("hk123", header(&received[0], "x-lc-hook-key"));
    assert_eq!("{}", String::from_utf8(received[0].body.clone()).unwrap());
}

// ---- error bodies (scenarios 22-27) -----------------------------------------------------------

fn plain_send() -> SendMessage {
    SendMessage::new(abc(), cid("a"), "b")
}

#[tokio::test]
async fn scenario_22_a_400_json_error_is_a_typed_api_error() {
    let _serial = counting_retries().await;
    let (result, received) = exchange(
        &plain_send(),
        json_reply(400, r#"{"code":4301,"error":"CONVERSATION_API_FAILED"}"#),
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(
        "LeanCloud error [4301] CONVERSATION_API_FAILED (HTTP 400)",
        err.to_string()
    );
    assert_eq!(
        (Some(4301), Some(400), false),
        (err.api_code(), err.status(), err.is_retryable())
    );
    assert_eq!(1, received.len());
}

#[tokio::test]
async fn scenario_23_an_error_key_on_200_is_an_error() {
    let _serial = counting_retries().await;
    let request = Broadcast::new(abc(), cid("a"), "b");
    let (result, _) = exchange(
        &request,
        json_reply(
            200,
            r#"{"code":1,"error":"The daily quota of system messages is exceeded."}"#,
        ),
    )
    .await;
    match result.unwrap_err() {
        Error::Api(api) => {
            assert_eq!((200, 1), (api.status, api.code));
            assert_eq!("The daily quota of system messages is exceeded.", api.error);
        }
        other => panic!("expected Api, got {other:?}"),
    }
}

#[tokio::test]
async fn scenario_24_a_500_without_error_key_is_an_error_and_a_send_is_not_retried() {
    let _serial = counting_retries().await;
    let (result, received) = exchange(&plain_send(), json_reply(500, r#"{"foo":1}"#)).await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::Status { status: 500, body, .. } if body == r#"{"foo":1}"#),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(
        1,
        received.len(),
        "a send may have been applied, so it is not repeated"
    );
}

#[tokio::test]
async fn scenario_25_a_plain_text_429_is_rate_limited_for_a_minute() {
    let _serial = counting_retries().await;
    let reply =
        ResponseTemplate::new(429).set_body_raw(b"Too many requests".to_vec(), "text/plain");
    let (result, received) = exchange(&plain_send(), reply).await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { api: None, .. }),
        "{err:?}"
    );
    assert_eq!(Some(RATE_LIMIT_PENALTY), err.retry_after());
    assert_eq!(Duration::from_secs(60), RATE_LIMIT_PENALTY);
    assert!(err.is_retryable());
    assert_eq!(1, received.len());
}

#[tokio::test]
async fn a_429_honours_retry_after_and_keeps_the_error_body_and_is_not_retried_even_for_get() {
    let _serial = counting_retries().await;
    let reply = json_reply(429, r#"{"code":429,"error":"Too many requests."}"#)
        .insert_header("Retry-After", "7");
    let (result, received) = exchange(&GetConversation::new(abc()), reply).await;
    let err = result.unwrap_err();
    assert_eq!(Some(Duration::from_secs(7)), err.retry_after());
    assert_eq!(Some(429), err.api_code());
    assert_eq!(1, received.len(), "429 is never retried in a loop");
}

#[tokio::test]
async fn scenario_26_a_502_html_page_is_a_status_error() {
    let _serial = counting_retries().await;
    let reply =
        ResponseTemplate::new(502).set_body_raw(b"<html>bad gateway</html>".to_vec(), "text/html");
    let (result, received) = exchange(&plain_send(), reply).await;
    let err = result.unwrap_err();
    match &err {
        Error::Status { status, url, body } => {
            assert_eq!(502, *status);
            assert!(url.ends_with("/1.1/rtm/messages"), "{url}");
            assert_eq!("<html>bad gateway</html>", body);
        }
        other => panic!("expected Status, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(1, received.len());
}

#[tokio::test]
async fn scenario_27_an_empty_200_body_is_a_status_error_not_a_panic() {
    let _serial = counting_retries().await;
    let (result, _) = exchange(&plain_send(), ResponseTemplate::new(200)).await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::Status { status: 200, body, .. } if body.is_empty()),
        "{err:?}"
    );
    assert!(!err.is_retryable(), "the message may have been sent");
}

#[tokio::test]
async fn a_success_body_of_the_wrong_shape_is_a_decode_error() {
    let _serial = counting_retries().await;
    let (result, _) = exchange(&MessageHistory::all(), json_reply(200, r#"{"results":[]}"#)).await;
    assert!(matches!(
        result.unwrap_err(),
        Error::Decode { status: 200, .. }
    ));
    let (result, _) = exchange(
        &CreateConversation::new(),
        json_reply(200, r#"{"objectId":"abc"}"#),
    )
    .await;
    assert!(
        matches!(result.unwrap_err(), Error::Decode { .. }),
        "createdAt is required"
    );
}

// ---- validation before any request ------------------------------------------------------------

#[tokio::test]
async fn invalid_requests_never_reach_the_server() {
    let _serial = counting_retries().await;
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(json_reply(200, "{}"))
        .mount(&server)
        .await;
    let client = client_for(&server);

    let recipients: Vec<ClientId> = (0..21).map(|i| cid(&format!("u{i}"))).collect();
    let err = SendMessage::new(abc(), cid("sys"), "hi")
        .to_clients(recipients)
        .send(&client)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid(ValidationError::TooManyRecipients { count: 21, max: 20 })
        ),
        "{err:?}"
    );

    let err = SendMessage::new(abc(), cid("sys"), "hi")
        .to_clients(Vec::<ClientId>::new())
        .send(&client)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ValidationError::NoRecipients)),
        "{err:?}"
    );

    let err = AddMembers::new(abc(), Vec::<ClientId>::new())
        .send(&client)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ValidationError::NoMembers)),
        "{err:?}"
    );

    let big = "x".repeat(5000);
    let push = PushData::new().alert("y".repeat(200));
    let err = Broadcast::new(abc(), cid("sys"), big.as_str())
        .push(push)
        .send(&client)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid(ValidationError::MessageTooLarge { limit: 5120, .. })
        ),
        "{err:?}"
    );

    let err = Broadcast::new(abc(), cid("sys"), "m")
        .valid_till(Utc::now() + chrono::Duration::days(40))
        .send(&client)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid(ValidationError::ValidTillOutOfRange { .. })
        ),
        "{err:?}"
    );

    assert!(matches!(
        ClientId::parse(""),
        Err(ValidationError::EmptyId { .. })
    ));
    assert!(matches!(
        ConversationId::parse(""),
        Err(ValidationError::EmptyId { .. })
    ));

    assert_eq!(0, server.received_requests().await.unwrap().len());
}

// ---- retries ----------------------------------------------------------------------------------

#[tokio::test]
async fn idempotent_requests_are_retried_after_a_5xx() {
    let _serial = counting_retries().await;
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(any())
        .respond_with(json_reply(
            200,
            r#"{"updatedAt":"2015-06-30T18:02:52.248Z"}"#,
        ))
        .mount(&server)
        .await;
    let client = client_for(&server);
    let updated = AddMembers::new(abc(), [cid("x")])
        .send(&client)
        .await
        .unwrap();
    assert!(updated.updated_at.is_some());
    let received = server.received_requests().await.unwrap();
    assert_eq!(3, received.len());
    let signs: Vec<&str> = received.iter().map(|r| header(r, "x-lc-sign")).collect();
    assert!(
        received.iter().all(|r| r.body == received[0].body),
        "every attempt sends the same bytes: {signs:?}"
    );
}

#[tokio::test]
async fn retries_stop_after_max_attempts() {
    let _serial = counting_retries().await;
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    let config = Config::builder(APP_ID)
        .master_key(MASTER_KEY)
        .api_server(server.uri())
        .build()
        .unwrap();
    let client = Client::with_options(
        config,
        ClientOptions {
            max_attempts: 2,
            ..fast_options()
        },
    )
    .unwrap();
    let err = GetConversation::new(abc()).send(&client).await.unwrap_err();
    assert_eq!(Some(502), err.status());
    assert_eq!(2, server.received_requests().await.unwrap().len());
}

#[tokio::test]
async fn a_deadline_in_the_past_sends_nothing() {
    let _serial = counting_retries().await;
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(json_reply(200, "{}"))
        .mount(&server)
        .await;
    let client = client_for(&server);
    let past = tokio::time::Instant::now() - Duration::from_millis(1);
    let err = client
        .execute_until(&DeleteConversation::new(abc()), past)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert_eq!(0, server.received_requests().await.unwrap().len());
}

#[tokio::test]
async fn a_refused_connection_is_a_retryable_transport_error_even_for_a_send() {
    let _serial = counting_retries().await;
    let port = REFUSED_PORT;
    let config = Config::builder(APP_ID)
        .master_key(MASTER_KEY)
        .api_server(format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let client = Client::with_options(config, fast_options()).unwrap();
    let err = plain_send().send(&client).await.unwrap_err();
    match &err {
        Error::Transport(e) => assert!(e.is_connect(), "{e:?}"),
        other => panic!("expected Transport, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert!(!err.to_string().contains(MASTER_KEY));
}

/// The server holds every answer far longer than the per-attempt timeout, so the outcome does not
/// depend on how fast the machine is.
async fn stalled_server() -> (MockServer, Client) {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(json_reply(200, "{}").set_delay(Duration::from_secs(60)))
        .mount(&server)
        .await;
    let config = Config::builder(APP_ID)
        .master_key(MASTER_KEY)
        .api_server(server.uri())
        .build()
        .unwrap();
    let options = ClientOptions {
        request_timeout: Duration::from_millis(200),
        ..fast_options()
    };
    (server, Client::with_options(config, options).unwrap())
}

#[tokio::test]
async fn a_send_that_times_out_is_not_repeated() {
    let _serial = counting_retries().await;
    let (server, client) = stalled_server().await;
    let err = plain_send().send(&client).await.unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert_eq!(
        1,
        server.received_requests().await.unwrap().len(),
        "the send may have been applied"
    );
}

#[tokio::test]
async fn an_idempotent_request_that_times_out_is_retried_up_to_max_attempts() {
    let _serial = counting_retries().await;
    let (server, client) = stalled_server().await;
    let err = DeleteConversation::new(abc())
        .send(&client)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert_eq!(3, server.received_requests().await.unwrap().len());
}

/// Counts the client's "retrying" log events, to observe retries that never reach a server.
#[derive(Default)]
struct RetryCounter(std::sync::Arc<std::sync::atomic::AtomicUsize>);

/// The async tests of this file run one at a time. Two of them count retries through a thread-local tracing
/// subscriber, and the count came out wrong now and then while other tests' threads hit the same callsites
/// (flaky under the full suite); serialised, it no longer does.
async fn counting_retries() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

impl tracing::Subscriber for RetryCounter {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message(bool);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" && format!("{value:?}").starts_with("retrying") {
                    self.0 = true;
                }
            }
        }
        let mut message = Message(false);
        event.record(&mut message);
        if message.0 {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn a_send_is_retried_when_the_connection_is_refused_since_nothing_was_sent() {
    let _serial = counting_retries().await;
    // current_thread runtime: the thread-local subscriber sees every poll of the request.
    let counter = RetryCounter::default();
    let retries = counter.0.clone();
    let _guard = tracing::subscriber::set_default(counter);
    // Callsites first hit by other tests' threads (no subscriber there) may have cached "never": ask again.
    tracing::callsite::rebuild_interest_cache();
    let port = REFUSED_PORT;
    let config = Config::builder(APP_ID)
        .master_key(MASTER_KEY)
        .api_server(format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let client = Client::with_options(config, fast_options()).unwrap();
    let err = plain_send().send(&client).await.unwrap_err();
    assert!(
        matches!(&err, Error::Transport(e) if e.is_connect()),
        "{err:?}"
    );
    assert_eq!(
        2,
        retries.load(std::sync::atomic::Ordering::SeqCst),
        "3 attempts = 2 retries"
    );
}

#[tokio::test]
async fn a_send_answered_with_a_5xx_is_not_retried() {
    let _serial = counting_retries().await;
    let counter = RetryCounter::default();
    let retries = counter.0.clone();
    let _guard = tracing::subscriber::set_default(counter);
    // Callsites first hit by other tests' threads (no subscriber there) may have cached "never": ask again.
    tracing::callsite::rebuild_interest_cache();
    let (result, received) = exchange(&plain_send(), ResponseTemplate::new(503)).await;
    assert_eq!(Some(503), result.unwrap_err().status());
    assert_eq!(
        (1, 0),
        (
            received.len(),
            retries.load(std::sync::atomic::Ordering::SeqCst)
        )
    );
}

#[tokio::test]
async fn m8_a_redirect_is_not_followed_so_the_master_signature_never_reaches_another_host() {
    let _serial = counting_retries().await;
    let elsewhere = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
        .mount(&elsewhere)
        .await;
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("Location", format!("{}/1.1/rtm/messages", elsewhere.uri())),
        )
        .mount(&server)
        .await;
    let err = plain_send().send(&client_for(&server)).await.unwrap_err();
    assert_eq!(Some(307), err.status(), "{err:?}");
    assert_eq!(0, elsewhere.received_requests().await.unwrap().len());
}
