//! Delivery of queued pushes to the platforms' providers (APNs, FCM): the outbound side of
//! `crate::domain::push` — the signed tokens, the payloads, the two clients and the worker, configured by
//! `--apns-*`, `--fcm-*` and `--push-concurrency` (`crate::config::PushConfig`).

pub mod apns;
pub mod fcm;
pub mod jwt;
pub mod payload;
pub mod worker;

use std::time::Duration;

/// How long one request to a provider may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// What a provider's answer means for a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// The device is gone (APNs 410 `Unregistered`, FCM `UNREGISTERED`): mark it invalid, drop its binding.
    Gone(String),
    /// Try again later (429, 5xx, unreachable), after this long when the provider said.
    Retry(String, Option<Duration>),
    /// Refused for good (a bad payload, a missing topic).
    Refused(String),
    /// The app's credential was refused: every job of this provider fails until it is fixed.
    Credential(String),
}

/// `Retry-After` in seconds, when given.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}
