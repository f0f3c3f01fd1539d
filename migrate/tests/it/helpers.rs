//! Servers on fresh databases, a seeded app, and the real `leancloud-migrate` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use futures::stream::{self, StreamExt};
use leancloud_server::{spawn, RunningServer, ServerConfig};
use serde_json::{json, Value};
use tempfile::TempDir;

pub const APP_ID: &str = "dev-app-id-gzGzoHsz";
pub const MASTER_KEY: &str = "dev-master-key";

pub struct Server {
    pub server: RunningServer,
    pub http: reqwest::Client,
    _dir: TempDir,
}

impl Server {
    pub async fn fresh() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("leancloud.sqlite3");
        Server::on(dir, db).await
    }

    /// A server on an existing database file (kept alive by `dir`).
    pub async fn on(dir: TempDir, db: PathBuf) -> Server {
        let server = spawn(ServerConfig::for_tests(&db))
            .await
            .expect("server starts");
        Server {
            server,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// A server on a PostgreSQL database (`url`).
    pub async fn on_postgres(url: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = ServerConfig::for_tests(dir.path().join("unused.sqlite3"));
        config.postgres = Some(leancloud_server::PostgresConfig {
            url: url.to_string(),
            ca_file: None,
        });
        let server = spawn(config).await.expect("server starts on PostgreSQL");
        Server {
            server,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        self.server.base_url()
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.url()))
            .header("X-LC-Id", APP_ID)
            .header("X-LC-Key", format!("{MASTER_KEY},master"))
            .header("Content-Type", "application/json");
        if let Some(body) = body {
            req = req.body(body.to_string());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let value: Value = resp.json().await.expect("json answer");
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value
    }

    pub async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn create(&self, class: &str, body: Value) -> String {
        let created = self.post(&format!("/1.1/classes/{class}"), body).await;
        created["objectId"].as_str().expect("objectId").to_string()
    }

    /// Every object of a class through the Scan API (ACL included).
    pub async fn scan(&self, class: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/1.1/scan/classes/{class}?limit=1000&returnACL=true");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = self.get(&path).await;
            out.extend(page["results"].as_array().expect("results").iter().cloned());
            match page["cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }

    /// A conversation's whole history through the 1.2 API, oldest first.
    pub async fn history(&self, conv: &str) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        loop {
            let mut path =
                format!("/1.2/rtm/conversations/{conv}/messages?limit=1000&reversed=true");
            if let Some(last) = out.last() {
                path.push_str(&format!(
                    "&timestamp={}&msgid={}",
                    last["timestamp"],
                    last["msg-id"].as_str().expect("msg-id")
                ));
            }
            let page = self.get(&path).await;
            let page = page.as_array().expect("array").clone();
            let n = page.len();
            out.extend(page);
            if n < 1000 {
                return out;
            }
        }
    }
}

/// What [`seed`] created.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub conversations: Vec<String>,
    pub system: String,
    pub messages: usize,
}

/// Conversations of every kind (normal with custom attributes and ACL, unique, chat room, system, a
/// service conversation with subscribers), `messages` messages over them (text, JSON, unicode, messages
/// to chosen clients), a `_SysMessage`, and a `Post` class with dates and pointers.
pub async fn seed(server: &Server, extra_conversations: usize, messages: usize) -> Seeded {
    // Class permissions the app set (exported from a leancloud-server, imported with the rest).
    server
        .call(
            reqwest::Method::PUT,
            "/__admin/class-permissions/Post",
            Some(json!({"delete": {"roles": ["mods"]}, "add_fields": {"users": []}})),
        )
        .await;
    let mut conversations = Vec::new();
    conversations.push(
        server
            .create(
                "_Conversation",
                json!({"name": "Support ✓ 客服 🚀", "m": ["alice", "bob"], "c": "alice",
                    "attr": {"topic": "billing", "level": 2}, "priority": 3, "tags": ["a", "b"],
                    "ACL": {"*": {"read": true}, "alice": {"read": true, "write": true}}}),
            )
            .await,
    );
    conversations.push(
        server
            .create(
                "_Conversation",
                json!({"name": "dm", "m": ["alice", "carol"], "unique": true}),
            )
            .await,
    );
    conversations.push(
        server
            .create(
                "_Conversation",
                json!({"name": "lobby", "tr": true, "m": []}),
            )
            .await,
    );
    let system = server
        .create(
            "_Conversation",
            json!({"name": "Announcements", "sys": true}),
        )
        .await;
    conversations.push(system.clone());
    for i in 0..extra_conversations {
        conversations.push(
            server
                .create(
                    "_Conversation",
                    json!({"name": format!("group {i}"), "m": ["alice", format!("user{i}")],
                        "createdFor": {"__type": "Date", "iso": "2026-01-02T03:04:05.678Z"}}),
                )
                .await,
        );
    }
    for client in ["alice", "bob", "zoë", "user-0001"] {
        server
            .post(
                &format!("/1.2/rtm/service-conversations/{system}/subscribers"),
                json!({"client_id": client}),
            )
            .await;
    }
    let post = server
        .create(
            "Post",
            json!({"title": "héllo", "when": {"__type": "Date", "iso": "2025-12-31T23:59:59.999Z"},
                "conv": {"__type": "Pointer", "className": "_Conversation", "objectId": conversations[0]},
                "ACL": {"*": {"read": true}}}),
        )
        .await;
    server
        .create("Post", json!({"title": "second", "parent": {"__type": "Pointer", "className": "Post", "objectId": post}}))
        .await;
    server
        .create(
            "_SysMessage",
            json!({"conv": {"__type": "Pointer", "className": "_Conversation", "objectId": system},
                "from": "alice", "data": "feedback", "msgId": "legacy-1", "timestamp": 1_700_000_000_000_i64, "bin": false}),
        )
        .await;

    let convs = conversations.clone();
    let system_id = system.clone();
    stream::iter(0..messages)
        .map(|i| {
            let conv = convs[i % convs.len()].clone();
            let system = conv == system_id;
            let message = match i % 3 {
                0 => json!(format!("message {i}: 你好, мир ✓")),
                1 => json!({"_lctype": -1, "_lctext": format!("rich {i}"), "_lcattrs": {"n": i}}),
                _ => json!(format!("plain {i}")),
            };
            let mut body = json!({"from_peer": if i % 2 == 0 { "alice" } else { "bob" },
                "conv_id": conv, "message": message, "transient": false});
            if system && (i / convs.len()) % 2 == 0 {
                body["to_peers"] = json!(["bob", "zoë"]);
            }
            async move { server.post("/1.1/rtm/messages", body).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    Seeded {
        conversations,
        system,
        messages,
    }
}

/// A new, empty database on the PostgreSQL cluster at `LEANCLOUD_TEST_POSTGRES` (scripts/test.sh starts one).
pub fn fresh_postgres() -> String {
    let admin = std::env::var("LEANCLOUD_TEST_POSTGRES")
        .expect("LEANCLOUD_TEST_POSTGRES names a PostgreSQL cluster (scripts/test.sh starts one)");
    let name = format!("mig_{}", std::process::id() as u64 * 1000 + rand_suffix());
    let status = Command::new("psql")
        .args(["-q", &admin, "-c", &format!("CREATE DATABASE {name}")])
        .status()
        .expect("psql runs");
    assert!(status.success(), "database created");
    let (url, query) = admin.split_once('?').unwrap_or((&admin, ""));
    let (base, _) = url.rsplit_once('/').expect("URL with a database");
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Runs the binary to completion with the development credentials pointed at `api`.
pub fn migrate(api: &str, args: &[&str]) -> Output {
    let output = command(api, args).output().expect("leancloud-migrate runs");
    eprintln!(
        "leancloud-migrate {args:?} → {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// [`migrate`] on a blocking thread, so the servers of the test (on this runtime) keep answering it.
pub async fn migrate_in_background(api: &str, args: &[&str]) -> Output {
    let api = api.to_string();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        migrate(&api, &args)
    })
    .await
    .expect("leancloud-migrate task")
}

pub fn command(api: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leancloud-migrate"));
    cmd.args(args)
        .env("LEANCLOUD_APP_ID", APP_ID)
        .env("LEANCLOUD_APP_MASTER_KEY", MASTER_KEY)
        .env("LEANCLOUD_API_SERVER", api)
        .env_remove("LEANCLOUD_APP_KEY");
    cmd
}

/// The data lines of an export file (header skipped).
pub fn data_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines();
    if let Some(first) = lines.next() {
        assert!(
            first.starts_with("#filetype:JSON-streaming"),
            "{}: header {first}",
            path.display()
        );
    }
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

pub fn md5_of(text: &str) -> u128 {
    use md5::{Digest, Md5};
    u128::from_be_bytes(Md5::digest(text.as_bytes()).into())
}
