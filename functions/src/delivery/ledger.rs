//! Idempotency progress per (key, chunk).
//!
//! A bulk send is split into chunks of at most 20 recipients; each chunk is one LeanCloud call. Before a chunk
//! is sent it is *claimed* (state `IN_PROGRESS` with a lease expiry and an owner token); after LeanCloud
//! accepted it, it is marked `DONE` with the message id and timestamp. A redelivered SQS record, a retried
//! schedule or a repeated HTTP call with the same key finds the `DONE` chunks and returns their stored result
//! instead of sending again; a chunk whose lease expired (its invocation died mid-send) can be claimed again.
//!
//! Three implementations:
//! - [`Ledger::dynamodb`]: the `IDEMPOTENCY_TABLE` (keys `pk`/`sk`, TTL attribute `expires_at`), shared by every
//!   invocation and container. Claims are conditional puts, so two concurrent deliveries of one record never
//!   both send a chunk.
//! - [`Ledger::memory`]: used when no table is configured. It only remembers what *this* warm container sent:
//!   a redelivery that lands on another container (or after a cold start) sends again. At-least-once only.
//! - [`Ledger::Off`]: remembers nothing (handlers called without services, e.g. unit tests of other modules).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use super::dynamo::{millis, now_ms, number};

/// How long a `DONE` chunk is remembered by default: longer than the bulk queue keeps a message (4 days) and
/// its dead-letter queue (14 days), so a redrive from the DLQ is still de-duplicated.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(15 * 24 * 3600);

/// The in-memory ledger forgets chunks sent more than a day ago once it holds this many, so a long-lived warm
/// container does not grow without bound.
const MEMORY_PRUNE_AT: usize = 100_000;

/// How long a chunk LeanCloud refused for good (a 4xx answer: unknown conversation, wrong kind…) is
/// remembered: long enough for Lambda's retries of a scheduled invocation and the bulk queue's redeliveries
/// to be answered from here without calling LeanCloud or taking budget (finding L8); short enough that a
/// redrive from the dead-letter queue after the cause was fixed is tried afresh.
pub const FAILURE_RETENTION: Duration = Duration::from_secs(3600);

const IN_PROGRESS: &str = "IN_PROGRESS";
const DONE: &str = "DONE";
const FAILED: &str = "FAILED";

/// What LeanCloud answered for a chunk, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChunk {
    pub msg_id: Option<String>,
    pub timestamp: Option<i64>,
    /// When the chunk was recorded as sent (epoch ms).
    pub sent_at_ms: i64,
    /// Digest of the exact request bytes: a key reused for a different request is detected.
    pub fingerprint: String,
}

/// LeanCloud's permanent refusal of a chunk, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFailure {
    pub status: u16,
    pub code: i64,
    pub error: String,
    pub fingerprint: String,
    /// Until when the refusal is answered from the ledger (epoch ms).
    pub until_ms: i64,
}

/// Proof of a claim; only its owner releases it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub token: String,
    pub until_ms: i64,
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This invocation owns the chunk: send it, then [`Ledger::complete`] or [`Ledger::release`].
    Claimed(Lease),
    /// Already sent: return the stored result, do not send.
    Done(StoredChunk),
    /// Another invocation holds a live lease on it; try again after `retry_after`.
    Busy { retry_after: Duration },
    /// LeanCloud refused it for good moments ago: answer that again, do not send.
    Failed(StoredFailure),
}

#[derive(Debug, thiserror::Error)]
#[error("idempotency ledger: {0}")]
pub struct LedgerError(pub String);

/// The idempotency ledger. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub enum Ledger {
    /// Remembers nothing: every claim succeeds.
    #[default]
    Off,
    Memory(Arc<MemoryLedger>),
    DynamoDb(DynamoLedger),
}

impl Ledger {
    pub fn memory() -> Ledger {
        Ledger::Memory(Arc::default())
    }

    pub fn dynamodb(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Ledger {
        Ledger::DynamoDb(DynamoLedger {
            client,
            table: table.into(),
            retention: DEFAULT_RETENTION,
        })
    }

    /// Whether progress survives this process (a table is configured).
    pub fn is_durable(&self) -> bool {
        matches!(self, Ledger::DynamoDb(_))
    }

    /// Whether the ledger remembers anything at all.
    pub fn is_on(&self) -> bool {
        !matches!(self, Ledger::Off)
    }

    /// Claim chunk `chunk` of `key` for `lease`, unless it is already done or held by a live lease.
    pub async fn claim(
        &self,
        key: &str,
        chunk: usize,
        fingerprint: &str,
        lease: Duration,
    ) -> Result<Claim, LedgerError> {
        let lease = Lease {
            token: new_token(),
            until_ms: now_ms() + millis(lease),
        };
        match self {
            Ledger::Off => Ok(Claim::Claimed(lease)),
            Ledger::Memory(memory) => Ok(memory.claim(key, chunk, fingerprint, lease)),
            Ledger::DynamoDb(table) => table.claim(key, chunk, fingerprint, lease).await,
        }
    }

    /// Record that the claimed chunk went out. Never overwrites a `DONE` record.
    pub async fn complete(
        &self,
        key: &str,
        chunk: usize,
        lease: &Lease,
        result: &StoredChunk,
    ) -> Result<(), LedgerError> {
        match self {
            Ledger::Off => Ok(()),
            Ledger::Memory(memory) => {
                memory.complete(key, chunk, result);
                Ok(())
            }
            Ledger::DynamoDb(table) => table.complete(key, chunk, lease, result).await,
        }
    }

    /// Record that LeanCloud refused the claimed chunk for good; claims within [`FAILURE_RETENTION`] get
    /// [`Claim::Failed`]. Never overwrites a `DONE` record.
    pub async fn fail(
        &self,
        key: &str,
        chunk: usize,
        lease: &Lease,
        failure: &StoredFailure,
    ) -> Result<(), LedgerError> {
        match self {
            Ledger::Off => Ok(()),
            Ledger::Memory(memory) => {
                memory.fail(key, chunk, lease, failure);
                Ok(())
            }
            Ledger::DynamoDb(table) => table.fail(key, chunk, lease, failure).await,
        }
    }

    /// Give a claim up (the chunk was not sent, or its outcome is unknown and it must be sent again).
    pub async fn release(&self, key: &str, chunk: usize, lease: &Lease) -> Result<(), LedgerError> {
        match self {
            Ledger::Off => Ok(()),
            Ledger::Memory(memory) => {
                memory.release(key, chunk, lease);
                Ok(())
            }
            Ledger::DynamoDb(table) => table.release(key, chunk, lease).await,
        }
    }

    /// The stored state of a chunk (tests and diagnostics).
    pub async fn get(&self, key: &str, chunk: usize) -> Result<Option<Entry>, LedgerError> {
        match self {
            Ledger::Off => Ok(None),
            Ledger::Memory(memory) => Ok(memory.get(key, chunk)),
            Ledger::DynamoDb(table) => table.get(key, chunk).await,
        }
    }
}

/// One chunk's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    InProgress { lease: Lease, fingerprint: String },
    Done(StoredChunk),
    Failed(StoredFailure),
}

impl Entry {
    /// The answer a new claim gets when this entry is present at `now`; `None` = free to claim.
    fn blocks(&self, now: i64) -> Option<Claim> {
        match self {
            Entry::Done(stored) => Some(Claim::Done(stored.clone())),
            Entry::InProgress { lease, .. } if lease.until_ms > now => Some(Claim::Busy {
                retry_after: Duration::from_millis(
                    u64::try_from(lease.until_ms - now).unwrap_or(0),
                ),
            }),
            Entry::InProgress { .. } => None,
            Entry::Failed(failure) if failure.until_ms > now => {
                Some(Claim::Failed(failure.clone()))
            }
            Entry::Failed(_) => None,
        }
    }
}

/// Progress kept in this process only.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<(String, usize), Entry>,
    /// The size at which the next prune runs: at least [`MEMORY_PRUNE_AT`], and twice what the last prune
    /// kept, so a map of entries that are all still fresh is not rescanned on every claim (finding L14);
    /// pruning costs O(1) amortised per claim.
    prune_at: usize,
    /// Prunes run (tests).
    prunes: usize,
}

impl Entries {
    fn prune_if_due(&mut self, now: i64) {
        if self.map.len() < self.prune_at.max(MEMORY_PRUNE_AT) {
            return;
        }
        let day_ago = now - 86_400_000;
        self.map.retain(|_, entry| match entry {
            Entry::Done(stored) => stored.sent_at_ms > day_ago,
            Entry::InProgress { lease, .. } => lease.until_ms > now,
            Entry::Failed(failure) => failure.until_ms > now,
        });
        self.prune_at = (self.map.len() * 2).max(MEMORY_PRUNE_AT);
        self.prunes += 1;
    }
}

impl MemoryLedger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn claim(&self, key: &str, chunk: usize, fingerprint: &str, lease: Lease) -> Claim {
        let mut entries = self.lock();
        let now = now_ms();
        entries.prune_if_due(now);
        let entries = &mut entries.map;
        let slot = (key.to_owned(), chunk);
        if let Some(blocking) = entries.get(&slot).and_then(|entry| entry.blocks(now)) {
            return blocking;
        }
        entries.insert(
            slot,
            Entry::InProgress {
                lease: lease.clone(),
                fingerprint: fingerprint.to_owned(),
            },
        );
        Claim::Claimed(lease)
    }

    fn complete(&self, key: &str, chunk: usize, result: &StoredChunk) {
        let entries = &mut self.lock().map;
        let slot = (key.to_owned(), chunk);
        if !matches!(entries.get(&slot), Some(Entry::Done(_))) {
            entries.insert(slot, Entry::Done(result.clone()));
        }
    }

    fn fail(&self, key: &str, chunk: usize, lease: &Lease, failure: &StoredFailure) {
        let entries = &mut self.lock().map;
        let slot = (key.to_owned(), chunk);
        if matches!(entries.get(&slot), Some(Entry::InProgress { lease: held, .. }) if held.token == lease.token)
        {
            entries.insert(slot, Entry::Failed(failure.clone()));
        }
    }

    fn release(&self, key: &str, chunk: usize, lease: &Lease) {
        let entries = &mut self.lock().map;
        let slot = (key.to_owned(), chunk);
        if matches!(entries.get(&slot), Some(Entry::InProgress { lease: held, .. }) if held.token == lease.token)
        {
            entries.remove(&slot);
        }
    }

    fn get(&self, key: &str, chunk: usize) -> Option<Entry> {
        self.lock().map.get(&(key.to_owned(), chunk)).cloned()
    }
}

/// Progress in the DynamoDB table (`pk` = `idem#<key>`, `sk` = `chunk#<index>`).
#[derive(Debug, Clone)]
pub struct DynamoLedger {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retention: Duration,
}

impl DynamoLedger {
    fn key(key: &str, chunk: usize) -> [(&'static str, AttributeValue); 2] {
        [
            ("pk", AttributeValue::S(format!("idem#{key}"))),
            ("sk", AttributeValue::S(format!("chunk#{chunk:06}"))),
        ]
    }

    fn expires_at(&self, from_ms: i64) -> AttributeValue {
        number((from_ms + millis(self.retention)) / 1000)
    }

    async fn claim(
        &self,
        key: &str,
        chunk: usize,
        fingerprint: &str,
        lease: Lease,
    ) -> Result<Claim, LedgerError> {
        // Two rounds: a record found expired-and-deleted between the failed put and the read is claimed again.
        for _ in 0..2 {
            let now = now_ms();
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("state", AttributeValue::S(IN_PROGRESS.to_owned()))
                .item("owner", AttributeValue::S(lease.token.clone()))
                .item("lease_until", number(lease.until_ms))
                .item("fp", AttributeValue::S(fingerprint.to_owned()))
                .item("expires_at", self.expires_at(lease.until_ms))
                .condition_expression(
                    // An expired lease, or a remembered refusal that is over (TTL deletes lazily).
                    "attribute_not_exists(pk) OR (#state <> :done AND lease_until < :now)",
                )
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":done", AttributeValue::S(DONE.into()))
                .expression_attribute_values(":now", number(now));
            for (name, value) in Self::key(key, chunk) {
                put = put.item(name, value);
            }
            match put.send().await {
                Ok(_) => return Ok(Claim::Claimed(lease)),
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(err) => {
                    return Err(LedgerError(format!("claim: {}", DisplayErrorContext(err))))
                }
            }
            if let Some(blocking) = self
                .get(key, chunk)
                .await?
                .and_then(|entry| entry.blocks(now_ms()))
            {
                return Ok(blocking);
            }
        }
        Err(LedgerError(format!(
            "claim of {key} chunk {chunk} kept conflicting"
        )))
    }

    async fn complete(
        &self,
        key: &str,
        chunk: usize,
        lease: &Lease,
        result: &StoredChunk,
    ) -> Result<(), LedgerError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("state", AttributeValue::S(DONE.to_owned()))
            .item("owner", AttributeValue::S(lease.token.clone()))
            .item("fp", AttributeValue::S(result.fingerprint.clone()))
            .item("sent_at", number(result.sent_at_ms))
            .item("expires_at", self.expires_at(result.sent_at_ms))
            .condition_expression("attribute_not_exists(pk) OR #state <> :done")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":done", AttributeValue::S(DONE.into()));
        if let Some(msg_id) = &result.msg_id {
            put = put.item("msg_id", AttributeValue::S(msg_id.clone()));
        }
        if let Some(timestamp) = result.timestamp {
            put = put.item("ts", number(timestamp));
        }
        for (name, value) in Self::key(key, chunk) {
            put = put.item(name, value);
        }
        match put.send().await {
            Ok(_) => Ok(()),
            // Already DONE (a concurrent owner whose lease had expired finished first): keep the first result.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(LedgerError(format!(
                "complete: {}",
                DisplayErrorContext(err)
            ))),
        }
    }

    async fn fail(
        &self,
        key: &str,
        chunk: usize,
        lease: &Lease,
        failure: &StoredFailure,
    ) -> Result<(), LedgerError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("state", AttributeValue::S(FAILED.to_owned()))
            .item("owner", AttributeValue::S(lease.token.clone()))
            .item("fp", AttributeValue::S(failure.fingerprint.clone()))
            .item("lease_until", number(failure.until_ms))
            .item("status", number(i64::from(failure.status)))
            .item("code", number(failure.code))
            .item("error", AttributeValue::S(failure.error.clone()))
            .item("expires_at", number(failure.until_ms / 1000 + 86_400))
            .condition_expression("#state = :in_progress AND #owner = :owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.into()))
            .expression_attribute_values(":owner", AttributeValue::S(lease.token.clone()));
        for (name, value) in Self::key(key, chunk) {
            put = put.item(name, value);
        }
        match put.send().await {
            Ok(_) => Ok(()),
            // The claim was lost (lease expired and taken over): the new owner decides.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(LedgerError(format!("fail: {}", DisplayErrorContext(err)))),
        }
    }

    async fn release(&self, key: &str, chunk: usize, lease: &Lease) -> Result<(), LedgerError> {
        let mut delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .condition_expression("#state = :in_progress AND #owner = :owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.into()))
            .expression_attribute_values(":owner", AttributeValue::S(lease.token.clone()));
        for (name, value) in Self::key(key, chunk) {
            delete = delete.key(name, value);
        }
        match delete.send().await {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(LedgerError(format!(
                "release: {}",
                DisplayErrorContext(err)
            ))),
        }
    }

    async fn get(&self, key: &str, chunk: usize) -> Result<Option<Entry>, LedgerError> {
        let mut get = self
            .client
            .get_item()
            .table_name(&self.table)
            .consistent_read(true);
        for (name, value) in Self::key(key, chunk) {
            get = get.key(name, value);
        }
        let output = get
            .send()
            .await
            .map_err(|err| LedgerError(format!("read: {}", DisplayErrorContext(err))))?;
        let Some(item) = output.item() else {
            return Ok(None);
        };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let int = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
        };
        let fingerprint = text("fp").unwrap_or_default();
        match text("state").as_deref() {
            Some(DONE) => Ok(Some(Entry::Done(StoredChunk {
                msg_id: text("msg_id"),
                timestamp: int("ts"),
                sent_at_ms: int("sent_at").unwrap_or_default(),
                fingerprint,
            }))),
            Some(FAILED) => Ok(Some(Entry::Failed(StoredFailure {
                status: int("status")
                    .and_then(|status| u16::try_from(status).ok())
                    .unwrap_or(400),
                code: int("code").unwrap_or(1),
                error: text("error").unwrap_or_default(),
                fingerprint,
                until_ms: int("lease_until").unwrap_or_default(),
            }))),
            Some(IN_PROGRESS) => Ok(Some(Entry::InProgress {
                lease: Lease {
                    token: text("owner").unwrap_or_default(),
                    until_ms: int("lease_until").unwrap_or_default(),
                },
                fingerprint,
            })),
            other => Err(LedgerError(format!(
                "unexpected state {other:?} for {key} chunk {chunk}"
            ))),
        }
    }
}

/// A token unique across containers: process id, clock and a counter.
fn new_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{:x}-{nanos:x}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(msg_id: &str) -> StoredChunk {
        StoredChunk {
            msg_id: Some(msg_id.to_owned()),
            timestamp: Some(1),
            sent_at_ms: 2,
            fingerprint: "fp".to_owned(),
        }
    }

    #[tokio::test]
    async fn memory_claim_done_and_replay() {
        let ledger = Ledger::memory();
        let Claim::Claimed(lease) = ledger
            .claim("k", 0, "fp", Duration::from_secs(60))
            .await
            .expect("claim")
        else {
            panic!("first claim must succeed")
        };
        let busy = ledger.claim("k", 0, "fp", Duration::from_secs(60)).await;
        assert!(matches!(busy, Ok(Claim::Busy { .. })), "{busy:?}");
        ledger
            .complete("k", 0, &lease, &stored("m1"))
            .await
            .expect("complete");
        assert_eq!(
            Claim::Done(stored("m1")),
            ledger
                .claim("k", 0, "fp", Duration::from_secs(60))
                .await
                .expect("claim")
        );
        // Another chunk of the same key is independent.
        assert!(matches!(
            ledger.claim("k", 1, "fp", Duration::from_secs(60)).await,
            Ok(Claim::Claimed(_))
        ));
    }

    #[tokio::test]
    async fn memory_release_and_lease_expiry_free_the_chunk() {
        let ledger = Ledger::memory();
        let Ok(Claim::Claimed(lease)) = ledger.claim("k", 0, "fp", Duration::ZERO).await else {
            panic!("claimed")
        };
        // A lease that has run out does not block a new claim.
        let Ok(Claim::Claimed(second)) = ledger.claim("k", 0, "fp", Duration::from_secs(60)).await
        else {
            panic!("an expired lease must be claimable")
        };
        // The stale owner cannot release the new owner's claim.
        ledger.release("k", 0, &lease).await.expect("release");
        assert!(matches!(
            ledger.get("k", 0).await,
            Ok(Some(Entry::InProgress { .. }))
        ));
        ledger.release("k", 0, &second).await.expect("release");
        assert_eq!(None, ledger.get("k", 0).await.expect("get"));
    }

    /// L14: once the map held 100,000 entries that were all under a day old, every claim rescanned all of
    /// them (1,000 claims: 1,000 full scans). Now a prune that keeps everything moves the next one to twice
    /// the size.
    #[test]
    fn l14_a_full_map_of_fresh_entries_is_not_rescanned_on_every_claim() {
        let memory = MemoryLedger::default();
        let lease = || Lease {
            token: new_token(),
            until_ms: now_ms() + 60_000,
        };
        for i in 0..MEMORY_PRUNE_AT {
            memory.complete(&format!("k{i}"), 0, &stored("m"));
        }
        // `stored` entries were sent at epoch ms 2: make them fresh.
        for entry in memory.lock().map.values_mut() {
            if let Entry::Done(stored) = entry {
                stored.sent_at_ms = now_ms();
            }
        }
        for i in 0..1_000 {
            memory.claim(&format!("new{i}"), 0, "fp", lease());
        }
        let entries = memory.lock();
        assert_eq!(1, entries.prunes, "one prune for 1,000 claims");
        assert_eq!(
            MEMORY_PRUNE_AT + 1_000,
            entries.map.len(),
            "nothing fresh was dropped"
        );
    }

    #[test]
    fn a_prune_still_forgets_old_entries() {
        let memory = MemoryLedger::default();
        for i in 0..MEMORY_PRUNE_AT {
            memory.complete(&format!("k{i}"), 0, &stored("m"));
        }
        let lease = Lease {
            token: new_token(),
            until_ms: now_ms() + 60_000,
        };
        memory.claim("new", 0, "fp", lease);
        assert_eq!(1, memory.lock().map.len(), "day-old entries are gone");
    }

    #[tokio::test]
    async fn off_always_claims() {
        let ledger = Ledger::Off;
        for _ in 0..2 {
            assert!(matches!(
                ledger.claim("k", 0, "fp", Duration::from_secs(1)).await,
                Ok(Claim::Claimed(_))
            ));
        }
        assert!(!ledger.is_on());
    }
}

/// Property tests of the ledger's one promise: a chunk is held by one invocation at a time, and once it is
/// `DONE` nobody sends it again.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Claim(usize),
        Complete(usize),
        Release(usize),
        Fail(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        let who = 0..4usize;
        prop_oneof![
            who.clone().prop_map(Step::Claim),
            who.clone().prop_map(Step::Complete),
            who.clone().prop_map(Step::Release),
            who.prop_map(Step::Fail),
        ]
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    proptest! {
        /// Any interleaving of four invocations' claims, completions, refusals and releases of one chunk: a
        /// claim succeeds only when nobody holds the chunk and it is neither done nor refused; a done chunk
        /// answers `Done` for ever; only the holder's completion or release counts.
        #[test]
        fn one_holder_at_a_time_and_done_is_final(steps in proptest::collection::vec(step(), 1..60)) {
            block_on(async {
                let ledger = Ledger::memory();
                let minute = Duration::from_secs(60);
                let mut leases: Vec<Option<Lease>> = vec![None; 4];
                // The model: who holds the chunk, and whether it is done or refused.
                let (mut holder, mut done, mut failed) = (None::<usize>, false, false);
                for step in steps {
                    match step {
                        Step::Claim(who) => {
                            let claim = ledger.claim("k", 0, "fp", minute).await.expect("memory");
                            match claim {
                                Claim::Claimed(lease) => {
                                    prop_assert!(holder.is_none() && !done && !failed, "claimed while held/done");
                                    holder = Some(who);
                                    leases[who] = Some(lease);
                                }
                                Claim::Done(_) => prop_assert!(done),
                                Claim::Busy { .. } => prop_assert!(holder.is_some()),
                                Claim::Failed(_) => prop_assert!(failed),
                            }
                        }
                        Step::Complete(who) => {
                            if let Some(lease) = leases[who].take() {
                                ledger.complete("k", 0, &lease, &StoredChunk {
                                    msg_id: Some(format!("m{who}")), timestamp: None, sent_at_ms: now_ms(),
                                    fingerprint: "fp".into(),
                                }).await.expect("memory");
                                // A stale lease's completion still marks the chunk sent: the message went out.
                                if !failed {
                                    done = true;
                                }
                                if holder == Some(who) {
                                    holder = None;
                                }
                            }
                        }
                        Step::Release(who) => {
                            if let Some(lease) = leases[who].take() {
                                ledger.release("k", 0, &lease).await.expect("memory");
                                if holder == Some(who) {
                                    holder = None;
                                }
                            }
                        }
                        Step::Fail(who) => {
                            if let Some(lease) = leases[who].take() {
                                let failure = StoredFailure {
                                    status: 400, code: 4313, error: "x".into(), fingerprint: "fp".into(),
                                    until_ms: now_ms() + 60_000,
                                };
                                ledger.fail("k", 0, &lease, &failure).await.expect("memory");
                                if holder == Some(who) {
                                    holder = None;
                                    failed = !done;
                                }
                            }
                        }
                    }
                }
                Ok(())
            })?;
        }

        /// Many invocations claiming one chunk at the same moment: exactly one wins.
        #[test]
        fn concurrent_claims_have_one_winner(invocations in 2..32usize) {
            let winners = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .build()
                .expect("runtime")
                .block_on(async {
                    let ledger = Ledger::memory();
                    let tasks: Vec<_> = (0..invocations)
                        .map(|_| {
                            let ledger = ledger.clone();
                            tokio::spawn(async move {
                                ledger.claim("race", 0, "fp", Duration::from_secs(60)).await
                            })
                        })
                        .collect();
                    let mut winners = 0;
                    for task in tasks {
                        if matches!(task.await.expect("task"), Ok(Claim::Claimed(_))) {
                            winners += 1;
                        }
                    }
                    winners
                });
            prop_assert_eq!(1, winners);
        }
    }
}
