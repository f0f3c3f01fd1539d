//! The Lambda adapters: detect the trigger, turn it into a payload, hand it to the one core ([`run_one`]:
//! decode → validate → run → log), and map the outcome to what that trigger expects. Written once, generic
//! over [`Operation`].
//!
//! HTTP always answers `Ok` with an API Gateway v2 response (errors included); SQS always answers `Ok` with the
//! failed message ids; schedules answer `Ok` with the operation's result or `Err` so Scheduler retries.

pub mod http;
pub mod idempotency;
pub mod sqs;
pub mod trigger;

use std::panic::AssertUnwindSafe;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use futures::FutureExt as _;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{info, warn, Instrument as _};

use crate::app::App;
use crate::delivery::key::IdempotencyKey;
use crate::error::{ErrorCode, FunctionError};
use crate::ops::caller::{authorize, authorize_in_conversation, Caller};
use crate::ops::{decode, Invocation, Matched, Operation, Target as _, TriggerKind};
use trigger::Trigger;

/// Time kept back from the invocation deadline to answer (and report failures) before Lambda stops us.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// A function binary's whole life: JSON logs, the [`App`] built once (failing fast), then every invocation of
/// `Op` handled with it.
pub async fn serve<Op: Operation>() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let app = App::from_env::<Op>()
        .await
        .inspect_err(|err| tracing::error!(%err, "cannot start"))?;
    let app = &app;
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        handle::<Op>(app, event)
    }))
    .await
}

/// The Lambda handler of every function: `lambda_runtime::run(service_fn(|e| handle::<Op>(&app, e)))`.
pub async fn handle<Op: Operation>(
    app: &App,
    event: LambdaEvent<Value>,
) -> Result<Value, FunctionError> {
    let schedule_key = idempotency::eventbridge_key(&event.payload).map(IdempotencyKey::implied);
    let inv = Invocation {
        app,
        deadline: deadline_of(event.context.deadline),
        implied_key: None,
        caller: Caller::Trusted,
    };
    let span = tracing::info_span!(
        "invocation",
        request_id = %event.context.request_id,
        operation = Op::NAME,
        trigger = tracing::field::Empty,
        caller = tracing::field::Empty,
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
        // Only an HTTP request names a caller; queue records and schedules come from this stack.
        let caller = match &trigger {
            Trigger::Http(request) => http::caller(request, &app.jwt),
            _ => Caller::Trusted,
        };
        tracing::Span::current().record("caller", caller.describe());
        if !Op::TRIGGERS.contains(&kind) {
            let err = FunctionError::UnsupportedTrigger {
                function: Op::NAME,
                trigger: kind.to_string(),
            };
            warn!(outcome = "unsupported_trigger", error = %err, "rejected the event");
            return Err(err);
        }
        match trigger {
            Trigger::Http(request) => {
                // U3: the work stops before API Gateway answers 503 on its own, so a caller that gets a 503
                // and retries never doubles a send that was still going out.
                let gateway = http::caller_gives_up_at_ms(&request, epoch_ms()).map(deadline_at);
                let inv = Invocation {
                    caller,
                    deadline: earliest(inv.deadline, gateway),
                    ..inv
                };
                answer(&handle_http::<Op>(&inv, &request).await)
            }
            Trigger::Sqs { records, fifo } => {
                answer(&sqs::handle_batch::<Op>(&inv, records, fifo).await)
            }
            Trigger::EventBridge { detail, .. } => {
                let inv = Invocation {
                    implied_key: schedule_key,
                    ..inv
                };
                let output = run_one::<Op>(&inv, Ok((detail, None)), kind, None).await?;
                answer(&output)
            }
            Trigger::Scheduler(input) => {
                let output =
                    run_one::<Op>(&inv, Ok((Value::Object(input), None)), kind, None).await?;
                answer(&output)
            }
        }
    }
    .instrument(span)
    .await
}

/// The answer as JSON. A failure fails the invocation: an SQS answer of `null` would mean "no failures" and
/// delete the whole batch.
fn answer(value: &impl Serialize) -> Result<Value, FunctionError> {
    serde_json::to_value(value).map_err(|err| {
        warn!(error = %err, "could not encode the answer");
        FunctionError::Panicked
    })
}

/// Answer one HTTP request. Never fails: errors become error responses.
pub async fn handle_http<Op: Operation>(
    inv: &Invocation<'_>,
    request: &ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse {
    let payload = http_payload::<Op>(request);
    match run_one::<Op>(inv, payload, TriggerKind::Http, None).await {
        Ok(output) => http::response(Op::status(&output), &output),
        Err(err) => http::error_response(&err),
    }
}

/// What an HTTP request hands to [`run_one`]: the route match and the JSON body, with the `Idempotency-Key`
/// header and `?dry_run` folded in. Pure (the fuzz target `functions_event` calls it).
pub fn http_payload<Op: Operation>(
    request: &ApiGatewayV2httpRequest,
) -> Result<(Value, Option<Matched>), FunctionError> {
    let matched = http::route::<Op>(request)?;
    let mut body = if http::takes_body::<Op>(&matched.method) {
        http::json_body(request)?
    } else {
        Value::Object(Default::default())
    };
    if Op::TAKES_IDEMPOTENCY_KEY {
        idempotency::apply_http_options(request, &mut body)?;
    }
    Ok((body, Some(matched)))
}

/// The one core every trigger goes through: decode and validate the payload, run the operation, and log the
/// outcome (here only, with the conversation, the HTTP status and the SQS message id when there is one).
/// `payload` is what the adapter made of the event, or why it could not.
pub async fn run_one<Op: Operation>(
    inv: &Invocation<'_>,
    payload: Result<(Value, Option<Matched>), FunctionError>,
    via: TriggerKind,
    message_id: Option<&str>,
) -> Result<Op::Output, FunctionError> {
    let mut conversation: Option<String> = None;
    let work = async {
        let (payload, matched) = payload?;
        let (target, body) = decode::<Op>(payload, matched)?;
        conversation = target.conversation().map(ToString::to_string);
        let input = Op::parse(target, body, via)?;
        authorize::<Op>(&inv.caller, &input)?;
        authorize_in_conversation::<Op>(inv, &input).await?;
        // Boxed behind `dyn Future`: the operation's future (fan-out, ledger, the SDK's orchestrator) nested in
        // every trigger's future and the binary's `main` is deeper than the compiler's default recursion limit
        // lets it compute layouts for ("queries overflow the depth limit"). One allocation per record.
        let run: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send + '_>> =
            Box::pin(Op::run(inv, input));
        run.await
    };
    // A panic is contained per SQS record so it fails only that record.
    let result = if via == TriggerKind::Sqs {
        AssertUnwindSafe(work)
            .catch_unwind()
            .await
            .unwrap_or(Err(FunctionError::Panicked))
    } else {
        work.await
    };
    let http = via == TriggerKind::Http;
    match &result {
        Ok(output) => {
            let conversation =
                conversation.or_else(|| Op::created(output).map(ToString::to_string));
            match via {
                TriggerKind::Http => info!(
                    conversation,
                    outcome = "ok",
                    status = Op::status(output),
                    "request handled"
                ),
                TriggerKind::Sqs => {
                    info!(message_id, conversation, outcome = "ok", "record processed")
                }
                TriggerKind::Schedule | TriggerKind::EventBridge => info!(
                    conversation,
                    outcome = "ok",
                    trigger = via.as_str(),
                    "schedule handled"
                ),
            }
        }
        Err(err) => {
            let status = http.then(|| err.to_http().status);
            log_failure(err, conversation.as_deref(), status, message_id);
        }
    }
    result
}

fn log_failure(
    err: &FunctionError,
    conversation: Option<&str>,
    status: Option<u16>,
    message_id: Option<&str>,
) {
    let retryable = err.is_retryable();
    let code: ErrorCode = err.to_http().code;
    let code = code.as_str();
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
        | FunctionError::DeadlineExceeded
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

/// The Lambda deadline (epoch ms) as a tokio instant, minus a margin; `None` when unknown (tests,
/// `Context::default()`) or already past, which only a local emulator produces (`cargo lambda watch` stamps
/// the deadline before it compiles the function on the first request).
fn deadline_of(deadline_ms: u64) -> Option<Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let left = deadline_ms.checked_sub(epoch_ms())?;
    Some(Instant::now() + Duration::from_millis(left).saturating_sub(DEADLINE_MARGIN))
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An epoch-ms instant as a tokio instant (now, if it has passed).
fn deadline_at(at_ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(at_ms.saturating_sub(epoch_ms()))
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
