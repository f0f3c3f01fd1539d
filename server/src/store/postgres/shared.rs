//! PostgreSQL queries more than one store area runs (on a pooled connection or inside a transaction): a
//! conversation's kind and members, a message's position.

use deadpool_postgres::GenericClient;
use serde_json::{Map, Value};

use crate::store::objects::{ConversationKind, CONVERSATION};
use crate::store::StoreResult;

/// The conversation's kind; with `lock`, its row stays locked until the transaction ends.
pub(crate) async fn conversation_in(
    c: &impl GenericClient,
    id: &str,
    lock: bool,
) -> StoreResult<Option<ConversationKind>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let stmt = c
        .prepare_cached(&format!(
            "SELECT data FROM objects WHERE class = $1 AND id = $2{lock}"
        ))
        .await?;
    Ok(c.query_opt(&stmt, &[&CONVERSATION, &id]).await?.map(|r| {
        let data = match r.get::<_, Value>(0) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        ConversationKind::from_data(&data)
    }))
}

/// `(timestamp, seq)` of the stored message `msg_id`.
pub(crate) async fn seq_of(
    c: &impl GenericClient,
    msg_id: Option<&str>,
) -> StoreResult<Option<(i64, i64)>> {
    let Some(id) = msg_id else { return Ok(None) };
    let stmt = c
        .prepare_cached("SELECT timestamp, seq FROM messages WHERE msg_id = $1")
        .await?;
    Ok(c.query_opt(&stmt, &[&id])
        .await?
        .map(|r| (r.get(0), r.get(1))))
}
