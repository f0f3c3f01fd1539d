//! SQLite queries more than one store area runs (in the writer's transaction or on a read connection): a
//! conversation's kind and members, a message's position.

use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;

use crate::store::objects::{string_list, ConversationKind};
use crate::store::StoreResult;

/// The conversation `id`'s kind and members, or `None` when there is no such conversation.
pub fn conversation_kind(conn: &Connection, id: &str) -> StoreResult<Option<ConversationKind>> {
    let mut stmt = conn.prepare_cached(
        // json_type: a field stored as "true", 1.0 or an object is simply not `true` (never a type error).
        "SELECT json_type(data, '$.sys') = 'true', json_type(data, '$.tr') = 'true', json_extract(data, '$.m'), json_extract(data, '$.mu') FROM objects WHERE class = '_Conversation' AND id = ?1",
    )?;
    let kind = stmt
        .query_row([id], |r| {
            let truthy = |v: Option<i64>| v.unwrap_or(0) != 0;
            let list = |text: Option<String>| {
                string_list(
                    text.and_then(|m| serde_json::from_str::<Value>(&m).ok())
                        .as_ref(),
                )
            };
            Ok(ConversationKind {
                system: truthy(r.get(0)?),
                transient: truthy(r.get(1)?),
                members: list(r.get(2)?),
                muted: list(r.get(3)?),
            })
        })
        .optional()?;
    Ok(kind)
}

/// `(timestamp, seq)` of the stored message `msg_id`.
pub(crate) fn seq_of(conn: &Connection, msg_id: Option<&str>) -> StoreResult<Option<(i64, i64)>> {
    let Some(id) = msg_id else { return Ok(None) };
    Ok(conn
        .prepare_cached("SELECT timestamp, seq FROM messages WHERE msg_id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}
