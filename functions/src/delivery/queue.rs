//! The bulk queue: an HTTP send with more than 20 recipients is validated, put on `BULK_QUEUE_URL` as a
//! send-message queue record, and answered `202`. The queue's consumer (send-message's SQS trigger) then fans
//! it out with the idempotency key the record carries.

use aws_sdk_sqs::error::DisplayErrorContext;
use serde::Serialize;
use serde_json::Value;

/// The queue HTTP bulk sends go to.
#[derive(Debug, Clone)]
pub struct BulkQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

/// The `202` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Queued {
    pub conversation_id: String,
    pub status: &'static str,
    /// The SQS message id of the queued record.
    pub queue_message_id: String,
    /// The key the queued work is de-duplicated with: the caller's, or the SQS message id.
    pub idempotency_key: String,
    pub recipients: usize,
    pub duplicates_removed: usize,
    pub chunks: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("bulk queue: {0}")]
pub struct QueueError(pub String);

impl BulkQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        BulkQueue {
            client,
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Put one record on the queue; its SQS message id.
    pub async fn enqueue(&self, record: &Value) -> Result<String, QueueError> {
        let body = serde_json::to_string(record).map_err(|err| QueueError(err.to_string()))?;
        let output = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|err| QueueError(DisplayErrorContext(err).to_string()))?;
        output
            .message_id()
            .map(str::to_owned)
            .ok_or_else(|| QueueError("SQS returned no message id".to_owned()))
    }
}
