//! Which AWS service invoked the function, decided from the keys of the raw payload.
//!
//! One runtime (`LambdaEvent<Value>`) serves every trigger, so detection inspects keys instead of trying an
//! untagged enum: that way an unknown shape gets an error naming what was expected.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::sqs::SqsMessage;
use serde_json::{Map, Value};

use crate::error::FunctionError;
use crate::ops::input::json_type;
pub use crate::ops::TriggerKind;

/// A decoded trigger.
#[derive(Debug)]
pub enum Trigger {
    /// API Gateway HTTP API (payload 2.0) or a Lambda function URL.
    Http(Box<ApiGatewayV2httpRequest>),
    /// An SQS batch; `fifo` when the queue is a FIFO queue (order must be kept).
    Sqs {
        records: Vec<SqsMessage>,
        fifo: bool,
    },
    /// A classic EventBridge (CloudWatch Events) scheduled rule: the payload is in `detail`.
    EventBridge { detail: Value, rule: Option<String> },
    /// EventBridge Scheduler: its `Input` arrives verbatim, without an envelope.
    Scheduler(Map<String, Value>),
}

impl Trigger {
    /// Short trigger name for logs and errors.
    pub fn kind(&self) -> TriggerKind {
        match self {
            Trigger::Http(_) => TriggerKind::Http,
            Trigger::Sqs { .. } => TriggerKind::Sqs,
            Trigger::EventBridge { .. } => TriggerKind::EventBridge,
            Trigger::Scheduler(_) => TriggerKind::Schedule,
        }
    }

    /// Detect and decode the trigger of a raw Lambda payload.
    pub fn detect(payload: Value) -> Result<Trigger, FunctionError> {
        let Value::Object(object) = payload else {
            return Err(FunctionError::InvalidEvent(format!(
                "expected a JSON object (an API Gateway v2 / function URL request, an SQS batch, an EventBridge \
                 event or a schedule input), got {}",
                json_type(&payload)
            )));
        };
        if object.contains_key("requestContext") {
            return decode_http(object);
        }
        if let Some(records) = object.get("Records") {
            return decode_sqs(records);
        }
        if object.contains_key("detail-type")
            || (object.contains_key("source") && object.contains_key("detail"))
        {
            return decode_eventbridge(object);
        }
        for key in ["httpMethod", "routeKey", "rawPath", "awslogs", "Sns"] {
            if object.contains_key(key) {
                return Err(FunctionError::InvalidEvent(format!(
                    "unknown trigger: an event with `{key}` is not an HTTP API 2.0, SQS, EventBridge or schedule event"
                )));
            }
        }
        Ok(Trigger::Scheduler(object))
    }
}

fn decode_http(object: Map<String, Value>) -> Result<Trigger, FunctionError> {
    let context = object.get("requestContext");
    let is_v2 = object.get("version").and_then(Value::as_str) == Some("2.0")
        || (object.contains_key("rawPath") && context.and_then(|c| c.get("http")).is_some());
    if !is_v2 {
        let hint = if object.contains_key("httpMethod") {
            "API Gateway REST API (payload 1.0) events are not supported; use an HTTP API with payload format 2.0 \
             or a function URL"
        } else {
            "an HTTP event needs `version: \"2.0\"`, `rawPath` and `requestContext.http`"
        };
        return Err(FunctionError::InvalidEvent(hint.to_owned()));
    }
    let request: ApiGatewayV2httpRequest =
        serde_json::from_value(Value::Object(object)).map_err(|err| {
            FunctionError::InvalidEvent(format!("malformed HTTP API 2.0 event: {err}"))
        })?;
    if request.raw_path.is_none() {
        return Err(FunctionError::InvalidEvent(
            "HTTP API 2.0 event without `rawPath`".to_owned(),
        ));
    }
    Ok(Trigger::Http(Box::new(request)))
}

fn decode_sqs(records: &Value) -> Result<Trigger, FunctionError> {
    let Value::Array(records) = records else {
        return Err(FunctionError::InvalidEvent(
            "`Records` must be an array".to_owned(),
        ));
    };
    let mut decoded = Vec::with_capacity(records.len());
    let mut fifo = false;
    for (index, record) in records.iter().enumerate() {
        let source = record.get("eventSource").and_then(Value::as_str);
        if source != Some("aws:sqs") {
            return Err(FunctionError::InvalidEvent(format!(
                "unknown trigger: record {index} has eventSource {}, only aws:sqs is accepted",
                source.map_or_else(|| "(none)".to_owned(), |s| format!("{s:?}"))
            )));
        }
        let message: SqsMessage = serde_json::from_value(record.clone()).map_err(|err| {
            FunctionError::InvalidEvent(format!("malformed SQS record {index}: {err}"))
        })?;
        // An empty item identifier in the answer would fail the whole batch, so a record without an id
        // makes the event itself invalid.
        if message.message_id.as_deref().is_none_or(str::is_empty) {
            return Err(FunctionError::InvalidEvent(format!(
                "SQS record {index} has no messageId"
            )));
        }
        fifo |= message
            .event_source_arn
            .as_deref()
            .is_some_and(|arn| arn.ends_with(".fifo"));
        decoded.push(message);
    }
    Ok(Trigger::Sqs {
        records: decoded,
        fifo,
    })
}

fn decode_eventbridge(mut object: Map<String, Value>) -> Result<Trigger, FunctionError> {
    for key in ["detail-type", "source", "detail"] {
        if !object.contains_key(key) {
            return Err(FunctionError::InvalidEvent(format!(
                "EventBridge event without `{key}`"
            )));
        }
    }
    let rule = object
        .get("resources")
        .and_then(Value::as_array)
        .and_then(|resources| resources.first())
        .and_then(Value::as_str)
        .map(str::to_owned);
    let detail = object.remove("detail").unwrap_or(Value::Null);
    Ok(Trigger::EventBridge { detail, rule })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn http_event(path: &str) -> Value {
        json!({
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
            "headers": {"content-type": "application/json"},
            "requestContext": {"http": {"method": "POST", "path": path}, "requestId": "r-1", "stage": "$default"},
            "body": "{}", "isBase64Encoded": false
        })
    }

    #[test]
    fn detects_every_trigger_by_its_keys() {
        let cases = [
            (http_event("/conversations"), TriggerKind::Http),
            (
                json!({"Records": [{"messageId": "m-1", "eventSource": "aws:sqs", "body": "{}"}]}),
                TriggerKind::Sqs,
            ),
            (
                json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
                TriggerKind::EventBridge,
            ),
            (
                json!({"conversation_id": "c", "from_client": "a", "message": "hi"}),
                TriggerKind::Schedule,
            ),
        ];
        for (event, expected) in cases {
            let actual = Trigger::detect(event.clone()).map(|t| t.kind());
            assert_eq!(
                expected,
                actual.expect("detected"),
                "when the event was {event}"
            );
        }
    }

    #[test]
    fn rejects_unknown_and_malformed_triggers_with_a_reason() {
        let cases = [
            (json!("just a string"), "expected a JSON object"),
            (json!([1, 2]), "expected a JSON object"),
            (
                json!({"Records": [{"EventSource": "aws:sns", "Sns": {}}]}),
                "only aws:sqs",
            ),
            (json!({"Records": {"not": "an array"}}), "must be an array"),
            (
                json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}),
                "no messageId",
            ),
            (
                json!({"httpMethod": "POST", "requestContext": {}, "path": "/x"}),
                "payload 1.0",
            ),
            (
                json!({"requestContext": {"http": {"method": "POST"}}, "version": "2.0"}),
                "rawPath",
            ),
            (
                json!({"detail-type": "Scheduled Event", "source": "aws.events"}),
                "without `detail`",
            ),
            (json!({"awslogs": {"data": "…"}}), "unknown trigger"),
        ];
        for (event, expected) in cases {
            let err = Trigger::detect(event.clone()).expect_err("must be rejected");
            assert!(
                matches!(err, FunctionError::InvalidEvent(_)) && err.to_string().contains(expected),
                "expected an InvalidEvent containing {expected:?} for {event}, got {err}"
            );
        }
    }

    #[test]
    fn marks_fifo_batches() {
        let event = json!({"Records": [{"messageId": "m-1", "eventSource": "aws:sqs", "body": "{}",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs.fifo"}]});
        let Ok(Trigger::Sqs { fifo, records }) = Trigger::detect(event) else {
            panic!("not an SQS trigger")
        };
        assert!(fifo);
        assert_eq!(1, records.len());
    }
}
