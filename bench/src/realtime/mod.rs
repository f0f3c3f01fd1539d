//! `bench realtime`: the realtime gateway under load (issue 11). It starts its own release `leancloud-server`
//! (fresh database, free loopback port) and drives it with Rust WebSocket clients speaking the SDK's protobuf
//! protocol (`client.rs`), in this process, on tokio's multi-thread runtime:
//!
//! 1. N clients connect and log in (bounded concurrency); the server's RSS per idle connection is
//!    (VmRSS with N logged-in connections − VmRSS before) / N; after a hold, every client must answer `echo`;
//! 2. one broadcast at a time to all N: time from the send until the last client has it;
//! 3. broadcasts back to back: deliveries/s sustained;
//! 4. `POST /1.1/rtm/messages` at a steady rate to 2-member conversations of online clients: send → receive
//!    latency (the send instant travels in the message text).

pub mod client;
pub(crate) mod rest;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::json;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::report::{self, group_thousands, row, Row, Target, Unit};
use crate::stats;
use client::{Client, Ctrl, Event, Kind};
use rest::{Rest, Server};

/// Targets of issue 11 (on this 2-core machine, server and load client together).
const TARGET_CONNECTIONS: u32 = 10_000;
const TARGET_KIB_PER_CONNECTION: f64 = 16.0;
const TARGET_BROADCAST_MS: f64 = 500.0;
const TARGET_P99_MS: f64 = 10.0;

#[derive(Debug, Clone, Args)]
pub struct RealtimeArgs {
    /// The release server binary to start (its own fresh database, a free loopback port).
    #[arg(long, default_value = "target/release/leancloud-server")]
    server_bin: PathBuf,
    /// Idle connections to open and log in (each a distinct client id).
    #[arg(long, default_value_t = 10_000)]
    connections: u32,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// Seconds the idle connections are held before each must answer an `echo`.
    #[arg(long, default_value_t = 5)]
    hold_seconds: u64,
    /// Broadcasts to all clients timed one at a time (first and median reported).
    #[arg(long, default_value_t = 5)]
    broadcasts: u32,
    /// Broadcasts sent back to back for the sustained deliveries/s.
    #[arg(long, default_value_t = 20)]
    burst_broadcasts: u32,
    /// REST sends per second of the latency run.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Seconds of the latency run (after one second of warm-up at the same rate).
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// 2-member conversations the sends go to (2 × pairs of the connected clients, at most all of them).
    #[arg(long, default_value_t = 500)]
    pairs: u32,
    /// Keep-alive HTTP connections the sends are spread over.
    #[arg(long, default_value_t = 16)]
    senders: u32,
    /// Where the server's log goes.
    #[arg(long, default_value = "bench/out")]
    log_dir: PathBuf,
    /// Append the table and the method to this Markdown file (`bench/run.sh`: the RESULTS.md `bench run` wrote).
    #[arg(long)]
    append_to: Option<PathBuf>,
    /// Small counts (a smoke run; figures not meaningful).
    #[arg(long)]
    quick: bool,
}

/// A row whose value is not one of the report's units (a count, KiB per connection).
fn text_row(figure: &str, value: String, target: &str, met: Option<bool>) -> Row {
    Row {
        figure: figure.into(),
        ours: value,
        python: "—".into(),
        ratio: "—".into(),
        target: target.into(),
        met: match met {
            None if target == "—" => "—".into(),
            None => "n/a".into(),
            Some(true) => "yes".into(),
            Some(false) => "**no**".into(),
        },
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Everything a run shares.
struct Run {
    args: RealtimeArgs,
    epoch: Instant,
    app_id: String,
    master_key: String,
    server: Server,
    events: mpsc::UnboundedReceiver<Event>,
    /// Clients whose connection ended, with the first reason.
    closed: HashSet<u32>,
    first_close: Option<String>,
    rows: Vec<Row>,
    method: Vec<String>,
    notes: Vec<String>,
}

impl Run {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn rest(&self) -> Rest {
        Rest::new(self.server.addr, &self.app_id, &self.master_key)
    }

    /// The next benchmark message received before `deadline`; connection ends are recorded on the way.
    async fn next_received(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Option<(u32, bool, Kind, u32, u64, u64)> {
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Event::Received {
                    client,
                    own,
                    kind,
                    seq,
                    sent_ns,
                    recv_ns,
                })) => return Some((client, own, kind, seq, sent_ns, recv_ns)),
                Ok(Some(Event::Closed { client, reason })) => {
                    if self.closed.insert(client) && self.first_close.is_none() {
                        self.first_close = Some(format!("{}: {reason}", client::peer_id(client)));
                    }
                }
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

pub async fn realtime(mut args: RealtimeArgs) -> Result<(), String> {
    if args.quick {
        args.connections = args.connections.min(500);
        args.hold_seconds = args.hold_seconds.min(1);
        args.broadcasts = args.broadcasts.min(2);
        args.burst_broadcasts = args.burst_broadcasts.min(3);
        args.seconds = args.seconds.min(2);
        args.pairs = args.pairs.min(100);
    }
    args.connections = args.connections.max(2);
    let (app_id, _app_key, master_key) = crate::credentials();
    std::fs::create_dir_all(&args.log_dir)
        .map_err(|e| format!("{}: {e}", args.log_dir.display()))?;
    let log = args.log_dir.join("realtime-server.log");
    let env = vec![
        ("LEANCLOUD_APP_ID".to_string(), app_id.clone()),
        ("LEANCLOUD_APP_MASTER_KEY".to_string(), master_key.clone()),
    ];
    let server = Server::start(&args.server_bin, &log, &env).await?;
    eprintln!(
        "bench realtime: leancloud-server pid {} on {} (log {})",
        server.pid,
        server.addr,
        log.display()
    );
    let (events_tx, events) = mpsc::unbounded_channel();
    let load_at_start = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let mut run = Run {
        args,
        epoch: Instant::now(),
        app_id,
        master_key,
        server,
        events,
        closed: HashSet::new(),
        first_close: None,
        rows: vec![],
        method: vec![],
        notes: vec![],
    };
    let result = measure(&mut run, events_tx).await;
    run.server.stop().await;
    let clients = result?;
    drop(clients);
    let load_at_end = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    run.notes.push(format!(
        "Load average (1, 5, 15 min) at the start {load_at_start}, at the end {load_at_end}; {} cores, \
         shared by the server, the load client and whatever else runs on the machine.",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    if let Some(first) = &run.first_close {
        run.notes.push(format!(
            "{} connection(s) ended during the run; the first: {first}",
            run.closed.len()
        ));
    }
    let table = report::table(&run.rows);
    println!("\n{table}");
    for n in &run.notes {
        println!("- {n}");
    }
    if let Some(path) = &run.args.append_to {
        let mut md = String::from("\n## Realtime gateway (`bench realtime`)\n\n");
        md.push_str(&table);
        md.push_str("\nHow each figure was measured:\n\n");
        for m in &run.method {
            md.push_str(&format!("- {m}\n"));
        }
        md.push_str("\nNotes on this run:\n\n");
        for n in &run.notes {
            md.push_str(&format!("- {n}\n"));
        }
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .and_then(|mut f| f.write_all(md.as_bytes()))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("bench realtime: appended to {}", path.display());
    }
    Ok(())
}

/// The four measurements; the connected clients are returned so they stay open until the server is stopped.
async fn measure(
    run: &mut Run,
    events_tx: mpsc::UnboundedSender<Event>,
) -> Result<Vec<Client>, String> {
    let addr = run.server.addr;
    let app_id: Arc<str> = Arc::from(run.app_id.as_str());
    let n = run.args.connections;

    // warm-up: one REST request and one WebSocket login, so the baseline has the server's threads and pools
    let mut rest = run.rest();
    let sys_conv = rest
        .create_conversation(&json!({"name": "bench-realtime-broadcasts", "sys": true}))
        .await?;
    {
        let (tx, _rx) = mpsc::unbounded_channel();
        let warm = client::connect(addr, app_id.clone(), u32::MAX, run.epoch, tx).await?;
        drop(warm);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = run.server.rss_kb().ok_or("server VmRSS not readable")?;
    let own_rss_before = rest::rss_kb(std::process::id()).unwrap_or(0);

    // 1. idle connections
    eprintln!(
        "bench realtime: opening {n} connections, {} at a time",
        run.args.connect_concurrency
    );
    // first the WebSocket handshakes alone, then the logins, so the memory of a connection and of a session
    // can be told apart
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(run.args.connect_concurrency.max(1)));
    let mut pending = FuturesUnordered::new();
    for index in 0..n {
        let permits = permits.clone();
        pending.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.map_err(|e| e.to_string())?;
            client::open(addr).await.map(|ws| (index, ws))
        }));
    }
    let mut sockets: Vec<(u32, client::Ws)> = Vec::with_capacity(n as usize);
    let mut failed = 0u32;
    let mut first_error = None;
    while let Some(joined) = pending.next().await {
        match joined.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(opened) => sockets.push(opened),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let handshake_s = started.elapsed().as_secs_f64();
    let handshakes = sockets.len() as u32;
    eprintln!(
        "bench realtime: {handshakes} WebSocket connections open in {handshake_s:.1} s; logging in"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_open = run.server.rss_kb().ok_or("server VmRSS not readable")?;
    let login_started = Instant::now();
    let mut pending = FuturesUnordered::new();
    for (index, ws) in sockets {
        let (permits, app_id, events) = (permits.clone(), app_id.clone(), events_tx.clone());
        let epoch = run.epoch;
        pending.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.map_err(|e| e.to_string())?;
            client::login(ws, app_id, index, epoch, events)
                .await
                .map(|c| (index, c))
        }));
    }
    let mut slots: Vec<Option<Client>> = (0..n).map(|_| None).collect();
    while let Some(joined) = pending.next().await {
        match joined.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok((index, c)) => slots[index as usize] = Some(c),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let login_s = login_started.elapsed().as_secs_f64();
    let opened = n - failed;
    eprintln!("bench realtime: {opened} logged in in {login_s:.1} s, {failed} failed");
    if let Some(e) = &first_error {
        run.notes.push(format!(
            "{failed} of {n} connections failed to open or log in; the first: {e}"
        ));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_with = run.server.rss_kb().ok_or("server VmRSS not readable")?;
    let own_rss_with = rest::rss_kb(std::process::id()).unwrap_or(0);
    let per_conn_kib = (rss_with.saturating_sub(rss_before)) as f64 / f64::from(opened.max(1));
    let per_socket_kib =
        (rss_open.saturating_sub(rss_before)) as f64 / f64::from(handshakes.max(1));
    let per_session_kib = (rss_with.saturating_sub(rss_open)) as f64 / f64::from(opened.max(1));
    let own_per_conn =
        (own_rss_with.saturating_sub(own_rss_before)) as f64 / f64::from(opened.max(1));
    tokio::time::sleep(Duration::from_secs(run.args.hold_seconds)).await;
    // every connection must still answer an echo
    let mut echoes = FuturesUnordered::new();
    for c in slots.iter().flatten() {
        let (tx, rx) = oneshot::channel();
        if c.ctrl.send(Ctrl::Echo(tx)).await.is_ok() {
            echoes.push(rx);
        }
    }
    let mut held = 0u32;
    let _ = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(r) = echoes.next().await {
            if r.is_ok() {
                held += 1;
            }
        }
    })
    .await;
    drop(echoes);
    run.rows.push(text_row(
        &format!(
            "realtime: connections opened and logged in (of {})",
            group_thousands(n.into())
        ),
        group_thousands(opened.into()),
        &format!("≥ {}", group_thousands(TARGET_CONNECTIONS.into())),
        Some(opened >= TARGET_CONNECTIONS),
    ));
    run.rows.push(text_row(
        &format!(
            "realtime: idle connections held {} s, each answering `echo`",
            run.args.hold_seconds
        ),
        group_thousands(held.into()),
        &format!("≥ {}", group_thousands(TARGET_CONNECTIONS.into())),
        Some(held >= TARGET_CONNECTIONS),
    ));
    run.rows.push(text_row(
        "realtime: server RSS per idle connection",
        format!("{per_conn_kib:.1} KiB"),
        &format!("≤ {TARGET_KIB_PER_CONNECTION:.0} KiB"),
        Some(per_conn_kib <= TARGET_KIB_PER_CONNECTION),
    ));
    run.rows.push(text_row(
        "realtime: … of which the WebSocket connection (handshake done, no session)",
        format!("{per_socket_kib:.1} KiB"),
        "—",
        None,
    ));
    run.rows.push(text_row(
        "realtime: … of which the logged-in session",
        format!("{per_session_kib:.1} KiB"),
        "—",
        None,
    ));
    run.rows.push(row(
        &format!(
            "realtime: server RSS with {} idle connections (before: {:.1} MB)",
            group_thousands(opened.into()),
            rss_before as f64 * 1024.0 / 1e6
        ),
        Unit::KiB,
        &Ok(rss_with as f64),
        None,
        Target::None,
    ));
    run.rows.push(text_row(
        "realtime: load client RSS per connection (same process as the measurements)",
        format!("{own_per_conn:.1} KiB"),
        "—",
        None,
    ));
    run.rows.push(row(
        &format!(
            "realtime: WebSocket handshakes/s, {} at a time",
            run.args.connect_concurrency
        ),
        Unit::Rate,
        &Ok(f64::from(handshakes) / handshake_s.max(1e-9)),
        None,
        Target::None,
    ));
    run.rows.push(row(
        &format!(
            "realtime: logins/s (`session/open` → `session/opened`), {} at a time",
            run.args.connect_concurrency
        ),
        Unit::Rate,
        &Ok(f64::from(opened) / login_s.max(1e-9)),
        None,
        Target::None,
    ));
    run.method.push(format!(
        "idle connections: {n} WebSocket connections to the server's own listener (`ws://{addr}/`, subprotocol \
         `lc.protobuf2.3`), {} opened at a time, from one tokio multi-thread process (tokio-tungstenite, 4 KiB read \
         buffers); once all are open, each logs in as its own client id (`session/open` → `session/opened`), again \
         that many at a time. Server RSS per connection = (VmRSS of the server with all logged in, read 2 s after the \
         last login − VmRSS after one warm-up REST request and one warm-up login) / connections logged in; the two \
         parts split it at a VmRSS read 2 s after the last handshake, before any login; KiB = 1024 bytes. Held: after {} s \
         idle every client sends `echo` and must have its answer within 15 s.",
        run.args.connect_concurrency, run.args.hold_seconds
    ));
    let alive: Vec<u32> = (0..n).filter(|i| slots[*i as usize].is_some()).collect();

    // 2. one broadcast at a time to everyone
    broadcasts(run, &mut rest, &sys_conv, &alive).await?;
    // 3. broadcasts back to back
    burst(run, &mut rest, &sys_conv, &alive).await?;
    // 4. steady sends to 2-member conversations
    latency(run, &alive).await?;
    // 5. client sends with delivery receipts
    receipts(run, &slots, &alive).await?;
    Ok(slots.into_iter().flatten().collect())
}

/// Waits until every client in `alive` not yet closed has broadcast `seq` (or 30 s passed); the receive
/// latencies (ns) in arrival order.
async fn collect_broadcast(run: &mut Run, seq: u32, expected: usize) -> Vec<u64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut got = Vec::with_capacity(expected);
    let mut seen = HashSet::with_capacity(expected);
    while got.len() < expected {
        match run.next_received(deadline).await {
            Some((client, _, Kind::Broadcast, s, sent, recv)) if s == seq => {
                if seen.insert(client) {
                    got.push(recv.saturating_sub(sent));
                }
            }
            Some(_) => {}
            None => break,
        }
    }
    got
}

async fn send_broadcast(run: &Run, rest: &mut Rest, conv: &str, seq: u32) -> Result<u64, String> {
    let sent = run.now_ns();
    let text = client::message_text(Kind::Broadcast, seq, sent);
    rest.post_ok(
        "/1.1/rtm/broadcast",
        &json!({"from_peer": "bench-system", "conv_id": conv, "message": text}),
    )
    .await?;
    Ok(run.now_ns() - sent)
}

async fn broadcasts(
    run: &mut Run,
    rest: &mut Rest,
    conv: &str,
    alive: &[u32],
) -> Result<(), String> {
    let n = alive.len();
    let count = run.args.broadcasts.max(1);
    eprintln!("bench realtime: {count} broadcasts to {n} clients, one at a time");
    let mut last_ms = Vec::new();
    let mut median_ms = Vec::new();
    let mut ack_ms = Vec::new();
    let mut incomplete = Vec::new();
    for seq in 0..count {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let ack = send_broadcast(run, rest, conv, seq).await?;
        let got = collect_broadcast(run, seq, n).await;
        if got.len() < n {
            incomplete.push(format!(
                "broadcast {seq}: {} of {n} received within 30 s",
                got.len()
            ));
        }
        let samples: Vec<f64> = got.iter().map(|ns| ms(*ns)).collect();
        if let Some(s) = stats::summarize(&samples) {
            last_ms.push(s.max);
            median_ms.push(s.median);
        }
        ack_ms.push(ms(ack));
    }
    let first: report::Measure = last_ms
        .first()
        .copied()
        .ok_or_else(|| "nothing received".into());
    let med = |v: &[f64]| -> report::Measure {
        stats::summarize(v)
            .map(|s| s.median)
            .ok_or_else(|| "nothing received".into())
    };
    let complete = incomplete.is_empty();
    let first = if complete {
        first
    } else {
        Err("not all received, see the notes".into())
    };
    let last_med = if complete {
        med(&last_ms)
    } else {
        Err("not all received, see the notes".into())
    };
    let label = group_thousands(n as u64);
    run.rows.push(row(
        &format!("realtime: one broadcast → the last of {label} clients has it (first broadcast)"),
        Unit::Millis,
        &first,
        None,
        Target::OursAtMost(TARGET_BROADCAST_MS),
    ));
    run.rows.push(row(
        &format!(
            "realtime: one broadcast → the last of {label} clients has it (median of {count})"
        ),
        Unit::Millis,
        &last_med,
        None,
        Target::OursAtMost(TARGET_BROADCAST_MS),
    ));
    run.rows.push(row(
        &format!("realtime: one broadcast → the median client has it (median of {count})"),
        Unit::Millis,
        &med(&median_ms),
        None,
        Target::None,
    ));
    run.rows.push(row(
        "realtime: `POST /1.1/rtm/broadcast` answered (median)",
        Unit::Millis,
        &med(&ack_ms),
        None,
        Target::None,
    ));
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    run.notes.push(format!(
        "Broadcasts one at a time, time until the last client had each (ms): {}; until the median client: {}; \
         REST answer: {}.",
        list(&last_ms),
        list(&median_ms),
        list(&ack_ms)
    ));
    run.notes.extend(incomplete);
    run.method.push(format!(
        "broadcast: {count} times, 500 ms apart, one `POST /1.1/rtm/broadcast` (master key, a system conversation) \
         whose text carries its send instant; every connected client records when the `direct` push arrives; the \
         figure is the latest arrival − the send instant (same process, monotonic clock). All {n} must receive it \
         within 30 s, else the figure is reported as not measured."
    ));
    Ok(())
}

async fn burst(run: &mut Run, rest: &mut Rest, conv: &str, alive: &[u32]) -> Result<(), String> {
    let n = alive.len();
    let count = run.args.burst_broadcasts.max(1);
    let base = run.args.broadcasts.max(1) + 1000;
    eprintln!("bench realtime: {count} broadcasts to {n} clients back to back");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first_sent = run.now_ns();
    for k in 0..count {
        send_broadcast(run, rest, conv, base + k).await?;
    }
    let sends_done = run.now_ns();
    let expected = n * count as usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut seen: HashSet<(u32, u32)> = HashSet::with_capacity(expected);
    let mut last_recv = first_sent;
    while seen.len() < expected {
        match run.next_received(deadline).await {
            Some((client, _, Kind::Broadcast, seq, _, recv))
                if seq >= base && seq < base + count =>
            {
                if seen.insert((client, seq)) {
                    last_recv = last_recv.max(recv);
                }
            }
            Some(_) => {}
            None => break,
        }
    }
    let secs = (last_recv - first_sent) as f64 / 1e9;
    let rate: report::Measure = if seen.len() == expected {
        Ok(expected as f64 / secs.max(1e-9))
    } else {
        Err(format!(
            "{} of {expected} delivered within 60 s",
            seen.len()
        ))
    };
    run.rows.push(row(
        &format!(
            "realtime: deliveries/s sustained ({count} broadcasts × {} clients, back to back)",
            group_thousands(n as u64)
        ),
        Unit::Rate,
        &rate,
        None,
        Target::None,
    ));
    run.notes.push(format!(
        "Back-to-back broadcasts: {count} sent in {:.0} ms ({:.1} ms per REST answer), all {} deliveries done {:.0} ms \
         after the first send.",
        ms(sends_done - first_sent),
        ms(sends_done - first_sent) / f64::from(count),
        group_thousands(seen.len() as u64),
        secs * 1000.0
    ));
    run.method.push(format!(
        "deliveries/s: {count} broadcasts sent one after another over one keep-alive connection, each as soon as \
         the previous was answered; (broadcasts × clients) / (the last arrival at any client − the first send)."
    ));
    Ok(())
}

/// `pairs` conversations of 2 logged-in clients `[a, b]` (`alive[2p]`, `alive[2p + 1]`), created over a few
/// connections at once; `(id, a, b)` in pair order.
async fn pair_conversations(
    run: &Run,
    alive: &[u32],
    pairs: usize,
    prefix: &'static str,
) -> Result<Vec<(String, u32, u32)>, String> {
    let chunks: Vec<Vec<usize>> = (0..8).map(|w| (w..pairs).step_by(8).collect()).collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let mut rest = run.rest();
        let members: Vec<(usize, u32, u32)> = chunk
            .into_iter()
            .map(|p| (p, alive[2 * p], alive[2 * p + 1]))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for (p, a, b) in members {
                let (pa, pb) = (client::peer_id(a), client::peer_id(b));
                let id = rest
                    .create_conversation(
                        &json!({"name": format!("{prefix}-{p}"), "m": [pa, pb], "c": pa}),
                    )
                    .await?;
                out.push((p, id, a, b));
            }
            Ok::<_, String>(out)
        }));
    }
    let mut made = Vec::new();
    for t in tasks {
        made.extend(t.await.map_err(|e| e.to_string())??);
    }
    made.sort_by_key(|m| m.0);
    Ok(made.into_iter().map(|(_, id, a, b)| (id, a, b)).collect())
}

/// Client sends with `r: true` (`direct` over the sender's own WebSocket, open loop at the latency run's rate):
/// each reaches the other member, whose client acknowledges it as the SDK does (`ack`), and the server sends the
/// delivery receipt (`rcp`) back to the sender; latency = the receipt's arrival − the send's write.
async fn receipts(run: &mut Run, clients: &[Option<Client>], alive: &[u32]) -> Result<(), String> {
    let pairs = (run.args.pairs as usize).min(alive.len() / 2).max(1);
    let rate = run.args.rate.max(1);
    let warmup = rate;
    let total = rate * (run.args.seconds.max(1) + 1);
    eprintln!("bench realtime: receipts: {pairs} conversations, {total} client sends with r: true at {rate}/s");
    let convs = pair_conversations(run, alive, pairs, "bench-receipts").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let period_ns = 1e9 / f64::from(rate);
    let mut late = 0u32;
    let mut queued = 0u32;
    for k in 0..total {
        let at = start + Duration::from_nanos((f64::from(k) * period_ns) as u64);
        if tokio::time::Instant::now() > at + Duration::from_millis(1) {
            late += 1;
        }
        tokio::time::sleep_until(at).await;
        let (conv, a, _) = &convs[k as usize % convs.len()];
        let Some(client) = clients.get(*a as usize).and_then(Option::as_ref) else {
            continue;
        };
        let ctrl = Ctrl::Direct {
            cid: conv.clone(),
            seq: k,
        };
        if client.ctrl.send(ctrl).await.is_ok() {
            queued += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    // A receipt takes the server more work than a delivery (the reader's `ack` moves its position and looks up
    // who asked): wait longer for the last ones, so a server that falls behind shows as latency, not as loss.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut got: HashSet<u32> = HashSet::with_capacity(queued as usize);
    let mut lat_ms = Vec::with_capacity(queued as usize);
    while got.len() < queued as usize {
        match run.next_received(deadline).await {
            Some((_, _, Kind::Receipt, seq, sent, recv)) => {
                if got.insert(seq) && seq >= warmup {
                    lat_ms.push(ms(recv.saturating_sub(sent)));
                }
            }
            Some(_) => {}
            None => break,
        }
    }
    let lost = queued as usize - got.len();
    let summary = stats::summarize(&lat_ms);
    let pick = |f: fn(&stats::Summary) -> f64| -> report::Measure {
        match (summary, lost) {
            (Some(s), 0) => Ok(f(&s)),
            (Some(_), l) => Err(format!("{l} receipts never arrived")),
            (None, _) => Err("no samples".into()),
        }
    };
    run.rows.push(row(
        &format!(
            "realtime: client send (`r: true`) → delivery receipt back at the sender, p50 ({} sends at {rate}/s, {pairs} 2-member conversations)",
            group_thousands((total - warmup).into())
        ),
        Unit::Millis,
        &pick(|s| s.median),
        None,
        Target::None,
    ));
    run.rows.push(row(
        "realtime: client send → delivery receipt, p99",
        Unit::Millis,
        &pick(|s| s.p99),
        None,
        Target::None,
    ));
    run.rows.push(row(
        "realtime: client sends with receipts/s achieved (open loop)",
        Unit::Rate,
        &Ok(f64::from(queued) / elapsed.max(1e-9)),
        None,
        Target::None,
    ));
    run.notes.push(format!(
        "Receipts: {queued} client sends with `r: true`, {} receipts back at their senders, {lost} never arrived{}.",
        got.len(),
        if late > 0 {
            format!("; {late} sends left more than 1 ms after their scheduled instant")
        } else {
            String::new()
        }
    ));
    run.method.push(format!(
        "send → receipt: {pairs} more conversations of 2 logged-in clients [a, b]; an open-loop schedule at {rate}/s          for {} s, round robin over them, of `direct` commands with `r: true` written by a's own WebSocket client          (text = the instant it was written); b's client answers each with `ack` {{cid, mid}} as the SDK does; a's          client matches the `rcp` push to its send by message id (from the server's `ack` of the send). Latency =          the `rcp`'s arrival − the send's write (one process, monotonic clock); the first second is warm-up. Every \
         send's receipt must arrive within 30 s of the last send, else the figure is reported as not measured.",
        run.args.seconds.max(1) + 1
    ));
    Ok(())
}

async fn latency(run: &mut Run, alive: &[u32]) -> Result<(), String> {
    let pairs = (run.args.pairs as usize).min(alive.len() / 2).max(1);
    if alive.len() < 2 {
        return Err("fewer than 2 clients connected".into());
    }
    let rate = run.args.rate.max(1);
    let warmup = rate; // the first second
    let total = rate * (run.args.seconds.max(1) + 1);
    eprintln!(
        "bench realtime: {pairs} conversations of 2 online clients, {total} sends at {rate}/s"
    );
    let convs = Arc::new(pair_conversations(run, alive, pairs, "bench-pair").await?);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let sched_server = rest::sched_ns(run.server.pid);
    let sched_client = rest::sched_ns(std::process::id());
    // open-loop sends: send k at start + k / rate, over `senders` keep-alive connections
    let senders = run.args.senders.max(1);
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let period_ns = 1e9 / f64::from(rate);
    let mut tasks = Vec::new();
    for w in 0..senders {
        let mut rest = run.rest();
        let convs = convs.clone();
        let epoch = run.epoch;
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            let mut late = 0u32;
            let mut errors = Vec::new();
            let mut k = w;
            while k < total {
                let at = start + Duration::from_nanos((f64::from(k) * period_ns) as u64);
                if tokio::time::Instant::now() > at + Duration::from_millis(1) {
                    late += 1;
                }
                tokio::time::sleep_until(at).await;
                let (conv, a, _) = &convs[k as usize % convs.len()];
                let sent = epoch.elapsed().as_nanos() as u64;
                let body = json!({
                    "from_peer": client::peer_id(*a),
                    "conv_id": conv,
                    "message": client::message_text(Kind::Message, k, sent),
                    "transient": false,
                });
                match rest.post_ok("/1.1/rtm/messages", &body).await {
                    Ok(_) => acks.push((k, epoch.elapsed().as_nanos() as u64 - sent)),
                    Err(e) => errors.push(e),
                }
                k += senders;
            }
            (acks, late, errors)
        }));
    }
    let mut acks = Vec::new();
    let mut late = 0;
    let mut errors = Vec::new();
    for t in tasks {
        let (a, l, e) = t.await.map_err(|e| e.to_string())?;
        acks.extend(a);
        late += l;
        errors.extend(e);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (server_after, client_after) = (
        rest::sched_ns(run.server.pid),
        rest::sched_ns(std::process::id()),
    );
    let (s_cpu, s_wait) = rest::sched_delta_ms(&sched_server, &server_after, None);
    let (w_cpu, w_wait) = rest::sched_delta_ms(&sched_server, &server_after, Some("sqlite-writer"));
    let (c_cpu, c_wait) = rest::sched_delta_ms(&sched_client, &client_after, None);
    run.notes.push(format!(
        "CPU during the {elapsed:.1} s of steady sends (`/proc/<pid>/task/*/schedstat`): the server's threads ran \
         {s_cpu:.0} ms and waited {s_wait:.0} ms runnable for a CPU (its store writer thread `sqlite-writer`: ran \
         {w_cpu:.0} ms, waited {w_wait:.0} ms); the load client ran {c_cpu:.0} ms and waited {c_wait:.0} ms."
    ));
    let ok: HashSet<u32> = acks.iter().map(|(k, _)| *k).collect();
    // receipts: by the other member (the latency), and by the sender's own session
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut received: HashSet<u32> = HashSet::with_capacity(ok.len());
    let mut own = 0u32;
    let mut lat_ms = Vec::with_capacity(ok.len());
    while received.len() < ok.len() {
        match run.next_received(deadline).await {
            Some((_, is_own, Kind::Message, seq, sent, recv)) => {
                if is_own {
                    own += 1;
                } else if received.insert(seq) && seq >= warmup {
                    lat_ms.push(ms(recv.saturating_sub(sent)));
                }
            }
            Some(_) => {}
            None => break,
        }
    }
    // the senders' own copies still in flight
    let drain = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Some((_, is_own, kind, ..)) = run.next_received(drain).await {
        if is_own && kind == Kind::Message {
            own += 1;
        }
    }
    let summary = stats::summarize(&lat_ms);
    let lost = ok.len() - received.len();
    let pick = |f: fn(&stats::Summary) -> f64| -> report::Measure {
        match (summary, lost) {
            (Some(s), 0) => Ok(f(&s)),
            (Some(_), l) => Err(format!("{l} sends never arrived")),
            (None, _) => Err("no samples".into()),
        }
    };
    let timed = total - warmup;
    run.rows.push(row(
        &format!("realtime: REST send → the other member receives it, p50 ({} sends at {rate}/s, {pairs} 2-member conversations)", group_thousands(timed.into())),
        Unit::Millis,
        &pick(|s| s.median),
        None,
        Target::None,
    ));
    run.rows.push(row(
        "realtime: REST send → the other member receives it, p99",
        Unit::Millis,
        &pick(|s| s.p99),
        None,
        Target::OursAtMost(TARGET_P99_MS),
    ));
    run.rows.push(row(
        "realtime: REST send → receive, max",
        Unit::Millis,
        &pick(|s| s.max),
        None,
        Target::None,
    ));
    run.rows.push(row(
        "realtime: sends/s achieved (open loop)",
        Unit::Rate,
        &Ok(acks.len() as f64 / elapsed.max(1e-9)),
        None,
        Target::OursAtLeast(f64::from(rate) * 0.98),
    ));
    let ack_samples: Vec<f64> = acks
        .iter()
        .filter(|(k, _)| *k >= warmup)
        .map(|(_, ns)| ms(*ns))
        .collect();
    let ack = stats::summarize(&ack_samples);
    run.rows.push(row(
        "realtime: `POST /1.1/rtm/messages` answered, p99",
        Unit::Millis,
        &ack.map(|s| s.p99).ok_or_else(|| "no samples".into()),
        None,
        Target::None,
    ));
    if !errors.is_empty() {
        run.notes.push(format!(
            "{} sends failed; the first: {}",
            errors.len(),
            errors[0]
        ));
    }
    if late > 0 {
        run.notes.push(format!(
            "{late} of {total} sends left more than 1 ms after their scheduled instant (a sender connection was \
             still waiting for the previous answer, or the load client was short of CPU)."
        ));
    }
    run.notes.push(format!(
        "Steady sends: {} acknowledged, {} received by the other member, {lost} never arrived; the sender's own \
         logged-in session received {own} of them (the server delivers a message to no session of its \
         sender, `from_peer` included). REST answer p50 {}.",
        acks.len(),
        received.len(),
        ack.map_or("n/a".into(), |s| format!("{:.2} ms", s.median))
    ));
    run.method.push(format!(
        "send → receive: {pairs} conversations of 2 logged-in clients [a, b] created through \
         `POST /1.1/classes/_Conversation`; then an open-loop schedule of `POST /1.1/rtm/messages` (from_peer a, \
         transient false) at {rate}/s for {} s, round robin over the conversations, spread over {senders} keep-alive \
         connections; the first second is warm-up and not counted. The message text carries the instant it was \
         written to the socket; b's client records the `direct` push's arrival; latency = arrival − send instant \
         (one process, monotonic clock), p50/p99 by nearest rank. Every acknowledged send must arrive within 5 s \
         of the last send, else the figure is reported as not measured.",
        run.args.seconds.max(1) + 1
    ));
    Ok(())
}
