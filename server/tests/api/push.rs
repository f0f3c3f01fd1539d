//! The push queue (issue 25, second part): an IM message to offline members queues one job per device their
//! clients are bound to — with the message's `push_data` (or the hook's payload), never for muted members, chat
//! rooms or transient messages — and `POST /1.1/push` keeps a `_Notification` record and queues one job per
//! matching device (`channels`, `where`, `push_time`). Devices of vendors this server does not deliver to are
//! recorded as `unsupported`. Without a configured provider the worker ends each due job saying which flag is missing.

use leancloud_server::realtime::proto::SessionCommand;
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_instances, Key, TestApp};
use crate::installations::login;
use crate::realtime::WAIT;

const TOKEN: &str = "00aa11bb22cc33dd44ee55ff66778899aabbccddeeff00112233445566778899";

pub async fn device(app: &TestApp, body: Value) -> String {
    let (status, saved) = app
        .call(Key::App, Method::POST, "/1.1/installations", Some(body))
        .await;
    assert_eq!(StatusCode::CREATED, status, "{saved}");
    saved["objectId"].as_str().expect("id").to_string()
}

/// The queued jobs of `ref_id`, once `n` of them are there (or after `WAIT`).
async fn jobs(app: &TestApp, ref_id: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, list) = app.get(&format!("/__admin/pushes?ref_id={ref_id}")).await;
        assert_eq!(StatusCode::OK, status, "{list}");
        let list = list.as_array().expect("array").clone();
        if list.len() >= n || tokio::time::Instant::now() > deadline {
            return list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// (installation, platform, target, state) of each job, sorted.
fn summary(jobs: &[Value]) -> Vec<(String, String, String, String)> {
    let mut out: Vec<_> = jobs
        .iter()
        .map(|j| {
            let s = |k: &str| j[k].as_str().unwrap_or_default().to_string();
            (s("installation"), s("platform"), s("target"), s("state"))
        })
        .collect();
    out.sort();
    out
}

/// Logs `peer` in from the device with `session`'s token or id, then drops the connection (offline, bound).
pub async fn bound_offline(app: &TestApp, peer: &str, session: SessionCommand) {
    let ws = login(app, peer, session).await;
    drop(ws);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_offline_members_is_queued_for_their_devices() {
    // Arrange: bob on an iPhone, carol on an Android phone with FCM, dave on one with another vendor, erin
    // muted the conversation; all bound and offline.
    let app = spawn_app().await;
    let ios = device(&app, json!({"deviceType": "ios", "deviceToken": TOKEN})).await;
    let fcm = device(
        &app,
        json!({"deviceType": "android", "installationId": "c-1", "vendor": "fcm", "registrationId": "fcm-c"}),
    )
    .await;
    let hms = device(
        &app,
        json!({"deviceType": "android", "installationId": "d-1", "vendor": "HMS", "registrationId": "hms-d"}),
    )
    .await;
    let muted = device(&app, json!({"deviceType": "ios", "deviceToken": "eeee"})).await;
    let token = |t: &str| SessionCommand {
        device_token: Some(t.into()),
        ..Default::default()
    };
    let android = |id: &str| SessionCommand {
        device_id: Some(id.into()),
        config_bitmap: Some(0x04),
        ..Default::default()
    };
    bound_offline(&app, "bob", token(TOKEN)).await;
    bound_offline(&app, "carol", android("c-1")).await;
    bound_offline(&app, "dave", android("d-1")).await;
    bound_offline(&app, "erin", token("eeee")).await;
    let (_, conv) = app
        .post(
            "/1.2/rtm/conversations",
            json!({"m": ["alice", "bob", "carol", "dave", "erin"], "mu": ["erin"]}),
        )
        .await;
    let cid = conv["objectId"].as_str().expect("id").to_string();

    // Act
    let (status, sent) = app
        .post(
            &format!("/1.2/rtm/conversations/{cid}/messages"),
            json!({"from_client": "alice", "message": "hi", "push_data": {"alert": "alice: hi", "_profile": "dev"}}),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{sent}");
    let mid = sent["msg-id"].as_str().expect("msg-id");

    // Assert: one job per device of the unmuted offline members, with the message's push data; the other
    // vendor recorded as unsupported; the worker ended the deliverable ones saying no provider is configured.
    let found = jobs(&app, mid, 3).await;
    let mut expected = vec![
        (ios.clone(), "ios".into(), TOKEN.into(), "failed".into()),
        (
            fcm.clone(),
            "android".into(),
            "fcm-c".into(),
            "failed".into(),
        ),
        (
            hms.clone(),
            "android/HMS".into(),
            String::new(),
            "unsupported".into(),
        ),
    ];
    expected.sort();
    let settled = {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let now = summary(&jobs(&app, mid, 3).await);
            if now == expected || tokio::time::Instant::now() > deadline {
                break now;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    assert_eq!(expected, settled, "{found:?}");
    let job = jobs(&app, mid, 3)
        .await
        .into_iter()
        .find(|j| j["installation"] == json!(ios))
        .expect("bob's job");
    assert_eq!(
        (
            json!({"alert": "alice: hi", "_profile": "dev"}),
            json!("dev"),
            json!("rtm"),
            json!(1)
        ),
        (
            job["payload"].clone(),
            job["profile"].clone(),
            job["source"].clone(),
            job["attempts"].clone()
        )
    );
    assert!(
        job["error"]
            .as_str()
            .unwrap_or_default()
            .contains("is not configured"),
        "{job}"
    );
    assert!(
        !summary(&found).iter().any(|j| j.0 == muted),
        "muted: no job"
    );

    // Assert: a transient message and a chat room message queue nothing.
    let (_, transient) = app
        .post(
            &format!("/1.2/rtm/conversations/{cid}/messages"),
            json!({"from_client": "alice", "message": "typing", "transient": true}),
        )
        .await;
    let (_, room) = app
        .post("/1.2/rtm/chatrooms", json!({"m": ["alice", "bob"]}))
        .await;
    let (_, in_room) = app
        .post(
            &format!(
                "/1.2/rtm/chatrooms/{}/messages",
                room["objectId"].as_str().expect("id")
            ),
            json!({"from_client": "alice", "message": "room"}),
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for sent in [transient, in_room] {
        let id = sent["msg-id"].as_str().expect("msg-id");
        assert!(jobs(&app, id, 0).await.is_empty(), "{sent}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_api_records_a_notification_and_queues_the_matching_devices() {
    let app = spawn_app().await;
    let a = device(
        &app,
        json!({"deviceType": "ios", "deviceToken": "aa01", "channels": ["sports"]}),
    )
    .await;
    let b = device(
        &app,
        json!({"deviceType": "ios", "deviceToken": "bb02", "channels": ["news"]}),
    )
    .await;
    let _gone = device(
        &app,
        json!({"deviceType": "ios", "deviceToken": "cc03", "channels": ["sports"], "valid": false}),
    )
    .await;

    // Act: to a channel, now.
    let (status, sent) = app
        .post(
            "/1.1/push",
            json!({"channels": ["sports"], "data": {"alert": "goal"}, "prod": "dev"}),
        )
        .await;

    // Assert: the record, and one job (the invalid device left out).
    assert_eq!(StatusCode::OK, status, "{sent}");
    let id = sent["objectId"].as_str().expect("objectId").to_string();
    assert!(crate::helpers::is_iso_millis(&sent["createdAt"]), "{sent}");
    let (status, record) = app.get(&format!("/1.1/tables/Notifications/{id}")).await;
    assert_eq!(StatusCode::OK, status, "{record}");
    assert_eq!(
        (
            json!({"alert": "goal"}),
            json!(1),
            json!("queued"),
            json!("dev")
        ),
        (
            record["data"].clone(),
            record["devices"].clone(),
            record["status"].clone(),
            record["prod"].clone()
        )
    );
    let found = jobs(&app, &id, 1).await;
    assert_eq!(
        vec![a.clone()],
        summary(&found).into_iter().map(|j| j.0).collect::<Vec<_>>()
    );
    assert_eq!(json!("api"), found[0]["source"]);

    // Act + Assert: by `where`, an hour later: queued, still pending (not due).
    let later = leancloud_server::store::time::iso_millis(
        chrono::Utc::now().timestamp_millis() + 3_600_000,
    );
    let (_, sent) = app
        .post(
            "/1.1/push",
            json!({"where": {"deviceToken": "bb02"}, "data": {"alert": "later"}, "push_time": later,
                   "expiration_interval": 86400}),
        )
        .await;
    let id = sent["objectId"].as_str().expect("objectId").to_string();
    let (_, record) = app.get(&format!("/1.1/tables/Notifications/{id}")).await;
    assert_eq!(json!("scheduled"), record["status"]);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let found = jobs(&app, &id, 1).await;
    assert_eq!(
        vec![(
            b,
            "ios".to_string(),
            "bb02".to_string(),
            "pending".to_string()
        )],
        summary(&found)
    );

    // Assert: bad requests, and the app key, are refused.
    for bad in [
        json!({}),
        json!({"data": {}, "channels": "x"}),
        json!({"data": {}, "prod": "x"}),
    ] {
        let (status, body) = app.post("/1.1/push", bad.clone()).await;
        assert_eq!(
            (StatusCode::BAD_REQUEST, json!(1)),
            (status, body["code"].clone()),
            "{bad}"
        );
    }
    let (status, _) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/push",
            Some(json!({"data": {"alert": "x"}})),
        )
        .await;
    assert!(status.is_client_error(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_queue_and_settle_each_job_once() {
    let [a, b] = spawn_instances(|_| {}).await;
    for i in 0..40 {
        device(
            &a,
            json!({"deviceType": "ios", "deviceToken": format!("{i:04x}"), "channels": ["all"]}),
        )
        .await;
    }
    let (_, sent) = b
        .post(
            "/1.1/push",
            json!({"channels": ["all"], "data": {"alert": "x"}}),
        )
        .await;
    let id = sent["objectId"].as_str().expect("objectId").to_string();
    let deadline = tokio::time::Instant::now() + WAIT;
    let found = loop {
        let found = jobs(&a, &id, 40).await;
        if found.iter().all(|j| j["state"] == json!("failed"))
            || tokio::time::Instant::now() > deadline
        {
            break found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(40, found.len());
    let attempts: Vec<i64> = found
        .iter()
        .map(|j| j["attempts"].as_i64().expect("attempts"))
        .collect();
    assert_eq!(vec![1; 40], attempts, "every job claimed once");
}

/// The devices an IM offline push reaches are found through the index of devices by channel: it follows every
/// write of a device (created with channels, its channels changed, deleted), and a device two offline members
/// share is pushed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devices_of_offline_members_follow_every_change_of_their_channels() {
    let app = spawn_app().await;
    let shared = device(
        &app,
        json!({"deviceType": "ios", "deviceToken": "5a5a", "channels": ["kim", "lee"]}),
    )
    .await;
    let (_, conv) = app
        .post(
            "/1.2/rtm/conversations",
            json!({"m": ["alice", "kim", "lee", "max"]}),
        )
        .await;
    let cid = conv["objectId"].as_str().expect("id").to_string();
    let send = |text: &'static str| {
        let app = &app;
        let cid = cid.clone();
        async move {
            let (status, sent) = app
                .post(
                    &format!("/1.2/rtm/conversations/{cid}/messages"),
                    json!({"from_client": "alice", "message": text, "push_data": {"alert": text}}),
                )
                .await;
            assert_eq!(StatusCode::OK, status, "{sent}");
            sent["msg-id"].as_str().expect("msg-id").to_string()
        }
    };
    let targets = |jobs: Vec<Value>| -> Vec<String> {
        let mut t: Vec<String> = jobs
            .iter()
            .map(|j| j["installation"].as_str().unwrap_or_default().to_string())
            .collect();
        t.sort();
        t
    };

    // Act + Assert: kim and lee share one device: one job.
    let first = send("1").await;
    assert_eq!(vec![shared.clone()], targets(jobs(&app, &first, 1).await));

    // Act + Assert: the device moves to max; a second device for kim arrives through a batch.
    let (status, _) = app
        .put(
            &format!("/1.1/installations/{shared}"),
            json!({"channels": ["max"]}),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    let (status, batch) = app
        .post(
            "/1.1/batch",
            json!({"requests": [{"method": "POST", "path": "/1.1/installations",
                "body": {"deviceType": "ios", "deviceToken": "6b6b", "channels": ["kim"]}}]}),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{batch}");
    let kims = batch[0]["success"]["objectId"]
        .as_str()
        .expect("id")
        .to_string();
    let second = send("2").await;
    let mut expected = vec![shared.clone(), kims.clone()];
    expected.sort();
    assert_eq!(expected, targets(jobs(&app, &second, 2).await));

    // Act + Assert: the moved device is deleted: only kim's new one is left.
    let (status, _) = app.delete(&format!("/1.1/installations/{shared}")).await;
    assert_eq!(StatusCode::OK, status);
    let third = send("3").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(vec![kims], targets(jobs(&app, &third, 1).await));
}
