use leancloud_server::RateLimits;
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{spawn_app, spawn_with, Key};

#[tokio::test]
async fn the_message_bucket_answers_429_with_retry_after_once_full() {
    let app = spawn_with(|c| {
        c.rate_limits = RateLimits {
            messages_per_minute: Some(2),
            ..RateLimits::off()
        }
    })
    .await;
    let conv = app.conversation(json!({"name": "c"})).await;
    let body = json!({"from_peer": "a", "conv_id": conv, "transient": false, "message": "m"});
    for _ in 0..2 {
        assert_eq!(StatusCode::OK, app.send(body.clone()).await.0);
    }
    for _ in 0..2 {
        let response = app
            .request(Key::Master, Method::POST, "/1.1/rtm/messages")
            .body(body.to_string())
            .send()
            .await
            .expect("sent");
        assert_eq!(StatusCode::TOO_MANY_REQUESTS, response.status());
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert_eq!(
            json!({"code": 429, "error": "Too many requests."}),
            response.json::<serde_json::Value>().await.expect("json")
        );
    }
    assert_eq!(2, app.server.inspect().messages(&conv).len());
    // Broadcasts have their own bucket (unlimited here); storage calls are never limited.
    let system = app.conversation(json!({"sys": true})).await;
    assert_eq!(
        StatusCode::OK,
        app.post(
            "/1.1/rtm/broadcast",
            json!({"from_peer": "s", "conv_id": system, "message": "b"})
        )
        .await
        .0
    );
}

#[tokio::test]
async fn broadcasts_have_a_minute_bucket_and_a_daily_quota() {
    let app = spawn_with(|c| {
        c.rate_limits = RateLimits {
            broadcasts_per_minute: Some(1),
            broadcasts_per_day: Some(5),
            ..RateLimits::off()
        }
    })
    .await;
    let system = app.conversation(json!({"sys": true})).await;
    let body = json!({"from_peer": "s", "conv_id": system, "message": "b"});
    assert_eq!(
        StatusCode::OK,
        app.post("/1.1/rtm/broadcast", body.clone()).await.0
    );
    assert_eq!(
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"code": 429, "error": "Too many requests."})
        ),
        app.post("/1.1/rtm/broadcast", body.clone()).await
    );

    app.server
        .set_rate_limits(RateLimits {
            broadcasts_per_day: Some(1),
            ..RateLimits::off()
        })
        .await;
    assert_eq!(
        StatusCode::OK,
        app.post("/1.1/rtm/broadcast", body.clone()).await.0
    );
    let response = app
        .request(Key::Master, Method::POST, "/1.1/rtm/broadcast")
        .body(body.to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(StatusCode::TOO_MANY_REQUESTS, response.status());
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    assert_eq!(
        json!({"code": 1, "error": "The daily quota of system messages is exceeded."}),
        response.json::<serde_json::Value>().await.expect("json")
    );
    assert_eq!(2, app.server.inspect().messages(&system).len());
}

#[tokio::test]
async fn rate_limits_are_off_by_default_and_switchable_over_http() {
    let app = spawn_app().await;
    let conv = app.conversation(json!({"name": "c"})).await;
    let body = json!({"from_peer": "a", "conv_id": conv, "transient": false, "message": "m"});
    for _ in 0..30 {
        assert_eq!(StatusCode::OK, app.send(body.clone()).await.0);
    }
    let (status, limits) = app
        .put("/__admin/rate-limits", json!({"messages_per_minute": 1}))
        .await;
    assert_eq!(
        (
            StatusCode::OK,
            json!({"messages_per_minute": 1, "broadcasts_per_minute": null, "broadcasts_per_day": null})
        ),
        (status, limits)
    );
    assert_eq!(StatusCode::OK, app.send(body.clone()).await.0);
    assert_eq!(
        StatusCode::TOO_MANY_REQUESTS,
        app.send(body.clone()).await.0
    );
}
