//! The state every invocation shares, built once at cold start by [`crate::lambda::serve`] and passed to the
//! handler by reference (the runtime's own examples close over their clients the same way). Tests and
//! benchmarks build their own [`App`]; nothing is global.
//!
//! A function builds only the AWS clients its operation declares in [`Needs`], so `create-conversation`
//! never constructs (and, since nothing else references them, never links) the DynamoDB, SQS or Scheduler
//! clients.

use leancloud_im::Client;

use crate::config::{self, StartupError};
use crate::delivery::Delivery;
use crate::scheduler::Scheduler;

/// Which services beyond the LeanCloud client an operation uses. Constants, so the branches that build the
/// others are removed at compile time.
pub trait Needs {
    /// The idempotency ledger, budgets and bulk queue (DynamoDB, SQS).
    const DELIVERY: bool = false;
    /// EventBridge Scheduler.
    const SCHEDULER: bool = false;
}

/// `JWT_IDENTITY_CLAIM`: the claim holding the caller's client id.
pub const JWT_IDENTITY_CLAIM: &str = "JWT_IDENTITY_CLAIM";
/// `JWT_ADMIN_SCOPE`: the scope that lifts the binding (operators, back-office services).
pub const JWT_ADMIN_SCOPE: &str = "JWT_ADMIN_SCOPE";
pub const DEFAULT_IDENTITY_CLAIM: &str = "sub";
pub const DEFAULT_ADMIN_SCOPE: &str = "leancloud-im/admin";

/// How a JWT caller is identified. Here, next to [`App`] that holds it, so that the app state does not
/// import the operations (which import it); [`crate::ops::caller`] applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtPolicy {
    pub identity_claim: String,
    pub admin_scope: String,
}

impl Default for JwtPolicy {
    fn default() -> Self {
        JwtPolicy {
            identity_claim: DEFAULT_IDENTITY_CLAIM.to_owned(),
            admin_scope: DEFAULT_ADMIN_SCOPE.to_owned(),
        }
    }
}

impl JwtPolicy {
    /// From `JWT_IDENTITY_CLAIM` and `JWT_ADMIN_SCOPE` (defaults `sub`, `leancloud-im/admin`).
    pub fn from_lookup(env: &impl Fn(&str) -> Option<String>) -> JwtPolicy {
        let defaults = JwtPolicy::default();
        JwtPolicy {
            identity_claim: env(JWT_IDENTITY_CLAIM).unwrap_or(defaults.identity_claim),
            admin_scope: env(JWT_ADMIN_SCOPE).unwrap_or(defaults.admin_scope),
        }
    }
}

/// The LeanCloud client plus the services the function's operation needs.
#[derive(Debug, Clone)]
pub struct App {
    pub client: Client,
    /// Off (no ledger, no budgets, no queue) for the operations that do not send.
    pub delivery: Delivery,
    /// `None` except in the `schedules` function.
    pub scheduler: Option<Scheduler>,
    /// How JWT callers are identified (`JWT_IDENTITY_CLAIM`, `JWT_ADMIN_SCOPE`).
    pub jwt: JwtPolicy,
}

impl App {
    /// An app over `client` with no services: what the operations that only call LeanCloud need.
    pub fn new(client: Client) -> App {
        App {
            client,
            delivery: Delivery::default(),
            scheduler: None,
            jwt: JwtPolicy::default(),
        }
    }

    pub fn with_delivery(self, delivery: Delivery) -> App {
        App { delivery, ..self }
    }

    pub fn with_scheduler(self, scheduler: Scheduler) -> App {
        App {
            scheduler: Some(scheduler),
            ..self
        }
    }

    /// Read the environment once: the client's configuration (the master key from SSM when only its
    /// parameter is named), then what `N` needs. Fails fast, so a misconfigured function never starts.
    pub async fn from_env<N: Needs>() -> Result<App, StartupError> {
        let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        // The master key's SSM call is signed by `config::load_with` itself: no SDK configuration for it.
        let needs_aws = (N::DELIVERY && Delivery::needs_aws(&env)) || N::SCHEDULER;
        let aws = if needs_aws {
            Some(config::aws_config(&env).await.map_err(StartupError::Aws)?)
        } else {
            None
        };
        let client = config::client(config::load_with(env).await?)?;
        let mut app = App::new(client);
        app.jwt = JwtPolicy::from_lookup(&env);
        if N::DELIVERY {
            app.delivery = Delivery::from_lookup(&env, aws.as_ref())?;
        }
        if N::SCHEDULER {
            if let Some(aws) = &aws {
                app.scheduler = Some(Scheduler::from_lookup(&env, aws)?);
            }
        }
        Ok(app)
    }
}
