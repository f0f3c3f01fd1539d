//! `migrate-bench`: rows/s of `leancloud-migrate` export (against a local in-process `leancloud-server`)
//! and import (into a fresh database). Run by `bench/run.sh`; alone:
//!
//! ```text
//! cargo run --release -p bench --bin migrate-bench -- --messages 200000 --conversations 200
//! ```
//!
//! Seeding: a synthetic export (conversations and messages with realistic sizes) is imported into the
//! first database — that is the first import figure; a server on it is exported through the API (Scan +
//! 1.2 history, no rate limit) — the export figure; that export is imported into a second, fresh
//! database — the second import figure. Figures are reported against the target (import ≥ 50,000
//! messages/s), never asserted.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use leancloud_migrate::api::{config, Api, ApiOptions};
use leancloud_migrate::export::{export, ExportOptions};
use leancloud_server::{spawn, ServerConfig, DEV_APP_ID, DEV_MASTER_KEY};

const IMPORT_TARGET: f64 = 50_000.0;

#[derive(Debug, Parser)]
#[command(
    name = "migrate-bench",
    about = "Export and import rows/s of leancloud-migrate"
)]
struct Cli {
    /// Messages to seed.
    #[arg(long, default_value_t = 200_000)]
    messages: usize,
    /// Conversations they are spread over.
    #[arg(long, default_value_t = 200)]
    conversations: usize,
    /// Append the figures as a section to this Markdown file (e.g. bench/RESULTS.md).
    #[arg(long)]
    append_to: Option<PathBuf>,
}

fn header(kind: &str, class: Option<&str>) -> String {
    let class = class
        .map(|c| format!(",\"class\":\"{c}\""))
        .unwrap_or_default();
    format!(
        "{} {{\"type\":\"{kind}\"{class}}}\n",
        leancloud_server::import::HEADER_PREFIX
    )
}

/// A synthetic export directory: `conversations` conversations, `messages` messages round-robin.
fn synthesize(dir: &Path, conversations: usize, messages: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("classes"))?;
    let base = 1_767_225_600_000_i64; // 2026-01-01
    let mut convs = header("Class", Some("_Conversation"));
    for c in 0..conversations {
        let _ = writeln!(
            convs,
            "{{\"objectId\":\"{c:024x}\",\"name\":\"group {c}\",\"m\":[\"alice\",\"user{c}\"],\"c\":\"alice\",\"tr\":false,\"sys\":false,\"unique\":false,\"createdAt\":\"2025-06-01T00:00:00.000Z\",\"updatedAt\":\"2025-06-01T00:00:00.000Z\"}}"
        );
    }
    std::fs::write(dir.join("classes/_Conversation.0.jsonl"), convs)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("messages.jsonl"))?);
    out.write_all(header("Messages", None).as_bytes())?;
    for i in 0..messages {
        let c = i % conversations.max(1);
        writeln!(
            out,
            "{{\"timestamp\":{},\"conv-id\":\"{c:024x}\",\"data\":\"message {i}: see you at the usual place, bring the documents ✓\",\"from\":\"user{c}\",\"msg-id\":\"m{i:021}\",\"is-conv\":true,\"is-room\":false,\"to\":\"{c:024x}\",\"bin\":false,\"from-ip\":\"10.0.0.1\"}}",
            base + i as i64 * 7
        )?;
    }
    out.flush()?;
    std::fs::write(dir.join("manifest.json"), "{}\n")
}

fn import(db: &Path, source: &Path) -> Result<(u64, f64), String> {
    let started = Instant::now();
    let (summary, result) =
        leancloud_migrate::import::import(db, &[source.to_path_buf()], false, false, None);
    result.map_err(|e| e.to_string())?;
    Ok((summary.messages(), started.elapsed().as_secs_f64()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let tmp = std::env::temp_dir().join(format!("migrate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let result = run(&cli, &tmp).await;
    let _ = std::fs::remove_dir_all(&tmp);
    let lines = result?;
    for line in &lines {
        println!("{line}");
    }
    if let Some(path) = &cli.append_to {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)?;
        writeln!(f, "\n## Migration (leancloud-migrate)\n")?;
        writeln!(f, "`migrate-bench --messages {} --conversations {}` (release build, default durability):\n", cli.messages, cli.conversations)?;
        for line in &lines {
            writeln!(f, "- {line}")?;
        }
    }
    Ok(())
}

async fn run(cli: &Cli, tmp: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let seed_dir = tmp.join("seed");
    synthesize(&seed_dir, cli.conversations, cli.messages)?;
    let db1 = tmp.join("first.sqlite3");
    let (seeded, secs1) = {
        let (db1, seed_dir) = (db1.clone(), seed_dir.clone());
        tokio::task::spawn_blocking(move || import(&db1, &seed_dir)).await??
    };

    let server = spawn(ServerConfig::for_tests(&db1)).await?;
    let api = Api::new(
        config(
            Some(DEV_APP_ID),
            Some(DEV_MASTER_KEY),
            Some(&server.base_url()),
        )?,
        ApiOptions::default(),
    )?;
    let out = tmp.join("export");
    let started = Instant::now();
    let summary = export(
        &api,
        &ExportOptions {
            out: out.clone(),
            extra_classes: Vec::new(),
            progress: false,
            subscriber_history: false,
            files_only: false,
            downloads: leancloud_migrate::files::DownloadOptions::default(),
        },
    )
    .await?;
    let export_secs = started.elapsed().as_secs_f64();
    server.shutdown().await;

    let db2 = tmp.join("second.sqlite3");
    let (imported, secs2) = tokio::task::spawn_blocking(move || import(&db2, &out)).await??;
    let rate = |n: u64, s: f64| n as f64 / s.max(1e-9);
    let met = |r: f64| if r >= IMPORT_TARGET { "met" } else { "NOT met" };
    let (r1, r2) = (rate(seeded, secs1), rate(imported, secs2));
    Ok(vec![
        format!(
            "export (Scan + 1.2 history, local server, no rate limit): {} rows ({} messages, {} requests) in {:.2} s = {:.0} rows/s",
            summary.rows(),
            summary.messages,
            summary.requests,
            export_secs,
            rate(summary.rows(), export_secs)
        ),
        format!("import of the synthetic export: {seeded} messages in {secs1:.2} s = {r1:.0} messages/s (target ≥ 50,000: {})", met(r1)),
        format!("import of the API export into a fresh database: {imported} messages in {secs2:.2} s = {r2:.0} messages/s (target ≥ 50,000: {})", met(r2)),
    ])
}
