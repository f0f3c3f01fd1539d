//! `POST /conversations/{conversation_id}/messages/{msg_id}/recall` and `PUT
//! /conversations/{conversation_id}/messages/{msg_id}`: recall or edit a message, through LeanCloud's 1.2 API
//! (`PUT /1.2/rtm/conversations/{id}/messages/{msg_id}[/recall]`). Clients hear it as a `patch`.
//!
//! The message is named by its id and its original `timestamp` (a wrong pair is LeanCloud's 4404,
//! `404 message_not_found`). Both calls set the message's state, so a repeated call or a redelivered record
//! changes nothing more: they are idempotent by message id, with no ledger.

use leancloud_im::rtm2::{EditMessage, RecallMessage, Scope};
use leancloud_im::{ClientId, ConversationId, MessageId, Request};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{input, Invocation, MessageTarget, Operation, Route, TriggerKind, HTTP_AND_SQS};
use crate::app::Needs;
use crate::error::FunctionError;

/// The HTTP body: `{"from_client","timestamp"}` (recall) or `{"from_client","message","timestamp"}` (edit). A
/// queue record adds `conversation_id` and `msg_id`; one with `message` is an edit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecallMessageBody {
    pub from_client: String,
    /// The message's original send time, epoch milliseconds.
    pub timestamp: i64,
    /// The new content (edit only): a string or a typed message object.
    pub message: Option<Value>,
}

#[derive(Debug, Clone)]
enum Change {
    Recall(RecallMessage),
    Edit(EditMessage),
}

/// The validated request.
#[derive(Debug, Clone)]
pub struct MessageChange {
    pub conversation: ConversationId,
    pub msg_id: MessageId,
    pub from_client: ClientId,
    pub timestamp: i64,
    change: Change,
}

/// The `200` body: `{"conversation_id","msg_id","timestamp","recalled"|"edited": true}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageChanged {
    pub conversation_id: ConversationId,
    pub msg_id: MessageId,
    pub timestamp: i64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub recalled: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub edited: bool,
}

impl MessageChange {
    pub fn parse(target: MessageTarget, body: RecallMessageBody) -> Result<Self, FunctionError> {
        let from_client = input::client_id("from_client", body.from_client)?;
        if body.timestamp <= 0 {
            return Err(FunctionError::invalid_request(
                "`timestamp` must be the message's send time in epoch milliseconds",
            ));
        }
        let MessageTarget {
            conversation,
            msg_id,
            edit,
        } = target;
        let change = match (edit, body.message) {
            (true, Some(message)) => Change::Edit(EditMessage::new(
                Scope::Conversation,
                conversation.clone(),
                msg_id.clone(),
                from_client.clone(),
                body.timestamp,
                input::message_body(message)?,
            )),
            (true, None) => {
                return Err(FunctionError::invalid_request(
                    "missing field `message`: an edit (PUT) gives the new content",
                ))
            }
            (false, Some(_)) => return Err(FunctionError::invalid_request(
                "unknown field `message`: a recall takes none (edit with PUT …/messages/{msg_id})",
            )),
            (false, None) => Change::Recall(RecallMessage::new(
                Scope::Conversation,
                conversation.clone(),
                msg_id.clone(),
                from_client.clone(),
                body.timestamp,
            )),
        };
        match &change {
            Change::Recall(request) => request.validate()?,
            Change::Edit(request) => request.validate()?,
        }
        Ok(MessageChange {
            conversation,
            msg_id,
            from_client,
            timestamp: body.timestamp,
            change,
        })
    }
}

/// The `recall-message` function.
#[derive(Debug)]
pub struct RecallMessageOp;

impl Needs for RecallMessageOp {}

impl Operation for RecallMessageOp {
    const NAME: &'static str = "recall-message";
    const ROUTE: Route = Route::Message;
    const TRIGGERS: &'static [TriggerKind] = HTTP_AND_SQS;
    type Target = MessageTarget;
    type Body = RecallMessageBody;
    type Input = MessageChange;
    type Output = MessageChanged;

    fn parse(
        target: MessageTarget,
        body: Self::Body,
        _: TriggerKind,
    ) -> Result<Self::Input, FunctionError> {
        MessageChange::parse(target, body)
    }

    /// A user recalls or edits only its own messages: `from_client` must be itself. LeanCloud checks that the
    /// message was sent by `from_client` (4403 → `403`, an unknown id/timestamp pair 4404 → `404`).
    fn authorize_user(client_id: &str, input: &Self::Input) -> Result<(), String> {
        super::caller::must_be_self("from_client", &input.from_client, client_id)
    }

    async fn run(inv: &Invocation<'_>, input: Self::Input) -> Result<Self::Output, FunctionError> {
        let edited = match &input.change {
            Change::Recall(request) => {
                inv.send(request).await?;
                false
            }
            Change::Edit(request) => {
                inv.send(request).await?;
                true
            }
        };
        Ok(MessageChanged {
            conversation_id: input.conversation,
            msg_id: input.msg_id,
            timestamp: input.timestamp,
            recalled: !edited,
            edited,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::caller::{authorize, Caller};
    use crate::ops::{parse_payload, Matched, Resource};
    use serde_json::json;

    fn http(method: &str, body: Value) -> Result<MessageChange, FunctionError> {
        let matched = Matched {
            method: method.to_owned(),
            resource: Resource::Message(
                ConversationId::parse("c1").expect("id"),
                MessageId::parse("m1").expect("id"),
            ),
        };
        parse_payload::<RecallMessageOp>(body, Some(matched), TriggerKind::Http)
    }

    fn message(result: Result<MessageChange, FunctionError>) -> String {
        let err = result.expect_err("refused");
        assert_eq!(400, err.to_http().status, "{err}");
        err.to_string()
    }

    #[test]
    fn the_method_or_the_record_decides_between_recall_and_edit() {
        let recall = http("POST", json!({"from_client": "alice", "timestamp": 5})).expect("recall");
        assert!(matches!(recall.change, Change::Recall(_)));
        let edit = http(
            "PUT",
            json!({"from_client": "alice", "timestamp": 5, "message": "v2"}),
        )
        .expect("edit");
        assert!(matches!(edit.change, Change::Edit(_)));
        let record = json!({"conversation_id": "c1", "msg_id": "m1", "from_client": "a", "timestamp": 5, "message": {"_lctype": -1}});
        let edit = parse_payload::<RecallMessageOp>(record, None, TriggerKind::Sqs).expect("edit");
        assert!(matches!(edit.change, Change::Edit(_)));
        assert_eq!("m1", edit.msg_id.as_str());
        let record =
            json!({"conversation_id": "c1", "msg_id": "m1", "from_client": "a", "timestamp": 5});
        let recall =
            parse_payload::<RecallMessageOp>(record, None, TriggerKind::Sqs).expect("recall");
        assert!(matches!(recall.change, Change::Recall(_)));
    }

    #[test]
    fn bad_input_is_refused_with_the_reason() {
        let cases = [
            (
                "POST",
                json!({"from_client": "a", "timestamp": 5, "message": "x"}),
                "unknown field `message`",
            ),
            (
                "PUT",
                json!({"from_client": "a", "timestamp": 5}),
                "missing field `message`",
            ),
            (
                "POST",
                json!({"from_client": "a"}),
                "missing field `timestamp`",
            ),
            (
                "POST",
                json!({"from_client": "a", "timestamp": "5"}),
                "invalid type",
            ),
            ("POST", json!({"from_client": "a", "timestamp": 0}), "epoch"),
            (
                "POST",
                json!({"from_client": "", "timestamp": 5}),
                "from_client",
            ),
            (
                "POST",
                json!({"from_client": "a", "timestamp": 5, "msg_id": "m2"}),
                "the URL path gives it",
            ),
            (
                "PUT",
                json!({"from_client": "a", "timestamp": 5, "message": ["x"]}),
                "string or a JSON object",
            ),
        ];
        for (method, body, expected) in cases {
            let text = message(http(method, body.clone()));
            assert!(
                text.contains(expected),
                "{text:?} should contain {expected:?} for {body}"
            );
        }
        let text = message(parse_payload::<RecallMessageOp>(
            json!({"conversation_id": "c1", "from_client": "a", "timestamp": 5}),
            None,
            TriggerKind::Sqs,
        ));
        assert!(text.contains("missing field `msg_id`"), "{text}");
        let text = message(parse_payload::<RecallMessageOp>(
            json!({"conversation_id": "c1", "msg_id": "..", "from_client": "a", "timestamp": 5}),
            None,
            TriggerKind::Sqs,
        ));
        assert!(text.contains("dot segment"), "{text}");
    }

    #[test]
    fn a_user_changes_only_its_own_messages() {
        let input = http("POST", json!({"from_client": "alice", "timestamp": 5})).expect("valid");
        let user = |id: &str| Caller::User {
            client_id: id.to_owned(),
        };
        assert!(authorize::<RecallMessageOp>(&user("alice"), &input).is_ok());
        let err = authorize::<RecallMessageOp>(&user("bob"), &input).expect_err("not its own");
        assert_eq!(403, err.to_http().status);
        let admin = Caller::Admin {
            subject: "ops".into(),
        };
        assert!(authorize::<RecallMessageOp>(&admin, &input).is_ok());
    }
}
