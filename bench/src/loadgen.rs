//! A small closed-loop HTTP/1.1 load generator: `concurrency` keep-alive connections, each sending one
//! pre-built (pre-signed) request after another until `total` requests have been sent. It parses only the
//! status line and `Content-Length`, so nearly all the CPU it leaves goes to the server under test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Build the bytes of a `POST` with a JSON body.
pub fn post_json(host: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    request("POST", host, path, headers, body)
}

/// Build the bytes of a request with a JSON body (empty for a `GET`).
pub fn request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json;charset=utf-8\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// What a load run did.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Requests answered with 2xx.
    pub ok: u64,
    /// Requests answered otherwise, or lost to a connection error.
    pub failed: u64,
    pub elapsed: Duration,
    /// One example of a failure, for the report.
    pub first_error: Option<String>,
}

impl LoadResult {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One keep-alive connection of the load generator (reconnects after an error or a `connection: close`).
struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            stream: None,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Send one request and read its response (left in `self.buf`); the status.
    async fn exchange(&mut self, request: &[u8]) -> Result<u16, String> {
        let result = async {
            if self.stream.is_none() {
                let s = TcpStream::connect(self.addr)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                s.set_nodelay(true).map_err(|e| e.to_string())?;
                self.stream = Some(s);
            }
            let s = self.stream.as_mut().ok_or("no connection")?;
            s.write_all(request)
                .await
                .map_err(|e| format!("write: {e}"))?;
            read_response(s, &mut self.buf).await
        }
        .await;
        match result {
            Ok((status, keep_alive)) => {
                if !keep_alive {
                    self.stream = None;
                }
                Ok(status)
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }
}

/// Send `total` copies of `request` to `addr` over `concurrency` connections.
pub async fn run(addr: SocketAddr, request: Vec<u8>, concurrency: usize, total: u64) -> LoadResult {
    let request = Arc::new(request);
    let issued = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let (request, issued, ok, failed, first_error) = (
            request.clone(),
            issued.clone(),
            ok.clone(),
            failed.clone(),
            first_error.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            let mut consecutive_errors = 0u32;
            while issued.fetch_add(1, Ordering::Relaxed) < total {
                match conn.exchange(&request).await {
                    Ok(status) => {
                        consecutive_errors = 0;
                        if (200..300).contains(&status) {
                            ok.fetch_add(1, Ordering::Relaxed);
                        } else {
                            failed.fetch_add(1, Ordering::Relaxed);
                            record(
                                &first_error,
                                format!("HTTP {status}: {}", String::from_utf8_lossy(&conn.buf)),
                            );
                        }
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        record(&first_error, e);
                        consecutive_errors += 1;
                        if consecutive_errors >= 20 {
                            break; // the server is gone: stop instead of spinning
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let first_error = first_error.lock().map(|g| g.clone()).unwrap_or(None);
    LoadResult {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
        first_error,
    }
}

/// What one kind of request of a timed run got back.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Answers by status code.
    pub statuses: std::collections::BTreeMap<u16, u64>,
    /// Connection errors (no answer).
    pub errors: u64,
    /// Latency of every answer (ms), any status.
    pub latencies_ms: Vec<f64>,
    /// One example of a non-2xx answer or an error.
    pub first_error: Option<String>,
}

impl Outcome {
    /// Answers that were not 2xx, plus connection errors.
    pub fn failed(&self) -> u64 {
        self.errors
            + self
                .statuses
                .iter()
                .filter(|(s, _)| !(200..300).contains(*s))
                .map(|(_, n)| n)
                .sum::<u64>()
    }

    pub fn merge(&mut self, other: Outcome) {
        for (s, n) in other.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        self.errors += other.errors;
        self.latencies_ms.extend(other.latencies_ms);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// How the connections of a timed run pace their requests.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Each connection sends its next request as soon as the previous is answered (closed loop).
    Flat,
    /// Each connection sends one request every interval, on a fixed schedule; a request's latency is counted
    /// from its scheduled instant, so a stall also counts against the requests it delayed.
    Every(Duration),
}

/// Send `requests` to `addr` over `concurrency` keep-alive connections for `duration`: connection `c` sends
/// `requests[(c + k) % len]` as its `k`-th request. The outcome of each request kind, in the order of
/// `requests`.
pub async fn run_for(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
    duration: Duration,
    pace: Pace,
) -> Vec<Outcome> {
    let kinds = requests.len();
    if kinds == 0 {
        return Vec::new();
    }
    let start = tokio::time::Instant::now();
    let end = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for c in 0..concurrency.max(1) {
        let requests = requests.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = vec![Outcome::default(); kinds];
            let mut conn = Conn::new(addr);
            // stagger the paced connections over one interval
            let mut due = match pace {
                Pace::Flat => start,
                Pace::Every(every) => start + every.mul_f64(c as f64 / concurrency.max(1) as f64),
            };
            let mut k = 0usize;
            loop {
                if let Pace::Every(_) = pace {
                    tokio::time::sleep_until(due).await;
                }
                let sent = match pace {
                    Pace::Flat => tokio::time::Instant::now(),
                    Pace::Every(_) => due,
                };
                if sent >= end {
                    break;
                }
                let i = (c + k) % kinds;
                k += 1;
                let result = conn.exchange(&requests[i]).await;
                let o = &mut out[i];
                match result {
                    Ok(status) => {
                        o.latencies_ms.push(sent.elapsed().as_secs_f64() * 1e3);
                        *o.statuses.entry(status).or_default() += 1;
                        if !(200..300).contains(&status) && o.first_error.is_none() {
                            let mut e =
                                format!("HTTP {status}: {}", String::from_utf8_lossy(&conn.buf));
                            e.truncate(300);
                            o.first_error = Some(e);
                        }
                    }
                    Err(e) => {
                        o.errors += 1;
                        o.first_error.get_or_insert(e);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                if let Pace::Every(every) = pace {
                    due += every;
                }
            }
            out
        }));
    }
    let mut total = vec![Outcome::default(); kinds];
    for t in tasks {
        if let Ok(out) = t.await {
            for (acc, o) in total.iter_mut().zip(out) {
                acc.merge(o);
            }
        }
    }
    total
}

fn record(slot: &std::sync::Mutex<Option<String>>, error: String) {
    if let Ok(mut g) = slot.lock() {
        if g.is_none() {
            let mut e = error;
            e.truncate(300);
            *g = Some(e);
        }
    }
}

/// Read one response; leaves its body in `buf`. Returns the status and whether the connection stays open.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(u16, bool), String> {
    buf.clear();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(pos) = find(buf, b"\r\n\r\n") {
            break pos + 4;
        }
        let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed before a response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..header_end])
        .map_err(|_| "non-UTF-8 response head".to_string())?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head:.80}"))?;
    let mut length = None;
    let mut keep_alive = true;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            {
                keep_alive = false;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err("chunked responses are not supported by the load generator".into());
            }
        }
    }
    let length = length.ok_or("response without content-length")?;
    while buf.len() < header_end + length {
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read body: {e}"))?;
        if n == 0 {
            return Err("connection closed in the body".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..header_end);
    Ok((status, keep_alive))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use axum::Router;

    #[tokio::test]
    async fn counts_successes_and_failures() {
        let app = Router::new()
            .route(
                "/ok",
                post(|| async { axum::Json(serde_json::json!({"msg-id": "x"})) }),
            )
            .route(
                "/bad",
                post(|| async { (axum::http::StatusCode::BAD_REQUEST, "{}") }),
            );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let host = addr.to_string();
        let ok = run(
            addr,
            post_json(&host, "/ok", &[("x-test", "1".into())], b"{}"),
            4,
            50,
        )
        .await;
        assert_eq!((ok.ok, ok.failed), (50, 0));
        assert!(ok.rate() > 0.0);
        let bad = run(addr, post_json(&host, "/bad", &[], b"{}"), 2, 10).await;
        assert_eq!((bad.ok, bad.failed), (0, 10));
        assert!(bad.first_error.is_some_and(|e| e.starts_with("HTTP 400")));
        server.abort();
    }

    #[tokio::test]
    async fn a_timed_run_counts_each_request_kind_and_paces_its_connections() {
        let app = Router::new().route("/ok", post(|| async { "{}" })).route(
            "/bad",
            post(|| async { (axum::http::StatusCode::BAD_REQUEST, "{}") }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let host = addr.to_string();
        let requests = Arc::new(vec![
            post_json(&host, "/ok", &[], b"{}"),
            post_json(&host, "/bad", &[], b"{}"),
        ]);
        let paced = run_for(
            addr,
            requests.clone(),
            2,
            Duration::from_millis(500),
            Pace::Every(Duration::from_millis(50)),
        )
        .await;
        let answered: u64 = paced.iter().flat_map(|o| o.statuses.values()).sum();
        // 2 connections × 10 slots of 50 ms, alternating between the two kinds
        assert!((18..=20).contains(&answered), "{answered}");
        assert_eq!(paced[0].failed(), 0);
        assert_eq!(paced[1].failed(), paced[1].statuses[&400]);
        assert!(paced[1]
            .first_error
            .as_ref()
            .is_some_and(|e| e.starts_with("HTTP 400")));
        assert_eq!(paced[0].latencies_ms.len() as u64, paced[0].statuses[&200]);
        let flat = run_for(addr, requests, 2, Duration::from_millis(200), Pace::Flat).await;
        assert!(flat[0].statuses[&200] > 20, "{:?}", flat[0].statuses);
        server.abort();
    }
}
