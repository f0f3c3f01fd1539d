//! One regression test per finding of the security and reliability review (`review-2026-12.md` part 2)
//! that concerns the server, named after it.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, Key};
use reqwest::Method;

#[tokio::test]
async fn h2_array_operations_are_bounded_so_one_request_cannot_stall_the_writer() {
    let app = spawn_app().await;
    let huge: Vec<i64> = (0..300_000).collect();
    let (status, body) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/classes/Foo",
            Some(json!({"a": {"__op": "AddUnique", "objects": huge}})),
        )
        .await;
    assert_eq!(
        (400, json!(413)),
        (status.as_u16(), body["code"].clone()),
        "{body}"
    );
    // Within the limits, AddUnique and Remove still do their job.
    let items: Vec<i64> = (0..10_000).collect();
    let (status, created) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/classes/Foo",
            Some(json!({"a": {"__op": "AddUnique", "objects": items}})),
        )
        .await;
    assert_eq!(201, status.as_u16());
    let id = created["objectId"].as_str().expect("id").to_string();
    let (status, _) = app
        .call(
            Key::App,
            Method::PUT,
            &format!("/1.1/classes/Foo/{id}"),
            Some(json!({"a": {"__op": "Remove", "objects": (0..9_990).collect::<Vec<i64>>()}})),
        )
        .await;
    assert_eq!(200, status.as_u16());
    let (_, got) = app
        .call(
            Key::App,
            Method::GET,
            &format!("/1.1/classes/Foo/{id}"),
            None,
        )
        .await;
    assert_eq!(json!((9_990..10_000).collect::<Vec<i64>>()), got["a"]);
    // And one object cannot grow past 128 KB.
    let (status, body) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/classes/Foo",
            Some(json!({"blob": "x".repeat(200 * 1024)})),
        )
        .await;
    assert_eq!((400, json!(413)), (status.as_u16(), body["code"].clone()));
}

#[tokio::test]
async fn m1_overflowing_arithmetic_answers_400_and_the_writer_keeps_working() {
    let app = spawn_app().await;
    let (status, body) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/classes/Foo",
            Some(json!({"n": {"__op": "Decrement", "amount": i64::MIN}})),
        )
        .await;
    assert_eq!(
        (400, json!(111)),
        (status.as_u16(), body["code"].clone()),
        "{body}"
    );
    let (_, created) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/classes/Foo",
            Some(json!({"n": i64::MAX})),
        )
        .await;
    let id = created["objectId"].as_str().expect("id");
    let (status, _) = app
        .call(
            Key::App,
            Method::PUT,
            &format!("/1.1/classes/Foo/{id}"),
            Some(json!({"n": {"__op": "Increment", "amount": 1}})),
        )
        .await;
    assert_eq!(400, status.as_u16(), "never a wrapped or saturated value");
    let (_, got) = app
        .call(
            Key::App,
            Method::GET,
            &format!("/1.1/classes/Foo/{id}"),
            None,
        )
        .await;
    assert_eq!(json!(i64::MAX), got["n"]);
    let health: Value = app
        .client
        .get(app.url("/__admin/health"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(json!({"status": "ok", "writer": "running"}), health);
}

#[tokio::test]
async fn m2_an_update_never_shows_what_the_read_acl_hides() {
    let app = spawn_app().await;
    let (_, created) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/classes/Secret",
            Some(json!({"secret": "s3cr3t", "ACL": {"*": {"write": true}}})),
        )
        .await;
    let id = created["objectId"].as_str().expect("id");
    let path = format!("/1.1/classes/Secret/{id}?fetchWhenSave=true");
    let (status, body) = app
        .call(Key::App, Method::PUT, &path, Some(json!({"n": 1})))
        .await;
    assert_eq!(200, status.as_u16());
    assert_eq!(None, body.get("secret"), "{body}");
    let oracle =
        format!("/1.1/classes/Secret/{id}?where=%7B%22secret%22%3A%7B%22%24gt%22%3A%22m%22%7D%7D");
    let (status, body) = app
        .call(Key::App, Method::PUT, &oracle, Some(json!({"n": 2})))
        .await;
    assert_eq!(
        (403, json!(403)),
        (status.as_u16(), body["code"].clone()),
        "a condition on hidden fields is refused"
    );
    let (status, _) = app
        .call(Key::App, Method::DELETE, &oracle, Some(json!({})))
        .await;
    assert_eq!(403, status.as_u16());
    // The master key still sees everything.
    let (_, full) = app
        .call(Key::Master, Method::PUT, &path, Some(json!({"n": 3})))
        .await;
    assert_eq!(json!("s3cr3t"), full["secret"]);
}

#[tokio::test]
async fn l3_a_conversation_with_oddly_typed_flags_still_takes_messages() {
    let app = spawn_app().await;
    let conv = app
        .conversation(json!({"m": ["a"], "tr": "true", "sys": {"x": 1}}))
        .await;
    let (status, body) = app
        .send(json!({"from_peer": "a", "conv_id": conv, "message": "hi", "transient": false}))
        .await;
    assert_eq!(200, status.as_u16(), "{body}");
}

#[tokio::test]
async fn l4_dotted_keys_cannot_reach_reserved_fields() {
    let app = spawn_app().await;
    for body in [
        json!({"objectId.x": 1}),
        json!({"ACL.*.read": true}),
        json!({"createdAt.y": 2}),
    ] {
        let (status, answer) = app
            .call(
                Key::App,
                Method::POST,
                "/1.1/classes/Foo",
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (400, json!(105)),
            (status.as_u16(), answer["code"].clone()),
            "{body}"
        );
    }
}

#[tokio::test]
async fn l5_a_huge_to_peers_list_is_refused_quickly() {
    let app = spawn_app().await;
    let conv = app.conversation(json!({"sys": true})).await;
    let peers: Vec<String> = (0..200_000).map(|i| format!("c{i}")).collect();
    let started = std::time::Instant::now();
    let (status, body) = app
        .send(json!({"from_peer": "a", "conv_id": conv, "message": "x", "to_peers": peers}))
        .await;
    assert_eq!(400, status.as_u16());
    assert_eq!(
        json!("to_peers has 200000 client ids; at most 20 are allowed."),
        body["error"]
    );
    // Generous: the quadratic version took minutes for this list.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn l12_a_failed_broadcast_does_not_use_the_daily_quota() {
    let app = crate::helpers::spawn_with(|c| c.rate_limits.broadcasts_per_day = Some(1)).await;
    let normal = app.conversation(json!({"m": ["a"]})).await;
    for conv in ["no-such-conversation", normal.as_str()] {
        let (status, _) = app
            .post(
                "/1.1/rtm/broadcast",
                json!({"from_peer": "a", "conv_id": conv, "message": "x"}),
            )
            .await;
        assert_eq!(400, status.as_u16());
    }
    let sys = app.conversation(json!({"sys": true})).await;
    let (status, body) = app
        .post(
            "/1.1/rtm/broadcast",
            json!({"from_peer": "a", "conv_id": sys, "message": "x"}),
        )
        .await;
    assert_eq!(
        200,
        status.as_u16(),
        "the one broadcast of the day is still there: {body}"
    );
}
