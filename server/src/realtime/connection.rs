//! One WebSocket connection: its read/write loop (frame and rate limits, idle timeout, slow-consumer
//! disconnect), the sessions opened on it, and the client commands, each answered with the reply the SDK
//! waits for (`realtime-protocol.md` §3, §8.9) or an `error` with LeanCloud's code. Every command works
//! through the store functions the REST routes use.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, Notify};

use crate::codes;
use crate::hooks::{close_code, Refusal};
use crate::messaging::{self, Origin, SendError};
use crate::realtime::frame::{self, Encoded, Subprotocol};
use crate::realtime::hub::{Outbound, SessionRef};
use crate::realtime::proto::{
    AckCommand, CommandType, ConvCommand, DirectCommand, ErrorCommand, GenericCommand,
    JsonObjectMessage, LogItem, LogsCommand, OpType, QueryDirection, SessionCommand, UnreadCommand,
    UnreadTuple,
};
use crate::realtime::signature::{self, Signed};
use crate::state::AppState;
use crate::store::messages::{self, HistoryQuery, HistoryScope, MessageKind, NewMessage, Stored};
use crate::store::objects::{self, QueryParams, CONVERSATION};
use crate::store::query::parse_order;
use crate::store::realtime::{self as positions, Pending, Position};
use crate::store::{Caller, StoreError};

/// A message's size limit, push data included (as over REST).
const MAX_MESSAGE_BYTES: usize = 5 * 1024;
/// `logs` without a limit returns this many (the SDK's documented default); at most `MAX_LOGS`.
const DEFAULT_LOGS: usize = 20;
const MAX_LOGS: usize = 1000;
/// Offline messages pushed per conversation at a protocol-1 login.
const OFFLINE_PUSH_LIMIT: usize = 100;
/// Consecutive refused commands (malformed, over the rate) before the connection is closed.
const MAX_STRIKES: u32 = 50;
/// Conversation fields the server owns; a client's `attr` may not set them.
const RESERVED_ATTRS: [&str; 12] = [
    "objectId",
    "createdAt",
    "updatedAt",
    "ACL",
    "c",
    "m",
    "mu",
    "tr",
    "sys",
    "lm",
    "unique",
    "uniqueId",
];

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

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
struct Session {
    /// The newest broadcast handed to this session (so one is never given twice).
    broadcast_cursor: i64,
    tag: Option<String>,
}

/// Why the loop ends; sent as the close frame's reason.
struct Closing {
    code: u16,
    reason: &'static str,
}

struct Conn {
    id: u64,
    state: AppState,
    proto: Subprotocol,
    sessions: HashMap<Arc<str>, Session>,
    tx: mpsc::Sender<Outbound>,
    overflow: Arc<Notify>,
    bucket: Bucket,
    strikes: u32,
    /// Frames to write, in order: replies and pushes made while handling one command.
    out: Vec<GenericCommand>,
    /// The client's address, for hooks (`sourceIP`).
    ip: Option<String>,
}

pub(super) async fn run(
    state: AppState,
    mut socket: WebSocket,
    proto: Subprotocol,
    peer: Option<SocketAddr>,
) {
    let realtime = state.realtime.clone();
    let (tx, mut rx) = mpsc::channel(realtime.config.queue_len.max(1));
    let mut conn = Conn {
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
    tracing::debug!(
        conn = conn.id,
        ?peer,
        protocol = proto.name(),
        "realtime: connected"
    );
    let idle = realtime.config.idle_timeout;
    let mut deadline = tokio::time::Instant::now() + idle;
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
                deadline = tokio::time::Instant::now() + idle;
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
            _ = tokio::time::sleep_until(deadline) => break Some(Closing { code: 1000, reason: "idle timeout" }),
        }
        // A client that stops reading blocks the write; the hub's overflow signal still ends it.
        tokio::select! {
            written = conn.flush(&mut socket) => if !written { break None },
            _ = overflow.notified() => break Some(Closing { code: 1008, reason: "slow consumer: too many undelivered frames" }),
        }
    };
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
    conn.close_all().await;
    // The connection counts as open until here, where its drain signal is dropped.
    drop(drain);
}

/// Resolves once the hub drains (never, if its signal is gone).
async fn drained(drain: &mut tokio::sync::watch::Receiver<bool>) {
    if drain.wait_for(|draining| *draining).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn reply_to(req: &GenericCommand, cmd: CommandType, op: Option<OpType>) -> GenericCommand {
    GenericCommand {
        i: req.i,
        peer_id: req.peer_id.clone(),
        ..GenericCommand::new(cmd, op)
    }
}

fn error_reply(
    req: &GenericCommand,
    code: i64,
    reason: &str,
    detail: Option<String>,
) -> GenericCommand {
    GenericCommand {
        error_message: Some(ErrorCommand {
            code: code as i32,
            reason: reason.to_string(),
            detail,
            ..Default::default()
        }),
        ..reply_to(req, CommandType::Error, None)
    }
}

/// The reason text LeanCloud uses with a store error's code.
fn store_reason(err: &StoreError) -> &'static str {
    match err {
        StoreError::ConversationNotFound => "CONVERSATION_NOT_FOUND",
        StoreError::InvalidMessagingTarget => "INVALID_MESSAGING_TARGET",
        StoreError::SystemConversationRequired => "SYSTEM_CONVERSATION_REQUIRED",
        e if e.is_internal() => "INTERNAL_ERROR",
        _ => "CONVERSATION_API_FAILED",
    }
}

fn store_error(req: &GenericCommand, err: StoreError) -> GenericCommand {
    if err.is_internal() {
        tracing::error!(error = %err, "realtime: store failed");
        return error_reply(req, codes::INTERNAL, "INTERNAL_ERROR", None);
    }
    let code = match err {
        StoreError::ConversationNotFound
        | StoreError::InvalidMessagingTarget
        | StoreError::SystemConversationRequired => err.code(),
        _ => codes::CONVERSATION_API_FAILED,
    };
    error_reply(req, code, store_reason(&err), Some(err.to_string()))
}

/// A conversation change refused by the app's hook: `4305 CONVERSATION_REJECTED_BY_APP` with the hook's
/// own code as `appCode`.
fn rejected_by_app(req: &GenericCommand, refusal: Refusal) -> GenericCommand {
    let mut reply = error_reply(
        req,
        codes::CONVERSATION_REJECTED_BY_APP,
        "CONVERSATION_REJECTED_BY_APP",
        refusal.detail,
    );
    if let Some(e) = reply.error_message.as_mut() {
        e.app_code = refusal.app_code.map(|c| c as i32);
    }
    reply
}

/// A stored message as the `direct` push the SDK reads (§3.2).
fn direct_push(
    peer: &str,
    msg_id: &str,
    conv: &str,
    from: &str,
    ts: i64,
    data: &str,
    binary: bool,
) -> GenericCommand {
    let mut dm = DirectCommand {
        from_peer_id: Some(from.to_string()),
        timestamp: Some(ts),
        cid: Some(conv.to_string()),
        id: Some(msg_id.to_string()),
        ..Default::default()
    };
    if binary {
        dm.binary_msg = Some(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap_or_default(),
        );
    } else {
        dm.msg = Some(data.to_string());
    }
    GenericCommand {
        peer_id: Some(peer.to_string()),
        direct_message: Some(dm),
        ..GenericCommand::new(CommandType::Direct, None)
    }
}

fn stored_push(peer: &str, msg: &Stored) -> GenericCommand {
    let mut cmd = direct_push(
        peer,
        &msg.msg_id,
        &msg.conv_id,
        &msg.from,
        msg.timestamp,
        &msg.data,
        msg.binary,
    );
    if let Some(dm) = cmd.direct_message.as_mut() {
        dm.transient = msg.transient.then_some(true);
        dm.mention_pids = msg.mention_pids.clone();
        dm.mention_all = msg.mention_all.then_some(true);
    }
    cmd
}

fn pending_push(peer: &str, p: &Pending, offline: bool) -> GenericCommand {
    let mut cmd = direct_push(
        peer,
        &p.msg_id,
        &p.conv_id,
        &p.from,
        p.timestamp,
        &p.data,
        p.binary,
    );
    if let Some(dm) = cmd.direct_message.as_mut() {
        dm.offline = offline.then_some(true);
    }
    cmd
}

fn conv_push(peer: &str, op: OpType, conv: ConvCommand) -> GenericCommand {
    GenericCommand {
        peer_id: Some(peer.to_string()),
        conv_message: Some(conv),
        ..GenericCommand::new(CommandType::Conv, Some(op))
    }
}

/// A JSON object from a `JsonObjectMessage`; absent is `{}`.
fn json_object(msg: Option<&JsonObjectMessage>) -> Result<Map<String, Value>, String> {
    match msg.map(|m| m.data.trim()).filter(|d| !d.is_empty()) {
        None => Ok(Map::new()),
        Some(data) => match serde_json::from_str::<Value>(data) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err("expected a JSON object".to_string()),
        },
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn dedup(ids: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.iter()
        .filter(|id| !id.is_empty() && seen.insert(id.as_str()))
        .cloned()
        .collect()
}

impl Conn {
    fn realtime(&self) -> &crate::realtime::Realtime {
        &self.state.realtime
    }

    /// Writes the queued frames; false when the socket is gone.
    async fn flush(&mut self, socket: &mut WebSocket) -> bool {
        // Taken, not drained: an idle connection keeps no reply buffer.
        for command in std::mem::take(&mut self.out) {
            let message = match frame::encode(&command, self.proto.base64) {
                Encoded::Binary(bytes) => Message::Binary(bytes.into()),
                Encoded::Text(text) => Message::Text(text.into()),
            };
            if socket.send(message).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Something the hub handed over for one of this connection's sessions.
    fn outbound(&mut self, item: Outbound) {
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
            Outbound::Kick { peer, code, reason } => {
                if let Some(session) = self.sessions.remove(&peer) {
                    self.offline_hook(&peer, &session.tag, close_code::TAG_CONFLICT, reason);
                    self.out.push(GenericCommand {
                        peer_id: Some(peer.to_string()),
                        session_message: Some(SessionCommand {
                            code: Some(code),
                            reason: Some(reason.to_string()),
                            ..Default::default()
                        }),
                        ..GenericCommand::new(CommandType::Session, Some(OpType::Closed))
                    });
                }
            }
        }
    }

    async fn frame(&mut self, payload: &[u8], text: bool) {
        if !self.bucket.take() {
            self.strikes += 1;
            let req = GenericCommand::default();
            self.out.push(error_reply(
                &req,
                codes::TOO_MANY_REQUESTS,
                "TOO_MANY_COMMANDS",
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
                self.out.push(error_reply(
                    &GenericCommand::default(),
                    codes::INTERNAL,
                    "MALFORMED_COMMAND",
                    Some(e.to_string()),
                ));
                return;
            }
        };
        self.strikes = 0;
        self.command(req).await;
    }

    async fn command(&mut self, req: GenericCommand) {
        match (req.command(), req.operation()) {
            (Some(CommandType::Session), Some(OpType::Open)) => self.open(req).await,
            (Some(CommandType::Session), Some(OpType::Close)) => self.close(req).await,
            (Some(CommandType::Session), Some(OpType::Refresh)) => self.refresh(req),
            (Some(CommandType::Echo), _) => self.out.push(reply_to(&req, CommandType::Echo, None)),
            (Some(CommandType::Conv), Some(OpType::Start)) => self.start(req).await,
            (Some(CommandType::Conv), Some(op @ (OpType::Add | OpType::Remove))) => {
                self.members(req, op == OpType::Add).await
            }
            (Some(CommandType::Conv), Some(OpType::Query)) => self.query(req).await,
            (Some(CommandType::Conv), Some(OpType::Update)) => self.update(req).await,
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
                    self.out.push(error_reply(
                        &req,
                        codes::INTERNAL,
                        "UNSUPPORTED_COMMAND",
                        Some(detail),
                    ));
                }
            }
        }
    }

    /// The session a command is for: its `peerId`, or the connection's only session.
    fn session_of(&mut self, req: &GenericCommand) -> Option<Arc<str>> {
        let found = match req.peer_id.as_deref() {
            Some(peer) => self.sessions.get_key_value(peer).map(|(k, _)| k.clone()),
            None if self.sessions.len() == 1 => self.sessions.keys().next().cloned(),
            None => None,
        };
        if found.is_none() {
            self.strikes += 1;
            if req.i.is_some() {
                self.out.push(error_reply(
                    req,
                    codes::SESSION_REQUIRED,
                    "SESSION_NOT_OPENED",
                    Some("open a session for this client id on this connection first".into()),
                ));
            }
        }
        found
    }

    /// A new session token for `peer`, always with its lifetime (an `st` without `stTtl` expires at once
    /// in the SDK).
    fn session_token(&self, peer: &str) -> SessionCommand {
        let ttl = self.realtime().config.session_ttl.as_secs();
        SessionCommand {
            st: Some(self.realtime().issue_token(peer)),
            st_ttl: Some(ttl.min(i32::MAX as u64) as i32),
            ..Default::default()
        }
    }

    fn signature_ok(
        &self,
        what: Signed<'_>,
        t: Option<i64>,
        n: Option<&str>,
        s: Option<&str>,
    ) -> bool {
        !self.realtime().config.require_signatures
            || signature::verify(
                &self.state.credentials.master_key,
                &self.state.credentials.app_id,
                what,
                t,
                n,
                s,
            )
    }

    async fn open(&mut self, req: GenericCommand) {
        let app_id = &self.state.credentials.app_id;
        if req.app_id.as_deref().is_some_and(|a| a != app_id) {
            self.out.push(error_reply(
                &req,
                codes::APP_NOT_AVAILABLE,
                "APP_NOT_AVAILABLE",
                None,
            ));
            return;
        }
        let peer = req.peer_id.clone().unwrap_or_default();
        if peer.is_empty() || peer.len() > 64 {
            self.out.push(error_reply(
                &req,
                codes::INVALID_LOGIN,
                "INVALID_LOGIN",
                Some("peerId must be 1 to 64 characters".into()),
            ));
            return;
        }
        let sm = req.session_message.clone().unwrap_or_default();
        match sm.st.as_deref() {
            Some(st) if self.realtime().token_valid(st, &peer) => {}
            Some(_) => {
                self.out.push(error_reply(
                    &req,
                    codes::SESSION_TOKEN_EXPIRED,
                    "SESSION_TOKEN_EXPIRED",
                    None,
                ));
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
                    self.out.push(error_reply(
                        &req,
                        codes::SIGNATURE_FAILED,
                        "SIGNATURE_FAILED",
                        None,
                    ));
                    return;
                }
            }
        }
        let peer: Arc<str> = Arc::from(peer.as_str());
        let tag = sm
            .tag
            .clone()
            .filter(|t| !t.is_empty() && sm.r != Some(true));
        if let Some(tag) = &tag {
            self.realtime().took_over(&peer, tag);
        }
        let kicked = self.realtime().register(SessionRef {
            conn: self.id,
            peer: peer.clone(),
            tag,
            tx: self.tx.clone(),
            overflow: self.overflow.clone(),
        });
        for other in kicked {
            let _ = other.tx.try_send(Outbound::Kick {
                peer: other.peer.clone(),
                code: codes::SESSION_CONFLICT as i32,
                reason: "SESSION_CONFLICT",
            });
        }
        self.sessions.insert(
            peer.clone(),
            Session {
                broadcast_cursor: 0,
                tag: sm.tag.clone(),
            },
        );
        self.state.hooks.after(
            "_clientOnline",
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
        self.after_login(&peer, now).await;
    }

    /// What a client missed: unread counts (v3) or the messages themselves (v1), then broadcasts.
    async fn after_login(&mut self, peer: &Arc<str>, now: i64) {
        let db = self.state.db.clone();
        if self.proto.version >= 3 {
            match positions::unread(&db, peer.to_string()).await {
                Ok(unread) if !unread.is_empty() => {
                    let convs = unread
                        .into_iter()
                        .map(|u| {
                            let mut t = UnreadTuple {
                                cid: u.conv_id,
                                unread: u.count.min(i64::from(i32::MAX)) as i32,
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
                    self.out.push(GenericCommand {
                        peer_id: Some(peer.to_string()),
                        unread_message: Some(UnreadCommand {
                            convs,
                            notif_time: Some(now),
                        }),
                        ..GenericCommand::new(CommandType::Unread, None)
                    });
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "realtime: unread counts failed"),
            }
        } else {
            match positions::undelivered(&db, peer.to_string(), OFFLINE_PUSH_LIMIT).await {
                Ok(pending) => self
                    .out
                    .extend(pending.iter().map(|p| pending_push(peer, p, true))),
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
    }

    fn offline_hook(&self, peer: &str, tag: &Option<String>, code: i64, msg: &str) {
        self.state.hooks.after(
            "_clientOffline",
            json!({"peerId": peer, "closeCode": code, "closeMsg": msg, "sourceIP": &self.ip, "tag": tag}),
            None,
        );
    }

    async fn end_session(&mut self, peer: &Arc<str>, code: i64, msg: &str) {
        if let Some(session) = self.sessions.remove(peer) {
            self.offline_hook(peer, &session.tag, code, msg);
            self.realtime().unregister(self.id, peer);
            if session.broadcast_cursor > 0 {
                let _ = positions::set_broadcast_cursor(
                    &self.state.db,
                    peer.to_string(),
                    session.broadcast_cursor,
                )
                .await;
            }
        }
    }

    async fn close_all(&mut self) {
        let peers: Vec<Arc<str>> = self.sessions.keys().cloned().collect();
        for peer in peers {
            self.end_session(&peer, close_code::DISCONNECT, "disconnected")
                .await;
        }
    }

    async fn close(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        self.end_session(&peer, close_code::LOGOUT, "logout").await;
        self.out
            .push(reply_to(&req, CommandType::Session, Some(OpType::Closed)));
    }

    fn refresh(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        self.out.push(GenericCommand {
            session_message: Some(self.session_token(&peer)),
            ..reply_to(&req, CommandType::Session, Some(OpType::Refreshed))
        });
    }

    /// Custom attributes of `conv/start` / `conv/update`, refused when they touch a field the server owns.
    fn attributes(
        &mut self,
        req: &GenericCommand,
        conv: &ConvCommand,
    ) -> Option<Map<String, Value>> {
        let attrs = match json_object(conv.attr.as_ref()) {
            Ok(attrs) => attrs,
            Err(e) => {
                self.out.push(error_reply(
                    req,
                    codes::CONVERSATION_API_FAILED,
                    "CONVERSATION_API_FAILED",
                    Some(format!("attr: {e}")),
                ));
                return None;
            }
        };
        if let Some(key) = attrs
            .keys()
            .find(|k| RESERVED_ATTRS.contains(&k.split('.').next().unwrap_or("")))
        {
            self.out.push(error_reply(
                req,
                codes::CONVERSATION_API_FAILED,
                "CONVERSATION_API_FAILED",
                Some(format!("attribute {key} is kept by the server")),
            ));
            return None;
        }
        Some(attrs)
    }

    async fn start(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let conv = req.conv_message.clone().unwrap_or_default();
        if conv.temp_conv == Some(true) {
            self.out.push(error_reply(
                &req,
                codes::CONVERSATION_API_FAILED,
                "CONVERSATION_API_FAILED",
                Some("temporary conversations are not supported by this server".into()),
            ));
            return;
        }
        let mut members = conv.m.clone();
        members.push(peer.to_string());
        let mut members = dedup(&members);
        members.sort();
        if !self.signature_ok(
            Signed::Create {
                client: &peer,
                members: &members,
            },
            conv.t,
            conv.n.as_deref(),
            conv.s.as_deref(),
        ) {
            self.out.push(error_reply(
                &req,
                codes::CONVERSATION_SIGNATURE_FAILED,
                "CONVERSATION_SIGNATURE_FAILED",
                None,
            ));
            return;
        }
        let Some(mut body) = self.attributes(&req, &conv) else {
            return;
        };
        if let Err(refusal) = self
            .state
            .hooks
            .conversation_start(Some(&peer), &members, &body)
            .await
        {
            self.out.push(rejected_by_app(&req, refusal));
            return;
        }
        body.insert("c".into(), json!(&*peer));
        body.insert("m".into(), json!(members));
        if conv.transient == Some(true) {
            body.insert("tr".into(), json!(true));
        }
        if conv.unique == Some(true) {
            body.insert("unique".into(), json!(true));
        }
        match objects::create(&self.state.db, CONVERSATION.to_string(), body, true).await {
            Ok(created) => {
                let cdate = created
                    .body
                    .get("createdAt")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.out.push(GenericCommand {
                    conv_message: Some(ConvCommand {
                        cid: Some(created.id.clone()),
                        cdate,
                        ..Default::default()
                    }),
                    ..reply_to(&req, CommandType::Conv, Some(OpType::Started))
                });
                if !created.existed {
                    self.state.hooks.conversation_changed(
                        "_conversationStarted",
                        Some(&peer),
                        &created.id,
                        &members,
                    );
                }
                if !created.existed && conv.transient != Some(true) {
                    let others: Vec<String> =
                        members.into_iter().filter(|m| **m != *peer).collect();
                    let (cid, by) = (created.id, peer.to_string());
                    self.realtime().notify(&others, |p| {
                        conv_push(
                            p,
                            OpType::Joined,
                            ConvCommand {
                                cid: Some(cid.clone()),
                                init_by: Some(by.clone()),
                                ..Default::default()
                            },
                        )
                    });
                }
            }
            Err(e) => self.out.push(store_error(&req, e)),
        }
    }

    /// A conversation as the store renders it, or an error reply when it does not exist.
    async fn conversation(
        &mut self,
        req: &GenericCommand,
        cid: Option<&str>,
    ) -> Option<(String, Map<String, Value>)> {
        let Some(cid) = cid.filter(|c| !c.is_empty()).map(str::to_owned) else {
            self.out.push(error_reply(
                req,
                codes::CONVERSATION_NOT_FOUND,
                "CONVERSATION_NOT_FOUND",
                Some("cid is required".into()),
            ));
            return None;
        };
        match objects::get(
            &self.state.db,
            Caller::Master,
            CONVERSATION.to_string(),
            cid.clone(),
            false,
        )
        .await
        {
            Ok(Some(row)) => Some((cid, row)),
            Ok(None) => {
                self.out.push(error_reply(
                    req,
                    codes::CONVERSATION_NOT_FOUND,
                    "CONVERSATION_NOT_FOUND",
                    None,
                ));
                None
            }
            Err(e) => {
                self.out.push(store_error(req, e));
                None
            }
        }
    }

    /// `conv/add` (invite, join, subscribe) and `conv/remove` (kick, quit, unsubscribe).
    async fn members(&mut self, req: GenericCommand, add: bool) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let conv = req.conv_message.clone().unwrap_or_default();
        let Some((cid, row)) = self.conversation(&req, conv.cid.as_deref()).await else {
            return;
        };
        let ids = dedup(&conv.m);
        let current = strings(row.get("m"));
        let is_member = current.iter().any(|m| **m == *peer);
        let what = if add {
            Signed::Add {
                client: &peer,
                conv: &cid,
                members: &ids,
            }
        } else {
            Signed::Remove {
                client: &peer,
                conv: &cid,
                members: &ids,
            }
        };
        if !self.signature_ok(what, conv.t, conv.n.as_deref(), conv.s.as_deref()) {
            self.out.push(error_reply(
                &req,
                codes::CONVERSATION_SIGNATURE_FAILED,
                "CONVERSATION_SIGNATURE_FAILED",
                None,
            ));
            return;
        }
        // Anyone may add or remove themselves (join, quit); only members may change others.
        let (allowed, refused): (Vec<String>, Vec<String>) =
            ids.into_iter().partition(|id| is_member || **id == *peer);
        let failed = if refused.is_empty() {
            Vec::new()
        } else {
            vec![ErrorCommand {
                code: codes::CONVERSATION_MEMBERSHIP_REQUIRED as i32,
                reason: "CONVERSATION_MEMBERSHIP_REQUIRED".into(),
                pids: refused,
                ..Default::default()
            }]
        };
        // LeanCloud calls `_conversationRemove` for kicks only, not for leaving.
        let quitting = !add && allowed.len() == 1 && allowed[0] == *peer;
        if !allowed.is_empty() && !quitting {
            if let Err(refusal) = self
                .state
                .hooks
                .conversation_members(add, Some(&peer), &cid, &allowed)
                .await
            {
                self.out.push(rejected_by_app(&req, refusal));
                return;
            }
        }
        if !allowed.is_empty() {
            let op = if add { "AddUnique" } else { "Remove" };
            let mut body = Map::new();
            body.insert("m".into(), json!({"__op": op, "objects": allowed}));
            if let Err(e) = objects::update(
                &self.state.db,
                Caller::Master,
                CONVERSATION.to_string(),
                cid.clone(),
                body,
                None,
                false,
            )
            .await
            {
                self.out.push(store_error(&req, e));
                return;
            }
        }
        let reply_op = if add { OpType::Added } else { OpType::Removed };
        self.out.push(GenericCommand {
            conv_message: Some(ConvCommand {
                allowed_pids: allowed.clone(),
                failed_pids: failed,
                ..Default::default()
            }),
            ..reply_to(&req, CommandType::Conv, Some(reply_op))
        });
        if allowed.is_empty() {
            return;
        }
        let after = if add {
            "_conversationAdded"
        } else {
            "_conversationRemoved"
        };
        self.state
            .hooks
            .conversation_changed(after, Some(&peer), &cid, &allowed);
        let by = peer.to_string();
        // The clients added or removed learn it with `joined`/`left` (not the one who joined or left
        // itself); the other members with `members_joined`/`members_left`.
        let targets: Vec<String> = allowed.iter().filter(|a| **a != *peer).cloned().collect();
        let others: Vec<String> = current
            .into_iter()
            .filter(|m| !allowed.contains(m))
            .collect();
        let (own_op, others_op) = if add {
            (OpType::Joined, OpType::MembersJoined)
        } else {
            (OpType::Left, OpType::MembersLeft)
        };
        let realtime = self.realtime();
        realtime.notify(&targets, |p| {
            conv_push(
                p,
                own_op,
                ConvCommand {
                    cid: Some(cid.clone()),
                    init_by: Some(by.clone()),
                    ..Default::default()
                },
            )
        });
        realtime.notify(&others, |p| {
            conv_push(
                p,
                others_op,
                ConvCommand {
                    cid: Some(cid.clone()),
                    m: allowed.clone(),
                    init_by: Some(by.clone()),
                    ..Default::default()
                },
            )
        });
    }

    /// `conv/query`: the conversations the client may see (it is a member, or a service conversation or
    /// chat room) matching `where`, as `_Conversation` rows.
    async fn query(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let conv = req.conv_message.clone().unwrap_or_default();
        let results = |data: String| GenericCommand {
            conv_message: Some(ConvCommand {
                results: Some(JsonObjectMessage { data }),
                ..Default::default()
            }),
            ..reply_to(&req, CommandType::Conv, Some(OpType::Results))
        };
        if conv.r#where.is_none() && !conv.temp_conv_ids.is_empty() {
            // Temporary conversations are not kept: none of them exists.
            self.out.push(results("[]".into()));
            return;
        }
        let where_ = match json_object(conv.r#where.as_ref()) {
            Ok(w) => Value::Object(w),
            Err(e) => {
                self.out.push(error_reply(
                    &req,
                    codes::CONVERSATION_QUERY_FAILED,
                    "CONVERSATION_QUERY_FAILED",
                    Some(format!("where: {e}")),
                ));
                return;
            }
        };
        // What a client may see: conversations it is in, service conversations and chat rooms, and any
        // other whose ACL lets the public read it (no ACL: public, so `getConversation(id).join()` works
        // as on LeanCloud). The condition sits beside the query's own keys so their SQL narrowing applies.
        let visible = json!([
            {"m": &*peer}, {"sys": true}, {"tr": true},
            {"ACL": {"$exists": false}}, {"ACL.*.read": true}
        ]);
        let where_ = match where_ {
            Value::Object(mut w) if !w.contains_key("$or") => {
                w.insert("$or".into(), visible);
                Value::Object(w)
            }
            other => json!({"$and": [other, {"$or": visible}]}),
        };
        let q = QueryParams {
            where_: Some(where_),
            keys: None,
            limit: conv.limit.map_or(10, |l| l.clamp(1, 1000) as usize),
            skip: conv.skip.map_or(0, |s| s.max(0) as usize),
            order: conv.sort.as_deref().map(parse_order).unwrap_or_default(),
            count: false,
            with_acl: false,
            max_scan: self.state.max_scan,
        };
        match objects::find(&self.state.db, Caller::Master, CONVERSATION.to_string(), q).await {
            Ok(body) => {
                let rows = body.get("results").cloned().unwrap_or_else(|| json!([]));
                self.out.push(results(rows.to_string()));
            }
            Err(e) => {
                let detail = e.to_string();
                self.out.push(error_reply(
                    &req,
                    codes::CONVERSATION_QUERY_FAILED,
                    "CONVERSATION_QUERY_FAILED",
                    Some(detail),
                ));
            }
        }
    }

    async fn update(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let conv = req.conv_message.clone().unwrap_or_default();
        let Some((cid, row)) = self.conversation(&req, conv.cid.as_deref()).await else {
            return;
        };
        let members = strings(row.get("m"));
        if !members.iter().any(|m| **m == *peer) {
            self.out.push(error_reply(
                &req,
                codes::CONVERSATION_UPDATE_REJECTED,
                "CONVERSATION_UPDATE_REJECTED",
                Some("only members may change a conversation".into()),
            ));
            return;
        }
        let Some(mut attrs) = self.attributes(&req, &conv) else {
            return;
        };
        match self
            .state
            .hooks
            .conversation_update(Some(&peer), &cid, &attrs)
            .await
        {
            Ok(Some(rewritten)) => attrs = rewritten,
            Ok(None) => {}
            Err(refusal) => {
                self.out.push(rejected_by_app(&req, refusal));
                return;
            }
        }
        let attr_json = Value::Object(attrs.clone()).to_string();
        match objects::update(
            &self.state.db,
            Caller::Master,
            CONVERSATION.to_string(),
            cid.clone(),
            attrs,
            None,
            false,
        )
        .await
        {
            Ok(out) => {
                let udate = out
                    .get("updatedAt")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.out.push(GenericCommand {
                    conv_message: Some(ConvCommand {
                        udate,
                        ..Default::default()
                    }),
                    ..reply_to(&req, CommandType::Conv, Some(OpType::Updated))
                });
                let others: Vec<String> = members.into_iter().filter(|m| **m != *peer).collect();
                let by = peer.to_string();
                self.realtime().notify(&others, |p| {
                    conv_push(
                        p,
                        OpType::Updated,
                        ConvCommand {
                            cid: Some(cid.clone()),
                            init_by: Some(by.clone()),
                            attr: Some(JsonObjectMessage {
                                data: attr_json.clone(),
                            }),
                            ..Default::default()
                        },
                    )
                });
            }
            Err(e) => self.out.push(store_error(&req, e)),
        }
    }

    fn ack_error(&mut self, req: &GenericCommand, code: i64, reason: &str) {
        self.out.push(GenericCommand {
            ack_message: Some(AckCommand {
                code: Some(code as i32),
                reason: Some(reason.to_string()),
                ..Default::default()
            }),
            ..reply_to(req, CommandType::Ack, None)
        });
    }

    /// A client's `direct`: stored (membership checked), answered with `ack`, then delivered.
    async fn send(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let dm = req.direct_message.clone().unwrap_or_default();
        let Some(cid) = dm.cid.clone().filter(|c| !c.is_empty()) else {
            self.ack_error(
                &req,
                codes::INVALID_MESSAGING_TARGET,
                "INVALID_MESSAGING_TARGET",
            );
            return;
        };
        let (data, binary) = match (&dm.msg, &dm.binary_msg) {
            (_, Some(bytes)) => (
                base64::engine::general_purpose::STANDARD.encode(bytes),
                true,
            ),
            (Some(text), None) => (text.clone(), false),
            (None, None) => {
                self.ack_error(&req, codes::INTERNAL, "EMPTY_MESSAGE");
                return;
            }
        };
        if data.len() + dm.push_data.as_ref().map_or(0, String::len) > MAX_MESSAGE_BYTES {
            self.ack_error(&req, codes::ENTITY_TOO_LARGE, "MESSAGE_TOO_LARGE");
            return;
        }
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
            ..NewMessage::to_conversation(cid, peer.to_string(), data)
        };
        let ip = self.ip.clone();
        match messaging::send(&self.state, msg, Origin::Client, ip).await {
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
                        code: Some(codes::MESSAGE_REJECTED_BY_APP as i32),
                        reason: Some("MESSAGE_REJECTED_BY_APP".into()),
                        app_code: refusal.app_code.map(|c| c as i32),
                        app_msg: refusal.detail,
                        ..Default::default()
                    }),
                    ..reply_to(&req, CommandType::Ack, None)
                });
            }
            Err(SendError::Store(e)) if !e.is_internal() => {
                let code = match e {
                    StoreError::ConversationNotFound | StoreError::InvalidMessagingTarget => {
                        codes::INVALID_MESSAGING_TARGET
                    }
                    _ => e.code(),
                };
                self.ack_error(&req, code, "INVALID_MESSAGING_TARGET");
            }
            Err(SendError::Store(e)) => self.out.push(store_error(&req, e)),
        }
    }

    /// A client's `ack`: the messages of a conversation up to `tots` reached it.
    async fn ack(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let Some(ack) = req.ack_message.as_ref() else {
            return;
        };
        if let (Some(cid), Some(tots)) = (ack.cid.clone(), ack.tots.or(ack.t)) {
            let mark = vec![(cid, tots.min(now_ms()))];
            if let Err(e) =
                positions::advance(&self.state.db, peer.to_string(), Position::Delivered, mark)
                    .await
            {
                tracing::error!(error = %e, "realtime: ack not saved");
            }
        }
    }

    /// `read`: the client has read each listed conversation up to the time given.
    async fn read(&mut self, req: GenericCommand) {
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
            .map(|t| (t.cid.clone(), t.timestamp.unwrap_or(now).min(now)))
            .collect();
        marks.extend(read.cid.iter().chain(&read.cids).map(|c| (c.clone(), now)));
        if let Err(e) =
            positions::advance(&self.state.db, peer.to_string(), Position::Read, marks).await
        {
            tracing::error!(error = %e, "realtime: read position not saved");
        }
    }

    /// `logs`: a page of a conversation's history, oldest first, as the SDK's iterator expects (§8.4).
    async fn logs(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let lq: LogsCommand = req.logs_message.clone().unwrap_or_default();
        let Some((cid, row)) = self.conversation(&req, lq.cid.as_deref()).await else {
            return;
        };
        let open = row.get("sys") == Some(&json!(true)) || row.get("tr") == Some(&json!(true));
        if !open && !strings(row.get("m")).iter().any(|m| **m == *peer) {
            self.out.push(error_reply(
                &req,
                codes::CONVERSATION_LOG_REJECTED,
                "CONVERSATION_LOG_REJECTED",
                Some("only members may read a conversation's history".into()),
            ));
            return;
        }
        let newer = lq.direction == Some(QueryDirection::New as i32);
        let q = HistoryQuery {
            scope: HistoryScope::ConversationFor {
                conv: cid,
                client: peer.to_string(),
            },
            limit: lq
                .l
                .or(lq.limit)
                .map_or(DEFAULT_LOGS, |l| (l.max(1) as usize).min(MAX_LOGS)),
            reversed: newer,
            start_ts: lq.t,
            start_msgid: lq.mid.clone(),
            include_start: lq.t_included == Some(true),
            stop_ts: lq.tt,
            stop_msgid: lq.tmid.clone(),
            include_stop: lq.tt_included == Some(true),
        };
        match messages::history(&self.state.db, q).await {
            Ok(mut records) => {
                if !newer {
                    records.reverse();
                }
                let logs = records
                    .into_iter()
                    .map(|r| LogItem {
                        from: r["from"].as_str().map(str::to_owned),
                        data: r["data"].as_str().map(str::to_owned),
                        timestamp: r["timestamp"].as_i64(),
                        msg_id: r["msg-id"].as_str().map(str::to_owned),
                        bin: r["bin"].as_bool().filter(|b| *b),
                        mention_all: r["mention-all"].as_bool().filter(|b| *b),
                        mention_pids: strings(r.get("mention-pids")),
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
