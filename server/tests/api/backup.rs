//! Online backup and restore of the SQLite database: a backup taken while 16 senders write holds every send
//! acknowledged before it began, passes SQLite's integrity check, and a server started on its restored copy answers
//! the history; the `backup` and `restore` commands of the binary do the same from the command line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use leancloud_server::store::sqlite::backup;
use pretty_assertions::assert_eq;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{on_postgres, spawn_with, TestApp};

const SENDERS: usize = 16;

/// Acknowledged sends: conversation → message ids.
type Acked = Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>;

fn total(sends: &BTreeMap<String, BTreeSet<String>>) -> usize {
    sends.values().map(BTreeSet::len).sum()
}

fn count(acked: &Acked) -> usize {
    total(&acked.lock().expect("acked"))
}

/// The message ids the history API answers for `conv`.
async fn history(app: &TestApp, conv: &str) -> BTreeSet<String> {
    let (status, answer) = app
        .get(&format!(
            "/1.1/rtm/messages/history?convid={conv}&limit=1000"
        ))
        .await;
    assert_eq!(StatusCode::OK, status, "{answer}");
    answer
        .as_array()
        .expect("array")
        .iter()
        .map(|m| m["msg-id"].as_str().expect("msg-id").to_string())
        .collect()
}

fn binary(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_leancloud-server"))
        .args(args)
        .output()
        .expect("leancloud-server runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_16_writers_restores_every_send_acknowledged_before_it() {
    if on_postgres() {
        return; // PostgreSQL is backed up with pg_dump (docs/deployment.md).
    }
    // Arrange: 16 senders, each in its own conversation, writing as fast as they are answered
    let app = Arc::new(spawn_with(|_| {}).await);
    let mut convs = Vec::new();
    for i in 0..SENDERS {
        convs.push(
            app.conversation(json!({"name": format!("room {i}"), "m": ["a", "b"]}))
                .await,
        );
    }
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for conv in convs.clone() {
        let (app, acked, stop) = (Arc::clone(&app), Arc::clone(&acked), Arc::clone(&stop));
        senders.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let (status, sent) = app
                    .send(json!({"from_peer": "a", "conv_id": conv, "message": format!("m{n}"), "transient": false}))
                    .await;
                assert_eq!(StatusCode::OK, status, "{sent}");
                let id = sent["msg-id"].as_str().expect("msg-id").to_string();
                acked
                    .lock()
                    .expect("acked")
                    .entry(conv.clone())
                    .or_default()
                    .insert(id);
                n += 1;
            }
        }));
    }
    while count(&acked) < 400 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    // Act: a backup while they write, then they go on a little longer
    let before = acked.lock().expect("acked").clone();
    let db = app.config.db_path.clone();
    let to = app.dir.path().join("backup.sqlite3");
    let taken = {
        let (db, to) = (db.clone(), to.clone());
        tokio::task::spawn_blocking(move || backup::backup(&db, &to))
            .await
            .expect("joined")
            .expect("backup")
    };
    let at_backup_end = count(&acked);
    while count(&acked) < at_backup_end + 200 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.await.expect("sender");
    }

    // Assert: the copy is whole, and a server on its restored copy has every send acknowledged before it began
    assert!(taken.bytes > 0);
    backup::verify(&to).expect("integrity check passes");
    let restored_dir = tempfile::tempdir().expect("dir");
    let restored_db = restored_dir.path().join("restored.sqlite3");
    backup::restore(&to, &restored_db, false).expect("restore");
    let restored = spawn_with(|c| c.db_path = restored_db.clone()).await;
    let mut kept = 0;
    let mut total_in_backup = 0;
    for conv in &convs {
        let in_backup = history(&restored, conv).await;
        let expected = before.get(conv).cloned().unwrap_or_default();
        assert!(
            expected.is_subset(&in_backup),
            "{conv}: {} acknowledged before the backup missing",
            expected.difference(&in_backup).count()
        );
        kept += expected.len();
        total_in_backup += in_backup.len();
    }
    assert_eq!(total(&before), kept);
    // A snapshot: at most what was acknowledged by the end of the backup, not what came after
    assert!(
        total_in_backup <= at_backup_end,
        "{total_in_backup} > {at_backup_end}"
    );
}

#[tokio::test]
async fn the_backup_and_restore_commands_copy_a_running_server_s_database_and_put_it_back() {
    if on_postgres() {
        return;
    }
    // Arrange: a running server with one message
    let app = spawn_with(|_| {}).await;
    let conv = app.conversation(json!({"name": "kept", "m": ["a"]})).await;
    let (_, sent) = app
        .send(json!({"from_peer": "a", "conv_id": conv, "message": "before the backup", "transient": false}))
        .await;
    let db = app.config.db_path.clone();
    let to = app.dir.path().join("cli-backup.sqlite3");

    // Act: back up while it runs; a second backup to the same file; a restore over a running server's files
    let (code, out) = binary(&["backup", "--db", path_str(&db), "--to", path_str(&to)]);
    let (again, again_out) = binary(&["backup", "--db", path_str(&db), "--to", path_str(&to)]);
    let (busy, busy_out) = binary(&["restore", "--from", path_str(&to), "--db", path_str(&db)]);
    let (_, later) = app
        .send(json!({"from_peer": "a", "conv_id": conv, "message": "after the backup", "transient": false}))
        .await;
    app.server.shutdown().await;
    let (restored, restored_out) =
        binary(&["restore", "--from", path_str(&to), "--db", path_str(&db)]);

    // Assert
    assert_eq!(0, code, "{out}");
    assert!(out.contains("bytes"), "{out}");
    assert_eq!(2, again, "{again_out}");
    assert!(again_out.contains("already exists"), "{again_out}");
    assert_eq!(2, busy, "{busy_out}");
    assert!(busy_out.contains("-wal exists"), "{busy_out}");
    assert_eq!(0, restored, "{restored_out}");
    let server = spawn_with(|c| c.db_path = db.clone()).await;
    let ids = history(&server, &conv).await;
    assert_eq!(
        BTreeSet::from([sent["msg-id"].as_str().expect("id").to_string()]),
        ids
    );
    assert!(!ids.contains(later["msg-id"].as_str().expect("id")));
}

#[tokio::test]
async fn the_server_takes_periodic_backups_and_keeps_the_newest() {
    if on_postgres() {
        return;
    }
    // Arrange: a backup every 300 ms, 2 kept
    let backups = tempfile::tempdir().expect("dir");
    let dir = backups.path().join("backups");
    let app = spawn_with(|c| {
        c.backups = Some(leancloud_server::BackupConfig {
            dir: dir.clone(),
            every: std::time::Duration::from_millis(300),
            keep: 2,
        });
    })
    .await;
    let conv = app.conversation(json!({"name": "r", "m": ["a"]})).await;
    let (_, sent) = app
        .send(json!({"from_peer": "a", "conv_id": conv, "message": "kept", "transient": false}))
        .await;

    // Act: wait for two backups, then two more turns (which prune)
    let listed = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    for _ in 0..100 {
        if listed().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let mut names = listed();
    names.sort();

    // Assert: two backups, whole, named by time; the newest holds the message
    assert_eq!(2, names.len(), "{names:?}");
    for path in &names {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(
            name.starts_with("leancloud-") && name.ends_with("Z.sqlite3"),
            "{name}"
        );
        backup::verify(path).expect("whole");
    }
    let restored = tempfile::tempdir().expect("dir");
    let db = restored.path().join("r.sqlite3");
    backup::restore(&names[1], &db, false).expect("restore");
    let server = spawn_with(|c| c.db_path = db.clone()).await;
    assert_eq!(
        BTreeSet::from([sent["msg-id"].as_str().expect("id").to_string()]),
        history(&server, &conv).await
    );
}
