//! The shared event handling: detect the trigger, decode, validate, run the operation, and map the outcome
//! to what that trigger expects. Written once, generic over [`Operation`].

use std::panic::AssertUnwindSafe;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsMessage};
use futures::{FutureExt as _, StreamExt as _};
use lambda_runtime::LambdaEvent;
use leancloud_im::Client;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{info, warn, Instrument as _};

use crate::error::FunctionError;
use crate::http;
use crate::idempotency;
use crate::operation::{accepts, parse_payload, Backend, Operation, Source};
use crate::services::Services;
use crate::trigger::{Trigger, TriggerKind};

/// How many records of one SQS batch are processed at the same time.
pub const RECORD_CONCURRENCY: usize = 10;

/// Time kept back from the invocation deadline to answer (and report failures) before Lambda stops us.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// The Lambda handler of every function: `lambda_runtime::run(service_fn(|e| handle::<Op>(&client, e)))`.
///
/// HTTP always answers `Ok` with an API Gateway v2 response (errors included); SQS always answers `Ok` with the
/// failed message ids; schedules answer `Ok` with the operation's result or `Err` so Scheduler retries.
/// A function binary's whole life: JSON logs, configuration loaded once (failing fast), one client reused by every
/// invocation of `Op`.
pub async fn serve<Op: Operation>() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let config = crate::config::load()
        .await
        .inspect_err(|err| tracing::error!(%err, "cannot start"))?;
    let client = crate::config::client(config)?;
    lambda_runtime::run(lambda_runtime::service_fn(|event| {
        handle::<Op>(&client, event)
    }))
    .await
}

pub async fn handle<Op: Operation>(
    client: &Client,
    event: LambdaEvent<Value>,
) -> Result<Value, FunctionError> {
    handle_with::<Op>(client, crate::services::current(), event).await
}

/// [`handle`] with explicit services (ledger, budgets, bulk queue) instead of those installed at cold start.
pub async fn handle_with<Op: Operation>(
    client: &Client,
    services: &Services,
    event: LambdaEvent<Value>,
) -> Result<Value, FunctionError> {
    let schedule_key = idempotency::eventbridge_key(&event.payload);
    let backend = Backend {
        client,
        deadline: deadline_of(event.context.deadline),
        services,
        idempotency_key: None,
    };
    let span = tracing::info_span!(
        "invocation",
        request_id = %event.context.request_id,
        operation = Op::NAME,
        trigger = tracing::field::Empty,
    );
    async move {
        let trigger = match Trigger::detect(event.payload) {
            Ok(trigger) => trigger,
            Err(err) => {
                warn!(outcome = "invalid_event", error = %err, "rejected the event");
                return Err(err);
            }
        };
        let kind = trigger.kind();
        tracing::Span::current().record("trigger", kind.as_str());
        if !accepts::<Op>(kind) {
            let err = FunctionError::UnsupportedTrigger {
                function: Op::NAME,
                trigger: kind.to_string(),
            };
            warn!(outcome = "unsupported_trigger", error = %err, "rejected the event");
            return Err(err);
        }
        match trigger {
            Trigger::Http(request) => {
                let response = handle_http::<Op>(&backend, &request).await;
                Ok(serde_json::to_value(response).unwrap_or(Value::Null))
            }
            Trigger::Sqs { records, fifo } => {
                let response = handle_batch::<Op>(&backend, records, fifo).await;
                Ok(serde_json::to_value(response).unwrap_or(Value::Null))
            }
            Trigger::EventBridge { detail, .. } => {
                let backend = Backend {
                    idempotency_key: schedule_key.as_deref(),
                    ..backend
                };
                handle_schedule::<Op>(&backend, detail, kind).await
            }
            Trigger::Scheduler(input) => {
                handle_schedule::<Op>(&backend, Value::Object(input), kind).await
            }
        }
    }
    .instrument(span)
    .await
}

/// Answer one HTTP request. Never fails: errors become error responses.
pub async fn handle_http<Op: Operation>(
    backend: &Backend<'_>,
    request: &ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse {
    let mut conversation = None;
    let result = async {
        let path_conversation = http::route::<Op>(request)?;
        let mut body = http::json_body(request)?;
        if Op::IDEMPOTENT {
            idempotency::apply_http_options(request, &mut body)?;
        }
        let input = parse_payload::<Op>(body, path_conversation, Source::Http)?;
        conversation = Op::conversation(&input).map(ToString::to_string);
        Op::execute(backend, input).await
    }
    .await;
    match result {
        Ok(output) => {
            let status = Op::status(&output);
            let conversation =
                conversation.or_else(|| Op::created(&output).map(ToString::to_string));
            info!(conversation, outcome = "ok", status, "request handled");
            http::response(status, &output)
        }
        Err(err) => {
            let answer = err.to_http();
            log_failure(&err, conversation.as_deref(), Some(answer.status), None);
            http::error_response(&err)
        }
    }
}

/// Process an SQS batch and report only the records that failed.
///
/// The answer is honoured only when the event source mapping sets `FunctionResponseTypes: [ReportBatchItemFailures]`;
/// without it SQS deletes the whole batch after an `Ok`.
pub async fn handle_batch<Op: Operation>(
    backend: &Backend<'_>,
    records: Vec<SqsMessage>,
    fifo: bool,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    if fifo {
        // FIFO order: after the first failure, every later record of the group must be retried too.
        let mut failed = false;
        for record in &records {
            let id = record.message_id.clone().unwrap_or_default();
            if failed || process_record::<Op>(backend, record).await.is_err() {
                failed = true;
                response.add_failure(id);
            }
        }
        return response;
    }
    let outcomes: Vec<(String, bool)> = futures::stream::iter(records.iter())
        .map(|record| async move {
            let ok = process_record::<Op>(backend, record).await.is_ok();
            (record.message_id.clone().unwrap_or_default(), ok)
        })
        .buffered(RECORD_CONCURRENCY)
        .collect()
        .await;
    for (id, ok) in outcomes {
        if !ok {
            response.add_failure(id);
        }
    }
    response
}

/// Process one SQS record. A panic is contained here so it fails only this record.
pub async fn process_record<Op: Operation>(
    backend: &Backend<'_>,
    record: &SqsMessage,
) -> Result<Op::Output, FunctionError> {
    let message_id = record.message_id.as_deref().unwrap_or_default();
    // A redelivery of this message carries the same id: the key when the record names none.
    let backend = &Backend {
        idempotency_key: record.message_id.as_deref(),
        ..*backend
    };
    let mut conversation = None;
    let work = async {
        let body = record
            .body
            .as_deref()
            .ok_or_else(|| FunctionError::invalid_request("the record has no body"))?;
        let payload: Value = serde_json::from_str(body).map_err(|err| {
            FunctionError::invalid(
                crate::error::codes::INVALID_JSON,
                format!("record body is not valid JSON: {err}"),
            )
        })?;
        let input = parse_payload::<Op>(payload, None, Source::Queue)?;
        conversation = Op::conversation(&input).map(ToString::to_string);
        Op::execute(backend, input).await
    };
    let result = AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or(Err(FunctionError::Panicked));
    match &result {
        Ok(output) => {
            let conversation =
                conversation.or_else(|| Op::created(output).map(ToString::to_string));
            info!(message_id, conversation, outcome = "ok", "record processed")
        }
        Err(err) => log_failure(err, conversation.as_deref(), None, Some(message_id)),
    }
    result
}

/// Run a schedule input (Scheduler's verbatim input or a classic rule's `detail`).
pub async fn handle_schedule<Op: Operation>(
    backend: &Backend<'_>,
    payload: Value,
    kind: TriggerKind,
) -> Result<Value, FunctionError> {
    let mut conversation = None;
    let result = async {
        let input = parse_payload::<Op>(payload, None, Source::Schedule)?;
        conversation = Op::conversation(&input).map(ToString::to_string);
        Op::execute(backend, input).await
    }
    .await;
    match result {
        Ok(output) => {
            info!(
                conversation,
                outcome = "ok",
                trigger = kind.as_str(),
                "schedule handled"
            );
            Ok(serde_json::to_value(output).unwrap_or(Value::Null))
        }
        Err(err) => {
            log_failure(&err, conversation.as_deref(), None, None);
            Err(err)
        }
    }
}

fn log_failure(
    err: &FunctionError,
    conversation: Option<&str>,
    status: Option<u16>,
    message_id: Option<&str>,
) {
    let retryable = err.is_retryable();
    let code = err.to_http().code;
    match err {
        FunctionError::LeanCloud(detail) => warn!(
            conversation,
            message_id,
            status,
            outcome = "backend_error",
            code,
            retryable,
            error = ?detail,
            "LeanCloud call failed"
        ),
        FunctionError::Unavailable { .. }
        | FunctionError::Throttled { .. }
        | FunctionError::QuotaExhausted { .. }
        | FunctionError::Panicked => warn!(
            conversation,
            message_id,
            status,
            outcome = "deferred",
            code,
            retryable,
            error = %err,
            "not processed now"
        ),
        _ => warn!(
            conversation,
            message_id,
            status,
            outcome = "rejected",
            code,
            retryable,
            error = %err,
            "invalid input"
        ),
    }
}

/// The Lambda deadline (epoch ms) as a tokio instant, minus a margin; `None` when unknown (tests, `Context::default()`).
fn deadline_of(deadline_ms: u64) -> Option<Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis();
    let left = u64::try_from(u128::from(deadline_ms).checked_sub(now_ms)?).ok()?;
    Some(Instant::now() + Duration::from_millis(left).saturating_sub(DEADLINE_MARGIN))
}
