//! Bulk sends, idempotency, budgets and schedules against the real server (fault mode included) and, where a
//! table, queue or parameter is involved, moto. See `functions/BULK.md`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use crate::aws::{
    self as support, failed_ids, handle_with, http_event, lambda_event, moto_or_skip, sqs_event,
    sqs_record, BulkApp as App,
};
use im_functions::delivery::budget::{Budget, BudgetConfig};
use im_functions::delivery::ledger::Ledger;
use im_functions::delivery::queue::BulkQueue;
use im_functions::delivery::{fan_out, BulkJob, BulkOptions, Delivery as Services, Sender};
use im_functions::ops::broadcast::BroadcastOp;
use im_functions::ops::send_message::SendMessageOp;
use leancloud_im::{ClientId, SendMessage};
use leancloud_server::{FaultConfig, FaultKind, MessageKind};
use serde_json::{json, Value};

const MESSAGES: &str = "/1.1/rtm/messages";
const BROADCASTS: &str = "/1.1/rtm/broadcast";

/// The fault run and the budget runs measure the server: they run one at a time so they do not slow each
/// other down.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn client_ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("user-{i:05}")).collect()
}

/// How often each recipient received a ToClients message in the conversation.
fn deliveries(app: &App) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for message in app.inspect().messages(app.system.as_ref()) {
        if message.kind == MessageKind::ToClients {
            for recipient in message.recipients {
                *counts.entry(recipient).or_insert(0) += 1;
            }
        }
    }
    counts
}

const FAULT_BUDGET: u64 = 1_000_000;

/// 10,000 recipients in 10 queue records (each with repeated entries), the server failing 10 % of calls
/// (5xx, 429, timeouts, dropped connections); failed records are fed again as SQS would until none fails,
/// and an already-succeeded record is delivered a second time. Every recipient must get the message once.
async fn ten_thousand_recipients_exactly_once(services: Services, label: &str) {
    let _heavy = HEAVY.lock().await;
    // A client timeout on a request the server did apply is an ambiguous outcome that is sent again (the
    // documented at-least-once case), so the timeout stays well above the server's latency under load; the
    // injected `timeout` fault answers only after it.
    let app = App::spawn(Duration::from_secs(3)).await;
    let mut records: BTreeMap<String, Value> = BTreeMap::new();
    for r in 0..10 {
        let mut ids = client_ids(r * 1000..(r + 1) * 1000);
        // Repeated entries within a record are sent once.
        let repeats: Vec<String> = ids.iter().step_by(50).cloned().collect();
        ids.extend(repeats);
        records.insert(
            format!("msg-{r:02}"),
            json!({"conversation_id": app.system.as_ref(), "from_client": "notifier",
                   "message": {"_lctype": -1, "_lctext": "Scheduled maintenance tonight"},
                   "to_clients": ids}),
        );
    }
    app.server.set_faults(FaultConfig {
        rate: 0.1,
        kinds: vec![
            FaultKind::ServerError,
            FaultKind::TooManyRequests,
            FaultKind::Timeout,
            FaultKind::Drop,
        ],
        delay_ms: 4_000,
        paths: vec![MESSAGES.to_owned()],
        // Only to count the faults injected (timeouts are not in the request log: the client hangs up first).
        max_faults: Some(FAULT_BUDGET),
    });

    let mut pending: Vec<String> = records.keys().cloned().collect();
    let mut succeeded: Vec<String> = Vec::new();
    let mut deliveries_fed = 0;
    let mut rounds = 0;
    let mut duplicate_sent = false;
    while !pending.is_empty() || !duplicate_sent {
        rounds += 1;
        assert!(
            rounds <= 200,
            "{label}: records still failing after 200 rounds: {pending:?}"
        );
        let mut batch = pending.clone();
        // SQS may deliver a message again after it succeeded: the replay must send nothing.
        if !duplicate_sent {
            if let Some(done) = succeeded.first() {
                batch.push(done.clone());
                duplicate_sent = true;
            }
        }
        deliveries_fed += batch.len();
        let event = sqs_event(
            batch
                .iter()
                .map(|id| sqs_record(id, &records[id]))
                .collect(),
        );
        let response = handle_with::<SendMessageOp>(&app.client, &services, lambda_event(event))
            .await
            .expect("an SQS batch always answers");
        let failed = failed_ids(&response);
        for id in &batch {
            if !failed.contains(id) && !succeeded.contains(id) {
                succeeded.push(id.clone());
            }
        }
        pending = failed;
        if !pending.is_empty() {
            // The records come back after the visibility timeout; the server's 429 penalty is one second.
            tokio::time::sleep(Duration::from_millis(1_100)).await;
        }
    }
    let injected = FAULT_BUDGET - app.inspect().faults().max_faults.unwrap_or(FAULT_BUDGET);
    app.server.set_faults(FaultConfig::off());

    let counts = deliveries(&app);
    let expected: HashSet<String> = client_ids(0..10_000).into_iter().collect();
    let missing = expected
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .count();
    let duplicates: usize = counts.values().map(|n| n.saturating_sub(1)).sum();
    let unexpected = counts.keys().filter(|id| !expected.contains(*id)).count();
    let requests = app.inspect().requests();
    let calls: Vec<_> = requests.iter().filter(|r| r.path == MESSAGES).collect();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for call in &calls {
        *by_status.entry(call.status).or_insert(0) += 1;
    }
    let stored = app
        .inspect()
        .messages(app.system.as_ref())
        .iter()
        .filter(|m| m.kind == MessageKind::ToClients)
        .count();
    eprintln!(
        "{label}: recipients={} missing={missing} duplicates={duplicates} messages_stored={stored} \
         faults_injected={injected} calls_logged={} by_status={by_status:?} rounds={rounds} deliveries_fed={deliveries_fed} \
         redeliveries={}",
        counts.len(),
        calls.len(),
        deliveries_fed - records.len()
    );
    assert_eq!(0, missing, "{label}: recipients never reached");
    assert_eq!(0, duplicates, "{label}: recipients reached twice");
    assert_eq!(0, unexpected);
    assert_eq!(500, stored, "{label}: one stored message per chunk of 20");
    assert!(injected > 0, "{label}: the run must have met faults");
    assert!(
        rounds > 1,
        "{label}: some records must have been redelivered"
    );
}

fn fault_test_services(ledger: Ledger) -> Services {
    Services {
        ledger,
        budget: Budget::memory(BudgetConfig::unlimited()),
        queue: None,
        options: BulkOptions {
            concurrency: 8,
            // Few attempts, so failures reach the record level and redelivery is exercised too.
            max_attempts: 2,
            retry_base: Duration::from_millis(20),
            ..BulkOptions::default()
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_recipients_exactly_once_with_the_dynamodb_ledger() {
    let moto = moto_or_skip!();
    let table = moto.table("idempotency").await;
    let services = fault_test_services(Ledger::dynamodb(table, "idempotency"));
    ten_thousand_recipients_exactly_once(services, "dynamodb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_recipients_exactly_once_with_the_memory_ledger() {
    ten_thousand_recipients_exactly_once(fault_test_services(Ledger::memory()), "memory").await;
}

/// Four concurrent invocations, each with its own `Budget` value over one shared store, never put more than
/// the budget into one window, counted from what the server received. Windows are 3 s instead of a minute
/// so the test takes seconds; the code path is the same.
async fn concurrent_invocations_share_one_budget(make_budget: impl Fn() -> Budget, label: &str) {
    let _heavy = HEAVY.lock().await;
    let app = App::spawn(Duration::from_secs(5)).await;
    let limit = 6;
    let jobs: Vec<(Services, BulkJob)> = (0..4)
        .map(|i| {
            let services = Services {
                ledger: Ledger::memory(),
                budget: make_budget(),
                queue: None,
                options: BulkOptions::default(),
            };
            let recipients: Vec<ClientId> = client_ids(i * 100..i * 100 + 100)
                .into_iter()
                .map(|id| ClientId::parse(id).expect("id"))
                .collect();
            let template = SendMessage::new(
                app.system.clone(),
                ClientId::parse("notifier").expect("id"),
                "budgeted",
            );
            (
                services,
                BulkJob::new(template, Some(recipients), Some(format!("job-{i}"))),
            )
        })
        .collect();
    let reports = futures::future::join_all(jobs.iter().map(|(services, job)| {
        let sender = Sender::new(&app.client, services);
        async move { fan_out(&sender, job).await }
    }))
    .await;
    for report in &reports {
        assert!(report.is_complete(), "{label}: {report:?}");
        assert_eq!(5, report.sent);
    }
    let mut per_window: BTreeMap<i64, usize> = BTreeMap::new();
    for request in app.inspect().requests() {
        if request.path == MESSAGES {
            *per_window
                .entry(request.at.timestamp_millis() / 3_000)
                .or_insert(0) += 1;
        }
    }
    eprintln!("{label}: calls per 3 s window (limit {limit}): {per_window:?}");
    assert_eq!(20, per_window.values().sum::<usize>());
    assert!(
        per_window.values().all(|calls| *calls <= limit),
        "{label}: a window exceeded the budget of {limit}: {per_window:?}"
    );
    assert_eq!(400, deliveries(&app).len());
}

fn short_window_budget(limit: u32) -> BudgetConfig {
    BudgetConfig {
        messages_per_window: Some(limit),
        broadcasts_per_window: None,
        broadcasts_per_day: None,
        window: Duration::from_secs(3),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_invocations_never_exceed_a_budget_shared_through_dynamodb() {
    let moto = moto_or_skip!();
    let table = moto.table("budgets").await;
    concurrent_invocations_share_one_budget(
        || Budget::dynamodb(short_window_budget(6), table.clone(), "budgets"),
        "dynamodb",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fan_outs_never_exceed_a_budget_shared_in_memory() {
    let shared = Budget::memory(short_window_budget(6));
    concurrent_invocations_share_one_budget(|| shared.clone(), "memory").await;
}

#[tokio::test]
async fn ledger_on_dynamodb_claims_completes_expires_and_replays() {
    use im_functions::delivery::ledger::{Claim, Entry, StoredChunk};
    let moto = moto_or_skip!();
    let ledger = Ledger::dynamodb(moto.table("ledger").await, "ledger");
    let minute = Duration::from_secs(60);

    let Claim::Claimed(lease) = ledger.claim("k", 0, "fp", minute).await.expect("claim") else {
        panic!("the first claim wins")
    };
    assert!(matches!(
        ledger.claim("k", 0, "fp", minute).await,
        Ok(Claim::Busy { .. })
    ));
    let stored = StoredChunk {
        msg_id: Some("m-1".into()),
        timestamp: Some(1_767_225_600_000),
        sent_at_ms: 1_767_225_600_001,
        fingerprint: "fp".into(),
    };
    ledger
        .complete("k", 0, &lease, &stored)
        .await
        .expect("complete");
    // A redelivery finds the stored result.
    assert_eq!(
        Claim::Done(stored.clone()),
        ledger.claim("k", 0, "fp", minute).await.expect("claim")
    );
    // Completing again (a late duplicate) keeps the first result.
    let other = StoredChunk {
        msg_id: Some("m-2".into()),
        ..stored.clone()
    };
    ledger
        .complete("k", 0, &lease, &other)
        .await
        .expect("complete");
    assert_eq!(
        Some(Entry::Done(stored)),
        ledger.get("k", 0).await.expect("get")
    );

    // An expired lease (its invocation died) can be claimed again; the stale owner cannot release it.
    let Ok(Claim::Claimed(stale)) = ledger.claim("k", 1, "fp", Duration::ZERO).await else {
        panic!("claimed")
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let Ok(Claim::Claimed(fresh)) = ledger.claim("k", 1, "fp", minute).await else {
        panic!("an expired lease must be claimable")
    };
    ledger.release("k", 1, &stale).await.expect("release");
    assert!(matches!(
        ledger.get("k", 1).await,
        Ok(Some(Entry::InProgress { .. }))
    ));
    ledger.release("k", 1, &fresh).await.expect("release");
    assert_eq!(None, ledger.get("k", 1).await.expect("get"));

    // Concurrent claims of one chunk: exactly one wins.
    let claims =
        futures::future::join_all((0..8).map(|_| ledger.claim("race", 0, "fp", minute))).await;
    let winners = claims
        .iter()
        .filter(|claim| matches!(claim, Ok(Claim::Claimed(_))))
        .count();
    assert_eq!(1, winners, "{claims:?}");

    // A refusal is answered while it is remembered, then the chunk is free again (TTL deletes lazily).
    use im_functions::delivery::ledger::StoredFailure;
    for (until, answered) in [(60_000, true), (-1, false)] {
        let chunk = if answered { 2 } else { 3 };
        let Ok(Claim::Claimed(lease)) = ledger.claim("k", chunk, "fp", minute).await else {
            panic!("claimed")
        };
        let failure = StoredFailure {
            status: 400,
            code: 4313,
            error: "SYSTEM_CONVERSATION_REQUIRED".into(),
            fingerprint: "fp".into(),
            until_ms: im_functions::delivery::dynamo::now_ms() + until,
        };
        ledger
            .fail("k", chunk, &lease, &failure)
            .await
            .expect("fail");
        let claim = ledger.claim("k", chunk, "fp", minute).await.expect("claim");
        if answered {
            assert_eq!(Claim::Failed(failure), claim);
        } else {
            assert!(matches!(claim, Claim::Claimed(_)), "{claim:?}");
        }
    }
}

/// A moto queue named `name`, a fresh server with its system conversation, and services that put HTTP bulk
/// sends on that queue.
async fn queued_app(
    moto: &support::Moto,
    name: &str,
) -> (App, Services, (aws_sdk_sqs::Client, String)) {
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let queue_url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_owned();
    let app = App::spawn(Duration::from_secs(5)).await;
    let services = Services {
        queue: Some(BulkQueue::new(sqs.clone(), queue_url.clone())),
        ..Services::in_memory(BudgetConfig::unlimited())
    };
    (app, services, (sqs, queue_url))
}

/// The one record on the queue, as JSON.
async fn only_record((sqs, queue_url): &(aws_sdk_sqs::Client, String)) -> Value {
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    let messages = received.messages();
    assert_eq!(1, messages.len());
    serde_json::from_str(messages[0].body().expect("body")).expect("record is JSON")
}

#[tokio::test]
async fn an_http_send_to_more_than_twenty_is_queued_with_202_and_sent_once_from_the_queue() {
    let moto = moto_or_skip!();
    let (app, services, queue) = queued_app(&moto, "bulk").await;
    let mut ids = client_ids(0..45);
    ids.push("user-00003".into());
    let path = format!("/conversations/{}/messages", app.system.as_ref());
    let body = json!({"from_client": "notifier", "message": "hello", "to_clients": ids});
    let response = handle_with::<SendMessageOp>(
        &app.client,
        &services,
        lambda_event(http_event(
            &path,
            "",
            json!({"idempotency-key": "notice-7"}),
            &body,
        )),
    )
    .await
    .expect("answers");
    assert_eq!(202, response["statusCode"], "{response}");
    let answer: Value =
        serde_json::from_str(response["body"].as_str().expect("body")).expect("json");
    assert_eq!(
        json!({"status": "queued", "recipients": 45, "duplicates_removed": 1, "chunks": 3,
               "idempotency_key": "notice-7"}),
        json!({"status": answer["status"], "recipients": answer["recipients"],
               "duplicates_removed": answer["duplicates_removed"], "chunks": answer["chunks"],
               "idempotency_key": answer["idempotency_key"]})
    );
    assert_eq!(0, app.calls(MESSAGES), "nothing is sent on the HTTP path");

    let record = only_record(&queue).await;
    assert_eq!(45, record["to_clients"].as_array().map_or(0, Vec::len));
    assert_eq!("notice-7", record["idempotency_key"]);
    // The consumer: delivered twice (different SQS message ids, same key) it sends once.
    for delivery in ["sqs-1", "sqs-2"] {
        let response = handle_with::<SendMessageOp>(
            &app.client,
            &services,
            lambda_event(sqs_event(vec![sqs_record(delivery, &record)])),
        )
        .await
        .expect("answers");
        assert!(failed_ids(&response).is_empty(), "{response}");
    }
    assert_eq!(3, app.calls(MESSAGES));
    let counts = deliveries(&app);
    assert_eq!(45, counts.len());
    assert!(counts.values().all(|n| *n == 1));
}

#[tokio::test]
async fn without_a_queue_an_http_send_to_more_than_twenty_is_a_400_that_reaches_nobody() {
    let app = App::spawn(Duration::from_secs(5)).await;
    let services = Services::in_memory(BudgetConfig::unlimited());
    let path = format!("/conversations/{}/messages", app.system.as_ref());
    let body =
        json!({"from_client": "notifier", "message": "hello", "to_clients": client_ids(0..21)});
    let response = handle_with::<SendMessageOp>(
        &app.client,
        &services,
        lambda_event(http_event(&path, "", json!({}), &body)),
    )
    .await
    .expect("answers");
    assert_eq!(400, response["statusCode"], "{response}");
    assert!(response["body"]
        .as_str()
        .unwrap_or_default()
        .contains("too_many_recipients"));
    assert_eq!(0, app.calls(MESSAGES));
}

#[tokio::test]
async fn a_dry_run_returns_the_plan_and_sends_nothing() {
    let app = App::spawn(Duration::from_secs(5)).await;
    let services = Services::in_memory(BudgetConfig {
        messages_per_window: Some(2),
        ..BudgetConfig::unlimited()
    });
    let path = format!("/conversations/{}/messages", app.system.as_ref());
    let mut ids = client_ids(0..100);
    ids.extend(client_ids(0..5));
    let body = json!({"from_client": "notifier", "message": "hello", "to_clients": ids});
    let before = app.inspect().requests().len();
    for (query, body) in [
        ("dry_run=true", body.clone()),
        ("", {
            let mut body = body.clone();
            body["dry_run"] = json!(true);
            body
        }),
    ] {
        let response = handle_with::<SendMessageOp>(
            &app.client,
            &services,
            lambda_event(http_event(&path, query, json!({}), &body)),
        )
        .await
        .expect("answers");
        assert_eq!(200, response["statusCode"], "{response}");
        let plan: Value =
            serde_json::from_str(response["body"].as_str().expect("body")).expect("json");
        assert_eq!(
            json!({"conversation_id": app.system.as_ref(), "dry_run": true, "operation": "send-message",
                   "recipients": 100, "duplicates_removed": 5, "chunks": 5, "chunk_size": 20, "calls": 5,
                   "budget_per_minute": 2, "minutes_needed": 3, "queued": true}),
            plan
        );
    }
    // A queue record can ask for a dry run too.
    let record = json!({"conversation_id": app.system.as_ref(), "from_client": "notifier",
                        "message": "hello", "to_clients": client_ids(0..30), "dry_run": true});
    let response = handle_with::<SendMessageOp>(
        &app.client,
        &services,
        lambda_event(sqs_event(vec![sqs_record("dry-1", &record)])),
    )
    .await
    .expect("answers");
    assert!(failed_ids(&response).is_empty());
    assert_eq!(
        before,
        app.inspect().requests().len(),
        "a dry run calls nothing"
    );
}

#[tokio::test]
async fn a_retried_schedule_fire_broadcasts_once() {
    let app = App::spawn(Duration::from_secs(5)).await;
    let services = Services::in_memory(BudgetConfig::unlimited());
    let conversation = app.system.as_ref();
    // EventBridge Scheduler: the template builds the key from the schedule name and scheduled time.
    let scheduler = |time: &str| {
        json!({"conversation_id": conversation, "from_client": "system", "message": "Good morning!",
               "idempotency_key": format!("stack-daily-broadcast@{time}")})
    };
    // Classic EventBridge rule: the key is the rule ARN plus `time`.
    let classic = |time: &str| {
        json!({"version": "0", "id": format!("evt-{time}"), "detail-type": "Scheduled Event",
               "source": "aws.events", "account": "123456789012", "time": time, "region": "us-east-1",
               "resources": ["arn:aws:events:us-east-1:123456789012:rule/daily-broadcast"],
               "detail": {"conversation_id": conversation, "from_client": "system", "message": "Hi"}})
    };
    let mut answers = Vec::new();
    for event in [
        scheduler("2026-01-05T01:00:00Z"),
        scheduler("2026-01-05T01:00:00Z"),
        scheduler("2026-01-06T01:00:00Z"),
        classic("2026-01-05T01:00:00Z"),
        classic("2026-01-05T01:00:00Z"),
    ] {
        answers.push(
            handle_with::<BroadcastOp>(&app.client, &services, lambda_event(event))
                .await
                .expect("broadcast"),
        );
    }
    assert_eq!(
        answers[0], answers[1],
        "the retried fire returns the stored result"
    );
    assert_ne!(answers[0]["msg_id"], answers[2]["msg_id"]);
    assert_eq!(answers[3], answers[4]);
    assert_eq!(3, app.calls(BROADCASTS));
    let broadcasts = app
        .inspect()
        .messages(conversation)
        .iter()
        .filter(|m| m.kind == MessageKind::Broadcast)
        .count();
    assert_eq!(3, broadcasts);
}

#[tokio::test]
async fn a_broadcast_beyond_the_daily_quota_is_refused_before_calling_leancloud() {
    let app = App::spawn(Duration::from_secs(5)).await;
    let services = Services::in_memory(BudgetConfig {
        broadcasts_per_day: Some(1),
        ..BudgetConfig::unlimited()
    });
    let path = format!("/conversations/{}/broadcasts", app.system.as_ref());
    let mut statuses = Vec::new();
    let mut last = Value::Null;
    for key in ["b-1", "b-2"] {
        let body = json!({"from_client": "system", "message": "News", "idempotency_key": key});
        last = handle_with::<BroadcastOp>(
            &app.client,
            &services,
            lambda_event(http_event(&path, "", json!({}), &body)),
        )
        .await
        .expect("answers");
        statuses.push(last["statusCode"].as_i64().unwrap_or_default());
    }
    assert_eq!(vec![200, 429], statuses, "{last}");
    let body = last["body"].as_str().unwrap_or_default();
    assert!(body.contains("daily broadcast budget of 1"), "{body}");
    let error: Value = serde_json::from_str(body).expect("a JSON error body");
    assert_eq!("daily_quota_exceeded", error["error"]["code"], "{body}");
    assert!(
        error["error"].get("leancloud_code").is_none(),
        "not LeanCloud's refusal: {body}"
    );
    assert_eq!(1, app.calls(BROADCASTS), "the refused broadcast never left");
}

#[tokio::test]
async fn a_429_fails_the_record_at_once_instead_of_retrying_in_a_loop() {
    let app = App::spawn(Duration::from_secs(5)).await;
    let services = Services::in_memory(BudgetConfig::unlimited());
    app.server.set_faults(FaultConfig {
        paths: vec![MESSAGES.to_owned()],
        ..FaultConfig::always(FaultKind::TooManyRequests)
    });
    let record = json!({"conversation_id": app.system.as_ref(), "from_client": "notifier",
                        "message": "hi", "to_clients": client_ids(0..200)});
    let response = handle_with::<SendMessageOp>(
        &app.client,
        &services,
        lambda_event(sqs_event(vec![sqs_record("r-429", &record)])),
    )
    .await
    .expect("answers");
    assert_eq!(vec!["r-429".to_owned()], failed_ids(&response));
    let calls = app.calls(MESSAGES);
    // Chunks already in flight when the first 429 came may also have been answered 429; none is retried.
    assert!(
        (1..=BulkOptions::default().concurrency).contains(&calls),
        "{calls} calls"
    );
}

#[tokio::test]
async fn invalid_records_fail_alone_and_never_reach_leancloud() {
    let app = App::spawn(Duration::from_secs(5)).await;
    let services = Services::in_memory(BudgetConfig::unlimited());
    let conversation = app.system.as_ref();
    let mut bad_ids = client_ids(0..30);
    bad_ids[25] = String::new();
    let records = vec![
        sqs_record(
            "bad-id",
            &json!({"conversation_id": conversation, "from_client": "n", "message": "x", "to_clients": bad_ids}),
        ),
        sqs_record(
            "too-big",
            &json!({"conversation_id": conversation, "from_client": "n", "message": "x".repeat(6000),
                    "to_clients": client_ids(0..30)}),
        ),
        sqs_record(
            "bad-key",
            &json!({"conversation_id": conversation, "from_client": "n", "message": "x",
                    "to_clients": ["a"], "idempotency_key": ""}),
        ),
        sqs_record(
            "good",
            &json!({"conversation_id": conversation, "from_client": "n", "message": "x",
                    "to_clients": client_ids(0..30)}),
        ),
    ];
    let response =
        handle_with::<SendMessageOp>(&app.client, &services, lambda_event(sqs_event(records)))
            .await
            .expect("answers");
    let mut failed = failed_ids(&response);
    failed.sort();
    assert_eq!(vec!["bad-id", "bad-key", "too-big"], failed);
    assert_eq!(
        2,
        app.calls(MESSAGES),
        "only the valid record's two chunks were sent"
    );
}

#[tokio::test]
async fn a_repeated_http_call_with_the_same_key_returns_the_stored_result() {
    let app = App::spawn(Duration::from_secs(5)).await;
    let services = Services::in_memory(BudgetConfig::unlimited());
    let path = format!("/conversations/{}/messages", app.system.as_ref());
    let body = json!({"from_client": "notifier", "message": "hello", "to_clients": ["a", "b"]});
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let response = handle_with::<SendMessageOp>(
            &app.client,
            &services,
            lambda_event(http_event(
                &path,
                "",
                json!({"Idempotency-Key": "order-1"}),
                &body,
            )),
        )
        .await
        .expect("answers");
        assert_eq!(200, response["statusCode"], "{response}");
        bodies.push(response["body"].clone());
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(1, app.calls(MESSAGES));
    // The same key for a different request is refused, not silently answered with the old result.
    let other = json!({"from_client": "notifier", "message": "changed", "to_clients": ["a", "b"]});
    let response = handle_with::<SendMessageOp>(
        &app.client,
        &services,
        lambda_event(http_event(
            &path,
            "",
            json!({"Idempotency-Key": "order-1"}),
            &other,
        )),
    )
    .await
    .expect("answers");
    assert_eq!(400, response["statusCode"], "{response}");
    assert_eq!(1, app.calls(MESSAGES));
}

#[tokio::test]
async fn the_master_key_is_fetched_from_ssm_when_only_its_parameter_is_set() {
    let moto = moto_or_skip!();
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config().await);
    ssm.put_parameter()
        .name("/leancloud-im/master-key")
        .value(support::MASTER_KEY)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        // Idempotent: moto's first SSM call loads its default parameters and can outlast the 5 s attempt
        // timeout, and the SDK's retry of a plain put then failed with ParameterAlreadyExists.
        .overwrite(true)
        .send()
        .await
        .expect("parameter stored");
    let app = App::spawn(Duration::from_secs(5)).await;
    let aws = moto.env();
    let base_url = app.server.base_url();
    let env = |name: &str| match name {
        "LEANCLOUD_APP_ID" => Some("dev-app-id-gzGzoHsz".to_owned()),
        "LEANCLOUD_API_SERVER" => Some(base_url.clone()),
        "LEANCLOUD_APP_MASTER_KEY_PARAMETER" => Some("/leancloud-im/master-key".to_owned()),
        other => aws(other),
    };
    let config = im_functions::config::load_with(env).await.expect("loads");
    assert!(!format!("{config:?}").contains(support::MASTER_KEY));
    // The server accepts the signature only with the right master key.
    let client = leancloud_im::Client::new(config).expect("client");
    client
        .execute(&leancloud_im::CreateConversation::new().name("signed with the SSM key"))
        .await
        .expect("signed with the fetched key");

    let missing = |name: &str| match name {
        "LEANCLOUD_APP_MASTER_KEY_PARAMETER" => Some("/leancloud-im/absent".to_owned()),
        other => env(other),
    };
    let err = im_functions::config::load_with(missing)
        .await
        .expect_err("an absent parameter fails the cold start");
    assert!(err.to_string().contains("/leancloud-im/absent"), "{err}");
}

/// M7: an answer that may mean the server applied the call (here a 500) was retried inside the invocation,
/// up to `max_attempts` (4) times, for a broadcast as for a message chunk: one slow broadcast could reach
/// every user four times. Before the fix this counted 4 broadcast calls and 8 message calls.
#[tokio::test]
async fn m7_an_ambiguous_failure_is_never_sent_again_in_the_same_invocation() {
    let app = App::spawn(Duration::from_secs(5)).await;
    let services = Services::in_memory(BudgetConfig::unlimited());
    assert_eq!(
        4, services.options.max_attempts,
        "the default allows retries"
    );
    app.server.set_faults(FaultConfig {
        paths: vec![MESSAGES.to_owned(), BROADCASTS.to_owned()],
        ..FaultConfig::always(FaultKind::ServerError)
    });
    let path = format!("/conversations/{}/broadcasts", app.system.as_ref());
    let body = json!({"from_client": "system", "message": "News", "idempotency_key": "m7-b"});
    let answer = handle_with::<BroadcastOp>(
        &app.client,
        &services,
        lambda_event(http_event(&path, "", json!({}), &body)),
    )
    .await
    .expect("answers");
    assert_eq!(503, answer["statusCode"], "{answer}");
    assert_eq!(1, app.calls(BROADCASTS), "the broadcast was sent once");

    let record = json!({"conversation_id": app.system.as_ref(), "from_client": "notifier",
                        "message": "hi", "to_clients": client_ids(0..30)});
    let response = handle_with::<SendMessageOp>(
        &app.client,
        &services,
        lambda_event(sqs_event(vec![sqs_record("m7-r", &record)])),
    )
    .await
    .expect("answers");
    assert_eq!(vec!["m7-r".to_owned()], failed_ids(&response));
    assert_eq!(
        2,
        app.calls(MESSAGES),
        "each of the two chunks was sent once"
    );

    // The record's redelivery (through the ledger) is what sends them again, once the server is back.
    app.server.set_faults(FaultConfig::off());
    let response = handle_with::<SendMessageOp>(
        &app.client,
        &services,
        lambda_event(sqs_event(vec![sqs_record("m7-r", &record)])),
    )
    .await
    .expect("answers");
    assert!(failed_ids(&response).is_empty());
    assert_eq!(4, app.calls(MESSAGES));
}

/// L8: a send LeanCloud refuses for good (here a broadcast to a conversation that is not a system
/// conversation, 4313) failed the scheduled invocation; Lambda's two retries, and every SQS redelivery of a
/// record, called LeanCloud again and took another budget unit each. Before the fix: 3 broadcast calls and
/// the daily quota of 3 used up, so the next, valid broadcast was refused.
#[tokio::test]
async fn l8_a_permanent_failure_is_answered_from_the_ledger_without_calls_or_budget() {
    let app = App::spawn(Duration::from_secs(5)).await;
    let services = Services::in_memory(BudgetConfig {
        broadcasts_per_day: Some(3),
        ..BudgetConfig::unlimited()
    });
    let normal = app
        .client
        .execute(&leancloud_im::CreateConversation::new().name("Chat"))
        .await
        .expect("conversation")
        .id;
    let fire = json!({"conversation_id": normal.as_ref(), "from_client": "system", "message": "Hi",
                      "idempotency_key": "stack-daily@2026-12-01T09:00:00Z"});
    let mut errors = Vec::new();
    // The first invocation and Lambda's two retries of the asynchronous invocation.
    for _ in 0..3 {
        let err = handle_with::<BroadcastOp>(&app.client, &services, lambda_event(fire.clone()))
            .await
            .expect_err("refused");
        assert!(!err.is_retryable(), "{err}");
        errors.push(err.to_string());
    }
    assert_eq!(
        1,
        app.calls(BROADCASTS),
        "only the first invocation called LeanCloud"
    );
    assert!(errors[0].contains("4313"), "{}", errors[0]);
    assert!(
        errors.iter().all(|e| e == &errors[0]),
        "the same answer each time: {errors:?}"
    );

    // The quota still has two units: one was used by the refused call, none by the retries.
    for key in ["ok-1", "ok-2"] {
        let good = json!({"conversation_id": app.system.as_ref(), "from_client": "system",
                          "message": "Hi", "idempotency_key": key});
        handle_with::<BroadcastOp>(&app.client, &services, lambda_event(good))
            .await
            .expect("within the quota");
    }
    assert_eq!(3, app.calls(BROADCASTS));

    // An SQS record refused for good: its redeliveries send nothing either.
    let record = json!({"conversation_id": normal.as_ref(), "from_client": "n", "message": "x",
                        "to_clients": client_ids(0..5)});
    for _ in 0..3 {
        let response = handle_with::<SendMessageOp>(
            &app.client,
            &services,
            lambda_event(sqs_event(vec![sqs_record("l8-r", &record)])),
        )
        .await
        .expect("answers");
        assert_eq!(
            vec!["l8-r".to_owned()],
            failed_ids(&response),
            "it still reaches the DLQ"
        );
    }
    assert_eq!(1, app.calls(MESSAGES), "one call for three deliveries");
}

/// U2 (confirmed: AWS documents that a dead-letter redrive gives every message a new `messageId`): an HTTP
/// bulk send without a key was queued without one, so its record was keyed by its SQS message id and a
/// redrive sent it again in full. Before the fix the second delivery below made 3 more calls (6 in all).
#[tokio::test]
async fn u2_a_queued_send_without_a_key_survives_a_redrive_with_a_new_message_id() {
    let moto = moto_or_skip!();
    let (app, services, queue) = queued_app(&moto, "bulk-u2").await;
    let path = format!("/conversations/{}/messages", app.system.as_ref());
    let body =
        json!({"from_client": "notifier", "message": "hello", "to_clients": client_ids(0..45)});
    let response = handle_with::<SendMessageOp>(
        &app.client,
        &services,
        lambda_event(http_event(&path, "", json!({}), &body)),
    )
    .await
    .expect("answers");
    assert_eq!(202, response["statusCode"], "{response}");
    let answer: Value =
        serde_json::from_str(response["body"].as_str().expect("body")).expect("json");
    let record = only_record(&queue).await;
    let key = record["idempotency_key"]
        .as_str()
        .expect("the record carries a key");
    assert!(key.starts_with("queued-"), "{key}");
    assert_eq!(
        answer["idempotency_key"], record["idempotency_key"],
        "the 202 names it"
    );
    // The first delivery, then the same body redriven from the DLQ under a new message id.
    for message_id in ["original-id", "redriven-id"] {
        let response = handle_with::<SendMessageOp>(
            &app.client,
            &services,
            lambda_event(sqs_event(vec![sqs_record(message_id, &record)])),
        )
        .await
        .expect("answers");
        assert!(failed_ids(&response).is_empty(), "{response}");
    }
    assert_eq!(3, app.calls(MESSAGES), "three chunks, sent once");
}
