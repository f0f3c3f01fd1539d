//! The realtime attackers of `bench hardening` (review part 3: R1, R3, R4): while the honest senders send,
//! - **session floods**: sockets that open a new client id with every command, as fast as the server answers;
//! - **silent sockets**: sockets that never open a session and only say `echo` (the server closes each after
//!   its login timeout; the attacker opens another at once);
//! - **unread bombs**: logins of victims that others filled with conversations holding a 5 KB message each, so
//!   every login is answered with a large `unread` notification.
//!
//! Each attacker counts what the server did to it; the harness compares the senders' latency with the baseline.
//!
//! The attackers run in a process of their own at a lower CPU priority (`nice -n 10`, see [`run_elsewhere`]):
//! on a real network they are other machines, and on this shared machine their own client work (encoding,
//! reading unread bombs) would otherwise delay the honest senders' client in the same process and be counted as
//! the server's latency.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use leancloud_server::realtime::proto::{CommandType, GenericCommand, OpType, SessionCommand};
use leancloud_server::ws::frame::{self, Encoded};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::realtime::client::{open, Ws};
use crate::realtime::rest::Rest;

/// How many of each attacker run.
#[derive(Debug, Clone, Copy)]
pub struct Attackers {
    pub session_floods: usize,
    pub silent: usize,
    pub bombers: usize,
}

/// What the attackers saw, summed.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub sessions_opened: AtomicU64,
    pub sessions_refused: AtomicU64,
    pub flood_sockets: AtomicU64,
    pub silent_sockets: AtomicU64,
    pub silent_closed: AtomicU64,
    pub bomb_logins: AtomicU64,
    pub bomb_refused: AtomicU64,
    pub bomb_conversations: AtomicU64,
    pub upgrades_refused: AtomicU64,
}

/// Conversations per victim, each with one 5,000-byte message.
pub const BOMB_CONVERSATIONS: usize = 60;

fn open_session(app_id: &str, peer: String, i: i32) -> GenericCommand {
    GenericCommand {
        app_id: Some(app_id.to_string()),
        peer_id: Some(peer),
        i: Some(i),
        session_message: Some(SessionCommand {
            ua: Some("bench-attacker".into()),
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Session, Some(OpType::Open))
    }
}

async fn send(ws: &mut Ws, command: &GenericCommand) -> bool {
    let message = match frame::encode(command, false) {
        Encoded::Binary(bytes) => Message::Binary(bytes.into()),
        Encoded::Text(text) => Message::Text(text.into()),
    };
    ws.send(message).await.is_ok()
}

/// The next command from the server, `None` once the socket is closed (or after `wait`).
async fn next(ws: &mut Ws, wait: Duration) -> Option<GenericCommand> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await.ok()?? {
            Ok(Message::Binary(bytes)) => return frame::decode(&bytes, false).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Fills each victim's unread with [`BOMB_CONVERSATIONS`] conversations of one 5 KB message.
pub async fn prepare_bombs(rest: &mut Rest, victims: usize) -> Result<(), String> {
    let text = "b".repeat(5000);
    for v in 0..victims {
        for c in 0..BOMB_CONVERSATIONS {
            let cid = rest
                .create_conversation(&json!({"m": [format!("bomber-{v}"), format!("bombed-{v}")], "name": format!("bomb-{v}-{c}")}))
                .await?;
            rest.post_ok(
                "/1.1/rtm/messages",
                &json!({"from_peer": format!("bomber-{v}"), "conv_id": cid, "message": &text, "transient": false}),
            )
            .await?;
        }
    }
    Ok(())
}

/// A new socket to `addr`; a refused one is counted, and the attacker pauses 50 ms before trying again.
async fn open_counted(addr: SocketAddr, counts: &Counts) -> Option<Ws> {
    match open(addr).await {
        Ok(ws) => Some(ws),
        Err(_) => {
            counts.upgrades_refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// `bench rt-attackers`: the attackers' process (started by [`run_elsewhere`]); prints its [`Counts`] as JSON.
#[derive(Debug, clap::Args)]
pub struct AttackArgs {
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long)]
    app_id: String,
    #[arg(long)]
    millis: u64,
    #[arg(long)]
    session_floods: usize,
    #[arg(long)]
    silent: usize,
    #[arg(long)]
    bombers: usize,
}

pub async fn attackers_process(args: AttackArgs) -> Result<(), String> {
    let who = Attackers {
        session_floods: args.session_floods,
        silent: args.silent,
        bombers: args.bombers,
    };
    let until = Instant::now() + Duration::from_millis(args.millis);
    let counts = run(args.addr, Arc::from(args.app_id.as_str()), who, until).await;
    println!(
        "{}",
        serde_json::to_string(&*counts).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Runs the attackers for `length` in a child process at `nice -n 10`, and returns what they counted.
pub async fn run_elsewhere(
    addr: SocketAddr,
    app_id: String,
    who: Attackers,
    length: Duration,
) -> Result<Counts, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let output = tokio::process::Command::new("nice")
        .arg("-n10")
        .arg(exe)
        .args([
            "rt-attackers",
            "--addr",
            &addr.to_string(),
            "--app-id",
            &app_id,
        ])
        .args(["--millis", &length.as_millis().to_string()])
        .args(["--session-floods", &who.session_floods.to_string()])
        .args(["--silent", &who.silent.to_string()])
        .args(["--bombers", &who.bombers.to_string()])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("the attackers' process: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "the attackers' process: {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("the attackers' counts: {e}"))
}

/// Runs the attackers against `addr` until `until`.
pub async fn run(
    addr: SocketAddr,
    app_id: Arc<str>,
    who: Attackers,
    until: Instant,
) -> Arc<Counts> {
    let counts = Arc::new(Counts::default());
    let mut tasks = Vec::new();
    for f in 0..who.session_floods {
        let (counts, app_id) = (counts.clone(), app_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < until {
                let Some(mut ws) = open_counted(addr, &counts).await else {
                    continue;
                };
                counts.flood_sockets.fetch_add(1, Ordering::Relaxed);
                while Instant::now() < until {
                    n += 1;
                    if !send(&mut ws, &open_session(&app_id, format!("flood-{f}-{n}"), 1)).await {
                        break;
                    }
                    // The reply to this login (an `unread` or a broadcast may come first).
                    let reply = loop {
                        match next(&mut ws, Duration::from_secs(5)).await {
                            Some(c) if c.i == Some(1) => break Some(c),
                            Some(_) => continue,
                            None => break None,
                        }
                    };
                    match reply {
                        Some(c) if c.operation() == Some(OpType::Opened) => {
                            counts.sessions_opened.fetch_add(1, Ordering::Relaxed)
                        }
                        Some(_) => counts.sessions_refused.fetch_add(1, Ordering::Relaxed),
                        None => break,
                    };
                }
            }
        }));
    }
    for _ in 0..who.silent {
        let counts = counts.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let Some(mut ws) = open_counted(addr, &counts).await else {
                    continue;
                };
                counts.silent_sockets.fetch_add(1, Ordering::Relaxed);
                loop {
                    let echo = GenericCommand {
                        i: Some(1),
                        ..GenericCommand::new(CommandType::Echo, None)
                    };
                    if Instant::now() >= until || !send(&mut ws, &echo).await {
                        break;
                    }
                    if next(&mut ws, Duration::from_secs(2)).await.is_none() {
                        counts.silent_closed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }));
    }
    for v in 0..who.bombers {
        let (counts, app_id) = (counts.clone(), app_id.clone());
        tasks.push(tokio::spawn(async move {
            // One socket, logging in as the victim again and again (each login that goes through reads and sends
            // the victim's unread conversations); a closed socket is replaced.
            while Instant::now() < until {
                let Some(mut ws) = open_counted(addr, &counts).await else {
                    continue;
                };
                'socket: while Instant::now() < until {
                    if !send(&mut ws, &open_session(&app_id, format!("bombed-{v}"), 1)).await {
                        break;
                    }
                    counts.bomb_logins.fetch_add(1, Ordering::Relaxed);
                    let mut convs = 0u64;
                    loop {
                        let Some(c) = next(&mut ws, Duration::from_secs(1)).await else {
                            if convs == 0 {
                                break 'socket;
                            }
                            break;
                        };
                        if c.i == Some(1) && c.error_message.is_some() {
                            counts.bomb_refused.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        if let Some(unread) = c.unread_message {
                            convs += unread.convs.len() as u64;
                            if convs >= BOMB_CONVERSATIONS as u64 {
                                break;
                            }
                        }
                    }
                    counts
                        .bomb_conversations
                        .fetch_add(convs, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    counts
}
