//! The master key from SSM Parameter Store: in AWS only the parameter's *name* reaches the function
//! (`LEANCLOUD_APP_MASTER_KEY_PARAMETER`); the SecureString is fetched with decryption once at cold start and
//! kept in memory. Its value is never logged and never part of an error.

use aws_sdk_ssm::error::DisplayErrorContext;

/// Why the parameter could not be read. Carries the parameter name and the AWS error, never a value.
#[derive(Debug, thiserror::Error)]
#[error("SSM parameter {name:?}: {reason}")]
pub struct SecretError {
    pub name: String,
    pub reason: String,
}

/// Fetch `name` with decryption. A plain `String` parameter is accepted too (its value is used as is).
pub async fn fetch_parameter(
    client: &aws_sdk_ssm::Client,
    name: &str,
) -> Result<String, SecretError> {
    let error = |reason: String| SecretError {
        name: name.to_owned(),
        reason,
    };
    let output = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|err| error(DisplayErrorContext(err).to_string()))?;
    let value = output
        .parameter()
        .and_then(|parameter| parameter.value())
        .map(str::trim)
        .unwrap_or_default();
    if value.is_empty() {
        return Err(error("the parameter is empty".to_owned()));
    }
    Ok(value.to_owned())
}
