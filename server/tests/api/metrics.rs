//! `/metrics` on `--metrics-listen`: after known traffic (REST sends, a refused app-key send, a realtime login and
//! a message from it that a hook checks) each counter moved by exactly that much, the text parses as Prometheus
//! text, no label carries an id, and the API's own address does not serve it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{spawn_with, Key, TestApp};
use crate::realtime::{connect, direct};

/// Every sample of a scrape: `name{label="value",…}` (labels sorted) → value; and the text.
pub(crate) async fn scrape(app: &TestApp) -> (HashMap<String, f64>, String) {
    let addr = app.server.metrics_addr().expect("metrics listen");
    let res = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scraped");
    assert_eq!(StatusCode::OK, res.status());
    assert!(res.headers()["content-type"]
        .to_str()
        .expect("type")
        .starts_with("application/openmetrics-text"));
    let text = res.text().await.expect("text");
    let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("the text parses as Prometheus exposition");
    let mut samples = HashMap::new();
    for s in parsed.samples {
        let mut labels: Vec<String> = s
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        labels.sort();
        let value = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => continue,
        };
        samples.insert(format!("{}{{{}}}", s.metric, labels.join(",")), value);
    }
    (samples, text)
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, key: &str) -> f64 {
    after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn counters_move_by_exactly_the_traffic_and_no_label_names_a_client_or_conversation() {
    // Arrange: a hook endpoint defining `_messageReceived`, recording the hooks called
    let hook_calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let calls = Arc::clone(&hook_calls);
    let engine = Router::new()
        .route(
            "/1.1/functions/_ops/metadatas",
            get(|| async { Json(json!({"result": ["_messageReceived"]})) }),
        )
        .route(
            "/1.1/functions/{hook}",
            post(move |Path(hook): Path<String>| {
                calls.lock().expect("calls").push(hook);
                async { Json(json!({"result": {}})) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let engine_url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, engine).await });
    let app = spawn_with(|c| {
        c.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"));
        c.hooks.url = Some(engine_url);
        c.rate_limits.broadcasts_per_minute = Some(0);
    })
    .await;
    let conv = app
        .conversation(json!({"name": "metrics", "m": ["metrics-user", "b"]}))
        .await;
    let (before, _) = scrape(&app).await;

    // Act: 3 REST sends, 1 refused (the app key may not send), a realtime login and one message from it
    for i in 0..3 {
        let (status, sent) = app
            .send(json!({"from_peer": "b", "conv_id": conv, "message": format!("m{i}"), "transient": false}))
            .await;
        assert_eq!(StatusCode::OK, status, "{sent}");
    }
    let (refused, _) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/rtm/messages",
            Some(json!({"from_peer": "b", "conv_id": conv, "message": "no"})),
        )
        .await;
    let (broadcast, _) = app
        .post(
            "/1.1/rtm/broadcast",
            json!({"from_peer": "b", "conv_id": conv, "message": "all"}),
        )
        .await;
    let mut ws = connect(&app, "lc.protobuf2.3").await;
    ws.login("metrics-user").await;
    let ack = ws.request(direct(&conv, "from the socket")).await;
    assert!(ack.ack_message.is_some(), "{ack:?}");
    let (after, text) = scrape(&app).await;

    // Assert
    let moved = |key: &str| delta(&before, &after, key);
    assert_eq!(
        (StatusCode::FORBIDDEN, StatusCode::TOO_MANY_REQUESTS),
        (refused, broadcast)
    );
    assert_eq!(
        1.0,
        moved("leancloud_rate_limited_total{bucket=\"broadcasts\"}")
    );
    assert_eq!(
        (3.0, 1.0),
        (
            moved("leancloud_http_requests_total{method=\"POST\",route=\"/1.1/rtm/messages\",status=\"200\"}"),
            moved("leancloud_http_requests_total{method=\"POST\",route=\"/1.1/rtm/messages\",status=\"403\"}"),
        )
    );
    assert_eq!(
        1.0,
        moved("leancloud_realtime_commands_total{cmd=\"session\",op=\"open\"}")
    );
    assert_eq!(
        1.0,
        moved("leancloud_realtime_commands_total{cmd=\"direct\",op=\"none\"}")
    );
    assert_eq!(
        4.0,
        moved("leancloud_messages_stored_total{kind=\"normal\"}")
    );
    let received = |calls: &Vec<String>| calls.iter().filter(|h| *h == "_messageReceived").count();
    assert_eq!(1, received(&hook_calls.lock().expect("calls")));
    assert_eq!(
        1.0,
        moved("leancloud_hook_calls_total{hook=\"_messageReceived\",outcome=\"ok\"}")
    );
    assert_eq!(
        (1.0, 1.0),
        (
            after["leancloud_realtime_connections{}"],
            after["leancloud_realtime_sessions{}"]
        )
    );
    assert!(after["leancloud_database_size_bytes{}"] > 0.0);
    assert!(
        !text.contains(&conv) && !text.contains("metrics-user"),
        "{text}"
    );
    assert!(text.contains(
        "leancloud_http_request_duration_seconds_count{method=\"POST\",route=\"/1.1/rtm/messages\"} 4"
    ));
    assert_docs_name_only_exported_metrics(&text);
    // SQLite's writer: the sends were priority jobs of group commits
    if !crate::helpers::on_postgres() {
        let priority_jobs: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("leancloud_store_commit_jobs_sum{lane=\"priority\"} "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        assert!(priority_jobs >= 4.0, "{text}");
    }
    // The API's address does not serve the metrics
    let (status, _) = app.call_as(None, Method::GET, "/metrics", None).await;
    assert_eq!(StatusCode::NOT_FOUND, status);
}

#[tokio::test]
async fn without_metrics_listen_nothing_is_served_or_counted() {
    let app = spawn_with(|_| {}).await;
    assert_eq!(None, app.server.metrics_addr());
    assert!(!app.server.inspect().metrics_enabled());
}

/// Every `leancloud_*` metric the dashboard and the alert rules name is one `text` holds (a family shows once it
/// has counted something).
fn assert_docs_name_only_exported_metrics(text: &str) {
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    for file in ["alerts.yaml", "grafana-dashboard.json"] {
        let doc = std::fs::read_to_string(docs.join(file)).expect("doc");
        let mut named = 0;
        for start in doc.match_indices("leancloud_").map(|(i, _)| i) {
            let name: String = doc[start..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            let family = ["_total", "_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            // The SQLite writer's commits have no counterpart on PostgreSQL.
            if crate::helpers::on_postgres() && family.starts_with("leancloud_store_commit_") {
                continue;
            }
            assert!(
                families.contains(&family),
                "{file} names {name}, which the server does not export ({families:?})"
            );
            named += 1;
        }
        assert!(named >= 7, "{file}: {named} metrics named");
    }
}
