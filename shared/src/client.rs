//! The HTTP client: signing, transport, response interpretation and retries.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use md5::{Digest, Md5};
use rand::Rng;
use tokio::time::Instant;

use crate::config::Config;
use crate::error::{ApiError, Error, MAX_RETRY_AFTER, RATE_LIMIT_PENALTY};
use crate::request::{encode_query, Request};
use crate::retry::{Outcome, RetryClass, RetryPolicy};

/// The `User-Agent` this crate sends (the SDK sends `AVOS Cloud python-2.1.9 SDK (3.11)`).
pub const USER_AGENT: &str = concat!("leancloud-im-rust/", env!("CARGO_PKG_VERSION"));

/// The `Content-Type` the SDK sends on every request, GET included.
pub const CONTENT_TYPE: &str = "application/json;charset=utf-8";

const MAX_ERROR_BODY_CHARS: usize = 512;
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// `X-LC-Sign` exactly as the SDK computes it: `md5hex(timestamp_ms + key),timestamp_ms`, with
/// `,master` appended when `key` is the master key.
///
/// ```
/// # use leancloud_im::sign;
/// assert_eq!(
///     "f22aa0c65ce3229ae0959b8ff624c0e3,1795629353982,master",
///     sign(1795629353982, "TestMasterKey", true)
/// );
/// ```
pub fn sign(timestamp_ms: u64, key: &str, master: bool) -> String {
    let ts = timestamp_ms.to_string();
    let mut hasher = Md5::new();
    hasher.update(ts.as_bytes());
    hasher.update(key.as_bytes());
    let digest = hex::encode(hasher.finalize());
    if master {
        format!("{digest},{ts},master")
    } else {
        format!("{digest},{ts}")
    }
}

/// Transport settings. `Default` gives the values documented on each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Limit for establishing a connection (default 5 s).
    pub connect_timeout: Duration,
    /// Limit for one attempt, from connecting to the end of the body (default 15 s, the SDK's
    /// `TIMEOUT_SECONDS`).
    pub request_timeout: Duration,
    /// Attempts per call, first one included (default 3; 1 disables retries).
    pub max_attempts: u32,
    /// Backoff before the second attempt; it doubles for each further attempt and is jittered
    /// (default 200 ms).
    pub base_backoff: Duration,
    /// Deadline [`Client::execute`] uses, counted from the call (default 30 s).
    pub default_deadline: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            max_attempts: 3,
            base_backoff: Duration::from_millis(200),
            default_deadline: Duration::from_secs(30),
        }
    }
}

struct Inner {
    http: reqwest::Client,
    config: Config,
    options: ClientOptions,
    /// `<api_server without trailing slash>`; each request adds its version (`/1.1`, `/1.2`).
    base: String,
}

/// A LeanCloud REST client. Cheap to clone (one shared connection pool); build it once.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("options", &self.inner.options)
            .finish()
    }
}

/// A request checked and encoded once, for every attempt.
struct Prepared {
    method: http::Method,
    url: String,
    body: Option<Vec<u8>>,
    idempotent: bool,
}

impl Prepared {
    fn new<R: Request + ?Sized>(client: &Client, request: &R) -> Result<Prepared, Error> {
        request.validate()?;
        Ok(Prepared {
            body: request.body()?,
            method: request.method(),
            url: client.url_for(request),
            idempotent: request.is_idempotent(),
        })
    }
}

/// What came back from one attempt, before interpretation.
struct RawResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Client {
    /// A client with [`ClientOptions::default`].
    pub fn new(config: Config) -> Result<Client, Error> {
        Self::with_options(config, ClientOptions::default())
    }

    /// A client with custom transport settings.
    pub fn with_options(config: Config, options: ClientOptions) -> Result<Client, Error> {
        let http = config
            .tls_roots()
            .apply(reqwest::Client::builder())
            .user_agent(USER_AGENT)
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            // The SDK's adapter keeps connections alive with TCP keep-alive probes after 60 s idle.
            .tcp_keepalive(Duration::from_secs(60))
            // Never follow a redirect: reqwest would carry X-LC-Sign (the master signature) and X-LC-Id to
            // whatever host the Location names. A 3xx is answered as the error it is.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(Error::Transport)?;
        let base = config
            .api_server()
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                config,
                options,
                base,
            }),
        })
    }

    /// The configuration this client signs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The transport settings.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The full URL a request goes to (base, `/1.1` or `/1.2`, path, encoded query).
    pub fn url_for<R: Request + ?Sized>(&self, request: &R) -> String {
        let mut url = format!(
            "{}/{}{}",
            self.inner.base,
            request.api_version(),
            request.path()
        );
        let query = request.query();
        if !query.is_empty() {
            url.push('?');
            url.push_str(&encode_query(&query));
        }
        url
    }

    /// Execute `request` within [`ClientOptions::default_deadline`].
    pub async fn execute<R: Request + ?Sized>(&self, request: &R) -> Result<R::Response, Error> {
        let deadline = Instant::now() + self.inner.options.default_deadline;
        self.execute_until(request, deadline).await
    }

    /// Execute `request`, retrying transient failures (connection errors, 5xx, timeouts) with
    /// jittered exponential backoff while attempts remain and `deadline` allows. Requests that are
    /// not idempotent are retried only when the connection failed, so a message is never sent twice
    /// by this client. A 429 is returned at once as [`Error::RateLimited`].
    ///
    /// This is a loop over what [`Client::execute_once`] does, with [`ClientOptions::max_attempts`] and
    /// [`ClientOptions::base_backoff`] as its [`RetryPolicy`].
    pub async fn execute_until<R: Request + ?Sized>(
        &self,
        request: &R,
        deadline: Instant,
    ) -> Result<R::Response, Error> {
        let prepared = Prepared::new(self, request)?;
        let options = &self.inner.options;
        let policy = RetryPolicy {
            max_attempts: options.max_attempts.max(1),
            base: options.base_backoff,
            cap: MAX_BACKOFF,
        };

        let mut attempt = 1;
        loop {
            let (error, class) = match self.once(request, &prepared, deadline).await {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let backoff = match policy.decide(
                class,
                attempt,
                prepared.idempotent,
                left,
                rand::rng().random(),
            ) {
                Outcome::Stop => return Err(error),
                Outcome::RetryAfter(backoff) => backoff,
            };
            tracing::warn!(method = %prepared.method, path = %request.path(), attempt, ?backoff, error = %error, "retrying LeanCloud request");
            tokio::time::sleep(backoff).await;
            attempt += 1;
        }
    }

    /// Execute `request` once: one HTTP request at most, never retried, whatever
    /// [`ClientOptions::max_attempts`] says. For callers that run their own retry loop (and count each
    /// request, e.g. against a rate budget), so that one call chain has one loop.
    ///
    /// A failure comes with its [`RetryClass`], which only the client can tell exactly: a connection
    /// that could not be established (a connect timeout included) is [`RetryClass::Always`], though its
    /// error may read [`Error::Timeout`]. Feed it to [`RetryPolicy::decide`] with
    /// [`Request::is_idempotent`]. A request rejected before sending ([`Error::Invalid`]) and a
    /// `deadline` already passed ([`Error::Timeout`], nothing sent) are [`RetryClass::Never`].
    pub async fn execute_once<R: Request + ?Sized>(
        &self,
        request: &R,
        deadline: Instant,
    ) -> Result<R::Response, (Error, RetryClass)> {
        let prepared = Prepared::new(self, request).map_err(|e| (e, RetryClass::Never))?;
        self.once(request, &prepared, deadline).await
    }

    /// One attempt of a validated, encoded request.
    async fn once<R: Request + ?Sized>(
        &self,
        request: &R,
        prepared: &Prepared,
        deadline: Instant,
    ) -> Result<R::Response, (Error, RetryClass)> {
        let now = Instant::now();
        if now >= deadline {
            return Err((Error::Timeout, RetryClass::Never));
        }
        let timeout = self.inner.options.request_timeout.min(deadline - now);
        let url = &prepared.url;
        match self
            .attempt(&prepared.method, url, prepared.body.as_deref(), timeout)
            .await
        {
            Ok(raw) => match interpret(url, raw) {
                // A success whose body does not decode is not retried: the request was applied.
                Ok((status, value)) => request
                    .decode(status, value)
                    .map_err(|error| (error, RetryClass::Never)),
                Err(error) => {
                    let class = RetryClass::of_status(error.status());
                    Err((error, class))
                }
            },
            Err(e) => {
                // A connect error means no byte of the request reached the server.
                let class = if e.is_connect() {
                    RetryClass::Always
                } else {
                    RetryClass::IfIdempotent
                };
                let error = if e.is_timeout() {
                    Error::Timeout
                } else {
                    Error::Transport(e)
                };
                Err((error, class))
            }
        }
    }

    async fn attempt(
        &self,
        method: &http::Method,
        url: &str,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<RawResponse, reqwest::Error> {
        let config = &self.inner.config;
        let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        let mut builder = self
            .inner
            .http
            .request(method.clone(), url)
            .timeout(timeout)
            .header(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(CONTENT_TYPE),
            )
            .header("X-LC-Id", config.app_id());
        if let Some(hook_key) = config.hook_key() {
            builder = builder.header("X-LC-Hook-Key", hook_key);
        }
        builder = builder
            .header("X-LC-Prod", if config.production() { "1" } else { "0" })
            .header("X-LC-Sign", sign(now_ms, config.master_key(), true));
        if let Some(body) = body {
            builder = builder.body(body.to_vec());
        }
        tracing::debug!(%method, url, "LeanCloud request");
        let response = builder.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?.to_vec();
        tracing::debug!(%method, url, status = status.as_u16(), "LeanCloud response");
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }
}

fn truncate_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(MAX_ERROR_BODY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

/// `Retry-After` as seconds or an HTTP date, at most [`MAX_RETRY_AFTER`]; LeanCloud's one-minute penalty
/// when absent or unreadable.
fn retry_after(headers: &HeaderMap) -> Duration {
    parse_retry_after(headers).min(MAX_RETRY_AFTER)
}

fn parse_retry_after(headers: &HeaderMap) -> Duration {
    let Some(value) = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
    else {
        return RATE_LIMIT_PENALTY;
    };
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Duration::from_secs(secs);
    }
    if let Ok(at) = chrono::DateTime::parse_from_rfc2822(value) {
        let delta = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
        return delta.to_std().unwrap_or(Duration::ZERO);
    }
    RATE_LIMIT_PENALTY
}

/// What [`Client::execute`] makes of one HTTP answer: `request`'s response, or the typed error (API error,
/// status, rate limit with its `Retry-After`, decode failure), without any transport. Not a stable API: it
/// is public for the fuzz target `client_response`.
#[doc(hidden)]
pub fn decode_response<R: Request + ?Sized>(
    request: &R,
    url: &str,
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Result<R::Response, Error> {
    let (status, value) = interpret(
        url,
        RawResponse {
            status,
            headers,
            body,
        },
    )?;
    request.decode(status, value)
}

/// Response handling: like the SDK, a JSON object with an `error` key is an error whatever the
/// status; unlike the SDK, a non-2xx status without it is an error too, and nothing panics.
fn interpret(url: &str, raw: RawResponse) -> Result<(u16, serde_json::Value), Error> {
    let status = raw.status.as_u16();
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&raw.body).ok();
    if raw.status == StatusCode::TOO_MANY_REQUESTS {
        let api = parsed.as_ref().and_then(|v| ApiError::from_body(status, v));
        return Err(Error::RateLimited {
            retry_after: retry_after(&raw.headers),
            api,
        });
    }
    match parsed {
        Some(value) => {
            if let Some(api) = ApiError::from_body(status, &value) {
                return Err(Error::Api(api));
            }
            if raw.status.is_success() {
                Ok((status, value))
            } else {
                Err(Error::Status {
                    status,
                    url: url.to_owned(),
                    body: truncate_body(&raw.body),
                })
            }
        }
        None => Err(Error::Status {
            status,
            url: url.to_owned(),
            body: truncate_body(&raw.body),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_spec_vectors() {
        assert_eq!(
            "f22aa0c65ce3229ae0959b8ff624c0e3,1795629353982,master",
            sign(1795629353982, "TestMasterKey", true)
        );
        assert_eq!(
            "d5524a1886218e6e721fc16a29e04a83,1795629355310",
            sign(1795629355310, "TestAppKey", false)
        );
        assert_eq!(
            "d5bcbb897e19b2f6633c716dfdfaf9be,1453014943466",
            sign(1453014943466, "UtOCzqb67d3sN12Kts4URwy8", false)
        );
        // scenario 12 of the captures
        assert_eq!(
            "4efcb2899ba8ea9501555c3b0c365320,1795629354641,master",
            sign(1795629354641, "TestMasterKey", true)
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_defaults_to_the_penalty() {
        let mut headers = HeaderMap::new();
        assert_eq!(RATE_LIMIT_PENALTY, retry_after(&headers));
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(Duration::from_secs(7), retry_after(&headers));
        headers.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            Duration::ZERO,
            retry_after(&headers),
            "a date in the past means now"
        );
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(RATE_LIMIT_PENALTY, retry_after(&headers));
    }

    /// L6: `Retry-After: 18446744073709551615` (u64::MAX seconds) came back as is, and `Instant::now() + it`
    /// in the functions' budget panicked; a date years ahead paused the bucket for the process's life.
    #[test]
    fn l6_retry_after_is_capped_at_an_hour() {
        let mut headers = HeaderMap::new();
        for value in [
            "18446744073709551615",
            "86400",
            "Fri, 01 Jan 2100 00:00:00 GMT",
        ] {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static(value));
            assert_eq!(MAX_RETRY_AFTER, retry_after(&headers), "for {value}");
        }
        assert_eq!(Duration::from_secs(3600), MAX_RETRY_AFTER);
    }

    /// `execute_once` is one HTTP request whatever `max_attempts` says, and hands back the class the
    /// caller's loop decides with; `execute_until` around it still retries an idempotent request on a 503.
    #[tokio::test]
    async fn execute_once_sends_one_request_and_classes_the_failure() {
        use wiremock::{matchers::any, Mock, MockServer, ResponseTemplate};

        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
            .mount(&server)
            .await;
        let config = Config::builder("once-app-id")
            .master_key("k")
            .api_server(server.uri())
            .build()
            .unwrap();
        let options = ClientOptions {
            base_backoff: Duration::from_millis(1),
            ..ClientOptions::default()
        };
        let client = Client::with_options(config, options).unwrap();
        let get = crate::GetConversation::new(crate::ConversationId::parse("abc").unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);

        let (error, class) = client.execute_once(&get, deadline).await.unwrap_err();
        assert_eq!(Some(503), error.status());
        assert_eq!(RetryClass::IfIdempotent, class);
        assert_eq!(1, server.received_requests().await.unwrap().len());

        let error = client.execute_until(&get, deadline).await.unwrap_err();
        assert_eq!(Some(503), error.status());
        assert_eq!(1 + 3, server.received_requests().await.unwrap().len());

        let past = Instant::now();
        let (error, class) = client.execute_once(&get, past).await.unwrap_err();
        assert!(matches!(error, Error::Timeout), "{error:?}");
        assert_eq!(RetryClass::Never, class);
        assert_eq!(
            4,
            server.received_requests().await.unwrap().len(),
            "nothing sent"
        );
    }

    #[test]
    fn error_body_text_is_truncated() {
        let long = "x".repeat(2000);
        let t = truncate_body(long.as_bytes());
        assert_eq!(MAX_ERROR_BODY_CHARS + 1, t.chars().count());
    }
}
