//! AWS stand-ins for the bulk and schedule tests: moto (DynamoDB, SQS, SSM, EventBridge Scheduler) on a free
//! port, plus the server on port 0 with a short client timeout (the fault tests need it).

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_types::SdkConfig;
use im_functions::config::aws_config;
use im_functions::delivery::Delivery;
use im_functions::{App as FunctionApp, FunctionError, Operation};
use lambda_runtime::{Context, LambdaEvent};
use leancloud_im::{Client, ClientOptions, Config, ConversationId, CreateConversation};
use leancloud_server::{spawn, Inspector, RunningServer, ServerConfig};
use serde_json::{json, Value};
use tempfile::TempDir;

pub const MASTER_KEY: &str = "dev-master-key";

pub struct BulkApp {
    pub server: RunningServer,
    pub client: Client,
    pub system: ConversationId,
    _db: TempDir,
}

impl BulkApp {
    /// A fresh server and a system conversation. `request_timeout` is short so the server's `timeout` fault
    /// (which answers only after its delay) ends the attempt quickly.
    pub async fn spawn(request_timeout: Duration) -> BulkApp {
        init_logs();
        let db = tempfile::tempdir().expect("temp dir");
        let server = spawn(ServerConfig::for_tests(db.path().join("leancloud.sqlite3")))
            .await
            .expect("server starts");
        let config = Config::builder("dev-app-id-gzGzoHsz")
            .master_key(MASTER_KEY)
            .api_server(server.base_url())
            .build()
            .expect("config");
        let options = ClientOptions {
            max_attempts: 1,
            request_timeout,
            ..ClientOptions::default()
        };
        let client = Client::with_options(config, options).expect("client");
        let system = client
            .execute(&CreateConversation::new().name("Announcements").system(true))
            .await
            .expect("system conversation")
            .id;
        BulkApp {
            server,
            client,
            system,
            _db: db,
        }
    }

    pub fn inspect(&self) -> Inspector {
        self.server.inspect()
    }

    /// Requests the server received on `path` (e.g. `/1.1/rtm/messages`).
    pub fn calls(&self, path: &str) -> usize {
        self.inspect()
            .requests()
            .iter()
            .filter(|r| r.path == path)
            .count()
    }
}

/// Logs of the code under test when `RUST_LOG` is set (e.g. `RUST_LOG=im_functions=warn`).
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Run `Op`'s handler with `delivery` (an [`FunctionApp`] over a clone of `client`; clones share the
/// ledger and budget state).
pub async fn handle_with<Op: Operation>(
    client: &Client,
    delivery: &Delivery,
    event: LambdaEvent<Value>,
) -> Result<Value, FunctionError> {
    let app = FunctionApp::new(client.clone()).with_delivery(delivery.clone());
    im_functions::lambda::handle::<Op>(&app, event).await
}

/// A Lambda event with no deadline.
pub fn lambda_event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

/// One SQS record as Lambda delivers it.
pub fn sqs_record(message_id: &str, body: &Value) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": format!("rh-{message_id}"),
        "body": body.to_string(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1767225600000",
                       "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1767225600000"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bulk",
        "awsRegion": "us-east-1"
    })
}

pub fn sqs_event(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

/// The ids of `batchItemFailures`.
pub fn failed_ids(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item["itemIdentifier"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// An API Gateway HTTP API 2.0 request.
pub fn http_event(path: &str, query: &str, headers: Value, body: &Value) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                           "sourceIp": "127.0.0.1", "userAgent": "test"},
                           "requestId": "req-1", "stage": "$default", "accountId": "123456789012",
                           "apiId": "api", "domainName": "example.com", "domainPrefix": "example",
                           "time": "05/Jan/2026:00:00:00 +0000", "timeEpoch": 1767571200000u64},
        "body": body.to_string(), "isBase64Encoded": false
    })
}

/// A moto server for this test, stopped when dropped.
pub struct Moto {
    pub endpoint: String,
    child: Option<Child>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Moto {
    /// `MOTO_ENDPOINT` if set (it must answer one request at a time: see `moto_serial.py`), else moto from
    /// `.venv-aws` on a free loopback port, started through `moto_serial.py`. `None` (after saying why)
    /// when moto is not installed; with `CI` set that is a failure instead.
    pub fn start() -> Option<Moto> {
        if let Ok(endpoint) = std::env::var("MOTO_ENDPOINT") {
            return Some(Moto {
                endpoint,
                child: None,
            });
        }
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let root = here.join("..");
        let python = root.join(".venv-aws/bin/python");
        if !root.join(".venv-aws/bin/moto_server").exists() {
            let why = format!(
                "moto is not installed ({} missing; run scripts/setup.sh aws)",
                root.join(".venv-aws").display()
            );
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("skipping: {why}");
            return None;
        }
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(&python)
            .arg(here.join("tests/it/moto_serial.py"))
            .args(["127.0.0.1", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        };
        // Readiness: the port accepts connections (moto takes a second or two to import its services).
        for _ in 0..300 {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Some(moto);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not listen on port {port} within 30 s");
    }

    pub fn env(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |name: &str| match name {
            "AWS_REGION" => Some("us-east-1".to_owned()),
            "AWS_ENDPOINT_URL" => Some(self.endpoint.clone()),
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("testing".to_owned()),
            _ => None,
        }
    }

    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config(&self.env()).await.expect("aws config")
    }

    /// A DynamoDB client and a fresh table shaped like the template's.
    pub async fn table(&self, name: &str) -> aws_sdk_dynamodb::Client {
        let client = aws_sdk_dynamodb::Client::new(&self.sdk_config().await);
        im_functions::delivery::dynamo::create_table(&client, name)
            .await
            .expect("table created");
        client
    }
}

/// `Some(moto)` or return from the test (moto unavailable outside CI).
macro_rules! moto_or_skip {
    () => {
        match $crate::aws::Moto::start() {
            Some(moto) => moto,
            None => return,
        }
    };
}
pub(crate) use moto_or_skip;
