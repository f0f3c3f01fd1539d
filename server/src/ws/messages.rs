//! The message commands: `direct` (a send, through `crate::domain::messaging`), `ack` and `read` (delivery
//! and read positions, and the receipts they trigger, through `crate::domain::receipts`), `logs` (a page of
//! history), `patch` `modify` (an edit or a recall, through `crate::domain::patches`) and `conv/max_read`.

use base64::Engine as _;
use serde_json::{json, Value};

use super::connection::Conn;
use super::replies::{now_ms, refusal, reply_to, store_error};
use crate::domain::conversations::{self, strings};
use crate::domain::messaging::{self, Origin, SendError};
use crate::domain::patches::{self, PatchError, PatchRequest};
use crate::domain::receipts::{self, Ack, MaxReadError};
use crate::protocol::limits::{DEFAULT_LOGS, MAX_LOGS};
use crate::protocol::Reason;
use crate::realtime::proto::{
    AckCommand, CommandType, ConvCommand, GenericCommand, LogItem, LogsCommand, MaxReadTuple,
    OpType, PatchCommand, QueryDirection,
};
use crate::store::messages::{HistoryQuery, HistoryScope, NewMessage};
use crate::store::temp_convs::is_temp;
use crate::store::StoreError;

impl Conn {
    /// An `ack` that refuses a `direct`: the SDK rejects the send's promise with `reason`.
    pub(super) fn ack_error(&mut self, req: &GenericCommand, reason: Reason) {
        self.out.push(GenericCommand {
            ack_message: Some(AckCommand {
                code: Some(reason.code() as i32),
                reason: Some(reason.name().to_string()),
                ..Default::default()
            }),
            ..reply_to(req, CommandType::Ack, None)
        });
    }

    /// A client's `direct`: stored (membership checked), answered with `ack`, then delivered.
    pub(super) async fn send(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let dm = req.direct_message.clone().unwrap_or_default();
        let Some(cid) = dm.cid.clone().filter(|c| !c.is_empty()) else {
            self.ack_error(&req, Reason::InvalidMessagingTarget);
            return;
        };
        let (data, binary) = match (&dm.msg, &dm.binary_msg) {
            (_, Some(bytes)) => (
                base64::engine::general_purpose::STANDARD.encode(bytes),
                true,
            ),
            (Some(text), None) => (text.clone(), false),
            (None, None) => {
                self.ack_error(&req, Reason::EmptyMessage);
                return;
            }
        };
        let push = dm
            .push_data
            .as_deref()
            .map(|p| serde_json::from_str(p).unwrap_or_else(|_| Value::String(p.to_string())));
        let msg = NewMessage {
            transient: dm.transient == Some(true),
            push_field: push.as_ref().map(|_| "push"),
            push,
            binary,
            mention_pids: dm.mention_pids.clone(),
            mention_all: dm.mention_all == Some(true),
            receipt: dm.r == Some(true),
            ..NewMessage::to_conversation(cid, peer.to_string(), data)
        };
        if is_temp(&msg.conv_id) {
            // An expired (or unknown) temporary conversation has its own code, which the SDK names.
            match conversations::temporary(&self.state.svc, &peer, vec![msg.conv_id.clone()]).await
            {
                Ok(found) if found.is_empty() => {
                    // The code alone, as LeanCloud answers it: the SDK then names the error and gives it its
                    // own message ("Temporary conversation expired or does not exist.").
                    let code = Reason::TemporaryConversationExpired.code() as i32;
                    self.out.push(GenericCommand {
                        ack_message: Some(AckCommand {
                            code: Some(code),
                            ..Default::default()
                        }),
                        ..reply_to(&req, CommandType::Ack, None)
                    });
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    self.out.push(store_error(&req, e));
                    return;
                }
            }
        }
        if !is_temp(&msg.conv_id) && !self.may_speak(&req, &msg.conv_id, &peer).await {
            return;
        }
        if dm.will == Some(true) {
            self.keep_will(&req, &peer, msg);
            return;
        }
        let ip = self.ip.clone();
        match messaging::send(&self.state.svc, msg, Origin::Client, ip).await {
            Ok(stored) => {
                self.out.push(GenericCommand {
                    ack_message: Some(AckCommand {
                        uid: Some(stored.msg_id),
                        t: Some(stored.timestamp),
                        ..Default::default()
                    }),
                    ..reply_to(&req, CommandType::Ack, None)
                });
            }
            Err(SendError::Rejected(refusal)) => {
                self.out.push(GenericCommand {
                    ack_message: Some(AckCommand {
                        code: Some(Reason::MessageRejectedByApp.code() as i32),
                        reason: Some(Reason::MessageRejectedByApp.name().into()),
                        app_code: refusal.app_code.map(|c| c as i32),
                        app_msg: refusal.detail,
                        ..Default::default()
                    }),
                    ..reply_to(&req, CommandType::Ack, None)
                });
            }
            Err(SendError::Busy) => self.ack_error(&req, Reason::Overloaded),
            Err(SendError::Invalid(crate::domain::messaging::Invalid::TooManyMentions(_))) => {
                self.ack_error(&req, Reason::InvalidMessagingTarget)
            }
            Err(SendError::Invalid(_)) => self.ack_error(&req, Reason::MessageTooLarge),
            Err(SendError::Store(StoreError::SystemConversationRequired)) => {
                self.ack_error(&req, Reason::SystemConversationRequired)
            }
            Err(SendError::Store(e)) if !e.is_internal() => {
                self.ack_error(&req, Reason::InvalidMessagingTarget)
            }
            // A client's send is never counted against the app's rate limits.
            Err(SendError::Limited(_)) => self.out.push(refusal(&req, Reason::Internal, None)),
            Err(SendError::Store(e)) => self.out.push(store_error(&req, e)),
        }
    }

    /// A will message (`{will: true}`): kept for the session, not delivered; sent to the conversation only if the
    /// connection ends without this session's `session/close` (`Conn::close_all`). A session keeps one will: a
    /// newer one replaces it. The ack carries the id and time it is kept under (sent, it is stored under its own).
    fn keep_will(&mut self, req: &GenericCommand, peer: &str, msg: NewMessage) {
        let Some(session) = self.sessions.get_mut(peer) else {
            return;
        };
        session.will = Some(msg);
        self.out.push(GenericCommand {
            ack_message: Some(AckCommand {
                uid: Some(crate::store::messages::new_message_id()),
                t: Some(now_ms()),
                ..Default::default()
            }),
            ..reply_to(req, CommandType::Ack, None)
        });
    }

    /// A client's `ack`: the messages of a conversation from `fromts` to `tots` (or the message `mid`)
    /// reached it; their senders that asked for receipts get an `rcp`.
    pub(super) async fn ack(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let Some(ack) = req.ack_message.as_ref() else {
            return;
        };
        let Some(cid) = ack.cid.clone().filter(|c| !c.is_empty()) else {
            return;
        };
        let ack = Ack {
            cid,
            from_ts: ack.fromts,
            to_ts: ack.tots.or(ack.t),
            msg_id: ack.mid.clone().filter(|m| !m.is_empty()),
        };
        if let Err(e) = receipts::acked(&self.state.svc, &peer, ack).await {
            tracing::error!(error = %e, "realtime: ack not saved");
        }
    }

    /// `read`: the client has read each listed conversation up to the time given; the senders that asked for
    /// receipts get an `rcp` with `read: true`.
    pub(super) async fn read(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let Some(read) = req.read_message.as_ref() else {
            return;
        };
        let now = now_ms();
        let mut marks: Vec<(String, i64)> = read
            .convs
            .iter()
            .map(|t| (t.cid.clone(), t.timestamp.unwrap_or(now)))
            .collect();
        marks.extend(read.cid.iter().chain(&read.cids).map(|c| (c.clone(), now)));
        if let Err(e) = receipts::read(&self.state.svc, &peer, marks).await {
            tracing::error!(error = %e, "realtime: read position not saved");
        }
    }

    /// `conv/max_read` (`fetchReceiptTimestamps`): the other members' newest delivery and read positions and,
    /// with `queryAllMembers`, each one's.
    pub(super) async fn max_read(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let conv = req.conv_message.clone().unwrap_or_default();
        let Some(cid) = conv.cid.clone().filter(|c| !c.is_empty()) else {
            self.out.push(refusal(
                &req,
                Reason::ConversationNotFound,
                Some("cid is required".into()),
            ));
            return;
        };
        match receipts::max_read(&self.state.svc, &peer, &cid).await {
            Ok(times) => {
                let tuples = if conv.query_all_members == Some(true) {
                    times
                        .members
                        .iter()
                        .map(|p| MaxReadTuple {
                            pid: Some(p.client.clone()),
                            max_ack_timestamp: (p.ack_ts > 0).then_some(p.ack_ts),
                            max_read_timestamp: (p.read_ts > 0).then_some(p.read_ts),
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                self.out.push(GenericCommand {
                    conv_message: Some(ConvCommand {
                        cid: Some(cid),
                        max_ack_timestamp: times.max_ack,
                        max_read_timestamp: times.max_read,
                        max_read_tuples: tuples,
                        ..Default::default()
                    }),
                    ..reply_to(&req, CommandType::Conv, Some(OpType::MaxRead))
                });
            }
            Err(MaxReadError::NotFound) => {
                self.out
                    .push(refusal(&req, Reason::ConversationNotFound, None))
            }
            Err(MaxReadError::NotMember) => self.out.push(refusal(
                &req,
                Reason::ConversationMembershipRequired,
                Some(MaxReadError::NotMember.to_string()),
            )),
            Err(MaxReadError::Store(e)) => self.out.push(store_error(&req, e)),
        }
    }

    /// `patch` `modify`: edits or recalls of the client's own messages, answered with `modified` and the
    /// newest patch time (`lastPatchTime`, which the Swift SDK requires).
    pub(super) async fn patch(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let items = req
            .patch_message
            .as_ref()
            .map(|p| p.patches.clone())
            .unwrap_or_default();
        if items.is_empty() {
            self.out.push(refusal(
                &req,
                Reason::MalformedCommand,
                Some("patchMessage.patches is empty".into()),
            ));
            return;
        }
        let mut last = None;
        for item in items {
            let (data, binary) = match (item.binary_msg, item.data) {
                (Some(bytes), _) => (
                    Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                    true,
                ),
                (None, data) => (data, false),
            };
            let item_recall = item.recall == Some(true);
            let request = PatchRequest {
                by: peer.to_string(),
                cid: item.cid.unwrap_or_default(),
                msg_id: item.mid.unwrap_or_default(),
                recall: item_recall,
                data,
                binary,
                mention_pids: item.mention_pids,
                mention_all: item.mention_all == Some(true),
                by_backend: false,
                source_ip: self.ip.clone(),
                timestamp: None,
            };
            match patches::patch(&self.state.svc, request).await {
                Ok(at) => last = Some(last.map_or(at, |l: i64| l.max(at))),
                Err(e) => {
                    let reason = match &e {
                        PatchError::NotFound => Reason::MessageNotFound,
                        PatchError::NotOwner => Reason::MessageOwnershipRequired,
                        PatchError::Empty => Reason::EmptyMessage,
                        PatchError::TooLarge(_) => Reason::MessageTooLarge,
                        PatchError::EditDisabled => Reason::MessageEditDisabled,
                        PatchError::RecallDisabled => Reason::MessageRecallDisabled,
                        PatchError::TooLate(_) if item_recall => Reason::MessageRecallDisabled,
                        PatchError::TooLate(_) => Reason::MessageEditDisabled,
                        PatchError::Store(_) | PatchError::Limited(_) => Reason::Internal,
                        PatchError::Rejected(_) => Reason::MessageUpdateRejectedByApp,
                    };
                    if let PatchError::Store(e) = e {
                        self.out.push(store_error(&req, e));
                    } else if let PatchError::Rejected(r) = e {
                        let mut reply = refusal(&req, reason, r.detail.clone());
                        if let Some(err) = reply.error_message.as_mut() {
                            err.app_code = r.app_code.map(|c| c as i32);
                            err.app_msg = r.detail;
                        }
                        self.out.push(reply);
                    } else {
                        self.out.push(refusal(&req, reason, Some(e.to_string())));
                    }
                    return;
                }
            }
        }
        self.out.push(GenericCommand {
            patch_message: Some(PatchCommand {
                patches: Vec::new(),
                last_patch_time: last,
            }),
            ..reply_to(&req, CommandType::Patch, Some(OpType::Modified))
        });
    }

    /// `logs`: a page of a conversation's history, oldest first, as the SDK's iterator expects (§8.4).
    pub(super) async fn logs(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let lq: LogsCommand = req.logs_message.clone().unwrap_or_default();
        let cid = match lq.cid.as_deref() {
            Some(tmp) if is_temp(tmp) => {
                // A live temporary conversation's history, for its members (expired: LeanCloud's own code).
                match conversations::temporary(&self.state.svc, &peer, vec![tmp.to_string()]).await
                {
                    Ok(found) if found.is_empty() => {
                        self.out.push(refusal(
                            &req,
                            Reason::TemporaryConversationExpired,
                            Some("the temporary conversation expired, does not exist or does not have this client".into()),
                        ));
                        return;
                    }
                    Ok(_) => tmp.to_string(),
                    Err(e) => {
                        self.out.push(store_error(&req, e));
                        return;
                    }
                }
            }
            cid => {
                let Some((cid, row)) = self.conversation(&req, cid).await else {
                    return;
                };
                let open =
                    row.get("sys") == Some(&json!(true)) || row.get("tr") == Some(&json!(true));
                if !open && !strings(row.get("m")).iter().any(|m| **m == *peer) {
                    self.out.push(refusal(
                        &req,
                        Reason::ConversationLogRejected,
                        Some("only members may read a conversation's history".into()),
                    ));
                    return;
                }
                cid
            }
        };
        let newer = lq.direction == Some(QueryDirection::New as i32);
        let q = HistoryQuery {
            scope: HistoryScope::ConversationFor {
                conv: cid,
                client: peer.to_string(),
            },
            limit: lq
                .l
                .or(lq.limit)
                .map_or(DEFAULT_LOGS, |l| (l.max(0) as usize).min(MAX_LOGS)),
            reversed: newer,
            start_ts: lq.t,
            start_msgid: lq.mid.clone(),
            include_start: lq.t_included == Some(true),
            stop_ts: lq.tt,
            stop_msgid: lq.tmid.clone(),
            include_stop: lq.tt_included == Some(true),
        };
        let lctype = lq.lctype.map(i64::from);
        match messaging::history(&self.state.svc, q, lctype).await {
            Ok(mut records) => {
                if !newer {
                    records.reverse();
                }
                let logs = records
                    .into_iter()
                    .map(|r| LogItem {
                        from: Some(r.from),
                        data: Some(r.data),
                        timestamp: Some(r.timestamp),
                        msg_id: Some(r.msg_id),
                        bin: r.binary.then_some(true),
                        mention_all: r.mention_all.then_some(true),
                        mention_pids: r.mention_pids,
                        patch_timestamp: r.patch_timestamp,
                        ..Default::default()
                    })
                    .collect();
                self.out.push(GenericCommand {
                    logs_message: Some(LogsCommand {
                        logs,
                        ..Default::default()
                    }),
                    ..reply_to(&req, CommandType::Logs, None)
                });
            }
            Err(e) => self.out.push(store_error(&req, e)),
        }
    }
}
