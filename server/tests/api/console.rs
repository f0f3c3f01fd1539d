//! The web console's JSON API (`/console/api/…`) and its pages' headers: sign-in with the master key, the
//! session cookie, CSRF on writes, paging, filters and search, sends through the one send path and the live
//! stream, the broadcast quota, the operations view, and stored HTML returned as plain data.

use std::time::Duration;

use leancloud_server::{RateLimits, DEV_MASTER_KEY};
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_with, urlencode, TestApp};
use crate::realtime::{connect, direct};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

/// A signed-in console: the session cookie and the CSRF token, as the page holds them.
pub(crate) struct Console<'a> {
    app: &'a TestApp,
    cookie: String,
    csrf: String,
}

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path));
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    if let Some(csrf) = csrf {
        req = req.header("X-CSRF-Token", csrf);
    }
    if let Some(body) = body {
        req = req
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
    }
    req.send().await.expect("request sent")
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON expected, got {text:?}"));
    (status, value)
}

/// The `name=value` part of the session cookie a sign-in set.
fn session_cookie(response: &reqwest::Response) -> Option<(String, String)> {
    let set = response
        .headers()
        .get(header::SET_COOKIE)?
        .to_str()
        .ok()?
        .to_string();
    let pair = set.split(';').next()?.trim().to_string();
    Some((pair, set))
}

pub(crate) async fn sign_in(app: &TestApp) -> Console<'_> {
    let response = raw(
        app,
        Method::POST,
        "/console/api/session",
        None,
        None,
        Some(json!({"masterKey": DEV_MASTER_KEY})),
    )
    .await;
    assert_eq!(StatusCode::OK, response.status());
    let (cookie, _) = session_cookie(&response).expect("a session cookie");
    let (_, body) = json_of(response).await;
    let csrf = body["csrfToken"].as_str().expect("csrfToken").to_string();
    Console { app, cookie, csrf }
}

impl Console<'_> {
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        json_of(
            raw(
                self.app,
                Method::GET,
                &format!("/console/api{path}"),
                Some(&self.cookie),
                None,
                None,
            )
            .await,
        )
        .await
    }

    pub(crate) async fn write(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        json_of(
            raw(
                self.app,
                method,
                &format!("/console/api{path}"),
                Some(&self.cookie),
                Some(&self.csrf),
                body,
            )
            .await,
        )
        .await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.write(Method::POST, path, Some(body)).await
    }
}

#[tokio::test]
async fn console_api_calls_without_a_session_are_refused_with_401() {
    // Arrange
    let app = spawn_app().await;
    // Act + Assert
    for (path, cookie) in [
        ("/console/api/session", None),
        ("/console/api/conversations", None),
        ("/console/api/operations", None),
        ("/console/api/live", None),
        (
            "/console/api/conversations",
            Some("lc_console=not-a-session"),
        ),
    ] {
        let (status, body) = json_of(raw(&app, Method::GET, path, cookie, None, None).await).await;
        assert_eq!(StatusCode::UNAUTHORIZED, status, "{path} with {cookie:?}");
        assert_eq!(json!(401), body["code"], "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap_or("").contains("sign in"),
            "{body}"
        );
    }
    // The master key itself is no way in: only the session cookie is.
    let response = app
        .client
        .get(app.url("/console/api/conversations"))
        .header("X-LC-Id", leancloud_server::DEV_APP_ID)
        .header("X-LC-Key", format!("{DEV_MASTER_KEY},master"))
        .send()
        .await
        .expect("sent");
    assert_eq!(StatusCode::UNAUTHORIZED, response.status());
}

#[tokio::test]
async fn signing_in_with_a_wrong_key_is_refused_with_a_clear_message_and_no_cookie() {
    // Arrange
    let app = spawn_app().await;
    for key in [json!("dev-master-keyX"), json!(""), json!("dev-app-key")] {
        // Act
        let response = raw(
            &app,
            Method::POST,
            "/console/api/session",
            None,
            None,
            Some(json!({ "masterKey": key })),
        )
        .await;
        // Assert
        assert!(
            response.headers().get(header::SET_COOKIE).is_none(),
            "no cookie for {key}"
        );
        let (status, body) = json_of(response).await;
        assert_eq!(StatusCode::UNAUTHORIZED, status, "{key}");
        assert_eq!(json!({"code": 401, "error": "Wrong master key."}), body);
    }
}

#[tokio::test]
async fn signing_in_sets_an_http_only_strict_cookie_and_signing_out_invalidates_it() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let response = raw(
        &app,
        Method::POST,
        "/console/api/session",
        None,
        None,
        Some(json!({"masterKey": DEV_MASTER_KEY})),
    )
    .await;
    let (pair, set_cookie) = session_cookie(&response).expect("cookie");
    // Assert: the cookie's attributes, and a token that is not the key.
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="] {
        assert!(set_cookie.contains(attr), "{attr} in {set_cookie}");
    }
    assert!(pair.starts_with("lc_console=") && pair.len() > "lc_console=".len() + 40);
    assert!(!set_cookie.contains(DEV_MASTER_KEY));
    let console = sign_in(&app).await;
    let (status, session) = console.get("/session").await;
    assert_eq!(StatusCode::OK, status);
    assert_eq!(json!(true), session["signedIn"]);
    assert_eq!(json!(console.csrf), session["csrfToken"]);
    assert_eq!(json!(leancloud_server::DEV_APP_ID), session["appId"]);

    // Act: sign out.
    let (status, _) = console.write(Method::DELETE, "/session", None).await;
    // Assert: the old cookie no longer works; the other session still does.
    assert_eq!(StatusCode::OK, status);
    let (status, _) = console.get("/conversations").await;
    assert_eq!(StatusCode::UNAUTHORIZED, status, "signed out");
    let other = raw(
        &app,
        Method::GET,
        "/console/api/session",
        Some(&pair),
        None,
        None,
    )
    .await;
    assert_eq!(
        StatusCode::OK,
        other.status(),
        "the first session is separate"
    );
}

#[tokio::test]
async fn writes_without_the_csrf_token_are_refused_with_403() {
    // Arrange
    let app = spawn_app().await;
    let console = sign_in(&app).await;
    let body = json!({"name": "room", "members": ["alice"]});
    for csrf in [None, Some("wrong"), Some("")] {
        // Act
        let response = raw(
            &app,
            Method::POST,
            "/console/api/conversations",
            Some(&console.cookie),
            csrf,
            Some(body.clone()),
        )
        .await;
        // Assert
        let (status, error) = json_of(response).await;
        assert_eq!(StatusCode::FORBIDDEN, status, "csrf {csrf:?}");
        assert_eq!(json!(403), error["code"]);
    }
    let sign_out = raw(
        &app,
        Method::DELETE,
        "/console/api/session",
        Some(&console.cookie),
        None,
        None,
    )
    .await;
    assert_eq!(StatusCode::FORBIDDEN, sign_out.status(), "sign-out too");
    let send = raw(
        &app,
        Method::POST,
        "/console/api/messages",
        Some(&console.cookie),
        None,
        Some(json!({"convId": "x", "from": "a", "message": "hi"})),
    )
    .await;
    assert_eq!(StatusCode::FORBIDDEN, send.status(), "sends too");
    let (count, _) = console.get("/conversations").await;
    assert_eq!(StatusCode::OK, count, "reads need no token");
    // With the token the write goes through.
    let (status, created) = console.post("/conversations", body).await;
    assert_eq!(StatusCode::CREATED, status, "{created}");
    assert_eq!(json!(["alice"]), created["m"]);
}

#[tokio::test]
async fn conversations_are_paged_newest_first_filtered_by_kind_and_searched_by_id_name_or_member() {
    // Arrange: 25 normal, 3 system, 2 transient conversations.
    let app = spawn_app().await;
    let mut normal = Vec::new();
    for i in 1..=25 {
        normal.push(
            app.conversation(
                json!({"name": format!("Room {i}"), "m": ["alice", format!("user{i}")]}),
            )
            .await,
        );
    }
    for i in 1..=3 {
        app.conversation(json!({"name": format!("Notices {i}"), "sys": true}))
            .await;
    }
    for i in 1..=2 {
        app.conversation(json!({"name": format!("Lobby {i}"), "tr": true}))
            .await;
    }
    let console = sign_in(&app).await;

    // Act + Assert: paging.
    let (status, page) = console.get("/conversations?limit=10").await;
    assert_eq!(StatusCode::OK, status, "{page}");
    assert_eq!(json!(30), page["count"]);
    let results = page["results"].as_array().expect("results");
    assert_eq!(10, results.len());
    assert_eq!(json!("Lobby 2"), results[0]["name"], "newest first");
    let (_, last) = console.get("/conversations?limit=10&skip=25").await;
    let names: Vec<&str> = last["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        vec!["Room 5", "Room 4", "Room 3", "Room 2", "Room 1"],
        names
    );
    let (_, default) = console.get("/conversations").await;
    assert_eq!(
        20,
        default["results"].as_array().map_or(0, Vec::len),
        "default page"
    );

    // Filters.
    for (kind, count) in [("normal", 25), ("system", 3), ("transient", 2)] {
        let (status, page) = console.get(&format!("/conversations?kind={kind}")).await;
        assert_eq!(StatusCode::OK, status);
        assert_eq!(json!(count), page["count"], "kind {kind}");
        assert!(
            page["results"]
                .as_array()
                .expect("results")
                .iter()
                .all(|c| c["kind"] == json!(kind)),
            "only {kind}: {page}"
        );
    }
    let (status, error) = console.get("/conversations?kind=private").await;
    assert_eq!(StatusCode::BAD_REQUEST, status, "{error}");

    // Search: part of the name in any case, an exact member, part of the id; combined with a kind.
    let search = |q: &str| format!("/conversations?q={}", urlencode(q));
    let (_, by_name) = console.get(&search("room 7")).await;
    assert_eq!(json!(1), by_name["count"], "{by_name}");
    assert_eq!(json!("Room 7"), by_name["results"][0]["name"]);
    let (_, by_member) = console.get(&search("user13")).await;
    assert_eq!(json!(1), by_member["count"]);
    assert_eq!(json!(normal[12]), by_member["results"][0]["objectId"]);
    let (_, all_alice) = console.get(&search("alice")).await;
    assert_eq!(json!(25), all_alice["count"]);
    let (_, not_partial_member) = console.get(&search("user")).await;
    assert_eq!(
        json!(0),
        not_partial_member["count"],
        "members match exactly"
    );
    let (_, by_id) = console.get(&search(&normal[3][8..])).await;
    assert_eq!(json!(normal[3]), by_id["results"][0]["objectId"]);
    let (_, combined) = console
        .get(&format!("{}&kind=system", search("notices 2")))
        .await;
    assert_eq!(json!(1), combined["count"]);
    let (_, none) = console
        .get(&format!("{}&kind=system", search("room")))
        .await;
    assert_eq!(json!(0), none["count"]);
}

#[tokio::test]
async fn a_conversation_shows_its_fields_attributes_and_messages_newest_first_with_a_cursor() {
    // Arrange
    let app = spawn_app().await;
    let conv = app
        .conversation(json!({"name": "Orders", "m": ["alice", "bob"], "c": "alice", "topic": "billing", "priority": 2}))
        .await;
    for i in 1..=25 {
        let (status, _) = app
            .send(json!({"from_peer": "alice", "conv_id": conv, "message": format!("m{i}"), "transient": false}))
            .await;
        assert_eq!(StatusCode::OK, status);
    }
    let console = sign_in(&app).await;

    // Act
    let (status, view) = console.get(&format!("/conversations/{conv}")).await;
    // Assert
    assert_eq!(StatusCode::OK, status, "{view}");
    assert_eq!(json!("normal"), view["kind"]);
    assert_eq!(json!("alice"), view["c"]);
    assert_eq!(
        json!({"topic": "billing", "priority": 2}),
        view["attributes"]
    );
    assert_eq!(json!(25), view["messageCount"]);
    assert!(view["lm"]["iso"].is_string(), "{view}");

    let mut texts = Vec::new();
    let mut path = format!("/conversations/{conv}/messages?limit=10");
    for expected in [10, 10, 5] {
        let (status, page) = console.get(&path).await;
        assert_eq!(StatusCode::OK, status, "{page}");
        assert_eq!(json!(25), page["total"]);
        let results = page["results"].as_array().expect("results");
        assert_eq!(expected, results.len(), "{page}");
        texts.extend(
            results
                .iter()
                .map(|m| m["data"].as_str().unwrap_or("").to_string()),
        );
        match page["next"].as_i64() {
            Some(next) => path = format!("/conversations/{conv}/messages?limit=10&before={next}"),
            None => assert_eq!(5, expected, "no cursor after the last page"),
        }
    }
    let expected: Vec<String> = (1..=25).rev().map(|i| format!("m{i}")).collect();
    assert_eq!(expected, texts, "newest first, each once");

    let (status, missing) = console.get("/conversations/nope").await;
    assert_eq!(StatusCode::NOT_FOUND, status, "{missing}");
    assert_eq!(json!(101), missing["code"]);
}

#[tokio::test]
async fn members_are_added_and_removed_through_the_console() {
    // Arrange
    let app = spawn_app().await;
    let console = sign_in(&app).await;
    let (_, created) = console
        .post(
            "/conversations",
            json!({"name": "Team", "members": ["alice", "alice", " bob "], "attributes": {"team": "ops"}}),
        )
        .await;
    let id = created["objectId"].as_str().expect("id").to_string();
    assert_eq!(
        json!(["alice", "bob"]),
        created["m"],
        "trimmed and de-duplicated"
    );
    assert_eq!(json!({"team": "ops"}), created["attributes"]);
    // Act
    let (status, added) = console
        .post(
            &format!("/conversations/{id}/members"),
            json!({"clientIds": ["carol", "bob"]}),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{added}");
    let (status, removed) = console
        .write(
            Method::DELETE,
            &format!("/conversations/{id}/members/alice"),
            None,
        )
        .await;
    // Assert
    assert_eq!(StatusCode::OK, status, "{removed}");
    assert_eq!(json!(["bob", "carol"]), removed["m"]);
    let stored = app.server.inspect().conversation(&id).expect("stored");
    assert_eq!(
        json!(["bob", "carol"]),
        stored["m"],
        "the storage API sees it"
    );
    let (status, error) = console
        .post("/conversations/nope/members", json!({"clientIds": ["x"]}))
        .await;
    assert_eq!(StatusCode::NOT_FOUND, status, "{error}");
    let (status, error) = console
        .post(
            &format!("/conversations/{id}/members"),
            json!({"clientIds": []}),
        )
        .await;
    assert_eq!(StatusCode::BAD_REQUEST, status, "{error}");
    let (status, error) = console
        .post("/conversations", json!({"attributes": {"m": ["x"]}}))
        .await;
    assert_eq!(
        StatusCode::BAD_REQUEST,
        status,
        "a reserved attribute: {error}"
    );
}

#[tokio::test]
async fn an_xss_payload_is_stored_and_returned_as_data_and_the_page_has_no_inline_script() {
    // Arrange
    let app = spawn_app().await;
    let console = sign_in(&app).await;
    let name = "<img src=x onerror=alert(1)>";
    let script = "<script>alert('xss')</script>";
    // Act
    let (status, created) = console
        .post(
            "/conversations",
            json!({"name": name, "members": ["<b>mallory</b>"], "attributes": {"note": script}}),
        )
        .await;
    assert_eq!(StatusCode::CREATED, status, "{created}");
    let id = created["objectId"].as_str().expect("id").to_string();
    let (status, sent) = console
        .post(
            "/messages",
            json!({"convId": id, "from": "<b>mallory</b>", "message": script}),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{sent}");
    // Assert: the exact text comes back, as JSON data.
    let response = raw(
        &app,
        Method::GET,
        &format!("/console/api/conversations/{id}/messages"),
        Some(&console.cookie),
        None,
        None,
    )
    .await;
    assert!(response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json")));
    let (_, page) = json_of(response).await;
    assert_eq!(json!(script), page["results"][0]["data"]);
    assert_eq!(json!("<b>mallory</b>"), page["results"][0]["from"]);
    let (_, view) = console.get(&format!("/conversations/{id}")).await;
    assert_eq!(json!(name), view["name"]);
    assert_eq!(json!(script), view["attributes"]["note"]);
    assert_eq!(script, app.server.inspect().messages(&id)[0].data);
    // The page loads its script from a file and holds no inline script or handler.
    let html = app
        .client
        .get(app.url("/console/"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(html.contains(r#"<script src="/console/app.js" defer></script>"#));
    assert_eq!(1, html.matches("<script").count(), "{html}");
    assert!(!html.contains(" onclick=") && !html.contains(" onload="));
    // The key field has no name and the form posts: a native submission can never put the key in a URL.
    assert!(
        html.contains(r#"<input id="master-key" type="password""#),
        "{html}"
    );
    assert!(html.contains(r#"<form id="signin-form" class="card signin-card" method="post""#));
    let js = app
        .client
        .get(app.url("/console/app.js"))
        .send()
        .await
        .expect("js")
        .text()
        .await
        .expect("js");
    assert!(
        !js.contains("innerHTML") && !js.contains("insertAdjacentHTML") && !js.contains("eval(")
    );
}

#[tokio::test]
async fn every_console_response_carries_the_security_headers() {
    // Arrange
    let app = spawn_app().await;
    for (path, content_type) in [
        ("/console/", "text/html"),
        ("/console", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
        ("/console/api/session", "application/json"),
        ("/console/api/nothing-here", "application/json"),
    ] {
        // Act
        let response = app.client.get(app.url(path)).send().await.expect("sent");
        // Assert
        let h = response.headers();
        let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert_eq!(CSP, get("content-security-policy"), "{path}");
        assert_eq!("nosniff", get("x-content-type-options"), "{path}");
        assert_eq!("no-referrer", get("referrer-policy"), "{path}");
        assert_eq!("DENY", get("x-frame-options"), "{path}");
        assert!(
            get("content-type").starts_with(content_type),
            "{path}: {}",
            get("content-type")
        );
    }
}

/// Reads server-sent events until one named `name` arrives; returns its data.
async fn next_event(response: &mut reqwest::Response, buffer: &mut String, name: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut event = "message";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if event == name {
                return serde_json::from_str(&data).expect("event data is JSON");
            }
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {name} event within 5 s"))
            .expect("stream readable")
            .expect("stream open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn the_live_stream_carries_every_stored_message_rest_realtime_and_console_alike() {
    // Arrange
    let app = spawn_app().await;
    let conv = app
        .conversation(json!({"name": "Live", "m": ["alice", "bob"]}))
        .await;
    let other = app.conversation(json!({"m": ["alice"]})).await;
    let console = sign_in(&app).await;
    let mut stream = raw(
        &app,
        Method::GET,
        &format!("/console/api/live?conv={conv}"),
        Some(&console.cookie),
        None,
        None,
    )
    .await;
    assert_eq!(StatusCode::OK, stream.status());
    assert!(stream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream")));
    let mut buffer = String::new();
    next_event(&mut stream, &mut buffer, "ready").await;

    // Act: a REST send elsewhere (filtered out), a REST send here, a realtime client's, the console's.
    app.send(
        json!({"from_peer": "alice", "conv_id": other, "message": "elsewhere", "transient": false}),
    )
    .await;
    let (status, _) = app
        .send(json!({"from_peer": "alice", "conv_id": conv, "message": "from REST", "transient": false}))
        .await;
    assert_eq!(StatusCode::OK, status);
    let mut ws = connect(&app, "lc.protobuf2.3").await;
    ws.login("bob").await;
    let ack = ws.request(direct(&conv, "from a realtime client")).await;
    assert!(ack.ack_message.is_some(), "{ack:?}");
    let (status, sent) = console
        .post(
            "/messages",
            json!({"convId": conv, "from": "carol", "message": "from the console"}),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{sent}");

    // Assert
    let mut got = Vec::new();
    for _ in 0..3 {
        let m = next_event(&mut stream, &mut buffer, "message").await;
        assert_eq!(json!(conv), m["convId"], "{m}");
        got.push((m["from"].clone(), m["data"].clone()));
    }
    assert_eq!(
        vec![
            (json!("alice"), json!("from REST")),
            (json!("bob"), json!("from a realtime client")),
            (json!("carol"), json!("from the console")),
        ],
        got
    );
    // The console's send went through the send path: stored, in the history API, delivered to bob.
    let (_, history) = app
        .get(&format!("/1.1/rtm/messages/history?convid={conv}&limit=1"))
        .await;
    assert_eq!(json!("from the console"), history[0]["data"]);
    assert!(ws
        .drain_texts()
        .await
        .contains(&"from the console".to_string()));
    drop(stream);
}

#[tokio::test]
async fn send_errors_come_back_as_the_server_gives_them() {
    // Arrange
    let app = spawn_app().await;
    let console = sign_in(&app).await;
    let normal = app.conversation(json!({"m": ["alice"]})).await;
    // Act + Assert
    let (status, error) = console
        .post(
            "/messages",
            json!({"convId": "missing", "from": "a", "message": "hi"}),
        )
        .await;
    assert_eq!(StatusCode::BAD_REQUEST, status);
    assert_eq!(json!(4401), error["code"], "{error}");
    let (status, error) = console
        .post(
            "/messages",
            json!({"convId": normal, "from": "a", "message": "hi", "toClients": ["b"]}),
        )
        .await;
    assert_eq!(StatusCode::BAD_REQUEST, status);
    assert_eq!(json!(4313), error["code"], "{error}");
    let (status, error) = console
        .post("/messages", json!({"convId": normal, "message": "hi"}))
        .await;
    assert_eq!(StatusCode::BAD_REQUEST, status);
    assert_eq!(json!("Missing required parameter from."), error["error"]);
    let (status, error) = console
        .post(
            "/broadcasts",
            json!({"convId": normal, "from": "a", "message": "hi"}),
        )
        .await;
    assert_eq!(StatusCode::BAD_REQUEST, status);
    assert_eq!(json!(4313), error["code"], "{error}");
    let (status, error) = console
        .post(
            "/messages",
            json!({"convId": normal, "from": "a", "message": "x".repeat(6000)}),
        )
        .await;
    assert_eq!(StatusCode::BAD_REQUEST, status);
    assert_eq!(json!(413), error["code"], "{error}");
}

#[tokio::test]
async fn system_messages_to_chosen_clients_and_broadcasts_count_against_the_quota_the_console_shows(
) {
    // Arrange
    let app = spawn_with(|c| {
        c.rate_limits = RateLimits {
            broadcasts_per_day: Some(2),
            ..RateLimits::off()
        }
    })
    .await;
    let sys = app
        .conversation(json!({"name": "Notices", "sys": true}))
        .await;
    let normal = app.conversation(json!({"m": ["a"]})).await;
    let console = sign_in(&app).await;
    let (_, quota) = console.get("/quota").await;
    assert_eq!(
        json!({"limit": 2, "used": 0, "remaining": 2}),
        json!({"limit": quota["broadcastsPerDay"]["limit"], "used": quota["broadcastsPerDay"]["used"], "remaining": quota["broadcastsPerDay"]["remaining"]})
    );
    assert_eq!(Value::Null, quota["messagesPerMinute"]["limit"], "off");

    // Act: a system message to chosen clients, then broadcasts.
    let (status, sent) = console
        .post(
            "/messages",
            json!({"convId": sys, "from": "ops", "message": "only you", "toClients": ["alice", "bob"]}),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{sent}");
    assert_eq!(json!("to_clients"), sent["message"]["kind"]);
    assert_eq!(json!(["alice", "bob"]), sent["message"]["recipients"]);
    let (status, first) = console
        .post(
            "/broadcasts",
            json!({"convId": sys, "from": "ops", "message": "maintenance at 2"}),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{first}");
    let (status, _) = console
        .post(
            "/broadcasts",
            json!({"convId": normal, "from": "ops", "message": "refused"}),
        )
        .await;
    assert_eq!(StatusCode::BAD_REQUEST, status);
    let (_, quota) = console.get("/quota").await;
    assert_eq!(
        json!(1),
        quota["broadcastsPerDay"]["remaining"],
        "a refused broadcast costs nothing: {quota}"
    );
    let (status, _) = console
        .post(
            "/broadcasts",
            json!({"convId": sys, "from": "ops", "message": "second"}),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    let (status, error) = console
        .post(
            "/broadcasts",
            json!({"convId": sys, "from": "ops", "message": "third"}),
        )
        .await;

    // Assert
    assert_eq!(StatusCode::TOO_MANY_REQUESTS, status);
    assert_eq!(
        json!({"code": 1, "error": "The daily quota of system messages is exceeded."}),
        error
    );
    let (_, quota) = console.get("/quota").await;
    assert_eq!(json!(0), quota["broadcastsPerDay"]["remaining"]);
    let stored = app.server.inspect().messages(&sys);
    let kinds: Vec<String> = stored.iter().map(|m| format!("{:?}", m.kind)).collect();
    assert_eq!(vec!["ToClients", "Broadcast", "Broadcast"], kinds);
    assert!(stored[1]
        .valid_till
        .is_some_and(|t| t > chrono::Utc::now().timestamp_millis()));
    let (status, error) = console
        .post(
            "/broadcasts",
            json!({"convId": sys, "from": "ops", "message": "x", "validTill": 1}),
        )
        .await;
    assert_eq!(StatusCode::BAD_REQUEST, status, "{error}");
}

#[tokio::test]
async fn operations_show_connected_clients_their_sessions_messages_per_minute_and_the_buckets() {
    // Arrange
    let app = spawn_with(|c| {
        c.rate_limits = RateLimits {
            messages_per_minute: Some(100),
            ..RateLimits::off()
        }
    })
    .await;
    let conv = app.conversation(json!({"m": ["alice", "bob"]})).await;
    for i in 0..7 {
        app.send(json!({"from_peer": "alice", "conv_id": conv, "message": format!("m{i}"), "transient": false}))
            .await;
    }
    let mut alice = connect(&app, "lc.protobuf2.3").await;
    alice.login("alice").await;
    let mut bob = connect(&app, "lc.protobuf2.3").await;
    bob.login("bob").await;
    let mut bob2 = connect(&app, "lc.protobuf2.3").await;
    bob2.login("bob").await;
    let console = sign_in(&app).await;

    // Act
    let (status, ops) = console.get("/operations").await;

    // Assert
    assert_eq!(StatusCode::OK, status, "{ops}");
    assert_eq!(json!(2), ops["onlineClients"]);
    assert_eq!(json!(3), ops["sessions"]);
    assert_eq!(json!("alice"), ops["clients"][0]["clientId"]);
    assert_eq!(
        2,
        ops["clients"][1]["sessions"].as_array().map_or(0, Vec::len)
    );
    let minutes = ops["messagesPerMinute"].as_array().expect("per minute");
    assert_eq!(60, minutes.len(), "an hour of minutes");
    let total: i64 = minutes.iter().filter_map(|m| m["count"].as_i64()).sum();
    assert_eq!(7, total);
    assert_eq!(json!(7), ops["messagesLastHour"]);
    assert!(
        minutes
            .last()
            .and_then(|m| m["count"].as_i64())
            .unwrap_or(0)
            > 0
            || minutes[58]["count"].as_i64().unwrap_or(0) > 0
    );
    assert_eq!(json!(100), ops["rateLimits"]["messagesPerMinute"]["limit"]);
    assert_eq!(json!(7), ops["rateLimits"]["messagesPerMinute"]["used"]);
    assert_eq!(
        json!(93),
        ops["rateLimits"]["messagesPerMinute"]["remaining"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_show_the_newest_jobs_with_shortened_tokens_their_outcome_and_state_counts() {
    // Arrange: an iPhone (no APNs configured: its job fails) and a Huawei phone (unsupported), on one channel.
    let app = spawn_app().await;
    let token = "ab12cd34".repeat(8);
    for device in [
        json!({"deviceType": "ios", "deviceToken": token, "channels": ["bob"]}),
        json!({"deviceType": "android", "installationId": "h-1", "vendor": "huawei", "registrationId": "hms-1", "channels": ["bob"]}),
    ] {
        let (status, saved) = app
            .call(
                crate::helpers::Key::App,
                Method::POST,
                "/1.1/installations",
                Some(device),
            )
            .await;
        assert_eq!(StatusCode::CREATED, status, "{saved}");
    }
    let (status, sent) = app
        .post(
            "/1.1/push",
            json!({"channels": ["bob"], "data": {"alert": "<b>hi</b>"}}),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{sent}");
    let id = sent["objectId"].as_str().expect("objectId").to_string();
    let console = sign_in(&app).await;

    // Act: once the worker has settled both jobs.
    let deadline = tokio::time::Instant::now() + crate::realtime::WAIT;
    let (status, page) = loop {
        let (status, page) = console.get(&format!("/pushes?ref_id={id}")).await;
        let settled = page["total"] == json!(2) && page["counts"]["pending"] == json!(0);
        if status != StatusCode::OK || settled || tokio::time::Instant::now() > deadline {
            break (status, page);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Assert: the device token shortened (sorted by platform: one push queues its jobs at once); the counts of
    // every state.
    assert_eq!(StatusCode::OK, status, "{page}");
    let mut rows: Vec<Value> = page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|j| {
            json!([
                j["source"],
                j["refId"],
                j["platform"],
                j["target"],
                j["state"],
                j["attempts"],
                j["payload"],
                j["doneAt"].is_i64()
            ])
        })
        .collect();
    rows.sort_by_key(|r| r[2].as_str().unwrap_or_default().to_string());
    assert_eq!(
        vec![
            json!(["api", id, "android/huawei", "", "unsupported", 0, {"alert": "<b>hi</b>"}, true]),
            json!(["api", id, "ios", "ab12cd34…", "failed", 1, {"alert": "<b>hi</b>"}, true]),
        ],
        rows
    );
    let errors: Vec<Value> = page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|j| j["error"].clone())
        .collect();
    assert!(
        errors.contains(&Value::Null)
            && errors
                .iter()
                .any(|e| e.as_str().is_some_and(|e| e.contains("--apns-key"))),
        "{page}"
    );
    assert_eq!(
        json!({"pending": 0, "sent": 0, "failed": 1, "invalid": 0, "unsupported": 1, "expired": 0}),
        page["counts"]
    );

    // Assert: the filter by state keeps the counts; limit; a bad state; no session.
    let (_, failed) = console.get("/pushes?state=failed").await;
    assert_eq!(json!(["ios"]), json!([failed["results"][0]["platform"]]));
    assert_eq!(1, failed["results"].as_array().map_or(0, Vec::len));
    assert_eq!(json!(1), failed["counts"]["unsupported"]);
    let (_, newest) = console.get("/pushes?limit=1").await;
    assert_eq!(
        (json!(1), json!(1)),
        (newest["total"].clone(), newest["limit"].clone())
    );
    let (status, error) = console.get("/pushes?state=lost").await;
    assert_eq!(StatusCode::BAD_REQUEST, status, "{error}");
    let (status, _) =
        json_of(raw(&app, Method::GET, "/console/api/pushes", None, None, None).await).await;
    assert_eq!(StatusCode::UNAUTHORIZED, status);
}
