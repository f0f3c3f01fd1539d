//! One WebSocket connection: its read/write loop (frame and rate limits, idle timeout, slow-consumer
//! disconnect, drain), the sessions opened on it, and the dispatch of each command to its handler — in
//! `session.rs`, `conversations.rs` and `messages.rs` — which answers with the reply the SDK waits for
//! (`realtime-protocol.md` §3, §8.9) or an `error` with LeanCloud's code.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use tokio::sync::{mpsc, Notify};

use super::frame::{self, Encoded, Subprotocol};
use super::replies::{refusal, reply_to};
use crate::hooks::close_code;
use crate::protocol::Reason;
use crate::realtime::hub::Outbound;
use crate::realtime::proto::{CommandType, GenericCommand, OpType, SessionCommand};
use crate::realtime::pushes::stored_push;
use crate::state::AppState;
use crate::store::messages::{MessageKind, NewMessage};

/// Consecutive refused commands (malformed, over the rate) before the connection is closed.
const MAX_STRIKES: u32 = 50;
/// Token bucket for the per-connection command rate.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    at: Instant,
}

impl Bucket {
    fn new(per_second: u32) -> Bucket {
        let rate = f64::from(per_second.max(1));
        Bucket {
            tokens: rate * 2.0,
            rate,
            burst: rate * 2.0,
            at: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
pub(super) struct Session {
    /// The newest broadcast handed to this session (so one is never given twice).
    pub(super) broadcast_cursor: i64,
    pub(super) tag: Option<String>,
    /// The session's will message (`{will: true}`), sent if the connection ends without a `session/close`.
    pub(super) will: Option<NewMessage>,
    /// The device (`_Installation` id) the client was bound to at login or by `report/upload`.
    pub(super) installation: Option<String>,
}

/// Why the loop ends; sent as the close frame's reason.
struct Closing {
    code: u16,
    reason: &'static str,
}

pub(super) struct Conn {
    pub(super) id: u64,
    pub(super) state: AppState,
    pub(super) proto: Subprotocol,
    pub(super) sessions: HashMap<Arc<str>, Session>,
    pub(super) tx: mpsc::Sender<Outbound>,
    pub(super) overflow: Arc<Notify>,
    bucket: Bucket,
    pub(super) strikes: u32,
    /// Frames to write, in order: replies and pushes made while handling one command.
    pub(super) out: Vec<GenericCommand>,
    /// The client's address, for hooks (`sourceIP`).
    pub(super) ip: Option<String>,
}

pub(super) async fn run(
    state: AppState,
    mut socket: WebSocket,
    proto: Subprotocol,
    peer: Option<SocketAddr>,
) {
    let realtime = state.svc.presence.clone();
    let (mut conn, mut rx) = Conn::new(state, proto, peer);
    tracing::debug!(
        conn = conn.id,
        ?peer,
        protocol = proto.name(),
        "realtime: connected"
    );
    let idle = realtime.config.idle_timeout;
    let login_timeout = realtime.config.login_timeout.min(idle);
    // Without a session the connection has `login_timeout` from when it opened (or lost its last session),
    // whatever it sends; with one, any frame is activity.
    let mut sessionless_since = tokio::time::Instant::now();
    let mut deadline = sessionless_since + login_timeout;
    let mut active = false;
    let overflow = conn.overflow.clone();
    let mut drain = realtime.hub.connection_opened();
    let closing = loop {
        tokio::select! {
            biased;
            _ = overflow.notified() => break Some(Closing { code: 1008, reason: "slow consumer: too many undelivered frames" }),
            // The server is shutting down: what is queued is written, then `goaway` (the SDK reconnects through
            // the router, to another instance behind the same address) and a 1001 close.
            () = drained(&mut drain) => {
                while let Ok(item) = rx.try_recv() {
                    conn.outbound(item);
                }
                conn.out.push(GenericCommand::new(CommandType::Goaway, None));
                break Some(Closing { code: 1001, reason: "server going away" });
            }
            item = rx.recv() => {
                let Some(item) = item else { break None };
                conn.outbound(item);
            }
            received = socket.recv() => {
                active = true;
                match received {
                    // Boxed: the command handlers' state lives only while a command runs, so an idle
                    // connection's task stays small (about 10 KB less per connection).
                    Some(Ok(Message::Binary(bytes))) => Box::pin(conn.frame(&bytes, false)).await,
                    Some(Ok(Message::Text(text))) => Box::pin(conn.frame(text.as_bytes(), true)).await,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None => break None,
                    Some(Err(e)) => {
                        tracing::info!(conn = conn.id, error = %e, "realtime: read failed, closing");
                        break Some(Closing { code: 1009, reason: "unreadable or oversized frame" });
                    }
                }
                if conn.strikes > MAX_STRIKES {
                    break Some(Closing { code: 1008, reason: "too many refused commands" });
                }
            }
            _ = tokio::time::sleep_until(deadline) => break Some(if conn.sessions.is_empty() {
                Closing { code: 1008, reason: "no session opened in time" }
            } else {
                Closing { code: 1000, reason: "idle timeout" }
            }),
        }
        let now = tokio::time::Instant::now();
        if conn.sessions.is_empty() {
            deadline = sessionless_since + login_timeout;
        } else {
            sessionless_since = now;
            if std::mem::take(&mut active) {
                deadline = now + idle;
            }
        }
        // A client that stops reading blocks the write; the hub's overflow signal still ends it.
        tokio::select! {
            written = conn.flush(&mut socket) => if !written { break None },
            _ = overflow.notified() => break Some(Closing { code: 1008, reason: "slow consumer: too many undelivered frames" }),
        }
    };
    // A connection that ends while its sessions are open (the client vanished, went silent, or stopped reading)
    // sends their will messages; one the server ends for shutdown does not: its client reconnects elsewhere.
    let vanished = !matches!(closing, Some(Closing { code: 1001, .. }));
    if let Some(Closing { code, reason }) = closing {
        tracing::info!(conn = conn.id, code, reason, "realtime: closing connection");
        // Bounded: a client that does not read gets at most a second to take the close frame.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            if code != 1008 {
                let _ = conn.flush(&mut socket).await;
            }
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                })))
                .await;
        })
        .await;
    }
    conn.close_all(vanished).await;
    // The connection counts as open until here, where its drain signal is dropped.
    drop(drain);
}

/// Resolves once the hub drains (never, if its signal is gone).
async fn drained(drain: &mut tokio::sync::watch::Receiver<bool>) {
    if drain.wait_for(|draining| *draining).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl Conn {
    /// A connection's state, and the receiving end of its queue (what the hub hands over for its sessions).
    pub(super) fn new(
        state: AppState,
        proto: Subprotocol,
        peer: Option<SocketAddr>,
    ) -> (Conn, mpsc::Receiver<Outbound>) {
        let realtime = state.svc.presence.clone();
        let (tx, rx) = mpsc::channel(realtime.config.queue_len.max(1));
        let conn = Conn {
            id: realtime.hub.next_conn_id(),
            bucket: Bucket::new(realtime.config.commands_per_second),
            state,
            proto,
            sessions: HashMap::new(),
            tx,
            overflow: Arc::new(Notify::new()),
            strikes: 0,
            out: Vec::new(),
            ip: peer.map(|p| p.ip().to_string()),
        };
        (conn, rx)
    }

    pub(super) fn realtime(&self) -> &crate::realtime::Realtime {
        &self.state.svc.presence
    }

    /// Writes the queued frames; false when the socket is gone.
    async fn flush(&mut self, socket: &mut WebSocket) -> bool {
        // Taken, not drained: an idle connection keeps no reply buffer.
        for command in std::mem::take(&mut self.out) {
            let message = match frame::encode(&command, self.proto.base64) {
                Encoded::Binary(bytes) => Message::Binary(bytes.into()),
                Encoded::Text(text) => Message::Text(text.into()),
            };
            if let Err(e) = socket.send(message).await {
                tracing::debug!(error = %e, "realtime: a reply could not be written; closing");
                return false;
            }
        }
        true
    }

    /// Something the hub handed over for one of this connection's sessions.
    pub(super) fn outbound(&mut self, item: Outbound) {
        match item {
            Outbound::Message { peer, msg } => {
                let Some(session) = self.sessions.get_mut(&peer) else {
                    return;
                };
                if msg.kind == MessageKind::Broadcast {
                    if msg.seq <= session.broadcast_cursor {
                        return;
                    }
                    session.broadcast_cursor = msg.seq;
                }
                self.out.push(stored_push(&peer, &msg));
            }
            Outbound::Command { peer, command } => {
                if self.sessions.contains_key(&peer) {
                    self.out.push(*command);
                }
            }
            Outbound::Kick {
                peer,
                code,
                reason,
                detail,
            } => {
                if let Some(session) = self.sessions.remove(&peer) {
                    let close = if code == crate::protocol::codes::KICKED_BY_APP as i32 {
                        close_code::KICKED_BY_API
                    } else {
                        close_code::TAG_CONFLICT
                    };
                    self.offline_hook(&peer, &session.tag, close, reason);
                    self.out.push(GenericCommand {
                        peer_id: Some(peer.to_string()),
                        session_message: Some(SessionCommand {
                            code: Some(code),
                            reason: Some(reason.to_string()),
                            detail: detail.map(|d| d.to_string()),
                            ..Default::default()
                        }),
                        ..GenericCommand::new(CommandType::Session, Some(OpType::Closed))
                    });
                }
            }
        }
    }

    pub(super) async fn frame(&mut self, payload: &[u8], text: bool) {
        if !self.bucket.take() {
            self.strikes += 1;
            let req = GenericCommand::default();
            self.out.push(refusal(
                &req,
                Reason::TooManyCommands,
                Some(format!(
                    "at most {} commands per second per connection",
                    self.realtime().config.commands_per_second
                )),
            ));
            return;
        }
        // A base64 client may still send binary frames, and the other way round; the payload says which.
        let base64 = text || (self.proto.base64 && payload.iter().all(u8::is_ascii));
        let req = match frame::decode(payload, base64) {
            Ok(req) => req,
            Err(e) => {
                self.strikes += 1;
                tracing::info!(conn = self.id, error = %e, "realtime: malformed frame");
                self.out.push(refusal(
                    &GenericCommand::default(),
                    Reason::MalformedCommand,
                    Some(e.to_string()),
                ));
                return;
            }
        };
        self.strikes = 0;
        self.command(req).await;
    }

    async fn command(&mut self, req: GenericCommand) {
        let metrics = &self.state.svc.metrics;
        if metrics.enabled() {
            metrics.command(
                &protocol_name(req.command(), "unknown"),
                &protocol_name(req.operation(), "none"),
            );
        }
        match (req.command(), req.operation()) {
            (Some(CommandType::Session), Some(OpType::Open)) => self.open(req).await,
            (Some(CommandType::Session), Some(OpType::Close)) => self.close(req).await,
            (Some(CommandType::Session), Some(OpType::Refresh)) => self.refresh(req),
            (Some(CommandType::Echo), _) => self.out.push(reply_to(&req, CommandType::Echo, None)),
            (Some(CommandType::Report), Some(OpType::Upload)) => self.report(req).await,
            (Some(CommandType::Conv), Some(OpType::Start)) => self.start(req).await,
            (Some(CommandType::Conv), Some(op @ (OpType::Add | OpType::Remove))) => {
                self.members(req, op == OpType::Add).await
            }
            (Some(CommandType::Conv), Some(OpType::Query)) => self.query(req).await,
            (Some(CommandType::Conv), Some(OpType::Update)) => self.update(req).await,
            (Some(CommandType::Conv), Some(OpType::MaxRead)) => self.max_read(req).await,
            (Some(CommandType::Conv), Some(OpType::Count)) => self.count(req).await,
            (Some(CommandType::Conv), Some(op @ (OpType::Mute | OpType::Unmute))) => {
                self.mute(req, op == OpType::Mute).await
            }
            (Some(CommandType::Conv), Some(OpType::MemberInfoUpdate)) => {
                self.member_info_update(req).await
            }
            (Some(CommandType::Conv), Some(op @ (OpType::AddShutup | OpType::RemoveShutup))) => {
                self.shutup(req, op == OpType::AddShutup).await
            }
            (Some(CommandType::Conv), Some(OpType::QueryShutup)) => self.query_shutup(req).await,
            (Some(CommandType::Blacklist), _) => self.blacklist(req).await,
            (Some(CommandType::Session), Some(OpType::Query)) => self.presence_query(req),
            (Some(CommandType::Patch), Some(OpType::Modify)) => self.patch(req).await,
            (Some(CommandType::Direct), _) => self.send(req).await,
            (Some(CommandType::Ack), _) => self.ack(req).await,
            (Some(CommandType::Logs), _) => self.logs(req).await,
            (Some(CommandType::Read), _) => self.read(req).await,
            (cmd, op) => {
                let detail = format!(
                    "cmd {:?} op {:?} is not supported by this server",
                    req.cmd, req.op
                );
                tracing::debug!(conn = self.id, ?cmd, ?op, "realtime: unsupported command");
                // Pushes from a client (no `i`) need no answer; anything else gets an error so it fails fast.
                if req.i.is_some() {
                    self.out
                        .push(refusal(&req, Reason::UnsupportedCommand, Some(detail)));
                }
            }
        }
    }

    /// The session a command is for: its `peerId`, or the connection's only session.
    pub(super) fn session_of(&mut self, req: &GenericCommand) -> Option<Arc<str>> {
        let found = match req.peer_id.as_deref() {
            Some(peer) => self.sessions.get_key_value(peer).map(|(k, _)| k.clone()),
            None if self.sessions.len() == 1 => self.sessions.keys().next().cloned(),
            None => None,
        };
        if found.is_none() {
            self.strikes += 1;
            if req.i.is_some() {
                self.out.push(refusal(
                    req,
                    Reason::SessionNotOpened,
                    Some("open a session for this client id on this connection first".into()),
                ));
            }
        }
        found
    }
}

/// A command's or operation's name as the protocol spells it (`MemberInfoUpdate` → `member_info_update`), for the
/// metrics' bounded labels; `none` when absent.
fn protocol_name<T: std::fmt::Debug>(value: Option<T>, none: &str) -> String {
    let Some(value) = value else {
        return none.to_string();
    };
    let mut out = String::new();
    for (i, c) in format!("{value:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}
