//! Configuration, loaded once at cold start.
//!
//! The master key comes from `LEANCLOUD_APP_MASTER_KEY`, or in AWS from the SSM SecureString named by
//! `LEANCLOUD_APP_MASTER_KEY_PARAMETER` (fetched once with decryption, kept in memory, never logged). Every
//! other variable is read by [`leancloud_im::Config::from_lookup`] (the same
//! variables as `Config::from_env`). [`crate::app::App::from_env`] puts it together with the services the
//! function needs.

use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_types::region::Region;
use aws_types::SdkConfig;
use leancloud_im::{Config, ConfigError};

use crate::aws_env::{AwsEnv, ATTEMPT_TIMEOUT, CONNECT_TIMEOUT};

pub const MASTER_KEY: &str = leancloud_im::ENV_MASTER_KEY;
pub const MASTER_KEY_PARAMETER: &str = "LEANCLOUD_APP_MASTER_KEY_PARAMETER";

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error(
        "could not fetch the master key from the SSM parameter {name:?} ({MASTER_KEY_PARAMETER}): {reason}; \
         set {MASTER_KEY} instead to skip SSM"
    )]
    Parameter { name: String, reason: String },
    #[error("bulk settings: {0}")]
    Delivery(#[from] crate::delivery::ConfigError),
    #[error("schedule settings: {0}")]
    Scheduler(#[from] crate::scheduler::ConfigError),
    #[error("AWS configuration: {0}")]
    Aws(String),
    #[error("client: {0}")]
    Client(#[from] leancloud_im::Error),
}

/// The client configuration from an injectable environment lookup (for tests). The AWS settings of the SSM
/// call (`AWS_REGION`, `AWS_ENDPOINT_URL_SSM`/`AWS_ENDPOINT_URL`, credentials) are read from the same lookup.
pub async fn load_with(env: impl Fn(&str) -> Option<String>) -> Result<Config, StartupError> {
    if let Some(name) = env(MASTER_KEY_PARAMETER).filter(|_| env(MASTER_KEY).is_none()) {
        let parameter_error = |reason: String| StartupError::Parameter {
            name: name.clone(),
            reason,
        };
        let access = crate::secrets::SsmAccess::from_lookup(&env).map_err(parameter_error)?;
        let key = crate::secrets::fetch_parameter(&access, &name)
            .await
            .map_err(|err| parameter_error(err.reason))?;
        tracing::info!(parameter = %name, "master key fetched from SSM");
        let with_key = |var: &str| {
            if var == MASTER_KEY {
                Some(key.clone())
            } else {
                env(var)
            }
        };
        return Ok(Config::from_lookup(with_key)?);
    }
    Ok(Config::from_lookup(env)?)
}

/// Build the one client every invocation reuses.
pub fn client(config: Config) -> Result<leancloud_im::Client, StartupError> {
    Ok(leancloud_im::Client::new(config)?)
}

/// The AWS SDK configuration of the DynamoDB, SQS and Scheduler clients from an environment lookup: the region from `AWS_REGION` (or
/// `AWS_DEFAULT_REGION`), `AWS_ENDPOINT_URL` when set (moto locally), and the static credentials
/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, which Lambda always sets.
///
/// Built by hand instead of with `aws_config::defaults(…).load()`: the default loader links the whole
/// credential chain (STS, SSO, IMDS, profile files) into every binary, about a megabyte each, for a case the
/// functions never meet. Without a region or credentials it fails at once with the variable to set.
pub async fn aws_config(env: &impl Fn(&str) -> Option<String>) -> Result<SdkConfig, String> {
    let AwsEnv {
        region,
        credentials,
        roots,
    } = AwsEnv::from_lookup(env)?;
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
        )
        .http_client(crate::aws_http::ReqwestHttpClient::shared(roots))
        .timeout_config(
            aws_smithy_types::timeout::TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        );
    if let Some(endpoint) = env("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_parameter_without_a_key_is_a_clear_startup_error() {
        let env = |name: &str| (name == MASTER_KEY_PARAMETER).then(|| "/im/master-key".to_owned());
        let err = load_with(env).await.expect_err("must fail");
        let text = err.to_string();
        assert!(
            text.contains("/im/master-key") && text.contains(MASTER_KEY),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_master_key_in_the_environment_wins_over_the_parameter() {
        let env = |name: &str| match name {
            "LEANCLOUD_APP_ID" => Some("dev-app-id-gzGzoHsz".to_owned()),
            MASTER_KEY => Some("dev-master-key".to_owned()),
            MASTER_KEY_PARAMETER => Some("/im/master-key".to_owned()),
            "LEANCLOUD_API_SERVER" => Some("http://127.0.0.1:3000".to_owned()),
            _ => None,
        };
        let config = load_with(env).await.expect("loads");
        assert_eq!("http://127.0.0.1:3000/", config.api_server().as_str());
        assert!(!format!("{config:?}").contains("dev-master-key"));
    }
}
