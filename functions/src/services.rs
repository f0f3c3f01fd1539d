//! What the bulk path needs besides the LeanCloud client: the idempotency ledger, the rate budgets, the bulk
//! queue and the fan-out options. Loaded once at cold start by [`crate::config::load`] and used by
//! [`crate::handler::handle`]; tests and benchmarks pass their own to [`crate::handler::handle_with`] or put
//! them on a [`crate::Backend`].
//!
//! | Variable | Meaning | Unset |
//! |---|---|---|
//! | `IDEMPOTENCY_TABLE` | DynamoDB table (keys `pk`/`sk`, TTL `expires_at`) for progress and shared budgets | in-memory ledger and budgets (per container) |
//! | `SEND_BUDGET_PER_MINUTE` | message calls per minute, all invocations together | unlimited |
//! | `BROADCAST_BUDGET_PER_MINUTE` | broadcast calls per minute | unlimited |
//! | `BROADCAST_BUDGET_PER_DAY` | broadcast calls per UTC day; beyond it broadcasts are refused | unlimited |
//! | `BULK_QUEUE_URL` | SQS queue HTTP calls with more than 20 recipients are put on (answered `202`) | such calls get `400` |
//! | `BULK_CONCURRENCY` | chunks of one record in flight at once | 4 |

use std::sync::OnceLock;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};

use crate::budget::{Budget, BudgetConfig};
use crate::ledger::Ledger;
use crate::queue::BulkQueue;

pub const IDEMPOTENCY_TABLE: &str = "IDEMPOTENCY_TABLE";
pub const SEND_BUDGET_PER_MINUTE: &str = "SEND_BUDGET_PER_MINUTE";
pub const BROADCAST_BUDGET_PER_MINUTE: &str = "BROADCAST_BUDGET_PER_MINUTE";
pub const BROADCAST_BUDGET_PER_DAY: &str = "BROADCAST_BUDGET_PER_DAY";
pub const BULK_QUEUE_URL: &str = "BULK_QUEUE_URL";
pub const BULK_CONCURRENCY: &str = "BULK_CONCURRENCY";

/// How one record's chunks are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkOptions {
    /// Chunks of one record in flight at once (records of a batch run concurrently too).
    pub concurrency: usize,
    /// Attempts per chunk within one invocation for transient errors (5xx, timeouts, dropped connections).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles per attempt (jittered), at most 2 s.
    pub retry_base: Duration,
    /// An attempt is not started with less than this left before the invocation deadline.
    pub min_attempt_time: Duration,
    /// Lease of a claimed chunk when the invocation has no deadline (its remaining time + 30 s otherwise).
    pub default_lease: Duration,
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions {
            concurrency: 4,
            max_attempts: 4,
            retry_base: Duration::from_millis(200),
            min_attempt_time: Duration::from_secs(1),
            default_lease: Duration::from_secs(120),
        }
    }
}

/// Ledger, budgets, queue and options.
#[derive(Debug, Clone, Default)]
pub struct Services {
    pub ledger: Ledger,
    pub budget: Budget,
    pub queue: Option<BulkQueue>,
    pub options: BulkOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error("{var}: {reason}")]
    Invalid { var: &'static str, reason: String },
}

impl Services {
    /// No ledger, no budgets, no queue: what [`crate::handler::handle`] uses before [`install`].
    pub fn none() -> &'static Services {
        static NONE: OnceLock<Services> = OnceLock::new();
        NONE.get_or_init(Services::default)
    }

    /// In-memory ledger and budgets (no table), no queue.
    pub fn in_memory(budget: BudgetConfig) -> Services {
        Services {
            ledger: Ledger::memory(),
            budget: Budget::memory(budget),
            queue: None,
            options: BulkOptions::default(),
        }
    }

    /// Read the variables above. `aws` is needed only when a table or queue is named.
    pub fn from_lookup(
        env: &impl Fn(&str) -> Option<String>,
        aws: Option<&SdkConfig>,
    ) -> Result<Services, ServicesError> {
        let budget = BudgetConfig {
            messages_per_window: positive(env, SEND_BUDGET_PER_MINUTE)?,
            broadcasts_per_window: positive(env, BROADCAST_BUDGET_PER_MINUTE)?,
            broadcasts_per_day: positive(env, BROADCAST_BUDGET_PER_DAY)?,
            window: Duration::from_secs(60),
        };
        let mut options = BulkOptions::default();
        if let Some(concurrency) = positive(env, BULK_CONCURRENCY)? {
            options.concurrency = concurrency as usize;
        }
        let missing_aws = |var: &'static str| ServicesError::Invalid {
            var,
            reason: "set, but no AWS configuration (AWS_REGION) is available".to_owned(),
        };
        let (ledger, budget) = match env(IDEMPOTENCY_TABLE) {
            Some(table) => {
                let aws = aws.ok_or_else(|| missing_aws(IDEMPOTENCY_TABLE))?;
                let client = aws_sdk_dynamodb::Client::new(aws);
                (
                    Ledger::dynamodb(client.clone(), table.clone()),
                    Budget::dynamodb(budget, client, table),
                )
            }
            None => (Ledger::memory(), Budget::memory(budget)),
        };
        let queue = match env(BULK_QUEUE_URL) {
            Some(url) => {
                let aws = aws.ok_or_else(|| missing_aws(BULK_QUEUE_URL))?;
                Some(BulkQueue::new(aws_sdk_sqs::Client::new(aws), url))
            }
            None => None,
        };
        Ok(Services {
            ledger,
            budget,
            queue,
            options,
        })
    }

    /// Whether any variable needs an AWS client.
    pub fn needs_aws(env: &impl Fn(&str) -> Option<String>) -> bool {
        env(IDEMPOTENCY_TABLE).is_some() || env(BULK_QUEUE_URL).is_some()
    }
}

fn positive(
    env: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<u32>, ServicesError> {
    env(var)
        .map(|text| match text.trim().parse::<u32>() {
            Ok(value) if value > 0 => Ok(value),
            _ => Err(ServicesError::Invalid {
                var,
                reason: format!("{text:?} is not a positive integer"),
            }),
        })
        .transpose()
}

static INSTALLED: OnceLock<Services> = OnceLock::new();

/// Make `services` what [`crate::handler::handle`] uses in this process (first call wins).
pub fn install(services: Services) {
    let _ = INSTALLED.set(services);
}

/// The installed services, or [`Services::none`].
pub fn current() -> &'static Services {
    INSTALLED.get().unwrap_or_else(|| Services::none())
}

/// The AWS SDK configuration from an environment lookup: the region from `AWS_REGION` (or
/// `AWS_DEFAULT_REGION`), `AWS_ENDPOINT_URL` when set (moto locally), static credentials when
/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` are given (Lambda sets them), else the default chain.
///
/// Without a region it fails at once instead of probing instance metadata (no region means not in AWS).
pub async fn aws_config(env: &impl Fn(&str) -> Option<String>) -> Result<SdkConfig, String> {
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .ok_or_else(|| "AWS_REGION is not set".to_owned())?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(5))
                .build(),
        );
    if let Some(endpoint) = env("AWS_ENDPOINT_URL") {
        loader = loader.endpoint_url(endpoint);
    }
    if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            id,
            secret,
            env("AWS_SESSION_TOKEN"),
            None,
            "environment",
        ));
    }
    Ok(loader.load().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_budgets_and_rejects_bad_numbers() {
        let env = |name: &str| match name {
            SEND_BUDGET_PER_MINUTE => Some("120".to_owned()),
            BROADCAST_BUDGET_PER_DAY => Some("30".to_owned()),
            BULK_CONCURRENCY => Some("8".to_owned()),
            _ => None,
        };
        let services = Services::from_lookup(&env, None).expect("loads");
        assert_eq!(Some(120), services.budget.config().messages_per_window);
        assert_eq!(None, services.budget.config().broadcasts_per_window);
        assert_eq!(Some(30), services.budget.config().broadcasts_per_day);
        assert_eq!(8, services.options.concurrency);
        assert!(!services.ledger.is_durable() && services.ledger.is_on());

        let bad = |name: &str| (name == SEND_BUDGET_PER_MINUTE).then(|| "0".to_owned());
        let err = Services::from_lookup(&bad, None).expect_err("zero");
        assert!(err.to_string().contains(SEND_BUDGET_PER_MINUTE), "{err}");
        let no_aws = |name: &str| (name == IDEMPOTENCY_TABLE).then(|| "t".to_owned());
        assert!(Services::from_lookup(&no_aws, None).is_err());
    }
}
