use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use leancloud_server::{spawn, ServerConfig, DEV_APP_ID, DEV_MASTER_KEY};
use pretty_assertions::assert_eq;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{sign, spawn_app, start_binary, wait_ready};

#[tokio::test]
async fn restarting_on_the_same_file_keeps_every_object_and_message() {
    let app = spawn_app().await;
    let conv = app
        .conversation(json!({"name": "kept", "m": ["a"], "attr": {"k": "v"}}))
        .await;
    let (_, sent) = app
        .send(json!({"from_peer": "a", "conv_id": conv, "transient": false, "message": "m1"}))
        .await;
    let before = app.server.inspect().conversation(&conv).expect("stored");
    let crate::helpers::TestApp {
        server,
        dir,
        config,
        ..
    } = app;
    server.shutdown().await;

    let again = spawn(config).await.expect("restarts");
    assert_eq!(Some(before), again.inspect().conversation(&conv));
    let messages = again.inspect().messages(&conv);
    assert_eq!(
        vec![(
            sent["msg-id"].as_str().expect("id").to_string(),
            "m1".to_string()
        )],
        messages
            .iter()
            .map(|m| (m.msg_id.clone(), m.data.clone()))
            .collect::<Vec<_>>()
    );
    // New messages keep timestamps after the old ones.
    let client = reqwest::Client::new();
    let answer: Value = client
        .post(format!("{}/1.1/rtm/messages", again.base_url()))
        .header("X-LC-Id", DEV_APP_ID)
        .header("X-LC-Sign", sign("1", DEV_MASTER_KEY, true))
        .body(
            json!({"from_peer": "a", "conv_id": conv, "transient": false, "message": "m2"})
                .to_string(),
        )
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert!(answer["timestamp"].as_i64() >= sent["timestamp"].as_i64());
    again.shutdown().await;
    drop(dir);
}

/// Creates a conversation with the master key on the server at `base` and returns its id.
pub async fn create_conversation(client: &reqwest::Client, base: &str, body: Value) -> String {
    let created: Value = client
        .post(format!("{base}/1.1/classes/_Conversation"))
        .header("X-LC-Id", DEV_APP_ID)
        .header("X-LC-Key", format!("{DEV_MASTER_KEY},master"))
        .body(body.to_string())
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    created["objectId"].as_str().expect("id").to_string()
}

/// Concurrent senders to one conversation through a server's REST API, each sending as soon as its previous
/// send is answered, until a send fails (the server was killed); they keep the ids of the acknowledged sends.
pub struct Senders {
    acked: Arc<Mutex<Vec<String>>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Senders {
    pub fn start(
        client: &reqwest::Client,
        base: &str,
        conv: &str,
        from: &str,
        n: usize,
    ) -> Senders {
        let acked: Arc<Mutex<Vec<String>>> = Arc::default();
        let master = format!("{DEV_MASTER_KEY},master");
        let workers = (0..n)
            .map(|w| {
                let (client, base, master, conv, from, acked) = (
                    client.clone(),
                    base.to_string(),
                    master.clone(),
                    conv.to_string(),
                    from.to_string(),
                    acked.clone(),
                );
                tokio::spawn(async move {
                    for i in 0.. {
                        let body = json!({"from_peer": from, "conv_id": conv, "transient": false, "message": format!("w{w}-{i}")});
                        let sent = client
                            .post(format!("{base}/1.1/rtm/messages"))
                            .header("X-LC-Id", DEV_APP_ID)
                            .header("X-LC-Key", &master)
                            .body(body.to_string())
                            .send()
                            .await;
                        let Ok(response) = sent else { return };
                        if response.status() != StatusCode::OK {
                            return;
                        }
                        let Ok(answer) = response.json::<Value>().await else { return };
                        if let Some(id) = answer["msg-id"].as_str() {
                            acked.lock().expect("lock").push(id.to_string());
                        }
                    }
                })
            })
            .collect();
        Senders { acked, workers }
    }

    /// Returns once `n` sends are acknowledged.
    pub async fn wait_for(&self, n: usize) {
        while self.acked.lock().expect("lock").len() < n {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Waits for every sender to stop (their server is gone) and returns the acknowledged ids.
    pub async fn finish(self) -> Vec<String> {
        for worker in self.workers {
            let _ = worker.await;
        }
        let acked = self.acked.lock().expect("lock").clone();
        acked
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_concurrent_sends_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = crate::helpers::database_arg(dir.path(), "kill.sqlite3").await;
    let (mut child, base) = start_binary(&db);
    let client = reqwest::Client::new();
    wait_ready(&mut child, &base).await;
    let conv = create_conversation(&client, &base, json!({"name": "kill"})).await;

    // Kill once enough sends are acknowledged, with the other workers' requests still in flight.
    let senders = Senders::start(&client, &base, &conv, "a", 16);
    senders.wait_for(2000).await;
    child.0.kill().expect("SIGKILL");
    let _ = child.0.wait();
    let acked = senders.finish().await;

    let mut config = ServerConfig::for_tests(&db);
    if crate::helpers::on_postgres() {
        config.postgres = Some(leancloud_server::PostgresConfig {
            url: db.clone(),
            ca_file: None,
        });
    }
    let restarted = spawn(config)
        .await
        .expect("restarts on the killed database");
    let stored: HashSet<String> = restarted
        .inspect()
        .messages(&conv)
        .into_iter()
        .map(|m| m.msg_id)
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(acked.len() >= 2000);
    assert_eq!(
        Vec::<&String>::new(),
        lost,
        "{} acknowledged, {} stored",
        acked.len(),
        stored.len()
    );
    restarted.shutdown().await;
}
