//! The session commands: `session/open` (login by signature or session token, tag takeover, what the
//! client missed while offline), `session/close`, `session/refresh`, and the end of a session when its
//! connection goes.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::json;

use super::connection::{Conn, Session};
use super::replies::{now_ms, refusal, reply_to};
use crate::domain::messaging::{self, Origin};
use crate::domain::{installations, patches};
use crate::hooks::close_code;
use crate::protocol::limits::{
    MAX_SESSIONS_PER_CLIENT, MAX_SESSIONS_PER_CONNECTION, OFFLINE_PUSH_TOTAL, UNREAD_FRAME_BUDGET,
};
use crate::protocol::{Hook, Reason};
use crate::realtime::hub::{Outbound, SessionRef};
use crate::realtime::proto::{
    CommandType, GenericCommand, OpType, SessionCommand, UnreadCommand, UnreadTuple,
};
use crate::realtime::pushes::{self, pending_push};
use crate::realtime::signature::{self, Signed};
use crate::store::objects;
use crate::store::realtime as positions;

/// Offline messages pushed per conversation at a protocol-1 login.
const OFFLINE_PUSH_LIMIT: usize = 100;
/// Client ids one `session/query` asks about at most (LeanCloud: 20; the rest are ignored).
const MAX_PRESENCE_QUERY: usize = 20;

/// A client id for an anonymous login: 22 random letters and digits.
fn anonymous_id() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 22)
}

impl Conn {
    /// A new session token for `peer`, always with its lifetime (an `st` without `stTtl` expires at once
    /// in the SDK).
    pub(super) fn session_token(&self, peer: &str) -> SessionCommand {
        let ttl = self.realtime().config.session_ttl.as_secs();
        SessionCommand {
            st: Some(self.realtime().issue_token(peer)),
            st_ttl: Some(ttl.min(i32::MAX as u64) as i32),
            ..Default::default()
        }
    }

    pub(super) fn signature_ok(
        &self,
        what: Signed<'_>,
        t: Option<i64>,
        n: Option<&str>,
        s: Option<&str>,
    ) -> bool {
        let realtime = self.realtime();
        !realtime.config.require_signatures
            || signature::verify_fresh(
                &self.state.credentials.master_key,
                &self.state.credentials.app_id,
                what,
                t,
                n,
                s,
                realtime.config.signature_max_age,
                &realtime.seen_signatures,
            )
    }

    pub(super) async fn open(&mut self, req: GenericCommand) {
        let app_id = &self.state.credentials.app_id;
        if req.app_id.as_deref().is_some_and(|a| a != app_id) {
            self.out.push(refusal(&req, Reason::AppNotAvailable, None));
            return;
        }
        let sm = req.session_message.clone().unwrap_or_default();
        // Anonymous login: no `peerId` (and no session token to resume one): the server picks the id, which
        // `opened` carries back.
        let peer = match req.peer_id.clone().filter(|p| !p.is_empty()) {
            Some(peer) => peer,
            None if sm.st.is_none() => anonymous_id(),
            None => String::new(),
        };
        if peer.is_empty() || peer.len() > 64 {
            self.out.push(refusal(
                &req,
                Reason::InvalidLogin,
                Some("peerId must be 1 to 64 characters".into()),
            ));
            return;
        }
        if self.sessions.len() >= MAX_SESSIONS_PER_CONNECTION
            && !self.sessions.contains_key(peer.as_str())
        {
            self.strikes += 1;
            self.out.push(refusal(
                &req,
                Reason::TooManySessions,
                Some(format!(
                    "at most {MAX_SESSIONS_PER_CONNECTION} sessions per connection: close one first"
                )),
            ));
            return;
        }
        match sm.st.as_deref() {
            Some(st) if self.realtime().token_valid(st, &peer) => {}
            Some(_) => {
                self.out
                    .push(refusal(&req, Reason::SessionTokenExpired, None));
                return;
            }
            None => {
                if !self.signature_ok(
                    Signed::Login { client: &peer },
                    sm.t,
                    sm.n.as_deref(),
                    sm.s.as_deref(),
                ) {
                    tracing::info!(conn = self.id, peer, "realtime: login signature refused");
                    self.out.push(refusal(&req, Reason::SignatureFailed, None));
                    return;
                }
            }
        }
        // Counted only once the login is authenticated: a caller without the client's signature or token
        // cannot use up its logins.
        if let Err(wait) = self.realtime().logins.take(&peer) {
            self.out.push(refusal(
                &req,
                Reason::TooManyLogins,
                Some(format!(
                    "this client id logs in too often: retry in {} s",
                    wait.as_secs().max(1)
                )),
            ));
            return;
        }
        let peer: Arc<str> = Arc::from(peer.as_str());
        let tag = sm
            .tag
            .clone()
            .filter(|t| !t.is_empty() && sm.r != Some(true));
        let registered = self.realtime().register(SessionRef {
            conn: self.id,
            peer: peer.clone(),
            tag: tag.clone(),
            tx: self.tx.clone(),
            overflow: self.overflow.clone(),
        });
        let Some(kicked) = registered else {
            self.out.push(refusal(
                &req,
                Reason::TooManySessions,
                Some(format!(
                    "at most {MAX_SESSIONS_PER_CLIENT} sessions per client id on one server"
                )),
            ));
            return;
        };
        if let Some(tag) = &tag {
            self.realtime().took_over(&peer, tag);
        }
        for other in kicked {
            let _ = other.tx.try_send(Outbound::Kick {
                peer: other.peer.clone(),
                code: Reason::SessionConflict.code() as i32,
                reason: Reason::SessionConflict.name(),
                detail: None,
            });
        }
        let device = installations::login_device(
            sm.device_token.as_deref(),
            sm.device_id.as_deref(),
            sm.config_bitmap,
        );
        let installation = match device {
            Some(device) => self.bind(&peer, &device).await,
            None => None,
        };
        self.sessions.insert(
            peer.clone(),
            Session {
                broadcast_cursor: 0,
                tag: sm.tag.clone(),
                will: None,
                installation,
            },
        );
        self.state.svc.hooks.after(
            Hook::ClientOnline,
            json!({"peerId": &*peer, "sourceIP": &self.ip, "tag": &sm.tag, "reconnect": sm.r == Some(true)}),
            None,
        );
        let now = now_ms();
        self.out.push(GenericCommand {
            server_ts: Some(now),
            peer_id: Some(peer.to_string()),
            session_message: Some(self.session_token(&peer)),
            ..reply_to(&req, CommandType::Session, Some(OpType::Opened))
        });
        self.after_login(&peer, now, sm.last_patch_time).await;
    }

    /// Binds `peer` to `device` (a unique device key); the device's id, or `None` when it was never saved (or
    /// the store failed: the login goes on without push).
    async fn bind(&self, peer: &str, device: &str) -> Option<String> {
        match installations::bind(&self.state.svc, peer, device).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(peer = %peer, error = %e, "realtime: binding the device failed");
                None
            }
        }
    }

    /// `report/upload` (`type: "token"`): the iOS SDKs' new device token; the client is bound to that device
    /// instead of the one it logged in with. Answered `uploaded` whatever was reported.
    pub(super) async fn report(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let report = req.report_message.clone().unwrap_or_default();
        if report.r#type.as_deref() == Some("token") {
            let device = objects::device_key(report.data.as_deref(), None);
            if let Some(device) = device {
                if let Some(id) = self.bind(&peer, &device).await {
                    // The token replaces the one the client logged in with: the old device row is unbound.
                    let before = self
                        .sessions
                        .get_mut(&peer)
                        .and_then(|s| s.installation.replace(id.clone()));
                    if let Some(old) = before.filter(|old| *old != id) {
                        if let Err(e) = installations::unbind(&self.state.svc, &peer, &old).await {
                            tracing::warn!(peer = %peer, error = %e, "realtime: unbinding the old device failed");
                        }
                    }
                }
            }
        }
        self.out
            .push(reply_to(&req, CommandType::Report, Some(OpType::Uploaded)));
    }

    /// `session/query` (`client.ping(ids)`): which of the given client ids are online, here or on another
    /// instance, answered as `query_result` with `onlineSessionPeerIds`.
    pub(super) fn presence_query(&mut self, req: GenericCommand) {
        if self.session_of(&req).is_none() {
            return;
        }
        let asked = req
            .session_message
            .as_ref()
            .map(|s| s.session_peer_ids.clone())
            .unwrap_or_default();
        let online = asked
            .into_iter()
            .take(MAX_PRESENCE_QUERY)
            .filter(|p| self.realtime().is_online(p))
            .collect();
        self.out.push(GenericCommand {
            session_message: Some(SessionCommand {
                online_session_peer_ids: online,
                ..Default::default()
            }),
            ..reply_to(&req, CommandType::Session, Some(OpType::QueryResult))
        });
    }

    /// What a client missed: unread counts (v3) or the messages themselves (v1), then broadcasts, then the
    /// edits and recalls after the `lastPatchTime` it sent (one `patch` push).
    pub(super) async fn after_login(
        &mut self,
        peer: &Arc<str>,
        now: i64,
        last_patch_time: Option<i64>,
    ) {
        let db = self.state.svc.db.clone();
        if self.proto.version >= 3 {
            match positions::unread(&db, peer.to_string()).await {
                Ok(unread) if !unread.is_empty() => {
                    let convs = unread
                        .into_iter()
                        .map(|u| {
                            let mut t = UnreadTuple {
                                cid: u.conv_id,
                                unread: u.count.min(i64::from(i32::MAX)) as i32,
                                mentioned: u.mentioned.then_some(true),
                                ..Default::default()
                            };
                            if let Some(last) = u.last {
                                t.mid = Some(last.msg_id);
                                t.timestamp = Some(last.timestamp);
                                t.from = Some(last.from);
                                if last.binary {
                                    t.binary_msg = base64::engine::general_purpose::STANDARD
                                        .decode(&last.data)
                                        .ok();
                                } else {
                                    t.data = Some(last.data);
                                }
                            }
                            t
                        })
                        .collect();
                    for convs in unread_chunks(convs, UNREAD_FRAME_BUDGET) {
                        self.out.push(GenericCommand {
                            peer_id: Some(peer.to_string()),
                            unread_message: Some(UnreadCommand {
                                convs,
                                notif_time: Some(now),
                            }),
                            ..GenericCommand::new(CommandType::Unread, None)
                        });
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "realtime: unread counts failed"),
            }
        } else {
            match positions::undelivered(&db, peer.to_string(), OFFLINE_PUSH_LIMIT).await {
                Ok(pending) => self.out.extend(
                    pending
                        .iter()
                        .take(OFFLINE_PUSH_TOTAL)
                        .map(|p| pending_push(peer, p, true)),
                ),
                Err(e) => tracing::error!(error = %e, "realtime: offline messages failed"),
            }
        }
        match positions::pending_broadcasts(&db, peer.to_string(), now).await {
            Ok((pending, newest)) => {
                if let Some(s) = self.sessions.get_mut(peer) {
                    s.broadcast_cursor = s.broadcast_cursor.max(newest);
                }
                self.out.extend(
                    pending
                        .iter()
                        .map(|p| pending_push(peer, p, self.proto.version < 3)),
                );
                if let Err(e) = positions::set_broadcast_cursor(&db, peer.to_string(), newest).await
                {
                    tracing::error!(error = %e, "realtime: broadcast cursor not saved");
                }
            }
            Err(e) => tracing::error!(error = %e, "realtime: pending broadcasts failed"),
        }
        if let Some(since) = last_patch_time {
            match patches::missed(&self.state.svc, peer, since).await {
                Ok(missed) if !missed.is_empty() => {
                    let list: Vec<_> = missed.iter().map(patches::as_patch).collect();
                    self.out.push(pushes::patches(peer, &list));
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "realtime: missed patches failed"),
            }
        }
    }

    pub(super) fn offline_hook(&self, peer: &str, tag: &Option<String>, code: i64, msg: &str) {
        self.state.svc.hooks.after(
            Hook::ClientOffline,
            json!({"peerId": peer, "closeCode": code, "closeMsg": msg, "sourceIP": &self.ip, "tag": tag}),
            None,
        );
    }

    pub(super) async fn end_session(&mut self, peer: &Arc<str>, code: i64, msg: &str) {
        if let Some(session) = self.sessions.remove(peer) {
            self.offline_hook(peer, &session.tag, code, msg);
            self.realtime().unregister(self.id, peer);
            if session.broadcast_cursor > 0 {
                let _ = positions::set_broadcast_cursor(
                    &self.state.svc.db,
                    peer.to_string(),
                    session.broadcast_cursor,
                )
                .await;
            }
        }
    }

    /// Ends every session of a connection that is closing; with `send_wills`, each one's will message goes to its
    /// conversation as an ordinary message of that client (stored, delivered, pushed to the offline).
    pub(super) async fn close_all(&mut self, send_wills: bool) {
        let peers: Vec<Arc<str>> = self.sessions.keys().cloned().collect();
        for peer in peers {
            let will = self.sessions.get_mut(&peer).and_then(|s| s.will.take());
            self.end_session(&peer, close_code::DISCONNECT, "disconnected")
                .await;
            if let (Some(will), true) = (will, send_wills) {
                let (conv, ip) = (will.conv_id.clone(), self.ip.clone());
                if let Err(e) = messaging::send(&self.state.svc, will, Origin::Client, ip).await {
                    tracing::warn!(conv = %conv, peer = %peer, error = ?e, "realtime: a will message was not sent");
                }
            }
        }
    }

    pub(super) async fn close(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        // A logout: the device stops getting this client's pushes.
        let bound = self
            .sessions
            .get(&peer)
            .and_then(|s| s.installation.clone());
        if let Some(id) = bound {
            if let Err(e) = installations::unbind(&self.state.svc, &peer, &id).await {
                tracing::warn!(peer = %peer, error = %e, "realtime: unbinding the device failed");
            }
        }
        self.end_session(&peer, close_code::LOGOUT, "logout").await;
        self.out
            .push(reply_to(&req, CommandType::Session, Some(OpType::Closed)));
    }

    pub(super) fn refresh(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        self.out.push(GenericCommand {
            session_message: Some(self.session_token(&peer)),
            ..reply_to(&req, CommandType::Session, Some(OpType::Refreshed))
        });
    }
}

/// `convs` in groups of at most `budget` encoded bytes each (a conversation bigger than that alone in its group),
/// in order: the `unread` notifications of one login.
fn unread_chunks(convs: Vec<UnreadTuple>, budget: usize) -> Vec<Vec<UnreadTuple>> {
    use prost::Message as _;
    let mut chunks: Vec<Vec<UnreadTuple>> = Vec::new();
    let mut size = 0;
    for t in convs {
        let len = t.encoded_len();
        match chunks.last_mut() {
            Some(chunk) if size + len <= budget => {
                chunk.push(t);
                size += len;
            }
            _ => {
                chunks.push(vec![t]);
                size = len;
            }
        }
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unread_tuples_are_grouped_under_the_byte_budget_in_order() {
        let tuple = |cid: &str, bytes: usize| UnreadTuple {
            cid: cid.into(),
            unread: 1,
            data: Some("x".repeat(bytes)),
            ..Default::default()
        };
        let convs: Vec<UnreadTuple> = (0..70).map(|i| tuple(&format!("c{i:02}"), 5000)).collect();
        let chunks = unread_chunks(convs, UNREAD_FRAME_BUDGET);
        use prost::Message as _;
        for chunk in &chunks {
            let bytes: usize = chunk.iter().map(|t| t.encoded_len()).sum();
            assert!(bytes <= UNREAD_FRAME_BUDGET, "{bytes}");
        }
        let cids: Vec<String> = chunks.iter().flatten().map(|t| t.cid.clone()).collect();
        let expected: Vec<String> = (0..70).map(|i| format!("c{i:02}")).collect();
        assert_eq!(expected, cids);
        assert_eq!(12, chunks.len(), "6 tuples of ~5 KB per 32 KB notification");
        // One conversation over the budget goes alone; nothing is dropped.
        let big = unread_chunks(
            vec![tuple("a", 10), tuple("b", 40_000), tuple("c", 10)],
            1000,
        );
        let sizes: Vec<usize> = big.iter().map(Vec::len).collect();
        assert_eq!(vec![1, 1, 1], sizes);
        assert!(unread_chunks(Vec::new(), 1000).is_empty());
    }
}
