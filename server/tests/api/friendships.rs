//! The follow graph (`POST|DELETE /1.1/users/{id}/friendship/{target}`, `_Follower`/`_Followee`, the followers
//! and followees lists) and `include` on queries and gets, which the lists are read with.

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, urlencode, TestApp};

fn pointer(class: &str, id: &str) -> Value {
    json!({"__type": "Pointer", "className": class, "objectId": id})
}

/// The `(user, other)` ids of the rows of `class` (`_Follower`: other is `follower`; `_Followee`: `followee`).
async fn edges(app: &TestApp, class: &str, other: &str) -> Vec<(String, String)> {
    let (status, found) = app.get(&format!("/1.1/classes/{class}")).await;
    assert_eq!(StatusCode::OK, status, "{found}");
    let mut out: Vec<(String, String)> = found["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["user"]["objectId"].as_str().expect("user").to_string(),
                r[other]["objectId"].as_str().expect("other").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_follow_stores_one_edge_each_way_once_and_an_unfollow_removes_both() {
    // Arrange
    let app = spawn_app().await;
    let (ana, ana_token) = app.user("ana").await;
    let (bob, bob_token) = app.user("bob").await;
    let path = format!("/1.1/users/{ana}/friendship/{bob}");

    // Act: ana follows bob with an attribute, twice; bob tries to make ana unfollow
    let first = app
        .call_as(
            Some(&ana_token),
            Method::POST,
            &path,
            Some(json!({"group": "close"})),
        )
        .await;
    let again = app
        .call_as(Some(&ana_token), Method::POST, &path, None)
        .await;
    let by_other = app
        .call_as(Some(&bob_token), Method::DELETE, &path, None)
        .await;
    let app_key_alone = app.call_as(None, Method::POST, &path, None).await;

    // Assert
    assert_eq!((StatusCode::OK, json!({})), first);
    assert_eq!(StatusCode::BAD_REQUEST, again.0);
    assert_eq!(137, again.1["code"], "{}", again.1);
    assert_eq!(StatusCode::FORBIDDEN, by_other.0);
    assert_eq!(206, by_other.1["code"]);
    assert_eq!(StatusCode::FORBIDDEN, app_key_alone.0);
    assert_eq!(
        vec![(bob.clone(), ana.clone())],
        edges(&app, "_Follower", "follower").await
    );
    assert_eq!(
        vec![(ana.clone(), bob.clone())],
        edges(&app, "_Followee", "followee").await
    );
    let (_, rows) = app.get("/1.1/classes/_Follower").await;
    assert_eq!("close", rows["results"][0]["group"]);

    // Act: the follower query of the Python SDK, with the app key alone (the graph is public)
    let where_ = json!({"user": pointer("_User", &bob)}).to_string();
    let (status, found) = app
        .call_as(
            None,
            Method::GET,
            &format!(
                "/1.1/classes/_Follower?where={}&limit=1",
                urlencode(&where_)
            ),
            None,
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{found}");
    assert_eq!(json!(ana), found["results"][0]["follower"]["objectId"]);

    // Act: ana unfollows bob
    let gone = app
        .call_as(Some(&ana_token), Method::DELETE, &path, None)
        .await;
    assert_eq!((StatusCode::OK, json!({})), gone);
    assert_eq!(
        Vec::<(String, String)>::new(),
        edges(&app, "_Follower", "follower").await
    );
    assert_eq!(
        Vec::<(String, String)>::new(),
        edges(&app, "_Followee", "followee").await
    );
    // … and may follow again
    let back = app
        .call_as(Some(&ana_token), Method::POST, &path, None)
        .await;
    assert_eq!((StatusCode::OK, json!({})), back);
}

#[tokio::test]
async fn following_oneself_or_a_missing_user_is_refused() {
    let app = spawn_app().await;
    let (ana, ana_token) = app.user("ana").await;
    let own = app
        .call_as(
            Some(&ana_token),
            Method::POST,
            &format!("/1.1/users/{ana}/friendship/{ana}"),
            None,
        )
        .await;
    assert_eq!(StatusCode::BAD_REQUEST, own.0);
    assert_eq!(107, own.1["code"]);
    let missing = app
        .call_as(
            Some(&ana_token),
            Method::POST,
            &format!("/1.1/users/{ana}/friendship/000000000000000000000000"),
            None,
        )
        .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(211)),
        (missing.0, missing.1["code"].clone())
    );
    let bad_body = app
        .request(
            crate::helpers::Key::App,
            Method::POST,
            &format!("/1.1/users/{ana}/friendship/{ana}"),
        )
        .header("X-LC-Session", &ana_token)
        .body("[1]")
        .send()
        .await
        .expect("sent");
    assert_eq!(StatusCode::BAD_REQUEST, bad_body.status());
}

#[tokio::test]
async fn the_lists_answer_followers_and_followees_whole_without_private_fields() {
    // Arrange: bob and carl follow ana; ana follows bob
    let app = spawn_app().await;
    let (ana, ana_token) = app.user("ana").await;
    let (bob, bob_token) = app.user("bob").await;
    let (carl, carl_token) = app.user("carl").await;
    for (who, token, target) in [
        (&bob, &bob_token, &ana),
        (&carl, &carl_token, &ana),
        (&ana, &ana_token, &bob),
    ] {
        let (status, _) = app
            .call_as(
                Some(token),
                Method::POST,
                &format!("/1.1/users/{who}/friendship/{target}"),
                None,
            )
            .await;
        assert_eq!(StatusCode::OK, status);
    }

    // Act
    let (status, followers) = app
        .call_as(
            Some(&ana_token),
            Method::GET,
            &format!("/1.1/users/{ana}/followers?include=follower&order=createdAt"),
            None,
        )
        .await;
    let (_, both) = app
        .call_as(
            Some(&ana_token),
            Method::GET,
            &format!("/1.1/users/{ana}/followersAndFollowees?include=follower,followee&count=1"),
            None,
        )
        .await;
    let (_, followees) = app
        .call_as(
            None,
            Method::GET,
            &format!("/1.1/users/{carl}/followees"),
            None,
        )
        .await;

    // Assert
    assert_eq!(StatusCode::OK, status, "{followers}");
    let names: Vec<&str> = followers["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["follower"]["username"].as_str().expect("a whole user"))
        .collect();
    assert_eq!(vec!["bob", "carl"], names);
    for r in followers["results"].as_array().expect("results") {
        assert_eq!("Object", r["follower"]["__type"]);
        assert_eq!("_User", r["follower"]["className"]);
        for private in ["password", "salt", "sessionToken"] {
            assert!(
                r["follower"].get(private).is_none(),
                "{private} served: {r}"
            );
        }
    }
    assert_eq!(json!(2), both["followers_count"]);
    assert_eq!(json!(1), both["followees_count"]);
    assert_eq!("bob", both["followees"][0]["followee"]["username"]);
    assert_eq!(json!(ana), followees["results"][0]["followee"]["objectId"]);
    assert_eq!(1, followees["results"].as_array().expect("results").len());
}

#[tokio::test]
async fn include_answers_readable_pointers_whole_at_every_level_and_leaves_the_rest() {
    // Arrange: a comment → post → author chain; a secret post only ana may read
    let app = spawn_app().await;
    let (ana, ana_token) = app.user("ana").await;
    let (_, bob_token) = app.user("bob").await;
    let (_, author) = app
        .post("/1.1/classes/Author", json!({"name": "Lu Xun"}))
        .await;
    let author = author["objectId"].as_str().expect("id").to_string();
    let (_, post) = app
        .post(
            "/1.1/classes/Post",
            json!({"title": "Call to Arms", "author": pointer("Author", &author)}),
        )
        .await;
    let post = post["objectId"].as_str().expect("id").to_string();
    let mut acl = serde_json::Map::new();
    acl.insert(ana.clone(), json!({"read": true, "write": true}));
    let (_, secret) = app
        .post("/1.1/classes/Post", json!({"title": "Diary", "ACL": acl}))
        .await;
    let secret = secret["objectId"].as_str().expect("id").to_string();
    let (_, comment) = app
        .post(
            "/1.1/classes/Comment",
            json!({"text": "yes", "posts": [pointer("Post", &post), pointer("Post", &secret)], "on": pointer("Post", &post)}),
        )
        .await;
    let comment = comment["objectId"].as_str().expect("id").to_string();

    // Act
    let (status, as_ana) = app
        .call_as(
            Some(&ana_token),
            Method::GET,
            "/1.1/classes/Comment?include=on.author,posts",
            None,
        )
        .await;
    let (_, as_bob) = app
        .call_as(
            Some(&bob_token),
            Method::GET,
            &format!("/1.1/classes/Comment/{comment}?include=posts"),
            None,
        )
        .await;
    let (bad_status, bad) = app
        .call_as(
            None,
            Method::GET,
            "/1.1/classes/Comment?include=a.b.c.d.e.f",
            None,
        )
        .await;

    // Assert
    assert_eq!(StatusCode::OK, status, "{as_ana}");
    let c = &as_ana["results"][0];
    assert_eq!("Object", c["on"]["__type"]);
    assert_eq!("Post", c["on"]["className"]);
    assert_eq!("Call to Arms", c["on"]["title"]);
    assert_eq!("Lu Xun", c["on"]["author"]["name"]);
    assert_eq!("Author", c["on"]["author"]["className"]);
    assert_eq!("Diary", c["posts"][1]["title"]);
    // bob may not read the secret post: it stays a pointer
    assert_eq!("Call to Arms", as_bob["posts"][0]["title"]);
    assert_eq!(pointer("Post", &secret), as_bob["posts"][1]);
    assert_eq!(StatusCode::BAD_REQUEST, bad_status);
    assert_eq!(102, bad["code"]);
}

/// Unfollowing a user that has since been deleted removes the follower's edges (it answered 211 and left them).
#[tokio::test]
async fn a_user_unfollows_a_deleted_user_and_its_edges_are_gone() {
    let app = spawn_app().await;
    let (ana, ana_token) = app.user("ana").await;
    let (bob, _) = app.user("bob").await;
    let path = format!("/1.1/users/{ana}/friendship/{bob}");
    let followed = app
        .call_as(Some(&ana_token), Method::POST, &path, None)
        .await;
    assert_eq!(StatusCode::OK, followed.0, "{}", followed.1);
    let (status, body) = app
        .call(
            crate::helpers::Key::Master,
            Method::DELETE,
            &format!("/1.1/users/{bob}"),
            None,
        )
        .await;
    assert_eq!(StatusCode::OK, status, "{body}");
    assert_eq!(
        vec![(ana.clone(), bob.clone())],
        edges(&app, "_Followee", "followee").await
    );

    let unfollowed = app
        .call_as(Some(&ana_token), Method::DELETE, &path, None)
        .await;
    assert_eq!((StatusCode::OK, json!({})), unfollowed);
    assert_eq!(
        Vec::<(String, String)>::new(),
        edges(&app, "_Followee", "followee").await
    );
    assert_eq!(
        Vec::<(String, String)>::new(),
        edges(&app, "_Follower", "follower").await
    );
}
