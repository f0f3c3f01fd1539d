//! The console's pushes view: the newest jobs of the push queue (IM offline pushes and `POST /1.1/push`) and
//! what became of each. Device tokens are device addresses: the page gets only their first characters.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde_json::{json, Map, Value};

use super::api::{bad, given};
use super::{Console, Signed};
use crate::error::AppError;
use crate::routes::query_params;
use crate::store::push_queue::{self, Job, State as JobState};

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
/// The characters of a device token the page sees.
const TARGET_SHOWN: usize = 8;
/// Every state, in the order the page counts them.
const STATES: [JobState; 6] = [
    JobState::Pending,
    JobState::Sent,
    JobState::Failed,
    JobState::Invalid,
    JobState::Unsupported,
    JobState::Expired,
];

/// The first [`TARGET_SHOWN`] characters of a device token, and `…` when there were more.
fn shorten(target: &str) -> String {
    let mut chars = target.chars();
    let head: String = chars.by_ref().take(TARGET_SHOWN).collect();
    if chars.next().is_some() {
        head + "…"
    } else {
        head
    }
}

fn job_json(j: Job) -> Value {
    json!({
        "id": j.id, "source": j.source, "refId": j.ref_id, "installation": j.installation_id,
        "platform": j.platform, "target": shorten(&j.target), "payload": j.payload, "profile": j.profile,
        "state": j.state.as_str(), "attempts": j.attempts, "error": j.last_error,
        "createdAt": j.created_at, "dueAt": j.due_at, "expiresAt": j.expires_at, "doneAt": j.done_at,
    })
}

/// `GET /console/api/pushes?limit&ref_id&state`: the newest `limit` jobs (100 unless given, at most 1000),
/// newest first, of one message or notification when `ref_id` is given; `counts` holds how many of them are in
/// each state, and `results` those in `state` when it is given. Times are ms.
pub async fn pushes(
    State(console): State<Console>,
    _signed: Signed,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let params = query_params(raw.as_deref());
    let limit = match given(&params, "limit") {
        None => DEFAULT_LIMIT,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad("limit: a positive number expected."))?
            .min(MAX_LIMIT),
    };
    let ref_id = given(&params, "ref_id").map(str::to_string);
    let wanted = match given(&params, "state") {
        None => None,
        Some(s) => Some(
            STATES
                .into_iter()
                .find(|st| st.as_str() == s)
                .ok_or_else(|| {
                    let names: Vec<&str> = STATES.iter().map(|st| st.as_str()).collect();
                    bad(format!("state: one of {} expected.", names.join(", ")))
                })?,
        ),
    };
    let jobs = push_queue::recent(&console.app.svc.db, ref_id, limit).await?;
    let mut counts = Map::new();
    for st in STATES {
        let n = jobs.iter().filter(|j| j.state == st).count();
        counts.insert(st.as_str().to_string(), json!(n));
    }
    let total = jobs.len();
    let results: Vec<Value> = jobs
        .into_iter()
        .filter(|j| wanted.is_none_or(|w| j.state == w))
        .map(job_json)
        .collect();
    Ok(Json(json!({
        "limit": limit,
        "total": total,
        "counts": counts,
        "results": results,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_token_is_shortened_to_its_first_characters() {
        assert_eq!("00aa11bb…", shorten("00aa11bb22cc33dd"));
        assert_eq!("fcm-c", shorten("fcm-c"));
        assert_eq!("12345678", shorten("12345678"));
        assert_eq!("éééééééé…", shorten("ééééééééé"));
    }
}
