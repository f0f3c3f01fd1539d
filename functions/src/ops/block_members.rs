//! `POST /conversations/{conversation_id}/blocked` and `DELETE /conversations/{conversation_id}/blocked`: block
//! clients from a conversation (members are removed and cannot join again) and unblock them, through
//! LeanCloud's 1.2 API (`POST` / `DELETE /1.2/rtm/conversations/{id}/blacklists {"client_ids"}`).
//!
//! A queue record is `{"conversation_id","client_ids"}`, and `"action": "unblock"` unblocks. Both calls set a
//! state, so a repeat is harmless.

use leancloud_im::rtm2::{Block, Scope, Unblock};
use leancloud_im::{ClientId, ConversationId, Request};
use serde::{Deserialize, Serialize};

use super::{input, Invocation, Lift, Operation, Route, Toggle, TriggerKind, HTTP_AND_SQS};
use crate::app::Needs;
use crate::error::FunctionError;

/// The `action` words of a queue record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocking;

impl Lift for Blocking {
    const SET: &'static str = "block";
    const LIFT: &'static str = "unblock";
}

/// The HTTP body; a queue record adds `conversation_id` (and `"action": "unblock"` to unblock).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockMembersBody {
    pub client_ids: Vec<String>,
}

#[derive(Debug, Clone)]
enum Call {
    Block(Block),
    Unblock(Unblock),
}

/// The validated request.
#[derive(Debug, Clone)]
pub struct BlockChange {
    pub conversation: ConversationId,
    pub client_ids: Vec<ClientId>,
    call: Call,
}

/// The `200` body: `{"conversation_id","client_ids","blocked"}` (`blocked: false` after an unblock).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockChanged {
    pub conversation_id: ConversationId,
    pub client_ids: Vec<ClientId>,
    pub blocked: bool,
}

impl BlockChange {
    pub fn parse(target: Toggle<Blocking>, body: BlockMembersBody) -> Result<Self, FunctionError> {
        let client_ids = input::client_id_set("client_ids", body.client_ids)?;
        let conversation = target.conversation;
        let ids = client_ids.iter().cloned();
        let call = if target.lift {
            Call::Unblock(Unblock::new(Scope::Conversation, conversation.clone(), ids))
        } else {
            Call::Block(Block::new(Scope::Conversation, conversation.clone(), ids))
        };
        match &call {
            Call::Block(request) => request.validate()?,
            Call::Unblock(request) => request.validate()?,
        }
        Ok(BlockChange {
            conversation,
            client_ids,
            call,
        })
    }
}

/// The `block-members` function.
#[derive(Debug)]
pub struct BlockMembersOp;

impl Needs for BlockMembersOp {}

impl Operation for BlockMembersOp {
    const NAME: &'static str = "block-members";
    const ROUTE: Route = Route::Conversation {
        method: "POST, DELETE",
        segment: "blocked",
    };
    const TRIGGERS: &'static [TriggerKind] = HTTP_AND_SQS;
    type Target = Toggle<Blocking>;
    type Body = BlockMembersBody;
    type Input = BlockChange;
    type Output = BlockChanged;

    fn parse(
        target: Toggle<Blocking>,
        body: Self::Body,
        _: TriggerKind,
    ) -> Result<Self::Input, FunctionError> {
        BlockChange::parse(target, body)
    }

    async fn run(inv: &Invocation<'_>, input: Self::Input) -> Result<Self::Output, FunctionError> {
        let blocked = match &input.call {
            Call::Block(request) => {
                inv.send(request).await?;
                true
            }
            Call::Unblock(request) => {
                inv.send(request).await?;
                false
            }
        };
        Ok(BlockChanged {
            conversation_id: input.conversation,
            client_ids: input.client_ids,
            blocked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::caller::{authorize, Caller};
    use crate::ops::{parse_payload, Matched, Resource};
    use serde_json::{json, Value};

    fn http(method: &str, body: Value) -> Result<BlockChange, FunctionError> {
        let matched = Matched {
            method: method.to_owned(),
            resource: Resource::Conversation(ConversationId::parse("c1").expect("id")),
        };
        parse_payload::<BlockMembersOp>(body, Some(matched), TriggerKind::Http)
    }

    #[test]
    fn post_blocks_delete_and_the_unblock_action_unblock() {
        assert!(matches!(
            http("POST", json!({"client_ids": ["a"]}))
                .expect("valid")
                .call,
            Call::Block(_)
        ));
        assert!(matches!(
            http("DELETE", json!({"client_ids": ["a"]}))
                .expect("valid")
                .call,
            Call::Unblock(_)
        ));
        for (record, unblock) in [
            (json!({"conversation_id": "c1", "client_ids": ["a"]}), false),
            (
                json!({"conversation_id": "c1", "client_ids": ["a"], "action": "block"}),
                false,
            ),
            (
                json!({"conversation_id": "c1", "client_ids": ["a"], "action": "unblock"}),
                true,
            ),
        ] {
            let input = parse_payload::<BlockMembersOp>(record.clone(), None, TriggerKind::Sqs)
                .expect("valid");
            assert_eq!(unblock, matches!(input.call, Call::Unblock(_)), "{record}");
        }
    }

    #[test]
    fn bad_input_and_users_are_refused() {
        for (body, expected) in [
            (json!({"client_ids": []}), "at least one"),
            (
                json!({"client_ids": ["a"], "ttl": 5}),
                "unknown field `ttl`",
            ),
            (json!({}), "missing field `client_ids`"),
        ] {
            let err = http("POST", body.clone()).expect_err("refused");
            assert_eq!(400, err.to_http().status);
            assert!(err.to_string().contains(expected), "{err} for {body}");
        }
        let input = http("POST", json!({"client_ids": ["a"]})).expect("valid");
        let user = Caller::User {
            client_id: "a".into(),
        };
        assert_eq!(
            403,
            authorize::<BlockMembersOp>(&user, &input)
                .expect_err("admin only")
                .to_http()
                .status
        );
    }
}
