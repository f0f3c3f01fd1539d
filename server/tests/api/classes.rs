use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{is_iso_millis, spawn_app, urlencode, Key, TestApp};

async fn create(app: &TestApp, class: &str, body: Value) -> String {
    let (status, created) = app.post(&format!("/1.1/classes/{class}"), body).await;
    assert_eq!(StatusCode::CREATED, status, "{created}");
    created["objectId"].as_str().expect("objectId").to_string()
}

fn without_dates(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.remove("createdAt");
        m.remove("updatedAt");
    }
    v
}

#[tokio::test]
async fn create_answers_201_with_id_and_date_and_applies_ops_on_create() {
    let app = spawn_app().await;
    let response = app
        .request(Key::Master, Method::POST, "/1.1/classes/_Conversation?fetchWhenSave=false")
        .body(r#"{"name":"\u6d4b\u8bd5 conv","unique":true,"m":{"__op":"Add","objects":["a","b"]},"n":{"__op":"Increment","amount":2}}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(StatusCode::CREATED, response.status());
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = response.json().await.expect("json");
    let id = body["objectId"].as_str().expect("id").to_string();
    assert_eq!(24, id.len());
    assert_eq!(
        vec!["objectId", "createdAt"],
        body.as_object().expect("object").keys().collect::<Vec<_>>()
    );
    assert!(is_iso_millis(&body["createdAt"]), "{body}");
    assert_eq!(Some(format!("/1.1/classes/_Conversation/{id}")), location);

    let stored = app.server.inspect().conversation(&id).expect("stored");
    assert_eq!(
        json!({"objectId": id, "name": "测试 conv", "unique": true, "m": ["a", "b"], "n": 2}),
        without_dates(stored.clone())
    );
    assert_eq!(stored["createdAt"], stored["updatedAt"]);
    assert_eq!(body["createdAt"], stored["createdAt"]);
}

#[tokio::test]
async fn unique_create_returns_the_existing_conversation_with_exactly_those_members() {
    let app = spawn_app().await;
    let first = create(
        &app,
        "_Conversation",
        json!({"name": "u", "unique": true, "m": {"__op": "Add", "objects": ["a", "b"]}}),
    )
    .await;
    let (status, again) = app
        .post(
            "/1.1/classes/_Conversation?fetchWhenSave=false",
            json!({"name": "u2", "unique": true, "m": ["b", "a"]}),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    assert_eq!(
        json!({"objectId": first, "name": "u", "unique": true, "m": ["a", "b"]}),
        without_dates(again)
    );
    // A different member set, or no `unique`, creates a new one.
    let other = create(
        &app,
        "_Conversation",
        json!({"unique": true, "m": ["a", "b", "c"]}),
    )
    .await;
    let plain = create(&app, "_Conversation", json!({"m": ["a", "b"]})).await;
    assert!(other != first && plain != first && plain != other);
}

#[tokio::test]
async fn update_applies_every_op_and_answers_updated_at() {
    let app = spawn_app().await;
    let id = create(
        &app,
        "Thing",
        json!({"m": ["a"], "n": 10, "foo": "bar", "tags": ["x", "y", "x"], "bits": 6}),
    )
    .await;
    let path = format!("/1.1/classes/Thing/{id}?fetchWhenSave=false");
    let steps = [
        json!({"m": {"__op": "Add", "objects": ["c", "a"]}}),
        json!({"m": {"__op": "AddUnique", "objects": ["a", "d"]}}),
        json!({"tags": {"__op": "Remove", "objects": ["x"]}}),
        json!({"n": {"__op": "Increment", "amount": 2}}),
        json!({"n": {"__op": "Decrement", "amount": 5}}),
        json!({"new": {"__op": "Increment"}}),
        json!({"foo": {"__op": "Delete"}}),
        json!({"bits": {"__op": "BitOr", "value": 1}}),
        json!({"lm": {"__type": "Date", "iso": "2026-01-02T03:04:05.678Z"}, "attr": {"k": "v"}}),
        json!({"attr.k2": 3}),
    ];
    for step in steps {
        let (status, body) = app.put(&path, step.clone()).await;
        assert_eq!(StatusCode::OK, status, "{step}: {body}");
        assert_eq!(json!(id), body["objectId"]);
        assert!(is_iso_millis(&body["updatedAt"]), "{body}");
        assert_eq!(2, body.as_object().map_or(0, |m| m.len()), "{body}");
    }
    let stored = app.server.inspect().object("Thing", &id).expect("stored");
    assert_eq!(
        json!({"objectId": id, "m": ["a", "c", "a", "d"], "n": 7, "tags": ["y"], "bits": 7, "new": 1,
               "lm": {"__type": "Date", "iso": "2026-01-02T03:04:05.678Z"}, "attr": {"k": "v", "k2": 3}}),
        without_dates(stored)
    );
}

#[tokio::test]
async fn conditional_update_with_an_unmet_where_answers_305_and_changes_nothing() {
    let app = spawn_app().await;
    let id = create(&app, "_Conversation", json!({"name": "x"})).await;
    // The SDK leaves `:` unencoded in `where`.
    let (status, body) = app
        .put(
            &format!(
                "/1.1/classes/_Conversation/{id}?fetchWhenSave=true&where=%7B%22name%22:%22y%22%7D"
            ),
            json!({"name": "z"}),
        )
        .await;
    assert_eq!(
        (
            StatusCode::BAD_REQUEST,
            json!({"code": 305, "error": "No effect on updating/deleting a document."})
        ),
        (status, body)
    );
    assert_eq!(
        json!("x"),
        app.server.inspect().conversation(&id).expect("stored")["name"]
    );

    let (status, body) = app
        .put(
            &format!(
                "/1.1/classes/_Conversation/{id}?fetchWhenSave=true&where=%7B%22name%22:%22x%22%7D"
            ),
            json!({"name": "z"}),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    assert_eq!(json!({"objectId": id, "name": "z"}), without_dates(body));
}

#[tokio::test]
async fn get_answers_the_object_or_an_empty_object_and_delete_removes_it() {
    let app = spawn_app().await;
    let id = create(
        &app,
        "_Conversation",
        json!({"name": "n", "attr": {"k": 1}}),
    )
    .await;
    let (status, got) = app.get(&format!("/1.1/classes/_Conversation/{id}")).await;
    assert_eq!(StatusCode::OK, status);
    assert_eq!(
        json!({"objectId": id, "name": "n", "attr": {"k": 1}}),
        without_dates(got.clone())
    );
    assert!(is_iso_millis(&got["createdAt"]) && is_iso_millis(&got["updatedAt"]));

    assert_eq!(
        (StatusCode::OK, json!({})),
        app.get("/1.1/classes/_Conversation/000000000000000000000000")
            .await
    );
    assert_eq!(
        (StatusCode::OK, json!({})),
        app.delete(&format!("/1.1/classes/_Conversation/{id}"))
            .await
    );
    assert_eq!(
        (StatusCode::OK, json!({})),
        app.get(&format!("/1.1/classes/_Conversation/{id}")).await
    );
    assert_eq!(None, app.server.inspect().conversation(&id));
    // Deleting again is harmless (a retried delete).
    assert_eq!(
        (StatusCode::OK, json!({})),
        app.delete(&format!("/1.1/classes/_Conversation/{id}"))
            .await
    );
}

#[tokio::test]
async fn a_class_that_never_had_an_object_is_not_found() {
    let app = spawn_app().await;
    let (status, body) = app.get("/1.1/classes/Nothing").await;
    assert_eq!(
        (
            StatusCode::NOT_FOUND,
            json!({"code": 101, "error": "Class or object doesn't exists: Nothing."})
        ),
        (status, body)
    );
    let (status, body) = app.post("/1.1/classes/bad-name", json!({})).await;
    assert_eq!(
        (
            StatusCode::BAD_REQUEST,
            json!({"code": 103, "error": "Invalid class name: bad-name."})
        ),
        (status, body)
    );
    let (status, body) = app.post("/1.1/classes/Thing", json!({"1bad": 1})).await;
    assert_eq!(
        (
            StatusCode::BAD_REQUEST,
            json!({"code": 105, "error": "Invalid key name: 1bad."})
        ),
        (status, body)
    );
    let (status, body) = app
        .call(Key::Master, Method::POST, "/1.1/classes/Thing", None)
        .await;
    assert_eq!(
        StatusCode::CREATED,
        status,
        "an empty body is an empty object: {body}"
    );
    let response = app
        .request(Key::Master, Method::POST, "/1.1/classes/Thing")
        .body("[1]")
        .send()
        .await
        .expect("sent");
    assert_eq!(StatusCode::BAD_REQUEST, response.status());
    assert_eq!(
        json!({"code": 107, "error": "Malformed json object. A json dictionary is expected."}),
        response.json::<Value>().await.expect("json")
    );
}

async fn seed(app: &TestApp) -> Vec<String> {
    let docs = [
        json!({"name": "alpha", "n": 1, "m": ["a", "b"], "tr": false, "attr": {"level": 1}}),
        json!({"name": "beta", "n": 2, "m": ["b", "c"], "sys": true}),
        json!({"name": "gamma", "n": 3, "m": ["c"], "tr": true, "when": {"__type": "Date", "iso": "2026-01-01T00:00:00.000Z"}}),
        json!({"name": "delta", "n": 4, "when": {"__type": "Date", "iso": "2026-03-01T00:00:00.000Z"}, "attr": {"level": 2}}),
    ];
    let mut ids = Vec::new();
    for doc in docs {
        ids.push(create(app, "_Conversation", doc).await);
    }
    ids
}

async fn names(app: &TestApp, query: &str) -> Vec<String> {
    let (status, body) = app
        .get(&format!("/1.1/classes/_Conversation?{query}"))
        .await;
    assert_eq!(StatusCode::OK, status, "{query}: {body}");
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["name"].as_str().unwrap_or("?").to_string())
        .collect()
}

fn enc(where_: Value) -> String {
    url::form_urlencoded::byte_serialize(where_.to_string().as_bytes()).collect()
}

#[tokio::test]
async fn every_query_operator_selects_the_expected_objects() {
    let app = spawn_app().await;
    seed(&app).await;
    let date = |iso: &str| json!({"__type": "Date", "iso": iso});
    let cases = [
        (json!({"name": "beta"}), vec!["beta"]),
        (json!({"m": "b"}), vec!["alpha", "beta"]),
        (
            json!({"name": {"$ne": "beta"}}),
            vec!["alpha", "gamma", "delta"],
        ),
        (
            json!({"name": {"$in": ["alpha", "delta", "zzz"]}}),
            vec!["alpha", "delta"],
        ),
        (json!({"m": {"$in": ["a"]}}), vec!["alpha"]),
        (
            json!({"name": {"$nin": ["alpha", "delta"]}}),
            vec!["beta", "gamma"],
        ),
        (json!({"m": {"$all": ["b", "c"]}}), vec!["beta"]),
        (json!({"sys": {"$exists": true}}), vec!["beta"]),
        (json!({"m": {"$exists": false}}), vec!["delta"]),
        (json!({"n": {"$gt": 2}}), vec!["gamma", "delta"]),
        (json!({"n": {"$gte": 2, "$lt": 4}}), vec!["beta", "gamma"]),
        (json!({"n": {"$lte": 1}}), vec!["alpha"]),
        (
            json!({"when": {"$gt": date("2026-02-01T00:00:00.000Z")}}),
            vec!["delta"],
        ),
        (
            json!({"when": {"$lte": date("2026-01-01T00:00:00.000Z")}}),
            vec!["gamma"],
        ),
        (
            json!({"createdAt": {"$gt": date("2000-01-01T00:00:00.000Z")}, "n": 1}),
            vec!["alpha"],
        ),
        (
            json!({"updatedAt": {"$lt": date("2000-01-01T00:00:00.000Z")}}),
            vec![],
        ),
        (
            json!({"$or": [{"tr": true}, {"sys": true}]}),
            vec!["beta", "gamma"],
        ),
        (
            json!({"$and": [{"n": {"$gt": 1}}, {"m": "c"}]}),
            vec!["beta", "gamma"],
        ),
        (json!({"attr.level": 2}), vec!["delta"]),
    ];
    for (where_, expected) in cases {
        assert_eq!(
            expected,
            names(&app, &format!("where={}", enc(where_.clone()))).await,
            "where {where_}"
        );
    }
    let (status, body) = app
        .get(&format!(
            "/1.1/classes/_Conversation?where={}",
            enc(json!({"n": {"$near": 1}}))
        ))
        .await;
    assert_eq!(
        (
            StatusCode::BAD_REQUEST,
            json!({"code": 102, "error": "Unsupported query operator $near."})
        ),
        (status, body)
    );
}

#[tokio::test]
async fn order_limit_skip_keys_and_count_shape_the_results() {
    let app = spawn_app().await;
    seed(&app).await;
    assert_eq!(
        vec!["delta", "gamma", "beta", "alpha"],
        names(&app, "order=-n").await
    );
    assert_eq!(
        vec!["alpha", "beta", "delta", "gamma"],
        names(&app, "order=name").await
    );
    // Several keys: `tr` ascending puts the missing ones first, then `-name` breaks ties.
    assert_eq!(
        vec!["delta", "beta", "alpha", "gamma"],
        names(&app, "order=tr%2C-name").await
    );
    assert_eq!(
        vec!["beta", "gamma"],
        names(&app, "order=n&skip=1&limit=2").await
    );
    assert_eq!(
        4,
        names(&app, "limit=5000").await.len(),
        "an out-of-range limit falls back to 100"
    );

    let (_, body) = app
        .get(&format!(
            "/1.1/classes/_Conversation?where={}&keys=name%2Cm&limit=1&order=n",
            enc(json!({"n": {"$gte": 2}}))
        ))
        .await;
    let first = &body["results"][0];
    let mut keys: Vec<&String> = first.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(
        vec!["createdAt", "m", "name", "objectId", "updatedAt"],
        keys
    );
    assert_eq!(json!("beta"), first["name"]);

    let (_, counted) = app
        .get(&format!(
            "/1.1/classes/_Conversation?where={}&limit=0&count=1",
            enc(json!({"n": {"$gt": 1}}))
        ))
        .await;
    assert_eq!(json!({"results": [], "count": 3}), counted);
}

#[tokio::test]
async fn acl_is_stored_and_enforced_without_the_master_key() {
    let app = spawn_app().await;
    let public = create(&app, "Note", json!({"t": "public"})).await;
    let readonly = create(
        &app,
        "Note",
        json!({"t": "readonly", "ACL": {"*": {"read": true}, "u1": {"write": true}}}),
    )
    .await;
    let hidden = create(
        &app,
        "Note",
        json!({"t": "hidden", "ACL": {"u1": {"read": true, "write": true}}}),
    )
    .await;

    let stored = app
        .server
        .inspect()
        .object("Note", &readonly)
        .expect("stored");
    assert_eq!(
        json!({"*": {"read": true}, "u1": {"write": true}}),
        stored["ACL"]
    );

    let (_, listed) = app
        .call(
            Key::App,
            Method::GET,
            "/1.1/classes/Note?order=createdAt",
            None,
        )
        .await;
    let seen: Vec<&str> = listed["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["t"].as_str())
        .collect();
    assert_eq!(vec!["public", "readonly"], seen);
    assert_eq!(
        (StatusCode::OK, json!({})),
        app.call(
            Key::App,
            Method::GET,
            &format!("/1.1/classes/Note/{hidden}"),
            None
        )
        .await
    );

    let denied = json!({"code": 403, "error": "Forbidden to write by the object's ACL."});
    assert_eq!(
        (StatusCode::FORBIDDEN, denied),
        app.call(
            Key::App,
            Method::PUT,
            &format!("/1.1/classes/Note/{readonly}"),
            Some(json!({"t": "x"}))
        )
        .await
    );
    let (status, _) = app
        .call(
            Key::App,
            Method::PUT,
            &format!("/1.1/classes/Note/{public}"),
            Some(json!({"t": "changed"})),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    let (status, _) = app
        .call(
            Key::App,
            Method::DELETE,
            &format!("/1.1/classes/Note/{hidden}"),
            Some(json!({})),
        )
        .await;
    assert_eq!(StatusCode::FORBIDDEN, status);
    // The master key bypasses ACLs; returnACL shows them.
    let (_, got) = app
        .get(&format!("/1.1/classes/Note/{hidden}?returnACL=true"))
        .await;
    assert_eq!(json!({"u1": {"read": true, "write": true}}), got["ACL"]);
    assert_eq!(
        json!("changed"),
        app.server
            .inspect()
            .object("Note", &public)
            .expect("stored")["t"]
    );
}

/// The `name`s a query of `class` with `where_` answers, sorted, as the app key alone.
async fn names_where(app: &TestApp, class: &str, where_: Value) -> (StatusCode, Vec<String>) {
    let path = format!(
        "/1.1/classes/{class}?where={}",
        urlencode(&where_.to_string())
    );
    let (status, body) = app.call(Key::App, Method::GET, &path, None).await;
    let mut out: Vec<String> = body["results"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|o| o["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    (status, out)
}

#[tokio::test]
async fn subqueries_select_by_the_answer_of_another_query_as_the_same_caller() {
    // Arrange: teams in cities, players in teams; one team hidden from the public by its ACL
    let app = spawn_app().await;
    let red = create(
        &app,
        "Team",
        json!({"name": "red", "city": "Paris", "rank": 1}),
    )
    .await;
    let blue = create(
        &app,
        "Team",
        json!({"name": "blue", "city": "Lyon", "rank": 2}),
    )
    .await;
    let hidden = create(
        &app,
        "Team",
        json!({"name": "hidden", "city": "Nice", "rank": 1, "ACL": {}}),
    )
    .await;
    let team = |id: &str| json!({"__type": "Pointer", "className": "Team", "objectId": id});
    create(
        &app,
        "Player",
        json!({"name": "ana", "team": team(&red), "home": "Paris"}),
    )
    .await;
    create(
        &app,
        "Player",
        json!({"name": "bob", "team": team(&blue), "home": "Nice"}),
    )
    .await;
    create(
        &app,
        "Player",
        json!({"name": "eve", "team": team(&hidden), "home": "Lyon"}),
    )
    .await;
    create(&app, "Player", json!({"name": "kim", "home": "Rome"})).await;
    let first = json!({"className": "Team", "where": {"rank": 1}});

    // Act and assert
    assert_eq!(
        (StatusCode::OK, vec!["ana".to_string()]),
        names_where(&app, "Player", json!({"team": {"$inQuery": first}})).await,
        "the hidden team is not the app key's to see, so eve is not in"
    );
    assert_eq!(
        (
            StatusCode::OK,
            vec!["bob".to_string(), "eve".to_string(), "kim".to_string()]
        ),
        names_where(&app, "Player", json!({"team": {"$notInQuery": first}})).await
    );
    let cities = json!({"query": {"className": "Team", "where": {}}, "key": "city"});
    assert_eq!(
        (StatusCode::OK, vec!["ana".to_string(), "eve".to_string()]),
        names_where(&app, "Player", json!({"home": {"$select": cities}})).await
    );
    assert_eq!(
        (StatusCode::OK, vec!["bob".to_string(), "kim".to_string()]),
        names_where(&app, "Player", json!({"home": {"$dontSelect": cities}})).await
    );
    assert_eq!(
        (StatusCode::OK, vec!["ana".to_string()]),
        names_where(
            &app,
            "Player",
            json!({"$or": [{"team": {"$inQuery": first}}, {"name": "nobody"}]})
        )
        .await
    );
    let (status, _) = names_where(
        &app,
        "Player",
        json!({"home": {"$select": {"key": "city"}}}),
    )
    .await;
    assert_eq!(StatusCode::BAD_REQUEST, status);
}

#[tokio::test]
async fn built_in_classes_exist_empty_and_return_acl_shows_the_default_acl() {
    let app = spawn_app().await;
    for class in ["_User", "_Role", "_Installation", "_Follower", "_Followee"] {
        let (status, body) = app.get(&format!("/1.1/classes/{class}?count=1")).await;
        assert_eq!(
            (StatusCode::OK, json!({"results": [], "count": 0})),
            (status, body),
            "{class}"
        );
    }
    let id = create(&app, "Thing", json!({"name": "open", "size": 3})).await;
    let (_, found) = app.get("/1.1/classes/Thing?returnACL=true").await;
    assert_eq!(
        json!({"*": {"read": true, "write": true}}),
        found["results"][0]["ACL"]
    );
    let (_, got) = app.get(&format!("/1.1/classes/Thing/{id}?keys=size")).await;
    let mut keys: Vec<&String> = got.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(vec!["createdAt", "objectId", "size", "updatedAt"], keys);
    // Scan: `where` filters the page
    create(&app, "Thing", json!({"name": "other", "size": 4})).await;
    let (status, scanned) = app
        .get(&format!(
            "/1.1/scan/classes/Thing?where={}",
            urlencode(&json!({"size": 4}).to_string())
        ))
        .await;
    assert_eq!(StatusCode::OK, status);
    assert_eq!(1, scanned["results"].as_array().expect("results").len());
    assert_eq!("other", scanned["results"][0]["name"]);
}
