//! `POST /conversations/{conversation_id}/broadcasts`: broadcast a message to every client of the app through a
//! system conversation.

use chrono::{DateTime, TimeZone, Utc};
use leancloud_im::{Broadcast, ClientId, ConversationId, MessageId, Request, ValidTill};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::input::{self, json_type};
use super::{Invocation, Operation, Route, TriggerKind, EVERY_TRIGGER};
use crate::app::Needs;
use crate::delivery::budget::Bucket;
use crate::delivery::key::IdempotencyKey;
use crate::delivery::plan::{Plan, PlanInput};
use crate::delivery::send_once;
use crate::error::FunctionError;

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
    pub idempotency_key: Option<IdempotencyKey>,
    pub dry_run: bool,
    request: Broadcast,
}

/// The `200` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BroadcastSent {
    pub conversation_id: ConversationId,
    pub msg_id: Option<MessageId>,
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
        let idempotency_key = body
            .idempotency_key
            .map(IdempotencyKey::parse)
            .transpose()?;
        Ok(NewBroadcast {
            conversation,
            from_client,
            valid_till,
            idempotency_key,
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
    Planned(Plan),
}

/// The `broadcast` function.
#[derive(Debug)]
pub struct BroadcastOp;

impl Needs for BroadcastOp {
    const DELIVERY: bool = true;
}

impl Operation for BroadcastOp {
    const NAME: &'static str = "broadcast";
    const ROUTE: Route = Route::Conversation {
        method: "POST",
        segment: "broadcasts",
    };
    const TRIGGERS: &'static [TriggerKind] = EVERY_TRIGGER;
    const TAKES_IDEMPOTENCY_KEY: bool = true;
    type Target = ConversationId;
    type Body = BroadcastBody;
    type Input = NewBroadcast;
    type Output = BroadcastOutcome;

    fn parse(
        conversation: ConversationId,
        body: Self::Body,
        _: TriggerKind,
    ) -> Result<Self::Input, FunctionError> {
        NewBroadcast::parse(conversation, body)
    }

    /// Dry run, or one call through the ledger, the daily quota and the per-minute budget: once per
    /// idempotency key.
    async fn run(inv: &Invocation<'_>, input: Self::Input) -> Result<Self::Output, FunctionError> {
        if input.dry_run {
            return Ok(BroadcastOutcome::Planned(Plan::new(PlanInput {
                operation: Self::NAME,
                conversation_id: input.conversation.to_string(),
                bucket: Bucket::Broadcasts,
                recipients: None,
                duplicates_removed: 0,
                queued: false,
                idempotency_key: input.idempotency_key,
                budget: inv.app.delivery.budget.config(),
            })));
        }
        let key = input
            .idempotency_key
            .as_ref()
            .or(inv.implied_key.as_ref())
            .map(|key| key.namespaced(Self::NAME));
        let report = send_once(
            &inv.sender(),
            Bucket::Broadcasts,
            key.as_deref(),
            &input.request,
        )
        .await;
        let sent = report.into_result()?.into_iter().next().unwrap_or_default();
        Ok(BroadcastOutcome::Sent(BroadcastSent {
            conversation_id: input.conversation,
            msg_id: sent.msg_id,
            timestamp: sent.timestamp,
        }))
    }
}
