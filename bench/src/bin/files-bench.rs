//! `files-bench`: the file API's upload and download rate of one large file (10 MiB by default), with reqwest
//! (as an SDK or a backend would call it) and with `curl` on the same endpoints as the reference client; and
//! the rate at which `leancloud-migrate export` downloads file bodies from a file domain (a local stand-in
//! serving them from memory), beside `curl --parallel` fetching the same URLs. Run by `bench/run.sh`; alone:
//!
//! ```text
//! cargo run --release -p bench --bin files-bench -- --size-mib 10 --rounds 5
//! ```
//!
//! Every figure is the median of its rounds, measured side by side in one run; nothing is asserted.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use leancloud_migrate::files::{download_all, DownloadOptions, FileRow};
use leancloud_server::{spawn, ServerConfig, DEV_APP_ID, DEV_MASTER_KEY};
use serde_json::{json, Value};

#[derive(Debug, Parser)]
#[command(
    name = "files-bench",
    about = "Upload, download and export rates of file bodies"
)]
struct Cli {
    /// Size of the uploaded and downloaded file, MiB.
    #[arg(long, default_value_t = 10)]
    size_mib: usize,
    /// Rounds of each measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// File bodies the export downloads.
    #[arg(long, default_value_t = 200)]
    export_files: usize,
    /// Size of each of them, KiB.
    #[arg(long, default_value_t = 256)]
    export_kib: usize,
    /// Append the figures as a section to this Markdown file (e.g. bench/RESULTS.md).
    #[arg(long)]
    append_to: Option<PathBuf>,
}

type Error = Box<dyn std::error::Error>;

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Seconds `curl` takes for `args`; the transfer must answer `200`.
fn curl(args: &[&str]) -> Result<f64, String> {
    let started = Instant::now();
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code} "])
        .args(args)
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    let code = String::from_utf8_lossy(&out.stdout).to_string();
    if !code.split_whitespace().all(|c| c == "200") {
        return Err(format!("curl answered {code}"));
    }
    Ok(secs)
}

async fn file_token(http: &reqwest::Client, server: &str, name: &str) -> Result<Value, Error> {
    let token: Value = http
        .post(format!("{server}/1.1/fileTokens"))
        .header("X-LC-Id", DEV_APP_ID)
        .header("X-LC-Key", format!("{DEV_MASTER_KEY},master"))
        .header("Content-Type", "application/json")
        .body(json!({"name": name}).to_string())
        .send()
        .await?
        .json()
        .await?;
    Ok(token)
}

fn field(v: &Value, k: &str) -> Result<String, Error> {
    Ok(v[k].as_str().ok_or(format!("no {k} in {v}"))?.to_string())
}

/// Upload and download MB/s of one file, reqwest and curl.
async fn upload_download(cli: &Cli, tmp: &Path) -> Result<[f64; 4], Error> {
    let dir = tmp.join("server");
    std::fs::create_dir_all(&dir)?;
    let server = spawn(ServerConfig::for_tests(dir.join("db.sqlite3"))).await?;
    let base = server.base_url();
    let http = reqwest::Client::new();
    let body = bytes(cli.size_mib << 20, 7);
    let path = tmp.join("body.bin");
    std::fs::write(&path, &body)?;
    let body_arg = format!("@{}", path.display());
    let mb = body.len() as f64 / 1e6;
    let (mut up, mut up_curl, mut down, mut down_curl) = (vec![], vec![], vec![], vec![]);
    for round in 0..cli.rounds {
        let token = file_token(&http, &base, &format!("r{round}.bin")).await?;
        let started = Instant::now();
        let put = http
            .put(field(&token, "upload_url")?)
            .header("Content-Type", "application/octet-stream")
            .body(body.clone())
            .send()
            .await?;
        if put.status() != reqwest::StatusCode::OK {
            return Err(format!("upload answered {}", put.status()).into());
        }
        up.push(mb / started.elapsed().as_secs_f64());
        let url = field(&token, "url")?;
        let started = Instant::now();
        let got = http.get(&url).send().await?.bytes().await?;
        down.push(mb / started.elapsed().as_secs_f64());
        if got.len() != body.len() {
            return Err("the download is not the upload".into());
        }
        let token = file_token(&http, &base, &format!("c{round}.bin")).await?;
        let upload_url = field(&token, "upload_url")?;
        let secs = tokio::task::spawn_blocking({
            let body_arg = body_arg.clone();
            move || {
                curl(&[
                    "-X",
                    "PUT",
                    "-H",
                    "Content-Type: application/octet-stream",
                    "--data-binary",
                    &body_arg,
                    &upload_url,
                ])
            }
        })
        .await??;
        up_curl.push(mb / secs);
        let secs = tokio::task::spawn_blocking(move || curl(&[&url]))
            .await?
            .map_err(|e| e.to_string())?;
        down_curl.push(mb / secs);
    }
    server.shutdown().await;
    Ok([median(up), median(up_curl), median(down), median(down_curl)])
}

/// The export's download rate of `export_files` bodies from a stand-in domain, and curl's on the same URLs:
/// (MB/s, files/s) each.
async fn export_rate(cli: &Cli, tmp: &Path) -> Result<[f64; 4], Error> {
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..cli.export_files)
            .map(|i| bytes(cli.export_kib << 10, 100 + i as u64))
            .collect(),
    );
    let app = axum::Router::new()
        .route(
            "/f/{n}",
            axum::routing::get(
                |axum::extract::State(b): axum::extract::State<Arc<Vec<Vec<u8>>>>,
                 axum::extract::Path(n): axum::extract::Path<usize>| async move {
                    b.get(n).cloned().unwrap_or_default()
                },
            ),
        )
        .with_state(bodies.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let domain = tokio::spawn(async move { axum::serve(listener, app).await });
    let urls: Vec<String> = (0..cli.export_files)
        .map(|n| format!("http://{addr}/f/{n}"))
        .collect();
    let rows: Vec<FileRow> = urls
        .iter()
        .enumerate()
        .map(|(n, url)| FileRow {
            id: format!("file{n:05}"),
            url: Some(url.clone()),
            size: Some((cli.export_kib << 10) as u64),
            checksum: None,
        })
        .collect();
    let total_mb = (cli.export_files * (cli.export_kib << 10)) as f64 / 1e6;
    let options = DownloadOptions {
        max_downloads_per_second: 0.0,
        concurrency: 4,
        timeout: Duration::from_secs(30),
        ..DownloadOptions::default()
    };
    let (mut ours, mut theirs) = (vec![], vec![]);
    for round in 0..cli.rounds.min(3) {
        let dir = tmp.join(format!("export{round}"));
        std::fs::create_dir_all(&dir)?;
        let multi = indicatif_hidden();
        let started = Instant::now();
        let summary = download_all(&dir, &rows, &options, &multi).await?;
        ours.push(started.elapsed().as_secs_f64());
        if summary.downloaded as usize != rows.len() {
            return Err(format!("{} of {} downloaded", summary.downloaded, rows.len()).into());
        }
        let urls = urls.clone();
        let secs = tokio::task::spawn_blocking(move || {
            let mut args: Vec<&str> = vec!["--parallel", "--parallel-max", "4"];
            for u in &urls {
                args.extend(["-o", "/dev/null", u.as_str()]);
            }
            curl(&args)
        })
        .await??;
        theirs.push(secs);
    }
    domain.abort();
    let (ours, theirs) = (median(ours), median(theirs));
    let n = cli.export_files as f64;
    Ok([total_mb / ours, n / ours, total_mb / theirs, n / theirs])
}

fn indicatif_hidden() -> indicatif::MultiProgress {
    indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cli = Cli::parse();
    let tmp = std::env::temp_dir().join(format!("files-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let [up, up_curl, down, down_curl] = upload_download(&cli, &tmp).await?;
    let [mbps, fps, curl_mbps, curl_fps] = export_rate(&cli, &tmp).await?;
    let _ = std::fs::remove_dir_all(&tmp);
    let mut section = String::new();
    let _ = writeln!(
        section,
        "\n## Files (issue 23)\n\n`bench/src/bin/files-bench.rs`, release build, one run, medians of {} rounds; the server \
         in-process on loopback, bodies on local disk. The export fsyncs every body (and renames it into place) \
         before it counts as saved; curl writes to /dev/null.\n",
        cli.rounds
    );
    let _ = writeln!(
        section,
        "| measurement | reqwest (ours) | curl (reference) | ratio |"
    );
    let _ = writeln!(section, "|---|---:|---:|---:|");
    for (what, a, b) in [
        (
            format!("upload of {} MiB (PUT upload_url), MB/s", cli.size_mib),
            up,
            up_curl,
        ),
        (
            format!("download of {} MiB (GET url), MB/s", cli.size_mib),
            down,
            down_curl,
        ),
        (
            format!(
                "export: {} bodies of {} KiB from a file domain, 4 at a time, MB/s",
                cli.export_files, cli.export_kib
            ),
            mbps,
            curl_mbps,
        ),
        ("export: the same, files/s".to_string(), fps, curl_fps),
    ] {
        let _ = writeln!(
            section,
            "| {what} | {a:.1} | {b:.1} | {:.2}× |",
            a / b.max(1e-9)
        );
    }
    print!("{section}");
    if let Some(path) = &cli.append_to {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)?;
        f.write_all(section.as_bytes())?;
    }
    Ok(())
}
