//! `bench instances` (issue 16): the server on SQLite, on PostgreSQL with one instance, and on PostgreSQL with two
//! instances sharing the database, measured in one run, one setup after the other:
//! - persisted sends/s: `senders` keep-alive connections, each sending to a conversation of its own as fast as
//!   it is answered (every answer comes after the commit), spread over the instances;
//! - REST send → client latency: a client logged in on the last instance; each message is sent through the
//!   first one (so, with two instances, it crosses the bus), one at a time; time from the request to the push.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;

use crate::realtime::client::{self, Event, Kind};
use crate::realtime::rest::{Rest, Server};
use crate::stats::summarize;

#[derive(Debug, Clone, clap::Args)]
pub struct InstancesArgs {
    /// The release server binary.
    #[arg(long, default_value = "target/release/leancloud-server")]
    server_bin: PathBuf,
    /// The PostgreSQL cluster (its maintenance database); each setup gets a new database on it.
    #[arg(long, env = "LEANCLOUD_TEST_POSTGRES")]
    postgres: String,
    /// Sender connections of the throughput phase.
    #[arg(long, default_value_t = 32)]
    senders: usize,
    /// Seconds of the throughput phase of each setup.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Messages whose delivery is timed, per setup.
    #[arg(long, default_value_t = 300)]
    latency_messages: u32,
    #[arg(long, default_value = "bench/out")]
    log_dir: PathBuf,
    /// Append the table to this Markdown file (`bench/run.sh`: bench/RESULTS.md).
    #[arg(long)]
    append_to: Option<PathBuf>,
    /// Small counts (a smoke run; figures not meaningful).
    #[arg(long)]
    quick: bool,
}

struct Figures {
    setup: &'static str,
    sends_per_sec: f64,
    failed: u64,
    p50_ms: f64,
    p99_ms: f64,
    delivered: usize,
}

fn credentials() -> (String, String) {
    let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    (
        var("LEANCLOUD_APP_ID", leancloud_server::DEV_APP_ID),
        var("LEANCLOUD_APP_MASTER_KEY", leancloud_server::DEV_MASTER_KEY),
    )
}

/// A new database on the cluster, by `psql` (the same tool the test scripts use).
fn fresh_database(admin: &str, name: &str) -> Result<String, String> {
    let out = std::process::Command::new("psql")
        .args(["-q", admin, "-c", &format!("CREATE DATABASE {name}")])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "psql: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let (url, query) = admin.split_once('?').unwrap_or((admin, ""));
    let (base, _) = url
        .rsplit_once('/')
        .ok_or("LEANCLOUD_TEST_POSTGRES has no database")?;
    Ok(if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    })
}

pub async fn instances(mut args: InstancesArgs) -> Result<(), String> {
    if args.quick {
        args.seconds = args.seconds.min(2);
        args.latency_messages = args.latency_messages.min(30);
        args.senders = args.senders.min(8);
    }
    std::fs::create_dir_all(&args.log_dir).map_err(|e| e.to_string())?;
    let (app_id, master_key) = credentials();
    let run = std::process::id();
    let setups: [(&'static str, Option<String>, usize); 3] = [
        ("SQLite, 1 instance", None, 1),
        (
            "PostgreSQL, 1 instance",
            Some(fresh_database(&args.postgres, &format!("bench_one_{run}"))?),
            1,
        ),
        (
            "PostgreSQL, 2 instances",
            Some(fresh_database(&args.postgres, &format!("bench_two_{run}"))?),
            2,
        ),
    ];
    let mut rows = Vec::new();
    for (setup, db, count) in setups {
        let mut servers = Vec::new();
        for i in 0..count {
            let env: Vec<(String, String)> = db
                .iter()
                .map(|url| ("LEANCLOUD_DATABASE_URL".to_string(), url.clone()))
                .collect();
            let log = args.log_dir.join(format!(
                "instances-{}-{i}.log",
                setup.replace([' ', ','], "")
            ));
            servers.push(Server::start(&args.server_bin, &log, &env).await?);
        }
        eprintln!("bench instances: {setup}");
        let result = measure(&args, setup, &servers, &app_id, &master_key).await;
        for server in &mut servers {
            server.stop().await;
        }
        rows.push(result?);
    }
    let md = table(&args, &rows);
    println!("\n{md}");
    if let Some(path) = &args.append_to {
        crate::report::append_markdown(path, &md)?;
    }
    Ok(())
}

async fn measure(
    args: &InstancesArgs,
    setup: &'static str,
    servers: &[Server],
    app_id: &str,
    master_key: &str,
) -> Result<Figures, String> {
    // Throughput: one conversation per sender, senders spread over the instances.
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut setup_rest = Rest::new(servers[0].addr, app_id, master_key);
    let mut workers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    for w in 0..args.senders {
        let conv = setup_rest
            .create_conversation(&json!({"name": format!("tp-{w}"), "m": ["a", "b"]}))
            .await?;
        let mut rest = Rest::new(servers[w % servers.len()].addr, app_id, master_key);
        let (ok, failed) = (ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let body = json!({"from_peer": "a", "conv_id": conv, "transient": false, "message": "throughput"});
            while Instant::now() < deadline {
                match rest.post("/1.1/rtm/messages", &body).await {
                    Ok((200, _)) => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let sends_per_sec = ok.load(Ordering::Relaxed) as f64 / elapsed;

    // Latency: the client on the last instance, the sends through the first.
    let epoch = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let receiver_addr = servers[servers.len() - 1].addr;
    let _client = client::connect(receiver_addr, Arc::from(app_id), 0, epoch, tx).await?;
    let conv = setup_rest
        .create_conversation(&json!({"name": "latency", "m": [client::peer_id(0), "sender"]}))
        .await?;
    let mut samples = Vec::new();
    for seq in 0..args.latency_messages {
        let sent_ns = epoch.elapsed().as_nanos() as u64;
        let text = client::message_text(Kind::Message, seq, sent_ns);
        setup_rest
            .post_ok(
                "/1.1/rtm/messages",
                &json!({"from_peer": "sender", "conv_id": conv, "transient": false, "message": text}),
            )
            .await?;
        let got = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(event) = rx.recv().await {
                match event {
                    Event::Received {
                        seq: s, recv_ns, ..
                    } if s == seq => return Ok(recv_ns),
                    Event::Closed { reason, .. } => return Err(reason),
                    _ => {}
                }
            }
            Err("client gone".to_string())
        })
        .await;
        match got {
            Ok(Ok(recv_ns)) => samples.push((recv_ns.saturating_sub(sent_ns)) as f64 / 1e6),
            Ok(Err(e)) => return Err(format!("{setup}: {e}")),
            Err(_) => return Err(format!("{setup}: message {seq} not delivered within 5 s")),
        }
    }
    let summary = summarize(&samples).ok_or("no latency samples")?;
    Ok(Figures {
        setup,
        sends_per_sec,
        failed: failed.load(Ordering::Relaxed),
        p50_ms: summary.median,
        p99_ms: summary.p99,
        delivered: samples.len(),
    })
}

fn table(args: &InstancesArgs, rows: &[Figures]) -> String {
    let base = rows.first().map_or(1.0, |r| r.sends_per_sec.max(1e-9));
    let mut md = format!(
        "## Storage backends and instances (`bench instances`, issue 16)\n\n\
         One run, setups one after the other on this machine: {} sender connections for {} s (one conversation \
         each, spread over the instances; every answer comes after the commit), then {} messages sent one at a \
         time through the first instance to a client on the last (with two instances each crosses the \
         PostgreSQL bus). PostgreSQL {}: a local cluster, `fsync` on, `synchronous_commit` on.\n\n\
         | setup | persisted sends/s | vs SQLite | failed | REST → client p50 | p99 | delivered |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        args.senders,
        args.seconds,
        args.latency_messages,
        postgres_version(&args.postgres)
    );
    for r in rows {
        md.push_str(&format!(
            "| {} | {:.0} | {:.2}× | {} | {:.2} ms | {:.2} ms | {} |\n",
            r.setup,
            r.sends_per_sec,
            r.sends_per_sec / base,
            r.failed,
            r.p50_ms,
            r.p99_ms,
            r.delivered
        ));
    }
    md
}

fn postgres_version(admin: &str) -> String {
    std::process::Command::new("psql")
        .args(["-Atc", "SHOW server_version", admin])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "(version unknown)".into())
}
