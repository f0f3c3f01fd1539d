//! The export under SIGKILL and under injected faults.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use leancloud_server::{FaultConfig, FaultKind};
use pretty_assertions::assert_eq;

use crate::helpers::{
    command, data_lines, migrate, migrate_in_background, s, seed, Seeded, Server,
};

/// Every exported row exactly once: messages by msg-id, objects by objectId, subscribers by client.
fn assert_complete(dir: &Path, seeded: &Seeded, conversations: usize) {
    let messages = data_lines(&dir.join("messages.jsonl"));
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for m in &messages {
        *seen
            .entry(m["msg-id"].as_str().expect("msg-id").to_string())
            .or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "messages exported twice: {twice:?}");
    assert_eq!(seeded.messages, messages.len(), "every message exported");
    let convs = data_lines(&dir.join("classes/_Conversation.0.jsonl"));
    let ids: BTreeSet<String> = convs.iter().map(|c| c["objectId"].to_string()).collect();
    assert_eq!(
        (conversations, conversations),
        (convs.len(), ids.len()),
        "every conversation once"
    );
    let subscribers = data_lines(&dir.join("subscribers.jsonl"));
    assert_eq!(4, subscribers.len(), "every subscriber once");
    assert_eq!(
        1,
        data_lines(&dir.join("classes/_SysMessage.0.jsonl")).len()
    );
    assert!(
        dir.join("manifest.json").exists(),
        "the finished export has its manifest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_killed_with_sigkill_resumes_without_losing_or_repeating_a_row() {
    // Arrange
    let server = Server::fresh().await;
    let seeded = seed(&server, 36, 6_000).await;
    let out = tempfile::tempdir().expect("temp dir");
    let dir = out.path().join("export");
    let url = server.url();

    // Act: kill it several times at different points, then let it finish.
    let (kills, finished) = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let args = [
                "export",
                "--out",
                s(&dir),
                "--quiet",
                "--max-requests-per-second",
                "25",
            ];
            let mut kills = 0;
            for delay_ms in [250u64, 700, 450, 900, 600] {
                let mut child = command(&url, &args).spawn().expect("spawn");
                std::thread::sleep(Duration::from_millis(delay_ms));
                if child.try_wait().expect("try_wait").is_none() {
                    child.kill().expect("SIGKILL");
                    kills += 1;
                }
                let _ = child.wait();
            }
            (kills, migrate(&url, &args))
        })
        .await
        .expect("task")
    };

    // Assert
    assert!(kills >= 3, "the export was killed mid-run ({kills} kills)");
    assert!(finished.status.success(), "the resumed export finishes");
    assert!(
        String::from_utf8_lossy(&finished.stdout).contains("resumed"),
        "the last run continued the killed ones"
    );
    assert_complete(&dir, &seeded, seeded.conversations.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_through_5xx_429_timeouts_and_drops_completes_with_equal_counts() {
    // Arrange
    let server = Server::fresh().await;
    let seeded = seed(&server, 30, 3_000).await;
    server.server.set_faults(FaultConfig {
        rate: 0.35,
        kinds: vec![
            FaultKind::ServerError,
            FaultKind::TooManyRequests,
            FaultKind::Timeout,
            FaultKind::Drop,
        ],
        delay_ms: 3_000,
        paths: Vec::new(),
        max_faults: None,
    });
    let out = tempfile::tempdir().expect("temp dir");
    let dir = out.path().join("export");
    let url = server.url();

    // Act
    let exported = migrate_in_background(
        &url,
        &[
            "export",
            "--out",
            s(&dir),
            "--quiet",
            "--max-requests-per-second",
            "0",
            "--request-timeout",
            "1",
        ],
    )
    .await;

    // Assert
    let faulted = server
        .server
        .inspect()
        .requests()
        .iter()
        .filter(|r| r.status == 0 || r.status >= 429)
        .count();
    eprintln!("{faulted} requests were faulted");
    assert!(faulted >= 5, "faults were injected ({faulted})");
    assert!(
        exported.status.success(),
        "the export completes despite the faults"
    );
    assert_complete(&dir, &seeded, seeded.conversations.len());
}
