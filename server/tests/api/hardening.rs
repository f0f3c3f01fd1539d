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
