//! LeanCloud's RTM rate-limit buckets (`leancloud-rest.md` §6), in memory.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{Datelike, TimeZone, Utc};

use crate::config::RateLimits;
use crate::error::{codes, AppError};

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
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter {
            limits: Mutex::new(limits),
            state: Mutex::new(State::default()),
        }
    }

    pub fn set(&self, limits: RateLimits) {
        if let Ok(mut l) = self.limits.lock() {
            *l = limits;
        }
        if let Ok(mut s) = self.state.lock() {
            *s = State::default();
        }
    }

    /// Gives back the unit `check` took, for a call that then failed (a broadcast to an unknown
    /// conversation must not use the daily quota).
    pub fn refund(&self, bucket: Bucket) {
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
    pub fn check(&self, bucket: Bucket) -> Result<(), AppError> {
        let limits = self.limits.lock().map(|l| *l).unwrap_or_default();
        if limits.is_off() {
            return Ok(());
        }
        let Ok(mut state) = self.state.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        let too_many =
            |secs| AppError::rate_limited(codes::TOO_MANY_REQUESTS, "Too many requests.", secs);
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
                        return Err(AppError::rate_limited(
                            codes::INTERNAL,
                            "The daily quota of system messages is exceeded.",
                            seconds_to_utc_midnight(),
                        ));
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
    pub fn usage(&self) -> Usage {
        let limits = self.limits.lock().map(|l| *l).unwrap_or_default();
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
