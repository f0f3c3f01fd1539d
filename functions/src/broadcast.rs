//! `POST /conversations/{conversation_id}/broadcasts`: broadcast a message to every client of the app through a
//! system conversation.

use chrono::{DateTime, TimeZone, Utc};
use leancloud_im::{Broadcast, ClientId, ConversationId, Request, ValidTill};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::FunctionError;
use crate::input;
use crate::operation::{Backend, Operation, Route, Source};
use crate::trigger::json_type;

/// The HTTP body; a queue record or schedule input adds `conversation_id`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastBody {
    pub from_client: String,
    pub message: Value,
    pub push_data: Option<Map<String, Value>>,
    /// Epoch milliseconds or an RFC 3339 date-time.
    pub valid_till: Option<Value>,
    /// De-duplicates retries: a retried schedule fire or repeated call broadcasts once (`functions/BULK.md`).
    pub idempotency_key: Option<String>,
    /// Validate and plan only.
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct NewBroadcast {
    pub conversation: ConversationId,
    pub from_client: ClientId,
    pub valid_till: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
    pub dry_run: bool,
    pub(crate) request: Broadcast,
}

/// The `200` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BroadcastSent {
    pub conversation_id: ConversationId,
    pub msg_id: Option<String>,
    pub timestamp: Option<i64>,
}

impl NewBroadcast {
    pub fn parse(conversation: ConversationId, body: BroadcastBody) -> Result<Self, FunctionError> {
        let from_client = input::client_id("from_client", body.from_client)?;
        let message = input::message_body(body.message)?;
        let valid_till = body.valid_till.map(parse_valid_till).transpose()?;
        let mut request = Broadcast::new(conversation.clone(), from_client.clone(), message);
        if let Some(at) = valid_till {
            request = request.valid_till(ValidTill::from(at));
        }
        if let Some(push) = input::push_data(body.push_data) {
            request = request.push(push);
        }
        request.validate()?;
        if let Some(key) = &body.idempotency_key {
            crate::bulk::check_key(key)?;
        }
        Ok(NewBroadcast {
            conversation,
            from_client,
            valid_till,
            idempotency_key: body.idempotency_key,
            dry_run: body.dry_run.unwrap_or(false),
            request,
        })
    }
}

/// `valid_till` as epoch milliseconds or an RFC 3339 date-time.
pub fn parse_valid_till(value: Value) -> Result<DateTime<Utc>, FunctionError> {
    let invalid = |detail: String| {
        FunctionError::invalid_request(format!(
            "`valid_till` must be epoch milliseconds or an RFC 3339 date-time: {detail}"
        ))
    };
    match value {
        Value::Number(number) => {
            let millis = number
                .as_i64()
                .ok_or_else(|| invalid(format!("{number} is not an integer")))?;
            Utc.timestamp_millis_opt(millis)
                .single()
                .ok_or_else(|| invalid(format!("{millis} is out of range")))
        }
        Value::String(text) => DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|err| invalid(format!("{text:?}: {err}"))),
        other => Err(invalid(format!("got {}", json_type(&other)))),
    }
}

/// What a broadcast answers: sent, or a dry-run plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum BroadcastOutcome {
    Sent(BroadcastSent),
    Planned(crate::bulk::Plan),
}

/// Broadcast the message, once per idempotency key, within the daily and per-minute budgets.
pub async fn broadcast(
    backend: &Backend<'_>,
    input: NewBroadcast,
) -> Result<BroadcastOutcome, FunctionError> {
    crate::bulk::broadcast(backend, input).await
}

/// The `broadcast` function.
#[derive(Debug)]
pub struct BroadcastOp;

impl Operation for BroadcastOp {
    const NAME: &'static str = "broadcast";
    const ROUTE: Route = Route::Conversation("broadcasts");
    const SCHEDULES: bool = true;
    type Body = BroadcastBody;
    type Input = NewBroadcast;
    type Output = BroadcastOutcome;
    const IDEMPOTENT: bool = true;

    fn validate(
        conversation: Option<ConversationId>,
        body: Self::Body,
        _: Source,
    ) -> Result<Self::Input, FunctionError> {
        let conversation = crate::operation::required_conversation(conversation)?;
        NewBroadcast::parse(conversation, body)
    }

    fn conversation(input: &Self::Input) -> Option<&ConversationId> {
        Some(&input.conversation)
    }

    async fn execute(
        backend: &Backend<'_>,
        input: Self::Input,
    ) -> Result<Self::Output, FunctionError> {
        broadcast(backend, input).await
    }
}
