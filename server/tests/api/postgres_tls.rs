//! TLS to a PostgreSQL database (issue 16): with `sslmode=require` the server verifies the database's certificate,
//! against the public roots and the CA given with `--postgres-ca-file`; a certificate it cannot verify stops it at
//! start with an error that shows no password. Runs on the test cluster, which serves TLS with a certificate of a
//! CA made for the run (`LEANCLOUD_TEST_POSTGRES_CA`, scripts/lib/postgres.sh).

use leancloud_server::{spawn, PostgresConfig, ServerConfig};
use pretty_assertions::assert_eq;

use crate::helpers::fresh_postgres;

fn with_tls(url: &str) -> String {
    // A password in the URL (the test cluster trusts every login and ignores it), to check it never shows.
    let (url, _) = url.split_once('?').unwrap_or((url, ""));
    url.replacen(
        "postgres://postgres@",
        "postgres://postgres:hunter2-secret@",
        1,
    ) + "?sslmode=require"
}

#[tokio::test]
async fn the_database_certificate_is_verified_against_the_given_ca() {
    let ca = std::env::var("LEANCLOUD_TEST_POSTGRES_CA")
        .expect("LEANCLOUD_TEST_POSTGRES_CA names the test cluster's CA (scripts/test.sh)");
    let url = with_tls(&fresh_postgres().await);
    let dir = tempfile::tempdir().expect("dir");
    let mut config = ServerConfig::for_tests(dir.path().join("unused.sqlite3"));

    config.postgres = Some(PostgresConfig {
        url: url.clone(),
        ca_file: None,
    });
    let refused = match spawn(config.clone()).await {
        Ok(_) => panic!("a certificate of an unknown CA is refused"),
        Err(e) => e.to_string(),
    };
    assert!(refused.contains("certificate"), "{refused}");
    assert!(
        !refused.contains("hunter2"),
        "the password leaked: {refused}"
    );
    assert!(
        !format!("{:?}", config.postgres).contains("hunter2"),
        "the password shows in Debug"
    );

    config.postgres = Some(PostgresConfig {
        url,
        ca_file: Some(ca.into()),
    });
    let server = spawn(config).await.expect("starts over TLS with the CA");
    let health: serde_json::Value = reqwest::get(format!("{}/__admin/health", server.base_url()))
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!("reachable", health["db"]);
    assert_eq!("connected", health["bus"], "the listener uses TLS too");
    server.shutdown().await;
}
