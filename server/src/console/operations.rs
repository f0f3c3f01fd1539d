//! The console's operations view: connected clients, messages per minute, the rate-limit buckets.

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use super::{Console, Signed};
use crate::domain::limits::{BucketUsage, Usage};
use crate::error::AppError;
use crate::store::db::iso_millis;
use crate::store::operator::{self};

fn bucket_json(b: BucketUsage) -> Value {
    json!({
        "limit": b.limit, "used": b.used,
        "remaining": b.limit.map(|l| l.saturating_sub(b.used)),
        "resetsInSecs": b.resets_in_secs,
    })
}

fn usage_json(u: Usage) -> Value {
    json!({
        "messagesPerMinute": bucket_json(u.messages_per_minute),
        "broadcastsPerMinute": bucket_json(u.broadcasts_per_minute),
        "broadcastsPerDay": bucket_json(u.broadcasts_per_day),
    })
}

/// `GET /console/api/quota`: the rate-limit buckets' use (the broadcast page shows the daily quota left).
pub async fn quota(State(console): State<Console>, _signed: Signed) -> Json<Value> {
    Json(usage_json(console.app.svc.limits.usage().await))
}

/// Messages stored per minute over the last hour, oldest minute first (60 entries, the current minute last).
async fn per_minute(console: &Console) -> Result<Vec<Value>, AppError> {
    let now_minute = Utc::now().timestamp_millis().div_euclid(60_000);
    let first = now_minute - 59;
    let since = first * 60_000;
    let counts = operator::per_minute(&console.app.svc.db, since).await?;
    Ok((first..=now_minute)
        .map(|minute| {
            let count = counts
                .iter()
                .find(|(m, _)| *m == minute)
                .map_or(0, |(_, c)| *c);
            json!({"minute": iso_millis(minute * 60_000), "count": count})
        })
        .collect())
}

/// `GET /console/api/operations`: connected clients and their sessions, deliveries, messages per minute over
/// the last hour, the rate-limit buckets.
pub async fn operations(
    State(console): State<Console>,
    _signed: Signed,
) -> Result<Json<Value>, AppError> {
    let hub = &console.app.svc.presence.hub;
    let clients: Vec<Value> = hub
        .sessions()
        .into_iter()
        .map(|(client, sessions)| {
            let sessions: Vec<Value> = sessions
                .into_iter()
                .map(|(conn, tag)| json!({"connection": conn, "tag": tag}))
                .collect();
            json!({"clientId": client, "sessions": sessions})
        })
        .collect();
    let session_count: usize = clients
        .iter()
        .map(|c| c["sessions"].as_array().map_or(0, Vec::len))
        .sum();
    let per_minute = per_minute(&console).await?;
    let last_hour: i64 = per_minute
        .iter()
        .map(|m| m["count"].as_i64().unwrap_or(0))
        .sum();
    Ok(Json(json!({
        "onlineClients": clients.len(),
        "sessions": session_count,
        "clients": clients,
        "delivered": hub.delivered(),
        "liveViewers": console.app.svc.feed.receiver_count(),
        "messagesLastHour": last_hour,
        "messagesPerMinute": per_minute,
        "rateLimits": usage_json(console.app.svc.limits.usage().await),
    })))
}
