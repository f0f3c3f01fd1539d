//! `users-bench`: what users and sessions cost (issue 24). Login latency (p50/p99) against the release server,
//! with the cost of one argon2id hash alone beside it (the slow hash is most of a login, by design); and the cost
//! of ACL checks: the same query of 100 objects as the app key alone and as a signed-in user (which also resolves
//! the session token), side by side in one run. Run by `bench/run.sh`; alone:
//!
//! ```text
//! cargo run --release -p bench --bin users-bench -- --logins 200
//! ```
//!
//! Nothing is asserted; the figures are printed (and appended to a Markdown file with `--append-to`).

#[path = "../stats.rs"]
#[allow(dead_code)]
mod stats;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use leancloud_server::{spawn, ServerConfig, DEV_APP_ID, DEV_APP_KEY};
use serde_json::{json, Value};

#[derive(Debug, Parser)]
#[command(
    name = "users-bench",
    about = "Login latency and the cost of ACL checks"
)]
struct Cli {
    /// Logins measured (one after another).
    #[arg(long, default_value_t = 200)]
    logins: usize,
    /// Queries measured per mode.
    #[arg(long, default_value_t = 300)]
    queries: usize,
    /// Append the figures as a section to this Markdown file (e.g. bench/RESULTS.md).
    #[arg(long)]
    append_to: Option<PathBuf>,
}

type Error = Box<dyn std::error::Error>;

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    session: Option<&str>,
    body: Option<Value>,
) -> Result<Value, Error> {
    let mut req = http
        .request(method, url)
        .header("X-LC-Id", DEV_APP_ID)
        .header("X-LC-Key", DEV_APP_KEY)
        .header("Content-Type", "application/json");
    if let Some(token) = session {
        req = req.header("X-LC-Session", token);
    }
    if let Some(body) = body {
        req = req.body(body.to_string());
    }
    let resp = req.send().await?;
    if !resp.status().is_success() {
        return Err(format!("{} {}", resp.status(), resp.text().await?).into());
    }
    Ok(resp.json().await?)
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cli = Cli::parse();
    let dir = tempfile_dir()?;
    let server = spawn(ServerConfig::for_tests(dir.join("db.sqlite3"))).await?;
    let base = server.base_url();
    let http = reqwest::Client::new();

    // The hash alone, on this machine.
    let mut hashes = Vec::new();
    for i in 0..20 {
        let started = Instant::now();
        let _ = leancloud_server::domain::credentials::hash_password(&format!("password-{i}"))
            .map_err(|e| e.to_string())?;
        hashes.push(ms(started));
    }

    let user = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/1.1/users"),
        None,
        Some(json!({"username": "bench", "password": "bench-password"})),
    )
    .await?;
    let token = user["sessionToken"].as_str().ok_or("no token")?.to_string();
    let id = user["objectId"].as_str().ok_or("no id")?.to_string();
    let mut logins = Vec::new();
    for _ in 0..cli.logins {
        let started = Instant::now();
        call(
            &http,
            reqwest::Method::POST,
            format!("{base}/1.1/login"),
            None,
            Some(json!({"username": "bench", "password": "bench-password"})),
        )
        .await?;
        logins.push(ms(started));
    }

    // 100 objects: half public, half readable by the user only.
    for i in 0..100 {
        let acl = if i % 2 == 0 {
            json!({"*": {"read": true}})
        } else {
            json!({id.clone(): {"read": true}})
        };
        call(
            &http,
            reqwest::Method::POST,
            format!("{base}/1.1/classes/Note"),
            None,
            Some(json!({"n": i, "ACL": acl})),
        )
        .await?;
    }
    let query = format!("{base}/1.1/classes/Note?limit=100");
    let (mut as_app, mut as_user) = (Vec::new(), Vec::new());
    for _ in 0..cli.queries {
        let started = Instant::now();
        let found = call(&http, reqwest::Method::GET, query.clone(), None, None).await?;
        as_app.push(ms(started));
        let seen_by_app = found["results"].as_array().map_or(0, Vec::len);
        let started = Instant::now();
        let found = call(
            &http,
            reqwest::Method::GET,
            query.clone(),
            Some(&token),
            None,
        )
        .await?;
        as_user.push(ms(started));
        let seen_by_user = found["results"].as_array().map_or(0, Vec::len);
        if (seen_by_app, seen_by_user) != (50, 100) {
            return Err(format!("ACL: the app saw {seen_by_app}, the user {seen_by_user}").into());
        }
    }
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);

    let s = |v: &[f64]| stats::summarize(v).ok_or("no samples");
    let (h, l, a, u) = (s(&hashes)?, s(&logins)?, s(&as_app)?, s(&as_user)?);
    let section = format!(
        "\n## Users and sessions (users-bench, issue 24)\n\n\
         Release server on loopback, SQLite; one client, requests one after another; milliseconds.\n\n\
         | measurement | p50 | p99 |\n|---|---|---|\n\
         | argon2id hash alone (m=19 MiB, t=2, p=1), in process | {:.1} | {:.1} |\n\
         | `POST /1.1/login` ({} logins) | {:.1} | {:.1} |\n\
         | query of 100 objects, app key (sees 50) | {:.2} | {:.2} |\n\
         | the same query with a session token (sees 100) | {:.2} | {:.2} |\n\n\
         A login is {:.0}% hash; a session costs a query {:.2}× the app key's (token lookup and ACL entries).\n",
        h.median,
        h.p99,
        cli.logins,
        l.median,
        l.p99,
        a.median,
        a.p99,
        u.median,
        u.p99,
        100.0 * h.median / l.median,
        u.median / a.median,
    );
    print!("{section}");
    if let Some(path) = &cli.append_to {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)?
            .write_all(section.as_bytes())?;
    }
    Ok(())
}

fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("users-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
