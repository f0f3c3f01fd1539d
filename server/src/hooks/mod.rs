//! Realtime hooks: the app's own Cloud Engine functions (`_messageReceived`, `_conversationStart`, …) that
//! LeanCloud called around messages, conversation changes and logins (`leancloud-hooks.md`). The server calls
//! `POST {hooks-url}/1.1/functions/{hook}` with the documented parameters and `X-LC-Hook-Key`, and honours
//! the documented answers. Blocking hooks (`_messageReceived`, `_conversation{Start,Add,Remove,Update}`) run
//! under a concurrency bound and a timeout, failing open (the request proceeds) unless configured to fail
//! closed; after-hooks (`_messageSent`, `_receiversOffline`, `_clientOnline`, …) go through a bounded queue
//! that drops, and counts, what it cannot hold. Only hooks the app defines are called, as discovered with
//! `GET {hooks-url}/1.1/functions/_ops/metadatas`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};
use tokio::sync::{mpsc, Semaphore};

use crate::config::HooksConfig;
use crate::protocol::Hook;

/// Whether the hooks may be called at `url`: every call carries the master key, so only over TLS, or in
/// plain HTTP to a loopback or private address (the engine beside the server); `allow_http` lifts that for
/// a network the operator trusts. `Err` says why not, without the URL's credentials.
pub fn url_allowed(url: &str, allow_http: bool) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("--hooks-url is not a URL ({e})"))?;
    match parsed.scheme() {
        "https" => return Ok(()),
        "http" if allow_http => return Ok(()),
        "http" => {}
        other => return Err(format!("--hooks-url must be http or https, not {other}")),
    }
    let private = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.is_unique_local() || ip.is_unicast_link_local()
        }
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if private {
        Ok(())
    } else {
        Err(format!(
            "--hooks-url {}://{}/ is plain HTTP to a public or named host, and every hook call carries the \
             master key: use https, a loopback or private address, or --hooks-allow-http on a trusted network",
            parsed.scheme(),
            parsed.host_str().unwrap_or("")
        ))
    }
}

/// The largest answer read from the app's engine: a broken or hostile engine cannot stream more into
/// the server (review part 3, L-b). Hook answers are small objects.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Why a call failed when the hook did not answer in time (the metrics count it as `timeout`).
const TIMED_OUT: &str = "timed out";

/// Why an answer's body was not taken.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the body is over {0} bytes")]
    TooLarge(usize),
    #[error("the body could not be read")]
    Unreadable,
    #[error("the body is not JSON")]
    NotJson,
}

/// An answer's JSON body, read chunk by chunk and given up past `max` bytes.
async fn json_body(mut response: reqwest::Response, max: usize) -> Result<Value, BodyError> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|_| BodyError::Unreadable)? {
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|_| BodyError::NotJson)
}

/// What a blocking hook said.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not defined, or failed open: go on unchanged.
    Proceed,
    /// The hook's `result` object.
    Answer(Map<String, Value>),
    /// The hook failed (timeout, error status, bad JSON) and the policy is fail-closed.
    Failed(String),
    /// No slot for the call came free within the timeout: this server is overloaded, whatever the policy.
    /// The request is refused (retryable), never waved through unasked.
    Busy,
}

/// The app's answer to a request it may refuse (`reject`/`drop` with `code` and `detail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub app_code: Option<i64>,
    pub detail: Option<String>,
    /// Refused because the server could not ask the hook in time ([`Verdict::Busy`]): worth retrying.
    pub busy: bool,
}

impl Verdict {
    /// `Some` when the answer refuses the request under `key` (`drop` or `reject`), or the hook failed
    /// with fail-closed.
    pub fn refusal(&self, key: &str) -> Option<Refusal> {
        match self {
            Verdict::Proceed => None,
            Verdict::Failed(why) => Some(Refusal {
                app_code: None,
                detail: Some(format!("hook failed: {why}")),
                busy: false,
            }),
            Verdict::Busy => Some(Refusal {
                app_code: None,
                detail: Some("the server is too busy to ask the app's hook: retry later".into()),
                busy: true,
            }),
            Verdict::Answer(result) => {
                let refused = result.get(key).is_some_and(|v| match v {
                    Value::Bool(b) => *b,
                    Value::Null => false,
                    Value::Number(n) => n.as_f64() != Some(0.0),
                    Value::String(s) => !s.is_empty(),
                    _ => true,
                });
                refused.then(|| Refusal {
                    app_code: result.get("code").and_then(Value::as_i64),
                    detail: result
                        .get("detail")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    busy: false,
                })
            }
        }
    }

    pub fn answer(&self) -> Option<&Map<String, Value>> {
        match self {
            Verdict::Answer(m) => Some(m),
            _ => None,
        }
    }
}

struct Queued {
    hook: Hook,
    params: Value,
    /// Called with the hook's answer (for `_receiversOffline`, which decides the push).
    then: Option<Box<dyn FnOnce(Verdict) + Send>>,
}

/// Counters, for health and tests.
#[derive(Debug, Default)]
pub struct HookStats {
    pub calls: AtomicU64,
    pub failures: AtomicU64,
    pub dropped: AtomicU64,
    /// Blocking calls refused because no slot came free within the timeout.
    pub busy: AtomicU64,
}

/// The hook caller. Cheap to share (`Arc`).
pub struct Hooks {
    config: HooksConfig,
    http: reqwest::Client,
    app_id: String,
    master_key: String,
    /// `None` until discovery first succeeds: then every hook is tried.
    defined: RwLock<Option<HashSet<String>>>,
    permits: Semaphore,
    queue: Option<mpsc::Sender<Queued>>,
    pub stats: HookStats,
    /// Calls by hook and outcome, for `--metrics-listen`.
    metrics: Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Hooks {
    /// Builds the caller; with a URL, starts the after-hook workers and the discovery timer (so it must be
    /// called inside a Tokio runtime).
    pub fn start(
        config: HooksConfig,
        app_id: &str,
        master_key: &str,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Arc<Hooks> {
        // Never `Client::new()`: it panics where the system has no CA certificates (a `FROM scratch` image).
        let builder = || {
            reqwest::Client::builder()
                .timeout(config.timeout)
                .redirect(reqwest::redirect::Policy::none())
        };
        let http = config.tls_roots.apply(builder()).build().unwrap_or_else(|e| {
            tracing::error!(error = %e, "the hooks' HTTPS client could not use the configured CA certificates; using the built-in ones");
            leancloud_im::TlsRoots::Bundled
                .apply(builder())
                .build()
                .expect("an HTTP client with the built-in CA certificates")
        });
        let enabled = config.url.is_some();
        let (queue, rx) = if enabled {
            let (tx, rx) = mpsc::channel(config.queue_len.max(1));
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let hooks = Arc::new(Hooks {
            permits: Semaphore::new(config.concurrency.max(1)),
            config,
            http,
            app_id: app_id.to_string(),
            master_key: master_key.to_string(),
            defined: RwLock::new(None),
            queue,
            stats: HookStats::default(),
            metrics,
        });
        if let Some(rx) = rx {
            tokio::spawn(after_worker(Arc::downgrade(&hooks), rx));
            tokio::spawn(discovery(Arc::downgrade(&hooks)));
        }
        hooks
    }

    pub fn disabled() -> Arc<Hooks> {
        Hooks::start(HooksConfig::default(), "", "", Arc::default())
    }

    /// Whether the app defines `hook` (so it will be called).
    pub fn defines(&self, hook: Hook) -> bool {
        if self.config.url.is_none() {
            return false;
        }
        match self.defined.read().ok().as_deref() {
            Some(Some(set)) => set.contains(hook.name()),
            _ => true,
        }
    }

    /// Fetches the list of defined functions; keeps the previous list when that fails.
    pub async fn discover(&self) -> Result<usize, String> {
        let Some(url) = &self.config.url else {
            return Ok(0);
        };
        let response = self
            .http
            .get(format!(
                "{}/1.1/functions/_ops/metadatas",
                url.trim_end_matches('/')
            ))
            .header("X-LC-Id", &self.app_id)
            .header("X-LC-Key", format!("{},master", self.master_key))
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status().as_u16()));
        }
        let body = json_body(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| e.to_string())?;
        let names: HashSet<String> = body["result"]
            .as_array()
            .ok_or("no result list")?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let count = names.len();
        if let Ok(mut defined) = self.defined.write() {
            *defined = Some(names);
        }
        Ok(count)
    }

    async fn call(&self, hook: Hook, params: &Value) -> Result<Map<String, Value>, String> {
        let Some(url) = &self.config.url else {
            return Ok(Map::new());
        };
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let mut request = self
            .http
            .post(format!(
                "{}/1.1/functions/{hook}",
                url.trim_end_matches('/')
            ))
            .header("X-LC-Id", &self.app_id)
            // leanengine authenticates the app before it looks at the hook key: without a key it answers
            // 401 to every hook call.
            .header("X-LC-Key", format!("{},master", self.master_key))
            .json(params);
        if let Some(key) = &self.config.hook_key {
            request = request.header("X-LC-Hook-Key", key);
        }
        let result = async {
            let response = request.send().await.map_err(|e| {
                if e.is_timeout() {
                    TIMED_OUT.to_string()
                } else {
                    e.without_url().to_string()
                }
            })?;
            let status = response.status();
            let body = json_body(response, MAX_ANSWER_BYTES)
                .await
                .map_err(|e| format!("status {}, {e}", status.as_u16()))?;
            if !status.is_success() {
                return Err(format!("status {}", status.as_u16()));
            }
            Ok(match body.get("result") {
                Some(Value::Object(m)) => m.clone(),
                _ => Map::new(),
            })
        }
        .await;
        match &result {
            Ok(_) => self.metrics.hook(hook.name(), "ok"),
            Err(why) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                let outcome = if why == TIMED_OUT { "timeout" } else { "error" };
                self.metrics.hook(hook.name(), outcome);
                tracing::warn!(hook = hook.name(), error = %why, "hook call failed");
            }
        }
        result
    }

    /// Calls a blocking hook and waits for its answer: at most the timeout for a slot (none free in time is
    /// [`Verdict::Busy`]: local overload, not the app's failure), then at most the timeout for the call,
    /// whose failure follows the fail-open/fail-closed policy.
    pub async fn before(&self, hook: Hook, params: Value) -> Verdict {
        if !self.defines(hook) {
            return Verdict::Proceed;
        }
        let Ok(Ok(_permit)) =
            tokio::time::timeout(self.config.timeout, self.permits.acquire()).await
        else {
            self.stats.busy.fetch_add(1, Ordering::Relaxed);
            self.metrics.hook(hook.name(), "busy");
            tracing::warn!(
                hook = hook.name(),
                "no hook slot free in time: request refused as busy"
            );
            return Verdict::Busy;
        };
        let outcome = tokio::time::timeout(self.config.timeout, self.call(hook, &params))
            .await
            .unwrap_or_else(|_| {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                self.metrics.hook(hook.name(), "timeout");
                tracing::warn!(hook = hook.name(), "hook call timed out");
                Err(TIMED_OUT.into())
            });
        match outcome {
            Ok(answer) => Verdict::Answer(answer),
            Err(why) if self.config.fail_closed => Verdict::Failed(why),
            Err(_) => Verdict::Proceed,
        }
    }

    /// Queues an after-hook; `then` gets the answer (or `Proceed` when the call failed).
    pub fn after(&self, hook: Hook, params: Value, then: Option<Box<dyn FnOnce(Verdict) + Send>>) {
        if !self.defines(hook) {
            if let Some(then) = then {
                then(Verdict::Proceed);
            }
            return;
        }
        let Some(queue) = &self.queue else { return };
        if let Err(e) = queue.try_send(Queued { hook, params, then }) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            self.metrics.hook(hook.name(), "dropped");
            tracing::warn!(hook = hook.name(), "after-hook queue full: call dropped");
            let (mpsc::error::TrySendError::Full(q) | mpsc::error::TrySendError::Closed(q)) = e;
            if let Some(then) = q.then {
                then(Verdict::Proceed);
            }
        }
    }
}

/// Runs queued after-hooks, a few at a time (bounded by the same permits as blocking hooks).
async fn after_worker(hooks: std::sync::Weak<Hooks>, mut rx: mpsc::Receiver<Queued>) {
    let workers = Arc::new(Semaphore::new(8));
    while let Some(item) = rx.recv().await {
        let Some(h) = hooks.upgrade() else { return };
        let Ok(permit) = workers.clone().acquire_owned().await else {
            return;
        };
        tokio::spawn(async move {
            let _permit = permit;
            let verdict =
                match tokio::time::timeout(h.config.timeout, h.call(item.hook, &item.params)).await
                {
                    Ok(Ok(answer)) => Verdict::Answer(answer),
                    _ => Verdict::Proceed,
                };
            if let Some(then) = item.then {
                then(verdict);
            }
        });
    }
}

async fn discovery(hooks: std::sync::Weak<Hooks>) {
    loop {
        let Some(h) = hooks.upgrade() else { return };
        match h.discover().await {
            Ok(n) => tracing::info!(defined = n, "hooks discovered"),
            Err(e) => {
                tracing::warn!(error = %e, "hook discovery failed; keeping the previous list")
            }
        }
        let wait = h.config.refresh;
        drop(h);
        tokio::time::sleep(wait).await;
    }
}

/// `_clientOffline` close codes.
pub mod close_code {
    pub const LOGOUT: i64 = 1;
    pub const DISCONNECT: i64 = 2;
    pub const TAG_CONFLICT: i64 = 3;
    /// The app's backend kicked the client (`POST /1.2/rtm/clients/{client}/kick`).
    pub const KICKED_BY_API: i64 = 4;
}

/// The conversation hooks, typed for both callers (the REST `_Conversation` routes and the gateway).
impl Hooks {
    /// `_conversationStart`: before a conversation is created.
    pub async fn conversation_start(
        &self,
        init_by: Option<&str>,
        members: &[String],
        attr: &Map<String, Value>,
    ) -> Result<(), Refusal> {
        let verdict = self
            .before(
                Hook::ConversationStart,
                serde_json::json!({"initBy": init_by, "members": members, "attr": attr}),
            )
            .await;
        verdict.refusal("reject").map_or(Ok(()), Err)
    }

    /// `_conversationAdd` (invite or join) or `_conversationRemove` (kick): before the change.
    pub async fn conversation_members(
        &self,
        add: bool,
        init_by: Option<&str>,
        conv_id: &str,
        members: &[String],
    ) -> Result<(), Refusal> {
        let hook = if add {
            Hook::ConversationAdd
        } else {
            Hook::ConversationRemove
        };
        let verdict = self
            .before(
                hook,
                serde_json::json!({"initBy": init_by, "convId": conv_id, "members": members}),
            )
            .await;
        verdict.refusal("reject").map_or(Ok(()), Err)
    }

    /// `_conversationUpdate`: before attributes change; the hook may answer other attributes to apply.
    pub async fn conversation_update(
        &self,
        init_by: Option<&str>,
        conv_id: &str,
        attr: &Map<String, Value>,
    ) -> Result<Option<Map<String, Value>>, Refusal> {
        let verdict = self
            .before(
                Hook::ConversationUpdate,
                serde_json::json!({"initBy": init_by, "convId": conv_id, "attr": attr}),
            )
            .await;
        if let Some(refusal) = verdict.refusal("reject") {
            return Err(refusal);
        }
        Ok(verdict
            .answer()
            .and_then(|a| a.get("attr"))
            .and_then(Value::as_object)
            .cloned())
    }

    /// `_conversationUpdate` for `conv/mute` / `conv/unmute`: LeanCloud sends `mute` (true or false) in place
    /// of `attr`. The hook may refuse; there is nothing for it to rewrite.
    pub async fn conversation_mute(
        &self,
        init_by: &str,
        conv_id: &str,
        mute: bool,
    ) -> Result<(), Refusal> {
        let verdict = self
            .before(
                Hook::ConversationUpdate,
                serde_json::json!({"initBy": init_by, "convId": conv_id, "mute": mute}),
            )
            .await;
        match verdict.refusal("reject") {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    /// `_conversationStarted`, `_conversationAdded`, `_conversationRemoved`: after the change.
    pub fn conversation_changed(
        &self,
        hook: Hook,
        init_by: Option<&str>,
        conv_id: &str,
        members: &[String],
    ) {
        let params = match hook {
            Hook::ConversationStarted => serde_json::json!({"convId": conv_id}),
            _ => serde_json::json!({"initBy": init_by, "convId": conv_id, "members": members}),
        };
        self.after(hook, params, None);
    }
}

#[cfg(test)]
mod url_tests {
    use super::url_allowed;

    /// Review part 3, L-a: a mistyped or public plain-HTTP hooks URL leaked the master key on the first call.
    #[test]
    fn l_a_plain_http_hooks_go_only_to_loopback_or_private_addresses() {
        for ok in [
            "https://engine.example.com",
            "http://127.0.0.1:3000",
            "http://localhost:3000",
            "http://10.1.2.3",
            "http://192.168.0.9:8080/",
            "http://[::1]:3000",
            "http://[fd00::5]:3000",
        ] {
            assert_eq!(Ok(()), url_allowed(ok, false), "{ok}");
        }
        for refused in [
            "http://engine.example.com",
            "http://8.8.8.8",
            "http://engine:3000",
        ] {
            let why = url_allowed(refused, false).unwrap_err();
            assert!(why.contains("--hooks-allow-http"), "{why}");
        }
        assert_eq!(Ok(()), url_allowed("http://engine:3000", true));
        let why = url_allowed("http://user:secret@example.com/", false).unwrap_err();
        assert!(!why.contains("secret"), "{why}");
        assert!(url_allowed("ftp://x", true).is_err());
    }
}
