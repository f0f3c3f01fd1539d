//! Configuration, loaded once at cold start.
//!
//! The master key comes from `LEANCLOUD_APP_MASTER_KEY`, or in AWS from the SSM SecureString named by
//! `LEANCLOUD_APP_MASTER_KEY_PARAMETER` (fetched once with decryption, kept in memory, never logged). Every
//! other variable is read by [`leancloud_im::Config::from_lookup`] (the same
//! variables as `Config::from_env`). [`load`] also loads the bulk services (idempotency ledger, rate budgets,
//! bulk queue: [`crate::services`]) that [`crate::handler::handle`] uses.

use aws_config::SdkConfig;
use leancloud_im::{Config, ConfigError};

use crate::services::{self, Services};

pub const MASTER_KEY: &str = "LEANCLOUD_APP_MASTER_KEY";
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
    Services(#[from] services::ServicesError),
    #[error("AWS configuration: {0}")]
    Aws(String),
    #[error("client: {0}")]
    Client(#[from] leancloud_im::Error),
}

/// Load the configuration from the environment, fetching the master key from SSM when only its parameter
/// name is set, and install the bulk services ([`services::install`]) for [`crate::handler::handle`].
pub async fn load() -> Result<Config, StartupError> {
    let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let aws = if needs_parameter(&env) || Services::needs_aws(&env) {
        Some(
            services::aws_config(&env)
                .await
                .map_err(StartupError::Aws)?,
        )
    } else {
        None
    };
    let config = load_with_aws(&env, aws.as_ref()).await?;
    services::install(Services::from_lookup(&env, aws.as_ref())?);
    Ok(config)
}

/// [`load`] with an injectable environment lookup (for tests); installs no services. The AWS settings
/// (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials) are read from the same lookup.
pub async fn load_with(env: impl Fn(&str) -> Option<String>) -> Result<Config, StartupError> {
    let aws = if needs_parameter(&env) {
        match services::aws_config(&env).await {
            Ok(aws) => Some(aws),
            Err(reason) => {
                return Err(StartupError::Parameter {
                    name: env(MASTER_KEY_PARAMETER).unwrap_or_default(),
                    reason,
                })
            }
        }
    } else {
        None
    };
    load_with_aws(&env, aws.as_ref()).await
}

fn needs_parameter(env: &impl Fn(&str) -> Option<String>) -> bool {
    env(MASTER_KEY).is_none() && env(MASTER_KEY_PARAMETER).is_some()
}

async fn load_with_aws(
    env: &impl Fn(&str) -> Option<String>,
    aws: Option<&SdkConfig>,
) -> Result<Config, StartupError> {
    if env(MASTER_KEY).is_none() {
        if let Some(name) = env(MASTER_KEY_PARAMETER) {
            let Some(aws) = aws else {
                return Err(StartupError::Parameter {
                    name,
                    reason: "no AWS configuration".to_owned(),
                });
            };
            let ssm = aws_sdk_ssm::Client::new(aws);
            let key = crate::secrets::fetch_parameter(&ssm, &name)
                .await
                .map_err(|err| StartupError::Parameter {
                    name: name.clone(),
                    reason: err.reason,
                })?;
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
    }
    Ok(Config::from_lookup(env)?)
}

/// Build the one client every invocation reuses.
pub fn client(config: Config) -> Result<leancloud_im::Client, StartupError> {
    Ok(leancloud_im::Client::new(config)?)
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
