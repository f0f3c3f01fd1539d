//! Where an idempotency key comes from, per trigger (first match wins):
//! 1. the payload's `idempotency_key` field (HTTP body, queue record, Scheduler input; the template's
//!    schedules build it from the schedule name and `<aws.scheduler.scheduled-time>`);
//! 2. HTTP: the `Idempotency-Key` header (copied into the body before validation);
//! 3. SQS: the record's message id (stable across redeliveries of that message);
//! 4. classic EventBridge scheduled event: `resources[0]` (the rule ARN) and `time` (the scheduled time, the
//!    same on a retried delivery).
//!
//! An HTTP call without a key is not de-duplicated. Ledger keys are namespaced by function
//! (`send-message#<key>`), so the same key in two functions never collides.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde_json::Value;

use crate::error::FunctionError;

pub const HEADER: &str = "idempotency-key";

/// The key a classic EventBridge scheduled event implies: `<rule ARN>@<time>`.
pub fn eventbridge_key(payload: &Value) -> Option<String> {
    // Only a classic EventBridge envelope has `detail-type`; Scheduler inputs arrive without one.
    payload.get("detail-type")?;
    let rule = payload
        .get("resources")
        .and_then(Value::as_array)
        .and_then(|resources| resources.first())
        .and_then(Value::as_str)?;
    let time = payload.get("time").and_then(Value::as_str)?;
    Some(format!("{rule}@{time}"))
}

/// Copy the `Idempotency-Key` header and `?dry_run=true` into the JSON body, where validation sees them.
/// A header that contradicts the body's `idempotency_key` is an error.
pub fn apply_http_options(
    request: &ApiGatewayV2httpRequest,
    body: &mut Value,
) -> Result<(), FunctionError> {
    let Value::Object(object) = body else {
        return Ok(());
    };
    if let Some(header) = request.headers.get(HEADER) {
        let header = header.to_str().map_err(|_| {
            FunctionError::invalid_request("the Idempotency-Key header must be visible ASCII")
        })?;
        match object.get("idempotency_key") {
            None => {
                object.insert(
                    "idempotency_key".to_owned(),
                    Value::String(header.to_owned()),
                );
            }
            Some(Value::String(field)) if field == header => {}
            Some(_) => {
                return Err(FunctionError::invalid_request(
                    "the Idempotency-Key header and the body's `idempotency_key` differ",
                ))
            }
        }
    }
    if let Some(dry_run) = query_flag(request, "dry_run")? {
        match object.get("dry_run") {
            None => {
                object.insert("dry_run".to_owned(), Value::Bool(dry_run));
            }
            Some(Value::Bool(field)) if *field == dry_run => {}
            Some(_) => {
                return Err(FunctionError::invalid_request(
                    "`?dry_run` and the body's `dry_run` differ",
                ))
            }
        }
    }
    Ok(())
}

fn query_flag(
    request: &ApiGatewayV2httpRequest,
    name: &str,
) -> Result<Option<bool>, FunctionError> {
    let from_map = request
        .query_string_parameters
        .first(name)
        .map(str::to_owned);
    let from_raw = || {
        request
            .raw_query_string
            .as_deref()
            .unwrap_or_default()
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    };
    match from_map.or_else(from_raw).as_deref() {
        None => Ok(None),
        Some("true" | "1" | "") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(other) => Err(FunctionError::invalid_request(format!(
            "`?{name}` must be true or false, got {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(query: &str, key: Option<&str>) -> ApiGatewayV2httpRequest {
        let mut headers = serde_json::Map::new();
        if let Some(key) = key {
            headers.insert("idempotency-key".into(), json!(key));
        }
        serde_json::from_value(json!({
            "version": "2.0", "rawPath": "/x", "rawQueryString": query, "headers": headers,
            "requestContext": {"http": {"method": "POST", "path": "/x"}},
            "isBase64Encoded": false
        }))
        .expect("request")
    }

    #[test]
    fn header_and_query_fill_the_body() {
        let mut body = json!({"a": 1});
        apply_http_options(&request("dry_run=true", Some("k-1")), &mut body).expect("applied");
        assert_eq!(
            json!({"a": 1, "idempotency_key": "k-1", "dry_run": true}),
            body
        );

        let mut same = json!({"idempotency_key": "k-1"});
        apply_http_options(&request("", Some("k-1")), &mut same).expect("same key is fine");
        let mut differs = json!({"idempotency_key": "other"});
        assert!(apply_http_options(&request("", Some("k-1")), &mut differs).is_err());
        assert!(apply_http_options(&request("dry_run=maybe", None), &mut json!({})).is_err());
    }

    #[test]
    fn a_classic_scheduled_event_names_its_rule_and_time() {
        let event = json!({"detail-type": "Scheduled Event", "source": "aws.events",
            "time": "2026-01-05T01:00:00Z", "resources": ["arn:aws:events:us-east-1:1:rule/daily"], "detail": {}});
        assert_eq!(
            Some("arn:aws:events:us-east-1:1:rule/daily@2026-01-05T01:00:00Z".to_owned()),
            eventbridge_key(&event)
        );
        assert_eq!(None, eventbridge_key(&json!({"conversation_id": "c"})));
    }
}
