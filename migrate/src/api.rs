//! The calls the export and the verification make, as [`leancloud_im::Request`]s, and [`Api`]: the client
//! with a request-rate limiter and patient retries. The retries are [`Api::call`]'s alone: the client under
//! it makes single attempts, so one call is at most [`ApiOptions::max_attempts`] requests, each paced and
//! counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use leancloud_im::{
    Client, ClientOptions, Config, ConfigError, Error, Request, RetryOutcome, RetryPolicy,
};
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
/// Members of a relation per page (LeanCloud's largest query page).
pub const RELATION_LIMIT: u32 = 1000;
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

/// `GET /__admin/class-permissions` (leancloud-server's; LeanCloud's API has no such endpoint): the classes whose
/// permissions were set.
#[derive(Debug, Clone)]
pub struct ClassPermissionsList;

/// The answer of [`ClassPermissionsList`].
#[derive(Debug, Clone, Deserialize)]
pub struct ClassPermissionsPage {
    pub results: Vec<Map<String, Value>>,
}

impl Request for ClassPermissionsList {
    type Response = ClassPermissionsPage;
    fn method(&self) -> http::Method {
        http::Method::GET
    }
    fn path(&self) -> String {
        "/../__admin/class-permissions".into()
    }
    fn query(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    fn body(&self) -> Result<Option<Vec<u8>>, Error> {
        Ok(None)
    }
    fn is_idempotent(&self) -> bool {
        true
    }
}

/// `GET /1.1/classes/{target}?where={"$relatedTo":…,"objectId":{"$gt":after}}&keys=objectId&order=objectId&limit`:
/// the ids of the objects one `Relation` field of one object holds, a page at a time.
#[derive(Debug, Clone)]
pub struct RelatedIds {
    pub owner_class: String,
    pub owner_id: String,
    pub key: String,
    pub target_class: String,
    pub after: Option<String>,
    pub limit: u32,
}

/// One page of [`RelatedIds`].
#[derive(Debug, Clone, Deserialize)]
pub struct RelatedPage {
    pub results: Vec<Map<String, Value>>,
}

impl Request for RelatedIds {
    type Response = RelatedPage;
    fn method(&self) -> http::Method {
        http::Method::GET
    }
    fn path(&self) -> String {
        format!("/classes/{}", segment(&self.target_class))
    }
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut w = serde_json::json!({"$relatedTo": {
            "object": {"__type": "Pointer", "className": self.owner_class, "objectId": self.owner_id},
            "key": self.key,
        }});
        if let Some(after) = &self.after {
            w["objectId"] = serde_json::json!({"$gt": after});
        }
        vec![
            ("where", w.to_string()),
            ("keys", "objectId".into()),
            ("order", "objectId".into()),
            ("limit", self.limit.to_string()),
        ]
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
    /// Attempts per call before the export stops (it can be resumed): HTTP requests, the first included.
    pub max_attempts: u32,
}

/// Backoff after a call's first failed attempt; it doubles per attempt (jittered into its upper half).
pub const RETRY_BASE: Duration = Duration::from_millis(500);
/// Longest backoff between two attempts of a call (a 429's `Retry-After` is waited in full instead).
pub const MAX_BACKOFF: Duration = Duration::from_secs(32);

impl ApiOptions {
    /// The shared retry policy with this tool's attempts and backoff.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.max(1),
            base: RETRY_BASE,
            cap: MAX_BACKOFF,
        }
    }
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
    /// HTTP requests sent (attempts, retries included).
    pub requests: AtomicU64,
    /// Attempts that were retried.
    pub retries: AtomicU64,
    /// 429 answers that were waited out and retried.
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
        // Single attempts: `call` is the only retry loop.
        let client_options = ClientOptions {
            request_timeout: options.request_timeout,
            connect_timeout: options.request_timeout.min(Duration::from_secs(10)),
            max_attempts: 1,
            base_backoff: Duration::from_millis(200),
            default_deadline: options.request_timeout,
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

    /// Executes `request`, retrying transient failures up to [`ApiOptions::max_attempts`] attempts in all:
    /// 5xx, timeouts and failed or dropped connections with the shared [`RetryPolicy`]'s backoff (idempotent
    /// requests only, which all of this tool's are), a 429 after its `Retry-After`.
    pub async fn call<R: Request>(&self, request: &R) -> Result<R::Response, Error> {
        let policy = self.options.retry_policy();
        let mut attempt = 1u32;
        loop {
            self.pacer.wait().await;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let deadline = Instant::now() + self.options.request_timeout;
            let (error, class) = match self.client.execute_once(request, deadline).await {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
            let outcome = match error.retry_after() {
                // A 429: LeanCloud says how long the bucket is closed; wait that, within the attempts.
                Some(after) if attempt < policy.max_attempts => {
                    self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                    RetryOutcome::RetryAfter(after.max(Duration::from_millis(100)))
                }
                Some(_) => RetryOutcome::Stop,
                None => policy.decide(
                    class,
                    attempt,
                    request.is_idempotent(),
                    Duration::MAX,
                    rand::random::<f64>(),
                ),
            };
            let wait = match outcome {
                RetryOutcome::Stop => return Err(error),
                RetryOutcome::RetryAfter(wait) => wait,
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(path = %request.path(), attempt, ?wait, %error, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A server that answers every request with a plain-text 503 and closes the connection; the count is
    /// of requests that reached it.
    async fn always_503() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    // A GET without a body: the head is the request.
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let answer = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\
                                  connection: close\r\n\r\nbusy";
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        (url, requests)
    }

    /// One loop per call: `--max-attempts 3` is 3 requests, 2 of them retries (before, each of the 3 was the
    /// client's own 3 attempts: 9 requests, counted as 3).
    #[tokio::test]
    async fn max_attempts_counts_http_requests_and_every_retry_is_counted() {
        let (url, requests) = always_503().await;
        let config = config(Some("api-test-app-id"), Some("k"), Some(&url)).unwrap();
        let api = Api::new(
            config,
            ApiOptions {
                max_attempts: 3,
                request_timeout: Duration::from_secs(5),
                ..ApiOptions::default()
            },
        )
        .unwrap();
        let scan = Scan {
            class: "_Conversation".into(),
            limit: SCAN_LIMIT,
            cursor: None,
        };

        let error = api.call(&scan).await.unwrap_err();

        assert_eq!(Some(503), error.status(), "{error}");
        assert_eq!(3, requests.load(Ordering::SeqCst));
        assert_eq!(3, api.stats.requests.load(Ordering::Relaxed));
        assert_eq!(2, api.stats.retries.load(Ordering::Relaxed));
    }
}
