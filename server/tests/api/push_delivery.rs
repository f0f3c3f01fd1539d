//! Delivery of pushes to APNs and FCM (issue 25, last part), against the stand-ins of `push_standins`: an
//! iOS-like client (`session/open` with its `deviceToken`) and an Android-like one (`deviceId` with the bind flag)
//! log in and go offline; each kind of message then produces exactly the expected requests at the providers —
//! the app's template (with `"badge": "Increment"` counted per device), a client's `pushData`, the hook's payload
//! (whose `force` reaches a muted member), nothing for a chat room or a transient message, a broadcast's `push` to
//! every device. A device the provider says is gone is marked invalid and not tried again; pushes queued while the
//! providers are down arrive once after they return, also across a restart, and two instances sharing a database
//! deliver each push once.

use std::time::Duration;

use leancloud_server::realtime::proto::{
    CommandType, DirectCommand, GenericCommand, SessionCommand,
};
use leancloud_server::ServerConfig;
use pretty_assertions::assert_eq;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    free_port, server_command, spawn_instances, spawn_with, start, wait_ready, TestApp,
};
use crate::hooks::{with_engine, Answer};
use crate::push::{bound_offline, device};
use crate::realtime::connect;
use leancloud_server::config::{ApnsConfig, FcmConfig};
use push_standins::{Apns, Fcm, Recorded, Seen, KEY_ID, OTHER_TOPIC, TEAM_ID, TOPIC};

const BOB: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
const ERIN: &str = "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1";
const FRANK: &str = "f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2";
const CAROL: &str = "fcm-carol-registration";
/// How long a delivery may take: the worker looks every 100 ms here; a retry waits 2 s.
const WITHIN: Duration = Duration::from_secs(10);
/// How long to keep watching for a request that must not come.
const QUIET: Duration = Duration::from_millis(600);

/// Points a server at the stand-ins, with the app's template and a quick worker.
fn pushing(c: &mut ServerConfig, apns: &Apns, fcm: &Fcm) {
    c.push.apns = Some(ApnsConfig {
        key_pem: apns.key_pem.clone(),
        key_id: KEY_ID.into(),
        team_id: TEAM_ID.into(),
        topic: Some(TOPIC.into()),
        endpoint: Some(apns.url.clone()),
        ca_pem: Some(apns.ca_pem.clone()),
    });
    c.push.fcm = Some(FcmConfig {
        service_account: fcm.service_account(),
        endpoint: Some(fcm.url.clone()),
    });
    c.push.template = Some(json!({"alert": "${fromClientId} in ${convId}", "badge": "Increment"}));
    c.push.every = Duration::from_millis(100);
}

fn ios(token: &str) -> SessionCommand {
    SessionCommand {
        device_token: Some(token.into()),
        ..Default::default()
    }
}

fn android(installation: &str) -> SessionCommand {
    SessionCommand {
        device_id: Some(installation.into()),
        config_bitmap: Some(0x04),
        ..Default::default()
    }
}

/// bob (iPhone), carol (Android, FCM) and erin (iPhone of another bundle, who muted the conversation), bound and
/// offline, in a conversation with alice; its id.
async fn members(app: &TestApp) -> String {
    device(app, json!({"deviceType": "ios", "deviceToken": BOB})).await;
    device(
        app,
        json!({"deviceType": "android", "installationId": "carol-phone", "vendor": "fcm", "registrationId": CAROL}),
    )
    .await;
    device(
        app,
        json!({"deviceType": "ios", "deviceToken": ERIN, "apnsTopic": OTHER_TOPIC}),
    )
    .await;
    bound_offline(app, "bob", ios(BOB)).await;
    bound_offline(app, "carol", android("carol-phone")).await;
    bound_offline(app, "erin", ios(ERIN)).await;
    let (status, conv) = app
        .post(
            "/1.2/rtm/conversations",
            json!({"m": ["alice", "bob", "carol", "erin"], "mu": ["erin"]}),
        )
        .await;
    assert_eq!(StatusCode::CREATED, status, "{conv}");
    conv["objectId"].as_str().expect("id").to_string()
}

async fn rest_send(app: &TestApp, cid: &str, body: Value) -> String {
    let (status, sent) = app
        .post(&format!("/1.2/rtm/conversations/{cid}/messages"), body)
        .await;
    assert_eq!(StatusCode::OK, status, "{sent}");
    sent["msg-id"].as_str().expect("msg-id").to_string()
}

/// Waits for `apns` and `fcm` deliveries in all, then a moment for any request too many; every request seen.
async fn settled(apns: &Apns, a: usize, fcm: &Fcm, f: usize) -> (Vec<Seen>, Vec<Seen>) {
    apns.wait_delivered(a, WITHIN).await;
    fcm.wait_delivered(f, WITHIN).await;
    tokio::time::sleep(QUIET).await;
    (apns.seen(), fcm.seen())
}

/// (device token, topic, APNs body) of APNs requests.
fn apns_view(seen: &[Seen]) -> Vec<(String, String, Value)> {
    seen.iter()
        .map(|s| {
            let topic = s.header("apns-topic").unwrap_or_default().to_string();
            (s.device.clone(), topic, s.body.clone())
        })
        .collect()
}

/// (registration token, notification, LeanCloud data read back from `data.payload`) of FCM requests.
fn fcm_view(seen: &[Seen]) -> Vec<(String, Value, Value)> {
    seen.iter()
        .map(|s| {
            let m = &s.body["message"];
            let data: Value = serde_json::from_str(m["data"]["payload"].as_str().unwrap_or("null"))
                .expect("json");
            (s.device.clone(), m["notification"].clone(), data)
        })
        .collect()
}

fn statuses(seen: &[Seen]) -> Vec<u16> {
    seen.iter().map(|s| s.status).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_message_reaches_exactly_the_devices_it_should() {
    // Arrange
    let (apns, fcm) = (Apns::start().await, Fcm::start().await);
    let app = spawn_with(|c| pushing(c, &apns, &fcm)).await;
    let cid = members(&app).await;

    // Act 1: a REST send without push data: the app's template, erin muted.
    rest_send(&app, &cid, json!({"from_client": "alice", "message": "hi"})).await;
    let (a, f) = settled(&apns, 1, &fcm, 1).await;

    // Assert 1: bob's iPhone gets the template with its badge counted; carol's phone the FCM form of it.
    let alert = format!("alice in {cid}");
    assert_eq!(
        vec![(
            BOB.to_string(),
            TOPIC.to_string(),
            json!({"aps": {"alert": alert, "badge": 1}})
        )],
        apns_view(&a)
    );
    assert_eq!(
        vec![(
            CAROL.to_string(),
            json!({ "body": alert }),
            json!({"alert": alert, "badge": "Increment"})
        )],
        fcm_view(&f)
    );
    assert_eq!(Some("alert"), a[0].header("apns-push-type"));
    let week = chrono::Utc::now().timestamp() + 7 * 86_400;
    let expiration: i64 = a[0]
        .header("apns-expiration")
        .and_then(|e| e.parse().ok())
        .expect("apns-expiration");
    assert!((expiration - week).abs() < 60, "{expiration} vs {week}");
    // Kept by FCM as long as the offline push is valid (7 days).
    let ttl: i64 = f[0].body["message"]["android"]["ttl"]
        .as_str()
        .and_then(|t| t.strip_suffix('s'))
        .and_then(|t| t.parse().ok())
        .expect("ttl");
    assert!((ttl - 7 * 86_400).abs() < 60, "{ttl}");
    assert_eq!(json!("HIGH"), f[0].body["message"]["android"]["priority"]);
    assert_eq!(1, apns.provider_tokens(), "one provider token");

    // Act 2: alice sends from her phone with pushData.
    let mut alice = connect(&app, "lc.protobuf2.3").await;
    alice.login("alice").await;
    let ack = alice
        .request(GenericCommand {
            direct_message: Some(DirectCommand {
                msg: Some("hello".into()),
                cid: Some(cid.clone()),
                push_data: Some(r#"{"alert": "alice: hello", "sound": "default"}"#.into()),
                ..Default::default()
            }),
            ..GenericCommand::new(CommandType::Direct, None)
        })
        .await;
    assert_eq!(None, ack.ack_message.expect("ack").code);
    let (a, f) = settled(&apns, 2, &fcm, 2).await;

    // Assert 2: the client's push data, as it gave it (no badge: none asked).
    assert_eq!(
        (
            BOB.to_string(),
            TOPIC.to_string(),
            json!({"aps": {"alert": "alice: hello", "sound": "default"}})
        ),
        apns_view(&a)[1]
    );
    assert_eq!(
        (
            CAROL.to_string(),
            json!({"body": "alice: hello"}),
            json!({"alert": "alice: hello", "sound": "default"})
        ),
        fcm_view(&f)[1]
    );
    assert_eq!((2, 2), (a.len(), f.len()));

    // Act 3: a transient message, and a message in a chat room bob and carol are in.
    rest_send(
        &app,
        &cid,
        json!({"from_client": "alice", "message": "typing", "transient": true}),
    )
    .await;
    let (_, room) = app
        .post(
            "/1.2/rtm/chatrooms",
            json!({"m": ["alice", "bob", "carol"]}),
        )
        .await;
    let room = room["objectId"].as_str().expect("room").to_string();
    let (status, _) = app
        .post(
            &format!("/1.2/rtm/chatrooms/{room}/messages"),
            json!({"from_client": "alice", "message": "room", "push_data": {"alert": "room"}}),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    let (a, f) = settled(&apns, 2, &fcm, 2).await;

    // Assert 3: nothing more.
    assert_eq!((2, 2), (a.len(), f.len()));

    // Act 4: a broadcast with a push, from a system conversation.
    let sys = app.conversation(json!({"name": "News", "sys": true})).await;
    let (status, sent) = app
        .post(
            "/1.1/rtm/broadcast",
            json!({"from_peer": "sys", "conv_id": sys, "message": "m", "push": {"alert": "news"}}),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{sent}");
    let (a, f) = settled(&apns, 4, &fcm, 3).await;

    // Assert 4: every device, erin's under its own bundle's topic.
    let mut broadcast = apns_view(&a[2..]);
    broadcast.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        vec![
            (
                BOB.to_string(),
                TOPIC.to_string(),
                json!({"aps": {"alert": "news"}})
            ),
            (
                ERIN.to_string(),
                OTHER_TOPIC.to_string(),
                json!({"aps": {"alert": "news"}})
            ),
        ],
        broadcast
    );
    assert_eq!(
        vec![(
            CAROL.to_string(),
            json!({"body": "news"}),
            json!({"alert": "news"})
        )],
        fcm_view(&f[2..])
    );
    assert_eq!((vec![200; 4], vec![200; 3]), (statuses(&a), statuses(&f)));
    assert_eq!(1, fcm.grants(), "one access token, reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hooks_payload_is_pushed_and_its_force_reaches_a_muted_member() {
    // Arrange
    let (apns, fcm) = (Apns::start().await, Fcm::start().await);
    let answer = Answer::Result(
        json!({"force": true, "pushMessage": "{\"alert\": \"from the hook\", \"badge\": 7}"}),
    );
    let (app, engine) = with_engine(
        &["_receiversOffline"],
        &[("_receiversOffline", answer)],
        |c| pushing(c, &apns, &fcm),
    )
    .await;
    let cid = members(&app).await;

    // Act
    rest_send(
        &app,
        &cid,
        json!({"from_client": "alice", "message": "hi", "push_data": {"alert": "not this"}}),
    )
    .await;
    let (a, f) = settled(&apns, 2, &fcm, 1).await;

    // Assert: the hook was asked about every offline member, muted erin too, and its payload went to all.
    let asked = engine.wait_for("_receiversOffline", 1).await;
    assert_eq!(json!(["bob", "carol", "erin"]), asked[0]["offlinePeers"]);
    let mut got = apns_view(&a);
    got.sort_by(|x, y| x.0.cmp(&y.0));
    let aps = json!({"aps": {"alert": "from the hook", "badge": 7}});
    assert_eq!(
        vec![
            (BOB.to_string(), TOPIC.to_string(), aps.clone()),
            (ERIN.to_string(), OTHER_TOPIC.to_string(), aps),
        ],
        got
    );
    assert_eq!(
        vec![(
            CAROL.to_string(),
            json!({"body": "from the hook"}),
            json!({"alert": "from the hook", "badge": 7})
        )],
        fcm_view(&f)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_the_provider_says_is_gone_is_marked_invalid_and_not_tried_again() {
    // Arrange: frank's iPhone and greg's Android phone were uninstalled; bob's is fine.
    let (apns, fcm) = (Apns::start().await, Fcm::start().await);
    let app = spawn_with(|c| pushing(c, &apns, &fcm)).await;
    device(&app, json!({"deviceType": "ios", "deviceToken": BOB})).await;
    let frank = device(&app, json!({"deviceType": "ios", "deviceToken": FRANK})).await;
    let greg = device(
        &app,
        json!({"deviceType": "android", "installationId": "greg-phone", "vendor": "fcm", "registrationId": "fcm-greg"}),
    )
    .await;
    bound_offline(&app, "bob", ios(BOB)).await;
    bound_offline(&app, "frank", ios(FRANK)).await;
    bound_offline(&app, "greg", android("greg-phone")).await;
    apns.forget(FRANK);
    fcm.forget("fcm-greg");
    let (_, conv) = app
        .post(
            "/1.2/rtm/conversations",
            json!({"m": ["alice", "bob", "frank", "greg"]}),
        )
        .await;
    let cid = conv["objectId"].as_str().expect("id").to_string();

    // Act
    let first = rest_send(
        &app,
        &cid,
        json!({"from_client": "alice", "message": "1", "push_data": {"alert": "1"}}),
    )
    .await;
    let (a, f) = settled(&apns, 1, &fcm, 0).await;

    // Assert: APNs answered 410 for frank, FCM UNREGISTERED for greg; both devices are marked invalid and
    // unbound, their jobs ended as `invalid`.
    let mut answered: Vec<(String, u16)> = a.iter().map(|s| (s.device.clone(), s.status)).collect();
    answered.sort();
    assert_eq!(
        vec![(BOB.to_string(), 200), (FRANK.to_string(), 410)],
        answered
    );
    assert_eq!(
        vec![("fcm-greg".to_string(), 404)],
        f.iter()
            .map(|s| (s.device.clone(), s.status))
            .collect::<Vec<_>>()
    );
    for id in [&frank, &greg] {
        let (_, row) = app.get(&format!("/1.1/installations/{id}")).await;
        assert_eq!(
            (json!(false), json!([])),
            (row["valid"].clone(), row["channels"].clone()),
            "{row}"
        );
    }
    let (_, jobs) = app.get(&format!("/__admin/pushes?ref_id={first}")).await;
    let mut states: Vec<(String, String)> = jobs
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            (
                j["target"].as_str().unwrap_or_default().to_string(),
                j["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    states.sort();
    assert_eq!(
        vec![
            (BOB.to_string(), "sent".to_string()),
            (FRANK.to_string(), "invalid".to_string()),
            ("fcm-greg".to_string(), "invalid".to_string()),
        ],
        states
    );

    // Act + Assert: the next message reaches bob only.
    rest_send(
        &app,
        &cid,
        json!({"from_client": "alice", "message": "2", "push_data": {"alert": "2"}}),
    )
    .await;
    let (a, f) = settled(&apns, 2, &fcm, 0).await;
    assert_eq!((3, 1), (a.len(), f.len()));
    assert_eq!(
        (BOB.to_string(), json!({"aps": {"alert": "2"}})),
        (a[2].device.clone(), a[2].body.clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_queued_while_the_providers_are_down_arrive_once_after_they_return_and_after_a_restart(
) {
    // Arrange: both providers down.
    let (apns, fcm) = (Apns::start().await, Fcm::start().await);
    let app = spawn_with(|c| pushing(c, &apns, &fcm)).await;
    let cid = members(&app).await;
    apns.set_down(true);
    fcm.set_down(true);

    // Act 1: a message while they are down; they come back.
    rest_send(
        &app,
        &cid,
        json!({"from_client": "alice", "message": "1", "push_data": {"alert": "during the outage"}}),
    )
    .await;
    wait_refused(&apns, &fcm).await;
    apns.set_down(false);
    fcm.set_down(false);

    // Assert 1: delivered once each, after the back-off.
    let (a, f) = settled(&apns, 1, &fcm, 1).await;
    assert_eq!(
        vec![(
            BOB.to_string(),
            TOPIC.to_string(),
            json!({"aps": {"alert": "during the outage"}})
        )],
        apns_view(&delivered(&a))
    );
    assert_eq!(1, delivered(&f).len(), "{f:?}");

    // Act 2: down again, a message, the server stops; the providers return, the server starts again.
    apns.set_down(true);
    fcm.set_down(true);
    rest_send(
        &app,
        &cid,
        json!({"from_client": "alice", "message": "2", "push_data": {"alert": "before the restart"}}),
    )
    .await;
    wait_refused(&apns, &fcm).await;
    let TestApp {
        server,
        dir: _dir,
        config,
        ..
    } = app;
    server.shutdown().await;
    apns.set_down(false);
    fcm.set_down(false);
    let again = leancloud_server::spawn(config).await.expect("restarts");

    // Assert 2: the queued push arrives once, from the restarted server.
    let (a, f) = settled(&apns, 2, &fcm, 2).await;
    assert_eq!(
        vec![
            json!({"aps": {"alert": "during the outage"}}),
            json!({"aps": {"alert": "before the restart"}})
        ],
        delivered(&a)
            .iter()
            .map(|s| s.body.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        vec![
            json!({"body": "during the outage"}),
            json!({"body": "before the restart"})
        ],
        delivered(&f)
            .iter()
            .map(|s| s.body["message"]["notification"].clone())
            .collect::<Vec<_>>()
    );
    again.shutdown().await;
}

/// Waits until each stand-in refused a request (503) for the newest push.
async fn wait_refused(apns: &Apns, fcm: &Fcm) {
    let until = tokio::time::Instant::now() + WITHIN;
    let refused = |seen: Vec<Seen>| seen.last().is_some_and(|s| s.status == 503);
    while !(refused(apns.seen()) && refused(fcm.seen())) {
        assert!(tokio::time::Instant::now() < until, "no attempt while down");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn delivered(seen: &[Seen]) -> Vec<Seen> {
    seen.iter().filter(|s| s.status == 200).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_deliver_each_push_once() {
    // Arrange: two instances sharing a PostgreSQL database, both with workers.
    let (apns, fcm) = (Apns::start().await, Fcm::start().await);
    let [a, b] = spawn_instances(|c| pushing(c, &apns, &fcm)).await;
    let cid = members(&a).await;

    // Act: 20 messages, sent through either instance.
    for i in 0..20 {
        let app = if i % 2 == 0 { &a } else { &b };
        rest_send(
            app,
            &cid,
            json!({"from_client": "alice", "message": format!("{i}"), "push_data": {"alert": format!("m{i}")}}),
        )
        .await;
    }
    let (seen_a, seen_f) = settled(&apns, 20, &fcm, 20).await;

    // Assert: each message's push reached each device exactly once.
    let mut alerts: Vec<String> = seen_a
        .iter()
        .map(|s| format!("{} {}", s.device, s.body["aps"]["alert"]))
        .collect();
    alerts.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("{BOB} \"m{i}\"")).collect();
    expected.sort();
    assert_eq!(expected, alerts);
    let mut fcm_alerts: Vec<String> = seen_f
        .iter()
        .map(|s| s.body["message"]["notification"]["body"].to_string())
        .collect();
    fcm_alerts.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("\"m{i}\"")).collect();
    expected.sort();
    assert_eq!(expected, fcm_alerts);
    assert!(seen_f
        .iter()
        .all(|s| s.body["message"]["token"] == json!(CAROL)));
}

/// The server binary with `args`, on a fresh database in `dir` and a free port, its log kept; its port.
fn binary<S: AsRef<std::ffi::OsStr>>(
    dir: &std::path::Path,
    args: &[S],
) -> (std::process::Command, u16) {
    let port = free_port();
    let mut cmd = server_command(dir.join("db.sqlite3").to_str().expect("path"), port);
    cmd.args(args).stderr(std::process::Stdio::piped());
    (cmd, port)
}

/// The `--apns-*` flags an operator passes for the stand-in `apns`, signing with `key_pem`: the key and the
/// stand-in's CA written to files in `dir`.
fn apns_flags(dir: &std::path::Path, apns: &Apns, key_pem: &str) -> Vec<String> {
    let file = |name: &str, body: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, body).expect("written");
        path.display().to_string()
    };
    let key = file("AuthKey_KEY1234567.p8", key_pem.as_bytes());
    let ca = file("ca.pem", &apns.ca_pem);
    [
        "--apns-key",
        &key,
        "--apns-key-id",
        KEY_ID,
        "--apns-team-id",
        TEAM_ID,
        "--apns-topic",
        TOPIC,
        "--apns-endpoint",
        &apns.url,
        "--apns-ca-file",
        &ca,
    ]
    .map(String::from)
    .to_vec()
}

/// Saves `device` through the push API's installations endpoint of the server at `base`.
async fn save_device(http: &reqwest::Client, base: &str, device: Value) {
    let res = master(http.post(format!("{base}/1.1/installations")))
        .json(&device)
        .send()
        .await
        .expect("saved");
    assert_eq!(StatusCode::CREATED, res.status());
}

/// `req` with the master key of the development app.
fn master(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.header("X-LC-Id", leancloud_server::DEV_APP_ID).header(
        "X-LC-Key",
        format!("{},master", leancloud_server::DEV_MASTER_KEY),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binarys_flags_configure_both_providers() {
    // Arrange: the key, CA and service account as files, as an operator has them.
    let (apns, fcm) = (Apns::start().await, Fcm::start().await);
    let dir = tempfile::tempdir().expect("dir");
    let account = dir.path().join("service-account.json");
    std::fs::write(&account, fcm.service_account()).expect("written");
    let mut args = apns_flags(dir.path(), &apns, &apns.key_pem);
    args.extend([
        "--fcm-service-account".to_string(),
        account.display().to_string(),
        "--fcm-endpoint".to_string(),
        fcm.url.clone(),
    ]);
    let (cmd, port) = binary(dir.path(), &args);
    let (mut child, base) = start(cmd, port);
    wait_ready(&mut child, &base).await;
    let http = reqwest::Client::new();

    // Act: two devices, and a push to both through the push API.
    for device in [
        json!({"deviceType": "ios", "deviceToken": BOB, "channels": ["news"]}),
        json!({"deviceType": "android", "installationId": "p-1", "vendor": "fcm", "registrationId": CAROL, "channels": ["news"]}),
    ] {
        save_device(&http, &base, device).await;
    }
    let res = master(http.post(format!("{base}/1.1/push")))
        .json(&json!({"channels": ["news"], "data": {"alert": "through the flags"}}))
        .send()
        .await
        .expect("pushed");
    assert_eq!(StatusCode::OK, res.status());
    let (a, f) = settled(&apns, 1, &fcm, 1).await;
    drop(child);

    // Assert
    assert_eq!(
        vec![(
            BOB.to_string(),
            TOPIC.to_string(),
            json!({"aps": {"alert": "through the flags"}})
        )],
        apns_view(&a)
    );
    assert_eq!(
        vec![(
            CAROL.to_string(),
            json!({"body": "through the flags"}),
            json!({"alert": "through the flags"})
        )],
        fcm_view(&f)
    );
}

#[tokio::test]
async fn a_key_file_that_is_no_key_stops_the_server_with_the_reason_and_not_the_file() {
    let dir = tempfile::tempdir().expect("dir");
    let secret =
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ1dC1ub3QtYS1rZXk=\n-----END PRIVATE KEY-----\n";
    let key = dir.path().join("AuthKey.p8");
    std::fs::write(&key, secret).expect("written");
    let account = dir.path().join("account.json");
    std::fs::write(&account, r#"{"private_key": "hunter2"}"#).expect("written");
    let key = key.display().to_string();
    let account = account.display().to_string();
    for (args, expected) in [
        (
            vec![
                "--apns-key",
                key.as_str(),
                "--apns-key-id",
                KEY_ID,
                "--apns-team-id",
                TEAM_ID,
            ],
            "push: --apns-key: the key is not a PKCS#8 P-256 (ES256) private key",
        ),
        (
            vec!["--fcm-service-account", account.as_str()],
            "push: --fcm-service-account: not a service-account JSON file",
        ),
        (
            vec![
                "--apns-key",
                "/nonexistent/AuthKey.p8",
                "--apns-key-id",
                KEY_ID,
                "--apns-team-id",
                TEAM_ID,
            ],
            "--apns-key /nonexistent/AuthKey.p8: No such file",
        ),
    ] {
        let out = binary(dir.path(), &args).0.output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(Some(2), out.status.code(), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(
            !stderr.contains("c2VjcmV0") && !stderr.contains("hunter2"),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_credential_fails_the_jobs_and_is_logged_once_without_the_key() {
    // Arrange: the server signs with a key Apple does not know (another run's).
    let (apns, other) = (Apns::start().await, Apns::start().await);
    let dir = tempfile::tempdir().expect("dir");
    let (cmd, port) = binary(dir.path(), &apns_flags(dir.path(), &apns, &other.key_pem));
    let (mut child, base) = start(cmd, port);
    wait_ready(&mut child, &base).await;
    let http = reqwest::Client::new();

    // Act: three pushes to two devices.
    for token in [BOB, ERIN] {
        save_device(
            &http,
            &base,
            json!({"deviceType": "ios", "deviceToken": token, "channels": ["all"]}),
        )
        .await;
    }
    let mut ids = Vec::new();
    for i in 0..3 {
        let res = master(http.post(format!("{base}/1.1/push")))
            .json(&json!({"channels": ["all"], "data": {"alert": format!("{i}")}}))
            .send()
            .await
            .expect("pushed");
        let body: Value = res.json().await.expect("json");
        ids.push(body["objectId"].as_str().expect("id").to_string());
    }
    let until = tokio::time::Instant::now() + WITHIN;
    let mut states = Vec::new();
    while tokio::time::Instant::now() < until {
        let res = master(http.get(format!("{base}/__admin/pushes?limit=10")))
            .send()
            .await
            .expect("jobs");
        let jobs: Value = res.json().await.expect("json");
        states = jobs
            .as_array()
            .expect("jobs")
            .iter()
            .map(|j| (j["state"].clone(), j["error"].clone()))
            .collect();
        if states.len() == 6 && states.iter().all(|(s, _)| s != "pending") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.0.kill();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().expect("piped"), &mut log)
        .expect("the log");

    // Assert: every job failed with Apple's reason, once (not retried); the log says so once, never the key.
    assert_eq!(
        vec![(json!("failed"), json!("APNs 403 InvalidProviderToken")); 6],
        states
    );
    assert_eq!(6, apns.seen().len());
    assert_eq!(
        1,
        log.matches("the provider refused the app's credential")
            .count(),
        "{log}"
    );
    let key_body: String = other
        .key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!log.contains(&key_body[..20]), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_pushes_are_in_flight_than_the_concurrency_allows_and_each_arrives_once() {
    // Arrange: providers answering after 150 ms; 4 deliveries in flight at once; 12 offline members' iPhones.
    let (apns, fcm) = (Apns::start().await, Fcm::start().await);
    apns.set_latency(Duration::from_millis(150));
    let app = spawn_with(|c| {
        pushing(c, &apns, &fcm);
        c.push.concurrency = 4;
    })
    .await;
    let mut members = vec!["alice".to_string()];
    for i in 0..12 {
        let token = format!("{i:02}{}", &BOB[2..]);
        device(
            &app,
            json!({"deviceType": "ios", "deviceToken": token, "channels": [format!("p{i}")]}),
        )
        .await;
        members.push(format!("p{i}"));
    }
    let (_, conv) = app
        .post("/1.2/rtm/conversations", json!({ "m": members }))
        .await;
    let cid = conv["objectId"].as_str().expect("id").to_string();

    // Act
    rest_send(
        &app,
        &cid,
        json!({"from_client": "alice", "message": "hi", "push_data": {"alert": "hi"}}),
    )
    .await;
    let (a, _) = settled(&apns, 12, &fcm, 0).await;

    // Assert: all 12 delivered once, never more than 4 at a time, and 4 at a time indeed.
    let mut devices: Vec<String> = a.iter().map(|s| s.device.clone()).collect();
    devices.sort();
    devices.dedup();
    assert_eq!((12, 12), (a.len(), devices.len()));
    assert_eq!(4, apns.max_in_flight());
}
