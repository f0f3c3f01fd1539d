//! `POST /conversations/{conversation_id}/members`: add clients to a conversation.

use leancloud_im::{AddMembers, ClientId, ConversationId, Request};
use serde::{Deserialize, Serialize};

use crate::error::FunctionError;
use crate::input;
use crate::operation::{Backend, Operation, Route, Source};

/// The HTTP body; a queue record adds `conversation_id`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMemberBody {
    pub client_ids: Vec<String>,
}

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

/// Add the members.
pub async fn add_member(
    backend: &Backend<'_>,
    input: NewMembers,
) -> Result<MembersAdded, FunctionError> {
    let updated = backend.send(&input.request).await?;
    Ok(MembersAdded {
        conversation_id: input.conversation,
        client_ids: input.client_ids,
        updated_at: updated
            .updated_at
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    })
}

/// The `add-member` function.
#[derive(Debug)]
pub struct AddMemberOp;

impl Operation for AddMemberOp {
    const NAME: &'static str = "add-member";
    const ROUTE: Route = Route::Conversation("members");
    const SCHEDULES: bool = false;
    type Body = AddMemberBody;
    type Input = NewMembers;
    type Output = MembersAdded;

    fn validate(
        conversation: Option<ConversationId>,
        body: Self::Body,
        _: Source,
    ) -> Result<Self::Input, FunctionError> {
        let conversation = crate::operation::required_conversation(conversation)?;
        NewMembers::parse(conversation, body)
    }

    fn conversation(input: &Self::Input) -> Option<&ConversationId> {
        Some(&input.conversation)
    }

    async fn execute(
        backend: &Backend<'_>,
        input: Self::Input,
    ) -> Result<Self::Output, FunctionError> {
        add_member(backend, input).await
    }
}
