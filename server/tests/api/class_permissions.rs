//! Class permissions (issue 24): per class, who may get, find, create, update, delete and add fields, set with
//! the master key at `/__admin/class-permissions/{class}` in LeanCloud's format and enforced on every door of the
//! storage API (`/1.1/classes`, `/1.1/users`, `/1.1/batch`). `_Conversation` is closed by default and an app can
//! open it.

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

fn forbidden(verb: &str) -> (StatusCode, Value) {
    (
        StatusCode::FORBIDDEN,
        json!({"code": 403, "error": format!("Forbidden to {verb} by class permissions.")}),
    )
}

async fn set(app: &TestApp, class: &str, permissions: Value) -> Value {
    let (status, body) = app
        .put(&format!("/__admin/class-permissions/{class}"), permissions)
        .await;
    assert_eq!(StatusCode::OK, status, "{body}");
    body
}

#[tokio::test]
async fn conversations_are_closed_to_clients_until_the_app_opens_them() {
    // Arrange
    let app = spawn_app().await;
    let (_, token) = app.user("ana").await;
    let new_conv = json!({"name": "room", "m": ["ana", "bob"]});

    // Act + Assert: the defaults keep conversations to the master key.
    let (status, body) = app.get("/__admin/class-permissions/_Conversation").await;
    assert_eq!(StatusCode::OK, status);
    let closed = json!({"users": [], "roles": []});
    assert_eq!(
        json!({"className": "_Conversation", "default": true, "permissions": {
            "get": closed, "find": closed, "create": closed, "update": closed, "delete": closed, "add_fields": {"*": true},
        }}),
        body
    );
    for token in [None, Some(token.as_str())] {
        assert_eq!(
            forbidden("create"),
            app.call_as(
                token,
                Method::POST,
                "/1.1/classes/_Conversation",
                Some(new_conv.clone())
            )
            .await
        );
        assert_eq!(
            forbidden("find"),
            app.call_as(token, Method::GET, "/1.1/classes/_Conversation", None)
                .await
        );
    }

    // Act: the app lets everyone create and get, and signed-in users find.
    let opened = set(
        &app,
        "_Conversation",
        json!({"create": {"*": true}, "get": {"*": true}, "find": {"onlySignInUsers": true}}),
    )
    .await;

    // Assert
    assert_eq!(json!(false), opened["default"]);
    assert_eq!(
        json!({"onlySignInUsers": true}),
        opened["permissions"]["find"]
    );
    assert_eq!(closed, opened["permissions"]["update"]);
    let (status, created) = app
        .call_as(
            None,
            Method::POST,
            "/1.1/classes/_Conversation",
            Some(new_conv.clone()),
        )
        .await;
    assert_eq!(StatusCode::CREATED, status, "{created}");
    let id = created["objectId"].as_str().expect("id").to_string();
    let (_, stored) = app.get(&format!("/1.1/classes/_Conversation/{id}")).await;
    assert_eq!(json!(["ana", "bob"]), stored["m"]);
    let (status, got) = app
        .call_as(
            None,
            Method::GET,
            &format!("/1.1/classes/_Conversation/{id}"),
            None,
        )
        .await;
    assert_eq!(
        (StatusCode::OK, json!("room")),
        (status, got["name"].clone())
    );
    assert_eq!(
        forbidden("find"),
        app.call_as(None, Method::GET, "/1.1/classes/_Conversation", None)
            .await
    );
    let (status, found) = app
        .call_as(
            Some(&token),
            Method::GET,
            "/1.1/classes/_Conversation",
            None,
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{found}");
    assert_eq!(
        json!([id.clone()]),
        json!(found["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|c| c["objectId"].clone())
            .collect::<Vec<_>>())
    );
    assert_eq!(
        forbidden("update"),
        app.call_as(
            Some(&token),
            Method::PUT,
            &format!("/1.1/classes/_Conversation/{id}"),
            Some(json!({"name": "x"}))
        )
        .await
    );
    assert_eq!(
        forbidden("delete"),
        app.call_as(
            Some(&token),
            Method::DELETE,
            &format!("/1.1/classes/_Conversation/{id}"),
            None
        )
        .await
    );

    // Act: back to the defaults.
    let (status, reset) = app.delete("/__admin/class-permissions/_Conversation").await;

    // Assert
    assert_eq!(
        (StatusCode::OK, json!(true)),
        (status, reset["default"].clone())
    );
    assert_eq!(
        forbidden("create"),
        app.call_as(
            None,
            Method::POST,
            "/1.1/classes/_Conversation",
            Some(new_conv)
        )
        .await
    );
    let (_, still) = app.get(&format!("/1.1/classes/_Conversation/{id}")).await;
    assert_eq!(
        json!("room"),
        still["name"],
        "the master key is never refused"
    );
}

#[tokio::test]
async fn named_users_and_the_members_of_named_roles_pass_and_nobody_else() {
    // Arrange
    let app = spawn_app().await;
    let (ana, ana_token) = app.user("ana").await;
    let (bob, bob_token) = app.user("bob").await;
    let (_, carl_token) = app.user("carl").await;
    let (status, role) = app
        .post(
            "/1.1/roles",
            json!({"name": "mods", "ACL": {"*": {"read": true}},
                   "users": {"__op": "AddRelation", "objects": [{"__type": "Pointer", "className": "_User", "objectId": bob}]}}),
        )
        .await;
    assert_eq!(StatusCode::CREATED, status, "{role}");
    set(
        &app,
        "Report",
        json!({"delete": {"users": [ana], "roles": ["mods"]}}),
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, r) = app
            .call_as(
                None,
                Method::POST,
                "/1.1/classes/Report",
                Some(json!({"text": "spam"})),
            )
            .await;
        assert_eq!(StatusCode::CREATED, status, "{r}");
        ids.push(r["objectId"].as_str().expect("id").to_string());
    }

    // Act + Assert
    assert_eq!(
        forbidden("delete"),
        app.call_as(
            None,
            Method::DELETE,
            &format!("/1.1/classes/Report/{}", ids[0]),
            None
        )
        .await
    );
    assert_eq!(
        forbidden("delete"),
        app.call_as(
            Some(&carl_token),
            Method::DELETE,
            &format!("/1.1/classes/Report/{}", ids[0]),
            None
        )
        .await
    );
    for (token, id) in [(&ana_token, &ids[0]), (&bob_token, &ids[1])] {
        let (status, body) = app
            .call_as(
                Some(token),
                Method::DELETE,
                &format!("/1.1/classes/Report/{id}"),
                None,
            )
            .await;
        assert_eq!((StatusCode::OK, json!({})), (status, body));
    }
    let (_, left) = app.get("/1.1/classes/Report").await;
    assert_eq!(1, left["results"].as_array().expect("results").len());
    assert_eq!(json!(ids[2]), left["results"][0]["objectId"]);
}

#[tokio::test]
async fn a_closed_add_fields_refuses_new_fields_and_keeps_the_known_ones_writable() {
    // Arrange
    let app = spawn_app().await;
    let (status, first) = app
        .post("/1.1/classes/Score", json!({"points": 1, "player": "ana"}))
        .await;
    assert_eq!(StatusCode::CREATED, status, "{first}");
    let id = first["objectId"].as_str().expect("id").to_string();
    set(
        &app,
        "Score",
        json!({"add_fields": {"users": [], "roles": []}}),
    )
    .await;

    // Act + Assert
    let (status, ok) = app
        .call_as(
            None,
            Method::POST,
            "/1.1/classes/Score",
            Some(json!({"points": 2, "player": "bob"})),
        )
        .await;
    assert_eq!(StatusCode::CREATED, status, "{ok}");
    assert_eq!(
        forbidden("add fields"),
        app.call_as(
            None,
            Method::POST,
            "/1.1/classes/Score",
            Some(json!({"points": 3, "cheat": true}))
        )
        .await
    );
    assert_eq!(
        forbidden("add fields"),
        app.call_as(
            None,
            Method::PUT,
            &format!("/1.1/classes/Score/{id}"),
            Some(json!({"bonus.x": 1}))
        )
        .await
    );
    let (status, _) = app
        .call_as(
            None,
            Method::PUT,
            &format!("/1.1/classes/Score/{id}"),
            Some(json!({"points": {"__op": "Increment", "amount": 5}})),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    // The master key adds a field; clients may then write it.
    let (status, _) = app
        .put(&format!("/1.1/classes/Score/{id}"), json!({"level": 1}))
        .await;
    assert_eq!(StatusCode::OK, status);
    let (status, body) = app
        .call_as(
            None,
            Method::PUT,
            &format!("/1.1/classes/Score/{id}"),
            Some(json!({"level": 2})),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{body}");
    let (_, stored) = app.get(&format!("/1.1/classes/Score/{id}")).await;
    assert_eq!(
        (json!(6), json!(2), Value::Null),
        (
            stored["points"].clone(),
            stored["level"].clone(),
            stored["cheat"].clone()
        )
    );
    let (_, all) = app.get("/1.1/classes/Score?count=1&limit=0").await;
    assert_eq!(json!(2), all["count"]);
}

#[tokio::test]
async fn the_user_class_and_batches_are_governed_too() {
    // Arrange
    let app = spawn_app().await;
    let (_, token) = app.user("ana").await;
    app.user("bob").await;

    // Act + Assert: `_User` find is closed by default; signed-in users may find once the app says so.
    assert_eq!(
        forbidden("find"),
        app.call_as(Some(&token), Method::GET, "/1.1/users", None)
            .await
    );
    set(
        &app,
        "_User",
        json!({"find": {"onlySignInUsers": true}, "create": {"users": [], "roles": []}}),
    )
    .await;
    let (status, found) = app
        .call_as(Some(&token), Method::GET, "/1.1/users?order=username", None)
        .await;
    assert_eq!(StatusCode::OK, status, "{found}");
    let names: Vec<&str> = found["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(vec!["ana", "bob"], names);
    assert_eq!(
        forbidden("find"),
        app.call_as(None, Method::GET, "/1.1/classes/_User", None)
            .await
    );
    // Sign-up is a create: closed now, at both doors.
    for path in ["/1.1/users", "/1.1/classes/_User"] {
        assert_eq!(
            forbidden("create"),
            app.call_as(
                None,
                Method::POST,
                path,
                Some(json!({"username": "eve", "password": "p"}))
            )
            .await,
            "{path}"
        );
    }
    // A batch runs each request through the same checks.
    let (status, results) = app
        .call_as(
            None,
            Method::POST,
            "/1.1/batch",
            Some(json!({"requests": [
                {"method": "POST", "path": "/1.1/classes/_Conversation", "body": {"name": "x"}},
                {"method": "POST", "path": "/1.1/classes/Note", "body": {"text": "y"}},
            ]})),
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{results}");
    assert_eq!(
        json!({"code": 403, "error": "Forbidden to create by class permissions."}),
        results[0]["error"]
    );
    assert!(results[1]["success"]["objectId"].is_string(), "{results}");
    let (_, convs) = app.get("/1.1/classes/_Conversation").await;
    assert_eq!(json!([]), convs["results"]);
}

#[tokio::test]
async fn settings_need_the_master_key_and_malformed_ones_are_refused() {
    // Arrange
    let app = spawn_app().await;

    // Act + Assert
    let (status, body) = app
        .call_as(
            None,
            Method::PUT,
            "/__admin/class-permissions/A",
            Some(json!({"get": {"*": true}})),
        )
        .await;
    assert_eq!(
        (
            StatusCode::FORBIDDEN,
            json!({"code": 119, "error": "The operation requires the master key."})
        ),
        (status, body)
    );
    for (body, error) in [
        (json!({"read": {"*": true}}), "Unknown operation \"read\" in class permissions (known: get, find, create, update, delete, add_fields)."),
        (json!({"get": {}}), "The get permission is empty: give \"*\", \"onlySignInUsers\" or \"users\"/\"roles\"."),
        (json!({"find": {"users": "u1"}}), "The find permission lists users in an array."),
    ] {
        let (status, got) = app.put("/__admin/class-permissions/A", body.clone()).await;
        assert_eq!((StatusCode::BAD_REQUEST, json!({"code": 107, "error": error})), (status, got), "{body}");
    }
    let (status, got) = app
        .put(
            "/__admin/class-permissions/no-dash",
            json!({"get": {"*": true}}),
        )
        .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(103)),
        (status, got["code"].clone())
    );
    // Nothing was stored by the refusals; the list shows the closed built-in classes and what was set.
    set(&app, "Post", json!({"delete": {"onlySignInUsers": true}})).await;
    let (status, list) = app.get("/__admin/class-permissions").await;
    assert_eq!(StatusCode::OK, status);
    let summary: Vec<(Value, Value)> = list["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| (r["className"].clone(), r["default"].clone()))
        .collect();
    assert_eq!(
        vec![
            (json!("Post"), json!(false)),
            (json!("_Conversation"), json!(true)),
            (json!("_User"), json!(true)),
        ],
        summary
    );
}
