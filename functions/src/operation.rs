//! What each function plugs into the shared event handling: its route, its payload type, its validation and
//! the call it makes.

use std::future::Future;

use leancloud_im::{Client, ConversationId, Request};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::error::{codes, FunctionError};
use crate::services::Services;
use crate::trigger::{json_type, TriggerKind};

/// Where a payload came from: limits differ (the HTTP path stays synchronous and small).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Http,
    Queue,
    Schedule,
}

/// The HTTP route of a function, always `POST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /conversations`
    Conversations,
    /// `POST /conversations/{conversation_id}/<segment>`
    Conversation(&'static str),
}

impl Route {
    pub fn acts_on_conversation(self) -> bool {
        matches!(self, Route::Conversation(_))
    }

    pub fn template(self) -> String {
        match self {
            Route::Conversations => "/conversations".to_owned(),
            Route::Conversation(segment) => format!("/conversations/{{conversation_id}}/{segment}"),
        }
    }
}

/// The conversation a queue record or schedule input must name (HTTP takes it from the path).
pub fn required_conversation(
    conversation: Option<ConversationId>,
) -> Result<ConversationId, FunctionError> {
    conversation.ok_or_else(|| FunctionError::invalid_request("missing `conversation_id`"))
}

/// One function's behaviour. The trigger plumbing in [`crate::handler`] is generic over it.
pub trait Operation: Send + Sync + 'static {
    /// The binary name (`send-message`), used in logs and errors.
    const NAME: &'static str;
    const ROUTE: Route;
    /// The triggers besides HTTP and SQS this function accepts.
    const SCHEDULES: bool;
    /// HTTP status on success.
    const SUCCESS_STATUS: u16 = 200;
    /// Whether the body takes `idempotency_key` and `dry_run`, so the HTTP layer may fill them from the
    /// `Idempotency-Key` header and `?dry_run=true` (see `functions/BULK.md`).
    const IDEMPOTENT: bool = false;

    /// The JSON body (HTTP) / record (queue, schedule, without `conversation_id`). Must deny unknown fields.
    type Body: DeserializeOwned;
    /// Validated input: building it must reject everything LeanCloud would, so invalid input never leaves.
    type Input: Send;
    type Output: Serialize + Send;

    fn validate(
        conversation: Option<ConversationId>,
        body: Self::Body,
        source: Source,
    ) -> Result<Self::Input, FunctionError>;

    /// The conversation an input acts on, for logs.
    fn conversation(input: &Self::Input) -> Option<&ConversationId>;

    fn execute(
        backend: &Backend<'_>,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, FunctionError>> + Send;

    /// The conversation an output created, for logs.
    fn created(_output: &Self::Output) -> Option<&ConversationId> {
        None
    }

    /// HTTP status of a successful output (e.g. `202` for work put on the bulk queue).
    fn status(_output: &Self::Output) -> u16 {
        Self::SUCCESS_STATUS
    }
}

/// The client plus the invocation's deadline.
#[derive(Debug, Clone, Copy)]
pub struct Backend<'a> {
    pub client: &'a Client,
    /// Calls stop retrying at this instant so the function answers before Lambda kills it.
    pub deadline: Option<Instant>,
    /// Idempotency ledger, rate budgets, bulk queue (`crate::services`).
    pub services: &'a Services,
    /// The key the trigger implies when the payload names none: the SQS message id, or a classic
    /// EventBridge rule and its scheduled time.
    pub idempotency_key: Option<&'a str>,
}

impl<'a> Backend<'a> {
    pub fn new(client: &'a Client) -> Self {
        Backend {
            client,
            deadline: None,
            services: Services::none(),
            idempotency_key: None,
        }
    }

    pub fn with_services(self, services: &'a Services) -> Self {
        Backend { services, ..self }
    }

    pub async fn send<R: Request + Sync>(&self, request: &R) -> Result<R::Response, FunctionError> {
        let result = match self.deadline {
            Some(deadline) => self.client.execute_until(request, deadline).await,
            None => self.client.execute(request).await,
        };
        Ok(result?)
    }
}

/// Decode a JSON payload into the operation's input. `conversation` comes from the HTTP path; records and
/// schedule inputs carry it as `conversation_id`.
pub fn parse_payload<Op: Operation>(
    payload: Value,
    conversation: Option<ConversationId>,
    source: Source,
) -> Result<Op::Input, FunctionError> {
    let Value::Object(mut object) = payload else {
        return Err(FunctionError::invalid(
            codes::INVALID_REQUEST,
            format!(
                "the payload must be a JSON object, got {}",
                json_type(&payload)
            ),
        ));
    };
    let conversation = match (conversation, Op::ROUTE.acts_on_conversation()) {
        (Some(id), _) => {
            if object.contains_key("conversation_id") {
                return Err(FunctionError::invalid_request(
                    "unknown field `conversation_id`: the conversation is given by the URL path",
                ));
            }
            Some(id)
        }
        (None, true) => Some(take_conversation_id(&mut object)?),
        (None, false) => None,
    };
    let body: Op::Body = serde_json::from_value(Value::Object(object)).map_err(|err| {
        FunctionError::invalid_request(format!("invalid {} payload: {err}", Op::NAME))
    })?;
    Op::validate(conversation, body, source)
}

fn take_conversation_id(object: &mut Map<String, Value>) -> Result<ConversationId, FunctionError> {
    match object.remove("conversation_id") {
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

pub fn parse_conversation_id(id: impl Into<String>) -> Result<ConversationId, FunctionError> {
    ConversationId::parse(id)
        .map_err(|err| FunctionError::invalid_request(format!("invalid conversation id: {err}")))
}

/// Whether `Op` accepts a trigger at all.
pub fn accepts<Op: Operation>(kind: TriggerKind) -> bool {
    match kind {
        TriggerKind::Http | TriggerKind::Sqs => true,
        TriggerKind::Schedule | TriggerKind::EventBridge => Op::SCHEDULES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::add_member::AddMemberOp;
    use crate::broadcast::BroadcastOp;
    use crate::create_conversation::CreateConversationOp;
    use crate::send_message::SendMessageOp;
    use serde_json::json;

    fn rejection<Op: Operation>(payload: Value, path: Option<&str>, source: Source) -> String {
        let conversation = path.map(|id| ConversationId::parse(id).expect("id"));
        match parse_payload::<Op>(payload, conversation, source) {
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
            parse_payload::<AddMemberOp>(record, None, Source::Queue).expect("valid record");
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
            let message = rejection::<AddMemberOp>(payload.clone(), path, Source::Http);
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
            let message = rejection::<SendMessageOp>(payload.clone(), None, Source::Queue);
            assert!(
                message.contains(expected),
                "{message:?} should contain {expected:?} for {payload}"
            );
        }
        let message = rejection::<CreateConversationOp>(
            json!({"conversation_id": "c1"}),
            None,
            Source::Queue,
        );
        assert!(
            message.contains("unknown field `conversation_id`"),
            "{message}"
        );
        let message = rejection::<BroadcastOp>(
            json!({"conversation_id": "c1", "from_client": "a", "message": "hi", "valid_till": true}),
            None,
            Source::Schedule,
        );
        assert!(message.contains("valid_till"), "{message}");
    }
}
