//! The file API (issue 23) as the official SDKs drive it in their `s3` mode: `POST /1.1/fileTokens`, one raw
//! `PUT` of the bytes to the `upload_url`, `POST /1.1/fileCallback`; the bytes served back at the file's URL with
//! its content type, `ETag`, `Range` and a year of caching; external files; deletion by the master key only;
//! uploads that never finish deleted when their token expires.

use std::time::Duration;

use md5::Digest as _;
use pretty_assertions::assert_eq;
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_with, Key, TestApp};

/// `POST /1.1/fileTokens` as the JS SDK sends it, with `key`.
async fn file_token(app: &TestApp, key: Key, body: Value) -> (StatusCode, Value) {
    app.call(key, Method::POST, "/1.1/fileTokens", Some(body))
        .await
}

/// The `PUT` the SDKs send: no LeanCloud header, the token in the URL.
async fn put_bytes(
    app: &TestApp,
    upload_url: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    app.client
        .put(upload_url)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "public, max-age=31536000")
        .body(bytes)
        .send()
        .await
        .expect("upload sent")
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("a string, got {v}"))
        .to_string()
}

/// Uploads `bytes` as `name` the SDK way and answers the token's answer.
async fn upload(app: &TestApp, name: &str, bytes: &[u8]) -> Value {
    let (status, token) = file_token(
        app,
        Key::App,
        json!({"name": name, "metaData": {"size": bytes.len(), "owner": "unknown"}}),
    )
    .await;
    assert_eq!(StatusCode::OK, status, "{token}");
    let put = put_bytes(
        app,
        &s(&token["upload_url"]),
        &s(&token["mime_type"]),
        bytes.to_vec(),
    )
    .await;
    assert_eq!(StatusCode::OK, put.status());
    assert_eq!(
        "",
        put.text().await.expect("body"),
        "the PUT answers 200 with an empty body"
    );
    let (status, body) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/fileCallback",
            Some(json!({"token": token["token"], "result": true})),
        )
        .await;
    assert_eq!((StatusCode::OK, json!({})), (status, body));
    token
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

#[tokio::test]
async fn a_file_uploaded_the_sdk_way_is_served_back_byte_for_byte_with_its_type_etag_and_ranges() {
    // Arrange
    let app = spawn_app().await;
    let bytes = random_bytes(2 * 1024 * 1024);

    // Act
    let token = upload(&app, "photo.jpg", &bytes).await;

    // Assert: the answer every SDK reads.
    for field in [
        "objectId",
        "createdAt",
        "name",
        "key",
        "bucket",
        "url",
        "upload_url",
        "token",
        "mime_type",
        "metaData",
    ] {
        assert!(token.get(field).is_some(), "{field} in {token}");
    }
    assert_eq!(
        ("s3", "photo.jpg", "image/jpeg"),
        (
            token["provider"].as_str().expect("provider"),
            token["name"].as_str().expect("name"),
            token["mime_type"].as_str().expect("mime")
        )
    );
    let url = s(&token["url"]);
    assert_eq!(
        app.url(&format!("/{}", s(&token["key"]))),
        url,
        "served from this server, at /{{key}}"
    );
    assert!(
        !s(&token["upload_url"]).contains("X-LC"),
        "only the one-time token is in the URL"
    );

    let got = app.client.get(&url).send().await.expect("download");
    assert_eq!(StatusCode::OK, got.status());
    let headers = got.headers().clone();
    assert_eq!("image/jpeg", headers[header::CONTENT_TYPE]);
    assert_eq!(
        "public, max-age=31536000, immutable",
        headers[header::CACHE_CONTROL]
    );
    let etag = headers[header::ETAG].to_str().expect("etag").to_string();
    assert_eq!(
        format!("\"{}\"", hex::encode(md5::Md5::digest(&bytes))),
        etag
    );
    assert_eq!(bytes, got.bytes().await.expect("bytes").to_vec());

    let part = app
        .client
        .get(&url)
        .header(header::RANGE, "bytes=1000-1999")
        .send()
        .await
        .expect("range");
    assert_eq!(StatusCode::PARTIAL_CONTENT, part.status());
    assert_eq!(
        format!("bytes 1000-1999/{}", bytes.len()),
        part.headers()[header::CONTENT_RANGE]
    );
    assert_eq!(
        bytes[1000..2000].to_vec(),
        part.bytes().await.expect("bytes").to_vec()
    );
    let beyond = app
        .client
        .get(&url)
        .header(header::RANGE, "bytes=9999999-")
        .send()
        .await
        .expect("range");
    assert_eq!(StatusCode::RANGE_NOT_SATISFIABLE, beyond.status());
    let cached = app
        .client
        .get(&url)
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("304");
    assert_eq!(StatusCode::NOT_MODIFIED, cached.status());

    // The object, by both paths the SDKs read it.
    let id = s(&token["objectId"]);
    let (status, object) = app
        .call(Key::App, Method::GET, &format!("/1.1/files/{id}"), None)
        .await;
    assert_eq!(StatusCode::OK, status);
    assert_eq!(
        (json!(url), json!("image/jpeg")),
        (object["url"].clone(), object["mime_type"].clone())
    );
    assert_eq!(json!(bytes.len()), object["metaData"]["size"]);
    let (_, same) = app.get(&format!("/1.1/classes/_File/{id}")).await;
    assert_eq!(object["key"], same["key"]);
}

#[tokio::test]
async fn an_upload_token_works_once_for_its_key_and_never_lands_in_the_request_log() {
    // Arrange
    let app = spawn_app().await;
    let (_, token) = file_token(&app, Key::App, json!({"name": "a.txt"})).await;
    let upload_url = s(&token["upload_url"]);
    let other_key = upload_url.replace(&s(&token["key"]), "someone-elses.txt");

    // Act
    let wrong_key = put_bytes(&app, &other_key, "text/plain", b"x".to_vec())
        .await
        .status();
    let no_token = put_bytes(
        &app,
        upload_url.split('?').next().expect("path"),
        "text/plain",
        b"x".to_vec(),
    )
    .await
    .status();
    let first = put_bytes(&app, &upload_url, "text/plain", b"first".to_vec())
        .await
        .status();
    let second = put_bytes(&app, &upload_url, "text/plain", b"second".to_vec())
        .await
        .status();

    // Assert
    assert_eq!(
        [
            StatusCode::FORBIDDEN,
            StatusCode::FORBIDDEN,
            StatusCode::OK,
            StatusCode::FORBIDDEN
        ],
        [wrong_key, no_token, first, second]
    );
    let body = app
        .client
        .get(s(&token["url"]))
        .send()
        .await
        .expect("download");
    assert_eq!("first", body.text().await.expect("text"));
    let secret = s(&token["token"]);
    let logged = app.server.inspect().requests();
    assert!(
        logged.iter().any(|r| r.path.starts_with("/upload/")),
        "uploads are logged"
    );
    assert!(
        logged
            .iter()
            .all(|r| !r.query.as_deref().unwrap_or("").contains(&secret)),
        "the token is never kept"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_and_an_upload_without_a_body_expires() {
    // Arrange
    let app = spawn_with(|c| {
        c.files.max_bytes = 10;
        c.files.upload_ttl = Duration::from_millis(300);
        c.files.sweep_every = Duration::from_millis(100);
    })
    .await;
    let (_, big) = file_token(&app, Key::App, json!({"name": "big.bin"})).await;
    let (_, never) = file_token(&app, Key::App, json!({"name": "never.bin"})).await;

    // Act
    let refused = put_bytes(
        &app,
        &s(&big["upload_url"]),
        "application/octet-stream",
        vec![0; 11],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // Assert
    assert_eq!(StatusCode::PAYLOAD_TOO_LARGE, refused.status());
    for token in [&big, &never] {
        let (status, object) = app
            .get(&format!("/1.1/files/{}", s(&token["objectId"])))
            .await;
        assert_eq!(
            (StatusCode::OK, json!({})),
            (status, object),
            "an upload that never finished is deleted"
        );
    }
    let late = put_bytes(
        &app,
        &s(&never["upload_url"]),
        "application/octet-stream",
        vec![1],
    )
    .await;
    assert_eq!(
        StatusCode::FORBIDDEN,
        late.status(),
        "an expired token uploads nothing"
    );
}

#[tokio::test]
async fn only_the_master_key_deletes_a_file_and_its_bytes_go_with_it() {
    // Arrange
    let app = spawn_app().await;
    let token = upload(&app, "doc.pdf", b"%PDF-1.4 ...").await;
    let id = s(&token["objectId"]);
    let path = format!("/1.1/files/{id}");

    // Act
    let (by_app, _) = app.call(Key::App, Method::DELETE, &path, None).await;
    let (by_master, body) = app.call(Key::Master, Method::DELETE, &path, None).await;
    // The Python SDK posts the callback from a thread, sometimes after the delete.
    let (late_callback, _) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/fileCallback",
            Some(json!({"token": token["token"], "result": true})),
        )
        .await;

    // Assert
    assert_eq!(StatusCode::FORBIDDEN, by_app);
    assert_eq!(
        (StatusCode::OK, json!({})),
        (by_master, body),
        "exactly 200 {{}}"
    );
    assert_eq!(StatusCode::OK, late_callback);
    assert_eq!(
        StatusCode::NOT_FOUND,
        app.client
            .get(s(&token["url"]))
            .send()
            .await
            .expect("get")
            .status()
    );
    let (_, gone) = app.get(&path).await;
    assert_eq!(json!({}), gone);
}

#[tokio::test]
async fn a_failed_upload_s_callback_deletes_the_file() {
    let app = spawn_app().await;
    let (_, token) = file_token(&app, Key::App, json!({"name": "xxx"})).await;
    let (status, _) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/fileCallback",
            Some(json!({"token": token["token"], "result": false})),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    let (_, gone) = app
        .get(&format!("/1.1/files/{}", s(&token["objectId"])))
        .await;
    assert_eq!(json!({}), gone);
    assert_eq!(
        StatusCode::FORBIDDEN,
        put_bytes(
            &app,
            &s(&token["upload_url"]),
            "text/plain",
            b"late".to_vec()
        )
        .await
        .status()
    );
}

#[tokio::test]
async fn only_the_master_key_chooses_a_key_and_it_is_the_url_s_path() {
    let app = spawn_app().await;
    // The JS SDK 3.x sends a random key with every upload: an app-key client's key is ignored, not refused.
    let (status, ignored) =
        file_token(&app, Key::App, json!({"name": "Blah.txt", "key": "abc"})).await;
    assert_eq!(StatusCode::OK, status, "{ignored}");
    assert_ne!(json!("abc"), ignored["key"]);
    assert_ne!(app.url("/abc"), s(&ignored["url"]));
    let (status, token) =
        file_token(&app, Key::Master, json!({"name": "Blah.txt", "key": "abc"})).await;
    assert_eq!(StatusCode::OK, status, "{token}");
    assert_eq!(
        (app.url("/abc"), "text/plain".to_string()),
        (s(&token["url"]), s(&token["mime_type"]))
    );
    let (status, _) = file_token(
        &app,
        Key::Master,
        json!({"name": "x", "key": "1.1/classes/x"}),
    )
    .await;
    assert_eq!(
        StatusCode::BAD_REQUEST,
        status,
        "a key may not shadow the API"
    );
}

#[tokio::test]
async fn an_external_file_keeps_its_url() {
    let app = spawn_app().await;
    let (status, created) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/files",
            Some(
                json!({"name": "lenna.jpg", "url": "http://example.com/lenna.png", "metaData": {}}),
            ),
        )
        .await;
    assert_eq!(StatusCode::CREATED, status, "{created}");
    let (_, object) = app
        .get(&format!("/1.1/files/{}", s(&created["objectId"])))
        .await;
    assert_eq!(
        (
            json!("lenna.jpg"),
            json!("http://example.com/lenna.png"),
            json!("external")
        ),
        (
            object["name"].clone(),
            object["url"].clone(),
            object["metaData"]["__source"].clone()
        )
    );
    let (status, _) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/files",
            Some(json!({"name": "no url"})),
        )
        .await;
    assert_eq!(StatusCode::BAD_REQUEST, status);
    // The JS storage SDK 3.x posts the name in the path.
    let (status, named) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/files/favicon.ico",
            Some(json!({"url": "http://example.com/favicon.ico", "metaData": {}})),
        )
        .await;
    assert_eq!(StatusCode::CREATED, status, "{named}");
    assert_eq!(
        (
            json!("favicon.ico"),
            json!("http://example.com/favicon.ico")
        ),
        (named["name"].clone(), named["url"].clone()),
        "the SDK takes the name and url from the answer"
    );
    let (_, object) = app
        .get(&format!("/1.1/files/{}", s(&named["objectId"])))
        .await;
    assert_eq!(json!("favicon.ico"), object["name"]);
}

#[tokio::test]
async fn browsers_may_call_the_api_and_the_upload_url_across_origins() {
    let app = spawn_app().await;
    for (path, method) in [
        ("/1.1/fileTokens", "POST"),
        ("/upload/abc.txt?token=x", "PUT"),
    ] {
        let preflight = app
            .client
            .request(Method::OPTIONS, app.url(path))
            .header(header::ORIGIN, "https://app.example.com")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, method)
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "content-type,x-lc-id,x-lc-sign,cache-control",
            )
            .send()
            .await
            .expect("preflight");
        assert!(
            preflight.status().is_success(),
            "{path}: {}",
            preflight.status()
        );
        let h = preflight.headers();
        assert_eq!("*", h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "{path}");
        assert!(h[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .expect("methods")
            .contains(method));
    }
}

/// A body larger than one part of the S3 store (8 MiB) goes up in parts there and is served back byte for byte
/// with its MD5; one over the limit is refused mid-stream and leaves nothing to serve (on S3: no unfinished
/// multipart upload either). On the SQLite run the same through the directory store.
#[tokio::test]
async fn a_body_of_several_parts_is_served_whole_and_one_over_the_limit_leaves_nothing() {
    // Arrange
    let app = spawn_with(|c| c.files.max_bytes = 10 * 1024 * 1024).await;
    let bytes = random_bytes(leancloud_server::store::blobs::s3::PART + 4096);
    let (_, over) = file_token(&app, Key::App, json!({"name": "over.bin"})).await;

    // Act
    let token = upload(&app, "video.mp4", &bytes).await;
    let fetched = app.client.get(s(&token["url"])).send().await.expect("get");
    let refused = put_bytes(
        &app,
        &s(&over["upload_url"]),
        "application/octet-stream",
        random_bytes(12 * 1024 * 1024),
    )
    .await;

    // Assert
    assert_eq!(StatusCode::OK, fetched.status());
    assert_eq!(
        Some(format!("\"{}\"", hex::encode(md5::Md5::digest(&bytes))).as_str()),
        fetched
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
    );
    assert_eq!(
        Some("video/mp4"),
        fetched
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    );
    assert!(
        fetched.bytes().await.expect("body").to_vec() == bytes,
        "served byte for byte"
    );
    assert_eq!(StatusCode::PAYLOAD_TOO_LARGE, refused.status());
    let after = app.client.get(s(&over["url"])).send().await.expect("get");
    assert_eq!(StatusCode::NOT_FOUND, after.status());
    if let Some(s3) = &app.config.files.s3 {
        let endpoint = s3.endpoint.as_deref().expect("endpoint");
        let listing = app
            .client
            .get(format!("{endpoint}/{}?uploads", s3.bucket))
            .send()
            .await
            .expect("list uploads")
            .text()
            .await
            .expect("xml");
        assert!(
            !listing.contains("<Upload>"),
            "the refused multipart upload was aborted: {listing}"
        );
    }
}

/// Two instances on one PostgreSQL database and one bucket: a file uploaded through one is served by the
/// other, and deleted through the other it is gone from both.
#[tokio::test]
async fn two_instances_on_one_bucket_serve_and_delete_each_other_s_files() {
    // Arrange
    let store = crate::helpers::fresh_bucket(true)
        .await
        .expect("an S3 stand-in");
    let [a, b] = crate::helpers::spawn_instances(|c| c.files.s3 = Some(store.clone())).await;
    let bytes = random_bytes(300_000);

    // Act
    let token = upload(&a, "photo.png", &bytes).await;
    let on_b = b
        .client
        .get(format!("http://{}/{}", b.server.addr(), s(&token["key"])))
        .send()
        .await
        .expect("get on b");
    let on_b_status = on_b.status();
    let on_b_bytes = on_b.bytes().await.expect("body").to_vec();
    let (deleted, _) = b
        .call(
            Key::Master,
            Method::DELETE,
            &format!("/1.1/files/{}", s(&token["objectId"])),
            None,
        )
        .await;
    let on_a = a
        .client
        .get(s(&token["url"]))
        .send()
        .await
        .expect("get on a");

    // Assert
    assert_eq!(StatusCode::OK, on_b_status);
    assert!(on_b_bytes == bytes, "b serves a's upload byte for byte");
    assert_eq!(StatusCode::OK, deleted);
    assert_eq!(StatusCode::NOT_FOUND, on_a.status(), "gone from a too");
}

/// A file inside another object is answered whole, whichever of the three encodings SDKs write it in (the whole
/// file, `{"__type":"File","id"}`, a pointer to `_File`): what the Python SDK needs to decode it.
#[tokio::test]
async fn a_file_field_is_answered_as_the_whole_file_in_every_encoding() {
    // Arrange
    let app = spawn_app().await;
    let token = upload(&app, "avatar.png", b"\x89PNG...").await;
    let id = s(&token["objectId"]);
    let whole = json!({"__type": "File", "objectId": id, "name": "old-name.png", "url": "http://old.example/x"});
    let rest = json!({"__type": "File", "id": id});
    let pointer = json!({"__type": "Pointer", "className": "_File", "objectId": id});
    let (_, created) = app
        .post(
            "/1.1/classes/Profile",
            json!({"a": whole, "b": rest, "c": pointer, "list": [rest], "gone": {"__type": "File", "id": "5f0000000000000000000000"}}),
        )
        .await;

    // Act
    let (_, got) = app
        .get(&format!("/1.1/classes/Profile/{}", s(&created["objectId"])))
        .await;
    let (_, found) = app.get("/1.1/classes/Profile").await;

    // Assert
    let expected = json!({"__type": "File", "objectId": id, "id": id, "name": "avatar.png", "url": token["url"],
        "key": token["key"], "mime_type": "image/png"});
    for field in ["a", "b", "c"] {
        for answer in [&got[field], &found["results"][0][field], &got["list"][0]] {
            let mut shown = answer.as_object().expect("object").clone();
            for k in ["metaData", "createdAt", "updatedAt", "bucket", "provider"] {
                shown.remove(k);
            }
            assert_eq!(expected, Value::Object(shown), "{field}");
        }
    }
    assert_eq!(
        json!({"__type": "File", "id": "5f0000000000000000000000", "objectId": "5f0000000000000000000000"}),
        got["gone"],
        "a file that is gone keeps what was stored, with its objectId"
    );
}
