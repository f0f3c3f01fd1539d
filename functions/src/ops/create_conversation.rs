//! `POST /conversations`: create a conversation (normal, system, transient or unique, with custom attributes).

use leancloud_im::{ClientId, ConversationId, CreateConversation, Request};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{input, Invocation, Operation, Route, TriggerKind, HTTP_AND_SQS};
use crate::app::Needs;
use crate::error::FunctionError;

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

/// A validated request to create a conversation: the request itself, and the answer's fields the request
/// does not return.
#[derive(Debug, Clone)]
pub struct NewConversation {
    request: CreateConversation,
    answer: Created,
}

/// What the `201` echoes besides the id and time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Created {
    pub name: Option<String>,
    pub members: Vec<ClientId>,
    pub creator: Option<ClientId>,
    pub system: bool,
    pub transient: bool,
    pub unique: bool,
    pub attributes: Map<String, Value>,
}

/// The `201` body: the stored conversation's id and creation time, and the fields it was created with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreatedConversation {
    #[serde(rename = "objectId")]
    pub object_id: ConversationId,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(flatten)]
    pub fields: Created,
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
            request,
            answer: Created {
                name: body.name,
                members,
                creator,
                system,
                transient,
                unique,
                attributes,
            },
        })
    }
}

/// The `create-conversation` function.
#[derive(Debug)]
pub struct CreateConversationOp;

impl Needs for CreateConversationOp {}

impl Operation for CreateConversationOp {
    const NAME: &'static str = "create-conversation";
    const ROUTE: Route = Route::Conversations;
    const TRIGGERS: &'static [TriggerKind] = HTTP_AND_SQS;
    const SUCCESS_STATUS: u16 = 201;
    type Target = ();
    type Body = CreateConversationBody;
    type Input = NewConversation;
    type Output = CreatedConversation;

    fn parse(_: (), body: Self::Body, _: TriggerKind) -> Result<Self::Input, FunctionError> {
        NewConversation::parse(body)
    }

    /// Create the conversation.
    async fn run(inv: &Invocation<'_>, input: Self::Input) -> Result<Self::Output, FunctionError> {
        let created = inv.send(&input.request).await?;
        Ok(CreatedConversation {
            object_id: created.id,
            created_at: created
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            fields: input.answer,
        })
    }

    /// A user creates conversations it is a member (and, if one is named, the creator) of; system
    /// conversations reach every user and need the admin scope.
    fn authorize_user(client_id: &str, input: &Self::Input) -> Result<(), String> {
        let answer = &input.answer;
        if answer.system {
            return Err("a system conversation needs the admin scope".to_owned());
        }
        if let Some(creator) = &answer.creator {
            super::caller::must_be_self("creator", creator, client_id)?;
        }
        if !answer
            .members
            .iter()
            .any(|member| member.as_ref() == client_id)
        {
            return Err(format!(
                "`members` must include the caller ({client_id:?}); creating conversations for others \
                 needs the admin scope"
            ));
        }
        Ok(())
    }

    fn created(output: &Self::Output) -> Option<&ConversationId> {
        Some(&output.object_id)
    }
}
