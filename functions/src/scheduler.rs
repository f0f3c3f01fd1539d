//! EventBridge Scheduler settings for the `schedules` function: the stack's schedule group, the role
//! Scheduler assumes, the target functions and the dead-letter queue. Only the `schedules` function builds
//! this (see [`crate::app::Needs`]), so no other binary links the Scheduler client.
//!
//! | Variable | Meaning |
//! |---|---|
//! | `SCHEDULE_GROUP` | the stack's schedule group; every schedule is created, listed and deleted there |
//! | `SCHEDULER_ROLE_ARN` | the role Scheduler assumes to invoke the targets |
//! | `SEND_MESSAGE_FUNCTION_ARN` | target of `send-message` schedules |
//! | `BROADCAST_FUNCTION_ARN` | target of `broadcast` schedules |
//! | `SCHEDULE_DLQ_ARN` | optional: where Scheduler puts fires it could not deliver |

use aws_types::SdkConfig;

pub const SCHEDULE_GROUP: &str = "SCHEDULE_GROUP";
pub const SCHEDULER_ROLE_ARN: &str = "SCHEDULER_ROLE_ARN";
pub const SEND_MESSAGE_FUNCTION_ARN: &str = "SEND_MESSAGE_FUNCTION_ARN";
pub const BROADCAST_FUNCTION_ARN: &str = "BROADCAST_FUNCTION_ARN";
pub const SCHEDULE_DLQ_ARN: &str = "SCHEDULE_DLQ_ARN";

/// A required schedule variable that is missing.
#[derive(Debug, thiserror::Error)]
#[error("{var} is not set")]
pub struct ConfigError {
    pub var: &'static str,
}

/// The Scheduler client and where schedules go.
#[derive(Debug, Clone)]
pub struct Scheduler {
    pub client: aws_sdk_scheduler::Client,
    pub group: String,
    pub role_arn: String,
    pub send_message_arn: String,
    pub broadcast_arn: String,
    pub dlq_arn: Option<String>,
}

impl Scheduler {
    pub fn from_lookup(
        env: &impl Fn(&str) -> Option<String>,
        aws: &SdkConfig,
    ) -> Result<Scheduler, ConfigError> {
        let required = |var: &'static str| env(var).ok_or(ConfigError { var });
        Ok(Scheduler {
            client: aws_sdk_scheduler::Client::new(aws),
            group: required(SCHEDULE_GROUP)?,
            role_arn: required(SCHEDULER_ROLE_ARN)?,
            send_message_arn: required(SEND_MESSAGE_FUNCTION_ARN)?,
            broadcast_arn: required(BROADCAST_FUNCTION_ARN)?,
            dlq_arn: env(SCHEDULE_DLQ_ARN),
        })
    }
}
