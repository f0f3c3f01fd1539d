//! FCM HTTP v1 (`leancloud-users-files-push.md` §3.6): an OAuth2 access token from the service account (an RS256
//! assertion posted to the file's `token_uri`, kept until five minutes before it expires), then
//! `POST {endpoint}/v1/projects/<project_id>/messages:send` with the message of [`super::payload::fcm`].
//! `--fcm-endpoint` replaces `https://fcm.googleapis.com` (tests).

use std::time::Duration;

use serde_json::{json, Value};

use super::jwt::{KeyError, RsaKey};
use super::payload;
use super::{Delivery, HeldToken};

pub const ENDPOINT: &str = "https://fcm.googleapis.com";
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// An access token is made again this long before it expires.
const REFRESH_EARLY_SECS: i64 = 300;

/// A service-account file's fields this needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ServiceAccount {
    pub project_id: String,
    pub client_email: String,
    pub private_key: String,
    pub token_uri: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("--fcm-service-account: not a service-account JSON file ({0})")]
    File(String),
    #[error("--fcm-service-account: private_key: {0}")]
    Key(#[from] KeyError),
    #[error("the FCM HTTP client: {0}")]
    Client(String),
}

pub struct Fcm {
    http: reqwest::Client,
    account: ServiceAccount,
    key: RsaKey,
    endpoint: String,
    token: HeldToken,
}

impl std::fmt::Debug for Fcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fcm")
            .field("project_id", &self.account.project_id)
            .field("client_email", &self.account.client_email)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Fcm {
    /// From the service-account JSON text.
    pub fn new(json: &str, endpoint: Option<String>) -> Result<Fcm, SetupError> {
        let account: ServiceAccount =
            serde_json::from_str(json).map_err(|e| SetupError::File(e.to_string()))?;
        let key = RsaKey::from_pem(&account.private_key)?;
        let http = super::client_builder()
            .build()
            .map_err(|e| SetupError::Client(e.to_string()))?;
        Ok(Fcm {
            http,
            account,
            key,
            endpoint: endpoint
                .unwrap_or_else(|| ENDPOINT.to_string())
                .trim_end_matches('/')
                .to_string(),
            token: HeldToken::default(),
        })
    }

    /// The assertion the token endpoint takes, issued at `now_s`.
    pub fn assertion(&self, now_s: i64) -> Result<String, KeyError> {
        self.key.sign(&json!({
            "iss": self.account.client_email, "scope": SCOPE, "aud": self.account.token_uri,
            "iat": now_s, "exp": now_s + 3600,
        }))
    }

    async fn access_token(&self, now_s: i64) -> Result<String, Delivery> {
        if let Some(token) = self.token.current(now_s) {
            return Ok(token);
        }
        let assertion = self
            .assertion(now_s)
            .map_err(|e| Delivery::Credential(e.to_string()))?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let res = self
            .http
            .post(&self.account.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| Delivery::Retry(format!("FCM token endpoint unreachable: {e}"), None))?;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or_default();
        let Some(token) = body.get("access_token").and_then(Value::as_str) else {
            return Err(match status {
                429 | 500..=599 => Delivery::Retry(format!("FCM token endpoint {status}"), None),
                _ => Delivery::Credential(format!(
                    "the FCM token endpoint refused the service account ({status} {})",
                    body.get("error")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                )),
            });
        };
        let expires = body
            .get("expires_in")
            .and_then(Value::as_i64)
            .unwrap_or(3600);
        self.token
            .keep(token, now_s + (expires - REFRESH_EARLY_SECS).max(0));
        Ok(token.to_string())
    }

    /// Sends `data` to registration `device`, kept `ttl_secs` at most.
    pub async fn send(&self, device: &str, data: &Value, ttl_secs: i64, now_s: i64) -> Delivery {
        let token = match self.access_token(now_s).await {
            Ok(t) => t,
            Err(d) => return d,
        };
        let res = match self
            .http
            .post(format!(
                "{}/v1/projects/{}/messages:send",
                self.endpoint, self.account.project_id
            ))
            .bearer_auth(token)
            .json(&payload::fcm(data, device, ttl_secs))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Delivery::Retry(format!("FCM unreachable: {e}"), None),
        };
        let status = res.status().as_u16();
        let retry_after = super::retry_after(res.headers());
        let body: Value = res.json().await.unwrap_or_default();
        let delivery = classify(status, &body, retry_after);
        if matches!(delivery, Delivery::Credential(_)) {
            self.token.forget();
        }
        delivery
    }
}

/// What an FCM answer means for the job (FCM's `ErrorCode`).
pub fn classify(status: u16, body: &Value, retry_after: Option<Duration>) -> Delivery {
    let error = &body["error"];
    let code = error["details"]
        .as_array()
        .and_then(|d| d.iter().find_map(|x| x["errorCode"].as_str()))
        .or_else(|| error["status"].as_str())
        .unwrap_or_default();
    let message = error["message"].as_str().unwrap_or_default();
    let what = format!("FCM {status} {code}");
    match (status, code) {
        (200, _) => Delivery::Sent,
        (_, "UNREGISTERED") => Delivery::Gone(what),
        (401, _) | (403, "SENDER_ID_MISMATCH") | (403, "PERMISSION_DENIED") => {
            Delivery::Credential(what)
        }
        (429, _) | (500..=599, _) => Delivery::Retry(what, retry_after),
        _ => Delivery::Refused(format!("{what} {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: &str, message: &str) -> Value {
        json!({"error": {"code": 400, "message": message, "status": code,
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]}})
    }

    #[test]
    fn fcms_answers_decide_the_job() {
        assert_eq!(
            Delivery::Sent,
            classify(200, &json!({"name": "projects/p/messages/1"}), None)
        );
        assert!(matches!(
            classify(404, &error("UNREGISTERED", "gone"), None),
            Delivery::Gone(_)
        ));
        // A malformed token fails the job but keeps the device: only UNREGISTERED drops it.
        assert!(matches!(
            classify(
                400,
                &error(
                    "INVALID_ARGUMENT",
                    "The registration token is not a valid FCM registration token"
                ),
                None
            ),
            Delivery::Refused(_)
        ));
        assert!(matches!(
            classify(400, &error("INVALID_ARGUMENT", "bad ttl"), None),
            Delivery::Refused(_)
        ));
        assert!(matches!(
            classify(401, &json!({}), None),
            Delivery::Credential(_)
        ));
        assert!(matches!(
            classify(503, &error("UNAVAILABLE", ""), None),
            Delivery::Retry(_, None)
        ));
    }

    #[test]
    fn the_assertion_names_the_account_scope_and_token_uri() {
        let account = json!({
            "project_id": "p", "client_email": "sa@p.iam.gserviceaccount.com",
            "private_key": include_str!("test-rsa-key.pem"), "token_uri": "http://127.0.0.1:1/token",
        });
        let fcm = Fcm::new(&account.to_string(), None).expect("service account");
        let jwt = fcm.assertion(1_800_000_000).expect("assertion");
        let claims: Value = serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                jwt.split('.').nth(1).expect("claims"),
            )
            .expect("b64"),
        )
        .expect("json");
        assert_eq!(
            json!({"iss": "sa@p.iam.gserviceaccount.com", "scope": SCOPE, "aud": "http://127.0.0.1:1/token",
                   "iat": 1_800_000_000, "exp": 1_800_003_600}),
            claims
        );
        assert!(!format!("{fcm:?}").contains("PRIVATE"), "no key in Debug");
        assert!(matches!(Fcm::new("{}", None), Err(SetupError::File(_))));
    }
}
