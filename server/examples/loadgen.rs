//! Load generator: persisted sends per second against a fresh server.
//!
//! Run with `cargo run --release -p leancloud-server --example loadgen -- [SECONDS] [CONCURRENCY] [BASE_URL]`.
//! Without `BASE_URL` it starts the server in-process on a fresh temporary database (no request logging), with
//! `--durability full` (the server's default) or `LOADGEN_DURABILITY=normal`, and with metrics counted
//! (`--metrics-listen`) when `LOADGEN_METRICS=1`;
//! with it, it targets a running server that uses the development credentials. Every send is acknowledged
//! only after its commit, so acknowledged sends/s = persisted sends/s; the in-process run also counts the
//! stored rows to confirm it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use leancloud_server::{spawn, Durability, ServerConfig, DEV_APP_ID, DEV_MASTER_KEY};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(10);
    let concurrency: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(64);
    let dir = tempfile::tempdir()?;
    let (base, server) = match args.get(2) {
        Some(url) => (url.trim_end_matches('/').to_string(), None),
        None => {
            let mut config = ServerConfig::for_tests(dir.path().join("bench.sqlite3"));
            config.durability = match std::env::var("LOADGEN_DURABILITY").as_deref() {
                Ok("normal") => Durability::Normal,
                _ => Durability::Full,
            };
            if std::env::var("LOADGEN_METRICS").as_deref() == Ok("1") {
                config.metrics_listen = Some("127.0.0.1:0".parse()?);
            }
            let server = spawn(config).await?;
            (server.base_url(), Some(server))
        }
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let master = format!("{DEV_MASTER_KEY},master");
    let created: serde_json::Value = client
        .post(format!("{base}/1.1/classes/_Conversation"))
        .header("X-LC-Id", DEV_APP_ID)
        .header("X-LC-Key", &master)
        .json(&serde_json::json!({"name": "bench", "m": ["a", "b"]}))
        .send()
        .await?
        .json()
        .await?;
    let conv_id = created["objectId"]
        .as_str()
        .ok_or("no objectId")?
        .to_string();
    let body = serde_json::json!({"from_peer": "a", "conv_id": conv_id, "transient": false, "message": "hello from the load generator"}).to_string();

    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let addr = base.trim_start_matches("http://").to_string();
    let request = format!(
        "POST /1.1/rtm/messages HTTP/1.1\r\nHost: {addr}\r\nX-LC-Id: {DEV_APP_ID}\r\nX-LC-Key: {master}\r\n\
         Content-Type: application/json;charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (addr, request) = (addr.clone(), request.clone());
        let (ok, failed) = (ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            // A minimal keep-alive HTTP/1.1 client, so that the generator's own CPU use stays small next
            // to the server's on a 2-core machine.
            let Ok(mut stream) = TcpStream::connect(&addr).await else {
                failed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let _ = stream.set_nodelay(true);
            let mut buf = Vec::with_capacity(4096);
            while Instant::now() < deadline {
                match round_trip(&mut stream, request.as_bytes(), &mut buf).await {
                    Ok(true) => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(false) => failed.fetch_add(1, Ordering::Relaxed),
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                };
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let acknowledged = ok.load(Ordering::Relaxed);
    println!(
        "loadgen: {acknowledged} acknowledged sends, {} failed, in {elapsed:.2} s with {concurrency} concurrent requests",
        failed.load(Ordering::Relaxed)
    );
    if let Some(server) = server {
        let stored = server.inspect().messages(&conv_id).len() as u64;
        println!(
            "loadgen: {stored} messages stored (acknowledged and persisted: {})",
            stored >= acknowledged
        );
        server.shutdown().await;
    }
    println!(
        "loadgen: {:.0} persisted sends/s",
        acknowledged as f64 / elapsed
    );
    Ok(())
}

/// Sends one request and reads one response; `Ok(true)` for a 200.
async fn round_trip(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    stream.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() >= end + 4 + length {
            return Ok(head.starts_with("http/1.1 200"));
        }
    }
}
