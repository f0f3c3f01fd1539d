//! SQS batches, in the runtime's `batch_handler` shape: every record through [`super::run_one`], and only
//! the records that failed reported back.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsMessage};
use futures::StreamExt as _;
use serde_json::Value;

use super::run_one;
use crate::delivery::key::IdempotencyKey;
use crate::error::{ErrorCode, FunctionError};
use crate::ops::{Invocation, Operation, TriggerKind};

/// How many records of one SQS batch are processed at the same time.
pub const RECORD_CONCURRENCY: usize = 10;

/// Process an SQS batch and report only the records that failed.
///
/// The answer is honoured only when the event source mapping sets `FunctionResponseTypes: [ReportBatchItemFailures]`;
/// without it SQS deletes the whole batch after an `Ok`.
pub async fn handle_batch<Op: Operation>(
    inv: &Invocation<'_>,
    records: Vec<SqsMessage>,
    fifo: bool,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    if fifo {
        // FIFO order: after the first failure, every later record of the group must be retried too.
        let mut failed = false;
        for record in &records {
            let id = record.message_id.clone().unwrap_or_default();
            if failed || process_record::<Op>(inv, record).await.is_err() {
                failed = true;
                response.add_failure(id);
            }
        }
        return response;
    }
    let outcomes: Vec<(String, bool)> = futures::stream::iter(records.iter())
        .map(|record| async move {
            let ok = process_record::<Op>(inv, record).await.is_ok();
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

/// Process one SQS record (a panic fails only this record: see [`super::run_one`]).
pub async fn process_record<Op: Operation>(
    inv: &Invocation<'_>,
    record: &SqsMessage,
) -> Result<Op::Output, FunctionError> {
    let message_id = record.message_id.as_deref().unwrap_or_default();
    // A redelivery of this message carries the same id: the key when the record names none.
    let inv = Invocation {
        implied_key: record.message_id.clone().map(IdempotencyKey::implied),
        ..inv.clone()
    };
    let payload = record_payload(record).map(|payload| (payload, None));
    run_one::<Op>(&inv, payload, TriggerKind::Sqs, Some(message_id)).await
}

/// A record's body as the JSON payload [`super::run_one`] decodes.
pub fn record_payload(record: &SqsMessage) -> Result<Value, FunctionError> {
    let body = record
        .body
        .as_deref()
        .ok_or_else(|| FunctionError::invalid_request("the record has no body"))?;
    serde_json::from_str::<Value>(body).map_err(|err| {
        FunctionError::invalid(
            ErrorCode::InvalidJson,
            format!("record body is not valid JSON: {err}"),
        )
    })
}
