//! Delivery of queued pushes to the platforms' providers (APNs, FCM): the outbound side of
//! `crate::domain::push` — the signed tokens, the payloads, the two clients and the worker, configured by
//! `--apns-*`, `--fcm-*` and `--push-concurrency` (`crate::config::PushConfig`).

pub mod apns;
pub mod fcm;
pub mod jwt;
pub mod payload;
pub mod worker;

use std::sync::Mutex;
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

/// The HTTP client settings both providers use: the bundled roots, [`REQUEST_TIMEOUT`], no redirects.
fn client_builder() -> reqwest::ClientBuilder {
    leancloud_im::TlsRoots::Bundled
        .apply(reqwest::Client::builder())
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
}

/// A provider's bearer token (APNs provider token, FCM access token), reused until the time it was kept for.
#[derive(Debug, Default)]
struct HeldToken(Mutex<Option<(i64, String)>>);

impl HeldToken {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<(i64, String)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The token while `now_s` (unix seconds) is before the time it was kept until.
    fn current(&self, now_s: i64) -> Option<String> {
        self.slot()
            .as_ref()
            .filter(|(until, _)| now_s < *until)
            .map(|(_, token)| token.clone())
    }

    /// Keeps `token` until `until_s` (unix seconds).
    fn keep(&self, token: &str, until_s: i64) {
        *self.slot() = Some((until_s, token.to_string()));
    }

    /// Drops the token (the provider refused it).
    fn forget(&self) {
        *self.slot() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_token_is_given_until_its_time_and_not_after_it_is_forgotten() {
        let held = HeldToken::default();
        assert_eq!(None, held.current(100));
        held.keep("t1", 200);
        assert_eq!(
            (Some("t1".to_string()), None),
            (held.current(199), held.current(200))
        );
        held.forget();
        assert_eq!(None, held.current(150));
    }
}
