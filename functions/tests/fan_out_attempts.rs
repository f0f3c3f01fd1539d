//! One retry loop per call chain (review part 3, §4.2 and §7.2 move 5): the fan-out's own loop is the only
//! one around a chunk's HTTP request, so a chunk costs at most `BulkOptions::max_attempts` requests, and every
//! request is one budget unit and one of the report's `calls`.
//!
//! Before, the fan-out called `Client::execute_until`, which retried up to `ClientOptions::max_attempts` (3)
//! times inside each of the fan-out's 4 attempts: up to 12 requests per chunk, counted as 4.

// Helpers outside #[test] functions are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use im_functions::delivery::budget::{Bucket, BudgetConfig};
use im_functions::delivery::{fan_out, send_once, BulkJob, BulkOptions, Delivery, Sender};
use leancloud_im::{
    Client, ClientId, ClientOptions, Config, ConversationId, Error as LcError, Request,
    SendMessage, SentMessage,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A server that answers every request with `503` (plain text, as a gateway would), counting them.
/// Each answer closes the connection, so one connection is one request.
async fn always_503() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let counted = counted.clone();
            tokio::spawn(async move {
                if read_request(&mut socket).await {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let answer = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
                                  content-length: 4\r\nconnection: close\r\n\r\nbusy";
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.shutdown().await;
                }
            });
        }
    });
    (url, requests)
}

/// Read one request (head and `content-length` body); false when the peer went away first.
async fn read_request(socket: &mut tokio::net::TcpStream) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return false;
        }
        seen.extend_from_slice(&buf[..n]);
        let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
        if seen.len() >= end + 4 + length {
            return true;
        }
    }
}

/// A client whose own retry loop would retry a 503 (3 attempts, as by default), with short backoffs.
fn client(url: &str) -> Client {
    let config = Config::builder("fan-out-app-id")
        .master_key("k")
        .api_server(url)
        .build()
        .unwrap();
    let options = ClientOptions {
        base_backoff: Duration::from_millis(1),
        ..ClientOptions::default()
    };
    assert_eq!(3, options.max_attempts, "the client alone would retry");
    Client::with_options(config, options).unwrap()
}

fn delivery() -> Delivery {
    let mut delivery = Delivery::in_memory(BudgetConfig::unlimited());
    delivery.options.retry_base = Duration::from_millis(1);
    assert_eq!(4, BulkOptions::default().max_attempts);
    delivery
}

/// A request the fan-out may retry after a 503: it answers like a send but declares itself idempotent
/// (as a send with a server-side idempotency key would be). The fan-out's sends and broadcasts are not
/// idempotent, so for them only a failed connect is retried; this one exercises the whole loop.
struct IdempotentSend(SendMessage);

impl Request for IdempotentSend {
    type Response = SentMessage;

    fn method(&self) -> http::Method {
        self.0.method()
    }

    fn path(&self) -> String {
        self.0.path()
    }

    fn body(&self) -> Result<Option<Vec<u8>>, LcError> {
        self.0.body()
    }

    fn is_idempotent(&self) -> bool {
        true
    }
}

fn message() -> SendMessage {
    SendMessage::new(
        ConversationId::parse("conv").unwrap(),
        ClientId::parse("system").unwrap(),
        "hi",
    )
}

#[tokio::test]
async fn a_chunk_that_always_meets_a_503_costs_max_attempts_requests_each_counted() {
    let (url, requests) = always_503().await;
    let client = client(&url);
    let delivery = delivery();
    let sender = Sender::new(&client, &delivery);

    let report = send_once(&sender, Bucket::Messages, None, &IdempotentSend(message())).await;

    assert_eq!(1, report.failed, "{report:?}");
    let max_attempts = delivery.options.max_attempts as usize;
    assert_eq!(
        max_attempts,
        requests.load(Ordering::SeqCst),
        "one loop: the fan-out's attempts, not attempts × the client's 3"
    );
    assert_eq!(
        max_attempts, report.calls,
        "every HTTP request is a call (and a budget unit)"
    );
}

/// The fan-out's sends are not idempotent: a 503 may mean the message went out, so each chunk is sent once
/// (finding M7), by the fan-out and by the client alike.
#[tokio::test]
async fn a_send_that_meets_a_503_is_sent_once_per_chunk() {
    let (url, requests) = always_503().await;
    let client = client(&url);
    let delivery = delivery();
    let sender = Sender::new(&client, &delivery);
    let recipients = (0..30).map(|i| ClientId::parse(format!("u{i}")).unwrap());
    let job = BulkJob::new(message(), Some(recipients.collect()), None);

    let report = fan_out(&sender, &job).await;

    assert!(!report.is_complete(), "{report:?}");
    assert_eq!(2, requests.load(Ordering::SeqCst));
    assert_eq!(2, report.calls);
}

/// A server that accepts connections (counting them) and closes them at once. Reached over `https`, the
/// TLS handshake fails inside the connect, so nothing reached the server: a failure that is retried even
/// for a send (the refused connection of review §4.2, but countable).
async fn closes_every_connection() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (url, connections)
}

#[tokio::test]
async fn a_send_whose_connection_fails_is_tried_max_attempts_times_not_twelve() {
    let (url, connections) = closes_every_connection().await;
    let client = client(&url);
    let delivery = delivery();
    let sender = Sender::new(&client, &delivery);
    let job = BulkJob::new(message(), Some(vec![ClientId::parse("u").unwrap()]), None);

    let report = fan_out(&sender, &job).await;

    assert_eq!(1, report.failed, "{report:?}");
    let max_attempts = delivery.options.max_attempts as usize;
    assert_eq!(max_attempts, connections.load(Ordering::SeqCst));
    assert_eq!(max_attempts, report.calls);
}
