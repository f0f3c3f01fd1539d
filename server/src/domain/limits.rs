//! LeanCloud's RTM rate-limit buckets (`leancloud-rest.md` §6): in memory on SQLite (one instance), in the
//! database on PostgreSQL, where every instance takes from the same windows so a limit holds for the app.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{Datelike, TimeZone, Utc};

use crate::config::RateLimits;
use crate::store::db::Db;
use crate::store::postgres::{self, Pg};
use crate::store::StoreError;

/// A unit refused: LeanCloud's 429, with when to try again.
#[derive(Debug, thiserror::Error)]
pub enum Limited {
    /// The bucket's minute is full.
    #[error("Too many requests.")]
    TooMany { retry_after_secs: u64 },
    /// The day's broadcasts are used up (until midnight UTC).
    #[error("The daily quota of system messages is exceeded.")]
    DailyQuota { retry_after_secs: u64 },
    /// The shared windows could not be read (PostgreSQL).
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Messages,
    Broadcasts,
}

#[derive(Debug, Default)]
struct Window {
    started: Option<Instant>,
    count: u32,
}

impl Window {
    /// Counts one call in a 60 s window that starts with its first call; `Err(seconds left)` when full.
    fn take(&mut self, limit: u32, now: Instant) -> Result<(), u64> {
        let minute = Duration::from_secs(60);
        match self.started {
            Some(start) if now.duration_since(start) < minute => {}
            _ => {
                self.started = Some(now);
                self.count = 0;
            }
        }
        if self.count >= limit {
            let left = minute.saturating_sub(now.duration_since(self.started.unwrap_or(now)));
            return Err(left.as_secs() + u64::from(left.subsec_nanos() > 0));
        }
        self.count += 1;
        Ok(())
    }
}

#[derive(Debug, Default)]
struct State {
    messages: Window,
    broadcasts: Window,
    /// (UTC day number, broadcasts that day)
    day: (i64, u32),
}

#[derive(Debug)]
pub struct RateLimiter {
    limits: Mutex<RateLimits>,
    state: Mutex<State>,
    /// The shared windows, on PostgreSQL.
    shared: Option<Pg>,
    /// Refusals by bucket, for `--metrics-listen`.
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

/// What a granted request took, to give back with [`RateLimiter::refund`] if it then fails.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    bucket: Option<Bucket>,
    /// Shared windows taken from: (name, window start, limit).
    shared: Vec<(&'static str, i64, i64)>,
}

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

fn window_name(bucket: Bucket) -> &'static str {
    match bucket {
        Bucket::Messages => "messages/minute",
        Bucket::Broadcasts => "broadcasts/minute",
    }
}
const DAY_WINDOW: &str = "broadcasts/day";

/// Whole seconds until `ms` from now (at least 1).
fn secs_until(ms: i64, now: i64) -> u64 {
    ((ms - now).max(1) as u64).div_ceil(1000)
}

fn seconds_to_utc_midnight() -> u64 {
    let now = Utc::now();
    let tomorrow = now
        .date_naive()
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Utc.from_utc_datetime(&d));
    tomorrow.map_or(86_400, |t| (t - now).num_seconds().max(1) as u64)
}

impl RateLimiter {
    /// Limits counted in memory (one instance).
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter {
            limits: Mutex::new(limits),
            state: Mutex::new(State::default()),
            shared: None,
            metrics: std::sync::Arc::default(),
        }
    }

    /// Counts its refusals in `metrics`.
    pub fn with_metrics(self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        RateLimiter { metrics, ..self }
    }

    /// Limits counted in windows of `db` when it is shared (PostgreSQL), in memory otherwise.
    pub fn for_db(limits: RateLimits, db: &Db) -> Self {
        RateLimiter {
            shared: match db {
                Db::Postgres(pg) => Some(pg.clone()),
                Db::Sqlite(_) => None,
            },
            ..RateLimiter::new(limits)
        }
    }

    fn limits(&self) -> RateLimits {
        self.limits.lock().map(|l| *l).unwrap_or_default()
    }

    /// Takes a unit of `bucket`, or answers 429 with when to retry.
    pub async fn take(&self, bucket: Bucket) -> Result<Grant, Limited> {
        let taken = self.take_unit(bucket).await;
        if let Err(Limited::TooMany { .. } | Limited::DailyQuota { .. }) = &taken {
            self.metrics.rate_limited(match bucket {
                Bucket::Messages => "messages",
                Bucket::Broadcasts => "broadcasts",
            });
        }
        taken
    }

    async fn take_unit(&self, bucket: Bucket) -> Result<Grant, Limited> {
        let Some(pg) = &self.shared else {
            self.check(bucket)?;
            return Ok(Grant {
                bucket: Some(bucket),
                shared: Vec::new(),
            });
        };
        let limits = self.limits();
        let now = Utc::now().timestamp_millis();
        let mut grant = Grant {
            bucket: Some(bucket),
            shared: Vec::new(),
        };
        let too_many = |secs| Limited::TooMany {
            retry_after_secs: secs,
        };
        if bucket == Bucket::Broadcasts {
            if let Some(limit) = limits.broadcasts_per_day {
                let today = now.div_euclid(DAY_MS) * DAY_MS;
                let taken =
                    postgres::limits::take(pg, DAY_WINDOW, today, DAY_MS, limit.into()).await?;
                if !taken.granted {
                    return Err(Limited::DailyQuota {
                        retry_after_secs: seconds_to_utc_midnight(),
                    });
                }
                grant
                    .shared
                    .push((DAY_WINDOW, taken.window_start, limit.into()));
            }
        }
        let minute = match bucket {
            Bucket::Messages => limits.messages_per_minute,
            Bucket::Broadcasts => limits.broadcasts_per_minute,
        };
        if let Some(limit) = minute {
            let name = window_name(bucket);
            let taken = postgres::limits::take(pg, name, now, MINUTE_MS, limit.into()).await?;
            if !taken.granted {
                self.refund(grant).await;
                return Err(too_many(secs_until(taken.window_start + MINUTE_MS, now)));
            }
            grant.shared.push((name, taken.window_start, limit.into()));
        }
        Ok(grant)
    }

    /// Gives back what `grant` took (the request failed after it was counted).
    pub async fn refund(&self, grant: Grant) {
        match &self.shared {
            Some(pg) => {
                for (name, start, limit) in grant.shared {
                    if let Err(e) = postgres::limits::refund(pg, name, start, limit).await {
                        tracing::warn!(error = %e, bucket = name, "rate limit: refund lost");
                    }
                }
            }
            None => {
                if let Some(bucket) = grant.bucket {
                    self.refund_local(bucket);
                }
            }
        }
    }

    /// Replaces the limits and starts every window again: in memory, and the shared ones on PostgreSQL.
    pub async fn set(&self, limits: RateLimits) {
        if let Ok(mut l) = self.limits.lock() {
            *l = limits;
        }
        if let Ok(mut s) = self.state.lock() {
            *s = State::default();
        }
        if let Some(pg) = &self.shared {
            if let Err(e) = postgres::limits::reset(pg).await {
                tracing::warn!(error = %e, "rate limit: shared windows not reset");
            }
        }
    }

    /// Gives back the unit `check` took, for a call that then failed (a broadcast to an unknown
    /// conversation must not use the daily quota).
    fn refund_local(&self, bucket: Bucket) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        match bucket {
            Bucket::Messages => state.messages.count = state.messages.count.saturating_sub(1),
            Bucket::Broadcasts => {
                state.broadcasts.count = state.broadcasts.count.saturating_sub(1);
                state.day.1 = state.day.1.saturating_sub(1);
            }
        }
    }

    /// Counts one call against `bucket`, or answers LeanCloud's 429.
    fn check(&self, bucket: Bucket) -> Result<(), Limited> {
        let limits = self.limits.lock().map(|l| *l).unwrap_or_default();
        if limits.is_off() {
            return Ok(());
        }
        let Ok(mut state) = self.state.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        let too_many = |secs| Limited::TooMany {
            retry_after_secs: secs,
        };
        match bucket {
            Bucket::Messages => {
                if let Some(limit) = limits.messages_per_minute {
                    state.messages.take(limit, now).map_err(too_many)?;
                }
            }
            Bucket::Broadcasts => {
                let today = i64::from(Utc::now().num_days_from_ce());
                if state.day.0 != today {
                    state.day = (today, 0);
                }
                if let Some(limit) = limits.broadcasts_per_day {
                    if state.day.1 >= limit {
                        return Err(Limited::DailyQuota {
                            retry_after_secs: seconds_to_utc_midnight(),
                        });
                    }
                }
                if let Some(limit) = limits.broadcasts_per_minute {
                    state.broadcasts.take(limit, now).map_err(too_many)?;
                }
                state.day.1 += 1;
            }
        }
        Ok(())
    }

    /// What each bucket has used in its current window, for operators (the console). Read-only.
    pub async fn usage(&self) -> Usage {
        if let Some(pg) = &self.shared {
            return self.shared_usage(pg).await;
        }
        let limits = self.limits();
        let now = Instant::now();
        let today = i64::from(Utc::now().num_days_from_ce());
        let Ok(state) = self.state.lock() else {
            return Usage::default();
        };
        let minute = |w: &Window, limit: Option<u32>| {
            let left = w
                .started
                .map(|s| Duration::from_secs(60).saturating_sub(now.duration_since(s)))
                .filter(|left| !left.is_zero());
            BucketUsage {
                limit,
                used: if left.is_some() { w.count } else { 0 },
                resets_in_secs: left.map_or(0, |l| l.as_secs() + u64::from(l.subsec_nanos() > 0)),
            }
        };
        Usage {
            messages_per_minute: minute(&state.messages, limits.messages_per_minute),
            broadcasts_per_minute: minute(&state.broadcasts, limits.broadcasts_per_minute),
            broadcasts_per_day: BucketUsage {
                limit: limits.broadcasts_per_day,
                used: if state.day.0 == today { state.day.1 } else { 0 },
                resets_in_secs: seconds_to_utc_midnight(),
            },
        }
    }
}

impl RateLimiter {
    async fn shared_usage(&self, pg: &Pg) -> Usage {
        let limits = self.limits();
        let now = Utc::now().timestamp_millis();
        let read = |name| async move { postgres::limits::read(pg, name).await.ok().flatten() };
        let minute = |window: Option<(i64, i64)>, limit: Option<u32>| {
            let open = window.filter(|(start, _)| start + MINUTE_MS > now);
            BucketUsage {
                limit,
                used: open.map_or(0, |(_, n)| count_of(n, limit)),
                resets_in_secs: open.map_or(0, |(start, _)| secs_until(start + MINUTE_MS, now)),
            }
        };
        let today = now.div_euclid(DAY_MS) * DAY_MS;
        let day = read(DAY_WINDOW).await.filter(|(start, _)| *start == today);
        Usage {
            messages_per_minute: minute(
                read(window_name(Bucket::Messages)).await,
                limits.messages_per_minute,
            ),
            broadcasts_per_minute: minute(
                read(window_name(Bucket::Broadcasts)).await,
                limits.broadcasts_per_minute,
            ),
            broadcasts_per_day: BucketUsage {
                limit: limits.broadcasts_per_day,
                used: day.map_or(0, |(_, n)| count_of(n, limits.broadcasts_per_day)),
                resets_in_secs: seconds_to_utc_midnight(),
            },
        }
    }
}

/// Units granted in a shared window (its count may be one over the limit, for the refused ones).
fn count_of(count: i64, limit: Option<u32>) -> u32 {
    let count = u32::try_from(count.max(0)).unwrap_or(u32::MAX);
    limit.map_or(count, |l| count.min(l))
}

/// One bucket's use in its current window; `limit` is `None` when the bucket is not limited (nothing is
/// counted then).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BucketUsage {
    pub limit: Option<u32>,
    pub used: u32,
    /// Seconds until the window ends (0 when no window is open).
    pub resets_in_secs: u64,
}

/// Every bucket's [`BucketUsage`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub messages_per_minute: BucketUsage,
    pub broadcasts_per_minute: BucketUsage,
    pub broadcasts_per_day: BucketUsage,
}
