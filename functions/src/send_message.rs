//! `POST /conversations/{conversation_id}/messages`: send a message on behalf of a client, to the whole
//! conversation or (in a system conversation) to chosen clients.

use leancloud_im::{ClientId, ConversationId, Request, SendMessage, MAX_RECIPIENTS};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::FunctionError;
use crate::input;
use crate::operation::{Backend, Operation, Route, Source};

/// The HTTP body; a queue record or schedule input adds `conversation_id`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessageBody {
    pub from_client: String,
    pub message: Value,
    pub to_clients: Option<Vec<String>>,
    pub transient: Option<bool>,
    pub push_data: Option<Map<String, Value>>,
    /// De-duplicates retries and redeliveries (`functions/BULK.md`).
    pub idempotency_key: Option<String>,
    /// Validate and plan only.
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub conversation: ConversationId,
    pub from_client: ClientId,
    /// De-duplicated, in first-occurrence order; any number (sent in chunks of 20).
    pub to_clients: Option<Vec<ClientId>>,
    pub duplicates_removed: usize,
    pub idempotency_key: Option<String>,
    pub dry_run: bool,
    pub source: Source,
    /// Without `to_clients`: the bulk path adds each chunk's recipients.
    pub(crate) request: SendMessage,
    /// The queue record of this send (HTTP bulk sends are put on the bulk queue as this).
    pub(crate) record: Map<String, Value>,
}

/// One message LeanCloud accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentMessage {
    pub msg_id: Option<String>,
    pub timestamp: Option<i64>,
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
        source: Source,
    ) -> Result<Self, FunctionError> {
        let mut record = Map::new();
        record.insert("conversation_id".into(), conversation.to_string().into());
        record.insert("from_client".into(), body.from_client.clone().into());
        record.insert("message".into(), body.message.clone());
        let from_client = input::client_id("from_client", body.from_client)?;
        let message = input::message_body(body.message)?;
        let (to_clients, duplicates_removed) = match body.to_clients {
            Some(ids) => {
                let (ids, removed) = crate::bulk::dedupe(input::client_ids("to_clients", ids)?);
                (Some(ids), removed)
            }
            None => (None, 0),
        };
        if let Some(key) = &body.idempotency_key {
            crate::bulk::check_key(key)?;
        }
        let mut request = SendMessage::new(conversation.clone(), from_client.clone(), message);
        if let Some(transient) = body.transient {
            request = request.transient(transient);
            record.insert("transient".into(), transient.into());
        }
        if let Some(push) = &body.push_data {
            record.insert("push_data".into(), Value::Object(push.clone()));
        }
        if let Some(push) = input::push_data(body.push_data) {
            request = request.push(push);
        }
        // Every chunk differs only in its recipients: checking the first checks them all.
        match &to_clients {
            Some(ids) => {
                let first = ids.iter().take(MAX_RECIPIENTS).cloned();
                request.clone().to_clients(first).validate()?;
                record.insert(
                    "to_clients".into(),
                    ids.iter().map(|id| Value::from(id.to_string())).collect(),
                );
            }
            None => request.validate()?,
        }
        if let Some(key) = &body.idempotency_key {
            record.insert("idempotency_key".into(), key.clone().into());
        }
        Ok(OutgoingMessage {
            conversation,
            from_client,
            to_clients,
            duplicates_removed,
            idempotency_key: body.idempotency_key,
            dry_run: body.dry_run.unwrap_or(false),
            source,
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
    Queued(crate::queue::Queued),
    Planned(crate::bulk::Plan),
}

/// Send the message: in chunks of 20 through the idempotency ledger and the rate budget
/// ([`crate::bulk`]); an HTTP call with more than 20 recipients goes through the bulk queue.
pub async fn send_message(
    backend: &Backend<'_>,
    input: OutgoingMessage,
) -> Result<SendOutcome, FunctionError> {
    crate::bulk::send_message(backend, input).await
}

/// The `send-message` function.
#[derive(Debug)]
pub struct SendMessageOp;

impl Operation for SendMessageOp {
    const NAME: &'static str = "send-message";
    const ROUTE: Route = Route::Conversation("messages");
    const SCHEDULES: bool = true;
    type Body = SendMessageBody;
    type Input = OutgoingMessage;
    type Output = SendOutcome;
    const IDEMPOTENT: bool = true;

    fn validate(
        conversation: Option<ConversationId>,
        body: Self::Body,
        source: Source,
    ) -> Result<Self::Input, FunctionError> {
        let conversation = crate::operation::required_conversation(conversation)?;
        OutgoingMessage::parse(conversation, body, source)
    }

    fn conversation(input: &Self::Input) -> Option<&ConversationId> {
        Some(&input.conversation)
    }

    async fn execute(
        backend: &Backend<'_>,
        input: Self::Input,
    ) -> Result<Self::Output, FunctionError> {
        send_message(backend, input).await
    }

    fn status(output: &Self::Output) -> u16 {
        match output {
            SendOutcome::Queued(_) => 202,
            _ => Self::SUCCESS_STATUS,
        }
    }
}
