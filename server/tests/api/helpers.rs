//! Test harness: a fresh server per test and a small HTTP client that signs like the SDK.
//!
//! `scripts/test.sh` runs the suite twice: every server on its own SQLite file, then with
//! `LEANCLOUD_TEST_BACKEND=postgres` every server on its own PostgreSQL database, created on the cluster at
//! `LEANCLOUD_TEST_POSTGRES` (which the script starts).

use leancloud_server::{
    spawn, RunningServer, ServerConfig, DEV_APP_ID, DEV_APP_KEY, DEV_MASTER_KEY,
};
use std::process::{Child, Command, Stdio};

use md5::{Digest, Md5};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Master,
    App,
}

pub struct TestApp {
    pub server: RunningServer,
    pub dir: TempDir,
    pub client: reqwest::Client,
    /// What the server was started with: the same database again for a restart.
    pub config: ServerConfig,
}

/// Whether this run of the suite is the PostgreSQL one.
pub fn on_postgres() -> bool {
    std::env::var("LEANCLOUD_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// A database for one server: a SQLite file in `dir`, or a new PostgreSQL database.
/// On PostgreSQL the file bodies go to a new bucket of the test S3 store too, when there is one (the setup of
/// several instances: one database, one bucket).
pub async fn database(dir: &std::path::Path, config: &mut ServerConfig) {
    config.db_path = dir.join("test.sqlite3");
    if on_postgres() {
        config.postgres = Some(leancloud_server::PostgresConfig {
            url: fresh_postgres().await,
            ca_file: None,
        });
        config.files.s3 = fresh_bucket(false).await;
    }
}

/// A new bucket on the test S3 store (`LEANCLOUD_TEST_S3`, moto, started by scripts/test.sh), as the server's
/// file store. `None` without one, unless `required` (or `CI` is set): then that is a failure.
pub async fn fresh_bucket(required: bool) -> Option<leancloud_server::config::S3Store> {
    let Ok(endpoint) = std::env::var("LEANCLOUD_TEST_S3") else {
        assert!(
            !required && std::env::var_os("CI").is_none(),
            "LEANCLOUD_TEST_S3 names the S3 stand-in of the suite's PostgreSQL run: run scripts/test.sh, which \
             starts one"
        );
        return None;
    };
    let bucket = format!("t-{}", hex::encode(rand::random::<[u8; 8]>()));
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("S3 stand-in reachable");
    assert!(created.status().is_success(), "bucket {bucket} created");
    Some(leancloud_server::config::S3Store {
        bucket,
        prefix: "app/".into(),
        endpoint: Some(endpoint),
        region: None,
        tls_roots: leancloud_im::TlsRoots::default(),
    })
}

/// `--db` for a server binary on a fresh database: the SQLite file `name` in `dir`, or a new PostgreSQL
/// database's URL.
pub async fn database_arg(dir: &std::path::Path, name: &str) -> String {
    if on_postgres() {
        fresh_postgres().await
    } else {
        dir.join(name).display().to_string()
    }
}

/// Creates an empty database on the test cluster and returns its URL.
pub async fn fresh_postgres() -> String {
    let admin = std::env::var("LEANCLOUD_TEST_POSTGRES").expect(
        "LEANCLOUD_TEST_POSTGRES names the PostgreSQL cluster of the suite's PostgreSQL run: run \
         scripts/test.sh, which starts one",
    );
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("test cluster reachable");
    let driver = tokio::spawn(connection);
    let name = format!("t_{}", hex::encode(rand::random::<[u8; 8]>()));
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("database created");
    drop(client);
    let _ = driver.await;
    database_url(&admin, &name)
}

/// The URL of database `name` on the cluster of `admin` (the same host, user and options).
pub fn database_url(admin: &str, name: &str) -> String {
    let (url, query) = admin.split_once('?').unwrap_or((admin, ""));
    let (base, _) = url.rsplit_once('/').expect("URL with a database");
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    }
}

/// A loopback port nobody listens on yet.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The server binary on `127.0.0.1:port` with the database `db` (a file or a PostgreSQL URL) and the development
/// app's keys, warnings only; what it prints is dropped unless the caller pipes it.
pub fn server_command(db: &str, port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leancloud-server"));
    cmd.args(["--listen", &format!("127.0.0.1:{port}"), "--db", db])
        .env("LEANCLOUD_APP_ID", DEV_APP_ID)
        .env("LEANCLOUD_APP_KEY", DEV_APP_KEY)
        .env("LEANCLOUD_APP_MASTER_KEY", DEV_MASTER_KEY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// A server process, killed when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd`, a [`server_command`] on `port`: the process and its base URL.
pub fn start(mut cmd: Command, port: u16) -> (KillOnDrop, String) {
    let child = cmd.spawn().expect("the binary starts");
    (KillOnDrop(child), format!("http://127.0.0.1:{port}"))
}

/// The server binary on `db` and a free port: the process and its base URL.
pub fn start_binary(db: &str) -> (KillOnDrop, String) {
    let port = free_port();
    start(server_command(db, port), port)
}

/// Waits until the server `child` at `base` answers its health check with success; panics with its exit status
/// (and what it wrote, when its stderr is piped) if it exits first, or after 10 s.
pub async fn wait_ready(child: &mut KillOnDrop, base: &str) {
    let client = reqwest::Client::new();
    for _ in 0..500 {
        if let Ok(Some(status)) = child.0.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.0.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            panic!("the server at {base} exited ({status}): {stderr}");
        }
        if client
            .get(format!("{base}/__admin/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("server at {base} never became ready");
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(configure: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::for_tests(dir.path().join("test.sqlite3"));
    database(dir.path(), &mut config).await;
    configure(&mut config);
    let server = spawn(config.clone()).await.expect("server starts");
    let client = reqwest::Client::builder().build().expect("client");
    TestApp {
        server,
        dir,
        client,
        config,
    }
}

/// Two servers on one new PostgreSQL database, as two instances behind a load balancer would run (whatever
/// backend the rest of the suite is on: only PostgreSQL can be shared).
pub async fn spawn_instances(configure: impl Fn(&mut ServerConfig)) -> [TestApp; 2] {
    let url = fresh_postgres().await;
    let mut apps = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = ServerConfig::for_tests(dir.path().join("unused.sqlite3"));
        config.postgres = Some(leancloud_server::PostgresConfig {
            url: url.clone(),
            ca_file: None,
        });
        configure(&mut config);
        let server = spawn(config.clone()).await.expect("server starts");
        apps.push(TestApp {
            server,
            dir,
            client: reqwest::Client::new(),
            config,
        });
    }
    let [a, b]: [TestApp; 2] = apps.try_into().ok().expect("two");
    [a, b]
}

/// `X-LC-Sign` as the SDK computes it.
pub fn sign(ts: &str, key: &str, master: bool) -> String {
    let mut md5 = Md5::new();
    md5.update(ts.as_bytes());
    md5.update(key.as_bytes());
    let hex = hex::encode(md5.finalize());
    if master {
        format!("{hex},{ts},master")
    } else {
        format!("{hex},{ts}")
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    /// A request signed like the Python SDK (`X-LC-Sign`).
    pub fn request(&self, key: Key, method: Method, path: &str) -> RequestBuilder {
        let builder = self
            .client
            .request(method, self.url(path))
            .header("Content-Type", "application/json;charset=utf-8");
        let ts = "1795629353982";
        match key {
            Key::Master => builder
                .header("X-LC-Id", DEV_APP_ID)
                .header("X-LC-Sign", sign(ts, DEV_MASTER_KEY, true)),
            Key::App => builder
                .header("X-LC-Id", DEV_APP_ID)
                .header("X-LC-Sign", sign(ts, DEV_APP_KEY, false)),
        }
    }

    pub async fn call(
        &self,
        key: Key,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut builder = self.request(key, method, path);
        if let Some(body) = body {
            builder = builder.body(body.to_string());
        }
        let response = builder.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body read");
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("JSON body expected, got {text:?}"));
        (status, value)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Key::Master, Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Key::Master, Method::PUT, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Key::Master, Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(
            Key::Master,
            Method::DELETE,
            path,
            Some(serde_json::json!({})),
        )
        .await
    }

    /// Signs up user `name` (password `p`) with the app key: its id and session token.
    pub async fn user(&self, name: &str) -> (String, String) {
        let (status, u) = self
            .call(
                Key::App,
                Method::POST,
                "/1.1/users",
                Some(serde_json::json!({"username": name, "password": "p"})),
            )
            .await;
        assert_eq!(StatusCode::CREATED, status, "{u}");
        (
            u["objectId"].as_str().expect("id").to_string(),
            u["sessionToken"].as_str().expect("token").to_string(),
        )
    }

    /// A request with the app key, as the user whose session `token` is (none: the app key alone); a body that
    /// is not JSON reads as `null`.
    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.request(Key::App, method, path);
        if let Some(token) = token {
            req = req.header("X-LC-Session", token);
        }
        if let Some(body) = body {
            req = req.body(body.to_string());
        }
        let res = req.send().await.expect("sent");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Creates a conversation with the master key and returns its id.
    pub async fn conversation(&self, body: Value) -> String {
        let (status, created) = self
            .post("/1.1/classes/_Conversation?fetchWhenSave=false", body)
            .await;
        assert!(
            status.is_success(),
            "conversation not created: {status} {created}"
        );
        created["objectId"].as_str().expect("objectId").to_string()
    }

    pub async fn send(&self, body: Value) -> (StatusCode, Value) {
        self.post("/1.1/rtm/messages", body).await
    }
}

/// A query-string value, percent-encoded.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub fn is_iso_millis(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    s.len() == 24 && s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}
