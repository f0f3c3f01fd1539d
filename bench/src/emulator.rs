//! A minimal Lambda Runtime API emulator on loopback: enough of
//! `GET /2018-06-01/runtime/invocation/next`, `POST …/invocation/{id}/response`, `POST …/invocation/{id}/error`
//! and `POST …/init/error` to hand one function process one invocation and time its answer.
//!
//! One emulator serves one process and one invocation: a fresh listener per run, so a killed process's
//! pending long poll can never take the next run's event.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

const BASE: &str = "/2018-06-01/runtime";

/// What the function answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `POST …/invocation/{id}/response`
    Response(Bytes),
    /// `POST …/invocation/{id}/error`
    Error(Bytes),
    /// `POST …/init/error`
    InitError(Bytes),
}

/// The answer with the instants that matter for timing.
#[derive(Debug)]
pub struct Answer {
    /// When the answer reached the emulator.
    pub at: Instant,
    /// When the event was handed out (the process's first `next` call returned), if it was.
    pub handed_out: Option<Instant>,
    pub outcome: Outcome,
}

#[derive(Debug)]
struct Shared {
    request_id: String,
    event: Mutex<Option<Bytes>>,
    handed_out: Mutex<Option<Instant>>,
    answer: Mutex<Option<oneshot::Sender<Answer>>>,
    closed: watch::Receiver<bool>,
}

impl Shared {
    fn answer(&self, outcome: Outcome) {
        let at = Instant::now();
        let handed_out = *self
            .handed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = self
            .answer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = tx.send(Answer {
                at,
                handed_out,
                outcome,
            });
        }
    }
}

/// A running emulator holding one invocation.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    answer: Option<oneshot::Receiver<Answer>>,
    close: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Emulator {
    /// Bind 127.0.0.1:0 and serve `event` as the one invocation `request_id`.
    pub async fn start(request_id: &str, event: Vec<u8>) -> std::io::Result<Emulator> {
        let (tx, rx) = oneshot::channel();
        let (close, closed) = watch::channel(false);
        let shared = Arc::new(Shared {
            request_id: request_id.to_owned(),
            event: Mutex::new(Some(Bytes::from(event))),
            handed_out: Mutex::new(None),
            answer: Mutex::new(Some(tx)),
            closed,
        });
        let app = Router::new()
            .route(&format!("{BASE}/invocation/next"), get(next))
            .route(
                &format!("{BASE}/invocation/{{id}}/response"),
                post(response),
            )
            .route(&format!("{BASE}/invocation/{{id}}/error"), post(error))
            .route(&format!("{BASE}/init/error"), post(init_error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let mut stop = close.subscribe();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|c| *c).await;
                })
                .await;
        });
        Ok(Emulator {
            addr,
            answer: Some(rx),
            close,
            task,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API` (the Rust runtime wants it with `http://` in front).
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Wait for the function's answer.
    pub async fn wait(&mut self, timeout: Duration) -> Result<Answer, String> {
        let rx = self.answer.take().ok_or("the answer was already taken")?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err("emulator stopped before an answer".into()),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.close.send(true);
        self.task.abort();
    }
}

fn epoch_ms_in(d: Duration) -> u128 {
    (SystemTime::now() + d)
        .duration_since(UNIX_EPOCH)
        .map(|t| t.as_millis())
        .unwrap_or(0)
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let event = shared
        .event
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let Some(event) = event else {
        // Only one invocation per emulator: park the long poll until the emulator closes.
        let mut closed = shared.closed.clone();
        let _ = closed.wait_for(|c| *c).await;
        return StatusCode::GONE.into_response();
    };
    *shared
        .handed_out
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    let mut resp = event.into_response();
    let headers = resp.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", shared.request_id.clone());
    set(
        "lambda-runtime-deadline-ms",
        epoch_ms_in(Duration::from_secs(300)).to_string(),
    );
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:000000000000:function:bench".into(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
    );
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"OK"}"#,
    )
        .into_response()
}

async fn response(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    shared.answer(Outcome::Response(body));
    accepted()
}

async fn error(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    shared.answer(Outcome::Error(body));
    accepted()
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    shared.answer(Outcome::InitError(body));
    accepted()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn http(addr: &str, request: String) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(request.as_bytes()).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn hands_out_one_invocation_and_records_the_answer() {
        let mut emu = Emulator::start("req-1", br#"{"hello":1}"#.to_vec())
            .await
            .expect("start");
        let addr = emu.host_port();
        let next = http(
            &addr,
            format!("GET {BASE}/invocation/next HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
        )
        .await;
        assert!(next.starts_with("HTTP/1.1 200"), "{next}");
        assert!(
            next.to_ascii_lowercase()
                .contains("lambda-runtime-aws-request-id: req-1"),
            "{next}"
        );
        assert!(next.ends_with(r#"{"hello":1}"#), "{next}");
        let body = r#"{"statusCode":200}"#;
        let posted = http(
            &addr,
            format!(
                "POST {BASE}/invocation/req-1/response HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
        .await;
        assert!(posted.starts_with("HTTP/1.1 202"), "{posted}");
        let answer = emu.wait(Duration::from_secs(5)).await.expect("answer");
        assert_eq!(
            answer.outcome,
            Outcome::Response(Bytes::from_static(body.as_bytes()))
        );
        assert!(answer.handed_out.is_some_and(|h| h <= answer.at));
    }

    #[tokio::test]
    async fn init_error_is_reported() {
        let mut emu = Emulator::start("req-2", b"{}".to_vec())
            .await
            .expect("start");
        let addr = emu.host_port();
        let posted = http(
            &addr,
            format!("POST {BASE}/init/error HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"),
        )
        .await;
        assert!(posted.starts_with("HTTP/1.1 202"), "{posted}");
        let answer = emu.wait(Duration::from_secs(5)).await.expect("answer");
        assert!(matches!(answer.outcome, Outcome::InitError(_)));
    }
}
