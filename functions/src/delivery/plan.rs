//! The dry-run plan: the work a send would do, nothing sent. One constructor, so send-message and broadcast
//! cannot drift apart in what they report.

use serde::Serialize;

use super::budget::{Bucket, BudgetConfig};
use super::key::IdempotencyKey;
use super::CHUNK_SIZE;

/// What a dry run answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub conversation_id: String,
    pub dry_run: bool,
    pub operation: &'static str,
    /// Distinct recipients (absent for a send to the whole conversation or a broadcast).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipients: Option<usize>,
    pub duplicates_removed: usize,
    pub chunks: usize,
    pub chunk_size: usize,
    /// LeanCloud calls without retries (one per chunk).
    pub calls: usize,
    /// The configured per-minute budget of the bucket (`null` = unlimited).
    pub budget_per_minute: Option<u32>,
    /// Minutes the calls need under that budget (`null` = unlimited budget).
    pub minutes_needed: Option<u64>,
    /// For broadcasts: the configured daily quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_per_day: Option<u32>,
    /// Whether the work would go through the bulk queue (HTTP, more than 20 recipients).
    pub queued: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
}

/// What a plan is made of; the rest follows from the bucket's budget.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    pub operation: &'static str,
    pub conversation_id: String,
    pub bucket: Bucket,
    /// `None`: one call to the whole conversation (a send without `to_clients`, or a broadcast).
    pub recipients: Option<usize>,
    pub duplicates_removed: usize,
    pub queued: bool,
    pub idempotency_key: Option<IdempotencyKey>,
    pub budget: &'a BudgetConfig,
}

impl Plan {
    pub fn new(input: PlanInput<'_>) -> Plan {
        let (chunks, chunk_size) = match (input.bucket, input.recipients) {
            (Bucket::Broadcasts, _) => (1, 1),
            (Bucket::Messages, recipients) => {
                (recipients.map_or(1, |n| n.div_ceil(CHUNK_SIZE)), CHUNK_SIZE)
            }
        };
        Plan {
            conversation_id: input.conversation_id,
            dry_run: true,
            operation: input.operation,
            recipients: input.recipients,
            duplicates_removed: input.duplicates_removed,
            chunks,
            chunk_size,
            calls: chunks,
            budget_per_minute: input.budget.per_window(input.bucket),
            minutes_needed: input.budget.windows_needed(input.bucket, chunks),
            budget_per_day: match input.bucket {
                Bucket::Broadcasts => input.budget.broadcasts_per_day,
                Bucket::Messages => None,
            },
            queued: input.queued,
            idempotency_key: input.idempotency_key,
        }
    }
}
