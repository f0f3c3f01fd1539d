use std::time::Duration;

use leancloud_server::{FaultConfig, FaultKind};
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{spawn_app, Key};

#[tokio::test]
async fn faulted_requests_answer_5xx_or_429_and_are_never_applied() {
    let app = spawn_app().await;
    let conv = app.conversation(json!({"name": "c"})).await;
    let body = json!({"from_peer": "a", "conv_id": conv, "transient": false, "message": "m"});

    app.server
        .set_faults(FaultConfig::always(FaultKind::ServerError));
    assert_eq!(
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"code": 1, "error": "Service unavailable (injected fault)."})
        ),
        app.send(body.clone()).await
    );

    app.server
        .set_faults(FaultConfig::always(FaultKind::TooManyRequests));
    let response = app
        .request(Key::Master, Method::POST, "/1.1/rtm/messages")
        .body(body.to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(StatusCode::TOO_MANY_REQUESTS, response.status());
    assert_eq!("1", response.headers()["retry-after"]);
    assert!(app.server.inspect().messages(&conv).is_empty());

    app.server.set_faults(FaultConfig::off());
    assert_eq!(StatusCode::OK, app.send(body).await.0);
    assert_eq!(1, app.server.inspect().messages(&conv).len());
}

#[tokio::test]
async fn a_dropped_connection_gets_no_response_and_is_not_applied() {
    let app = spawn_app().await;
    let conv = app.conversation(json!({"name": "c"})).await;
    app.server.set_faults(FaultConfig::always(FaultKind::Drop));
    let result = app
        .request(Key::Master, Method::POST, "/1.1/rtm/messages")
        .body(
            json!({"from_peer": "a", "conv_id": conv, "transient": false, "message": "m"})
                .to_string(),
        )
        .send()
        .await;
    assert!(
        result.is_err(),
        "expected a transport error, got {result:?}"
    );
    assert!(app.server.inspect().messages(&conv).is_empty());
    let last = app.server.inspect().requests().pop().expect("recorded");
    assert_eq!(
        ("POST", "/1.1/rtm/messages", 0),
        (last.method.as_str(), last.path.as_str(), last.status)
    );
}

#[tokio::test]
async fn applied_then_dropped_applies_the_write_and_drops_the_answer() {
    let app = spawn_app().await;
    let conv = app.conversation(json!({"name": "c"})).await;
    app.server
        .set_faults(FaultConfig::always(FaultKind::AppliedThenDropped));
    let result = app
        .request(Key::Master, Method::POST, "/1.1/rtm/messages")
        .body(
            json!({"from_peer": "a", "conv_id": conv, "transient": false, "message": "m"})
                .to_string(),
        )
        .send()
        .await;
    assert!(
        result.is_err(),
        "expected a transport error, got {result:?}"
    );
    assert_eq!(1, app.server.inspect().messages(&conv).len());
}

#[tokio::test]
async fn the_timeout_kind_answers_only_after_the_delay() {
    let app = spawn_app().await;
    app.server.set_faults(FaultConfig {
        delay_ms: 60_000,
        ..FaultConfig::always(FaultKind::Timeout)
    });
    let result = app
        .request(Key::Master, Method::GET, "/1.1/classes/_Conversation")
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(
        result.as_ref().is_err_and(|e| e.is_timeout()),
        "expected a client timeout, got {result:?}"
    );
}

#[tokio::test]
async fn faults_switch_over_http_with_the_master_key_and_can_stop_after_n() {
    let app = spawn_app().await;
    let (status, config) = app
        .put(
            "/__admin/faults",
            json!({"rate": 1.0, "kinds": ["5xx"], "max_faults": 2, "paths": ["/1.1/classes"]}),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    assert_eq!(
        json!({"rate": 1.0, "kinds": ["5xx"], "delay_ms": 30000, "paths": ["/1.1/classes"], "max_faults": 2}),
        config
    );
    // Only the listed paths are faulted, and only twice.
    assert_eq!(StatusCode::OK, app.get("/1.1/rtm/messages/history").await.0);
    assert_eq!(
        StatusCode::SERVICE_UNAVAILABLE,
        app.get("/1.1/classes/_Conversation").await.0
    );
    assert_eq!(
        StatusCode::SERVICE_UNAVAILABLE,
        app.get("/1.1/classes/_Conversation").await.0
    );
    assert_eq!(
        StatusCode::OK,
        app.get("/1.1/classes/_Conversation").await.0
    );
    assert_eq!(Some(0), app.server.inspect().faults().max_faults);

    let (status, _) = app
        .put("/__admin/faults", json!({"rate": 2.0, "kinds": ["5xx"]}))
        .await;
    assert_eq!(StatusCode::BAD_REQUEST, status);
    let (status, _) = app
        .put("/__admin/faults", json!({"rate": 0.5, "kinds": ["nope"]}))
        .await;
    assert_eq!(StatusCode::BAD_REQUEST, status);
}

/// Issue 21: fault mode breaks LeanCloud's API, never the operators' doors (health, settings, console).
#[tokio::test]
async fn the_console_and_admin_endpoints_answer_while_every_api_call_is_faulted() {
    // Arrange
    let app = spawn_app().await;
    app.server
        .set_faults(FaultConfig::always(FaultKind::ServerError));

    // Act
    let api = app.get("/1.1/date").await;
    let health = app.get("/__admin/health").await;
    let console = app
        .client
        .get(app.url("/console/"))
        .send()
        .await
        .expect("console page");
    let unknown = app.get("/1.1/nothing-here").await;

    // Assert
    assert_eq!(StatusCode::SERVICE_UNAVAILABLE, api.0, "{}", api.1);
    assert_eq!(StatusCode::OK, health.0, "{}", health.1);
    assert_eq!(StatusCode::OK, console.status());
    assert_eq!(StatusCode::SERVICE_UNAVAILABLE, unknown.0, "{}", unknown.1);
}
