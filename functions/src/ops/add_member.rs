//! `POST /conversations/{conversation_id}/members`: add clients to a conversation.

use leancloud_im::{AddMembers, ClientId, ConversationId, Request};
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

    /// `AddUnique`: adding a member twice is not an error, so a redelivered record is harmless.
    /// A user adds or removes itself only.
    fn authorize_user(client_id: &str, input: &Self::Input) -> Result<(), String> {
        super::caller::only_self("client_ids", &input.client_ids, client_id)
    }

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
