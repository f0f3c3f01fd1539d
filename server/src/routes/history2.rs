//! The REST API 1.2 endpoints a LeanCloud export uses: message history and service-conversation
//! subscribers (`leancloud-rest.md` §4.2, `leancloud-migration.md` §1.3).
//!
//! History: `GET /1.2/rtm/conversations/{id}/messages` (also `chatrooms/{id}`), `GET
//! /1.2/rtm/service-conversations/{id}/subscribers/{client}/messages`, `GET /1.2/rtm/clients/{client}/messages`
//! and `GET /1.2/rtm/messages`, with `msgid`+`timestamp` (start), `till_msgid`+`till_timestamp` (stop),
//! `include_start`, `include_stop`, `reversed` and `limit` (1–1000, default 100). Records are newest first
//! (oldest first with `reversed`), ordered by (`timestamp`, arrival); a bound with a `msgid` sits exactly at
//! that message, a bound with only a timestamp at that millisecond. Broadcasts and transient messages are
//! not in history. A message sent to chosen clients of a service conversation carries their ids in
//! `recipients` (an addition of this server; LeanCloud serves those per subscriber).
//!
//! Subscribers: `GET /1.2/rtm/service-conversations/{id}/subscribers?limit=(≤ 50)&client_id=<cursor>` →
//! `[{"timestamp","subscriber","conv_id"}]` ordered by client id, starting after `client_id`;
//! `POST …/subscribers` `{"client_id"}` subscribes (idempotent).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, OptionalExtension};
use serde_json::{json, Value};

use crate::auth::Access;
use crate::error::{codes, AppError};
use crate::routes::{json_object, query_params, truthy};
use crate::state::AppState;
use crate::store::messages::user_conversation_key;
use crate::store::objects::conversation_kind;
use crate::store::StoreError;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
const MAX_SUBSCRIBER_LIMIT: i64 = 50;

fn param_error(message: impl Into<String>) -> AppError {
    AppError::bad_request(codes::INTERNAL, message)
}

fn int_param(params: &HashMap<String, String>, key: &str) -> Result<Option<i64>, AppError> {
    match params.get(key).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<f64>()
            .map(|f| Some(f as i64))
            .map_err(|_| param_error(format!("Parameter {key} must be a number."))),
    }
}

/// Which messages a history call covers.
#[derive(Debug, Clone)]
enum Scope {
    Conversation(String),
    Subscriber { conv: String, client: String },
    From(String),
    All,
}

/// One end of the scanned range, as `(timestamp, seq)` with `seq` known only when a `msgid` was given.
#[derive(Debug, Clone, Copy)]
struct Bound {
    ts: i64,
    seq: Option<i64>,
    inclusive: bool,
}

impl Bound {
    /// SQL condition keeping the rows below (`below`) or above this bound.
    fn condition(&self, below: bool, args: &mut Vec<SqlValue>) -> String {
        let (strict, eq) = match (below, self.inclusive) {
            (true, true) => ("<", "<="),
            (true, false) => ("<", "<"),
            (false, true) => (">", ">="),
            (false, false) => (">", ">"),
        };
        match self.seq {
            Some(seq) => {
                args.push(SqlValue::Integer(self.ts));
                args.push(SqlValue::Integer(self.ts));
                args.push(SqlValue::Integer(seq));
                format!("(m.timestamp {strict} ? OR (m.timestamp = ? AND m.seq {eq} ?))")
            }
            None => {
                args.push(SqlValue::Integer(self.ts));
                format!("m.timestamp {eq} ?")
            }
        }
    }
}

fn resolve_bound(
    conn: &rusqlite::Connection,
    ts: Option<i64>,
    msgid: Option<&String>,
    inclusive: bool,
) -> crate::store::StoreResult<Option<Bound>> {
    let at = match msgid {
        Some(id) => conn
            .prepare_cached("SELECT timestamp, seq FROM messages WHERE msg_id = ?1")?
            .query_row([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .optional()?
            .filter(|(t, _)| ts.is_none_or(|ts| ts == *t)),
        None => None,
    };
    Ok(match (at, ts) {
        (Some((t, seq)), _) => Some(Bound {
            ts: t,
            seq: Some(seq),
            inclusive,
        }),
        (None, Some(t)) => Some(Bound {
            ts: t,
            seq: None,
            inclusive,
        }),
        (None, None) => None,
    })
}

async fn history(
    state: AppState,
    access: Access,
    scope: Scope,
    raw: Option<String>,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let params = query_params(raw.as_deref());
    let limit = match int_param(&params, "limit")? {
        None => DEFAULT_LIMIT,
        Some(n) if n <= 0 => DEFAULT_LIMIT,
        Some(n) => n.min(MAX_LIMIT),
    };
    let reversed = truthy(params.get("reversed"));
    let start_ts = int_param(&params, "timestamp")?;
    let stop_ts = int_param(&params, "till_timestamp")?;
    let non_empty = |k: &str| params.get(k).filter(|s| !s.trim().is_empty()).cloned();
    let start_msgid = non_empty("msgid");
    let stop_msgid = non_empty("till_msgid");
    let include_start = truthy(params.get("include_start"));
    let include_stop = truthy(params.get("include_stop"));
    let records = state
        .db
        .read(move |conn| {
            let start = resolve_bound(conn, start_ts, start_msgid.as_ref(), include_start)?;
            let stop = resolve_bound(conn, stop_ts, stop_msgid.as_ref(), include_stop)?;
            let mut args: Vec<SqlValue> = Vec::new();
            let mut conds = vec!["m.kind != 'broadcast'".to_string(), "m.transient = 0".to_string()];
            match &scope {
                Scope::Conversation(conv) => {
                    args.push(SqlValue::Text(conv.clone()));
                    args.push(SqlValue::Text(conv.clone()));
                    conds.push(
                        "(m.conv_id = ? OR m.seq IN (SELECT msg_seq FROM message_recipients WHERE user_conv = ?))"
                            .into(),
                    );
                }
                Scope::Subscriber { conv, client } => {
                    args.push(SqlValue::Text(conv.clone()));
                    args.push(SqlValue::Text(user_conversation_key(conv, client)));
                    conds.push(
                        "((m.conv_id = ? AND m.kind = 'normal') OR m.seq IN (SELECT msg_seq FROM message_recipients WHERE user_conv = ?))"
                            .into(),
                    );
                }
                Scope::From(from) => {
                    args.push(SqlValue::Text(from.clone()));
                    conds.push("m.from_peer = ?".into());
                }
                Scope::All => {}
            }
            // Newest first: below the start, above the stop; reversed the other way round.
            if let Some(b) = start {
                conds.push(b.condition(!reversed, &mut args));
            }
            if let Some(b) = stop {
                conds.push(b.condition(reversed, &mut args));
            }
            let order = if reversed { "ASC" } else { "DESC" };
            args.push(SqlValue::Integer(limit));
            let sql = format!(
                "SELECT m.timestamp, m.conv_id, m.data, m.from_peer, m.msg_id, m.is_room, m.from_ip, (m.bin OR COALESCE(mm.bin, 0)), mm.ack_at, m.recipients
                 FROM messages m LEFT JOIN message_meta mm ON mm.msg_id = m.msg_id
                 WHERE {} ORDER BY m.timestamp {order}, m.seq {order} LIMIT ?",
                conds.join(" AND ")
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt
                .query_map(params_from_iter(args), |r| {
                    let conv_id: String = r.get(1)?;
                    let mut record = json!({
                        "timestamp": r.get::<_, i64>(0)?,
                        "conv-id": conv_id,
                        "data": r.get::<_, String>(2)?,
                        "from": r.get::<_, String>(3)?,
                        "msg-id": r.get::<_, String>(4)?,
                        "is-conv": true,
                        "is-room": r.get::<_, bool>(5)?,
                        "to": conv_id,
                        "bin": r.get::<_, Option<bool>>(7)?.unwrap_or(false),
                        "from-ip": r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                    });
                    if let Some(ack) = r.get::<_, Option<i64>>(8)? {
                        record["ack-at"] = json!(ack);
                    }
                    // Not a LeanCloud field: who a message to chosen clients of a service conversation
                    // went to, so that an export from this server keeps it.
                    if let Some(recipients) = r.get::<_, Option<String>>(9)? {
                        if let Ok(list) = serde_json::from_str::<Value>(&recipients) {
                            record["recipients"] = list;
                        }
                    }
                    Ok(record)
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(Json(Value::Array(records)))
}

/// `GET /1.2/rtm/conversations/{id}/messages` and `GET /1.2/rtm/chatrooms/{id}/messages`.
pub async fn conversation_messages(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    history(state, access, Scope::Conversation(id), raw).await
}

/// `GET /1.2/rtm/service-conversations/{id}/subscribers/{client}/messages`: what one subscriber received.
pub async fn subscriber_messages(
    State(state): State<AppState>,
    access: Access,
    Path((conv, client)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    history(state, access, Scope::Subscriber { conv, client }, raw).await
}

/// `GET /1.2/rtm/clients/{client}/messages`: what one client sent.
pub async fn client_messages(
    State(state): State<AppState>,
    access: Access,
    Path(client): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    history(state, access, Scope::From(client), raw).await
}

/// `GET /1.2/rtm/messages`: the whole app's history.
pub async fn all_messages(
    State(state): State<AppState>,
    access: Access,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    history(state, access, Scope::All, raw).await
}

/// `GET /1.2/rtm/service-conversations/{id}/subscribers`.
pub async fn subscribers(
    State(state): State<AppState>,
    access: Access,
    Path(conv): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let params = query_params(raw.as_deref());
    let limit = match int_param(&params, "limit")? {
        None => MAX_SUBSCRIBER_LIMIT,
        Some(n) if n <= 0 => MAX_SUBSCRIBER_LIMIT,
        Some(n) => n.min(MAX_SUBSCRIBER_LIMIT),
    };
    let after = params.get("client_id").cloned().unwrap_or_default();
    let rows = state
        .db
        .read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT client_id, timestamp FROM service_subscribers
                 WHERE conv_id = ?1 AND client_id > ?2 ORDER BY client_id LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(rusqlite::params![conv, after, limit], |r| {
                    Ok(json!({
                        "timestamp": r.get::<_, i64>(1)?,
                        "subscriber": r.get::<_, String>(0)?,
                        "conv_id": conv,
                    }))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(Json(Value::Array(rows)))
}

/// `POST /1.2/rtm/service-conversations/{id}/subscribers` with `{"client_id"}`; subscribing twice keeps
/// the first subscription time.
pub async fn subscribe(
    State(state): State<AppState>,
    access: Access,
    Path(conv): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    access.require_master()?;
    let body = json_object(&body)?;
    let client = match body.get("client_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(param_error("Missing required parameter client_id.")),
    };
    let now = chrono::Utc::now().timestamp_millis();
    state
        .db
        .write(move |tx| {
            let conn = tx.conn();
            match conversation_kind(conn, &conv)? {
                Some(kind) if kind.system => {}
                Some(_) => return Err(StoreError::SystemConversationRequired),
                None => return Err(StoreError::ConversationNotFound),
            }
            conn.prepare_cached(
                "INSERT OR IGNORE INTO service_subscribers (conv_id, client_id, timestamp) VALUES (?1, ?2, ?3)",
            )?
            .execute(rusqlite::params![conv, client, now])?;
            Ok(())
        })
        .await?;
    Ok(Json(json!({})))
}

/// The routes of this module, merged into [`crate::app`]'s router.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/1.2/rtm/conversations/{id}/messages",
            get(conversation_messages),
        )
        .route(
            "/1.2/rtm/chatrooms/{id}/messages",
            get(conversation_messages),
        )
        .route(
            "/1.2/rtm/service-conversations/{id}/subscribers",
            get(subscribers).post(subscribe),
        )
        .route(
            "/1.2/rtm/service-conversations/{id}/subscribers/{client}/messages",
            get(subscriber_messages),
        )
        .route("/1.2/rtm/clients/{client}/messages", get(client_messages))
        .route("/1.2/rtm/messages", get(all_messages))
}
