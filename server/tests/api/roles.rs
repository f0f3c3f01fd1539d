//! Roles and relations (issue 24): `_Role` (at `/1.1/roles` and `/1.1/classes/_Role`) with its `users` and
//! `roles` relations changed by `AddRelation`/`RemoveRelation`, queried with `$relatedTo` and by pointer, and ACL
//! entries `role:Name` granting the role's users and the users of its child roles.

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, urlencode, Key, TestApp};

fn pointer(class: &str, id: &str) -> Value {
    json!({"__type": "Pointer", "className": class, "objectId": id})
}

async fn get_as(app: &TestApp, token: &str, path: &str) -> Value {
    app.request(Key::App, Method::GET, path)
        .header("X-LC-Session", token)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn a_role_acl_entry_grants_the_roles_users_and_the_users_of_its_child_roles() {
    // Arrange
    let app = spawn_app().await;
    let (ana, ana_token) = app.user("ana").await;
    let (bob, bob_token) = app.user("bob").await;
    let (_, carl_token) = app.user("carl").await;
    let public_read = json!({"*": {"read": true}});
    let (status, admin) = app
        .post(
            "/1.1/roles",
            json!({"name": "admin", "ACL": public_read, "users": {"__op": "AddRelation", "objects": [pointer("_User", &ana)]}}),
        )
        .await;
    assert_eq!(StatusCode::CREATED, status, "{admin}");
    let admin_id = admin["objectId"].as_str().expect("id").to_string();
    let (_, moderator) = app
        .post(
            "/1.1/classes/_Role",
            json!({"name": "moderator", "ACL": public_read,
                   "users": {"__op": "AddRelation", "objects": [pointer("_User", &bob)]},
                   "roles": {"__op": "AddRelation", "objects": [pointer("_Role", &admin_id)]}}),
        )
        .await;
    let moderator_id = moderator["objectId"].as_str().expect("id").to_string();
    let (_, post) = app
        .post(
            "/1.1/classes/Post",
            json!({"text": "moderators only", "ACL": {"role:moderator": {"read": true, "write": true}}}),
        )
        .await;
    let path = format!(
        "/1.1/classes/Post/{}",
        post["objectId"].as_str().expect("id")
    );

    // Act
    let by_bob = get_as(&app, &bob_token, &path).await;
    let by_ana = get_as(&app, &ana_token, &path).await;
    let by_carl = get_as(&app, &carl_token, &path).await;
    let (_, role) = app.get(&format!("/1.1/roles/{admin_id}")).await;
    let where_users_of_admin =
        json!({"$relatedTo": {"object": pointer("_Role", &admin_id), "key": "users"}});
    let (_, users_of_admin) = app
        .get(&format!(
            "/1.1/users?where={}",
            urlencode(&where_users_of_admin.to_string())
        ))
        .await;
    let (_, roles_of_bob) = app
        .get(&format!(
            "/1.1/classes/_Role?where={}",
            urlencode(&json!({"users": pointer("_User", &bob)}).to_string())
        ))
        .await;
    app.put(
        &format!("/1.1/roles/{admin_id}"),
        json!({"users": {"__op": "RemoveRelation", "objects": [pointer("_User", &ana)]}}),
    )
    .await;
    let ana_after = get_as(&app, &ana_token, &path).await;

    // Assert
    assert_eq!(
        json!("moderators only"),
        by_bob["text"],
        "a user of the role"
    );
    assert_eq!(
        json!("moderators only"),
        by_ana["text"],
        "a user of a child role"
    );
    assert_eq!(json!({}), by_carl, "nobody else");
    assert_eq!(
        json!({"__type": "Relation", "className": "_User"}),
        role["users"]
    );
    let names: Vec<&str> = users_of_admin["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(vec!["ana"], names);
    let roles: Vec<&str> = roles_of_bob["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["objectId"].as_str())
        .collect();
    assert_eq!(vec![moderator_id.as_str()], roles);
    assert_eq!(
        json!({}),
        ana_after,
        "removed from the child role, ana loses the right"
    );
}

#[tokio::test]
async fn a_role_needs_an_acl_and_a_plain_name() {
    let app = spawn_app().await;
    let (status, no_acl) = app.post("/1.1/roles", json!({"name": "ops"})).await;
    assert_eq!(
        (
            StatusCode::BAD_REQUEST,
            json!({"code": 1, "error": "Role ACL is required."})
        ),
        (status, no_acl)
    );
    let (status, bad_name) = app
        .post(
            "/1.1/roles",
            json!({"name": "a:b", "ACL": {"*": {"read": true}}}),
        )
        .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(139)),
        (status, bad_name["code"].clone())
    );
    let (status, mixed) = app
        .post(
            "/1.1/roles",
            json!({"name": "ok", "ACL": {}, "users": {"__op": "AddRelation", "objects": [pointer("_User", "a"), pointer("Post", "b")]}}),
        )
        .await;
    assert_eq!(StatusCode::BAD_REQUEST, status, "{mixed}");
}
