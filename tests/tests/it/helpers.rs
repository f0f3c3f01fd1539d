//! A fresh server on port 0 with its own database, a client pointed at it, and the function handlers.

use std::path::PathBuf;

use im_functions::delivery::Delivery;
use im_functions::{lambda, App, FunctionError, Operation};
use lambda_runtime::{Context, LambdaEvent};
use leancloud_im::{Client, ClientId, ClientOptions, Config, ConversationId, CreateConversation};
use leancloud_server::{spawn, Inspector, RunningServer, ServerConfig};
use serde_json::Value;
use tempfile::TempDir;

pub const MASTER_KEY: &str = "dev-master-key";
/// The one invalid record in every sample SQS batch (see `events/README.md`).
pub const INVALID_RECORD: &str = "9b5f6a3c-1d2e-4f80-b7a9-c3d4e5f60718";

pub struct TestApp {
    pub server: RunningServer,
    /// The functions' state, built per test: the rate budgets remember LeanCloud's 429 penalties, which must
    /// not leak between tests.
    pub app: App,
    pub normal: ConversationId,
    pub system: ConversationId,
    _db: TempDir,
}

impl TestApp {
    /// A server with a fresh database and the two conversations the sample events name.
    pub async fn spawn() -> TestApp {
        let db = tempfile::tempdir().expect("temp dir");
        let server = spawn(ServerConfig::for_tests(db.path().join("leancloud.sqlite3")))
            .await
            .expect("server starts");
        let config = Config::builder("dev-app-id-gzGzoHsz")
            .app_key("dev-app-key")
            .master_key(MASTER_KEY)
            .api_server(server.base_url())
            .build()
            .expect("config");
        // One attempt: tests that inject faults check what the functions make of a failure, not the retries.
        let options = ClientOptions {
            max_attempts: 1,
            ..ClientOptions::default()
        };
        let client = Client::with_options(config, options).expect("client");
        let normal = client
            .execute(
                &CreateConversation::new()
                    .name("Order #1042 support")
                    .members(["alice", "bob"].map(|id| ClientId::parse(id).expect("id"))),
            )
            .await
            .expect("normal conversation")
            .id;
        let system = client
            .execute(&CreateConversation::new().name("Announcements").system(true))
            .await
            .expect("system conversation")
            .id;
        TestApp {
            server,
            app: App::new(client).with_delivery(Delivery::in_memory(Default::default())),
            normal,
            system,
            _db: db,
        }
    }

    pub fn inspect(&self) -> Inspector {
        self.server.inspect()
    }

    pub fn request_count(&self) -> usize {
        self.inspect().requests().len()
    }

    /// A sample event with the placeholders replaced by this server's conversation ids.
    pub fn event(&self, name: &str) -> Value {
        let text = std::fs::read_to_string(events_dir().join(name)).expect("event file");
        let text = text
            .replace("NORMAL_CONVERSATION_ID", self.normal.as_ref())
            .replace("SYSTEM_CONVERSATION_ID", self.system.as_ref());
        serde_json::from_str(&text).expect("event is JSON")
    }

    /// Run a function's handler as the Lambda runtime would.
    pub async fn invoke<Op: Operation>(&self, payload: Value) -> Result<Value, FunctionError> {
        let mut context = Context::default();
        context.request_id = "test-request".to_owned();
        lambda::handle::<Op>(&self.app, LambdaEvent::new(payload, context)).await
    }

    /// Run an HTTP event; returns the status, the headers and the JSON body.
    pub async fn http<Op: Operation>(&self, event: Value) -> HttpAnswer {
        let answer = self
            .invoke::<Op>(event)
            .await
            .expect("HTTP events always answer Ok");
        HttpAnswer::from_value(answer)
    }

    /// Run an SQS event; returns the ids of the failed records.
    pub async fn sqs<Op: Operation>(&self, event: Value) -> Vec<String> {
        let answer = self
            .invoke::<Op>(event)
            .await
            .expect("SQS events always answer Ok");
        failed_ids(&answer)
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

pub fn failed_ids(answer: &Value) -> Vec<String> {
    answer["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures")
        .iter()
        .map(|item| item["itemIdentifier"].as_str().expect("id").to_owned())
        .collect()
}

#[derive(Debug)]
pub struct HttpAnswer {
    pub status: i64,
    pub headers: Value,
    pub body: Value,
    pub raw: Value,
}

impl HttpAnswer {
    pub fn from_value(raw: Value) -> HttpAnswer {
        let status = raw["statusCode"].as_i64().expect("statusCode");
        assert_eq!(
            Some(false),
            raw["isBase64Encoded"].as_bool(),
            "answers are text: {raw}"
        );
        let body = serde_json::from_str(raw["body"].as_str().expect("body")).expect("JSON body");
        HttpAnswer {
            status,
            headers: raw["headers"].clone(),
            body,
            raw,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers[name].as_str()
    }

    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("(none)")
    }

    /// The HTTP status and the `error.code` of the answer, with the body shown when they differ.
    #[track_caller]
    pub fn assert_error(&self, status: i64, code: &str) {
        assert_eq!(
            (status, code),
            (self.status, self.error_code()),
            "{:?}",
            self.body
        );
    }
}

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// An HTTP API 2.0 request event for `path` with a JSON `body`.
pub fn http_event(method: &str, path: &str, body: &str) -> Value {
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "test", "routeKey": "$default", "stage": "$default", "timeEpoch": 0
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// An SQS event whose records have the given bodies (ids `m-0`, `m-1`, …).
pub fn sqs_event(bodies: &[&str]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(index, body)| {
            serde_json::json!({
                "messageId": format!("m-{index}"), "receiptHandle": "rh", "body": body,
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// Long enough to break LeanCloud's 5 KB message limit.
pub fn oversized_text() -> String {
    "x".repeat(6 * 1024)
}
