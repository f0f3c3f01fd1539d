//! What a function knows of AWS at cold start, read once from Lambda's variables: the region (`AWS_REGION`, or
//! `AWS_DEFAULT_REGION`), the static credentials Lambda sets (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`) and the TLS roots (`LEANCLOUD_TLS_ROOTS`, as for the LeanCloud client). Both the SDK
//! clients (`config::aws_config`) and the master key's SSM call (`secrets`) are built from it.
//!
//! No profile files, no instance metadata, no STS: the functions never meet those, and `aws-config`'s default
//! loader would link them into every binary.

use std::time::Duration;

use aws_credential_types::Credentials;

/// Connect limit of every AWS call.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Limit of one attempt of an AWS call.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Region, credentials and TLS roots. `Debug` shows no credential.
#[derive(Clone)]
pub struct AwsEnv {
    pub region: String,
    pub credentials: Credentials,
    pub roots: leancloud_im::TlsRoots,
}

impl std::fmt::Debug for AwsEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsEnv")
            .field("region", &self.region)
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

impl AwsEnv {
    /// From an environment lookup; the error names the variable to set.
    pub fn from_lookup(env: &impl Fn(&str) -> Option<String>) -> Result<AwsEnv, String> {
        let region = env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .ok_or_else(|| "AWS_REGION is not set".to_owned())?;
        let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them; locally, export them)"
                    .to_owned(),
            );
        };
        let credentials =
            Credentials::new(id, secret, env("AWS_SESSION_TOKEN"), None, "environment");
        let roots = leancloud_im::TlsRoots::from_lookup(env).map_err(|err| err.to_string())?;
        Ok(AwsEnv {
            region,
            credentials,
            roots,
        })
    }
}
