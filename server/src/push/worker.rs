//! The push queue's worker: claims due jobs, hands each to its provider with bounded concurrency, and settles
//! it: sent; the device gone (marked `valid: false`, its bindings dropped); retried
//! with back-off (the provider's `Retry-After` when it gives one) until [`MAX_ATTEMPTS`]; failed for good. A
//! refused credential is logged once, without the key.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::stream::{self, StreamExt};

use super::apns::Apns;
use super::fcm::Fcm;
use super::Delivery;
use crate::config::PushConfig;
use crate::domain::Services;
use crate::store::push_queue::{self, Job, Outcome, State};
use crate::store::StoreError;

/// How long a worker holds the jobs it claimed before another may take them (a worker that died).
pub const LEASE_MS: i64 = 60_000;
/// A round claims only what it sends at once, so it lasts one delivery: at most two provider requests (FCM's token,
/// then the send), each cut at the providers' timeout — well within [`LEASE_MS`], so no job's lease runs out while
/// its worker still sends it (another instance would take it and send it twice).
const _ROUND_WITHIN_LEASE: () = assert!(super::REQUEST_TIMEOUT.as_millis() * 2 < LEASE_MS as u128);
/// Attempts before a job that keeps failing for a passing reason is given up.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long ended jobs are kept for the records.
pub const KEPT_MS: i64 = 7 * 86_400_000;
/// How often ended jobs past [`KEPT_MS`] are deleted (a delete that reads the whole queue: not every round).
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// The configured providers.
#[derive(Debug)]
pub struct Providers {
    pub apns: Option<Apns>,
    pub fcm: Option<Fcm>,
    /// Deliveries in flight at once, and the jobs one round claims (`--push-concurrency`; at least 1).
    in_flight: usize,
    apns_reported: AtomicBool,
    fcm_reported: AtomicBool,
}

/// A provider's configuration that cannot be used (a key that is not one, an unreadable CA): the server does
/// not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Apns(#[from] super::apns::SetupError),
    #[error(transparent)]
    Fcm(#[from] super::fcm::SetupError),
}

impl Providers {
    pub fn new(apns: Option<Apns>, fcm: Option<Fcm>, in_flight: usize) -> Providers {
        Providers {
            apns,
            fcm,
            in_flight: in_flight.max(1),
            apns_reported: AtomicBool::new(false),
            fcm_reported: AtomicBool::new(false),
        }
    }

    /// The providers `--apns-*` and `--fcm-*` configure.
    pub fn from_config(config: &PushConfig) -> Result<Providers, SetupError> {
        let apns = config.apns.as_ref().map(Apns::new).transpose()?;
        let fcm = config
            .fcm
            .as_ref()
            .map(|f| Fcm::new(&f.service_account, f.endpoint.clone()))
            .transpose()?;
        Ok(Providers::new(apns, fcm, config.concurrency))
    }

    async fn deliver(&self, job: &Job, data: &serde_json::Value, now: i64) -> Delivery {
        let expires_s = job.expires_at.map_or(0, |e| e / 1000);
        match job.platform.as_str() {
            "ios" => match &self.apns {
                Some(apns) => {
                    let dev = job.profile.as_deref() == Some("dev");
                    apns.send(
                        &job.target,
                        data,
                        dev,
                        job.topic.as_deref(),
                        expires_s,
                        now / 1000,
                    )
                    .await
                }
                None => Delivery::Refused("APNs is not configured (--apns-key)".into()),
            },
            "android" => match &self.fcm {
                Some(fcm) => {
                    let ttl = job.expires_at.map_or(0, |e| (e - now) / 1000);
                    fcm.send(&job.target, data, ttl, now / 1000).await
                }
                None => Delivery::Refused("FCM is not configured (--fcm-service-account)".into()),
            },
            other => Delivery::Refused(format!("no provider for {other} devices")),
        }
    }

    /// Logs a refused credential the first time per provider.
    fn report(&self, job: &Job, why: &str) {
        let flag = if job.platform == "ios" {
            &self.apns_reported
        } else {
            &self.fcm_reported
        };
        if !flag.swap(true, Ordering::Relaxed) {
            tracing::error!(platform = %job.platform, reason = %why, "push: the provider refused the app's credential; pushes fail until it is fixed");
        }
    }
}

/// The wait before attempt `attempts + 1`: 2^attempts seconds, at most an hour.
pub fn backoff(attempts: i64) -> Duration {
    Duration::from_secs(1u64 << attempts.clamp(0, 12)).min(Duration::from_secs(3600))
}

async fn settle_one(
    svc: &Services,
    providers: &Providers,
    job: Job,
    now: i64,
) -> Result<(), StoreError> {
    if job.expires_at.is_some_and(|e| e <= now) {
        return push_queue::settle(&svc.db, job.id, Outcome::Done(State::Expired, None), now).await;
    }
    // `"badge": "Increment"`: the device's count plus one, counted on the first attempt only.
    let data = if job.platform == "ios" && super::payload::increments_badge(&job.payload) {
        let n = crate::domain::installations::badge(svc, &job.installation_id, job.attempts > 1)
            .await?;
        super::payload::with_badge(&job.payload, n)
    } else {
        job.payload.clone()
    };
    let outcome = match providers.deliver(&job, &data, now).await {
        Delivery::Sent => Outcome::Done(State::Sent, None),
        Delivery::Gone(why) => {
            crate::domain::installations::invalidate(svc, &job.installation_id).await?;
            Outcome::Done(State::Invalid, Some(why))
        }
        Delivery::Retry(why, _) if job.attempts >= MAX_ATTEMPTS => {
            Outcome::Done(State::Failed, Some(why))
        }
        Delivery::Retry(why, after) => {
            let wait = after.unwrap_or_else(|| backoff(job.attempts));
            Outcome::Retry(now + wait.as_millis() as i64, why)
        }
        Delivery::Refused(why) => Outcome::Done(State::Failed, Some(why)),
        Delivery::Credential(why) => {
            providers.report(&job, &why);
            Outcome::Done(State::Failed, Some(why))
        }
    };
    push_queue::settle(&svc.db, job.id, outcome, now).await
}

/// One round at `now`: claims as many due jobs as may be in flight, sends them all at once and settles each; how
/// many it handled.
pub async fn work_once(
    svc: &Services,
    providers: &Providers,
    now: i64,
) -> Result<usize, StoreError> {
    let jobs = push_queue::claim(&svc.db, now, LEASE_MS, providers.in_flight as i64).await?;
    let n = jobs.len();
    let results: Vec<Result<(), StoreError>> = stream::iter(jobs)
        .map(|job| settle_one(svc, providers, job, now))
        .buffer_unordered(providers.in_flight)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(n)
}

/// The worker: a round every `every` (and at once again after a full one) until `stop` says so, the round in
/// progress ended first (its jobs settled, none left leased); ended jobs dropped after [`KEPT_MS`], looked for
/// every [`PURGE_EVERY`].
pub async fn work_forever(
    svc: Services,
    providers: std::sync::Arc<Providers>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    let mut purged: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            // Told to stop, or the server is gone.
            changed = stop.changed() => if changed.is_err() || *stop.borrow() {
                return;
            },
        }
        let now = chrono::Utc::now().timestamp_millis();
        loop {
            match work_once(&svc, &providers, now).await {
                Ok(n) if n >= providers.in_flight && !*stop.borrow() => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "push: the queue's worker failed a round");
                    break;
                }
            }
        }
        if purged.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
            purged = Some(tokio::time::Instant::now());
            if let Err(e) = push_queue::purge(&svc.db, now - KEPT_MS).await {
                tracing::warn!(error = %e, "push: old jobs not purged");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        assert_eq!(Duration::from_secs(1), backoff(0));
        assert_eq!(Duration::from_secs(8), backoff(3));
        assert_eq!(Duration::from_secs(3600), backoff(20));
    }
}
