//! What each function does: one file per operation, owning its validation and its execution. An operation
//! names its route, the triggers it accepts and the services it needs; [`crate::lambda`] is generic over it
//! and [`crate::delivery`] does the sending for the operations that fan out.

pub mod add_member;
pub mod block_members;
pub mod broadcast;
pub mod caller;
pub mod create_conversation;
pub mod input;
pub mod mute_members;
pub mod recall_message;
pub mod remove_member;
pub mod schedules;
pub mod send_message;
mod targets;

use std::future::Future;

use leancloud_im::{Conversation, ConversationId, MessageId, Request};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::app::{App, Needs};
use crate::delivery::key::IdempotencyKey;
use crate::delivery::Sender;
use crate::error::{ErrorCode, FunctionError};
use caller::Caller;
use input::{json_type, parse_conversation_id};
pub use targets::{Lift, MessageTarget, Toggle};

/// The triggers, as named in event file names (`<function>.<trigger>.json`) and logs. Where a payload came
/// from also sets limits: the HTTP path stays synchronous and small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    Http,
    Sqs,
    /// EventBridge Scheduler (its input arrives verbatim).
    Schedule,
    /// A classic EventBridge scheduled rule.
    EventBridge,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Http => "http",
            TriggerKind::Sqs => "sqs",
            TriggerKind::Schedule => "schedule",
            TriggerKind::EventBridge => "eventbridge",
        }
    }

    /// Whether the payload came from a schedule of either kind.
    pub fn is_schedule(self) -> bool {
        matches!(self, TriggerKind::Schedule | TriggerKind::EventBridge)
    }
}

impl std::fmt::Display for TriggerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// HTTP and SQS: what the conversation operations that are not scheduled accept.
pub const HTTP_AND_SQS: &[TriggerKind] = &[TriggerKind::Http, TriggerKind::Sqs];
/// HTTP, SQS and both kinds of schedule.
pub const EVERY_TRIGGER: &[TriggerKind] = &[
    TriggerKind::Http,
    TriggerKind::Sqs,
    TriggerKind::Schedule,
    TriggerKind::EventBridge,
];

/// The HTTP route of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /conversations`
    Conversations,
    /// `<method> /conversations/{conversation_id}/<segment>`; `method` may name several (`"POST, DELETE"`).
    Conversation {
        method: &'static str,
        segment: &'static str,
    },
    /// `PUT /conversations/{conversation_id}/messages/{msg_id}` (edit) and
    /// `POST /conversations/{conversation_id}/messages/{msg_id}/recall`
    Message,
    /// `POST /schedules`, `GET /schedules`, `DELETE /schedules/{name}`
    Schedules,
}

impl Route {
    pub fn template(self) -> String {
        match self {
            Route::Conversations => "/conversations".to_owned(),
            Route::Conversation { segment, .. } => {
                format!("/conversations/{{conversation_id}}/{segment}")
            }
            Route::Message => "/conversations/{conversation_id}/messages/{msg_id}".to_owned(),
            Route::Schedules => "/schedules".to_owned(),
        }
    }
}

/// What an HTTP route matched: the method and the path's resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub method: String,
    pub resource: Resource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `/conversations`, `/schedules`
    Collection,
    /// `/conversations/{conversation_id}/…`
    Conversation(ConversationId),
    /// `/conversations/{conversation_id}/messages/{msg_id}[/recall]`
    Message(ConversationId, MessageId),
    /// `/schedules/{name}`
    Named(String),
}

/// What an operation acts on: nothing (create-conversation), a conversation, or a schedule action. Carrying
/// it as a type means an operation never re-checks that a conversation was given.
pub trait Target: Sized + Send {
    /// From the HTTP path; `body` is the JSON body, which must not repeat what the path says.
    fn from_path(matched: Matched, body: &Map<String, Value>) -> Result<Self, FunctionError>;
    /// From a queue record or schedule input (which carry the conversation as `conversation_id`).
    fn from_record(body: &mut Map<String, Value>) -> Result<Self, FunctionError>;
    /// The conversation, for logs.
    fn conversation(&self) -> Option<&ConversationId> {
        None
    }
}

impl Target for () {
    fn from_path(_: Matched, _: &Map<String, Value>) -> Result<(), FunctionError> {
        Ok(())
    }

    fn from_record(_: &mut Map<String, Value>) -> Result<(), FunctionError> {
        Ok(())
    }
}

impl Target for ConversationId {
    fn from_path(matched: Matched, body: &Map<String, Value>) -> Result<Self, FunctionError> {
        if body.contains_key("conversation_id") {
            return Err(FunctionError::invalid_request(
                "unknown field `conversation_id`: the conversation is given by the URL path",
            ));
        }
        match matched.resource {
            Resource::Conversation(id) => Ok(id),
            _ => Err(FunctionError::invalid_request(
                "missing `conversation_id` in the path",
            )),
        }
    }

    fn from_record(body: &mut Map<String, Value>) -> Result<Self, FunctionError> {
        match body.remove("conversation_id") {
            Some(Value::String(id)) => parse_conversation_id(id),
            Some(other) => Err(FunctionError::invalid_request(format!(
                "`conversation_id` must be a string, got {}",
                json_type(&other)
            ))),
            None => Err(FunctionError::invalid_request(
                "missing field `conversation_id`",
            )),
        }
    }

    fn conversation(&self) -> Option<&ConversationId> {
        Some(self)
    }
}

/// One function's behaviour. The trigger adapters in [`crate::lambda`] are generic over it.
pub trait Operation: Needs + Send + Sync + 'static {
    /// The binary name (`send-message`), used in logs, errors and as the ledger namespace.
    const NAME: &'static str;
    const ROUTE: Route;
    /// The triggers this function accepts.
    const TRIGGERS: &'static [TriggerKind];
    /// Whether the body takes `idempotency_key` and `dry_run`, so the HTTP layer may fill them from the
    /// `Idempotency-Key` header and `?dry_run=true` (see `functions/BULK.md`).
    const TAKES_IDEMPOTENCY_KEY: bool = false;
    /// HTTP status on success.
    const SUCCESS_STATUS: u16 = 200;

    type Target: Target;
    /// The JSON body (HTTP) / record (queue, schedule, without `conversation_id`). Must deny unknown fields.
    type Body: DeserializeOwned;
    /// The body's fields that may be JSON `null` (those `functions/openapi.yaml` types as `[…, 'null']` or marks
    /// `nullable: true`). Every other field refuses `null` with a `400` naming it ([`decode`]), instead of
    /// reading it as absent; `functions/tests/openapi_contract.rs` checks this against the spec.
    const NULLABLE_FIELDS: &'static [&'static str] = &[];
    /// Validated input: building it must reject everything LeanCloud would, so invalid input never leaves.
    type Input: Send;
    type Output: Serialize + Send;

    fn parse(
        target: Self::Target,
        body: Self::Body,
        via: TriggerKind,
    ) -> Result<Self::Input, FunctionError>;

    fn run(
        inv: &Invocation<'_>,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, FunctionError>> + Send;

    /// What a JWT caller without the admin scope, identified as `client_id`, may run
    /// ([`caller::authorize`]); the reason when not. Only admins (and trusted callers) by default.
    fn authorize_user(_client_id: &str, _input: &Self::Input) -> Result<(), String> {
        caller::admin_only()
    }

    /// F1: the existing conversation a JWT user's input acts on. When there is one, it is fetched (one `GET`
    /// with the master key) and [`Operation::authorize_user_in`] decides ([`caller::authorize_in_conversation`]).
    /// `None` (the default): the operation acts on no existing conversation, or users may not run it at all.
    fn user_conversation(_input: &Self::Input) -> Option<&ConversationId> {
        None
    }

    /// F1: what a JWT user identified as `client_id`, already allowed by [`Operation::authorize_user`], may do
    /// in `conversation` (the one [`Operation::user_conversation`] named); the reason when not.
    fn authorize_user_in(
        _client_id: &str,
        _input: &Self::Input,
        _conversation: &Conversation,
    ) -> Result<(), String> {
        Ok(())
    }

    /// The conversation an output created, for logs.
    fn created(_output: &Self::Output) -> Option<&ConversationId> {
        None
    }

    /// HTTP status of a successful output (e.g. `202` for work put on the bulk queue).
    fn status(_output: &Self::Output) -> u16 {
        Self::SUCCESS_STATUS
    }
}

/// One invocation's view of the app: the shared state, the deadline, and the key the trigger implies.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    pub app: &'a App,
    /// Calls stop retrying at this instant so the function answers before Lambda kills it.
    pub deadline: Option<Instant>,
    /// The key the trigger implies when the payload names none: the SQS message id, or a classic
    /// EventBridge rule and its scheduled time.
    pub implied_key: Option<IdempotencyKey>,
    /// Who asked: trusted unless an HTTP request carried JWT claims.
    pub caller: Caller,
}

impl<'a> Invocation<'a> {
    /// No deadline, no implied key (tests, benchmarks).
    pub fn new(app: &'a App) -> Self {
        Invocation {
            app,
            deadline: None,
            implied_key: None,
            caller: Caller::Trusted,
        }
    }

    /// What the delivery layer sends with.
    pub fn sender(&self) -> Sender<'a> {
        Sender {
            client: &self.app.client,
            deadline: self.deadline,
            delivery: &self.app.delivery,
        }
    }

    /// One LeanCloud call within the deadline.
    pub async fn send<R: Request + Sync>(&self, request: &R) -> Result<R::Response, FunctionError> {
        self.sender().send(request).await
    }
}

/// Decode a JSON payload into the operation's target and body. `matched` is the HTTP route match; records
/// and schedule inputs carry the conversation as `conversation_id`.
pub fn decode<Op: Operation>(
    payload: Value,
    matched: Option<Matched>,
) -> Result<(Op::Target, Op::Body), FunctionError> {
    let Value::Object(mut object) = payload else {
        return Err(FunctionError::invalid(
            ErrorCode::InvalidRequest,
            format!(
                "the payload must be a JSON object, got {}",
                json_type(&payload)
            ),
        ));
    };
    let target = match matched {
        Some(matched) => Op::Target::from_path(matched, &object)?,
        None => Op::Target::from_record(&mut object)?,
    };
    refuse_nulls::<Op>(&object)?;
    let body: Op::Body = serde_json::from_value(Value::Object(object)).map_err(|err| {
        FunctionError::invalid_request(format!("invalid {} payload: {err}", Op::NAME))
    })?;
    Ok((target, body))
}

/// A field set to `null` that the contract does not make nullable. Serde would read it as absent (every
/// optional field is an `Option`), so `{"attributes": null}` passed where the spec says object; checked here,
/// once for every operation, so the message names the field.
fn refuse_nulls<Op: Operation>(object: &Map<String, Value>) -> Result<(), FunctionError> {
    match object
        .iter()
        .find(|(field, value)| value.is_null() && !Op::NULLABLE_FIELDS.contains(&field.as_str()))
    {
        Some((field, _)) => Err(FunctionError::invalid_request(format!(
            "invalid {} payload: `{field}` is null; give a value or omit the field",
            Op::NAME
        ))),
        None => Ok(()),
    }
}

/// Decode and validate a payload: exactly what the function does before any call, so `schedules` validates
/// a scheduled payload as the target function will.
pub fn parse_payload<Op: Operation>(
    payload: Value,
    matched: Option<Matched>,
    via: TriggerKind,
) -> Result<Op::Input, FunctionError> {
    let (target, body) = decode::<Op>(payload, matched)?;
    Op::parse(target, body, via)
}

#[cfg(test)]
mod tests {
    use super::*;
    use add_member::AddMemberOp;
    use broadcast::BroadcastOp;
    use create_conversation::CreateConversationOp;
    use send_message::SendMessageOp;
    use serde_json::json;

    fn rejection<Op: Operation>(payload: Value, path: Option<&str>, via: TriggerKind) -> String {
        let matched = path.map(|id| Matched {
            method: "POST".to_owned(),
            resource: Resource::Conversation(ConversationId::parse(id).expect("id")),
        });
        match parse_payload::<Op>(payload, matched, via) {
            Ok(_) => panic!("accepted"),
            Err(err) => {
                assert_eq!(400, err.to_http().status, "{err}");
                err.to_string()
            }
        }
    }

    #[test]
    fn records_carry_the_conversation_and_http_bodies_must_not() {
        let record = json!({"conversation_id": "c1", "client_ids": ["a"]});
        let input =
            parse_payload::<AddMemberOp>(record, None, TriggerKind::Sqs).expect("valid record");
        assert_eq!("c1", input.conversation.as_ref());
        let cases = [
            (
                json!({"client_ids": ["a"]}),
                None,
                "missing field `conversation_id`",
            ),
            (
                json!({"conversation_id": 7, "client_ids": ["a"]}),
                None,
                "must be a string",
            ),
            (
                json!({"conversation_id": "", "client_ids": ["a"]}),
                None,
                "invalid conversation id",
            ),
            (
                json!({"conversation_id": "c1", "client_ids": ["a"]}),
                Some("c1"),
                "given by the URL path",
            ),
        ];
        for (payload, path, expected) in cases {
            let message = rejection::<AddMemberOp>(payload.clone(), path, TriggerKind::Http);
            assert!(
                message.contains(expected),
                "{message:?} should contain {expected:?} for {payload}"
            );
        }
    }

    #[test]
    fn bodies_are_validated_before_any_call() {
        let cases = [
            (json!([]), "must be a JSON object"),
            (
                json!({"conversation_id": "c1", "from_client": "a", "message": "hi", "urgent": true}),
                "unknown field `urgent`",
            ),
            (
                json!({"conversation_id": "c1", "from_client": "a"}),
                "missing field `message`",
            ),
            (
                json!({"conversation_id": "c1", "from_client": "a", "message": ["x"]}),
                "string or a JSON object",
            ),
            (
                json!({"conversation_id": "c1", "from_client": 1, "message": "hi"}),
                "invalid type",
            ),
            (
                json!({"conversation_id": "c1", "from_client": "", "message": "hi"}),
                "from_client",
            ),
        ];
        for (payload, expected) in cases {
            let message = rejection::<SendMessageOp>(payload.clone(), None, TriggerKind::Sqs);
            assert!(
                message.contains(expected),
                "{message:?} should contain {expected:?} for {payload}"
            );
        }
        let message = rejection::<CreateConversationOp>(
            json!({"conversation_id": "c1"}),
            None,
            TriggerKind::Sqs,
        );
        assert!(
            message.contains("unknown field `conversation_id`"),
            "{message}"
        );
        let message = rejection::<BroadcastOp>(
            json!({"conversation_id": "c1", "from_client": "a", "message": "hi", "valid_till": true}),
            None,
            TriggerKind::Schedule,
        );
        assert!(message.contains("valid_till"), "{message}");
    }
}
