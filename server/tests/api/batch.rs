//! `POST /1.1/batch` as the SDKs' `saveAll`/`destroyAll` send it: one answer per request, in order, each as the
//! request would have been answered alone (with the batch's credentials and session).

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{spawn_app, Key};

#[tokio::test]
async fn a_batch_answers_each_request_in_order_as_if_it_came_alone() {
    // Arrange
    let app = spawn_app().await;
    let (_, existing) = app.post("/1.1/classes/Score", json!({"points": 1})).await;
    let (_, locked) = app
        .post(
            "/1.1/classes/Score",
            json!({"points": 9, "ACL": {"*": {"read": true}}}),
        )
        .await;
    let id = existing["objectId"].as_str().expect("id");
    let locked_id = locked["objectId"].as_str().expect("id");

    // Act
    let (status, answers) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/batch",
            Some(json!({"requests": [
                {"method": "POST", "path": "/1.1/classes/Score", "body": {"points": 2}},
                {"method": "PUT", "path": format!("/1.1/classes/Score/{id}"), "body": {"points": {"__op": "Increment", "amount": 10}}},
                {"method": "PUT", "path": format!("/1.1/classes/Score/{locked_id}"), "body": {"points": 0}},
                {"method": "GET", "path": format!("/1.1/classes/Score/{id}")},
                {"method": "DELETE", "path": format!("/1.1/classes/Score/{id}")},
                {"method": "POST", "path": "/1.1/batch", "body": {"requests": []}},
                {"method": "PATCH", "path": "/1.1/classes/Score"}
            ]})),
        )
        .await;

    // Assert
    assert_eq!(StatusCode::OK, status);
    let answers = answers.as_array().expect("an array").clone();
    assert_eq!(7, answers.len());
    assert!(
        answers[0]["success"]["objectId"].is_string(),
        "{}",
        answers[0]
    );
    assert!(
        answers[1]["success"]["updatedAt"].is_string(),
        "{}",
        answers[1]
    );
    assert_eq!(
        json!({"error": {"code": 403, "error": "Forbidden to write by the object's ACL."}}),
        answers[2]
    );
    assert_eq!(
        json!(11),
        answers[3]["success"]["points"],
        "the increment ran first"
    );
    assert_eq!(json!({"success": {}}), answers[4]);
    assert_eq!(json!(1), answers[5]["error"]["code"], "no batch in a batch");
    assert_eq!(json!(1), answers[6]["error"]["code"]);
    let (_, gone) = app.get(&format!("/1.1/classes/Score/{id}")).await;
    assert_eq!(json!({}), gone);
    let created = answers[0]["success"]["objectId"].as_str().expect("id");
    let (_, kept) = app.get(&format!("/1.1/classes/Score/{created}")).await;
    assert_eq!(json!(2), kept["points"]);

    // A batch without valid keys is refused whole.
    let refused = app
        .client
        .post(app.url("/1.1/batch"))
        .header("X-LC-Id", leancloud_server::DEV_APP_ID)
        .header("X-LC-Key", "wrong")
        .body(json!({"requests": []}).to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(StatusCode::UNAUTHORIZED, refused.status());
    let (status, too_many) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/batch",
            Some(json!({"requests": vec![json!({"method": "GET", "path": "/1.1/classes/Score"}); 101]})),
        )
        .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(1)),
        (status, too_many["code"].clone())
    );
}
