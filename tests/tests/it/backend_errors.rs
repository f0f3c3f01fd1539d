//! What callers see when LeanCloud (the local server) refuses or fails: statuses, codes, retries.

use im_functions::ops::add_member::AddMemberOp;
use im_functions::ops::broadcast::BroadcastOp;
use im_functions::ops::send_message::SendMessageOp;
use lambda_runtime::Diagnostic;
use leancloud_server::{FaultConfig, FaultKind};
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::helpers::{http_event, sqs_event, TestApp, MASTER_KEY};

const MISSING: &str = "5f1e2d3c4b5a69788796a5b4";

#[tokio::test]
async fn an_unknown_conversation_is_404_with_leancloud_code() {
    let app = TestApp::spawn().await;
    let message = r#"{"from_client": "alice", "message": "hi"}"#;
    let answer = app
        .http::<SendMessageOp>(http_event(
            "POST",
            &format!("/conversations/{MISSING}/messages"),
            message,
        ))
        .await;
    answer.assert_error(404, "conversation_not_found");
    assert!(
        answer.body["error"]["leancloud_code"].is_i64(),
        "{:?}",
        answer.body
    );

    let members = r#"{"client_ids": ["carol"]}"#;
    let answer = app
        .http::<AddMemberOp>(http_event(
            "POST",
            &format!("/conversations/{MISSING}/members"),
            members,
        ))
        .await;
    answer.assert_error(404, "conversation_not_found");
    app.shutdown().await;
}

#[tokio::test]
async fn a_conversation_of_the_wrong_kind_is_409() {
    let app = TestApp::spawn().await;
    let broadcast = r#"{"from_client": "announcer", "message": "hi"}"#;
    let answer = app
        .http::<BroadcastOp>(http_event(
            "POST",
            &format!("/conversations/{}/broadcasts", app.normal),
            broadcast,
        ))
        .await;
    answer.assert_error(409, "wrong_conversation_kind");
    assert!(answer.body["error"]["leancloud_code"].is_i64());

    let to_clients = r#"{"from_client": "notifier", "message": "hi", "to_clients": ["alice"]}"#;
    let answer = app
        .http::<SendMessageOp>(http_event(
            "POST",
            &format!("/conversations/{}/messages", app.normal),
            to_clients,
        ))
        .await;
    answer.assert_error(409, "wrong_conversation_kind");
    app.shutdown().await;
}

#[tokio::test]
async fn a_rate_limit_is_429_with_retry_after() {
    let app = TestApp::spawn().await;
    app.server
        .set_faults(FaultConfig::always(FaultKind::TooManyRequests));
    let body = r#"{"from_client": "alice", "message": "hi"}"#;
    let answer = app
        .http::<SendMessageOp>(http_event(
            "POST",
            &format!("/conversations/{}/messages", app.normal),
            body,
        ))
        .await;
    answer.assert_error(429, "rate_limited");
    let retry_after: u64 = answer
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(retry_after >= 1);
    app.shutdown().await;
}

#[tokio::test]
async fn backend_failures_are_502_or_503_without_details() {
    let app = TestApp::spawn().await;
    let body = r#"{"from_client": "alice", "message": "hi"}"#;
    for kind in [FaultKind::ServerError, FaultKind::Drop] {
        app.server.set_faults(FaultConfig::always(kind));
        let answer = app
            .http::<SendMessageOp>(http_event(
                "POST",
                &format!("/conversations/{}/messages", app.normal),
                body,
            ))
            .await;
        assert!(
            [502, 503].contains(&answer.status),
            "{kind:?} gave {} {:?}",
            answer.status,
            answer.body
        );
        let text = answer.raw.to_string();
        assert!(
            !text.contains(MASTER_KEY) && !text.contains("127.0.0.1"),
            "{kind:?} leaks: {text}"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_retryable_failure_fails_the_schedule_invocation_so_scheduler_retries() {
    let app = TestApp::spawn().await;
    app.server
        .set_faults(FaultConfig::always(FaultKind::ServerError));
    let err = app
        .invoke::<BroadcastOp>(app.event("broadcast.schedule.json"))
        .await
        .expect_err("fails");
    assert!(err.is_retryable());
    let diagnostic = Diagnostic::from(err);
    assert_eq!("Retryable", diagnostic.error_type);
    assert!(!diagnostic.error_message.contains(MASTER_KEY));
    app.server.set_faults(FaultConfig::off());
    let result = app
        .invoke::<BroadcastOp>(app.event("broadcast.schedule.json"))
        .await
        .expect("the retry succeeds");
    assert!(result["msg_id"].is_string());
    app.shutdown().await;
}

#[tokio::test]
async fn a_failing_record_never_fails_its_neighbours() {
    let app = TestApp::spawn().await;
    let ok = json!({"conversation_id": app.normal.to_string(), "from_client": "alice", "message": "one"}).to_string();
    let missing =
        json!({"conversation_id": MISSING, "from_client": "alice", "message": "lost"}).to_string();
    let ok2 = json!({"conversation_id": app.normal.to_string(), "from_client": "alice", "message": "two"}).to_string();
    let failed = app
        .sqs::<SendMessageOp>(sqs_event(&[&ok, &missing, &ok2]))
        .await;
    assert_eq!(vec!["m-1"], failed);
    let mut stored: Vec<String> = app
        .inspect()
        .messages(app.normal.as_ref())
        .into_iter()
        .map(|m| m.data)
        .collect();
    stored.sort();
    assert_eq!(vec!["one", "two"], stored);
    app.shutdown().await;
}

#[tokio::test]
async fn a_fifo_batch_stops_at_the_first_failure_and_reports_the_rest() {
    let app = TestApp::spawn().await;
    let ok = json!({"conversation_id": app.normal.to_string(), "from_client": "alice", "message": "first"}).to_string();
    let missing =
        json!({"conversation_id": MISSING, "from_client": "alice", "message": "lost"}).to_string();
    let later = json!({"conversation_id": app.normal.to_string(), "from_client": "alice", "message": "later"}).to_string();
    let mut event = sqs_event(&[&ok, &missing, &later]);
    for record in event["Records"].as_array_mut().expect("records") {
        record["eventSourceARN"] = json!("arn:aws:sqs:us-east-1:123456789012:orders.fifo");
    }
    let failed = app.sqs::<SendMessageOp>(event).await;
    assert_eq!(vec!["m-1", "m-2"], failed);
    let stored: Vec<String> = app
        .inspect()
        .messages(app.normal.as_ref())
        .into_iter()
        .map(|m| m.data)
        .collect();
    assert_eq!(vec!["first"], stored);
    app.shutdown().await;
}
