//! Bulk fan-out: de-duplicate recipients (first occurrence wins, order kept), split them into chunks of 20
//! (LeanCloud's per-call limit), and send the chunks with bounded concurrency, each through the idempotency
//! ledger and the rate budget.
//!
//! Per chunk: claim it in the ledger (skip it when it is already `DONE`), take a unit of the budget, call
//! LeanCloud, record `DONE` with the message id. Transient failures (5xx, timeouts, dropped connections) are
//! retried with backoff while the invocation's deadline allows; a 429 stops the whole fan-out at once (the
//! bucket is penalised for a minute, so further calls would only fail) and a permanent error (unknown
//! conversation, wrong kind) stops it too. Whatever is left fails the record, which SQS delivers again later;
//! the chunks already sent are then skipped.
//!
//! [`fan_out`] is public for benchmarks (`functions/examples/fanout.rs`, `bench/`):
//!
//! ```no_run
//! use im_functions::bulk::{fan_out, BulkJob};
//! use im_functions::{Backend, Services};
//! use leancloud_im::{ClientId, ConversationId, SendMessage};
//!
//! # async fn run(client: &leancloud_im::Client) {
//! let services = Services::in_memory(Default::default());
//! let backend = Backend::new(client).with_services(&services);
//! let recipients: Vec<ClientId> = (0..1000).map(|i| ClientId::parse(format!("u{i}")).unwrap()).collect();
//! let template = SendMessage::new(ConversationId::parse("sys").unwrap(), ClientId::parse("ops").unwrap(), "hi");
//! let job = BulkJob::new(template, Some(recipients), Some("notice-42".into()));
//! let report = fan_out(&backend, &job).await;
//! println!("{} chunks sent in {} calls", report.sent, report.calls);
//! # }
//! ```

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use leancloud_im::{ClientId, Error as LcError, Request, SendMessage, MAX_RECIPIENTS};
use md5::{Digest as _, Md5};
use serde::Serialize;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::broadcast::{BroadcastOp, BroadcastOutcome, BroadcastSent, NewBroadcast};
use crate::budget::{jitter_ms, Bucket, BudgetError};
use crate::error::{codes, FunctionError};
use crate::ledger::{now_ms, Claim, Lease, StoredChunk};
use crate::operation::Backend;
use crate::operation::{Operation as _, Source};
use crate::queue::Queued;
use crate::send_message::{MessagesSent, OutgoingMessage, SendMessageOp, SendOutcome, SentMessage};

/// Recipients per LeanCloud call.
pub const CHUNK_SIZE: usize = MAX_RECIPIENTS;

/// Longest accepted idempotency key.
pub const MAX_KEY_LEN: usize = 255;

/// SQS accepts bodies up to 256 KiB; a little is kept back for attributes.
const MAX_QUEUE_RECORD_BYTES: usize = 250 * 1024;

/// Remove repeated recipients, keeping the first occurrence and the order; also how many were removed.
pub fn dedupe(ids: Vec<ClientId>) -> (Vec<ClientId>, usize) {
    let before = ids.len();
    let mut seen = HashSet::with_capacity(before);
    let unique: Vec<ClientId> = ids
        .into_iter()
        .filter(|id| seen.insert(id.as_ref().to_owned()))
        .collect();
    let removed = before - unique.len();
    (unique, removed)
}

/// Validate a caller-supplied idempotency key.
pub fn check_key(key: &str) -> Result<(), FunctionError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || key.chars().any(char::is_control) {
        return Err(FunctionError::invalid_request(format!(
            "`idempotency_key` must be 1 to {MAX_KEY_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// What a dry run answers: the work a send would do, nothing sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub conversation_id: String,
    pub dry_run: bool,
    pub operation: &'static str,
    /// Distinct recipients (absent for a send to the whole conversation or a broadcast).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipients: Option<usize>,
    pub duplicates_removed: usize,
    pub chunks: usize,
    pub chunk_size: usize,
    /// LeanCloud calls without retries (one per chunk).
    pub calls: usize,
    /// The configured per-minute budget of the bucket (`null` = unlimited).
    pub budget_per_minute: Option<u32>,
    /// Minutes the calls need under that budget (`null` = unlimited budget).
    pub minutes_needed: Option<u64>,
    /// For broadcasts: the configured daily quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_per_day: Option<u32>,
    /// Whether the work would go through the bulk queue (HTTP, more than 20 recipients).
    pub queued: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// One bulk send: a message template and its recipients (already de-duplicated).
#[derive(Debug, Clone)]
pub struct BulkJob {
    template: SendMessage,
    /// `None`: one send to the whole conversation.
    recipients: Option<Vec<ClientId>>,
    /// Ledger key (already namespaced by the caller); `None` = nothing is recorded.
    key: Option<String>,
}

impl BulkJob {
    /// `recipients` are de-duplicated here too (order kept); `key` enables the ledger.
    pub fn new(
        template: SendMessage,
        recipients: Option<Vec<ClientId>>,
        key: Option<String>,
    ) -> Self {
        BulkJob {
            template,
            recipients: recipients.map(|ids| dedupe(ids).0),
            key,
        }
    }

    pub fn chunks(&self) -> usize {
        self.recipients
            .as_ref()
            .map_or(1, |ids| ids.len().div_ceil(CHUNK_SIZE))
    }

    fn request(&self, chunk: usize) -> SendMessage {
        match &self.recipients {
            Some(ids) => {
                let start = chunk * CHUNK_SIZE;
                let end = (start + CHUNK_SIZE).min(ids.len());
                self.template
                    .clone()
                    .to_clients(ids[start..end].iter().cloned())
            }
            None => self.template.clone(),
        }
    }
}

/// What happened to a fan-out.
#[derive(Debug, Default)]
pub struct FanOutReport {
    /// Per chunk, in order: the message LeanCloud accepted (sent now or earlier), `None` if it did not go out.
    pub messages: Vec<Option<SentMessage>>,
    /// Chunks sent by this call.
    pub sent: usize,
    /// Chunks found already sent (ledger) and skipped.
    pub replayed: usize,
    /// Chunks that failed.
    pub failed: usize,
    /// Chunks not attempted (stopped by a 429, a permanent error or the deadline).
    pub not_started: usize,
    /// LeanCloud calls made (retries included).
    pub calls: usize,
    /// The error that decides the record's outcome, when any chunk did not go out.
    pub error: Option<FunctionError>,
}

impl FanOutReport {
    pub fn is_complete(&self) -> bool {
        self.error.is_none() && self.messages.iter().all(Option::is_some)
    }

    /// The messages in chunk order, or the deciding error.
    pub fn into_result(self) -> Result<Vec<SentMessage>, FunctionError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        self.messages
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| FunctionError::LeanCloud(LcError::Timeout))
    }
}

/// How a chunk that did not go out failed, ordered by how much it decides the record's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    Transient,
    Busy,
    RateLimited,
    Permanent,
}

enum ChunkOutcome {
    Sent(SentMessage),
    Replayed(SentMessage),
    Failed(Severity, FunctionError),
    NotStarted,
}

/// Shared state of one fan-out.
struct Run<'a, 'b> {
    backend: &'a Backend<'b>,
    bucket: Bucket,
    key: Option<&'a str>,
    /// Set by a 429, a permanent error or the deadline: no further chunk or attempt starts.
    halt: AtomicBool,
    calls: AtomicUsize,
    lease: Duration,
}

/// Send every chunk of `job` (see the module docs). Never panics; the report says what went out.
pub async fn fan_out(backend: &Backend<'_>, job: &BulkJob) -> FanOutReport {
    let run = Run::new(backend, Bucket::Messages, job.key.as_deref());
    let concurrency = backend.services.options.concurrency.max(1);
    let outcomes: Vec<ChunkOutcome> = futures::stream::iter(0..job.chunks())
        .map(|chunk| {
            let run = &run;
            async move { run.chunk(chunk, &job.request(chunk)).await }
        })
        .buffered(concurrency)
        .collect()
        .await;
    run.report(outcomes)
}

/// Send one request (a broadcast, or a message without a recipient list) as chunk 0 of `key`.
pub async fn send_once<R>(
    backend: &Backend<'_>,
    bucket: Bucket,
    key: Option<&str>,
    request: &R,
) -> FanOutReport
where
    R: Request<Response = leancloud_im::SentMessage> + Sync,
{
    let run = Run::new(backend, bucket, key);
    let outcome = run.chunk(0, request).await;
    run.report(vec![outcome])
}

impl<'a, 'b> Run<'a, 'b> {
    fn new(backend: &'a Backend<'b>, bucket: Bucket, key: Option<&'a str>) -> Self {
        let options = &backend.services.options;
        let lease = match backend.deadline {
            Some(deadline) => {
                deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(30)
            }
            None => options.default_lease,
        };
        Run {
            backend,
            bucket,
            key: key.filter(|_| backend.services.ledger.is_on()),
            halt: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
            lease,
        }
    }

    fn halted(&self) -> bool {
        self.halt.load(Ordering::Relaxed)
    }

    fn halt(&self) {
        self.halt.store(true, Ordering::Relaxed);
    }

    /// Time left for another attempt.
    fn has_time(&self, extra: Duration) -> bool {
        let min = self.backend.services.options.min_attempt_time;
        self.backend
            .deadline
            .is_none_or(|deadline| Instant::now() + extra + min < deadline)
    }

    async fn chunk<R>(&self, index: usize, request: &R) -> ChunkOutcome
    where
        R: Request<Response = leancloud_im::SentMessage> + Sync,
    {
        if self.halted() || !self.has_time(Duration::ZERO) {
            return ChunkOutcome::NotStarted;
        }
        let fingerprint = fingerprint(request);
        let ledger = &self.backend.services.ledger;
        let lease = match self.key {
            None => None,
            Some(key) => match ledger.claim(key, index, &fingerprint, self.lease).await {
                Ok(Claim::Claimed(lease)) => Some(lease),
                Ok(Claim::Done(stored)) => {
                    if !stored.fingerprint.is_empty() && stored.fingerprint != fingerprint {
                        self.halt();
                        return ChunkOutcome::Failed(
                            Severity::Permanent,
                            FunctionError::invalid(
                                codes::INVALID_REQUEST,
                                format!(
                                    "idempotency key {key:?} was already used for a different request \
                                     (chunk {index} differs); use a new key"
                                ),
                            ),
                        );
                    }
                    return ChunkOutcome::Replayed(SentMessage {
                        msg_id: stored.msg_id,
                        timestamp: stored.timestamp,
                    });
                }
                Ok(Claim::Busy { retry_after }) => {
                    warn!(
                        key,
                        chunk = index,
                        ?retry_after,
                        "chunk is being sent by another invocation"
                    );
                    return ChunkOutcome::Failed(
                        Severity::Busy,
                        FunctionError::Throttled {
                            code: "in_progress",
                            message:
                                "this send is being processed by another invocation; retry later"
                                    .to_owned(),
                            retry_after: retry_after.max(Duration::from_secs(1)),
                        },
                    );
                }
                Err(err) => {
                    warn!(key, chunk = index, error = %err, "idempotency ledger unavailable");
                    return ChunkOutcome::Failed(
                        Severity::Transient,
                        unavailable("the idempotency table", &err.to_string()),
                    );
                }
            },
        };
        let outcome = self.attempts(index, request).await;
        if let (Some(key), Some(lease)) = (self.key, lease.as_ref()) {
            match &outcome {
                ChunkOutcome::Sent(sent) => {
                    self.complete(key, index, lease, sent, fingerprint).await
                }
                // Not sent, or sent with an unknown outcome: the next delivery must be free to send it.
                _ => {
                    if let Err(err) = ledger.release(key, index, lease).await {
                        warn!(key, chunk = index, error = %err, "could not release a claim; it expires with its lease");
                    }
                }
            }
        }
        outcome
    }

    async fn attempts<R>(&self, index: usize, request: &R) -> ChunkOutcome
    where
        R: Request<Response = leancloud_im::SentMessage> + Sync,
    {
        let options = &self.backend.services.options;
        let budget = &self.backend.services.budget;
        let mut attempt = 1;
        loop {
            if self.halted() {
                return ChunkOutcome::NotStarted;
            }
            if let Err(err) = self.take_budget().await {
                return self.budget_failure(index, err);
            }
            self.calls.fetch_add(1, Ordering::Relaxed);
            let error = match self.backend.send(request).await {
                Ok(sent) => {
                    return ChunkOutcome::Sent(SentMessage {
                        msg_id: sent.msg_id.map(|id| id.to_string()),
                        timestamp: sent.timestamp,
                    })
                }
                Err(error) => error,
            };
            if let FunctionError::LeanCloud(LcError::RateLimited { retry_after, .. }) = &error {
                // LeanCloud's penalty: stop here; the record comes back after the queue's visibility timeout.
                budget.penalize(self.bucket, (*retry_after).max(Duration::from_secs(1)));
                self.halt();
                warn!(
                    chunk = index,
                    ?retry_after,
                    "LeanCloud answered 429; stopping this fan-out"
                );
                return ChunkOutcome::Failed(Severity::RateLimited, error);
            }
            if !error.is_retryable() {
                self.halt();
                return ChunkOutcome::Failed(Severity::Permanent, error);
            }
            let backoff = backoff(options.retry_base, attempt);
            if attempt >= options.max_attempts || !self.has_time(backoff) {
                return ChunkOutcome::Failed(Severity::Transient, error);
            }
            warn!(chunk = index, attempt, ?backoff, error = %error, "retrying chunk");
            tokio::time::sleep(backoff).await;
            attempt += 1;
        }
    }

    async fn take_budget(&self) -> Result<(), BudgetError> {
        let budget = &self.backend.services.budget;
        if self.bucket == Bucket::Broadcasts {
            budget.take_daily_broadcast().await?;
        }
        let taken = budget.acquire(self.bucket, self.backend.deadline).await;
        if taken.is_err() && self.bucket == Bucket::Broadcasts {
            budget.refund_daily_broadcast().await;
        }
        taken
    }

    fn budget_failure(&self, index: usize, err: BudgetError) -> ChunkOutcome {
        self.halt();
        warn!(chunk = index, error = %err, "no rate budget left for this invocation");
        let error = match &err {
            BudgetError::DailyQuota { .. } => FunctionError::QuotaExhausted {
                message: err.to_string(),
                retry_after: err.retry_after(),
            },
            BudgetError::Store(reason) => unavailable("the rate budget store", reason),
            BudgetError::Exhausted { .. } => FunctionError::Throttled {
                code: "budget_exhausted",
                message: format!("{err}; retry later"),
                retry_after: err.retry_after(),
            },
            // LeanCloud itself answered 429 moments ago: report it as the rate limit it is.
            BudgetError::Penalized { .. } => rate_limited(err.retry_after()),
        };
        let severity = match err {
            BudgetError::DailyQuota { .. } => Severity::Permanent,
            BudgetError::Store(_) => Severity::Transient,
            _ => Severity::RateLimited,
        };
        ChunkOutcome::Failed(severity, error)
    }

    async fn complete(
        &self,
        key: &str,
        index: usize,
        lease: &Lease,
        sent: &SentMessage,
        fingerprint: String,
    ) {
        let stored = StoredChunk {
            msg_id: sent.msg_id.clone(),
            timestamp: sent.timestamp,
            sent_at_ms: now_ms(),
            fingerprint,
        };
        for attempt in 1..=3u32 {
            match self
                .backend
                .services
                .ledger
                .complete(key, index, lease, &stored)
                .await
            {
                Ok(()) => return,
                Err(err) if attempt == 3 => {
                    // The message went out; if this record is delivered again after the lease ends, this
                    // chunk will be sent a second time.
                    warn!(key, chunk = index, error = %err, "sent, but could not record it");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await,
            }
        }
    }

    fn report(&self, outcomes: Vec<ChunkOutcome>) -> FanOutReport {
        let mut report = FanOutReport {
            calls: self.calls.load(Ordering::Relaxed),
            ..FanOutReport::default()
        };
        let mut worst: Option<(Severity, FunctionError)> = None;
        for outcome in outcomes {
            let (message, failure) = match outcome {
                ChunkOutcome::Sent(sent) => {
                    report.sent += 1;
                    (Some(sent), None)
                }
                ChunkOutcome::Replayed(sent) => {
                    report.replayed += 1;
                    (Some(sent), None)
                }
                ChunkOutcome::Failed(severity, error) => {
                    report.failed += 1;
                    (None, Some((severity, error)))
                }
                ChunkOutcome::NotStarted => {
                    report.not_started += 1;
                    (None, None)
                }
            };
            report.messages.push(message);
            if let Some((severity, error)) = failure {
                if worst
                    .as_ref()
                    .is_none_or(|(current, _)| severity > *current)
                {
                    worst = Some((severity, error));
                }
            }
        }
        report.error = match worst {
            Some((_, error)) => Some(error),
            None if report.not_started > 0 => Some(FunctionError::LeanCloud(LcError::Timeout)),
            None => None,
        };
        let outcome = if report.error.is_none() {
            "complete"
        } else {
            "incomplete"
        };
        info!(
            key = self.key,
            bucket = self.bucket.as_str(),
            outcome,
            sent = report.sent,
            replayed = report.replayed,
            failed = report.failed,
            not_started = report.not_started,
            calls = report.calls,
            "fan-out"
        );
        report
    }
}

/// The send-message path: dry run, bulk queue (HTTP, more than 20 recipients) or fan-out.
pub async fn send_message(
    backend: &Backend<'_>,
    input: OutgoingMessage,
) -> Result<SendOutcome, FunctionError> {
    let services = backend.services;
    let recipients = input.to_clients.as_ref().map(Vec::len);
    let chunks = recipients.map_or(1, |n| n.div_ceil(CHUNK_SIZE));
    let queued = input.source == Source::Http && recipients.is_some_and(|n| n > CHUNK_SIZE);
    if input.dry_run {
        let budget = services.budget.config();
        return Ok(SendOutcome::Planned(Plan {
            conversation_id: input.conversation.to_string(),
            dry_run: true,
            operation: SendMessageOp::NAME,
            recipients,
            duplicates_removed: input.duplicates_removed,
            chunks,
            chunk_size: CHUNK_SIZE,
            calls: chunks,
            budget_per_minute: budget.per_window(Bucket::Messages),
            minutes_needed: budget.windows_needed(Bucket::Messages, chunks),
            budget_per_day: None,
            queued,
            idempotency_key: input.idempotency_key,
        }));
    }
    if queued {
        return enqueue(backend, input, recipients.unwrap_or(0), chunks).await;
    }
    let key = input
        .idempotency_key
        .as_deref()
        .or(backend.idempotency_key)
        .map(|key| format!("{}#{key}", SendMessageOp::NAME));
    let job = BulkJob {
        template: input.request,
        recipients: input.to_clients,
        key,
    };
    let messages = fan_out(backend, &job).await.into_result()?;
    Ok(SendOutcome::Sent(MessagesSent {
        conversation_id: input.conversation,
        messages,
    }))
}

async fn enqueue(
    backend: &Backend<'_>,
    input: OutgoingMessage,
    recipients: usize,
    chunks: usize,
) -> Result<SendOutcome, FunctionError> {
    let Some(queue) = &backend.services.queue else {
        return Err(FunctionError::invalid(
            codes::TOO_MANY_RECIPIENTS,
            format!(
                "`to_clients` names {recipients} clients; an HTTP call may name at most {CHUNK_SIZE} \
                 because no bulk queue is configured (BULK_QUEUE_URL)"
            ),
        ));
    };
    let record = serde_json::Value::Object(input.record);
    if serde_json::to_vec(&record).map_or(0, |bytes| bytes.len()) > MAX_QUEUE_RECORD_BYTES {
        return Err(FunctionError::invalid(
            codes::TOO_MANY_RECIPIENTS,
            format!(
                "{recipients} recipients do not fit one queue record ({} KiB at most); split the request",
                MAX_QUEUE_RECORD_BYTES / 1024
            ),
        ));
    }
    let message_id = queue.enqueue(&record).await.map_err(|err| {
        warn!(error = %err, "could not put the bulk send on the queue");
        unavailable("the bulk queue", &err.to_string())
    })?;
    info!(queue_message_id = %message_id, recipients, chunks, "bulk send queued");
    Ok(SendOutcome::Queued(Queued {
        conversation_id: input.conversation.to_string(),
        status: "queued",
        idempotency_key: input.idempotency_key.unwrap_or_else(|| message_id.clone()),
        queue_message_id: message_id,
        recipients,
        duplicates_removed: input.duplicates_removed,
        chunks,
    }))
}

/// The broadcast path: dry run, or one call through the ledger, the daily quota and the per-minute budget.
pub async fn broadcast(
    backend: &Backend<'_>,
    input: NewBroadcast,
) -> Result<BroadcastOutcome, FunctionError> {
    if input.dry_run {
        let budget = backend.services.budget.config();
        return Ok(BroadcastOutcome::Planned(Plan {
            conversation_id: input.conversation.to_string(),
            dry_run: true,
            operation: BroadcastOp::NAME,
            recipients: None,
            duplicates_removed: 0,
            chunks: 1,
            chunk_size: 1,
            calls: 1,
            budget_per_minute: budget.per_window(Bucket::Broadcasts),
            minutes_needed: budget.windows_needed(Bucket::Broadcasts, 1),
            budget_per_day: budget.broadcasts_per_day,
            queued: false,
            idempotency_key: input.idempotency_key,
        }));
    }
    let key = input
        .idempotency_key
        .as_deref()
        .or(backend.idempotency_key)
        .map(|key| format!("{}#{key}", BroadcastOp::NAME));
    let report = send_once(backend, Bucket::Broadcasts, key.as_deref(), &input.request).await;
    let sent = report
        .into_result()?
        .into_iter()
        .next()
        .unwrap_or(SentMessage {
            msg_id: None,
            timestamp: None,
        });
    Ok(BroadcastOutcome::Sent(BroadcastSent {
        conversation_id: input.conversation,
        msg_id: sent.msg_id,
        timestamp: sent.timestamp,
    }))
}

/// Digest of the exact wire bytes of a request (path and body).
fn fingerprint<R: Request>(request: &R) -> String {
    let mut digest = Md5::new();
    digest.update(request.path().as_bytes());
    if let Ok(Some(body)) = request.body() {
        digest.update(&body);
    }
    hex::encode(digest.finalize())
}

fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1 << (attempt - 1).min(8))
        .min(Duration::from_secs(2));
    let half = exp / 2;
    half + Duration::from_millis(jitter_ms(u64::try_from(half.as_millis()).unwrap_or(0)))
}

fn rate_limited(retry_after: Duration) -> FunctionError {
    FunctionError::LeanCloud(LcError::RateLimited {
        retry_after,
        api: None,
    })
}

/// A failure of our own infrastructure (ledger, budget store, queue): retryable, reported as 503.
pub(crate) fn unavailable(service: &'static str, reason: &str) -> FunctionError {
    FunctionError::Unavailable {
        service,
        detail: reason.chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<ClientId> {
        names
            .iter()
            .map(|name| ClientId::parse(*name).expect("id"))
            .collect()
    }

    #[test]
    fn dedupe_keeps_the_first_occurrence_in_order() {
        let (unique, removed) = dedupe(ids(&["b", "a", "b", "c", "a"]));
        assert_eq!(ids(&["b", "a", "c"]), unique);
        assert_eq!(2, removed);
    }

    #[test]
    fn chunks_hold_at_most_twenty() {
        let recipients: Vec<ClientId> = (0..45)
            .map(|i| ClientId::parse(format!("u{i}")).expect("id"))
            .collect();
        let template = SendMessage::new(
            leancloud_im::ConversationId::parse("c").expect("id"),
            ClientId::parse("s").expect("id"),
            "hi",
        );
        let job = BulkJob::new(template, Some(recipients), None);
        assert_eq!(3, job.chunks());
        for chunk in 0..3 {
            job.request(chunk)
                .validate()
                .expect("each chunk is a valid call");
        }
        assert_ne!(fingerprint(&job.request(0)), fingerprint(&job.request(1)));
        assert_eq!(fingerprint(&job.request(2)), fingerprint(&job.request(2)));
    }

    #[test]
    fn keys_are_checked() {
        assert!(check_key("order-1@2026-01-01T00:00:00Z").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key(&"x".repeat(256)).is_err());
        assert!(check_key("a\nb").is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        assert!(backoff(base, 1) <= Duration::from_millis(100));
        assert!(backoff(base, 3) >= Duration::from_millis(200));
        assert!(backoff(base, 20) <= Duration::from_secs(2));
    }
}
