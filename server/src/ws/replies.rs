//! What the gateway answers: replies to a command (same `i` and `peerId`), refusals with a [`Reason`], and
//! the store's and hooks' refusals in the protocol's words; small decoding helpers of the commands.

use serde_json::{Map, Value};

use crate::domain::conversations::ConvError;
use crate::hooks::Refusal;
use crate::protocol::Reason;
use crate::realtime::proto::{
    CommandType, ErrorCommand, GenericCommand, JsonObjectMessage, OpType,
};
use crate::store::StoreError;

pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The reply to `req`: its command id and session, with `cmd`/`op`.
pub(super) fn reply_to(
    req: &GenericCommand,
    cmd: CommandType,
    op: Option<OpType>,
) -> GenericCommand {
    GenericCommand {
        i: req.i,
        peer_id: req.peer_id.clone(),
        ..GenericCommand::new(cmd, op)
    }
}

/// An `error` reply to `req`: `reason`'s code and name, and what went wrong.
pub(super) fn refusal(
    req: &GenericCommand,
    reason: Reason,
    detail: Option<String>,
) -> GenericCommand {
    GenericCommand {
        error_message: Some(ErrorCommand {
            code: reason.code() as i32,
            reason: reason.name().to_string(),
            detail,
            ..Default::default()
        }),
        ..reply_to(req, CommandType::Error, None)
    }
}

/// The reason LeanCloud gives a store error with, in a conversation command.
fn store_reason(err: &StoreError) -> Reason {
    match err {
        StoreError::ConversationNotFound => Reason::ConversationNotFound,
        StoreError::InvalidMessagingTarget => Reason::InvalidMessagingTarget,
        StoreError::SystemConversationRequired => Reason::SystemConversationRequired,
        e if e.is_internal() => Reason::Internal,
        _ => Reason::ConversationApiFailed,
    }
}

/// A store error as an `error` reply; an internal one is logged and answered without detail.
pub(super) fn store_error(req: &GenericCommand, err: StoreError) -> GenericCommand {
    if err.is_internal() {
        tracing::error!(error = %err, "realtime: store failed");
        return refusal(req, Reason::Internal, None);
    }
    refusal(req, store_reason(&err), Some(err.to_string()))
}

/// A conversation change refused by the app's hook: `4305 CONVERSATION_REJECTED_BY_APP` with the hook's
/// own code as `appCode`.
pub(super) fn rejected_by_app(req: &GenericCommand, refused: Refusal) -> GenericCommand {
    let mut reply = refusal(req, Reason::ConversationRejectedByApp, refused.detail);
    if let Some(e) = reply.error_message.as_mut() {
        e.app_code = refused.app_code.map(|c| c as i32);
    }
    reply
}

/// A conversation operation's failure as an `error` reply.
pub(super) fn conv_error(req: &GenericCommand, err: ConvError) -> GenericCommand {
    match err {
        ConvError::Store(e) => store_error(req, e),
        ConvError::Rejected(r) => rejected_by_app(req, r),
    }
}

/// A JSON object from a `JsonObjectMessage`; absent is `{}`.
pub(super) fn json_object(msg: Option<&JsonObjectMessage>) -> Result<Map<String, Value>, String> {
    match msg.map(|m| m.data.trim()).filter(|d| !d.is_empty()) {
        None => Ok(Map::new()),
        Some(data) => match serde_json::from_str::<Value>(data) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err("expected a JSON object".to_string()),
        },
    }
}

/// The ids in order, each once, empty ones dropped.
pub(super) fn dedup(ids: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.iter()
        .filter(|id| !id.is_empty() && seen.insert(id.as_str()))
        .cloned()
        .collect()
}
