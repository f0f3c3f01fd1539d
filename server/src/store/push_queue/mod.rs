//! The push queue: one job per device and notification (an IM offline push, a `POST /1.1/push`), kept in the
//! database until it is delivered or given up. Workers claim due jobs with a lease: a claimed job is nobody
//! else's until its lease runs out, so several instances share one queue without sending anything twice, and a
//! worker that dies mid-send leaves its jobs to be taken again. No HTTP types: delivery is `crate::push`'s.

pub(crate) mod postgres;
pub(crate) mod sqlite;

use serde_json::Value;

use crate::store::db::Db;
use crate::store::StoreResult;

/// Where a job ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Sent,
    /// Given up after its attempts, or refused for good (a bad payload, a bad credential).
    Failed,
    /// The provider said the device is gone (APNs 410, FCM `UNREGISTERED`).
    Invalid,
    /// A platform or vendor this server does not deliver to.
    Unsupported,
    /// Not delivered before its expiration time.
    Expired,
}

impl State {
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sent => "sent",
            State::Failed => "failed",
            State::Invalid => "invalid",
            State::Unsupported => "unsupported",
            State::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> State {
        match s {
            "sent" => State::Sent,
            "failed" => State::Failed,
            "invalid" => State::Invalid,
            "unsupported" => State::Unsupported,
            "expired" => State::Expired,
            _ => State::Pending,
        }
    }
}

/// A job to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// `rtm` (an IM offline push) or `api` (the push API).
    pub source: &'static str,
    /// The message id, or the `_Notification` objectId.
    pub ref_id: String,
    pub installation_id: String,
    pub platform: String,
    /// The APNs token or FCM registration token.
    pub target: String,
    /// LeanCloud's push `data`.
    pub payload: Value,
    /// `dev`: the APNs sandbox.
    pub profile: Option<String>,
    /// ms.
    pub due_at: i64,
    pub expires_at: Option<i64>,
    /// The job's state from the start (`Unsupported` for a platform no provider serves).
    pub state: State,
    /// The device's `apnsTopic` (its app's bundle id), when it gave one.
    pub topic: Option<String>,
}

/// A queued job as the workers and the console see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub source: String,
    pub ref_id: String,
    pub installation_id: String,
    pub platform: String,
    pub target: String,
    pub payload: Value,
    pub profile: Option<String>,
    pub due_at: i64,
    pub expires_at: Option<i64>,
    pub state: State,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub done_at: Option<i64>,
    pub topic: Option<String>,
}

/// Queues `jobs` at `now` (ms).
pub async fn enqueue(db: &Db, jobs: Vec<NewJob>, now: i64) -> StoreResult<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    match db {
        Db::Sqlite(db) => sqlite::enqueue(db, jobs, now).await,
        Db::Postgres(pg) => postgres::enqueue(pg, jobs, now).await,
    }
}

/// Claims up to `limit` pending jobs due at `now` whose lease (if any) ran out, leasing them for `lease_ms`
/// and counting an attempt: the oldest due first.
pub async fn claim(db: &Db, now: i64, lease_ms: i64, limit: i64) -> StoreResult<Vec<Job>> {
    match db {
        Db::Sqlite(db) => sqlite::claim(db, now, lease_ms, limit).await,
        Db::Postgres(pg) => postgres::claim(pg, now, lease_ms, limit).await,
    }
}

/// What became of a claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done, in this state (not `Pending`).
    Done(State, Option<String>),
    /// Try again at this time (ms), after this error.
    Retry(i64, String),
}

/// Records a claimed job's outcome at `now` (ms) and releases its lease.
pub async fn settle(db: &Db, id: i64, outcome: Outcome, now: i64) -> StoreResult<()> {
    match db {
        Db::Sqlite(db) => sqlite::settle(db, id, outcome, now).await,
        Db::Postgres(pg) => postgres::settle(pg, id, outcome, now).await,
    }
}

/// The newest `limit` jobs, newest first (of `ref_id` when given): what the console and tests look at.
pub async fn recent(db: &Db, ref_id: Option<String>, limit: i64) -> StoreResult<Vec<Job>> {
    match db {
        Db::Sqlite(db) => sqlite::recent(db, ref_id, limit).await,
        Db::Postgres(pg) => postgres::recent(pg, ref_id, limit).await,
    }
}

/// Deletes the jobs that ended before `before` (ms); how many.
pub async fn purge(db: &Db, before: i64) -> StoreResult<u64> {
    match db {
        Db::Sqlite(db) => sqlite::purge(db, before).await,
        Db::Postgres(pg) => postgres::purge(pg, before).await,
    }
}
