//! The endpoints a LeanCloud export uses: the Scan API and the 1.2 history and subscriber endpoints; and
//! `_User`'s password and salt, which are never served.

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Key, TestApp};

async fn seeded_history(app: &TestApp, n: usize) -> (String, Vec<Value>) {
    let conv = app
        .conversation(json!({"name": "h", "m": ["a", "b"]}))
        .await;
    for i in 0..n {
        let (status, _) = app
            .send(json!({"from_peer": "a", "conv_id": conv, "message": format!("m{i}"), "transient": false}))
            .await;
        assert_eq!(StatusCode::OK, status);
    }
    let (_, all) = app
        .get(&format!(
            "/1.2/rtm/conversations/{conv}/messages?limit=1000&reversed=true"
        ))
        .await;
    (conv, all.as_array().expect("array").clone())
}

fn ids(records: &Value) -> Vec<String> {
    records
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["data"].as_str().expect("data").to_string())
        .collect()
}

#[tokio::test]
async fn scan_pages_every_object_once_with_a_cursor_and_ends_with_null() {
    // Arrange
    let app = spawn_app().await;
    for i in 0..5 {
        app.post(
            "/1.1/classes/Item",
            json!({"n": i, "ACL": {"*": {"read": true}}}),
        )
        .await;
    }

    // Act
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/1.1/scan/classes/Item?limit=2&returnACL=true&cursor={c}"),
            None => "/1.1/scan/classes/Item?limit=2&returnACL=true".to_string(),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(StatusCode::OK, status, "{page}");
        pages += 1;
        for obj in page["results"].as_array().expect("results") {
            assert_eq!(json!({"*": {"read": true}}), obj["ACL"], "returnACL");
            seen.push(obj["n"].as_i64().expect("n"));
        }
        match page["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }

    // Assert
    assert_eq!(vec![0, 1, 2, 3, 4], seen);
    assert_eq!(3, pages);
    let (status, _) = app
        .call(Key::App, Method::GET, "/1.1/scan/classes/Item", None)
        .await;
    assert_eq!(
        StatusCode::FORBIDDEN,
        status,
        "the Scan API needs the master key"
    );
    let (status, body) = app.get("/1.1/scan/classes/Nope").await;
    assert_eq!(
        (StatusCode::NOT_FOUND, json!(101)),
        (status, body["code"].clone())
    );
    let (status, _) = app.get("/1.1/scan/classes/Item?limit=1001").await;
    assert_eq!(StatusCode::BAD_REQUEST, status, "limit above 1000");
}

/// Every page of a scan at `path` (with `limit` and `scan_key` already in it): each object's `label`, and the
/// number of pages.
async fn scan_labels(app: &TestApp, path: &str) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_string(),
        };
        let (status, page) = app.get(&url).await;
        assert_eq!(StatusCode::OK, status, "{url}: {page}");
        pages += 1;
        for obj in page["results"].as_array().expect("results") {
            seen.push(obj["label"].as_str().expect("label").to_string());
        }
        match page["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (seen, pages),
        }
    }
}

/// The official Python SDK's `test_scan` (`scan(batch_size=2, scan_key="random")` must come in that order).
#[tokio::test]
async fn a_scan_with_scan_key_pages_in_that_fields_order_with_objects_without_it_last() {
    let app = spawn_app().await;
    // Stored in this order; `n` repeats (3) and is missing twice.
    let objects = [
        ("e", Some(9)),
        ("a", Some(3)),
        ("x", None),
        ("d", Some(7)),
        ("b", Some(3)),
        ("f", Some(1)),
        ("y", None),
        ("c", Some(5)),
    ];
    for (label, n) in objects {
        let body = match n {
            Some(n) => json!({"label": label, "n": n}),
            None => json!({"label": label}),
        };
        app.post("/1.1/classes/Item", body).await;
    }
    let (ascending, pages) = scan_labels(&app, "/1.1/scan/classes/Item?limit=3&scan_key=n").await;
    assert_eq!(vec!["f", "a", "b", "c", "d", "e", "x", "y"], ascending);
    assert_eq!(3, pages);
    let (descending, _) = scan_labels(&app, "/1.1/scan/classes/Item?limit=2&scan_key=-n").await;
    assert_eq!(vec!["e", "d", "c", "a", "b", "f", "x", "y"], descending);
    let (by_id, _) = scan_labels(&app, "/1.1/scan/classes/Item?limit=5&scan_key=createdAt").await;
    assert_eq!(8, by_id.len());
    // Added between two pages: a row after the cursor is served, one before it is not, none twice.
    let (status, first) = app.get("/1.1/scan/classes/Item?limit=2&scan_key=n").await;
    assert_eq!(StatusCode::OK, status);
    app.post("/1.1/classes/Item", json!({"label": "z", "n": 4}))
        .await;
    app.post("/1.1/classes/Item", json!({"label": "before", "n": 0}))
        .await;
    let cursor = first["cursor"].as_str().expect("cursor");
    let (rest, _) = scan_labels(
        &app,
        &format!("/1.1/scan/classes/Item?limit=2&scan_key=n&cursor={cursor}"),
    )
    .await;
    assert_eq!(vec!["b", "z", "c", "d", "e", "x", "y"], rest);

    let (status, body) = app.get("/1.1/scan/classes/Item?scan_key=a.b").await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(105)),
        (status, body["code"].clone()),
        "{body}"
    );
    let (status, _) = app
        .get(&format!(
            "/1.1/scan/classes/Item?scan_key=-n&cursor={cursor}"
        ))
        .await;
    assert_eq!(StatusCode::BAD_REQUEST, status, "a cursor of another order");
}

#[tokio::test]
async fn history_1_2_pages_by_timestamp_and_msgid_in_both_directions() {
    // Arrange
    let app = spawn_app().await;
    let (conv, all) = seeded_history(&app, 7).await;
    let at = |i: usize| {
        (
            all[i]["timestamp"].clone(),
            all[i]["msg-id"].as_str().expect("id").to_string(),
        )
    };

    // Act
    let (t2, m2) = at(2);
    let (t5, m5) = at(5);
    let path = |q: &str| format!("/1.2/rtm/conversations/{conv}/messages?{q}");
    let (_, after_2) = app
        .get(&path(&format!(
            "reversed=true&limit=3&timestamp={t2}&msgid={m2}"
        )))
        .await;
    let (_, from_2) = app
        .get(&path(&format!(
            "reversed=true&limit=3&timestamp={t2}&msgid={m2}&include_start=true"
        )))
        .await;
    let (_, before_5) = app
        .get(&path(&format!(
            "limit=10&timestamp={t5}&msgid={m5}&till_timestamp={t2}&till_msgid={m2}"
        )))
        .await;
    let (_, newest) = app.get(&path("limit=2")).await;
    let (_, chat_room_path) = app
        .get(&format!("/1.2/rtm/chatrooms/{conv}/messages?limit=1"))
        .await;

    // Assert
    assert_eq!(
        vec!["m0", "m1", "m2", "m3", "m4", "m5", "m6"],
        ids(&Value::Array(all.clone()))
    );
    assert_eq!(
        vec!["m3", "m4", "m5"],
        ids(&after_2),
        "strictly after the cursor, oldest first"
    );
    assert_eq!(vec!["m2", "m3", "m4"], ids(&from_2), "include_start");
    assert_eq!(
        vec!["m4", "m3"],
        ids(&before_5),
        "newest first between the bounds, both exclusive"
    );
    assert_eq!(vec!["m6", "m5"], ids(&newest));
    assert_eq!(vec!["m6"], ids(&chat_room_path));
    assert_eq!(json!(false), all[0]["bin"]);
}

#[tokio::test]
async fn service_subscribers_page_by_client_id() {
    // Arrange
    let app = spawn_app().await;
    let sys = app.conversation(json!({"name": "news", "sys": true})).await;
    let normal = app.conversation(json!({"name": "chat"})).await;
    for client in ["carol", "alice", "bob", "alice"] {
        let (status, _) = app
            .post(
                &format!("/1.2/rtm/service-conversations/{sys}/subscribers"),
                json!({"client_id": client}),
            )
            .await;
        assert_eq!(StatusCode::OK, status);
    }

    // Act
    let (_, first) = app
        .get(&format!(
            "/1.2/rtm/service-conversations/{sys}/subscribers?limit=2"
        ))
        .await;
    let (_, rest) = app
        .get(&format!(
            "/1.2/rtm/service-conversations/{sys}/subscribers?limit=2&client_id=bob"
        ))
        .await;
    let (status, body) = app
        .post(
            &format!("/1.2/rtm/service-conversations/{normal}/subscribers"),
            json!({"client_id": "x"}),
        )
        .await;

    // Assert
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|s| s["subscriber"].as_str().expect("s").to_string())
            .collect()
    };
    assert_eq!(vec!["alice", "bob"], names(&first));
    assert_eq!(vec!["carol"], names(&rest));
    assert_eq!(json!(sys), first[0]["conv_id"]);
    assert!(first[0]["timestamp"].is_i64());
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(4313)),
        (status, body["code"].clone())
    );
}

#[tokio::test]
async fn user_passwords_are_stored_hashed_and_never_served_with_salts_or_tokens() {
    // Arrange
    let app = spawn_app().await;
    let (_, created) = app
        .post(
            "/1.1/classes/_User?fetchWhenSave=true",
            json!({"username": "u", "password": "h", "salt": "s"}),
        )
        .await;
    let id = created["objectId"].as_str().expect("id").to_string();

    // Act
    let (_, got) = app.get(&format!("/1.1/classes/_User/{id}")).await;
    let (_, found) = app.get("/1.1/classes/_User").await;
    let (_, scanned) = app.get("/1.1/scan/classes/_User").await;
    let (_, updated) = app
        .put(
            &format!("/1.1/classes/_User/{id}?fetchWhenSave=true"),
            json!({"username": "v"}),
        )
        .await;

    // Assert
    for (what, obj) in [
        ("create", &created),
        ("get", &got),
        ("query", &found["results"][0]),
        ("scan", &scanned["results"][0]),
        ("update", &updated),
    ] {
        assert!(
            obj.get("password").is_none() && obj.get("salt").is_none(),
            "{what}: {obj}"
        );
    }
    for (what, obj) in [
        ("get", &got),
        ("query", &found["results"][0]),
        ("scan", &scanned["results"][0]),
    ] {
        assert!(obj.get("sessionToken").is_none(), "{what}: {obj}");
    }
    // A sign-up through the storage API hashes the password (LeanCloud's hashes come in by the import) and
    // keeps no salt a client sent.
    let stored = app.server.inspect().object("_User", &id).expect("stored");
    assert!(
        stored["password"]
            .as_str()
            .is_some_and(|p| p.starts_with("$argon2id$")),
        "{stored}"
    );
    assert_eq!(None, stored.get("salt"));
}
