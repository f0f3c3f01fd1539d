//! The targets of the message and moderation functions: a message of a conversation ([`MessageTarget`]), and a
//! conversation with whether a moderation is set or lifted ([`Toggle`]).

use leancloud_im::{ConversationId, MessageId};
use serde_json::{Map, Value};

use super::input::{self, json_type};
use super::{Matched, Resource, Target};
use crate::error::FunctionError;

/// The path (or a record) must not repeat what the path says.
fn refuse_in_body(body: &Map<String, Value>, field: &str) -> Result<(), FunctionError> {
    if body.contains_key(field) {
        return Err(FunctionError::invalid_request(format!(
            "unknown field `{field}`: the URL path gives it"
        )));
    }
    Ok(())
}

/// A string field a queue record must carry, removed from it.
fn take_string(body: &mut Map<String, Value>, field: &str) -> Result<String, FunctionError> {
    match body.remove(field) {
        Some(Value::String(value)) => Ok(value),
        Some(other) => Err(FunctionError::invalid_request(format!(
            "`{field}` must be a string, got {}",
            json_type(&other)
        ))),
        None => Err(FunctionError::invalid_request(format!(
            "missing field `{field}`"
        ))),
    }
}

/// One message of a conversation, and whether the call edits it (`PUT …/messages/{msg_id}`; a record with
/// `message`) or recalls it (`POST …/messages/{msg_id}/recall`; a record without).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTarget {
    pub conversation: ConversationId,
    pub msg_id: MessageId,
    pub edit: bool,
}

impl Target for MessageTarget {
    fn from_path(matched: Matched, body: &Map<String, Value>) -> Result<Self, FunctionError> {
        refuse_in_body(body, "conversation_id")?;
        refuse_in_body(body, "msg_id")?;
        match matched.resource {
            Resource::Message(conversation, msg_id) => Ok(MessageTarget {
                conversation,
                msg_id,
                edit: matched.method == "PUT",
            }),
            _ => Err(FunctionError::invalid_request(
                "missing `conversation_id` and `msg_id` in the path",
            )),
        }
    }

    fn from_record(body: &mut Map<String, Value>) -> Result<Self, FunctionError> {
        let conversation = ConversationId::from_record(body)?;
        let msg_id = input::message_id(take_string(body, "msg_id")?)?;
        Ok(MessageTarget {
            conversation,
            msg_id,
            edit: body.contains_key("message"),
        })
    }

    fn conversation(&self) -> Option<&ConversationId> {
        Some(&self.conversation)
    }
}

/// What a two-way moderation function is told to do: set (`POST`, a queue record by default) or lift
/// (`DELETE`, a queue record with `"action": "<L::LIFT>"`).
pub trait Lift: Send {
    /// The record's `action` that sets (the default when a record names none), e.g. `mute`.
    const SET: &'static str;
    /// The record's `action` that lifts, e.g. `unmute`.
    const LIFT: &'static str;
}

/// A conversation, and whether the moderation is set or lifted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toggle<L> {
    pub conversation: ConversationId,
    pub lift: bool,
    marker: std::marker::PhantomData<fn() -> L>,
}

impl<L> Toggle<L> {
    pub fn new(conversation: ConversationId, lift: bool) -> Self {
        Toggle {
            conversation,
            lift,
            marker: std::marker::PhantomData,
        }
    }
}

impl<L: Lift> Target for Toggle<L> {
    fn from_path(matched: Matched, body: &Map<String, Value>) -> Result<Self, FunctionError> {
        refuse_in_body(body, "action")?;
        let lift = matched.method == "DELETE";
        Ok(Toggle::new(ConversationId::from_path(matched, body)?, lift))
    }

    fn from_record(body: &mut Map<String, Value>) -> Result<Self, FunctionError> {
        let conversation = ConversationId::from_record(body)?;
        let lift = match body.remove("action") {
            None => false,
            Some(Value::String(action)) if action == L::SET => false,
            Some(Value::String(action)) if action == L::LIFT => true,
            Some(other) => {
                return Err(FunctionError::invalid_request(format!(
                    "`action` must be \"{}\" or \"{}\", got {other}",
                    L::SET,
                    L::LIFT
                )))
            }
        };
        Ok(Toggle::new(conversation, lift))
    }

    fn conversation(&self) -> Option<&ConversationId> {
        Some(&self.conversation)
    }
}
