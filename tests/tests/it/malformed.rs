//! Malformed events of every kind get a clear error, and no request reaches the server.

use im_functions::ops::add_member::AddMemberOp;
use im_functions::ops::broadcast::BroadcastOp;
use im_functions::ops::create_conversation::CreateConversationOp;
use im_functions::ops::send_message::SendMessageOp;
use im_functions::FunctionError;
use lambda_runtime::Diagnostic;
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use crate::helpers::{http_event, oversized_text, sqs_event, HttpAnswer, TestApp, MASTER_KEY};

#[tokio::test]
async fn malformed_http_requests_are_400_and_never_reach_the_server() {
    // Arrange
    let app = TestApp::spawn().await;
    let messages = format!("/conversations/{}/messages", app.normal);
    let members = format!("/conversations/{}/members", app.normal);
    let many: Vec<String> = (0..21).map(|i| format!("client-{i}")).collect();
    let cases: Vec<(&str, String, String, &str)> = vec![
        (
            "not JSON",
            messages.clone(),
            "{\"from_client\": ".into(),
            "invalid_json",
        ),
        (
            "empty body",
            messages.clone(),
            String::new(),
            "invalid_json",
        ),
        (
            "a JSON array",
            messages.clone(),
            "[]".into(),
            "invalid_request",
        ),
        (
            "a wrong type",
            messages.clone(),
            r#"{"from_client": 7, "message": "hi"}"#.into(),
            "invalid_request",
        ),
        (
            "a message that is a number",
            messages.clone(),
            r#"{"from_client": "a", "message": 7}"#.into(),
            "invalid_request",
        ),
        (
            "a missing field",
            messages.clone(),
            r#"{"message": "hi"}"#.into(),
            "invalid_request",
        ),
        (
            "an unknown field",
            messages.clone(),
            r#"{"from_client": "a", "message": "hi", "urgent": true}"#.into(),
            "invalid_request",
        ),
        (
            "conversation_id in the body",
            messages.clone(),
            format!(
                r#"{{"from_client": "a", "message": "hi", "conversation_id": "{}"}}"#,
                app.normal
            ),
            "invalid_request",
        ),
        (
            "an empty client id",
            messages.clone(),
            r#"{"from_client": "", "message": "hi"}"#.into(),
            "invalid_request",
        ),
        (
            "21 recipients",
            messages.clone(),
            json!({"from_client": "a", "message": "hi", "to_clients": many}).to_string(),
            "too_many_recipients",
        ),
        (
            "an oversized message",
            messages.clone(),
            json!({"from_client": "a", "message": oversized_text()}).to_string(),
            "message_too_large",
        ),
        (
            "no members",
            members.clone(),
            r#"{"client_ids": []}"#.into(),
            "invalid_request",
        ),
    ];
    let before = app.request_count();
    for (case, path, body, code) in cases {
        // Act
        let handler = if path.ends_with("/members") {
            Route::Members
        } else {
            Route::Messages
        };
        let answer = match handler {
            Route::Members => {
                app.http::<AddMemberOp>(http_event("POST", &path, &body))
                    .await
            }
            Route::Messages => {
                app.http::<SendMessageOp>(http_event("POST", &path, &body))
                    .await
            }
        };
        // Assert
        assert_eq!(
            (400, code),
            (answer.status, answer.error_code()),
            "when the body was {case}: {:?}",
            answer.body
        );
        assert_clear_error(&answer, case);
    }
    assert_eq!(
        before,
        app.request_count(),
        "no request may reach the server"
    );
    app.shutdown().await;
}

enum Route {
    Members,
    Messages,
}

fn assert_clear_error(answer: &HttpAnswer, case: &str) {
    let message = answer.body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{case}: an error message is required");
    let text = answer.raw.to_string();
    assert!(
        !text.contains(MASTER_KEY) && !text.contains("panicked"),
        "{case}: leaks {text}"
    );
    assert_eq!(
        Some("application/json"),
        answer.header("content-type"),
        "{case}"
    );
}

#[tokio::test]
async fn unknown_routes_are_404_and_other_methods_405() {
    let app = TestApp::spawn().await;
    let before = app.request_count();
    let body = r#"{"name": "x"}"#;
    let cases = [
        ("POST", "/conversation".to_owned(), 404, "route_not_found"),
        (
            "POST",
            "/conversations/abc/messages".to_owned(),
            404,
            "route_not_found",
        ),
        (
            "GET",
            "/conversations".to_owned(),
            405,
            "method_not_allowed",
        ),
        (
            "DELETE",
            "/conversations/".to_owned(),
            405,
            "method_not_allowed",
        ),
    ];
    for (method, path, status, code) in cases {
        let answer = app
            .http::<CreateConversationOp>(http_event(method, &path, body))
            .await;
        assert_eq!(
            (status, code),
            (answer.status, answer.error_code()),
            "{method} {path}"
        );
        if status == 405 {
            assert_eq!(Some("POST"), answer.header("allow"));
        }
    }
    assert_eq!(before, app.request_count());
    app.shutdown().await;
}

#[tokio::test]
async fn events_that_are_no_known_trigger_are_rejected_with_the_reason() {
    let app = TestApp::spawn().await;
    let before = app.request_count();
    let cases = [
        (
            json!("not an object"),
            "InvalidEvent",
            "expected a JSON object",
        ),
        (json!(null), "InvalidEvent", "expected a JSON object"),
        (
            json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "{}"}}]}),
            "InvalidEvent",
            "only aws:sqs",
        ),
        (
            json!({"Records": [{"eventSource": "aws:s3", "s3": {}}]}),
            "InvalidEvent",
            "only aws:sqs",
        ),
        (
            json!({"resource": "/x", "path": "/x", "httpMethod": "POST", "requestContext": {}, "body": "{}"}),
            "InvalidEvent",
            "payload 1.0",
        ),
        (
            json!({"awslogs": {"data": "H4sIAAAA"}}),
            "InvalidEvent",
            "unknown trigger",
        ),
        (
            json!({"requestContext": {"http": {"method": "POST"}}, "version": "2.0", "rawPath": 7}),
            "InvalidEvent",
            "malformed HTTP",
        ),
        (
            json!({"name": "nightly"}),
            "UnsupportedTrigger",
            "does not accept schedule events",
        ),
        (
            json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
            "UnsupportedTrigger",
            "eventbridge",
        ),
    ];
    for (event, error_type, text) in cases {
        let err = app
            .invoke::<AddMemberOp>(event.clone())
            .await
            .expect_err("rejected");
        let diagnostic = Diagnostic::from(err);
        assert_eq!(error_type, diagnostic.error_type, "for {event}");
        assert!(
            diagnostic.error_message.contains(text),
            "{:?} should mention {text:?} for {event}",
            diagnostic.error_message
        );
    }
    assert_eq!(before, app.request_count());
    app.shutdown().await;
}

#[tokio::test]
async fn invalid_schedule_payloads_fail_the_invocation_without_a_request() {
    let app = TestApp::spawn().await;
    let before = app.request_count();
    let system = app.system.to_string();
    let cases = [
        json!({"from_client": "announcer", "message": "no conversation"}),
        json!({"conversation_id": system, "message": "no sender"}),
        json!({"conversation_id": 42, "from_client": "a", "message": "hi"}),
        json!({"conversation_id": system, "from_client": "a", "message": "hi", "valid_till": "tomorrow"}),
        json!({"conversation_id": system, "from_client": "a", "message": oversized_text()}),
        json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
    ];
    for payload in cases {
        let err = app
            .invoke::<BroadcastOp>(payload.clone())
            .await
            .expect_err("rejected");
        assert!(
            matches!(err, FunctionError::InvalidInput { .. }),
            "{err:?} for {payload}"
        );
        assert!(
            !err.is_retryable(),
            "an invalid payload is not retried: {payload}"
        );
        assert_eq!("InvalidPayload", Diagnostic::from(err).error_type);
    }
    assert_eq!(before, app.request_count());
    app.shutdown().await;
}

#[tokio::test]
async fn an_sqs_batch_of_bad_records_fails_each_record_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let before = app.request_count();
    let conversation = app.normal.to_string();
    let oversized =
        json!({"conversation_id": conversation, "from_client": "a", "message": oversized_text()})
            .to_string();
    let unknown =
        json!({"conversation_id": conversation, "from_client": "a", "message": "hi", "x": 1})
            .to_string();
    let bodies = [
        "not json",
        "[1,2]",
        "{}",
        oversized.as_str(),
        unknown.as_str(),
    ];
    let failed = app.sqs::<SendMessageOp>(sqs_event(&bodies)).await;
    assert_eq!(vec!["m-0", "m-1", "m-2", "m-3", "m-4"], failed);
    assert_eq!(before, app.request_count());
    app.shutdown().await;
}

#[test]
fn error_bodies_have_the_documented_shape() {
    let err = FunctionError::invalid_request("missing field `from_client`");
    let response = im_functions::lambda::http::error_response(&err);
    let raw = serde_json::to_value(&response).expect("serialize");
    let answer = HttpAnswer::from_value(raw);
    assert_eq!(
        json!({"error": {"code": "invalid_request", "message": "missing field `from_client`"}}),
        answer.body
    );
    assert_eq!(Value::Null, answer.body["error"]["leancloud_code"]);
}
