//! Field parsing shared by the operations: ids, message bodies, push payloads, and JSON type names for
//! error messages.

use leancloud_im::{ClientId, ConversationId, MessageBody, MessageId, PushData};
use serde_json::{Map, Value};

use crate::error::FunctionError;

pub fn parse_conversation_id(id: impl Into<String>) -> Result<ConversationId, FunctionError> {
    ConversationId::parse(id)
        .map_err(|err| FunctionError::invalid_request(format!("invalid conversation id: {err}")))
}

pub fn message_id(id: impl Into<String>) -> Result<MessageId, FunctionError> {
    MessageId::parse(id)
        .map_err(|err| FunctionError::invalid_request(format!("invalid message id: {err}")))
}

/// A non-empty list of client ids, each valid and named once (in first-occurrence order).
pub fn client_id_set(field: &str, ids: Vec<String>) -> Result<Vec<ClientId>, FunctionError> {
    if ids.is_empty() {
        return Err(FunctionError::invalid_request(format!(
            "`{field}` must name at least one client"
        )));
    }
    let ids = client_ids(field, ids)?;
    for (index, id) in ids.iter().enumerate() {
        if ids[..index].contains(id) {
            return Err(FunctionError::invalid_request(format!(
                "`{field}` names {id} more than once"
            )));
        }
    }
    Ok(ids)
}

pub fn client_id(field: &str, id: String) -> Result<ClientId, FunctionError> {
    ClientId::parse(id)
        .map_err(|err| FunctionError::invalid_request(format!("invalid `{field}`: {err}")))
}

pub fn client_ids(field: &str, ids: Vec<String>) -> Result<Vec<ClientId>, FunctionError> {
    ids.into_iter()
        .enumerate()
        .map(|(index, id)| client_id(&format!("{field}[{index}]"), id))
        .collect()
}

/// `message` is a string (sent as is) or a JSON object (a typed message such as `{"_lctype":-1,"_lctext":"hi"}`).
pub fn message_body(message: Value) -> Result<MessageBody, FunctionError> {
    match message {
        Value::String(text) => Ok(MessageBody::from(text)),
        Value::Object(_) => Ok(MessageBody::from(message)),
        other => Err(FunctionError::invalid_request(format!(
            "`message` must be a string or a JSON object, got {}",
            json_type(&other)
        ))),
    }
}

pub fn push_data(push: Option<Map<String, Value>>) -> Option<PushData> {
    push.map(|object| PushData::raw(Value::Object(object)))
}

/// JSON type name for error messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
