//! Helpers of the wire tests (`wire.rs`, `rtm2_wire.rs`): a mock server answering everything, and the checks of
//! one exchange (request line, body bytes, the SDK's headers and signature).

// Helpers outside #[test] functions are not covered by clippy.toml's allow-unwrap-in-tests; a panic
// is how they report a failed expectation. Each test binary uses a part of them.
#![allow(clippy::unwrap_used, dead_code)]

use std::time::Duration;

use leancloud_im::{Client, ClientId, ClientOptions, Config, Error, Request};
use md5::{Digest, Md5};
use pretty_assertions::assert_eq;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const APP_ID: &str = "TestAppId-gzGzoHsz";
pub const MASTER_KEY: &str = "TestMasterKey";
pub fn fast_options() -> ClientOptions {
    ClientOptions {
        base_backoff: Duration::from_millis(1),
        ..ClientOptions::default()
    }
}

pub fn client_for(server: &MockServer) -> Client {
    let config = Config::builder(APP_ID)
        .master_key(MASTER_KEY)
        .api_server(server.uri())
        .build()
        .unwrap();
    Client::with_options(config, fast_options()).unwrap()
}

pub fn json_reply(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), "application/json")
}

pub fn cid(s: &str) -> ClientId {
    ClientId::parse(s).unwrap()
}

/// Answer everything with `reply`, run `request`, and return what the server received.
pub async fn exchange<R: Request>(
    request: &R,
    reply: ResponseTemplate,
) -> (Result<R::Response, Error>, Vec<wiremock::Request>) {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(reply).mount(&server).await;
    let client = client_for(&server);
    let result = client.execute(request).await;
    let received = server.received_requests().await.unwrap();
    (result, received)
}

pub fn request_line(r: &wiremock::Request) -> String {
    match r.url.query() {
        Some(q) => format!("{} {}?{}", r.method, r.url.path(), q),
        None => format!("{} {}", r.method, r.url.path()),
    }
}

pub fn header<'a>(r: &'a wiremock::Request, name: &str) -> &'a str {
    r.headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("<absent>")
}

/// The headers every SDK request carries, with a signature that verifies against the master key.
pub fn assert_sdk_headers(r: &wiremock::Request) {
    assert_eq!("application/json;charset=utf-8", header(r, "content-type"));
    assert_eq!(APP_ID, header(r, "x-lc-id"));
    assert_eq!("1", header(r, "x-lc-prod"));
    assert_eq!("<absent>", header(r, "x-lc-key"));
    assert_eq!("<absent>", header(r, "x-lc-hook-key"));
    assert!(
        header(r, "user-agent").starts_with("leancloud-im-rust/"),
        "{}",
        header(r, "user-agent")
    );
    let sign = header(r, "x-lc-sign");
    let parts: Vec<&str> = sign.split(',').collect();
    assert_eq!(3, parts.len(), "sign was {sign}");
    assert_eq!("master", parts[2]);
    assert_eq!(13, parts[1].len(), "a millisecond timestamp, got {sign}");
    assert!(parts[1].bytes().all(|b| b.is_ascii_digit()));
    let expected = hex::encode(Md5::digest(format!("{}{MASTER_KEY}", parts[1])));
    assert_eq!(expected, parts[0], "md5(ts + master key)");
}

/// Check one captured scenario: request line (path and raw query) and body bytes.
pub async fn assert_wire<R: Request>(
    request: &R,
    expected_line: &str,
    expected_body: Option<&str>,
    reply: ResponseTemplate,
) -> R::Response
where
    R::Response: std::fmt::Debug,
{
    let (result, received) = exchange(request, reply).await;
    assert_eq!(1, received.len(), "exactly one request for {expected_line}");
    let r = &received[0];
    assert_eq!(expected_line, request_line(r));
    assert_eq!(
        expected_body.unwrap_or(""),
        String::from_utf8(r.body.clone()).unwrap(),
        "body of {expected_line}"
    );
    match expected_body {
        Some(body) => assert_eq!(body.len().to_string(), header(r, "content-length")),
        None => assert_eq!(
            "<absent>",
            header(r, "content-length"),
            "GET carries no body"
        ),
    }
    assert_sdk_headers(r);
    result.unwrap()
}
