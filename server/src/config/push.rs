//! Push delivery's settings: the APNs and FCM providers (`--apns-*`, `--fcm-*`) and the queue's worker.

use std::fmt;
use std::time::Duration;

/// The push providers (`--apns-*`, `--fcm-*`) and the queue's worker. A provider left `None` is not
/// configured: its jobs fail with a reason saying which flag is missing. `Debug` never shows a key (the
/// providers' configs leave theirs out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushConfig {
    pub apns: Option<ApnsConfig>,
    pub fcm: Option<FcmConfig>,
    /// The payload of an IM offline push when neither the `_receiversOffline` hook nor the message gives one
    /// (`${convId}`, `${timestamp}`, `${fromClientId}` replaced); `None`: LeanCloud's default alert.
    pub template: Option<serde_json::Value>,
    /// How often the worker looks for due jobs.
    pub every: Duration,
    /// Deliveries one instance has in flight at once (`--push-concurrency`): providers answer in tens to hundreds
    /// of milliseconds, so this, over their latency, bounds the pushes per second.
    pub concurrency: usize,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            apns: None,
            fcm: None,
            template: None,
            every: Duration::from_secs(1),
            concurrency: 128,
        }
    }
}

/// APNs token authentication: the `.p8` key Apple issued, its key id and the team's id.
#[derive(Clone, PartialEq, Eq)]
pub struct ApnsConfig {
    /// The `.p8` file's text (PEM, PKCS#8).
    pub key_pem: String,
    pub key_id: String,
    pub team_id: String,
    /// The app's bundle id, for devices whose installation has no `apnsTopic`.
    pub topic: Option<String>,
    /// A base URL replacing both `api.push.apple.com` and the sandbox (tests, proxies).
    pub endpoint: Option<String>,
    /// A CA certificate (PEM) to trust besides the built-in roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for ApnsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApnsConfig")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .field("topic", &self.topic)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// FCM HTTP v1: the Firebase project's service-account JSON.
#[derive(Clone, PartialEq, Eq)]
pub struct FcmConfig {
    /// The service-account file's text.
    pub service_account: String,
    /// A base URL replacing `https://fcm.googleapis.com` (tests).
    pub endpoint: Option<String>,
}

impl fmt::Debug for FcmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FcmConfig")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_push_configs_debug_shows_no_key() {
        let push = PushConfig {
            apns: Some(ApnsConfig {
                key_pem: "apns-key-text".into(),
                key_id: "KEY1234567".into(),
                team_id: "TEAM123456".into(),
                topic: None,
                endpoint: None,
                ca_pem: None,
            }),
            fcm: Some(FcmConfig {
                service_account: "service-account-text".into(),
                endpoint: None,
            }),
            ..PushConfig::default()
        };
        let shown = format!("{push:?}");
        assert!(shown.contains("KEY1234567"), "{shown}");
        assert!(
            !shown.contains("apns-key-text") && !shown.contains("service-account-text"),
            "{shown}"
        );
    }
}
