//! CQL (`GET /1.1/cloudQuery`): translated into the ordinary find, so it answers what the same REST query does,
//! for the same caller.

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, urlencode as encode, Key, TestApp};

async fn cql(app: &TestApp, key: Key, cql: &str, pvalues: Option<Value>) -> (StatusCode, Value) {
    let mut path = format!("/1.1/cloudQuery?cql={}", encode(cql));
    if let Some(p) = pvalues {
        path.push_str(&format!("&pvalues={}", encode(&p.to_string())));
    }
    app.call(key, Method::GET, &path, None).await
}

fn scores(body: &Value) -> Vec<i64> {
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|o| o["score"].as_i64().expect("score"))
        .collect()
}

/// The official Python SDK's `test_cloud_query`, and the forms LeanCloud's guide shows.
#[tokio::test]
async fn cql_queries_answer_what_the_equivalent_find_answers_for_the_same_caller() {
    let app = spawn_app().await;
    for score in 0..15 {
        let acl = if score == 14 {
            json!({})
        } else {
            json!({"*": {"read": true}})
        };
        app.post(
            "/1.1/classes/GameScore",
            json!({"score": score, "name": format!("p{}", score % 3), "ACL": acl}),
        )
        .await;
    }

    let (status, body) = cql(
        &app,
        Key::App,
        "select count(*), * from GameScore where score<11",
        // As the Python SDK sends one list: encoded twice.
        Some(json!(json!(["score"]).to_string())),
    )
    .await;
    assert_eq!(StatusCode::OK, status, "{body}");
    assert_eq!(
        (json!(11), json!("GameScore")),
        (body["count"].clone(), body["className"].clone())
    );
    assert_eq!(11, scores(&body).len());

    let (_, body) = cql(
        &app,
        Key::App,
        "select score from GameScore where name = ? and score >= ? order by score desc limit 1, 2",
        Some(json!(["p1", 4])),
    )
    .await;
    assert_eq!(vec![10, 7], scores(&body));
    assert_eq!(None, body["results"][0].get("name"), "keys: only score");

    let (_, body) = cql(
        &app,
        Key::App,
        "select * from GameScore where score in (1, 2, 14) or name like 'p%' and score > 12 order by score",
        None,
    )
    .await;
    assert_eq!(
        vec![1, 2, 13],
        scores(&body),
        "14 is not readable with the app key"
    );
    let (_, body) = cql(
        &app,
        Key::Master,
        "select count(*) from GameScore where score > 12",
        None,
    )
    .await;
    assert_eq!(
        json!({"results": [], "count": 2, "className": "GameScore"}),
        body,
        "the master key reads 14 too; count alone answers no objects"
    );

    app.post(
        "/1.1/classes/GameScore",
        json!({"score": 20, "bonus": 1, "ACL": {"*": {"read": true}}}),
    )
    .await;
    let (_, body) = cql(
        &app,
        Key::App,
        "select * from GameScore where bonus is exists",
        None,
    )
    .await;
    assert_eq!(vec![20], scores(&body));
    let (_, body) = cql(
        &app,
        Key::App,
        "select count(*) from GameScore where bonus is not exists and score > 11",
        None,
    )
    .await;
    assert_eq!(
        json!(2),
        body["count"],
        "12 and 13 (14 is not readable): {body}"
    );

    let (status, body) = cql(
        &app,
        Key::App,
        "select * from GameScore where score <",
        None,
    )
    .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(300)),
        (status, body["code"].clone()),
        "{body}"
    );
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("Expected a value at 37")),
        "{body}"
    );
    let (status, body) = cql(&app, Key::App, "select * from Nope", None).await;
    assert_eq!(
        (StatusCode::NOT_FOUND, json!(101)),
        (status, body["code"].clone()),
        "{body}"
    );
}
