//! The master key from SSM Parameter Store: in AWS only the parameter's *name* reaches the function
//! (`LEANCLOUD_APP_MASTER_KEY_PARAMETER`); the SecureString is fetched with decryption once at cold start and
//! kept in memory. Its value is never logged and never part of an error.
//!
//! One call, so no SDK client: a SigV4-signed `POST` of `AmazonSSM.GetParameter` (`WithDecryption`) through
//! reqwest, which the LeanCloud client links anyway, signed by the `aws-sigv4` crate the SDK itself uses. The
//! SSM client (and with it the SDK's own HTTP/TLS client in the functions that need no other AWS service) is no
//! longer in the binaries.

use std::time::SystemTime;

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use reqwest::header::{HeaderName, HeaderValue};

use crate::aws_env::{AwsEnv, ATTEMPT_TIMEOUT, CONNECT_TIMEOUT};

/// Why the parameter could not be read. Carries the parameter name and the reason, never a value.
#[derive(Debug, thiserror::Error)]
#[error("SSM parameter {name:?}: {reason}")]
pub struct SecretError {
    pub name: String,
    pub reason: String,
}

/// Where and as whom SSM is called: Lambda's region, credentials and TLS roots ([`AwsEnv`]) and the endpoint:
/// the SDK's overrides `AWS_ENDPOINT_URL_SSM`, then `AWS_ENDPOINT_URL` (moto in the tests), else the regional
/// endpoint.
#[derive(Clone, Debug)]
pub struct SsmAccess {
    aws: AwsEnv,
    endpoint: String,
}

impl SsmAccess {
    /// From an environment lookup; the error names the variable to set.
    pub fn from_lookup(env: &impl Fn(&str) -> Option<String>) -> Result<SsmAccess, String> {
        let aws = AwsEnv::from_lookup(env)?;
        let endpoint = env("AWS_ENDPOINT_URL_SSM")
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| regional_endpoint(&aws.region));
        Ok(SsmAccess { aws, endpoint })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// `https://ssm.<region>.amazonaws.com` (`.amazonaws.com.cn` in the China regions).
fn regional_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://ssm.{region}.{suffix}")
}

/// Fetch `name` with decryption. A plain `String` parameter is accepted too (its value is used as is).
pub async fn fetch_parameter(access: &SsmAccess, name: &str) -> Result<String, SecretError> {
    let error = |reason: String| SecretError {
        name: name.to_owned(),
        reason,
    };
    let http = access
        .aws
        .roots
        .apply(reqwest::Client::builder())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(ATTEMPT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|err| error(format!("HTTP client: {err}")))?;
    let body = serde_json::to_vec(&serde_json::json!({"Name": name, "WithDecryption": true}))
        .map_err(|err| error(format!("request: {err}")))?;
    let url = format!("{}/", access.endpoint.trim_end_matches('/'));
    let headers = signed_headers(access, &url, &body, SystemTime::now()).map_err(error)?;
    let mut request = http.post(&url).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|err| {
        // reqwest's error names the URL (no secret in it) and the cause.
        error(format!("request failed: {err}"))
    })?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|err| error(format!("reading the answer: {err}")))?;
    if !status.is_success() {
        return Err(error(service_error(status, &bytes)));
    }
    let value = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|answer| {
            answer
                .pointer("/Parameter/Value")
                .and_then(serde_json::Value::as_str)
                .map(|value| value.trim().to_owned())
        })
        .ok_or_else(|| error(format!("{status}, but the answer holds no Parameter.Value")))?;
    if value.is_empty() {
        return Err(error("the parameter is empty".to_owned()));
    }
    Ok(value)
}

/// The headers of a signed `GetParameter` call: content type, target, `x-amz-date`, the session token when
/// there is one and `authorization` (the last two marked sensitive).
fn signed_headers(
    access: &SsmAccess,
    url: &str,
    body: &[u8],
    now: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let unsigned = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "AmazonSSM.GetParameter"),
    ];
    let identity: Identity = access.aws.credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&access.aws.region)
        .name("ssm")
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|err| format!("signing: {err}"))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        unsigned.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|err| format!("signing: {err}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|err| format!("signing: {err}"))?
        .into_parts();
    let mut headers: Vec<(HeaderName, HeaderValue)> = unsigned
        .iter()
        .map(|(name, value)| {
            (
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            )
        })
        .collect();
    for (name, value) in instructions.headers() {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|err| format!("signing: {err}"))?;
        let mut value = HeaderValue::from_str(value).map_err(|err| format!("signing: {err}"))?;
        value.set_sensitive(true);
        headers.push((name, value));
    }
    Ok(headers)
}

/// SSM's JSON error (`__type`, `message`) or the status alone; never the request or a value.
fn service_error(status: reqwest::StatusCode, body: &[u8]) -> String {
    let answer = serde_json::from_slice::<serde_json::Value>(body).unwrap_or_default();
    let kind = answer
        .get("__type")
        .and_then(serde_json::Value::as_str)
        .map(|kind| kind.rsplit('#').next().unwrap_or(kind));
    let message = answer
        .get("message")
        .or_else(|| answer.get("Message"))
        .and_then(serde_json::Value::as_str);
    match (kind, message) {
        (Some(kind), Some(message)) => format!("{status}: {kind}: {message}"),
        (Some(kind), None) => format!("{status}: {kind}"),
        _ => format!("{status}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_endpoint_is_the_ssm_override_then_the_global_one_then_the_region() {
        static BASE: [(&str, &str); 3] = [
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ];
        let access = SsmAccess::from_lookup(&env(&BASE)).expect("access");
        assert_eq!("https://ssm.eu-west-1.amazonaws.com", access.endpoint());
        static GLOBAL: [(&str, &str); 4] = [
            ("AWS_REGION", "cn-north-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ];
        let access = SsmAccess::from_lookup(&env(&GLOBAL)).expect("access");
        assert_eq!("http://127.0.0.1:5000", access.endpoint());
        static SSM: [(&str, &str); 5] = [
            ("AWS_REGION", "cn-north-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:6000"),
        ];
        assert_eq!(
            "http://127.0.0.1:6000",
            SsmAccess::from_lookup(&env(&SSM))
                .expect("access")
                .endpoint()
        );
        assert_eq!(
            "https://ssm.cn-north-1.amazonaws.com.cn",
            regional_endpoint("cn-north-1")
        );
        static NO_KEYS: [(&str, &str); 1] = [("AWS_REGION", "eu-west-1")];
        let err = SsmAccess::from_lookup(&env(&NO_KEYS)).expect_err("no keys");
        assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
    }

    #[test]
    fn the_call_is_signed_for_ssm_with_the_session_token() {
        static VARS: [(&str, &str); 4] = [
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            ),
            ("AWS_SESSION_TOKEN", "session-token"),
        ];
        let access = SsmAccess::from_lookup(&env(&VARS)).expect("access");
        let headers = signed_headers(
            &access,
            "https://ssm.us-east-1.amazonaws.com/",
            br#"{"Name":"/im/key","WithDecryption":true}"#,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
        .expect("signed");
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.as_str() == name)
                .map(|(_, v)| v.to_str().expect("ascii").to_owned())
        };
        assert_eq!(
            Some("AmazonSSM.GetParameter".to_owned()),
            get("x-amz-target")
        );
        assert_eq!(Some("20231114T221320Z".to_owned()), get("x-amz-date"));
        assert_eq!(
            Some("session-token".to_owned()),
            get("x-amz-security-token")
        );
        let auth = get("authorization").expect("authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/ssm/aws4_request, SignedHeaders="
            ),
            "{auth}"
        );
        assert!(
            auth.contains("x-amz-target"),
            "the target is signed: {auth}"
        );
        assert!(!format!("{access:?}").contains("wJalr"));
    }

    #[test]
    fn service_errors_keep_the_type_and_message() {
        let status = reqwest::StatusCode::BAD_REQUEST;
        assert_eq!(
            "400 Bad Request: ParameterNotFound: not here",
            service_error(
                status,
                br#"{"__type":"com.amazonaws.ssm#ParameterNotFound","message":"not here"}"#
            )
        );
        assert_eq!("400 Bad Request", service_error(status, b"<html>"));
    }
}
