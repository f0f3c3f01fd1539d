//! The one retry policy: whether a failed attempt is tried again, and after how long.
//!
//! It is a pure function of the failure's class, the attempt number, whether the request is idempotent and
//! the time left, in the shape of async-stripe's `RequestStrategy::test`, so it is unit-tested without a
//! socket and shared by [`crate::Client::execute_until`] and the callers that loop around
//! [`crate::Client::execute_once`] themselves (the functions' fan-out, the migration tool), so that one call
//! chain has one loop. The jitter is an argument for the same reason.

use std::time::Duration;

use crate::error::Error;

/// How safe it is to try a failed request again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Nothing reached the server (connection refused): always safe.
    Always,
    /// The server may have applied the request (timeout, 5xx, dropped connection): safe only when the
    /// request is idempotent.
    IfIdempotent,
    /// Trying again cannot help (4xx, decoding, validation) or must not happen now (429: the bucket is
    /// penalised, so the caller backs off as a whole).
    Never,
}

impl RetryClass {
    /// The class of a returned error, for callers that only see the [`Error`] (the client classifies
    /// transport errors itself, before a connect timeout becomes [`Error::Timeout`]).
    pub fn of(error: &Error) -> RetryClass {
        match error {
            Error::Transport(e) if e.is_connect() => RetryClass::Always,
            Error::Transport(_) | Error::Timeout => RetryClass::IfIdempotent,
            Error::RateLimited { .. } => RetryClass::Never,
            other => RetryClass::of_status(other.status()),
        }
    }

    /// The class of an answer with `status` (`None`: no answer).
    pub fn of_status(status: Option<u16>) -> RetryClass {
        match status {
            Some(status) if status >= 500 && status != 501 => RetryClass::IfIdempotent,
            _ => RetryClass::Never,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Give up and return the error.
    Stop,
    /// Sleep this long, then try again.
    RetryAfter(Duration),
}

/// Attempts and equal-jitter exponential backoff: half of `base * 2^(attempt-1)` (capped) plus a random
/// part of the other half, so concurrent callers spread out but never retry immediately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt.
    pub base: Duration,
    /// Longest backoff.
    pub cap: Duration,
}

impl RetryPolicy {
    /// Decide after failed attempt number `attempt` (1-based). `left` is the time that may still be spent
    /// (sleep included); `jitter` in `[0, 1]` picks the point in the backoff's upper half.
    pub fn decide(
        &self,
        class: RetryClass,
        attempt: u32,
        idempotent: bool,
        left: Duration,
        jitter: f64,
    ) -> Outcome {
        let may = match class {
            RetryClass::Always => true,
            RetryClass::IfIdempotent => idempotent,
            RetryClass::Never => false,
        };
        if !may || attempt >= self.max_attempts.max(1) {
            return Outcome::Stop;
        }
        let backoff = self.backoff(attempt, jitter);
        if backoff >= left {
            return Outcome::Stop;
        }
        Outcome::RetryAfter(backoff)
    }

    /// The backoff after attempt `attempt`, within `[full / 2, full]` where `full = min(base * 2^(attempt-1), cap)`.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let full = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.cap);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(100),
        cap: Duration::from_secs(1),
    };
    const PLENTY: Duration = Duration::from_secs(60);

    #[test]
    fn a_request_that_may_have_been_applied_is_retried_only_when_idempotent() {
        let retry = Outcome::RetryAfter(Duration::from_millis(50));
        assert_eq!(
            retry,
            POLICY.decide(RetryClass::IfIdempotent, 1, true, PLENTY, 0.0)
        );
        assert_eq!(
            Outcome::Stop,
            POLICY.decide(RetryClass::IfIdempotent, 1, false, PLENTY, 0.0)
        );
        assert_eq!(
            retry,
            POLICY.decide(RetryClass::Always, 1, false, PLENTY, 0.0)
        );
        assert_eq!(
            Outcome::Stop,
            POLICY.decide(RetryClass::Never, 1, true, PLENTY, 0.0)
        );
    }

    #[test]
    fn attempts_and_the_time_left_bound_the_retries() {
        assert_eq!(
            Outcome::Stop,
            POLICY.decide(RetryClass::Always, 3, true, PLENTY, 0.0)
        );
        assert_eq!(
            Outcome::Stop,
            POLICY.decide(RetryClass::Always, 1, true, Duration::from_millis(50), 0.0),
            "a sleep that uses up the time left is not worth starting"
        );
    }

    #[test]
    fn backoff_grows_with_jitter_in_the_upper_half_and_is_capped() {
        for attempt in 1..=4 {
            let full = Duration::from_millis(100) * (1 << (attempt - 1));
            assert_eq!(full / 2, POLICY.backoff(attempt, 0.0));
            assert_eq!(full, POLICY.backoff(attempt, 1.0));
        }
        assert_eq!(Duration::from_secs(1), POLICY.backoff(40, 1.0));
        assert_eq!(Duration::from_millis(500), POLICY.backoff(40, -3.0));
    }

    #[test]
    fn errors_are_classed_by_what_reached_the_server() {
        assert_eq!(RetryClass::IfIdempotent, RetryClass::of(&Error::Timeout));
        assert_eq!(RetryClass::IfIdempotent, RetryClass::of_status(Some(503)));
        assert_eq!(RetryClass::Never, RetryClass::of_status(Some(501)));
        assert_eq!(RetryClass::Never, RetryClass::of_status(Some(404)));
        assert_eq!(
            RetryClass::Never,
            RetryClass::of(&Error::RateLimited {
                retry_after: Duration::from_secs(1),
                api: None
            })
        );
    }
}
