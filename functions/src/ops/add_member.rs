//! `POST /conversations/{conversation_id}/members`: add clients to a conversation.

use leancloud_im::{AddMembers, ClientId, Conversation, ConversationId, Request};
use serde::{Deserialize, Serialize};

use super::{input, Invocation, Operation, Route, TriggerKind, HTTP_AND_SQS};
use crate::app::Needs;
use crate::error::FunctionError;

/// The HTTP body; a queue record adds `conversation_id`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMemberBody {
    pub client_ids: Vec<String>,
}

/// The validated request, and what the answer echoes (the client crate's request keeps its fields private).
#[derive(Debug, Clone)]
pub struct NewMembers {
    pub conversation: ConversationId,
    pub client_ids: Vec<ClientId>,
    request: AddMembers,
}

/// The `200` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MembersAdded {
    pub conversation_id: ConversationId,
    pub client_ids: Vec<ClientId>,
    #[serde(rename = "updatedAt")]
    pub updated_at: Option<String>,
}

impl NewMembers {
    pub fn parse(conversation: ConversationId, body: AddMemberBody) -> Result<Self, FunctionError> {
        if body.client_ids.is_empty() {
            return Err(FunctionError::invalid_request(
                "`client_ids` must name at least one client",
            ));
        }
        let client_ids = input::client_ids("client_ids", body.client_ids)?;
        let request = AddMembers::new(conversation.clone(), client_ids.iter().cloned());
        request.validate()?;
        Ok(NewMembers {
            conversation,
            client_ids,
            request,
        })
    }
}

/// The `add-member` function.
#[derive(Debug)]
pub struct AddMemberOp;

impl Needs for AddMemberOp {}

impl Operation for AddMemberOp {
    const NAME: &'static str = "add-member";
    const ROUTE: Route = Route::Conversation {
        method: "POST",
        segment: "members",
    };
    const TRIGGERS: &'static [TriggerKind] = HTTP_AND_SQS;
    type Target = ConversationId;
    type Body = AddMemberBody;
    type Input = NewMembers;
    type Output = MembersAdded;

    fn parse(
        conversation: ConversationId,
        body: Self::Body,
        _: TriggerKind,
    ) -> Result<Self::Input, FunctionError> {
        NewMembers::parse(conversation, body)
    }

    /// A user adds itself only.
    fn authorize_user(client_id: &str, input: &Self::Input) -> Result<(), String> {
        super::caller::only_self("client_ids", &input.client_ids, client_id)
    }

    fn user_conversation(input: &Self::Input) -> Option<&ConversationId> {
        Some(&input.conversation)
    }

    /// A user joins only a conversation meant to be joined, a chat room (`tr`), and never a system
    /// conversation; joining one it is already in changes nothing and is allowed, so a repeated call is
    /// harmless (F1). Joining anything else takes an admin (or a trusted caller) to add it.
    fn authorize_user_in(
        client_id: &str,
        _input: &Self::Input,
        conversation: &Conversation,
    ) -> Result<(), String> {
        super::caller::not_system(conversation)?;
        if conversation.transient || super::caller::is_member(conversation, client_id) {
            return Ok(());
        }
        Err(format!(
            "conversation {:?} is not a chat room (`tr`); joining it takes a caller with the admin scope \
             (or the app's backend) to add the member",
            conversation.id.as_ref()
        ))
    }

    /// `AddUnique`: adding a member twice is not an error, so a redelivered record is harmless.
    async fn run(inv: &Invocation<'_>, input: Self::Input) -> Result<Self::Output, FunctionError> {
        let updated = inv.send(&input.request).await?;
        Ok(MembersAdded {
            conversation_id: input.conversation,
            client_ids: input.client_ids,
            updated_at: updated
                .updated_at
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        })
    }
}
