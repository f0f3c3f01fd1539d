//! `POST /conversations`: create a conversation (normal, system, transient or unique, with custom attributes).

use leancloud_im::{ClientId, ConversationId, CreateConversation, Request};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::FunctionError;
use crate::input;
use crate::operation::{Backend, Operation, Route, Source};

/// The HTTP body, also the queue record.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateConversationBody {
    pub name: Option<String>,
    pub members: Option<Vec<String>>,
    pub creator: Option<String>,
    pub system: Option<bool>,
    pub transient: Option<bool>,
    pub unique: Option<bool>,
    pub attributes: Option<Map<String, Value>>,
}

/// A validated request to create a conversation.
#[derive(Debug, Clone)]
pub struct NewConversation {
    pub name: Option<String>,
    pub members: Vec<ClientId>,
    pub creator: Option<ClientId>,
    pub system: bool,
    pub transient: bool,
    pub unique: bool,
    pub attributes: Map<String, Value>,
    request: CreateConversation,
}

/// The `201` body: the stored conversation's id and creation time, and the fields it was created with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreatedConversation {
    #[serde(rename = "objectId")]
    pub object_id: ConversationId,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    pub name: Option<String>,
    pub members: Vec<ClientId>,
    pub creator: Option<ClientId>,
    pub system: bool,
    pub transient: bool,
    pub unique: bool,
    pub attributes: Map<String, Value>,
}

impl NewConversation {
    pub fn parse(body: CreateConversationBody) -> Result<Self, FunctionError> {
        let members = input::client_ids("members", body.members.unwrap_or_default())?;
        let creator = body
            .creator
            .map(|id| input::client_id("creator", id))
            .transpose()?;
        let attributes = body.attributes.unwrap_or_default();
        let (system, transient, unique) = (
            body.system.unwrap_or(false),
            body.transient.unwrap_or(false),
            body.unique.unwrap_or(false),
        );
        let mut request = CreateConversation::new()
            .members(members.iter().cloned())
            .system(system)
            .transient(transient)
            .unique(unique)
            .attributes(attributes.clone());
        if let Some(name) = &body.name {
            request = request.name(name.clone());
        }
        if let Some(creator) = &creator {
            request = request.creator(creator.clone());
        }
        request.validate()?;
        Ok(NewConversation {
            name: body.name,
            members,
            creator,
            system,
            transient,
            unique,
            attributes,
            request,
        })
    }
}

/// Create the conversation.
pub async fn create_conversation(
    backend: &Backend<'_>,
    input: NewConversation,
) -> Result<CreatedConversation, FunctionError> {
    let created = backend.send(&input.request).await?;
    Ok(CreatedConversation {
        object_id: created.id,
        created_at: created
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        name: input.name,
        members: input.members,
        creator: input.creator,
        system: input.system,
        transient: input.transient,
        unique: input.unique,
        attributes: input.attributes,
    })
}

/// The `create-conversation` function.
#[derive(Debug)]
pub struct CreateConversationOp;

impl Operation for CreateConversationOp {
    const NAME: &'static str = "create-conversation";
    const ROUTE: Route = Route::Conversations;
    const SCHEDULES: bool = false;
    const SUCCESS_STATUS: u16 = 201;
    type Body = CreateConversationBody;
    type Input = NewConversation;
    type Output = CreatedConversation;

    fn validate(
        _: Option<ConversationId>,
        body: Self::Body,
        _: Source,
    ) -> Result<Self::Input, FunctionError> {
        NewConversation::parse(body)
    }

    fn conversation(_: &Self::Input) -> Option<&ConversationId> {
        None
    }

    fn created(output: &Self::Output) -> Option<&ConversationId> {
        Some(&output.object_id)
    }

    async fn execute(
        backend: &Backend<'_>,
        input: Self::Input,
    ) -> Result<Self::Output, FunctionError> {
        create_conversation(backend, input).await
    }
}
