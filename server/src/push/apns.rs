//! APNs over HTTP/2 with token auth (`leancloud-users-files-push.md` §3.5): `POST {endpoint}/3/device/<token>`
//! with `authorization: bearer <ES256 JWT>` (one token reused, made again after 40 minutes: Apple refuses one
//! older than an hour and new ones more often than every 20 minutes), `apns-topic`, `apns-push-type`,
//! `apns-expiration` and the optional priority and collapse id. Production or sandbox per job (`dev`); one
//! `--apns-endpoint` overrides both (tests, proxies), and `--apns-ca-file` adds a CA to trust.

use std::time::Duration;

use super::jwt::{ApnsKey, KeyError};
use super::payload;
use super::{Delivery, HeldToken};
use crate::config::ApnsConfig;

pub const PRODUCTION: &str = "https://api.push.apple.com";
pub const SANDBOX: &str = "https://api.sandbox.push.apple.com";
/// How long one provider token is used.
const TOKEN_FOR_SECS: i64 = 40 * 60;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("--apns-key: {0}")]
    Key(#[from] KeyError),
    #[error("--apns-ca-file: {0}")]
    Ca(String),
    #[error("the APNs HTTP client: {0}")]
    Client(String),
}

pub struct Apns {
    http: reqwest::Client,
    key: ApnsKey,
    topic: Option<String>,
    endpoint: Option<String>,
    token: HeldToken,
}

impl std::fmt::Debug for Apns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apns")
            .field("key", &self.key)
            .field("topic", &self.topic)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Apns {
    pub fn new(s: &ApnsConfig) -> Result<Apns, SetupError> {
        let key = ApnsKey::from_p8(&s.key_pem, &s.key_id, &s.team_id)?;
        let mut builder = super::client_builder().http2_prior_knowledge();
        if let Some(pem) = &s.ca_pem {
            let ca =
                reqwest::Certificate::from_pem(pem).map_err(|e| SetupError::Ca(e.to_string()))?;
            builder = builder.add_root_certificate(ca);
        }
        let http = builder
            .build()
            .map_err(|e| SetupError::Client(e.to_string()))?;
        Ok(Apns {
            http,
            key,
            topic: s.topic.clone(),
            endpoint: s
                .endpoint
                .as_ref()
                .map(|e| e.trim_end_matches('/').to_string()),
            token: HeldToken::default(),
        })
    }

    /// The provider token at `now_s` (unix seconds): the current one while younger than 40 minutes.
    fn bearer(&self, now_s: i64) -> Result<String, KeyError> {
        if let Some(token) = self.token.current(now_s) {
            return Ok(token);
        }
        let token = self.key.token(now_s)?;
        self.token.keep(&token, now_s + TOKEN_FOR_SECS);
        Ok(token)
    }

    /// Sends `data` to device `token` (sandbox with `dev`), kept by Apple until `expires_s` (unix seconds; 0:
    /// try once), for `topic` (else the configured one).
    pub async fn send(
        &self,
        device: &str,
        data: &serde_json::Value,
        dev: bool,
        topic: Option<&str>,
        expires_s: i64,
        now_s: i64,
    ) -> Delivery {
        let Some(topic) = topic.or(self.topic.as_deref()) else {
            return Delivery::Refused(
                "no apns-topic: set --apns-topic or the device's apnsTopic".into(),
            );
        };
        let bearer = match self.bearer(now_s) {
            Ok(b) => b,
            Err(e) => return Delivery::Credential(e.to_string()),
        };
        let p = payload::apns(data);
        let base = match (&self.endpoint, dev) {
            (Some(e), _) => e.as_str(),
            (None, true) => SANDBOX,
            (None, false) => PRODUCTION,
        };
        let mut req = self
            .http
            .post(format!("{base}/3/device/{device}"))
            .header("authorization", format!("bearer {bearer}"))
            .header("apns-topic", topic)
            .header("apns-push-type", &p.push_type)
            .header("apns-expiration", expires_s.max(0).to_string())
            .json(&p.body);
        if let Some(priority) = &p.priority {
            req = req.header("apns-priority", priority);
        }
        if let Some(id) = &p.collapse_id {
            req = req.header("apns-collapse-id", id);
        }
        let res = match req.send().await {
            Ok(r) => r,
            Err(e) => return Delivery::Retry(format!("APNs unreachable: {e}"), None),
        };
        let status = res.status().as_u16();
        let retry_after = super::retry_after(res.headers());
        let reason = res
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|b| b.get("reason").and_then(|r| r.as_str()).map(str::to_owned))
            .unwrap_or_default();
        let delivery = classify(status, &reason, retry_after);
        if matches!(delivery, Delivery::Credential(_)) {
            self.token.forget();
        }
        delivery
    }
}

/// What an APNs answer means for the job (Apple's «Handling notification responses»).
pub fn classify(status: u16, reason: &str, retry_after: Option<Duration>) -> Delivery {
    match status {
        200 => Delivery::Sent,
        // Only Apple's word that the app is gone from the device drops it: a `BadDeviceToken` is also what a
        // token of the other environment (sandbox / production) gets, so a push sent with the wrong profile
        // must not unregister every device it reached.
        410 => Delivery::Gone(format!("APNs 410 {reason}")),
        403 if reason.contains("ProviderToken") => {
            Delivery::Credential(format!("APNs 403 {reason}"))
        }
        429 | 500..=599 => Delivery::Retry(format!("APNs {status} {reason}"), retry_after),
        _ => Delivery::Refused(format!("APNs {status} {reason}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apples_answers_decide_the_job() {
        assert_eq!(Delivery::Sent, classify(200, "", None));
        assert!(matches!(
            classify(410, "Unregistered", None),
            Delivery::Gone(_)
        ));
        assert!(matches!(
            classify(400, "BadDeviceToken", None),
            Delivery::Refused(_)
        ));
        assert!(matches!(
            classify(400, "PayloadEmpty", None),
            Delivery::Refused(_)
        ));
        assert!(matches!(
            classify(403, "ExpiredProviderToken", None),
            Delivery::Credential(_)
        ));
        assert!(matches!(
            classify(503, "ServiceUnavailable", None),
            Delivery::Retry(_, None)
        ));
        let wait = Some(Duration::from_secs(7));
        assert_eq!(
            Delivery::Retry("APNs 429 TooManyRequests".into(), wait),
            classify(429, "TooManyRequests", wait)
        );
    }
}
