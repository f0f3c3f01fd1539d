//! `POST /conversations/{conversation_id}/silenced` and `DELETE /conversations/{conversation_id}/silenced`:
//! silence members of a conversation (they cannot send) and lift it, through LeanCloud's 1.2 API.
//!
//! With `ttl` (seconds, 1 to 86,400) each client is silenced for that long (`POST …/temporary-silenceds
//! {"client_id","ttl"}`, one call per client); without, until lifted (`POST …/permanent-silenceds
//! {"client_ids"}`). `DELETE` lifts both kinds: `DELETE …/permanent-silenceds {"client_ids"}` and `DELETE
//! …/temporary-silenceds?client_id=…` per client. A queue record is `{"conversation_id","client_ids"[,"ttl"]}`,
//! and `"action": "unmute"` lifts. Every call sets a state, so a repeat is harmless.

use leancloud_im::rtm2::{
    LiftPermanentSilence, LiftTemporarySilence, PermanentSilence, Scope, TemporarySilence,
};
use leancloud_im::{ClientId, ConversationId, Request};
use serde::{Deserialize, Serialize};

use super::{input, Invocation, Lift, Operation, Route, Toggle, TriggerKind, HTTP_AND_SQS};
use crate::app::Needs;
use crate::error::FunctionError;

/// The `action` words of a queue record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mute;

impl Lift for Mute {
    const SET: &'static str = "mute";
    const LIFT: &'static str = "unmute";
}

/// The HTTP body; a queue record adds `conversation_id` (and `"action": "unmute"` to lift).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MuteMembersBody {
    pub client_ids: Vec<String>,
    /// Seconds of a temporary silence (not with `DELETE`).
    pub ttl: Option<u32>,
}

#[derive(Debug, Clone)]
enum Calls {
    Temporary(Vec<TemporarySilence>),
    Permanent(PermanentSilence),
    Lift(LiftPermanentSilence, Vec<LiftTemporarySilence>),
}

/// The validated request.
#[derive(Debug, Clone)]
pub struct Silence {
    pub conversation: ConversationId,
    pub client_ids: Vec<ClientId>,
    pub ttl: Option<u32>,
    calls: Calls,
}

/// The `200` body: `{"conversation_id","client_ids","silenced"[,"ttl"]}` (`silenced: false` after a lift).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SilenceChanged {
    pub conversation_id: ConversationId,
    pub client_ids: Vec<ClientId>,
    pub silenced: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
}

impl Silence {
    pub fn parse(target: Toggle<Mute>, body: MuteMembersBody) -> Result<Self, FunctionError> {
        let client_ids = input::client_id_set("client_ids", body.client_ids)?;
        let conversation = target.conversation;
        let scope = Scope::Conversation;
        let calls = match (target.lift, body.ttl) {
            (true, Some(_)) => {
                return Err(FunctionError::invalid_request(
                    "unknown field `ttl`: lifting a silence ends both kinds and takes no ttl",
                ))
            }
            (true, None) => Calls::Lift(
                LiftPermanentSilence::new(scope, conversation.clone(), client_ids.iter().cloned()),
                client_ids
                    .iter()
                    .map(|id| LiftTemporarySilence::new(scope, conversation.clone(), id.clone()))
                    .collect(),
            ),
            (false, Some(ttl)) => Calls::Temporary(
                client_ids
                    .iter()
                    .map(|id| TemporarySilence::new(scope, conversation.clone(), id.clone(), ttl))
                    .collect(),
            ),
            (false, None) => Calls::Permanent(PermanentSilence::new(
                scope,
                conversation.clone(),
                client_ids.iter().cloned(),
            )),
        };
        match &calls {
            Calls::Temporary(each) => each.iter().try_for_each(Request::validate)?,
            Calls::Permanent(all) => all.validate()?,
            Calls::Lift(all, each) => {
                all.validate()?;
                each.iter().try_for_each(Request::validate)?;
            }
        }
        Ok(Silence {
            conversation,
            client_ids,
            ttl: body.ttl,
            calls,
        })
    }
}

/// The `mute-members` function.
#[derive(Debug)]
pub struct MuteMembersOp;

impl Needs for MuteMembersOp {}

impl Operation for MuteMembersOp {
    const NAME: &'static str = "mute-members";
    const ROUTE: Route = Route::Conversation {
        method: "POST, DELETE",
        segment: "silenced",
    };
    const TRIGGERS: &'static [TriggerKind] = HTTP_AND_SQS;
    type Target = Toggle<Mute>;
    type Body = MuteMembersBody;
    type Input = Silence;
    type Output = SilenceChanged;

    fn parse(
        target: Toggle<Mute>,
        body: Self::Body,
        _: TriggerKind,
    ) -> Result<Self::Input, FunctionError> {
        Silence::parse(target, body)
    }

    /// One call after the other, stopping at the first failure; a retry repeats the calls already made, which
    /// set the same state again.
    async fn run(inv: &Invocation<'_>, input: Self::Input) -> Result<Self::Output, FunctionError> {
        let silenced = match &input.calls {
            Calls::Temporary(each) => {
                for request in each {
                    inv.send(request).await?;
                }
                true
            }
            Calls::Permanent(all) => {
                inv.send(all).await?;
                true
            }
            Calls::Lift(all, each) => {
                inv.send(all).await?;
                for request in each {
                    inv.send(request).await?;
                }
                false
            }
        };
        Ok(SilenceChanged {
            conversation_id: input.conversation,
            client_ids: input.client_ids,
            silenced,
            ttl: input.ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::caller::{authorize, Caller};
    use crate::ops::{parse_payload, Matched, Resource};
    use serde_json::{json, Value};

    fn http(method: &str, body: Value) -> Result<Silence, FunctionError> {
        let matched = Matched {
            method: method.to_owned(),
            resource: Resource::Conversation(ConversationId::parse("c1").expect("id")),
        };
        parse_payload::<MuteMembersOp>(body, Some(matched), TriggerKind::Http)
    }

    #[test]
    fn ttl_picks_the_temporary_silence_and_delete_lifts_both() {
        let temporary = http("POST", json!({"client_ids": ["a", "b"], "ttl": 60})).expect("valid");
        assert!(matches!(&temporary.calls, Calls::Temporary(each) if each.len() == 2));
        let permanent = http("POST", json!({"client_ids": ["a"]})).expect("valid");
        assert!(matches!(permanent.calls, Calls::Permanent(_)));
        let lift = http("DELETE", json!({"client_ids": ["a", "b"]})).expect("valid");
        assert!(matches!(&lift.calls, Calls::Lift(_, each) if each.len() == 2));
        let record = json!({"conversation_id": "c1", "client_ids": ["a"], "action": "unmute"});
        let lift = parse_payload::<MuteMembersOp>(record, None, TriggerKind::Sqs).expect("valid");
        assert!(matches!(lift.calls, Calls::Lift(..)));
        let record = json!({"conversation_id": "c1", "client_ids": ["a"], "ttl": 5});
        let mute = parse_payload::<MuteMembersOp>(record, None, TriggerKind::Sqs).expect("valid");
        assert!(matches!(mute.calls, Calls::Temporary(_)));
    }

    #[test]
    fn bad_input_is_refused_before_any_call() {
        let cases = [
            ("POST", json!({"client_ids": []}), "at least one"),
            ("POST", json!({"client_ids": ["a", "a"]}), "more than once"),
            (
                "POST",
                json!({"client_ids": ["a"], "ttl": 0}),
                "ttl = 0 is out of range",
            ),
            (
                "POST",
                json!({"client_ids": ["a"], "ttl": 86401}),
                "ttl = 86401",
            ),
            (
                "POST",
                json!({"client_ids": ["a"], "ttl": -1}),
                "invalid value",
            ),
            (
                "DELETE",
                json!({"client_ids": ["a"], "ttl": 5}),
                "takes no ttl",
            ),
            (
                "POST",
                json!({"client_ids": ["a"], "action": "unmute"}),
                "the URL path gives it",
            ),
            ("POST", json!({"client_ids": "a"}), "invalid type"),
        ];
        for (method, body, expected) in cases {
            let err = http(method, body.clone()).expect_err("refused");
            assert_eq!(400, err.to_http().status);
            let text = err.to_string();
            assert!(
                text.contains(expected),
                "{text:?} should contain {expected:?} for {body}"
            );
        }
        let record =
            json!({"conversation_id": "c1", "client_ids": ["a"], "action": "mute-forever"});
        let err = parse_payload::<MuteMembersOp>(record, None, TriggerKind::Sqs).expect_err("bad");
        assert!(err.to_string().contains("\"mute\" or \"unmute\""), "{err}");
    }

    #[test]
    fn only_admins_and_trusted_callers_silence() {
        let input = http("POST", json!({"client_ids": ["a"]})).expect("valid");
        let user = Caller::User {
            client_id: "a".into(),
        };
        let err = authorize::<MuteMembersOp>(&user, &input).expect_err("users may not");
        assert_eq!(403, err.to_http().status);
        assert!(authorize::<MuteMembersOp>(&Caller::Trusted, &input).is_ok());
    }
}
