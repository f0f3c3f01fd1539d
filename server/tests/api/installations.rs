//! Devices and their IM clients (issue 25, first part): `POST /1.1/installations` creates or updates a device by
//! `objectId`, `deviceToken` or `installationId` (as the iOS SDKs' batch saves and the Android SDK expect); a
//! realtime login from an iOS device (`deviceToken`) or an Android one (`deviceId` with the bind flag) puts the
//! client id in that device's `channels`; `report/upload` binds a new token; a logout unbinds, a dropped
//! connection does not.

use leancloud_server::realtime::proto::{
    CommandType, GenericCommand, OpType, ReportCommand, SessionCommand,
};
use leancloud_server::DEV_APP_ID;
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Key, TestApp};
use crate::realtime::{connect, Ws};

const TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

async fn save(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.call(Key::App, Method::POST, "/1.1/installations", Some(body))
        .await
}

async fn installation(app: &TestApp, id: &str) -> Value {
    let (status, body) = app.get(&format!("/1.1/installations/{id}")).await;
    assert_eq!(StatusCode::OK, status, "{body}");
    body
}

fn open(peer: &str, session: SessionCommand) -> GenericCommand {
    GenericCommand {
        app_id: Some(DEV_APP_ID.into()),
        peer_id: Some(peer.into()),
        session_message: Some(SessionCommand {
            ua: Some("test".into()),
            ..session
        }),
        ..GenericCommand::new(CommandType::Session, Some(OpType::Open))
    }
}

pub async fn login(app: &TestApp, peer: &str, session: SessionCommand) -> Ws {
    let mut ws = connect(app, "lc.protobuf2.3").await;
    let reply = ws.request(open(peer, session)).await;
    assert_eq!(Some(OpType::Opened), reply.operation(), "{reply:?}");
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_is_saved_once_per_token_or_installation_id() {
    let app = spawn_app().await;

    // Act: an iOS device, then the same token again (another case) with a badge.
    let (status, first) = save(
        &app,
        json!({"deviceType": "ios", "deviceToken": TOKEN, "timeZone": "Asia/Shanghai"}),
    )
    .await;
    let (again_status, again) = save(
        &app,
        json!({"deviceType": "ios", "deviceToken": TOKEN.to_uppercase(), "badge": 3}),
    )
    .await;

    // Assert: one device, updated.
    assert_eq!(StatusCode::CREATED, status, "{first}");
    let id = first["objectId"].as_str().expect("objectId").to_string();
    assert_eq!(StatusCode::OK, again_status, "{again}");
    assert_eq!(json!(id), again["objectId"]);
    let row = installation(&app, &id).await;
    assert_eq!(
        (json!(3), json!("Asia/Shanghai")),
        (row["badge"].clone(), row["timeZone"].clone())
    );

    // Act + Assert: by objectId (what a PUT the iOS SDK rewrote into a POST carries).
    let (status, _) = save(&app, json!({"objectId": id, "badge": 0})).await;
    assert_eq!(StatusCode::OK, status);
    assert_eq!(json!(0), installation(&app, &id).await["badge"]);

    // Act + Assert: an Android device by installationId, through the iOS SDK's batch path too.
    let (status, android) = save(
        &app,
        json!({"deviceType": "android", "installationId": "uuid-1", "vendor": "fcm", "registrationId": "fcm-1"}),
    )
    .await;
    assert_eq!(StatusCode::CREATED, status);
    let (status, batch) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/batch/save",
            Some(json!({"requests": [{"method": "POST", "path": "/1.1/installations",
                "body": {"deviceType": "android", "installationId": "uuid-1", "registrationId": "fcm-2"}}]})),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{batch}");
    assert_eq!(
        android["objectId"], batch[0]["success"]["objectId"],
        "{batch}"
    );
    let (status, all) = app.get("/1.1/installations").await;
    assert_eq!(StatusCode::OK, status);
    assert_eq!(
        2,
        all["results"].as_array().expect("results").len(),
        "{all}"
    );
    assert_eq!(
        json!("fcm-2"),
        installation(&app, android["objectId"].as_str().expect("id")).await["registrationId"]
    );

    // Assert: the device list is the backend's (master key).
    let (status, _) = app
        .call(Key::App, Method::GET, "/1.1/installations", None)
        .await;
    assert!(status.is_client_error(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_binds_the_client_to_its_device_until_it_logs_out() {
    // Arrange: an iOS device and two Android devices.
    let app = spawn_app().await;
    let (_, ios) = save(&app, json!({"deviceType": "ios", "deviceToken": TOKEN})).await;
    let ios = ios["objectId"].as_str().expect("id").to_string();
    let (_, android) = save(
        &app,
        json!({"deviceType": "android", "installationId": "uuid-a"}),
    )
    .await;
    let android = android["objectId"].as_str().expect("id").to_string();
    let (_, web) = save(
        &app,
        json!({"deviceType": "android", "installationId": "uuid-w"}),
    )
    .await;
    let web = web["objectId"].as_str().expect("id").to_string();

    // Act: an iOS-like login, an Android-like one (bind flag), a web-like one (a device id, no flag).
    let mut tom = login(
        &app,
        "tom",
        SessionCommand {
            device_token: Some(TOKEN.into()),
            config_bitmap: Some(0xAB),
            ..Default::default()
        },
    )
    .await;
    let ann = login(
        &app,
        "ann",
        SessionCommand {
            device_id: Some("uuid-a".into()),
            config_bitmap: Some(0xAF),
            ..Default::default()
        },
    )
    .await;
    let _web = login(
        &app,
        "wendy",
        SessionCommand {
            device_id: Some("uuid-w".into()),
            config_bitmap: Some(0xAB),
            ..Default::default()
        },
    )
    .await;

    // Assert: the bound client ids are in the devices' channels.
    assert_eq!(json!(["tom"]), installation(&app, &ios).await["channels"]);
    assert_eq!(
        json!(["ann"]),
        installation(&app, &android).await["channels"]
    );
    assert_eq!(Value::Null, installation(&app, &web).await["channels"]);

    // Act: ann's connection drops; tom reports a new token, then logs out.
    drop(ann);
    let (_, new_ios) = save(&app, json!({"deviceType": "ios", "deviceToken": "ffee"})).await;
    let new_ios = new_ios["objectId"].as_str().expect("id").to_string();
    let reply = tom
        .request(GenericCommand {
            report_message: Some(ReportCommand {
                initiative: Some(true),
                r#type: Some("token".into()),
                data: Some("FFEE".into()),
            }),
            ..GenericCommand::new(CommandType::Report, Some(OpType::Upload))
        })
        .await;
    assert_eq!(
        (Some(CommandType::Report), Some(OpType::Uploaded)),
        (reply.command(), reply.operation())
    );
    assert_eq!(
        json!(["tom"]),
        installation(&app, &new_ios).await["channels"]
    );
    assert_eq!(json!([]), installation(&app, &ios).await["channels"]);
    let reply = tom
        .request(GenericCommand::new(
            CommandType::Session,
            Some(OpType::Close),
        ))
        .await;
    assert_eq!(Some(OpType::Closed), reply.operation());

    // Assert: the dropped connection kept its binding; the logout took tom off the device he was on.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        json!(["ann"]),
        installation(&app, &android).await["channels"]
    );
    assert_eq!(json!([]), installation(&app, &new_ios).await["channels"]);
}
