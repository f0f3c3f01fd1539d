//! One load client: a WebSocket connection speaking LeanCloud's protobuf protocol (`lc.protobuf2.3`, one
//! `GenericCommand` per binary frame), logged in as one client id, then idle apart from what the benchmark
//! asks of it. Every pushed benchmark message is reported with its receive instant.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use std::collections::HashMap;

use leancloud_server::realtime::proto::{
    AckCommand, CommandType, DirectCommand, GenericCommand, OpType, SessionCommand,
};
use leancloud_server::ws::frame::{self, Encoded};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The SDK's heartbeat interval (`echo` every 180 s; the server closes a connection silent for 380 s).
const HEARTBEAT: Duration = Duration::from_secs(180);
const SUBPROTOCOL: &str = "lc.protobuf2.3";

/// What a client reports to the benchmark.
#[derive(Debug)]
pub enum Event {
    /// A benchmark message (`rtb:<kind>:<seq>:<sent ns>`) pushed to this client.
    Received {
        client: u32,
        /// The message's sender is this client itself.
        own: bool,
        kind: Kind,
        seq: u32,
        sent_ns: u64,
        recv_ns: u64,
    },
    /// The connection ended (closed by the server, or an error).
    Closed { client: u32, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// a message sent through `POST /1.1/rtm/messages`
    Message,
    /// a broadcast (`POST /1.1/rtm/broadcast`)
    Broadcast,
    /// a client's `direct` with `r: true`; reported by its sender when the delivery receipt (`rcp`) arrives
    Receipt,
}

/// The text of a benchmark message: what it is, its number, and when it was sent (ns since the bench's epoch).
pub fn message_text(kind: Kind, seq: u32, sent_ns: u64) -> String {
    let k = match kind {
        Kind::Message => 'm',
        Kind::Broadcast => 'b',
        Kind::Receipt => 'r',
    };
    format!("rtb:{k}:{seq}:{sent_ns}")
}

pub fn parse_text(text: &str) -> Option<(Kind, u32, u64)> {
    let mut parts = text.strip_prefix("rtb:")?.splitn(3, ':');
    let kind = match parts.next()? {
        "m" => Kind::Message,
        "b" => Kind::Broadcast,
        "r" => Kind::Receipt,
        _ => return None,
    };
    let seq = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    Some((kind, seq, sent))
}

/// What the benchmark can ask of a connected client.
#[derive(Debug)]
pub enum Ctrl {
    /// Send an `echo` and report when its answer arrives.
    Echo(oneshot::Sender<()>),
    /// Send benchmark message `seq` to conversation `cid` as a `direct` asking for receipts (`r: true`), and
    /// report its delivery receipt (`rcp`) when it arrives.
    Direct { cid: String, seq: u32 },
}

/// The benchmark's handle on a logged-in client; dropping it closes the connection.
#[derive(Debug)]
pub struct Client {
    pub ctrl: mpsc::Sender<Ctrl>,
}

/// Client id of the load client number `index`.
pub fn peer_id(index: u32) -> String {
    format!("rt-{index}")
}

async fn send(ws: &mut Ws, command: &GenericCommand) -> Result<(), String> {
    let message = match frame::encode(command, false) {
        Encoded::Binary(bytes) => Message::Binary(bytes.into()),
        Encoded::Text(text) => Message::Text(text.into()),
    };
    ws.send(message).await.map_err(|e| format!("send: {e}"))
}

/// The SDK's `ack` of a received message: the receipt its sender asked for.
fn ack(cid: Option<String>, mid: Option<String>) -> GenericCommand {
    GenericCommand {
        ack_message: Some(AckCommand {
            cid,
            mid,
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Ack, None)
    }
}

fn direct(i: i32, cid: String, text: String) -> GenericCommand {
    GenericCommand {
        i: Some(i),
        direct_message: Some(DirectCommand {
            cid: Some(cid),
            msg: Some(text),
            r: Some(true),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Direct, None)
    }
}

fn echo(i: i32) -> GenericCommand {
    GenericCommand {
        i: Some(i),
        ..GenericCommand::new(CommandType::Echo, None)
    }
}

/// An open WebSocket connection, not logged in yet.
pub type Ws = WebSocketStream<TcpStream>;

/// Opens a WebSocket connection offering `lc.protobuf2.3` (the handshake only).
pub async fn open(addr: SocketAddr) -> Result<Ws, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut request = format!("ws://{addr}/")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    // Small buffers: the default 128 KiB read buffer per connection would make the load client, not the
    // server, the memory bottleneck at 10,000 connections.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (ws, response) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let echoed = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok());
    if echoed != Some(SUBPROTOCOL) {
        return Err(format!("subprotocol not echoed: {echoed:?}"));
    }
    Ok(ws)
}

/// Opens a connection, logs in as `peer_id(index)` and leaves the client running in its own task.
pub async fn connect(
    addr: SocketAddr,
    app_id: Arc<str>,
    index: u32,
    epoch: Instant,
    events: mpsc::UnboundedSender<Event>,
) -> Result<Client, String> {
    let ws = open(addr).await?;
    login(ws, app_id, index, epoch, events).await
}

/// Logs an open connection in as `peer_id(index)` (`session/open` → `session/opened`) and leaves the client
/// running in its own task.
pub async fn login(
    mut ws: Ws,
    app_id: Arc<str>,
    index: u32,
    epoch: Instant,
    events: mpsc::UnboundedSender<Event>,
) -> Result<Client, String> {
    let peer = peer_id(index);
    let open = GenericCommand {
        app_id: Some(app_id.to_string()),
        peer_id: Some(peer.clone()),
        i: Some(1),
        session_message: Some(SessionCommand {
            ua: Some("bench".into()),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Session, Some(OpType::Open))
    };
    send(&mut ws, &open).await?;
    let login = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(bytes))) => {
                    let cmd = frame::decode(&bytes, false).map_err(|e| e.to_string())?;
                    if cmd.i != Some(1) {
                        continue; // an `unread` notification or a pending broadcast
                    }
                    return match (cmd.command(), cmd.operation()) {
                        (Some(CommandType::Session), Some(OpType::Opened)) => Ok(()),
                        _ => Err(format!("login refused: {cmd:?}")),
                    };
                }
                Some(Ok(Message::Close(f))) => return Err(format!("closed at login: {f:?}")),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("login: {e}")),
                None => return Err("closed at login".into()),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), login)
        .await
        .map_err(|_| "no session/opened within 30 s".to_string())??;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(run(ws, rx, peer, index, epoch, events));
    Ok(Client { ctrl: tx })
}

async fn run(
    mut ws: Ws,
    mut rx: mpsc::Receiver<Ctrl>,
    peer: String,
    index: u32,
    epoch: Instant,
    events: mpsc::UnboundedSender<Event>,
) {
    let mut next_i = 1;
    let mut waiting: Vec<(i32, oneshot::Sender<()>)> = Vec::new();
    // receipts: sends awaiting their `ack` (by `i`), then their `rcp` (by message id); `rcp`s that came first
    let mut unacked: HashMap<i32, (u32, u64)> = HashMap::new();
    let mut sent: HashMap<String, (u32, u64)> = HashMap::new();
    let mut early: HashMap<String, u64> = HashMap::new();
    let mut heartbeat = tokio::time::Instant::now() + HEARTBEAT;
    let closed = |reason: String| Event::Closed {
        client: index,
        reason,
    };
    loop {
        tokio::select! {
            ctrl = rx.recv() => match ctrl {
                Some(Ctrl::Echo(done)) => {
                    next_i += 1;
                    waiting.push((next_i, done));
                    if let Err(e) = send(&mut ws, &echo(next_i)).await {
                        let _ = events.send(closed(e));
                        return;
                    }
                }
                Some(Ctrl::Direct { cid, seq }) => {
                    next_i += 1;
                    let sent_ns = epoch.elapsed().as_nanos() as u64;
                    unacked.insert(next_i, (seq, sent_ns));
                    let text = message_text(Kind::Receipt, seq, sent_ns);
                    if let Err(e) = send(&mut ws, &direct(next_i, cid, text)).await {
                        let _ = events.send(closed(e));
                        return;
                    }
                }
                None => {
                    let _ = ws.close(None).await;
                    return;
                }
            },
            frame = ws.next() => match frame {
                Some(Ok(Message::Binary(bytes))) => {
                    let recv_ns = epoch.elapsed().as_nanos() as u64;
                    let Ok(cmd) = frame::decode(&bytes, false) else { continue };
                    if cmd.cmd == Some(CommandType::Direct as i32) {
                        let Some(dm) = cmd.direct_message else { continue };
                        let Some((kind, seq, sent_ns)) = dm.msg.as_deref().and_then(parse_text) else { continue };
                        let own = dm.from_peer_id.as_deref() == Some(peer.as_str());
                        if kind == Kind::Receipt {
                            // as the SDK does on receipt of a message: acknowledge it
                            if !own {
                                if let Err(e) = send(&mut ws, &ack(dm.cid, dm.id)).await {
                                    let _ = events.send(closed(e));
                                    return;
                                }
                            }
                            continue;
                        }
                        let _ = events.send(Event::Received { client: index, own, kind, seq, sent_ns, recv_ns });
                    } else if cmd.cmd == Some(CommandType::Ack as i32) {
                        let Some(pending) = cmd.i.and_then(|i| unacked.remove(&i)) else { continue };
                        let Some(uid) = cmd.ack_message.and_then(|a| a.uid) else { continue };
                        match early.remove(&uid) {
                            Some(at) => {
                                let (seq, sent_ns) = pending;
                                let _ = events.send(Event::Received { client: index, own: true, kind: Kind::Receipt, seq, sent_ns, recv_ns: at });
                            }
                            None => {
                                sent.insert(uid, pending);
                            }
                        }
                    } else if cmd.cmd == Some(CommandType::Rcp as i32) {
                        let Some(rcp) = cmd.rcp_message else { continue };
                        if rcp.read == Some(true) {
                            continue;
                        }
                        let Some(id) = rcp.id else { continue };
                        match sent.remove(&id) {
                            Some((seq, sent_ns)) => {
                                let _ = events.send(Event::Received { client: index, own: true, kind: Kind::Receipt, seq, sent_ns, recv_ns });
                            }
                            None => {
                                early.insert(id, recv_ns);
                            }
                        }
                    } else if cmd.cmd == Some(CommandType::Echo as i32) {
                        if let Some(pos) = waiting.iter().position(|(i, _)| Some(*i) == cmd.i) {
                            let (_, done) = waiting.swap_remove(pos);
                            let _ = done.send(());
                        }
                    }
                }
                Some(Ok(Message::Close(f))) => {
                    let _ = events.send(closed(format!("closed by the server: {f:?}")));
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let _ = events.send(closed(format!("read: {e}")));
                    return;
                }
                None => {
                    let _ = events.send(closed("connection ended".into()));
                    return;
                }
            },
            _ = tokio::time::sleep_until(heartbeat) => {
                heartbeat += HEARTBEAT;
                next_i += 1;
                if let Err(e) = send(&mut ws, &echo(next_i)).await {
                    let _ = events.send(closed(e));
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_text_round_trips() {
        let t = message_text(Kind::Broadcast, 7, 123_456_789);
        assert_eq!(t, "rtb:b:7:123456789");
        assert_eq!(parse_text(&t), Some((Kind::Broadcast, 7, 123_456_789)));
        assert_eq!(
            parse_text(&message_text(Kind::Message, 0, 1)),
            Some((Kind::Message, 0, 1))
        );
        assert_eq!(
            parse_text(&message_text(Kind::Receipt, 3, 9)),
            Some((Kind::Receipt, 3, 9))
        );
        assert_eq!(parse_text("hello"), None);
        assert_eq!(parse_text("rtb:x:1:2"), None);
        assert_eq!(parse_text("rtb:m:1"), None);
    }
}
