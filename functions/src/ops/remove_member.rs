//! `DELETE /conversations/{conversation_id}/members`: remove clients from a conversation (ids in the body).

use leancloud_im::{ClientId, Conversation, ConversationId, RemoveMembers, Request};
use serde::{Deserialize, Serialize};

use super::{input, Invocation, Operation, Route, TriggerKind, HTTP_AND_SQS};
use crate::app::Needs;
use crate::error::FunctionError;

/// The HTTP body; a queue record adds `conversation_id`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveMemberBody {
    pub client_ids: Vec<String>,
}

/// The validated request, and what the answer echoes (the client crate's request keeps its fields private).
#[derive(Debug, Clone)]
pub struct MembersToRemove {
    pub conversation: ConversationId,
    pub client_ids: Vec<ClientId>,
    request: RemoveMembers,
}

/// The `200` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MembersRemoved {
    pub conversation_id: ConversationId,
    pub client_ids: Vec<ClientId>,
    #[serde(rename = "updatedAt")]
    pub updated_at: Option<String>,
}

impl MembersToRemove {
    pub fn parse(
        conversation: ConversationId,
        body: RemoveMemberBody,
    ) -> Result<Self, FunctionError> {
        if body.client_ids.is_empty() {
            return Err(FunctionError::invalid_request(
                "`client_ids` must name at least one client",
            ));
        }
        let client_ids = input::client_ids("client_ids", body.client_ids)?;
        let request = RemoveMembers::new(conversation.clone(), client_ids.iter().cloned());
        request.validate()?;
        Ok(MembersToRemove {
            conversation,
            client_ids,
            request,
        })
    }
}

/// The `remove-member` function.
#[derive(Debug)]
pub struct RemoveMemberOp;

impl Needs for RemoveMemberOp {}

impl Operation for RemoveMemberOp {
    const NAME: &'static str = "remove-member";
    const ROUTE: Route = Route::Conversation {
        method: "DELETE",
        segment: "members",
    };
    const TRIGGERS: &'static [TriggerKind] = HTTP_AND_SQS;
    type Target = ConversationId;
    type Body = RemoveMemberBody;
    type Input = MembersToRemove;
    type Output = MembersRemoved;

    fn parse(
        conversation: ConversationId,
        body: Self::Body,
        _: TriggerKind,
    ) -> Result<Self::Input, FunctionError> {
        MembersToRemove::parse(conversation, body)
    }

    /// A user removes itself only.
    fn authorize_user(client_id: &str, input: &Self::Input) -> Result<(), String> {
        super::caller::only_self("client_ids", &input.client_ids, client_id)
    }

    fn user_conversation(input: &Self::Input) -> Option<&ConversationId> {
        Some(&input.conversation)
    }

    /// A user leaves only a conversation it is in (F1): it acts only inside its own conversations, so a
    /// repeated leave is refused rather than answered for a conversation it does not belong to.
    fn authorize_user_in(
        client_id: &str,
        _input: &Self::Input,
        conversation: &Conversation,
    ) -> Result<(), String> {
        super::caller::must_be_member(conversation, client_id)
    }

    /// `Remove`: removing a client that is not a member is not an error (LeanCloud leaves the list as it is),
    /// so a repeated call or a redelivered record is harmless.
    async fn run(inv: &Invocation<'_>, input: Self::Input) -> Result<Self::Output, FunctionError> {
        let updated = inv.send(&input.request).await?;
        Ok(MembersRemoved {
            conversation_id: input.conversation,
            client_ids: input.client_ids,
            updated_at: updated
                .updated_at
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        })
    }
}
