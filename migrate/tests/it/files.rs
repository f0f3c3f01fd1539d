//! File bodies: `export` saves the bytes behind every `_File` row from a stand-in file domain (a local HTTP
//! server playing LeanCloud's), checks them, lists what failed, retries it on a re-run and never fetches a
//! saved body twice, killed or not.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use md5::{Digest, Md5};
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use crate::helpers::{command, data_lines, migrate, migrate_in_background, s, seed, Server};

/// What the stand-in serves for one key.
#[derive(Debug, Clone)]
enum Serve {
    Body(Vec<u8>),
    /// This status this many times, then the body.
    FailThen(u16, u32, Vec<u8>),
    /// The body in 64 KiB chunks, each after a pause.
    Slow(Vec<u8>, Duration),
}

#[derive(Debug, Default)]
struct Domain {
    serve: BTreeMap<String, Serve>,
    hits: BTreeMap<String, u32>,
    /// Headers of every request whose name starts with `x-lc` (none may arrive: the master key stays home).
    leancloud_headers: Vec<String>,
}

/// A stand-in for LeanCloud's file domain: `GET /<key>`.
struct FileDomain {
    addr: SocketAddr,
    state: Arc<Mutex<Domain>>,
    task: tokio::task::JoinHandle<()>,
}

impl FileDomain {
    async fn start(serve: BTreeMap<String, Serve>) -> FileDomain {
        let state = Arc::new(Mutex::new(Domain {
            serve,
            ..Domain::default()
        }));
        let app = axum::Router::new()
            .route("/{*key}", axum::routing::get(get_file))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("stand-in serves");
        });
        FileDomain { addr, state, task }
    }

    fn url(&self, key: &str) -> String {
        format!("http://{}/{key}", self.addr)
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> BTreeMap<String, u32> {
        self.state.lock().expect("lock").hits.clone()
    }

    fn set(&self, key: &str, serve: Serve) {
        self.state
            .lock()
            .expect("lock")
            .serve
            .insert(key.to_string(), serve);
    }

    fn leancloud_headers(&self) -> Vec<String> {
        self.state.lock().expect("lock").leancloud_headers.clone()
    }
}

impl Drop for FileDomain {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn get_file(
    State(state): State<Arc<Mutex<Domain>>>,
    UrlPath(key): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let serve = {
        let mut domain = state.lock().expect("lock");
        for name in headers.keys() {
            if name.as_str().starts_with("x-lc") {
                domain.leancloud_headers.push(name.to_string());
            }
        }
        *domain.hits.entry(key.clone()).or_default() += 1;
        let serve = domain.serve.get(&key).cloned();
        if let Some(Serve::FailThen(status, n, body)) = &serve {
            let next = if *n > 1 {
                Serve::FailThen(*status, n - 1, body.clone())
            } else {
                Serve::Body(body.clone())
            };
            domain.serve.insert(key.clone(), next);
        }
        serve
    };
    match serve {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(Serve::Body(body)) => body.into_response(),
        Some(Serve::FailThen(status, _, _)) => StatusCode::from_u16(status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Some(Serve::Slow(body, pause)) => {
            let chunks: Vec<Vec<u8>> = body.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
            let stream = futures::stream::unfold(chunks.into_iter(), move |mut rest| async move {
                let chunk = rest.next()?;
                tokio::time::sleep(pause).await;
                Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), rest))
            });
            let mut response = Body::from_stream(stream).into_response();
            response
                .headers_mut()
                .insert("content-length", body.len().into());
            response
        }
    }
}

/// Deterministic bytes that do not compress or repeat.
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// A `_File` row as LeanCloud's Scan gives it (internal files may lack `url`).
fn file_row(name: &str, url: Option<&str>, key: &str, body: &[u8]) -> Value {
    let mut row = json!({"name": name, "key": key, "bucket": "paas_files", "mime_type": "application/octet-stream",
        "metaData": {"owner": "unknown", "size": body.len(), "_checksum": md5_hex(body)}});
    if let Some(url) = url {
        row["url"] = json!(url);
    }
    row
}

fn saved(dir: &Path, id: &str) -> Option<Vec<u8>> {
    std::fs::read(dir.join("files").join(id)).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_body_is_saved_checked_and_what_failed_is_listed_and_fetched_by_a_rerun() {
    // Arrange: a source app whose _File rows point at the stand-in domain.
    let server = Server::fresh().await;
    let text = b"hello, files\n".to_vec();
    let big = random_bytes(2 * 1024 * 1024, 7);
    let keyed = random_bytes(1000, 8);
    let real_d = b"the real body of d".to_vec();
    let external = b"<svg/>".to_vec();
    let flaky = random_bytes(70_000, 9);
    let domain = FileDomain::start(BTreeMap::from([
        ("a/hello.txt".to_string(), Serve::Body(text.clone())),
        ("b/big.bin".to_string(), Serve::Body(big.clone())),
        ("c/keyed.bin".to_string(), Serve::Body(keyed.clone())),
        // Served corrupt: the checksum is of the real body.
        (
            "d/corrupt.txt".to_string(),
            Serve::Body(b"the real body of e".to_vec()),
        ),
        // e/missing.png: not there (404).
        ("f/logo.svg".to_string(), Serve::Body(external.clone())),
        (
            "g/flaky.bin".to_string(),
            Serve::FailThen(503, 2, flaky.clone()),
        ),
    ]))
    .await;
    let mut ids = BTreeMap::new();
    for (name, row) in [
        (
            "a",
            file_row(
                "hello.txt",
                Some(&domain.url("a/hello.txt")),
                "a/hello.txt",
                &text,
            ),
        ),
        (
            "b",
            file_row("big.bin", Some(&domain.url("b/big.bin")), "b/big.bin", &big),
        ),
        ("c", file_row("keyed.bin", None, "c/keyed.bin", &keyed)),
        (
            "d",
            file_row(
                "corrupt.txt",
                Some(&domain.url("d/corrupt.txt")),
                "d/corrupt.txt",
                &real_d,
            ),
        ),
        (
            "e",
            file_row(
                "missing.png",
                Some(&domain.url("e/missing.png")),
                "e/missing.png",
                b"png",
            ),
        ),
        (
            "f",
            json!({"name": "logo.svg", "url": domain.url("f/logo.svg"), "mime_type": "image/svg+xml",
            "metaData": {"owner": "unknown", "size": 0, "__source": "external"}}),
        ),
        (
            "g",
            file_row(
                "flaky.bin",
                Some(&domain.url("g/flaky.bin")),
                "g/flaky.bin",
                &flaky,
            ),
        ),
    ] {
        ids.insert(name, server.create("_File", row).await);
    }
    seed(&server, 0, 20).await;
    let out = tempfile::tempdir().expect("temp dir");
    let dir = out.path().join("export");
    let args = [
        "export",
        "--out",
        s(&dir),
        "--quiet",
        "--file-domain",
        &domain.base(),
        "--max-downloads-per-second",
        "0",
    ];

    // Act
    let first = migrate_in_background(&server.url(), &args).await;

    // Assert: everything else exported, the good bodies saved byte for byte, the bad two listed.
    assert_eq!(
        Some(1),
        first.status.code(),
        "failed bodies make the run exit 1"
    );
    let stdout = String::from_utf8_lossy(&first.stdout).to_string();
    assert_eq!(20, data_lines(&dir.join("messages.jsonl")).len());
    assert_eq!(7, data_lines(&dir.join("classes/_File.0.jsonl")).len());
    for (name, body) in [
        ("a", &text),
        ("b", &big),
        ("c", &keyed),
        ("f", &external),
        ("g", &flaky),
    ] {
        assert_eq!(
            Some(body.clone()),
            saved(&dir, &ids[name]),
            "body of {name}"
        );
    }
    assert_eq!(None, saved(&dir, &ids["d"]), "a corrupt body is not kept");
    assert_eq!(None, saved(&dir, &ids["e"]));
    let failed: Vec<Value> = std::fs::read_to_string(dir.join("files-failed.jsonl"))
        .expect("failures listed")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let reasons: BTreeMap<String, String> = failed
        .iter()
        .map(|f| {
            (
                f["objectId"].as_str().expect("id").to_string(),
                f["reason"].as_str().expect("reason").to_string(),
            )
        })
        .collect();
    assert_eq!(
        BTreeSet::from([ids["d"].clone(), ids["e"].clone()]),
        reasons.keys().cloned().collect::<BTreeSet<_>>()
    );
    assert!(reasons[&ids["d"]].contains("_checksum"), "{reasons:?}");
    assert_eq!("HTTP 404", reasons[&ids["e"]]);
    assert!(
        stdout.contains(&ids["d"]) && stdout.contains("HTTP 404"),
        "the table lists them:\n{stdout}"
    );
    assert!(stdout.contains("file bodies failed"), "{stdout}");
    assert_eq!(3, domain.hits()["g/flaky.bin"], "two 503s, then the body");
    assert_eq!(
        Vec::<String>::new(),
        domain.leancloud_headers(),
        "no LeanCloud header reaches a file domain"
    );

    // Act: the domain serves the two now; the same command again.
    domain.set("d/corrupt.txt", Serve::Body(real_d.clone()));
    domain.set("e/missing.png", Serve::Body(b"png".to_vec()));
    let before = domain.hits();
    let second = migrate_in_background(&server.url(), &args).await;

    // Assert: only the two are fetched, and the export is complete.
    assert!(second.status.success(), "the re-run saves the rest");
    let after = domain.hits();
    let fetched: BTreeMap<&String, u32> = after
        .iter()
        .map(|(k, n)| (k, n - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(
        BTreeMap::from([
            (&"d/corrupt.txt".to_string(), 1),
            (&"e/missing.png".to_string(), 1)
        ]),
        fetched
    );
    assert_eq!(Some(real_d), saved(&dir, &ids["d"]));
    assert!(!dir.join("files-failed.jsonl").exists());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(
        (json!(7), json!(0)),
        (
            manifest["file_bodies"].clone(),
            manifest["file_bodies_failed"].clone()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_files_only_export_killed_mid_download_resumes_then_grows_into_a_full_export() {
    // Arrange: 12 bodies of 256 KiB, each served in 4 chunks 100 ms apart.
    let server = Server::fresh().await;
    let mut serve = BTreeMap::new();
    let mut bodies = BTreeMap::new();
    for i in 0..12u64 {
        let key = format!("slow/{i}.bin");
        let body = random_bytes(256 * 1024, 100 + i);
        serve.insert(
            key.clone(),
            Serve::Slow(body.clone(), Duration::from_millis(100)),
        );
        bodies.insert(key, body);
    }
    let domain = FileDomain::start(serve).await;
    let mut ids = BTreeMap::new();
    for (key, body) in &bodies {
        let id = server
            .create("_File", file_row(key, Some(&domain.url(key)), key, body))
            .await;
        ids.insert(key.clone(), id);
    }
    let seeded = seed(&server, 2, 30).await;
    let out = tempfile::tempdir().expect("temp dir");
    let dir = out.path().join("export");
    let files_only: Vec<String> = [
        "export",
        "--out",
        s(&dir),
        "--quiet",
        "--files-only",
        "--download-concurrency",
        "1",
        "--max-downloads-per-second",
        "0",
    ]
    .map(String::from)
    .to_vec();

    // Act: SIGKILL a files-only export after some bodies are saved, then run it again.
    let url = server.url();
    let present_at_kill: BTreeSet<String> = {
        let dir = dir.clone();
        let ids = ids.clone();
        let args = files_only.clone();
        tokio::task::spawn_blocking(move || {
            let mut child = command(&url, &args.iter().map(String::as_str).collect::<Vec<_>>())
                .spawn()
                .expect("spawn");
            let saved_count = || {
                ids.values()
                    .filter(|id| dir.join("files").join(id).exists())
                    .count()
            };
            let started = std::time::Instant::now();
            while saved_count() < 3 && started.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(20));
            }
            child.kill().expect("SIGKILL");
            let _ = child.wait();
            ids.iter()
                .filter(|(_, id)| dir.join("files").join(id).exists())
                .map(|(key, _)| key.clone())
                .collect()
        })
        .await
        .expect("task")
    };
    let hits_at_kill = domain.hits();
    let resumed = migrate_in_background(
        &server.url(),
        &files_only.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;

    // Assert: every body once on disk; a body saved before the kill was never fetched again.
    assert!(
        (3..12).contains(&present_at_kill.len()),
        "killed mid-download ({} of 12 saved)",
        present_at_kill.len()
    );
    assert!(resumed.status.success());
    let hits = domain.hits();
    for (key, body) in &bodies {
        assert_eq!(Some(body.clone()), saved(&dir, &ids[key]), "{key}");
        let expected = if present_at_kill.contains(key) {
            1
        } else {
            hits_at_kill.get(key).copied().unwrap_or(0) + 1
        };
        assert_eq!(expected, hits[key], "requests for {key}");
    }
    assert!(
        !dir.join("messages.jsonl").exists(),
        "files only: no history"
    );
    assert!(!dir.join("classes/_Conversation.0.jsonl").exists());
    assert!(
        !dir.join("files/.partial").exists(),
        "no half-written body is left behind"
    );

    // Act: the full export, in the same directory.
    let full = migrate_in_background(&server.url(), &["export", "--out", s(&dir), "--quiet"]).await;

    // Assert: conversations and history follow; no body is fetched again.
    assert!(full.status.success());
    assert_eq!(hits, domain.hits(), "the full export fetched no body again");
    assert_eq!(
        seeded.messages,
        data_lines(&dir.join("messages.jsonl")).len()
    );
    assert_eq!(
        seeded.conversations.len(),
        data_lines(&dir.join("classes/_Conversation.0.jsonl")).len()
    );
    assert_eq!(
        12,
        data_lines(&dir.join("classes/_File.0.jsonl")).len(),
        "_File once"
    );
    let again = migrate(
        &server.url(),
        &["export", "--out", s(&dir), "--quiet", "--files-only"],
    );
    assert_eq!(
        Some(2),
        again.status.code(),
        "a full export is not turned back into a files-only one"
    );
}

/// The `_lcfile` of an image message as the JS typed-messages plugin sends it.
fn image_message(id: Option<&str>, url: &str, size: usize) -> String {
    let mut file =
        json!({"url": url, "metaData": {"name": "photo.jpg", "format": "jpg", "size": size}});
    if let Some(id) = id {
        file["objId"] = json!(id);
    }
    json!({"_lctype": -2, "_lctext": "look", "_lcfile": file}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_file_domain_is_gone_every_file_and_image_message_is_served_by_the_new_server() {
    // Arrange: a source app with three files on the stand-in domain, image messages pointing at them (one
    // without objId, as a REST sender may write it), and an export of it all.
    let source = Server::fresh().await;
    let photo = random_bytes(300_000, 21);
    let voice = random_bytes(5_000, 22);
    let spoiled = b"the original bytes".to_vec();
    let domain = FileDomain::start(BTreeMap::from([
        ("a/photo.jpg".to_string(), Serve::Body(photo.clone())),
        ("b/voice.amr".to_string(), Serve::Body(voice.clone())),
        ("c/spoiled.txt".to_string(), Serve::Body(spoiled.clone())),
    ]))
    .await;
    let mut ids = BTreeMap::new();
    for (name, key, body, mime) in [
        ("photo.jpg", "a/photo.jpg", &photo, "image/jpeg"),
        ("voice.amr", "b/voice.amr", &voice, "audio/amr"),
        ("spoiled.txt", "c/spoiled.txt", &spoiled, "text/plain"),
    ] {
        let mut row = file_row(name, Some(&domain.url(key)), key, body);
        row["mime_type"] = json!(mime);
        ids.insert(name, source.create("_File", row).await);
    }
    let conv = source
        .create(
            "_Conversation",
            json!({"name": "pics", "m": ["alice", "bob"]}),
        )
        .await;
    let messages = [
        image_message(
            Some(&ids["photo.jpg"]),
            &domain.url("a/photo.jpg"),
            photo.len(),
        ),
        image_message(None, &domain.url("b/voice.amr"), voice.len()),
        image_message(
            Some(&ids["spoiled.txt"]),
            &domain.url("c/spoiled.txt"),
            spoiled.len(),
        ),
        json!({"_lctype": -1, "_lctext": "just text"}).to_string(),
    ];
    for (i, data) in messages.iter().enumerate() {
        source
            .post(
                "/1.1/rtm/messages",
                json!({"from_peer": if i % 2 == 0 { "alice" } else { "bob" }, "conv_id": conv, "message": data, "transient": false}),
            )
            .await;
    }
    let out = tempfile::tempdir().expect("temp dir");
    let dir = out.path().join("export");
    let exported =
        migrate_in_background(&source.url(), &["export", "--out", s(&dir), "--quiet"]).await;
    assert!(exported.status.success(), "export");
    // LeanCloud's file domain stops answering; one saved body rots on disk.
    drop(domain);
    std::fs::write(
        dir.join("files").join(&ids["spoiled.txt"]),
        b"the spoiled bytes!",
    )
    .expect("spoil");

    // Act: import into a new server's database, with the bodies.
    let db = out.path().join("target.sqlite3");
    let base = "https://im.example.com";
    let args = [
        "import",
        "--db",
        s(&db),
        s(&dir),
        "--file-url-base",
        base,
        "--quiet",
    ];
    let imported = migrate_in_background(&source.url(), &args).await;
    let again = migrate_in_background(&source.url(), &args).await;

    // Assert: the import reported the spoiled body and refused it; importing again changed nothing.
    assert!(imported.status.success(), "import");
    let report = String::from_utf8_lossy(&imported.stdout).to_string();
    assert!(report.contains("file bodies: 2 imported"), "{report}");
    assert!(
        report.contains(&format!("refused {}", ids["spoiled.txt"])),
        "{report}"
    );
    let second = String::from_utf8_lossy(&again.stdout).to_string();
    assert!(
        second.contains("file bodies: 0 imported (0.0 MB), 2 already there"),
        "{second}"
    );

    // Every moved file's URL, and every message's, is the new server's, and serves the original bytes.
    let target = Server::on(tempfile::tempdir().expect("temp dir"), db.clone()).await;
    let files: BTreeMap<String, Value> = target
        .scan("_File")
        .await
        .into_iter()
        .map(|f| (f["name"].as_str().expect("name").to_string(), f))
        .collect();
    let fetch = |url: String| {
        let path = url
            .strip_prefix(base)
            .expect("a URL of the new server")
            .to_string();
        let http = target.http.clone();
        let server = target.url();
        async move {
            let response = http
                .get(format!("{server}{path}"))
                .send()
                .await
                .expect("get");
            assert_eq!(StatusCode::OK, response.status(), "{path}");
            response.bytes().await.expect("bytes").to_vec()
        }
    };
    for (name, body) in [("photo.jpg", &photo), ("voice.amr", &voice)] {
        let url = files[name]["url"].as_str().expect("url").to_string();
        assert_eq!(*body, fetch(url).await, "{name}");
    }
    let kept = files["spoiled.txt"]["url"].as_str().expect("url");
    assert!(
        kept.ends_with("/c/spoiled.txt") && !kept.starts_with(base),
        "a refused body keeps its old URL: {kept}"
    );
    let history = target.history(&conv).await;
    let datas: Vec<Value> = history
        .iter()
        .map(|m| serde_json::from_str(m["data"].as_str().expect("data")).expect("json"))
        .collect();
    assert_eq!(
        photo,
        fetch(datas[0]["_lcfile"]["url"].as_str().expect("url").into()).await
    );
    assert_eq!(
        voice,
        fetch(datas[1]["_lcfile"]["url"].as_str().expect("url").into()).await
    );
    assert_eq!(
        json!(ids["photo.jpg"]),
        datas[0]["_lcfile"]["objId"],
        "the rest of the message is kept"
    );
    assert!(
        datas[2]["_lcfile"]["url"]
            .as_str()
            .expect("url")
            .contains("/c/spoiled.txt"),
        "a refused file's messages keep their old URL"
    );
    assert_eq!(json!("just text"), datas[3]["_lctext"]);

    // Verify compares the bodies too: the refused one is not on the new server.
    let verify = migrate_in_background(
        &target.url(),
        &["verify", "--from", s(&dir), "--to", &target.url()],
    )
    .await;
    let table = String::from_utf8_lossy(&verify.stdout).to_string();
    assert_eq!(Some(1), verify.status.code(), "{table}");
    let bodies_line = table
        .lines()
        .find(|l| l.starts_with("file bodies"))
        .expect("a file bodies line");
    assert!(
        bodies_line.contains("MISMATCH")
            && bodies_line.contains(" 3 ")
            && bodies_line.contains(" 2 "),
        "{bodies_line}"
    );
    target.server.shutdown().await;

    // Act: the body is found intact again (a second download, say); the same import.
    std::fs::write(dir.join("files").join(&ids["spoiled.txt"]), &spoiled).expect("restore");
    let third = migrate_in_background(&source.url(), &args).await;
    assert!(String::from_utf8_lossy(&third.stdout).contains("file bodies: 1 imported"));

    // Assert: the row and its message, imported before, now point at the body, and verify passes.
    let target = Server::on(tempfile::tempdir().expect("temp dir"), db).await;
    let row = target
        .get(&format!("/1.1/files/{}", ids["spoiled.txt"]))
        .await;
    let url = row["url"].as_str().expect("url").to_string();
    let fetched = target
        .http
        .get(format!(
            "{}{}",
            target.url(),
            url.strip_prefix(base).expect("new url")
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(spoiled, fetched.bytes().await.expect("bytes").to_vec());
    let history = target.history(&conv).await;
    let third_message: Value =
        serde_json::from_str(history[2]["data"].as_str().expect("data")).expect("json");
    assert_eq!(json!(url), third_message["_lcfile"]["url"]);
    let verify = migrate_in_background(
        &target.url(),
        &["verify", "--from", s(&dir), "--to", &target.url()],
    )
    .await;
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// `import --files-s3-bucket`: the bodies go into the bucket a server on S3 storage serves them from (the setup
/// of several instances). Needs the S3 stand-in (`LEANCLOUD_TEST_S3`, moto, started by scripts/test.sh).
#[tokio::test]
async fn an_import_into_an_s3_bucket_is_served_by_a_server_on_that_bucket() {
    let Ok(endpoint) = std::env::var("LEANCLOUD_TEST_S3") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "LEANCLOUD_TEST_S3 names the S3 stand-in: run scripts/test.sh, which starts one"
        );
        eprintln!("skipping: no LEANCLOUD_TEST_S3");
        return;
    };
    // Arrange: a source app with one file on the stand-in domain, exported.
    let source = Server::fresh().await;
    let photo = random_bytes(200_000, 31);
    let domain = FileDomain::start(BTreeMap::from([(
        "a/photo.jpg".to_string(),
        Serve::Body(photo.clone()),
    )]))
    .await;
    let mut row = file_row(
        "photo.jpg",
        Some(&domain.url("a/photo.jpg")),
        "a/photo.jpg",
        &photo,
    );
    row["mime_type"] = json!("image/jpeg");
    let id = source.create("_File", row).await;
    let out = tempfile::tempdir().expect("temp dir");
    let dir = out.path().join("export");
    let exported =
        migrate_in_background(&source.url(), &["export", "--out", s(&dir), "--quiet"]).await;
    assert!(exported.status.success(), "export");
    drop(domain);
    let bucket = format!("m-{}", hex::encode(rand::random::<[u8; 6]>()));
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("S3 stand-in reachable");
    assert!(created.status().is_success());

    // Act
    let db = out.path().join("target.sqlite3");
    let base = "https://im.example.com";
    let imported = migrate_in_background(
        &source.url(),
        &[
            "import",
            "--db",
            s(&db),
            s(&dir),
            "--file-url-base",
            base,
            "--files-s3-bucket",
            &bucket,
            "--files-s3-endpoint",
            &endpoint,
            "--quiet",
        ],
    )
    .await;

    // Assert: nothing in the directory store, the bytes served by a server on the bucket.
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert!(
        String::from_utf8_lossy(&imported.stdout).contains("file bodies: 1 imported"),
        "{}",
        String::from_utf8_lossy(&imported.stdout)
    );
    assert!(!out.path().join("target.sqlite3.files").join("a").exists());
    let mut config = leancloud_server::ServerConfig::for_tests(&db);
    config.files.s3 = Some(leancloud_server::config::S3Store {
        bucket,
        endpoint: Some(endpoint),
        ..Default::default()
    });
    let target = leancloud_server::spawn(config)
        .await
        .expect("server starts");
    let http = reqwest::Client::new();
    let row = http
        .get(format!("http://{}/1.1/files/{id}", target.addr()))
        .header("X-LC-Id", leancloud_server::DEV_APP_ID)
        .header("X-LC-Key", leancloud_server::DEV_APP_KEY)
        .send()
        .await
        .expect("get row")
        .json::<Value>()
        .await
        .expect("json");
    let url = row["url"].as_str().expect("url");
    let path = url.strip_prefix(base).expect("a URL of the new server");
    let fetched = http
        .get(format!("http://{}{path}", target.addr()))
        .send()
        .await
        .expect("get body");
    assert_eq!(StatusCode::OK, fetched.status());
    assert!(fetched.bytes().await.expect("bytes").to_vec() == photo);
    target.shutdown().await;
}
