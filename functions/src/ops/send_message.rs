//! `POST /conversations/{conversation_id}/messages`: send a message on behalf of a client, to the whole
//! conversation or (in a system conversation) to chosen clients.
//!
//! The whole decision is here: a dry run answers a plan; an HTTP call with more than 20 recipients goes on
//! the bulk queue (`202`); everything else fans out in chunks of 20 through the idempotency ledger and the
//! rate budget ([`crate::delivery`]).

use leancloud_im::protocol::MAX_RECIPIENTS;
use leancloud_im::{ClientId, Conversation, ConversationId, MessageId, Request, SendMessage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::{info, warn};

use super::{input, Invocation, Operation, Route, TriggerKind, EVERY_TRIGGER};
use crate::app::Needs;
use crate::delivery::budget::Bucket;
use crate::delivery::key::IdempotencyKey;
use crate::delivery::plan::{Plan, PlanInput};
use crate::delivery::queue::Queued;
use crate::delivery::{dedupe, fan_out, unavailable, BulkJob, CHUNK_SIZE, MAX_QUEUE_RECORD_BYTES};
use crate::error::{ErrorCode, FunctionError};

/// The HTTP body; a queue record or schedule input adds `conversation_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessageBody {
    pub from_client: String,
    pub message: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_clients: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transient: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_data: Option<Map<String, Value>>,
    /// De-duplicates retries and redeliveries (`functions/BULK.md`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Validate and plan only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
}

/// The queue record an HTTP bulk send is put on the bulk queue as: the body with the conversation and the
/// de-duplicated recipients, without `dry_run`.
#[derive(Debug, Clone, Serialize)]
struct QueueRecord {
    conversation_id: ConversationId,
    #[serde(flatten)]
    body: SendMessageBody,
}

#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub conversation: ConversationId,
    /// De-duplicated, in first-occurrence order; any number (sent in chunks of 20).
    pub to_clients: Option<Vec<ClientId>>,
    pub duplicates_removed: usize,
    pub idempotency_key: Option<IdempotencyKey>,
    pub dry_run: bool,
    pub via: TriggerKind,
    /// Who the message is from.
    pub from_client: ClientId,
    /// Without `to_clients`: the fan-out adds each chunk's recipients.
    request: SendMessage,
    /// What goes on the bulk queue (HTTP bulk sends only).
    record: SendMessageBody,
}

/// One message LeanCloud accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentMessage {
    pub msg_id: Option<MessageId>,
    pub timestamp: Option<i64>,
}

impl From<leancloud_im::SentMessage> for SentMessage {
    fn from(sent: leancloud_im::SentMessage) -> Self {
        SentMessage {
            msg_id: sent.msg_id,
            timestamp: sent.timestamp,
        }
    }
}

/// The `200` body. A list, because a send to many recipients goes out as several messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessagesSent {
    pub conversation_id: ConversationId,
    pub messages: Vec<SentMessage>,
}

impl OutgoingMessage {
    pub fn parse(
        conversation: ConversationId,
        body: SendMessageBody,
        via: TriggerKind,
    ) -> Result<Self, FunctionError> {
        let mut record = SendMessageBody {
            to_clients: None,
            dry_run: None,
            ..body.clone()
        };
        let from_client = input::client_id("from_client", body.from_client)?;
        let message = input::message_body(body.message)?;
        let (to_clients, duplicates_removed) = match body.to_clients {
            Some(ids) => {
                let (ids, removed) = dedupe(input::client_ids("to_clients", ids)?);
                (Some(ids), removed)
            }
            None => (None, 0),
        };
        let idempotency_key = body
            .idempotency_key
            .map(IdempotencyKey::parse)
            .transpose()?;
        let mut request = SendMessage::new(conversation.clone(), from_client.clone(), message);
        if let Some(transient) = body.transient {
            request = request.transient(transient);
        }
        if let Some(push) = input::push_data(body.push_data) {
            request = request.push(push);
        }
        // Every chunk differs only in its recipients: checking the first checks them all.
        match &to_clients {
            Some(ids) => {
                let first = ids.iter().take(MAX_RECIPIENTS).cloned();
                request.clone().to_clients(first).validate()?;
                record.to_clients = Some(ids.iter().map(ToString::to_string).collect());
            }
            None => request.validate()?,
        }
        Ok(OutgoingMessage {
            conversation,
            to_clients,
            duplicates_removed,
            idempotency_key,
            dry_run: body.dry_run.unwrap_or(false),
            via,
            from_client,
            request,
            record,
        })
    }
}

/// What a send answers: sent (`200`), queued for the bulk queue (`202`), or a dry-run plan (`200`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SendOutcome {
    Sent(MessagesSent),
    Queued(Queued),
    Planned(Plan),
}

/// The `send-message` function.
#[derive(Debug)]
pub struct SendMessageOp;

impl Needs for SendMessageOp {
    const DELIVERY: bool = true;
}

impl Operation for SendMessageOp {
    const NAME: &'static str = "send-message";
    const ROUTE: Route = Route::Conversation {
        method: "POST",
        segment: "messages",
    };
    const TRIGGERS: &'static [TriggerKind] = EVERY_TRIGGER;
    const TAKES_IDEMPOTENCY_KEY: bool = true;
    type Target = ConversationId;
    type Body = SendMessageBody;
    type Input = OutgoingMessage;
    type Output = SendOutcome;

    fn parse(
        conversation: ConversationId,
        body: Self::Body,
        via: TriggerKind,
    ) -> Result<Self::Input, FunctionError> {
        OutgoingMessage::parse(conversation, body, via)
    }

    /// Dry run, bulk queue (HTTP, more than 20 recipients) or fan-out.
    async fn run(inv: &Invocation<'_>, input: Self::Input) -> Result<Self::Output, FunctionError> {
        let recipients = input.to_clients.as_ref().map(Vec::len);
        let queued = input.via == TriggerKind::Http && recipients.is_some_and(|n| n > CHUNK_SIZE);
        if input.dry_run {
            return Ok(SendOutcome::Planned(Plan::new(PlanInput {
                operation: Self::NAME,
                conversation_id: input.conversation.to_string(),
                bucket: Bucket::Messages,
                recipients,
                duplicates_removed: input.duplicates_removed,
                queued,
                idempotency_key: input.idempotency_key,
                budget: inv.app.delivery.budget.config(),
            })));
        }
        if queued {
            return enqueue(inv, input, recipients.unwrap_or(0)).await;
        }
        let key = input
            .idempotency_key
            .as_ref()
            .or(inv.implied_key.as_ref())
            .map(|key| key.namespaced(Self::NAME));
        let job = BulkJob::new(input.request, input.to_clients, key);
        let messages = fan_out(&inv.sender(), &job).await.into_result()?;
        Ok(SendOutcome::Sent(MessagesSent {
            conversation_id: input.conversation,
            messages: messages.into_iter().map(SentMessage::from).collect(),
        }))
    }

    /// A user sends as itself, to the whole conversation, without a push payload of its own choosing: the
    /// recipients and the push alert are the app's to pick (F1).
    fn authorize_user(client_id: &str, input: &Self::Input) -> Result<(), String> {
        super::caller::must_be_self("from_client", &input.from_client, client_id)?;
        if input.to_clients.is_some() {
            return Err(
                "`to_clients` (messages to chosen clients of a system conversation) needs the admin scope"
                    .to_owned(),
            );
        }
        if input.record.push_data.is_some() {
            return Err("`push_data` needs the admin scope".to_owned());
        }
        Ok(())
    }

    fn user_conversation(input: &Self::Input) -> Option<&ConversationId> {
        Some(&input.conversation)
    }

    /// A user sends only into a conversation it is a member of, never into a system conversation (F1).
    fn authorize_user_in(
        client_id: &str,
        _input: &Self::Input,
        conversation: &Conversation,
    ) -> Result<(), String> {
        super::caller::not_system(conversation)?;
        super::caller::must_be_member(conversation, client_id)
    }

    fn status(output: &Self::Output) -> u16 {
        match output {
            SendOutcome::Queued(_) => 202,
            _ => Self::SUCCESS_STATUS,
        }
    }
}

/// Put an HTTP bulk send on the bulk queue; its consumer (this function's SQS trigger) fans it out.
async fn enqueue(
    inv: &Invocation<'_>,
    input: OutgoingMessage,
    recipients: usize,
) -> Result<SendOutcome, FunctionError> {
    let chunks = recipients.div_ceil(CHUNK_SIZE);
    let Some(queue) = &inv.app.delivery.queue else {
        return Err(FunctionError::invalid(
            ErrorCode::TooManyRecipients,
            format!(
                "`to_clients` names {recipients} clients; an HTTP call may name at most {CHUNK_SIZE} \
                 because no bulk queue is configured (BULK_QUEUE_URL)"
            ),
        ));
    };
    // U2: the record carries its key, so a redrive from the dead-letter queue (which gives the message a
    // new id) still skips the chunks already sent.
    let key = input
        .idempotency_key
        .clone()
        .unwrap_or_else(|| IdempotencyKey::generated("queued"));
    let record = serde_json::to_value(QueueRecord {
        conversation_id: input.conversation.clone(),
        body: SendMessageBody {
            idempotency_key: Some(key.to_string()),
            ..input.record
        },
    })
    .map_err(|err| unavailable("the bulk queue", &err.to_string()))?;
    if serde_json::to_vec(&record).map_or(0, |bytes| bytes.len()) > MAX_QUEUE_RECORD_BYTES {
        return Err(FunctionError::invalid(
            ErrorCode::TooManyRecipients,
            format!(
                "{recipients} recipients do not fit one queue record ({} KiB at most); split the request",
                MAX_QUEUE_RECORD_BYTES / 1024
            ),
        ));
    }
    let message_id = queue.enqueue(&record).await.map_err(|err| {
        warn!(error = %err, "could not put the bulk send on the queue");
        unavailable("the bulk queue", &err.to_string())
    })?;
    info!(queue_message_id = %message_id, recipients, chunks, "bulk send queued");
    Ok(SendOutcome::Queued(Queued {
        conversation_id: input.conversation.to_string(),
        status: "queued",
        idempotency_key: key.into(),
        queue_message_id: message_id,
        recipients,
        duplicates_removed: input.duplicates_removed,
        chunks,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::parse_payload;

    /// What the `send-message` binary does before its first call that the library fan-out does not: decode and
    /// validate one bulk record (bench/README.md, "fan-out via send-message"). Run with
    /// `cargo test --release -p im-functions -- --ignored --nocapture decoding_a_bulk_record`.
    #[test]
    #[ignore = "a timing probe for the benchmark notes, not a check"]
    fn decoding_a_bulk_record_of_ten_thousand_recipients_takes_milliseconds() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("fn-user-{i}")).collect();
        let record = serde_json::json!({"conversation_id": "c", "from_client": "system",
            "message": "bench fan-out notification", "to_clients": ids, "idempotency_key": "bench-c"})
        .to_string();
        let started = std::time::Instant::now();
        let runs = 20;
        for _ in 0..runs {
            let payload: Value = serde_json::from_str(&record).expect("JSON");
            let input =
                parse_payload::<SendMessageOp>(payload, None, TriggerKind::Sqs).expect("valid");
            let job = BulkJob::new(input.request, input.to_clients, None);
            assert_eq!(500, job.chunks());
        }
        println!(
            "decode + validate + job of a 10,000-recipient record: {:.2} ms",
            started.elapsed().as_secs_f64() * 1000.0 / f64::from(runs)
        );
    }
}
