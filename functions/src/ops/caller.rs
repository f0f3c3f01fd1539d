//! Who is calling, and what a caller may do (review findings H1 and F1).
//!
//! The trust model: an IAM-signed HTTP call, a queue record and a schedule come from principals the deployment
//! trusts (AWS credentials or this stack's own resources), and may act as any client. A request that carries
//! JWT claims (`requestContext.authorizer.jwt`, `ApiAuth=JWT`) comes from an end user: unless the token
//! carries the admin scope, it acts only as the client id named by its identity claim (`sub` by default), and
//! only inside conversations it belongs to (the calls go out with the master key, which bypasses LeanCloud's own
//! membership rules, so the functions apply them):
//!
//! | Operation | A JWT user without the admin scope may |
//! |---|---|
//! | create-conversation | create a conversation it is a member of (and the creator of, if one is named); not a system conversation |
//! | add-member | add itself only, and only to a chat room (`tr`) or a conversation it is already in; never a system conversation |
//! | remove-member | remove itself only, from a conversation it is in |
//! | send-message | send as itself (`from_client` = its id) into a conversation it is a member of (`m`); not a system conversation, no `to_clients`, no `push_data` |
//! | broadcast, schedules | nothing: admin scope only (the template's routes require it too) |
//!
//! A refusal is `403 forbidden` with the reason. What the body alone decides is refused before any call to
//! LeanCloud ([`authorize`]); the conversation rules then cost one `GET` of the conversation with the master
//! key ([`authorize_in_conversation`]), and a conversation that does not exist is `404 conversation_not_found`.

use leancloud_im::{ClientId, Conversation, GetConversation};

use super::{Invocation, Operation};
use crate::app::JwtPolicy;
use crate::error::FunctionError;

/// The caller of one invocation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Caller {
    /// Queue records, schedules, local calls, tests.
    #[default]
    Trusted,
    /// An IAM-signed HTTP call (`ApiAuth=IAM`): trusted, logged with its principal.
    Iam { arn: String },
    /// A JWT bearer with the admin scope.
    Admin { subject: String },
    /// A JWT bearer acting as `client_id` only.
    User { client_id: String },
    /// A JWT without the identity claim: may do nothing.
    Anonymous { claim: String },
}

impl Caller {
    /// From a JWT's claims and scopes. The scopes are API Gateway's `scopes`, or else the token's `scope`
    /// / `scp` claim split on spaces.
    pub fn from_jwt<'a>(
        policy: &JwtPolicy,
        claim: impl Fn(&str) -> Option<&'a str>,
        scopes: Option<&[String]>,
    ) -> Caller {
        let from_claim: Vec<String> = ["scope", "scp"]
            .iter()
            .filter_map(|name| claim(name))
            .flat_map(|text| {
                text.trim_matches(|c| c == '[' || c == ']')
                    .split([' ', ','])
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        let admin = scopes
            .unwrap_or_default()
            .iter()
            .chain(&from_claim)
            .any(|scope| scope == &policy.admin_scope);
        let subject = claim(&policy.identity_claim).filter(|value| !value.is_empty());
        match (subject, admin) {
            (Some(subject), true) => Caller::Admin {
                subject: subject.to_owned(),
            },
            (None, true) => Caller::Admin {
                subject: String::new(),
            },
            (Some(subject), false) => Caller::User {
                client_id: subject.to_owned(),
            },
            (None, false) => Caller::Anonymous {
                claim: policy.identity_claim.clone(),
            },
        }
    }

    /// For logs: `trusted`, `admin:<sub>`, `user:<client id>`, `anonymous`.
    pub fn describe(&self) -> String {
        match self {
            Caller::Trusted => "trusted".to_owned(),
            Caller::Iam { arn } => format!("iam:{arn}"),
            Caller::Admin { subject } => format!("admin:{subject}"),
            Caller::User { client_id } => format!("user:{client_id}"),
            Caller::Anonymous { .. } => "anonymous".to_owned(),
        }
    }
}

/// May `caller` run `input`? Trusted callers and admins may; a user only what [`Operation::authorize_user`]
/// allows.
pub fn authorize<Op: Operation>(caller: &Caller, input: &Op::Input) -> Result<(), FunctionError> {
    let refused = |reason: String| FunctionError::Forbidden {
        message: format!("{} refused: {reason}", Op::NAME),
    };
    match caller {
        Caller::Trusted | Caller::Iam { .. } | Caller::Admin { .. } => Ok(()),
        Caller::Anonymous { claim } => Err(refused(format!(
            "the token has no `{claim}` claim to identify the caller"
        ))),
        Caller::User { client_id } => Op::authorize_user(client_id, input).map_err(refused),
    }
}

/// F1: for a JWT user that [`authorize`] let through, the rules of the conversation the input acts on
/// ([`Operation::user_conversation`]): one `GET` of it with the master key, then
/// [`Operation::authorize_user_in`]. Nothing to do for other callers, or for an operation that acts on no
/// existing conversation. A missing conversation is the `GET`'s own error (`404 conversation_not_found`).
pub async fn authorize_in_conversation<Op: Operation>(
    inv: &Invocation<'_>,
    input: &Op::Input,
) -> Result<(), FunctionError> {
    let Caller::User { client_id } = &inv.caller else {
        return Ok(());
    };
    let Some(id) = Op::user_conversation(input) else {
        return Ok(());
    };
    let conversation = inv.send(&GetConversation::new(id.clone())).await?;
    Op::authorize_user_in(client_id, input, &conversation).map_err(|reason| {
        FunctionError::Forbidden {
            message: format!("{} refused: {reason}", Op::NAME),
        }
    })
}

/// Whether `caller` is in the conversation's members (`m`).
pub fn is_member(conversation: &Conversation, caller: &str) -> bool {
    conversation
        .members
        .iter()
        .any(|member| member.as_ref() == caller)
}

/// For [`Operation::authorize_user_in`]: the caller must be a member (`m`) of the conversation.
pub fn must_be_member(conversation: &Conversation, caller: &str) -> Result<(), String> {
    if is_member(conversation, caller) {
        Ok(())
    } else {
        Err(format!(
            "the caller ({caller:?}) is not a member of conversation {:?}; acting in conversations one does \
             not belong to needs the admin scope",
            conversation.id.as_ref()
        ))
    }
}

/// For [`Operation::authorize_user_in`]: system conversations (`sys`) reach every user and are the app's
/// official channel; only admins act in them.
pub fn not_system(conversation: &Conversation) -> Result<(), String> {
    if conversation.system {
        Err(format!(
            "conversation {:?} is a system conversation; acting in it needs the admin scope",
            conversation.id.as_ref()
        ))
    } else {
        Ok(())
    }
}

/// For [`Operation::authorize_user`]: `id` must be the caller's own.
pub fn must_be_self(field: &str, id: &ClientId, caller: &str) -> Result<(), String> {
    if id.as_ref() == caller {
        Ok(())
    } else {
        Err(format!(
            "`{field}` is {:?}, but the token identifies the caller as {caller:?}; acting as another \
             client needs the admin scope",
            id.as_ref()
        ))
    }
}

/// For add/remove-member: the ids must be exactly the caller's own.
pub fn only_self(field: &str, ids: &[ClientId], caller: &str) -> Result<(), String> {
    match ids {
        [id] => must_be_self(field, id, caller),
        _ => Err(format!(
            "`{field}` names {} clients; without the admin scope a caller may name only itself",
            ids.len()
        )),
    }
}

/// The default for operations only admins may run.
pub fn admin_only() -> Result<(), String> {
    Err("this operation needs the admin scope".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn caller(claims: &[(&str, &str)], scopes: Option<&[String]>) -> Caller {
        let claims: HashMap<&str, &str> = claims.iter().copied().collect();
        Caller::from_jwt(
            &JwtPolicy::default(),
            |name| claims.get(name).copied(),
            scopes,
        )
    }

    #[test]
    fn the_identity_and_the_admin_scope_come_from_the_token() {
        assert_eq!(
            Caller::User {
                client_id: "alice".into()
            },
            caller(&[("sub", "alice")], None)
        );
        let admin = ["leancloud-im/admin".to_owned()];
        assert!(matches!(
            caller(&[("sub", "ops")], Some(&admin)),
            Caller::Admin { .. }
        ));
        assert!(matches!(
            caller(
                &[("sub", "ops"), ("scope", "openid leancloud-im/admin")],
                None
            ),
            Caller::Admin { .. }
        ));
        assert!(matches!(
            caller(&[("sub", "x"), ("scope", "leancloud-im/admin-not")], None),
            Caller::User { .. }
        ));
        assert!(matches!(caller(&[], None), Caller::Anonymous { .. }));
        let policy = JwtPolicy {
            identity_claim: "client_id".into(),
            ..JwtPolicy::default()
        };
        let claims: HashMap<&str, &str> = [("sub", "uuid"), ("client_id", "bob")].into();
        assert_eq!(
            Caller::User {
                client_id: "bob".into()
            },
            Caller::from_jwt(&policy, |name| claims.get(name).copied(), None)
        );
    }
}
