//! Rate budgets per LeanCloud bucket, shared by concurrent invocations.
//!
//! LeanCloud limits ordinary sends (`/rtm/messages`: 1,800/min on paid apps, 120/min on development apps) and
//! broadcasts (`/rtm/broadcast`: 10/min, 30/day), and answers 429 with a one-minute penalty beyond them. The
//! budget counts *calls* (one per chunk of ≤ 20 recipients, one per broadcast, one per retry) in clock-aligned
//! windows (one minute by default; UTC days for the daily broadcast quota). A call is made only after a unit
//! was taken from the current window:
//! - with the DynamoDB table, by an atomic conditional `ADD` on the window's counter item, so every container
//!   draws from the same budget;
//! - without it, from a counter in this process (each container then has the whole budget to itself).
//!
//! A call is never started in the last part of a window (the guard, a tenth of the window up to one
//! second): a unit taken there could reach LeanCloud in the next window, which has its own full budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{TimeZone as _, Utc};
use tokio::time::Instant;

use super::dynamo::{millis, now_ms, number};

/// LeanCloud's rate-limit buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// `/1.1/rtm/messages`
    Messages,
    /// `/1.1/rtm/broadcast`
    Broadcasts,
}

impl Bucket {
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Messages => "messages",
            Bucket::Broadcasts => "broadcasts",
        }
    }
}

/// The configured budgets. `None` = unlimited (LeanCloud's own 429 is then the only brake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetConfig {
    /// `SEND_BUDGET_PER_MINUTE`: message calls per window.
    pub messages_per_window: Option<u32>,
    /// `BROADCAST_BUDGET_PER_MINUTE`: broadcast calls per window.
    pub broadcasts_per_window: Option<u32>,
    /// `BROADCAST_BUDGET_PER_DAY`: broadcast calls per UTC day.
    pub broadcasts_per_day: Option<u32>,
    /// The window length: one minute in production; shorter in tests.
    pub window: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig::unlimited()
    }
}

impl BudgetConfig {
    pub fn unlimited() -> Self {
        BudgetConfig {
            messages_per_window: None,
            broadcasts_per_window: None,
            broadcasts_per_day: None,
            window: Duration::from_secs(60),
        }
    }

    /// The per-window limit of a bucket.
    pub fn per_window(&self, bucket: Bucket) -> Option<u32> {
        match bucket {
            Bucket::Messages => self.messages_per_window,
            Bucket::Broadcasts => self.broadcasts_per_window,
        }
    }

    /// Windows needed for `calls` calls of `bucket` (the dry-run plan's "minutes needed").
    pub fn windows_needed(&self, bucket: Bucket, calls: usize) -> Option<u64> {
        let limit = u64::from(self.per_window(bucket)?.max(1));
        Some((calls as u64).div_ceil(limit))
    }

    fn guard(&self) -> Duration {
        (self.window / 10).min(Duration::from_secs(1))
    }
}

/// A unit taken from one UTC day's broadcast quota: the counter it was counted in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyUnit {
    key: String,
}

/// Why no unit could be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("the {bucket} budget of {limit} calls per {window:?} is used up; next window in {retry_after:?}")]
    Exhausted {
        bucket: &'static str,
        limit: u32,
        window: Duration,
        retry_after: Duration,
    },
    #[error(
        "the daily broadcast budget of {limit} is used up for {day} (UTC); refused before calling LeanCloud"
    )]
    DailyQuota {
        limit: u32,
        day: String,
        retry_after: Duration,
    },
    #[error("LeanCloud answered 429 for {bucket}; pausing for {retry_after:?}")]
    Penalized {
        bucket: &'static str,
        retry_after: Duration,
    },
    #[error("budget store: {0}")]
    Store(String),
}

impl BudgetError {
    pub fn retry_after(&self) -> Duration {
        match self {
            BudgetError::Exhausted { retry_after, .. }
            | BudgetError::DailyQuota { retry_after, .. }
            | BudgetError::Penalized { retry_after, .. } => *retry_after,
            BudgetError::Store(_) => Duration::from_secs(1),
        }
    }
}

/// Where the counters live.
#[derive(Debug, Clone)]
pub enum BudgetStore {
    /// Counter key -> (calls counted, end of its window in epoch ms).
    Memory(Arc<Mutex<HashMap<String, (u32, i64)>>>),
    DynamoDb {
        client: aws_sdk_dynamodb::Client,
        table: String,
    },
}

/// The budgets plus their counters. Clones share the counters.
#[derive(Debug, Clone)]
pub struct Budget {
    config: BudgetConfig,
    store: BudgetStore,
    /// Until when this process holds off a bucket after a LeanCloud 429.
    penalties: Arc<Mutex<HashMap<Bucket, Instant>>>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget::memory(BudgetConfig::unlimited())
    }
}

impl Budget {
    pub fn memory(config: BudgetConfig) -> Budget {
        Budget {
            config,
            store: BudgetStore::Memory(Arc::default()),
            penalties: Arc::default(),
        }
    }

    pub fn dynamodb(
        config: BudgetConfig,
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
    ) -> Budget {
        Budget {
            config,
            store: BudgetStore::DynamoDb {
                client,
                table: table.into(),
            },
            penalties: Arc::default(),
        }
    }

    pub fn config(&self) -> &BudgetConfig {
        &self.config
    }

    pub fn is_shared(&self) -> bool {
        matches!(self.store, BudgetStore::DynamoDb { .. })
    }

    /// Take one call of `bucket` from the current window, waiting for the next window when this one is used
    /// up, but not past `deadline` (then `Exhausted`). Fails at once while a 429 penalty is running.
    pub async fn acquire(
        &self,
        bucket: Bucket,
        deadline: Option<Instant>,
    ) -> Result<(), BudgetError> {
        let Some(limit) = self.config.per_window(bucket) else {
            return self.check_penalty(bucket);
        };
        let window_ms = millis(self.config.window).max(1);
        let guard_ms = millis(self.config.guard());
        loop {
            self.check_penalty(bucket)?;
            let now = now_ms();
            let index = now / window_ms;
            let end = (index + 1) * window_ms;
            let taken = now < end - guard_ms
                && self
                    .take(&window_key(bucket, window_ms, index), limit, end)
                    .await?;
            // The unit counts only if the call can still start inside its window.
            if taken && now_ms() < end - guard_ms {
                return Ok(());
            }
            let wait = Duration::from_millis(u64::try_from(end - now_ms()).unwrap_or(0))
                + Duration::from_millis(jitter_ms(25));
            if deadline.is_some_and(|deadline| Instant::now() + wait >= deadline) {
                return Err(BudgetError::Exhausted {
                    bucket: bucket.as_str(),
                    limit,
                    window: self.config.window,
                    retry_after: wait,
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Take one broadcast from today's quota (UTC), or refuse. The answer names the day the unit was taken
    /// from, so a refund gives it back to that day (`None`: no daily quota is configured).
    pub async fn take_daily_broadcast(&self) -> Result<Option<DailyUnit>, BudgetError> {
        self.take_daily_broadcast_at(Utc::now()).await
    }

    async fn take_daily_broadcast_at(
        &self,
        now: chrono::DateTime<Utc>,
    ) -> Result<Option<DailyUnit>, BudgetError> {
        let Some(limit) = self.config.broadcasts_per_day else {
            return Ok(None);
        };
        let day = now.format("%Y-%m-%d").to_string();
        let tomorrow = now
            .date_naive()
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| Utc.from_utc_datetime(&d));
        let end_ms = tomorrow.map_or(now.timestamp_millis() + 86_400_000, |t| {
            t.timestamp_millis()
        });
        let key = format!("budget#broadcasts#day#{day}");
        if self.take(&key, limit, end_ms).await? {
            return Ok(Some(DailyUnit { key }));
        }
        Err(BudgetError::DailyQuota {
            limit,
            day,
            retry_after: Duration::from_millis(u64::try_from(end_ms - now_ms()).unwrap_or(0)),
        })
    }

    /// Give back a daily broadcast unit that was not used (the per-minute budget refused the call), to the
    /// day it was taken from, even when the wait for the per-minute budget crossed midnight (finding L9).
    pub async fn refund_daily_broadcast(&self, unit: Option<DailyUnit>) {
        let Some(DailyUnit { key }) = unit else {
            return;
        };
        if let Err(err) = self.add(&key, -1).await {
            tracing::warn!(error = %err, "could not refund a daily broadcast unit");
        }
    }

    /// After a LeanCloud 429: no call of `bucket` leaves this process until `retry_after` (at most
    /// [`leancloud_im::MAX_RETRY_AFTER`]) has passed.
    pub fn penalize(&self, bucket: Bucket, retry_after: Duration) {
        let until = Instant::now() + retry_after.min(leancloud_im::MAX_RETRY_AFTER);
        let mut penalties = self
            .penalties
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = penalties.entry(bucket).or_insert(until);
        *entry = (*entry).max(until);
    }

    fn check_penalty(&self, bucket: Bucket) -> Result<(), BudgetError> {
        let penalties = self
            .penalties
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match penalties.get(&bucket) {
            Some(until) if *until > Instant::now() => Err(BudgetError::Penalized {
                bucket: bucket.as_str(),
                retry_after: until.duration_since(Instant::now()),
            }),
            _ => Ok(()),
        }
    }

    /// Count one call against `key` if fewer than `limit` were counted; `false` when the window is full.
    async fn take(&self, key: &str, limit: u32, window_end_ms: i64) -> Result<bool, BudgetError> {
        match &self.store {
            BudgetStore::Memory(counters) => {
                let mut counters = counters
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if !counters.contains_key(key) {
                    // Windows that are over are never counted again.
                    let now = now_ms();
                    counters.retain(|_, (_, end)| *end > now);
                }
                let (count, _) = counters.entry(key.to_owned()).or_insert((0, window_end_ms));
                if *count >= limit {
                    return Ok(false);
                }
                *count += 1;
                Ok(true)
            }
            BudgetStore::DynamoDb { client, table } => {
                let result = client
                    .update_item()
                    .table_name(table)
                    .key("pk", AttributeValue::S(key.to_owned()))
                    .key("sk", AttributeValue::S("count".to_owned()))
                    .update_expression("ADD #count :one SET expires_at = :expires")
                    .condition_expression("attribute_not_exists(#count) OR #count < :limit")
                    .expression_attribute_names("#count", "count")
                    .expression_attribute_values(":one", number(1))
                    .expression_attribute_values(":limit", number(i64::from(limit)))
                    // Counters are useless once their window is over; keep them a day for diagnostics.
                    .expression_attribute_values(":expires", number(window_end_ms / 1000 + 86_400))
                    .send()
                    .await;
                match result {
                    Ok(_) => Ok(true),
                    Err(err)
                        if err
                            .as_service_error()
                            .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                    {
                        Ok(false)
                    }
                    Err(err) => Err(BudgetError::Store(DisplayErrorContext(err).to_string())),
                }
            }
        }
    }

    async fn add(&self, key: &str, delta: i64) -> Result<(), BudgetError> {
        match &self.store {
            BudgetStore::Memory(counters) => {
                let mut counters = counters
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some((count, _)) = counters.get_mut(key) {
                    *count = count.saturating_add_signed(i32::try_from(delta).unwrap_or(0));
                }
                Ok(())
            }
            BudgetStore::DynamoDb { client, table } => client
                .update_item()
                .table_name(table)
                .key("pk", AttributeValue::S(key.to_owned()))
                .key("sk", AttributeValue::S("count".to_owned()))
                .update_expression("ADD #count :delta")
                .condition_expression("attribute_exists(#count)")
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":delta", number(delta))
                .send()
                .await
                .map(|_| ())
                .map_err(|err| BudgetError::Store(DisplayErrorContext(err).to_string())),
        }
    }
}

fn window_key(bucket: Bucket, window_ms: i64, index: i64) -> String {
    format!("budget#{}#{window_ms}#{index}", bucket.as_str())
}

/// A few random milliseconds so waiting invocations do not all wake at the same instant.
pub(crate) fn jitter_ms(max: u64) -> u64 {
    use rand::Rng as _;
    rand::rng().random_range(0..=max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(per_window: u32, window: Duration) -> BudgetConfig {
        BudgetConfig {
            messages_per_window: Some(per_window),
            broadcasts_per_window: Some(1),
            broadcasts_per_day: Some(2),
            window,
        }
    }

    #[tokio::test]
    async fn a_full_window_refuses_when_the_deadline_is_before_the_next() {
        let budget = Budget::memory(config(3, Duration::from_secs(3600)));
        let deadline = Some(Instant::now() + Duration::from_millis(50));
        let mut taken = 0;
        for _ in 0..5 {
            match budget.acquire(Bucket::Messages, deadline).await {
                Ok(()) => taken += 1,
                Err(BudgetError::Exhausted { limit, .. }) => assert_eq!(3, limit),
                Err(other) => panic!("unexpected {other}"),
            }
        }
        // Within one hour-long window (unless the test straddles the guard at its end) exactly 3 units go.
        assert!(taken <= 3, "{taken}");
    }

    #[tokio::test]
    async fn the_daily_broadcast_quota_refuses_with_a_clear_error_and_refunds() {
        let budget = Budget::memory(config(3, Duration::from_secs(60)));
        budget.take_daily_broadcast().await.expect("first");
        budget.take_daily_broadcast().await.expect("second");
        let err = budget.take_daily_broadcast().await.expect_err("third");
        assert!(
            err.to_string().contains("daily broadcast budget of 2"),
            "{err}"
        );
        budget
            .refund_daily_broadcast(Some(DailyUnit {
                key: format!("budget#broadcasts#day#{}", Utc::now().format("%Y-%m-%d")),
            }))
            .await;
        budget.take_daily_broadcast().await.expect("after a refund");
    }

    /// L9: the refund recomputed "today" when it ran. A unit taken at 23:59:59 whose per-minute wait ended
    /// after midnight was refunded to the new day: the old day kept the unit and the new day went one below
    /// zero (one broadcast more than its quota).
    #[tokio::test]
    async fn l9_a_refund_goes_back_to_the_day_the_unit_was_taken_from() {
        let budget = Budget::memory(config(3, Duration::from_secs(60)));
        let before_midnight = Utc
            .with_ymd_and_hms(2026, 12, 31, 23, 59, 59)
            .single()
            .expect("date");
        let unit = budget
            .take_daily_broadcast_at(before_midnight)
            .await
            .expect("taken");
        assert_eq!(
            Some("budget#broadcasts#day#2026-12-31"),
            unit.as_ref().map(|u| u.key.as_str())
        );
        let count = |day: &str| {
            let BudgetStore::Memory(counters) = &budget.store else {
                unreachable!()
            };
            counters
                .lock()
                .expect("lock")
                .get(&format!("budget#broadcasts#day#{day}"))
                .map(|(count, _)| *count)
        };
        assert_eq!(Some(1), count("2026-12-31"));
        // Refunded "after midnight" (now, in the test): the unit goes back to 2026-12-31.
        budget.refund_daily_broadcast(unit).await;
        assert_eq!(Some(0), count("2026-12-31"));
        let today = Utc::now().format("%Y-%m-%d").to_string();
        assert_eq!(None, count(&today), "today's counter is untouched");
    }

    /// L6: a 429 with `Retry-After` of u64::MAX seconds made `Instant::now() + retry_after` panic.
    #[tokio::test]
    async fn l6_a_huge_penalty_is_capped_and_never_panics() {
        let budget = Budget::memory(BudgetConfig::unlimited());
        budget.penalize(Bucket::Messages, Duration::MAX);
        match budget.acquire(Bucket::Messages, None).await {
            Err(BudgetError::Penalized { retry_after, .. }) => {
                assert!(
                    retry_after <= leancloud_im::MAX_RETRY_AFTER,
                    "{retry_after:?}"
                )
            }
            other => panic!("expected a penalty, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_penalty_stops_the_bucket_only() {
        let budget = Budget::memory(BudgetConfig::unlimited());
        budget.penalize(Bucket::Messages, Duration::from_secs(60));
        assert!(matches!(
            budget.acquire(Bucket::Messages, None).await,
            Err(BudgetError::Penalized { .. })
        ));
        budget
            .acquire(Bucket::Broadcasts, None)
            .await
            .expect("other bucket");
    }

    #[test]
    fn windows_needed_rounds_up() {
        let config = config(120, Duration::from_secs(60));
        assert_eq!(Some(5), config.windows_needed(Bucket::Messages, 500));
        assert_eq!(Some(1), config.windows_needed(Bucket::Messages, 1));
        assert_eq!(
            None,
            BudgetConfig::unlimited().windows_needed(Bucket::Messages, 1)
        );
    }
}

/// Property tests of the budget's promise: a window never admits more calls than its limit, however many
/// invocations ask at once.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// `callers` concurrent invocations make `attempts` acquisitions each against a limit of `limit` per
        /// (hour-long) window, with a deadline too short to wait for the next: at most `limit` are admitted,
        /// and exactly `min(limit, demand)` unless the test straddles the window's guard at its end.
        #[test]
        fn a_window_never_admits_more_than_its_limit(limit in 1..40u32, callers in 1..8usize, attempts in 1..12usize) {
            let admitted = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_time()
                .build()
                .expect("runtime")
                .block_on(async move {
                    let budget = Budget::memory(BudgetConfig {
                        messages_per_window: Some(limit),
                        broadcasts_per_window: None,
                        broadcasts_per_day: None,
                        window: Duration::from_secs(3600),
                    });
                    let tasks: Vec<_> = (0..callers)
                        .map(|_| {
                            let budget = budget.clone();
                            tokio::spawn(async move {
                                let mut ok = 0u32;
                                for _ in 0..attempts {
                                    let deadline = Some(Instant::now() + Duration::from_millis(20));
                                    if budget.acquire(Bucket::Messages, deadline).await.is_ok() {
                                        ok += 1;
                                    }
                                }
                                ok
                            })
                        })
                        .collect();
                    let mut admitted = 0;
                    for task in tasks {
                        admitted += task.await.expect("task");
                    }
                    admitted
                });
            let demand = u32::try_from(callers * attempts).unwrap_or(u32::MAX);
            prop_assert!(admitted <= limit, "{admitted} admitted, limit {limit}");
            let window_ms = 3_600_000;
            let guard_end = now_ms() % window_ms > window_ms - 2_000;
            if !guard_end {
                prop_assert_eq!(limit.min(demand), admitted);
            }
        }

        /// The daily quota: however many broadcasts are asked for, at most the day's limit are taken, and a
        /// refund makes exactly one more possible.
        #[test]
        fn the_daily_quota_admits_its_limit_and_refunds_one(limit in 1..10u32, asks in 1..20u32) {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime")
                .block_on(async move {
                    let budget = Budget::memory(BudgetConfig {
                        broadcasts_per_day: Some(limit),
                        ..BudgetConfig::unlimited()
                    });
                    let day = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).single().expect("date");
                    let mut units = Vec::new();
                    for _ in 0..asks {
                        if let Ok(unit) = budget.take_daily_broadcast_at(day).await {
                            units.push(unit);
                        }
                    }
                    prop_assert_eq!(limit.min(asks) as usize, units.len());
                    if let Some(unit) = units.pop() {
                        budget.refund_daily_broadcast(unit).await;
                        prop_assert!(budget.take_daily_broadcast_at(day).await.is_ok());
                        prop_assert!(budget.take_daily_broadcast_at(day).await.is_err() || asks < limit);
                    }
                    Ok(())
                })?;
        }
    }
}
