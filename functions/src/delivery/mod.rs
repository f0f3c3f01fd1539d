//! Bulk fan-out: de-duplicate recipients (first occurrence wins, order kept), split them into chunks of 20
//! (LeanCloud's per-call limit), and send the chunks with bounded concurrency, each through the idempotency
//! ledger and the rate budget.
//!
//! Per chunk: claim it in the ledger (skip it when it is already `DONE`), take a unit of the budget, call
//! LeanCloud, record `DONE` with the message id. Within one invocation a chunk is tried again only when the
//! failure proves nothing was applied (a refused connection), or the request is idempotent; a send or
//! broadcast that may have gone out (5xx, timeout, dropped connection) is never repeated here (finding M7):
//! the chunk fails, its claim is released, and the record's redelivery or the schedule's retry sends it.
//! A 429 stops the whole fan-out at once (the bucket is penalised for a minute, so further calls would only
//! fail). A permanent refusal (a 4xx: unknown conversation, wrong kind) stops it too and is remembered in
//! the ledger for [`ledger::FAILURE_RETENTION`], so redeliveries and Lambda's retries get the same answer
//! with no call and no budget (finding L8). Whatever is left fails the record, which SQS delivers again
//! later; the chunks already sent are then skipped.
//!
//! This layer knows nothing of the operations: they hand it a request template, recipients and a key, and it
//! reports what went out. [`fan_out`] is public for benchmarks (`bench/`):
//!
//! ```no_run
//! use im_functions::delivery::{fan_out, BulkJob, Delivery, Sender};
//! use leancloud_im::{ClientId, ConversationId, SendMessage};
//!
//! # async fn run(client: &leancloud_im::Client) {
//! let delivery = Delivery::in_memory(Default::default());
//! let sender = Sender::new(client, &delivery);
//! let recipients: Vec<ClientId> = (0..1000).map(|i| ClientId::parse(format!("u{i}")).unwrap()).collect();
//! let template = SendMessage::new(ConversationId::parse("sys").unwrap(), ClientId::parse("ops").unwrap(), "hi");
//! let job = BulkJob::new(template, Some(recipients), Some("send-message#notice-42".into()));
//! let report = fan_out(&sender, &job).await;
//! println!("{} chunks sent in {} calls", report.sent, report.calls);
//! # }
//! ```

pub mod budget;
pub mod dynamo;
pub mod key;
pub mod ledger;
pub mod plan;
pub mod queue;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use aws_types::SdkConfig;
use futures::StreamExt as _;
use leancloud_im::protocol::MAX_RECIPIENTS;
use leancloud_im::{
    Client, ClientId, Error as LcError, Request, RetryClass, RetryOutcome, RetryPolicy,
    SendMessage, SentMessage,
};
use md5::{Digest as _, Md5};
use rand::Rng as _;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::error::{ErrorCode, FunctionError};
use budget::{Bucket, Budget, BudgetConfig, BudgetError};
use dynamo::{millis, now_ms};
use ledger::{Claim, Lease, Ledger, StoredChunk, StoredFailure, FAILURE_RETENTION};
use queue::BulkQueue;

/// Recipients per LeanCloud call.
pub const CHUNK_SIZE: usize = MAX_RECIPIENTS;

/// SQS accepts bodies up to 256 KiB; a little is kept back for attributes.
pub const MAX_QUEUE_RECORD_BYTES: usize = 250 * 1024;

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

pub const IDEMPOTENCY_TABLE: &str = "IDEMPOTENCY_TABLE";
pub const SEND_BUDGET_PER_MINUTE: &str = "SEND_BUDGET_PER_MINUTE";
pub const BROADCAST_BUDGET_PER_MINUTE: &str = "BROADCAST_BUDGET_PER_MINUTE";
pub const BROADCAST_BUDGET_PER_DAY: &str = "BROADCAST_BUDGET_PER_DAY";
pub const BULK_QUEUE_URL: &str = "BULK_QUEUE_URL";
pub const BULK_CONCURRENCY: &str = "BULK_CONCURRENCY";

/// How one record's chunks are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkOptions {
    /// Chunks of one record in flight at once (records of a batch run concurrently too).
    pub concurrency: usize,
    /// Attempts per chunk within one invocation, for failures that are safe to retry (see the module docs).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles per attempt (jittered), at most [`MAX_BACKOFF`].
    pub retry_base: Duration,
    /// An attempt is not started with less than this left before the invocation deadline.
    pub min_attempt_time: Duration,
    /// Lease of a claimed chunk when the invocation has no deadline (its remaining time + 30 s otherwise).
    pub default_lease: Duration,
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions {
            concurrency: 4,
            max_attempts: 4,
            retry_base: Duration::from_millis(200),
            min_attempt_time: Duration::from_secs(1),
            default_lease: Duration::from_secs(120),
        }
    }
}

/// What a send needs besides the client: the idempotency ledger, the rate budgets, the bulk queue and the
/// fan-out options. Loaded once at cold start (only by the functions that send) and passed explicitly.
///
/// | Variable | Meaning | Unset |
/// |---|---|---|
/// | `IDEMPOTENCY_TABLE` | DynamoDB table (keys `pk`/`sk`, TTL `expires_at`) for progress and shared budgets | in-memory ledger and budgets (per container) |
/// | `SEND_BUDGET_PER_MINUTE` | message calls per minute, all invocations together | unlimited |
/// | `BROADCAST_BUDGET_PER_MINUTE` | broadcast calls per minute | unlimited |
/// | `BROADCAST_BUDGET_PER_DAY` | broadcast calls per UTC day; beyond it broadcasts are refused | unlimited |
/// | `BULK_QUEUE_URL` | SQS queue HTTP calls with more than 20 recipients are put on (answered `202`) | such calls get `400` |
/// | `BULK_CONCURRENCY` | chunks of one record in flight at once | 4 |
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    pub ledger: Ledger,
    pub budget: Budget,
    pub queue: Option<BulkQueue>,
    pub options: BulkOptions,
}

/// A delivery variable that is set but invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}: {reason}")]
    Invalid { var: &'static str, reason: String },
}

impl Delivery {
    /// In-memory ledger and budgets (no table), no queue.
    pub fn in_memory(budget: BudgetConfig) -> Delivery {
        Delivery {
            ledger: Ledger::memory(),
            budget: Budget::memory(budget),
            queue: None,
            options: BulkOptions::default(),
        }
    }

    /// Read the variables above. `aws` is needed only when a table or queue is named.
    pub fn from_lookup(
        env: &impl Fn(&str) -> Option<String>,
        aws: Option<&SdkConfig>,
    ) -> Result<Delivery, ConfigError> {
        let budget = BudgetConfig {
            messages_per_window: positive(env, SEND_BUDGET_PER_MINUTE)?,
            broadcasts_per_window: positive(env, BROADCAST_BUDGET_PER_MINUTE)?,
            broadcasts_per_day: positive(env, BROADCAST_BUDGET_PER_DAY)?,
            window: Duration::from_secs(60),
        };
        let mut options = BulkOptions::default();
        if let Some(concurrency) = positive(env, BULK_CONCURRENCY)? {
            options.concurrency = concurrency as usize;
        }
        let missing_aws = |var: &'static str| ConfigError::Invalid {
            var,
            reason: "set, but no AWS configuration (AWS_REGION) is available".to_owned(),
        };
        let (ledger, budget) = match env(IDEMPOTENCY_TABLE) {
            Some(table) => {
                let aws = aws.ok_or_else(|| missing_aws(IDEMPOTENCY_TABLE))?;
                let client = aws_sdk_dynamodb::Client::new(aws);
                (
                    Ledger::dynamodb(client.clone(), table.clone()),
                    Budget::dynamodb(budget, client, table),
                )
            }
            None => (Ledger::memory(), Budget::memory(budget)),
        };
        let queue = match env(BULK_QUEUE_URL) {
            Some(url) => {
                let aws = aws.ok_or_else(|| missing_aws(BULK_QUEUE_URL))?;
                Some(BulkQueue::new(aws_sdk_sqs::Client::new(aws), url))
            }
            None => None,
        };
        Ok(Delivery {
            ledger,
            budget,
            queue,
            options,
        })
    }

    /// Whether any variable needs an AWS client.
    pub fn needs_aws(env: &impl Fn(&str) -> Option<String>) -> bool {
        env(IDEMPOTENCY_TABLE).is_some() || env(BULK_QUEUE_URL).is_some()
    }
}

fn positive(
    env: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<u32>, ConfigError> {
    env(var)
        .map(|text| match text.trim().parse::<u32>() {
            Ok(value) if value > 0 => Ok(value),
            _ => Err(ConfigError::Invalid {
                var,
                reason: format!("{text:?} is not a positive integer"),
            }),
        })
        .transpose()
}

/// The fan-out's longest backoff between attempts of one chunk.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl BulkOptions {
    /// The shared retry policy with the fan-out's attempts and backoff.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.max(1),
            base: self.retry_base,
            cap: MAX_BACKOFF,
        }
    }
}

/// Who sends and within what time: the client, the invocation's deadline and the delivery services.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub client: &'a Client,
    /// Calls stop retrying at this instant so the function answers before Lambda kills it.
    pub deadline: Option<Instant>,
    pub delivery: &'a Delivery,
}

impl<'a> Sender<'a> {
    /// No deadline (benchmarks, tests).
    pub fn new(client: &'a Client, delivery: &'a Delivery) -> Self {
        Sender {
            client,
            deadline: None,
            delivery,
        }
    }

    /// One call within the deadline (the client retries what is safe to retry). For single calls
    /// (create, add, remove); the fan-out uses [`Sender::attempt`] and retries itself.
    pub async fn send<R: Request + Sync>(&self, request: &R) -> Result<R::Response, FunctionError> {
        let result = match self.deadline {
            Some(deadline) => self.client.execute_until(request, deadline).await,
            None => self.client.execute(request).await,
        };
        Ok(result?)
    }

    /// One HTTP request within the deadline, never retried by the client: the fan-out's loop is the only
    /// one around it, so each request takes its own budget unit and counts as a call. The failure comes
    /// with the client's [`RetryClass`] (a refused or timed-out connect is `Always`).
    pub async fn attempt<R: Request + Sync>(
        &self,
        request: &R,
    ) -> Result<R::Response, (FunctionError, RetryClass)> {
        let deadline = self
            .deadline
            .unwrap_or_else(|| Instant::now() + self.client.options().default_deadline);
        self.client
            .execute_once(request, deadline)
            .await
            .map_err(|(error, class)| (error.into(), class))
    }
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
            .ok_or(FunctionError::DeadlineExceeded)
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
    sender: &'a Sender<'b>,
    bucket: Bucket,
    key: Option<&'a str>,
    /// Set by a 429, a permanent error or the deadline: no further chunk or attempt starts.
    halt: AtomicBool,
    calls: AtomicUsize,
    lease: Duration,
    /// For the `fan-out` log line: the fan-out's own duration, apart from decoding the event around it.
    started: Instant,
}

/// Send every chunk of `job` (see the module docs). Never panics; the report says what went out.
pub async fn fan_out(sender: &Sender<'_>, job: &BulkJob) -> FanOutReport {
    let run = Run::new(sender, Bucket::Messages, job.key.as_deref());
    let concurrency = sender.delivery.options.concurrency.max(1);
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
    sender: &Sender<'_>,
    bucket: Bucket,
    key: Option<&str>,
    request: &R,
) -> FanOutReport
where
    R: Request<Response = leancloud_im::SentMessage> + Sync,
{
    let run = Run::new(sender, bucket, key);
    let outcome = run.chunk(0, request).await;
    run.report(vec![outcome])
}

impl<'a, 'b> Run<'a, 'b> {
    fn new(sender: &'a Sender<'b>, bucket: Bucket, key: Option<&'a str>) -> Self {
        let options = &sender.delivery.options;
        let lease = match sender.deadline {
            Some(deadline) => {
                deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(30)
            }
            None => options.default_lease,
        };
        Run {
            sender,
            bucket,
            key: key.filter(|_| sender.delivery.ledger.is_on()),
            halt: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
            started: Instant::now(),
            lease,
        }
    }

    fn halted(&self) -> bool {
        self.halt.load(Ordering::Relaxed)
    }

    fn halt(&self) {
        self.halt.store(true, Ordering::Relaxed);
    }

    /// Time that a backoff may still use: an attempt needs `min_attempt_time` after it.
    fn time_left(&self) -> Duration {
        let min = self.sender.delivery.options.min_attempt_time;
        self.sender.deadline.map_or(Duration::MAX, |deadline| {
            deadline
                .saturating_duration_since(Instant::now())
                .saturating_sub(min)
        })
    }

    /// Time left for another attempt.
    fn has_time(&self, extra: Duration) -> bool {
        let min = self.sender.delivery.options.min_attempt_time;
        self.sender
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
        let ledger = &self.sender.delivery.ledger;
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
                                ErrorCode::InvalidRequest,
                                format!(
                                    "idempotency key {key:?} was already used for a different request \
                                     (chunk {index} differs); use a new key"
                                ),
                            ),
                        );
                    }
                    return ChunkOutcome::Replayed(SentMessage {
                        msg_id: stored
                            .msg_id
                            .and_then(|id| leancloud_im::MessageId::parse(id).ok()),
                        timestamp: stored.timestamp,
                    });
                }
                Ok(Claim::Failed(failure)) => {
                    // L8: a redelivery or a Lambda retry of a send LeanCloud refused for good: no call, no
                    // budget, the same answer.
                    self.halt();
                    return ChunkOutcome::Failed(
                        Severity::Permanent,
                        FunctionError::LeanCloud(LcError::Api(leancloud_im::ApiError {
                            status: failure.status,
                            code: failure.code,
                            error: failure.error,
                        })),
                    );
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
                            code: ErrorCode::InProgress,
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
                ChunkOutcome::Failed(
                    Severity::Permanent,
                    FunctionError::LeanCloud(LcError::Api(api)),
                ) if (400..500).contains(&api.status) => {
                    let failure = StoredFailure {
                        status: api.status,
                        code: api.code,
                        error: api.error.clone(),
                        fingerprint,
                        until_ms: now_ms() + millis(FAILURE_RETENTION),
                    };
                    if let Err(err) = ledger.fail(key, index, lease, &failure).await {
                        warn!(key, chunk = index, error = %err, "could not record a refusal; a retry will call LeanCloud again");
                        let _ = ledger.release(key, index, lease).await;
                    }
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
        let policy = self.sender.delivery.options.retry_policy();
        let budget = &self.sender.delivery.budget;
        let mut attempt = 1;
        loop {
            if self.halted() {
                return ChunkOutcome::NotStarted;
            }
            if let Err(err) = self.take_budget().await {
                return self.budget_failure(index, err);
            }
            // One unit and one call per HTTP request: `attempt` never retries, so this loop is the only one.
            self.calls.fetch_add(1, Ordering::Relaxed);
            let (error, class) = match self.sender.attempt(request).await {
                Ok(sent) => return ChunkOutcome::Sent(sent),
                Err(failure) => failure,
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
            // M7: the client crate's rule. An answer that says nothing was applied (a refused connection) is
            // retried; one that may have been applied (timeout, 5xx, dropped connection) is retried only for an
            // idempotent request. A send or broadcast that may have gone out is never repeated inside this
            // invocation: the chunk fails and the record or schedule retry, through the ledger, decides.
            let idempotent = request.is_idempotent();
            let backoff = match policy.decide(
                class,
                attempt,
                idempotent,
                self.time_left(),
                rand::rng().random(),
            ) {
                RetryOutcome::Stop => return ChunkOutcome::Failed(Severity::Transient, error),
                RetryOutcome::RetryAfter(backoff) => backoff,
            };
            warn!(chunk = index, attempt, ?backoff, error = %error, "retrying chunk");
            tokio::time::sleep(backoff).await;
            attempt += 1;
        }
    }

    async fn take_budget(&self) -> Result<(), BudgetError> {
        let budget = &self.sender.delivery.budget;
        let daily = match self.bucket {
            Bucket::Broadcasts => budget.take_daily_broadcast().await?,
            Bucket::Messages => None,
        };
        let taken = budget.acquire(self.bucket, self.sender.deadline).await;
        if taken.is_err() {
            budget.refund_daily_broadcast(daily).await;
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
                code: ErrorCode::BudgetExhausted,
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
            msg_id: sent.msg_id.as_ref().map(ToString::to_string),
            timestamp: sent.timestamp,
            sent_at_ms: now_ms(),
            fingerprint,
        };
        for attempt in 1..=3u32 {
            match self
                .sender
                .delivery
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
            None if report.not_started > 0 => Some(FunctionError::DeadlineExceeded),
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
            elapsed_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "fan-out"
        );
        report
    }
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

    #[test]
    fn reads_budgets_and_rejects_bad_numbers() {
        let env = |name: &str| match name {
            SEND_BUDGET_PER_MINUTE => Some("120".to_owned()),
            BROADCAST_BUDGET_PER_DAY => Some("30".to_owned()),
            BULK_CONCURRENCY => Some("8".to_owned()),
            _ => None,
        };
        let delivery = Delivery::from_lookup(&env, None).expect("loads");
        assert_eq!(Some(120), delivery.budget.config().messages_per_window);
        assert_eq!(None, delivery.budget.config().broadcasts_per_window);
        assert_eq!(Some(30), delivery.budget.config().broadcasts_per_day);
        assert_eq!(8, delivery.options.concurrency);
        assert!(!delivery.ledger.is_durable() && delivery.ledger.is_on());

        let bad = |name: &str| (name == SEND_BUDGET_PER_MINUTE).then(|| "0".to_owned());
        let err = Delivery::from_lookup(&bad, None).expect_err("zero");
        assert!(err.to_string().contains(SEND_BUDGET_PER_MINUTE), "{err}");
        let no_aws = |name: &str| (name == IDEMPOTENCY_TABLE).then(|| "t".to_owned());
        assert!(Delivery::from_lookup(&no_aws, None).is_err());
    }

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
}
