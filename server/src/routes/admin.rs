//! Test and operations endpoints: fault mode, rate limits, health, server time.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Access;
use crate::config::{FaultConfig, RateLimits};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::db::{iso_millis, Db};

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request(crate::error::codes::INVALID_JSON, e.to_string()))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Json<Value>, AppError> {
    serde_json::to_value(v)
        .map(Json)
        .map_err(AppError::internal)
}

/// `PUT /__admin/faults` (master key): `{"rate":0.1,"kinds":["5xx","429","timeout","drop"],"delay_ms":…}`.
pub async fn put_faults(
    State(state): State<AppState>,
    access: Access,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let config: FaultConfig = parse(&body)?;
    if !(0.0..=1.0).contains(&config.rate) {
        return Err(AppError::bad_request(
            crate::error::codes::INTERNAL,
            "rate must be between 0 and 1.",
        ));
    }
    state.faults.set(config);
    to_json(&state.faults.get())
}

pub async fn get_faults(
    State(state): State<AppState>,
    access: Access,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    to_json(&state.faults.get())
}

/// `PUT /__admin/rate-limits` (master key): `{"messages_per_minute":…, "broadcasts_per_minute":…, "broadcasts_per_day":…}`.
pub async fn put_rate_limits(
    State(state): State<AppState>,
    access: Access,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let limits: RateLimits = parse(&body)?;
    state.svc.limits.set(limits).await;
    to_json(&limits)
}

/// `GET /__admin/health`, for a load balancer: `200 {"status":"ok","database":"postgres","db":"reachable",
/// "bus":"connected"}` (`writer: running` on SQLite), or `503` with `status: unavailable` when the database
/// takes no writes or the realtime bus between instances is down, so the balancer takes the instance out.
pub async fn health(State(state): State<AppState>) -> (axum::http::StatusCode, Json<Value>) {
    let db_ok = state.svc.db.reachable().await;
    let bus_ok = state.svc.presence.bus.connected();
    let mut body = json!({
        "status": if db_ok && bus_ok { "ok" } else { "unavailable" },
        "database": state.svc.db.backend(),
        "db": if db_ok { "reachable" } else { "unreachable" },
        "bus": state.svc.presence.bus.describe(),
    });
    if let Db::Sqlite(_) = state.svc.db {
        body["writer"] = json!(if db_ok { "running" } else { "stopped" });
    }
    let status = if db_ok && bus_ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// `GET /metrics` on `--metrics-listen` (no key: that address is the operators' own): the counters, and the
/// state of this instance read now.
pub async fn metrics(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let hub = &state.svc.presence.hub;
    let bus = &state.svc.presence.bus;
    let (published, received) = bus.traffic();
    let now = crate::metrics::Snapshot {
        connections: hub.open_connections(),
        sessions: hub.session_count(),
        database_bytes: state.svc.db.size_bytes().await,
        bus: crate::metrics::BusTotals {
            published,
            received,
            rejected: bus.rejected(),
            dropped: bus.dropped(),
        },
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        state.svc.metrics.render(now),
    )
        .into_response()
}

/// `GET /1.1/date`: the server time, as LeanCloud answers it.
pub async fn date() -> Json<Value> {
    Json(json!({"__type": "Date", "iso": iso_millis(chrono::Utc::now().timestamp_millis())}))
}

/// `GET /__admin/messages[?conv_id=…]` (master key): what the inspector shows, over HTTP (all stored
/// messages oldest first, broadcasts and transient ones included).
pub async fn messages(
    State(state): State<AppState>,
    access: Access,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let params = crate::routes::query_params(raw.as_deref());
    let conv = params.get("conv_id").filter(|s| !s.is_empty()).cloned();
    let db = state.svc.db.clone();
    let stored =
        tokio::task::spawn_blocking(move || crate::store::messages::stored(&db, conv.as_deref()))
            .await
            .map_err(AppError::internal)??;
    to_json(&stored)
}
