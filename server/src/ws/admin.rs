//! The conversation administration commands: `conv/member_info_update`, `conv/add_shutup`,
//! `conv/remove_shutup`, `conv/query_shutup` and `blacklist` `block` / `unblock` / `query`. Decoding and
//! rendering only: the rules are `crate::domain::conv_admin`.

use super::connection::Conn;
use super::replies::{conv_error, dedup, refusal, reply_to, store_error};
use crate::domain::conv_admin::{self, AdminError, Failure, Partial};
use crate::domain::moderation::{self, Silence};
use crate::protocol::Reason;
use crate::realtime::proto::{
    BlacklistCommand, CommandType, ConvCommand, ErrorCommand, GenericCommand, OpType,
};
use crate::realtime::signature::Signed;
use crate::store::conv_admin::Mark;

/// The protocol's reason for a client a command did not change.
fn failure_reason(f: Failure) -> Reason {
    match f {
        Failure::NeedOwner => Reason::ConversationNeedOwner,
        Failure::NotMember => Reason::ConversationMembershipRequired,
        Failure::Blacklisted => Reason::BlockedByConv,
        Failure::Unauthorized => Reason::ConversationOperationUnauthorized,
    }
}

/// `failedPids` of a partial result: one `ErrorCommand` per reason, with its clients.
pub(super) fn failed_pids(partial: &Partial) -> Vec<ErrorCommand> {
    partial
        .failed
        .iter()
        .map(|(why, pids)| {
            let reason = failure_reason(*why);
            ErrorCommand {
                code: reason.code() as i32,
                reason: reason.name().into(),
                pids: pids.clone(),
                ..Default::default()
            }
        })
        .collect()
}

/// An administration error as the `error` reply to `req`.
pub(super) fn admin_error(req: &GenericCommand, err: AdminError) -> GenericCommand {
    match err {
        AdminError::Conv(e) => conv_error(req, e),
        AdminError::NotFound => refusal(req, Reason::ConversationNotFound, None),
        AdminError::Unauthorized => refusal(
            req,
            Reason::ConversationOperationUnauthorized,
            Some(err.to_string()),
        ),
        AdminError::NotMember => refusal(
            req,
            Reason::ConversationMembershipRequired,
            Some(err.to_string()),
        ),
        AdminError::UnknownRole(_) => {
            refusal(req, Reason::UnknownConversationRole, Some(err.to_string()))
        }
        AdminError::OwnerPromotion => refusal(req, Reason::OwnerPromotionNotAllowed, None),
        AdminError::Blocked(_) => refusal(req, Reason::BlockedByConv, Some(err.to_string())),
    }
}

/// The most clients one shutup or blacklist command may name.
pub const MAX_CLIENTS: usize = 100;

fn cid_of(conv: &ConvCommand) -> Option<String> {
    conv.cid.clone().filter(|c| !c.is_empty())
}

impl Conn {
    /// `conv/member_info_update` `{cid, targetClientId, info: {pid, role}}` → `member_info_updated`.
    pub(super) async fn member_info_update(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let conv = req.conv_message.clone().unwrap_or_default();
        let Some(cid) = cid_of(&conv) else {
            self.out.push(refusal(
                &req,
                Reason::ConversationNotFound,
                Some("cid is required".into()),
            ));
            return;
        };
        let info = conv.info.clone().unwrap_or_default();
        let target = conv
            .target_client_id
            .clone()
            .or(info.pid.clone())
            .filter(|t| !t.is_empty());
        let (Some(target), Some(role)) = (target, info.role.filter(|r| !r.is_empty())) else {
            self.out.push(refusal(
                &req,
                Reason::ConversationApiFailed,
                Some("targetClientId and info.role are required".into()),
            ));
            return;
        };
        match conv_admin::update_role(&self.state.svc, Some(&*peer), &cid, &target, &role).await {
            Ok(()) => self.out.push(GenericCommand {
                conv_message: Some(ConvCommand::default()),
                ..reply_to(&req, CommandType::Conv, Some(OpType::MemberInfoUpdated))
            }),
            Err(e) => self.out.push(admin_error(&req, e)),
        }
    }

    /// `conv/add_shutup` / `conv/remove_shutup` `{cid, m}` → `shutup_added` / `shutup_removed` with
    /// `allowedPids` and `failedPids`.
    pub(super) async fn shutup(&mut self, req: GenericCommand, add: bool) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let conv = req.conv_message.clone().unwrap_or_default();
        let Some(cid) = cid_of(&conv) else {
            self.out
                .push(refusal(&req, Reason::ConversationNotFound, None));
            return;
        };
        let ids = dedup(&conv.m);
        if !self.few_enough(&req, &ids) {
            return;
        }
        match conv_admin::shutup(&self.state.svc, Some(&*peer), &cid, &ids, add).await {
            Ok(partial) => {
                let op = if add {
                    OpType::ShutupAdded
                } else {
                    OpType::ShutupRemoved
                };
                self.out.push(GenericCommand {
                    conv_message: Some(ConvCommand {
                        failed_pids: failed_pids(&partial),
                        allowed_pids: partial.allowed,
                        ..Default::default()
                    }),
                    ..reply_to(&req, CommandType::Conv, Some(op))
                });
            }
            Err(e) => self.out.push(admin_error(&req, e)),
        }
    }

    /// `conv/query_shutup` `{cid, limit?, next?}` → `shutup_result` `{m, next?}`.
    pub(super) async fn query_shutup(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let conv = req.conv_message.clone().unwrap_or_default();
        let Some(cid) = cid_of(&conv) else {
            self.out
                .push(refusal(&req, Reason::ConversationNotFound, None));
            return;
        };
        let limit = conv.limit.map(i64::from);
        match conv_admin::listed(
            &self.state.svc,
            Some(&*peer),
            &cid,
            Mark::Shutup,
            limit,
            conv.next.clone(),
        )
        .await
        {
            Ok((m, next)) => self.out.push(GenericCommand {
                conv_message: Some(ConvCommand {
                    m,
                    next,
                    ..Default::default()
                }),
                ..reply_to(&req, CommandType::Conv, Some(OpType::ShutupResult))
            }),
            Err(e) => self.out.push(admin_error(&req, e)),
        }
    }

    /// `blacklist` `block` / `unblock` `{srcCid, toPids, t/n/s?}` → `blocked` / `unblocked` with
    /// `allowedPids` and `failedPids`; `query` `{srcCid, limit?, next?}` → `query_result` `{blockedPids,
    /// next?}`.
    pub(super) async fn blacklist(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let bl = req.blacklist_message.clone().unwrap_or_default();
        let Some(cid) = bl.src_cid.clone().filter(|c| !c.is_empty()) else {
            self.out.push(refusal(
                &req,
                Reason::ConversationNotFound,
                Some("srcCid is required".into()),
            ));
            return;
        };
        let op = req.operation();
        if op == Some(OpType::Query) {
            let limit = bl.limit.map(i64::from);
            match conv_admin::listed(
                &self.state.svc,
                Some(&*peer),
                &cid,
                Mark::Block,
                limit,
                bl.next.clone(),
            )
            .await
            {
                Ok((blocked_pids, next)) => self.out.push(GenericCommand {
                    blacklist_message: Some(BlacklistCommand {
                        src_cid: Some(cid),
                        blocked_pids,
                        next,
                        ..Default::default()
                    }),
                    ..reply_to(&req, CommandType::Blacklist, Some(OpType::QueryResult))
                }),
                Err(e) => self.out.push(admin_error(&req, e)),
            }
            return;
        }
        let block = match op {
            Some(OpType::Block) => true,
            Some(OpType::Unblock) => false,
            _ => {
                self.out
                    .push(refusal(&req, Reason::UnsupportedCommand, None));
                return;
            }
        };
        let ids = dedup(&bl.to_pids);
        if !self.few_enough(&req, &ids) {
            return;
        }
        let signed = Signed::Block {
            client: &peer,
            conv: &cid,
            members: &ids,
            block,
        };
        if !self.signature_ok(signed, bl.t, bl.n.as_deref(), bl.s.as_deref()) {
            self.out
                .push(refusal(&req, Reason::ConversationSignatureFailed, None));
            return;
        }
        match conv_admin::block(&self.state.svc, Some(&*peer), &cid, &ids, block).await {
            Ok(partial) => {
                let op = if block {
                    OpType::Blocked
                } else {
                    OpType::Unblocked
                };
                self.out.push(GenericCommand {
                    blacklist_message: Some(BlacklistCommand {
                        src_cid: Some(cid),
                        failed_pids: failed_pids(&partial),
                        allowed_pids: partial.allowed,
                        ..Default::default()
                    }),
                    ..reply_to(&req, CommandType::Blacklist, Some(op))
                });
            }
            Err(e) => self.out.push(admin_error(&req, e)),
        }
    }

    /// Whether a command names at most [`MAX_CLIENTS`] clients, and at least one; refuses it otherwise.
    fn few_enough(&mut self, req: &GenericCommand, ids: &[String]) -> bool {
        if ids.is_empty() || ids.len() > MAX_CLIENTS {
            self.out.push(refusal(
                req,
                Reason::ConversationApiFailed,
                Some(format!("name between 1 and {MAX_CLIENTS} clients")),
            ));
            return false;
        }
        true
    }

    /// Whether `peer` may send to `cid` as far as silences go; refuses the send (`ack` with 4563 `SILENCED`
    /// when it is muted for good, 4315 for a while).
    pub(super) async fn may_speak(&mut self, req: &GenericCommand, cid: &str, peer: &str) -> bool {
        let now = chrono::Utc::now().timestamp_millis();
        match moderation::silence_of(&self.state.svc, cid, peer, now).await {
            Ok(Silence::None) => true,
            Ok(Silence::Permanent) => {
                self.ack_error(req, Reason::Silenced);
                false
            }
            Ok(Silence::Until(_)) => {
                self.ack_error(req, Reason::TemporarilySilenced);
                false
            }
            Err(e) => {
                self.out.push(store_error(req, e));
                false
            }
        }
    }
}
