//! The calls the export and the verification make, as [`leancloud_im::Request`]s, and [`Api`]: the client
//! with a request-rate limiter and patient retries on top of the client's own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use leancloud_im::{Client, ClientOptions, Config, ConfigError, Error, Request};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Paths of [`Request`] are relative to `<server>/1.1`; the 1.2 endpoints are reached through `..`, which
/// URL parsing resolves (`<server>/1.1/../1.2/rtm/…` is sent as `<server>/1.2/rtm/…`).
const V12: &str = "/../1.2";

/// Objects per Scan page (LeanCloud's maximum).
pub const SCAN_LIMIT: u32 = 1000;
/// Records per history page (LeanCloud's maximum).
pub const HISTORY_LIMIT: u32 = 1000;
/// Subscribers per page (LeanCloud's maximum).
pub const SUBSCRIBER_LIMIT: u32 = 50;

/// `GET /1.1/scan/classes/{class}?limit&cursor&returnACL=true`.
#[derive(Debug, Clone)]
pub struct Scan {
    pub class: String,
    pub limit: u32,
    pub cursor: Option<String>,
}

/// One page of [`Scan`]. `cursor` is absent or `null` after the last page.
#[derive(Debug, Clone, Deserialize)]
pub struct ScanPage {
    pub results: Vec<Map<String, Value>>,
    #[serde(default)]
    pub cursor: Option<String>,
}

impl Request for Scan {
    type Response = ScanPage;
    fn method(&self) -> http::Method {
        http::Method::GET
    }
    fn path(&self) -> String {
        format!("/scan/classes/{}", segment(&self.class))
    }
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![("limit", self.limit.to_string())];
        if let Some(c) = &self.cursor {
            q.push(("cursor", c.clone()));
        }
        q.push(("returnACL", "true".into()));
        q
    }
    fn body(&self) -> Result<Option<Vec<u8>>, Error> {
        Ok(None)
    }
    fn is_idempotent(&self) -> bool {
        true
    }
}

/// Which history endpoint a conversation's messages come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryOf {
    /// `/1.2/rtm/conversations/{id}/messages` (normal and unique conversations, service conversations).
    Conversation(String),
    /// `/1.2/rtm/chatrooms/{id}/messages` (`tr`).
    ChatRoom(String),
    /// `/1.2/rtm/service-conversations/{conv}/subscribers/{client}/messages`: what one subscriber of a
    /// service conversation received, messages to chosen clients included.
    Subscriber { conv: String, client: String },
}

/// Percent-encodes one path segment (ids may hold characters such as `/`, `?` or spaces).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `GET /1.2/rtm/…/{id}/messages?limit&reversed=true[&timestamp&msgid]`: oldest first, strictly after
/// `after` (a `(timestamp, msg-id)` cursor) when given.
#[derive(Debug, Clone)]
pub struct History {
    pub of: HistoryOf,
    pub limit: u32,
    pub after: Option<(i64, String)>,
}

impl Request for History {
    type Response = Vec<Map<String, Value>>;
    fn method(&self) -> http::Method {
        http::Method::GET
    }
    fn path(&self) -> String {
        match &self.of {
            HistoryOf::Conversation(id) => {
                format!("{V12}/rtm/conversations/{}/messages", segment(id))
            }
            HistoryOf::ChatRoom(id) => format!("{V12}/rtm/chatrooms/{}/messages", segment(id)),
            HistoryOf::Subscriber { conv, client } => format!(
                "{V12}/rtm/service-conversations/{}/subscribers/{}/messages",
                segment(conv),
                segment(client)
            ),
        }
    }
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("limit", self.limit.to_string()),
            ("reversed", "true".into()),
        ];
        if let Some((ts, msgid)) = &self.after {
            q.push(("timestamp", ts.to_string()));
            q.push(("msgid", msgid.clone()));
        }
        q
    }
    fn body(&self) -> Result<Option<Vec<u8>>, Error> {
        Ok(None)
    }
    fn is_idempotent(&self) -> bool {
        true
    }
}

/// `GET /1.2/rtm/service-conversations/{id}/subscribers?limit[&client_id]`: ordered by client id, after
/// `after`.
#[derive(Debug, Clone)]
pub struct Subscribers {
    pub conv_id: String,
    pub after: Option<String>,
}

impl Request for Subscribers {
    type Response = Vec<Map<String, Value>>;
    fn method(&self) -> http::Method {
        http::Method::GET
    }
    fn path(&self) -> String {
        format!(
            "{V12}/rtm/service-conversations/{}/subscribers",
            segment(&self.conv_id)
        )
    }
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![("limit", SUBSCRIBER_LIMIT.to_string())];
        if let Some(c) = &self.after {
            q.push(("client_id", c.clone()));
        }
        q
    }
    fn body(&self) -> Result<Option<Vec<u8>>, Error> {
        Ok(None)
    }
    fn is_idempotent(&self) -> bool {
        true
    }
}

/// Where to connect and how hard to push.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// At most this many requests per second (0 = no limit).
    pub max_requests_per_second: f64,
    /// Limit of one attempt.
    pub request_timeout: Duration,
    /// Attempts per call before the export stops (it can be resumed).
    pub max_attempts: u32,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            max_requests_per_second: 0.0,
            request_timeout: Duration::from_secs(30),
            max_attempts: 30,
        }
    }
}

/// Counters of what the API did.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
}

/// A client that spaces its requests and retries every transient failure (5xx, 429 after its
/// `Retry-After`, timeouts, dropped connections) with backoff. All its calls are reads.
#[derive(Debug, Clone)]
pub struct Api {
    client: Client,
    options: ApiOptions,
    pacer: Arc<Pacer>,
    pub stats: Arc<Stats>,
}

/// Spaces calls: at most `per_second` starts a second, in the order they asked (0: no limit).
#[derive(Debug)]
pub struct Pacer {
    interval: Option<Duration>,
    next_slot: Mutex<Instant>,
}

impl Pacer {
    pub fn new(per_second: f64) -> Pacer {
        Pacer {
            interval: (per_second > 0.0).then(|| Duration::from_secs_f64(1.0 / per_second)),
            next_slot: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this call's slot.
    pub async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let wait_until = {
            let mut slot = self.next_slot.lock().await;
            let now = Instant::now();
            let at = (*slot).max(now);
            *slot = at + interval;
            at
        };
        tokio::time::sleep_until(wait_until).await;
    }
}

/// Builds the client configuration: flags win over the environment (`LEANCLOUD_APP_ID`,
/// `LEANCLOUD_APP_MASTER_KEY` or `LEANCLOUD_MASTER_KEY`, `LEANCLOUD_APP_KEY`, `LEANCLOUD_API_SERVER`).
pub fn config(
    app_id: Option<&str>,
    master_key: Option<&str>,
    api_server: Option<&str>,
) -> Result<Config, ConfigError> {
    Config::from_lookup(|name| {
        let flag = match name {
            "LEANCLOUD_APP_ID" => app_id,
            "LEANCLOUD_APP_MASTER_KEY" => master_key,
            "LEANCLOUD_API_SERVER" => api_server,
            _ => None,
        };
        flag.map(str::to_owned)
            .or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()))
            .or_else(|| match name {
                "LEANCLOUD_APP_MASTER_KEY" => std::env::var("LEANCLOUD_MASTER_KEY").ok(),
                _ => None,
            })
    })
}

impl Api {
    pub fn new(config: Config, options: ApiOptions) -> Result<Api, Error> {
        let client_options = ClientOptions {
            request_timeout: options.request_timeout,
            connect_timeout: options.request_timeout.min(Duration::from_secs(10)),
            max_attempts: 3,
            base_backoff: Duration::from_millis(200),
            default_deadline: options.request_timeout * 4,
        };
        Ok(Api {
            client: Client::with_options(config, client_options)?,
            pacer: Arc::new(Pacer::new(options.max_requests_per_second)),
            options,
            stats: Arc::new(Stats::default()),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Executes `request`, retrying transient failures up to [`ApiOptions::max_attempts`] times.
    pub async fn call<R: Request>(&self, request: &R) -> Result<R::Response, Error> {
        let mut attempt = 1u32;
        loop {
            self.pacer.wait().await;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            match self.client.execute(request).await {
                Ok(response) => return Ok(response),
                Err(error) if error.is_retryable() && attempt < self.options.max_attempts => {
                    let wait = match error.retry_after() {
                        Some(after) => {
                            self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                            after.max(Duration::from_millis(100))
                        }
                        None => Duration::from_millis(250u64 << attempt.min(7)),
                    };
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(path = %request.path(), attempt, ?wait, %error, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}
