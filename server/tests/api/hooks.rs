//! Realtime hooks: a hook endpoint written here (a small HTTP server recording every call and answering per
//! test) stands in for the app's re-hosted Cloud Engine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use leancloud_server::realtime::proto::{
    CommandType, ConvCommand, GenericCommand, JsonObjectMessage, OpType,
};
use leancloud_server::ServerConfig;
use serde_json::{json, Value};

use crate::helpers::{spawn_with, TestApp};
use crate::realtime::{connect, direct, Ws, WAIT};

/// How the fake engine answers one hook.
#[derive(Clone)]
pub enum Answer {
    Result(Value),
    Hang,
}

/// One recorded call: the hook, its parameters, the `X-LC-Hook-Key` it came with.
type Call = (String, Value, Option<String>);

#[derive(Clone, Default)]
pub struct Engine {
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    calls: Arc<Mutex<Vec<Call>>>,
    defined: Arc<Vec<String>>,
    discovered: Arc<std::sync::atomic::AtomicBool>,
}

impl Engine {
    fn calls(&self, hook: &str) -> Vec<Value> {
        self.calls
            .lock()
            .expect("lock")
            .iter()
            .filter(|(h, _, _)| h == hook)
            .map(|(_, p, _)| p.clone())
            .collect()
    }

    /// Waits (bounded) until `hook` was called `n` times.
    pub async fn wait_for(&self, hook: &str, n: usize) -> Vec<Value> {
        let until = Instant::now() + WAIT;
        loop {
            let calls = self.calls(hook);
            if calls.len() >= n || Instant::now() > until {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn function(
    State(engine): State<Engine>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(params): Json<Value>,
) -> Json<Value> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    // What leanengine checks first: the app, authenticated (here with the master key); only then the hook key.
    let app_ok = header("x-lc-id").as_deref() == Some(leancloud_server::DEV_APP_ID)
        && header("x-lc-key") == Some(format!("{},master", leancloud_server::DEV_MASTER_KEY));
    let key = header("x-lc-hook-key").filter(|_| app_ok);
    engine
        .calls
        .lock()
        .expect("lock")
        .push((name.clone(), params, key));
    let answer = engine.answers.lock().expect("lock").get(&name).cloned();
    match answer {
        Some(Answer::Result(v)) => Json(json!({"result": v})),
        Some(Answer::Hang) => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Json(json!({"result": {}}))
        }
        None => Json(json!({"result": {}})),
    }
}

async fn metadatas(State(engine): State<Engine>) -> Json<Value> {
    engine
        .discovered
        .store(true, std::sync::atomic::Ordering::SeqCst);
    Json(json!({"result": *engine.defined}))
}

const ALL_HOOKS: [&str; 13] = [
    "_messageReceived",
    "_messageSent",
    "_messageUpdate",
    "_receiversOffline",
    "_conversationStart",
    "_conversationStarted",
    "_conversationAdd",
    "_conversationAdded",
    "_conversationRemove",
    "_conversationRemoved",
    "_conversationUpdate",
    "_clientOnline",
    "_clientOffline",
];

/// A fake engine answering `answers`, defining `defined` hooks, and a server calling it.
pub async fn with_engine(
    defined: &[&str],
    answers: &[(&str, Answer)],
    configure: impl FnOnce(&mut ServerConfig),
) -> (TestApp, Engine) {
    let engine = Engine {
        answers: Arc::new(Mutex::new(
            answers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )),
        calls: Arc::default(),
        defined: Arc::new(defined.iter().map(|s| s.to_string()).collect()),
        discovered: Arc::default(),
    };
    let router = Router::new()
        .route("/1.1/functions/_ops/metadatas", get(metadatas))
        .route("/1.1/functions/{name}", post(function))
        .with_state(engine.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let app = spawn_with(|c| {
        c.hooks.url = Some(url);
        c.hooks.hook_key = Some("the-hook-key".into());
        configure(c);
    })
    .await;
    // Discovery runs at start; wait until it has happened (and a moment for its answer to be applied).
    let until = Instant::now() + WAIT;
    while !engine.discovered.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    (app, engine)
}

async fn two_members(app: &TestApp) -> (String, Ws, Ws) {
    let conv = app.conversation(json!({"m": ["A", "B"], "c": "A"})).await;
    let mut a = connect(app, "lc.protobuf2.3").await;
    a.login("A").await;
    let mut b = connect(app, "lc.protobuf2.3").await;
    b.login("B").await;
    (conv, a, b)
}

#[tokio::test]
async fn message_received_can_drop_a_message_and_the_senders_ack_carries_the_apps_code() {
    let answer = Answer::Result(json!({"drop": true, "code": 42, "detail": "no swearing"}));
    let (app, engine) = with_engine(&ALL_HOOKS, &[("_messageReceived", answer)], |_| {}).await;
    let (conv, mut a, mut b) = two_members(&app).await;
    let ack = a
        .request(direct(&conv, "a bad word"))
        .await
        .ack_message
        .expect("ack");
    assert_eq!(
        (Some(4402), Some(42), Some("no swearing")),
        (ack.code, ack.app_code, ack.app_msg.as_deref())
    );
    assert_eq!(
        Vec::<String>::new(),
        b.drain_texts().await,
        "nobody receives a dropped message"
    );
    assert!(
        app.server.inspect().messages(&conv).is_empty(),
        "nor is it kept"
    );
    let call = &engine.calls("_messageReceived")[0];
    assert_eq!(
        (json!("A"), json!(conv), json!(["B"]), json!("a bad word")),
        (
            call["fromPeer"].clone(),
            call["convId"].clone(),
            call["toPeers"].clone(),
            call["content"].clone()
        )
    );
    let key = engine
        .calls
        .lock()
        .expect("lock")
        .iter()
        .find(|(h, _, _)| h == "_messageReceived")
        .and_then(|c| c.2.clone());
    assert_eq!(Some("the-hook-key".to_string()), key);
}

#[tokio::test]
async fn message_received_can_rewrite_the_content_and_narrow_the_recipients() {
    let answer = Answer::Result(json!({"content": "*** (filtered)", "toPeers": ["B"]}));
    let (app, _engine) = with_engine(&ALL_HOOKS, &[("_messageReceived", answer)], |_| {}).await;
    let conv = app
        .conversation(json!({"m": ["A", "B", "C"], "c": "A"}))
        .await;
    let mut peers = Vec::new();
    for p in ["A", "B", "C"] {
        let mut ws = connect(&app, "lc.protobuf2.3").await;
        ws.login(p).await;
        peers.push(ws);
    }
    let ack = peers[0]
        .request(direct(&conv, "a bad word"))
        .await
        .ack_message
        .expect("ack");
    assert_eq!(None, ack.code);
    assert_eq!(vec!["*** (filtered)"], peers[1].drain_texts().await);
    assert_eq!(
        Vec::<String>::new(),
        peers[2].drain_texts().await,
        "C was taken off the recipients"
    );
    assert_eq!(
        "*** (filtered)",
        app.server.inspect().messages(&conv)[0].data,
        "history holds the new text"
    );
}

#[tokio::test]
async fn receivers_offline_decides_the_push_and_message_sent_gets_the_id_after_delivery() {
    let answer = Answer::Result(json!({"pushMessage": "{\"alert\":\"You have a note from A\"}"}));
    let (app, engine) = with_engine(&ALL_HOOKS, &[("_receiversOffline", answer)], |_| {}).await;
    let conv = app
        .conversation(json!({"m": ["A", "B", "Off"], "c": "A"}))
        .await;
    let mut a = connect(&app, "lc.protobuf2.3").await;
    a.login("A").await;
    let mut b = connect(&app, "lc.protobuf2.3").await;
    b.login("B").await;
    let ack = a
        .request(direct(&conv, "hello"))
        .await
        .ack_message
        .expect("ack");
    assert_eq!(vec!["hello"], b.drain_texts().await);
    let sent = engine.wait_for("_messageSent", 1).await;
    assert_eq!(ack.uid.as_deref(), sent[0]["msgId"].as_str());
    assert_eq!(
        (json!(["B"]), json!(["Off"])),
        (
            sent[0]["onlinePeers"].clone(),
            sent[0]["offlinePeers"].clone()
        )
    );
    let offline = engine.wait_for("_receiversOffline", 1).await;
    assert_eq!(json!(["Off"]), offline[0]["offlinePeers"]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pushes = app.server.inspect().offline_pushes();
    assert_eq!(1, pushes.len());
    assert_eq!(
        (
            vec!["Off".to_string()],
            json!({"alert": "You have a note from A"})
        ),
        (pushes[0].peers.clone(), pushes[0].payload.clone())
    );
}

#[tokio::test]
async fn conversation_start_can_refuse_a_creation_over_websocket_and_over_rest() {
    let answer = Answer::Result(json!({"reject": true, "code": 7, "detail": "groups are closed"}));
    let (app, engine) = with_engine(&ALL_HOOKS, &[("_conversationStart", answer)], |_| {}).await;
    let mut a = connect(&app, "lc.protobuf2.3").await;
    a.login("A").await;
    let start = a
        .request(GenericCommand {
            conv_message: Some(ConvCommand {
                m: vec!["B".into()],
                attr: Some(JsonObjectMessage {
                    data: "{\"name\":\"x\"}".into(),
                }),
                ..Default::default()
            }),
            ..GenericCommand::new(CommandType::Conv, Some(OpType::Start))
        })
        .await;
    let err = start.error_message.expect("error");
    assert_eq!(
        (4305, Some(7), Some("groups are closed")),
        (err.code, err.app_code, err.detail.as_deref())
    );
    let call = &engine.calls("_conversationStart")[0];
    assert_eq!(
        (json!("A"), json!(["A", "B"]), json!({"name": "x"})),
        (
            call["initBy"].clone(),
            call["members"].clone(),
            call["attr"].clone()
        )
    );
    let (status, body) = app
        .post(
            "/1.1/classes/_Conversation",
            json!({"name": "via rest", "m": ["A"]}),
        )
        .await;
    assert_eq!((400, json!(4305)), (status.as_u16(), body["code"].clone()));
    let (_, found) = app.get("/1.1/classes/_Conversation").await;
    assert_eq!(json!([]), found["results"], "nothing was created");
}

#[tokio::test]
async fn add_and_remove_hooks_guard_invites_and_kicks_but_not_leaving() {
    let answer = Answer::Result(json!({"reject": true, "code": 9}));
    let (app, engine) = with_engine(&ALL_HOOKS, &[("_conversationAdd", answer)], |_| {}).await;
    let (conv, mut a, _b) = two_members(&app).await;
    let members = |op, m: &str| GenericCommand {
        conv_message: Some(ConvCommand {
            cid: Some(conv.clone()),
            m: vec![m.into()],
            ..Default::default()
        }),
        ..GenericCommand::new(CommandType::Conv, Some(op))
    };
    let refused = a.request(members(OpType::Add, "Z")).await;
    assert_eq!(Some(9), refused.error_message.expect("error").app_code);
    let kicked = a.request(members(OpType::Remove, "B")).await;
    assert_eq!(Some(OpType::Removed), kicked.operation());
    let left = a.request(members(OpType::Remove, "A")).await;
    assert_eq!(Some(OpType::Removed), left.operation());
    assert_eq!(
        1,
        engine.calls("_conversationRemove").len(),
        "leaving calls no _conversationRemove"
    );
    assert_eq!(
        json!(["B"]),
        engine.calls("_conversationRemove")[0]["members"]
    );
    // Over REST, what add-member does:
    let (status, _) = app
        .put(
            &format!("/1.1/classes/_Conversation/{conv}"),
            json!({"m": {"__op": "AddUnique", "objects": ["Q"]}}),
        )
        .await;
    assert_eq!(400, status.as_u16());
    assert_eq!(
        json!([]),
        app.server.inspect().conversation(&conv).expect("conv")["m"],
        "both left; Q was refused"
    );
}

#[tokio::test]
async fn client_online_and_offline_report_logins_logouts_drops_and_kicks_with_close_codes() {
    let (app, engine) = with_engine(&ALL_HOOKS, &[], |_| {}).await;
    let mut a = connect(&app, "lc.protobuf2.3").await;
    a.login("A").await;
    a.request(GenericCommand::new(
        CommandType::Session,
        Some(OpType::Close),
    ))
    .await;
    let mut b = connect(&app, "lc.protobuf2.3").await;
    b.login("B").await;
    drop(b);
    let mut c = connect(&app, "lc.protobuf2.3").await;
    c.login("C").await;
    let (status, _) = app
        .post("/1.2/rtm/clients/C/kick", json!({"reason": "bye"}))
        .await;
    assert_eq!(200, status.as_u16());
    let online = engine.wait_for("_clientOnline", 3).await;
    assert_eq!(
        vec![json!("A"), json!("B"), json!("C")],
        online
            .iter()
            .map(|c| c["peerId"].clone())
            .collect::<Vec<_>>()
    );
    let offline = engine.wait_for("_clientOffline", 3).await;
    let mut codes: Vec<(Value, Value)> = offline
        .iter()
        .map(|c| (c["peerId"].clone(), c["closeCode"].clone()))
        .collect();
    codes.sort_by_key(|(p, _)| p.to_string());
    assert_eq!(
        vec![
            (json!("A"), json!(1)),
            (json!("B"), json!(2)),
            (json!("C"), json!(4))
        ],
        codes
    );
}

#[tokio::test]
async fn only_the_hooks_the_app_defines_are_called() {
    let (app, engine) = with_engine(&["_messageSent"], &[], |_| {}).await;
    let (conv, mut a, _b) = two_members(&app).await;
    a.request(direct(&conv, "hi")).await;
    engine.wait_for("_messageSent", 1).await;
    let called: Vec<String> = engine
        .calls
        .lock()
        .expect("lock")
        .iter()
        .map(|(h, _, _)| h.clone())
        .collect();
    assert_eq!(vec!["_messageSent".to_string()], called);
}

#[tokio::test]
async fn a_hanging_hook_fails_open_within_the_timeout_and_others_stay_served() {
    let (app, _engine) = with_engine(&ALL_HOOKS, &[("_messageReceived", Answer::Hang)], |c| {
        c.hooks.timeout = Duration::from_millis(300);
    })
    .await;
    let (conv, mut a, mut b) = two_members(&app).await;
    let started = Instant::now();
    let send = a.request(direct(&conv, "still arrives"));
    let mut c = connect(&app, "lc.protobuf2.3").await;
    let (ack, _) = tokio::join!(send, async {
        c.login("C").await;
        let echo = c
            .request(GenericCommand::new(CommandType::Echo, None))
            .await;
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "another client is answered meanwhile"
        );
        echo
    });
    assert_eq!(None, ack.ack_message.expect("ack").code);
    assert!(
        started.elapsed() < Duration::from_millis(300 + 700),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(vec!["still arrives"], b.drain_texts().await);
}

#[tokio::test]
async fn a_hanging_hook_refuses_the_message_when_hooks_fail_closed() {
    let (app, _engine) = with_engine(&ALL_HOOKS, &[("_messageReceived", Answer::Hang)], |c| {
        c.hooks.timeout = Duration::from_millis(300);
        c.hooks.fail_closed = true;
    })
    .await;
    let (conv, mut a, mut b) = two_members(&app).await;
    let ack = a
        .request(direct(&conv, "refused"))
        .await
        .ack_message
        .expect("ack");
    assert_eq!(Some(4402), ack.code);
    assert_eq!(Vec::<String>::new(), b.drain_texts().await);
}

#[tokio::test]
async fn a_slow_after_hook_never_slows_sends_and_what_its_queue_cannot_hold_is_dropped_and_counted()
{
    let (app, _engine) = with_engine(&ALL_HOOKS, &[("_messageSent", Answer::Hang)], |c| {
        c.hooks.queue_len = 2;
        c.hooks.timeout = Duration::from_secs(20);
    })
    .await;
    let (conv, mut a, mut b) = two_members(&app).await;
    let started = Instant::now();
    for i in 0..30 {
        let ack = a
            .request(direct(&conv, &format!("m{i}")))
            .await
            .ack_message
            .expect("ack");
        assert_eq!(None, ack.code);
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(30, b.drain_texts().await.len());
    let (_, _, dropped) = app.server.inspect().hook_counts();
    // At most 8 calls in flight, 1 taken by the worker waiting for a slot and 2 queued: the rest were dropped.
    assert!(dropped >= 30 - 11, "dropped {dropped}");
}

fn mute_of(cid: &str, mute: bool) -> GenericCommand {
    GenericCommand {
        conv_message: Some(ConvCommand {
            cid: Some(cid.into()),
            ..Default::default()
        }),
        ..GenericCommand::new(
            CommandType::Conv,
            Some(if mute { OpType::Mute } else { OpType::Unmute }),
        )
    }
}

#[tokio::test]
async fn conv_mute_asks_conversation_update_with_mute_which_may_refuse_it() {
    // Arrange: the engine accepts unmutes and refuses mutes.
    let (app, engine) = with_engine(&ALL_HOOKS, &[], |_| {}).await;
    let (conv, mut a, _b) = two_members(&app).await;

    // Act + assert: accepted, the hook is told who, where, and `mute: true`.
    let muted = a.request(mute_of(&conv, true)).await;
    assert_eq!(Some(OpType::Updated), muted.operation(), "{muted:?}");
    let calls = engine.wait_for("_conversationUpdate", 1).await;
    assert_eq!(
        vec![json!({"initBy": "A", "convId": &conv, "mute": true})],
        calls
    );
    let (_, row) = app.get(&format!("/1.1/classes/_Conversation/{conv}")).await;
    assert_eq!(json!(["A"]), row["mu"]);

    // Act + assert: now refused; `mu` stays as it was.
    engine.answers.lock().expect("lock").insert(
        "_conversationUpdate".into(),
        Answer::Result(json!({"reject": true, "code": 11, "detail": "stay loud"})),
    );
    let refused = a.request(mute_of(&conv, false)).await;
    let err = refused.error_message.expect("error");
    assert_eq!(
        (4305, Some(11), Some("stay loud")),
        (err.code, err.app_code, err.detail.as_deref())
    );
    assert_eq!(
        json!({"initBy": "A", "convId": &conv, "mute": false}),
        engine.wait_for("_conversationUpdate", 2).await[1]
    );
    let (_, row) = app.get(&format!("/1.1/classes/_Conversation/{conv}")).await;
    assert_eq!(json!(["A"]), row["mu"]);
}

/// Members who muted a conversation (`mu`) get no offline push, unless `_receiversOffline` answers `force`.
#[tokio::test]
async fn muted_members_get_no_offline_push_unless_the_hook_forces_one() {
    async fn pushed_to(app: &TestApp) -> Vec<String> {
        let conv = app
            .conversation(json!({"m": ["A", "Off", "Muted"], "mu": ["Muted"], "c": "A"}))
            .await;
        let mut a = connect(app, "lc.protobuf2.3").await;
        a.login("A").await;
        let ack = a
            .request(direct(&conv, "hello"))
            .await
            .ack_message
            .expect("ack");
        assert_eq!(None, ack.code);
        for _ in 0..50 {
            let pushes = app.server.inspect().offline_pushes();
            if let Some(push) = pushes.first() {
                return push.peers.clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no offline push was recorded");
    }
    // Without hooks: the muted member is left out.
    let plain = crate::helpers::spawn_app().await;
    assert_eq!(vec!["Off".to_string()], pushed_to(&plain).await);
    // The hook forces the push: every offline member, muted ones included.
    let answer = Answer::Result(json!({"force": true}));
    let (app, engine) = with_engine(&ALL_HOOKS, &[("_receiversOffline", answer)], |_| {}).await;
    assert_eq!(
        vec!["Off".to_string(), "Muted".to_string()],
        pushed_to(&app).await
    );
    let asked = engine.wait_for("_receiversOffline", 1).await;
    assert_eq!(json!(["Off", "Muted"]), asked[0]["offlinePeers"]);
}

/// `_messageUpdate` is asked before a client's edit or recall: it may rewrite an edit's content or refuse
/// the patch (`4405 MESSAGE_UPDATE_REJECTED_BY_APP` with the app's code).
#[tokio::test]
async fn message_update_rewrites_an_edit_and_can_refuse_a_recall() {
    use leancloud_server::realtime::proto::{PatchCommand, PatchItem};
    let patch = |cid: &str, mid: &str, data: Option<&str>, recall: bool| GenericCommand {
        patch_message: Some(PatchCommand {
            patches: vec![PatchItem {
                cid: Some(cid.into()),
                mid: Some(mid.into()),
                data: data.map(str::to_owned),
                recall: recall.then_some(true),
                ..Default::default()
            }],
            last_patch_time: None,
        }),
        ..GenericCommand::new(CommandType::Patch, Some(OpType::Modify))
    };
    let answer = Answer::Result(json!({"content": "[edited by the app]"}));
    let (app, engine) =
        with_engine(&["_messageUpdate"], &[("_messageUpdate", answer)], |_| {}).await;
    let conv = app.conversation(json!({"m": ["A", "B"], "c": "A"})).await;
    let mut a = connect(&app, "lc.protobuf2.3").await;
    a.login("A").await;
    let mut b = connect(&app, "lc.protobuf2.3").await;
    b.login("B").await;
    let mid = a
        .request(direct(&conv, "hi"))
        .await
        .ack_message
        .and_then(|ack| ack.uid)
        .expect("uid");
    assert_eq!(vec!["hi"], b.drain_texts().await);

    // An edit: the hook is asked and its content is what is stored and pushed.
    let edited = a.request(patch(&conv, &mid, Some("hello"), false)).await;
    assert_eq!(Some(OpType::Modified), edited.operation(), "{edited:?}");
    let asked = engine.wait_for("_messageUpdate", 1).await;
    assert_eq!(
        (
            json!("A"),
            json!(conv.clone()),
            json!(["B"]),
            json!("hello"),
            json!(false),
            json!(mid.clone())
        ),
        (
            asked[0]["fromPeer"].clone(),
            asked[0]["convId"].clone(),
            asked[0]["toPeers"].clone(),
            asked[0]["content"].clone(),
            asked[0]["recall"].clone(),
            asked[0]["msgId"].clone()
        )
    );
    assert_eq!(
        "[edited by the app]",
        app.server.inspect().messages(&conv)[0].data
    );

    // A recall the app refuses.
    engine.answers.lock().expect("lock").insert(
        "_messageUpdate".into(),
        Answer::Result(json!({"drop": true, "code": 9, "detail": "recalls are reviewed"})),
    );
    let refused = a.request(patch(&conv, &mid, None, true)).await;
    let error = refused.error_message.expect("error");
    assert_eq!(
        (
            4405,
            "MESSAGE_UPDATE_REJECTED_BY_APP",
            Some(9),
            Some("recalls are reviewed")
        ),
        (
            error.code,
            error.reason.as_str(),
            error.app_code,
            error.app_msg.as_deref()
        )
    );
    assert_eq!(2, engine.calls("_messageUpdate").len());
    assert_eq!(
        "[edited by the app]",
        app.server.inspect().messages(&conv)[0].data,
        "not recalled"
    );
}

/// Review part 3, R6: `_messageReceived` was called for every client `direct`, also from clients outside the
/// conversation and for conversations that do not exist; only the store refused them afterwards.
#[tokio::test]
async fn r6_message_received_is_not_asked_about_a_message_from_outside_the_conversation() {
    let (app, engine) = with_engine(&ALL_HOOKS, &[], |_| {}).await;
    let (conv, _a, _b) = two_members(&app).await;
    let mut outsider = connect(&app, "lc.protobuf2.3").await;
    outsider.login("Outsider").await;
    for cid in [conv.as_str(), "000000000000000000000000", conv.as_str()] {
        let ack = outsider
            .request(direct(cid, "let me in"))
            .await
            .ack_message
            .expect("ack");
        assert_eq!(Some(4401), ack.code, "{ack:?}");
    }
    assert_eq!(0, engine.calls("_messageReceived").len());
    // A member's message is still asked about.
    let mut a = connect(&app, "lc.protobuf2.3").await;
    a.login("A").await;
    let ack = a
        .request(direct(&conv, "hi"))
        .await
        .ack_message
        .expect("ack");
    assert_eq!(None, ack.code);
    assert_eq!(1, engine.wait_for("_messageReceived", 1).await.len());
}

/// Review part 3, R6b: while other clients kept the hook slots busy, a message waited out the timeout for a
/// slot and was then stored and delivered unmoderated (a wait for a slot counted as the app's failure, which
/// fails open). Now no slot in time is local overload: the message is refused, retryable, and not stored.
#[tokio::test]
async fn r6_a_message_that_gets_no_hook_slot_in_time_is_refused_not_waved_through() {
    let (app, engine) = with_engine(&ALL_HOOKS, &[("_messageReceived", Answer::Hang)], |c| {
        c.hooks.timeout = Duration::from_millis(400);
        c.hooks.concurrency = 1;
    })
    .await;
    let conv = app
        .conversation(json!({"m": ["A", "C", "D", "B"], "c": "A"}))
        .await;
    let mut b = connect(&app, "lc.protobuf2.3").await;
    b.login("B").await;
    let mut senders = Vec::new();
    for peer in ["A", "C", "D"] {
        let mut ws = connect(&app, "lc.protobuf2.3").await;
        ws.login(peer).await;
        senders.push(ws);
    }
    let [mut a, mut c, mut d] = <[Ws; 3]>::try_from(senders).ok().expect("three");
    // A holds the one slot for the call's timeout; C waits for it and holds it in turn; D waits longer than its
    // timeout allows.
    let first = a.request(direct(&conv, "first"));
    let second = async {
        tokio::time::sleep(Duration::from_millis(60)).await;
        c.request(direct(&conv, "second")).await
    };
    let third = async {
        tokio::time::sleep(Duration::from_millis(120)).await;
        d.request(direct(&conv, "third")).await
    };
    let (first, second, third) = tokio::join!(first, second, third);
    let code = |r: GenericCommand| r.ack_message.expect("ack").code;
    // The engine itself hung: the documented fail-open lets those two through.
    assert_eq!((None, None), (code(first), code(second)));
    let third = third.ack_message.expect("ack");
    assert_eq!(
        (Some(503), Some("SERVER_OVERLOADED")),
        (third.code, third.reason.as_deref())
    );
    let mut texts = b.drain_texts().await;
    texts.sort();
    assert_eq!(vec!["first", "second"], texts);
    assert_eq!(2, engine.calls("_messageReceived").len());
    assert_eq!(1, app.server.inspect().hook_busy());
}
