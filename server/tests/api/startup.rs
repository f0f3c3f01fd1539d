//! The binary starts where the system has no CA certificates (a `FROM scratch` image): its HTTPS clients (hooks,
//! S3) trust Mozilla's roots built in, unless `LEANCLOUD_TLS_ROOTS=system`; a wrong value stops it at once.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use std::process::Command;

use crate::helpers::{free_port, fresh_bucket, server_command};

/// The server binary on a fresh database in `dir`, on `port`, with a hooks URL (and the test S3 store when there
/// is one), and no system CA certificates at all.
fn server(dir: &std::path::Path, port: u16) -> Command {
    let mut cmd = server_command(dir.join("db.sqlite3").to_str().expect("path"), port);
    cmd.args(["--hooks-url", "https://127.0.0.1:9/"])
        .env("SSL_CERT_FILE", dir.join("no-such-bundle.pem"))
        .env("SSL_CERT_DIR", dir.join("no-such-dir"))
        .env_remove("LEANCLOUD_TLS_ROOTS")
        .stderr(Stdio::piped());
    cmd
}

#[tokio::test]
async fn the_server_starts_and_answers_without_any_system_ca_certificate() {
    // Arrange
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let mut cmd = server(dir.path(), port);
    if let Some(s3) = fresh_bucket(false).await {
        cmd.args(["--files-s3-bucket", &s3.bucket]).args([
            "--files-s3-endpoint",
            s3.endpoint.as_deref().expect("endpoint"),
        ]);
    }

    // Act
    let mut child = cmd.spawn().expect("starts");
    let client = reqwest::Client::new();
    let mut health = None;
    for _ in 0..200 {
        if let Ok(Some(status)) = child.try_wait() {
            let out = child.wait_with_output().expect("output");
            panic!(
                "the server exited ({status}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if let Ok(res) = client
            .get(format!("http://127.0.0.1:{port}/__admin/health"))
            .send()
            .await
        {
            health = Some(res.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let check = |port: u16| {
        Command::new(env!("CARGO_BIN_EXE_leancloud-server"))
            .args(["healthcheck", "--addr", &format!("127.0.0.1:{port}")])
            .output()
            .expect("runs")
    };
    let (up, down) = (check(port), check(free_port()));
    let _ = child.kill();
    let _ = child.wait();

    // Assert: healthy, and the image's health check command says so (and says so of a port nobody listens on)
    assert_eq!(Some(StatusCode::OK), health);
    assert_eq!(
        Some(0),
        up.status.code(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert_eq!(Some(1), down.status.code());
    assert!(String::from_utf8_lossy(&down.stderr).contains("no health answer"));
}

#[tokio::test]
async fn a_wrong_tls_roots_setting_stops_the_server_with_the_reason() {
    let dir = tempfile::tempdir().expect("dir");
    let out = server(dir.path(), free_port())
        .env("LEANCLOUD_TLS_ROOTS", "everything")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(Some(2), out.status.code(), "{stderr}");
    assert!(stderr.contains("LEANCLOUD_TLS_ROOTS"), "{stderr}");
}
