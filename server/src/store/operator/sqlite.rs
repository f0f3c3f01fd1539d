//! The operator console's queries on SQLite (see [`crate::store::operator`]).

use rusqlite::{params, OptionalExtension};
use serde_json::{Map, Value};

use crate::store::messages::{recipients_from_column, MessageKind};
use crate::store::objects::CONVERSATION;
use crate::store::operator::{page_start, ConversationRow, KindFilter, MessageRow};
use crate::store::sqlite::SqliteDb;
use crate::store::StoreResult;

pub async fn search_conversations(
    db: &SqliteDb,
    q: String,
    kind: KindFilter,
    skip: i64,
    limit: i64,
) -> StoreResult<(i64, Vec<ConversationRow>)> {
    let sys = "coalesce(json_extract(data, '$.sys'), 0) IN (1, 'true')";
    let tr = "coalesce(json_extract(data, '$.tr'), 0) IN (1, 'true')";
    let kind = match kind {
        KindFilter::All => "1".to_string(),
        KindFilter::System => sys.to_string(),
        KindFilter::Transient => format!("{tr} AND NOT ({sys})"),
        KindFilter::Normal => format!("NOT ({sys}) AND NOT ({tr})"),
    };
    let filter = format!(
        "class = '{CONVERSATION}' AND ({kind}) AND (?1 = '' OR instr(id, ?1) > 0
           OR instr(lower(coalesce(json_extract(data, '$.name'), '')), lower(?1)) > 0
           OR EXISTS (SELECT 1 FROM json_each(objects.data, '$.m') WHERE json_each.value = ?1))"
    );
    db.read(move |conn| {
        let count: i64 = conn.query_row(
            &format!("SELECT count(*) FROM objects WHERE {filter}"),
            [&q],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(&format!(
            "SELECT id, data, created_at, updated_at FROM objects WHERE {filter}
             ORDER BY seq DESC LIMIT ?2 OFFSET ?3"
        ))?;
        let rows = stmt
            .query_map(params![q, limit, skip], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let rows = rows
            .into_iter()
            .map(|(id, data, created_at, updated_at)| ConversationRow {
                id,
                data: match serde_json::from_str::<Value>(&data) {
                    Ok(Value::Object(m)) => m,
                    _ => Map::new(),
                },
                created_at,
                updated_at,
            })
            .collect();
        Ok((count, rows))
    })
    .await
}

pub async fn message_count(db: &SqliteDb, conv: String) -> StoreResult<i64> {
    db.read(move |conn| {
        Ok(conn.query_row(
            "SELECT count(*) FROM messages WHERE conv_id = ?1",
            [&conv],
            |r| r.get(0),
        )?)
    })
    .await
}

pub async fn messages_page(
    db: &SqliteDb,
    conv: String,
    before: Option<i64>,
    limit: i64,
) -> StoreResult<(i64, Vec<MessageRow>)> {
    db.read(move |conn| {
        let total: i64 = conn.query_row(
            "SELECT count(*) FROM messages WHERE conv_id = ?1",
            [&conv],
            |r| r.get(0),
        )?;
        // (timestamp, seq) of the cursor: timestamps never decrease in seq order, so the index on
        // (conv_id, timestamp) serves the page.
        let cursor: Option<(i64, i64)> = match before {
            Some(seq) => conn
                .query_row(
                    "SELECT timestamp, seq FROM messages WHERE seq = ?1",
                    [seq],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?,
            None => None,
        };
        let (ts, seq) = page_start(before, cursor);
        let mut stmt = conn.prepare_cached(
            "SELECT seq, msg_id, conv_id, from_peer, data, timestamp, kind, transient, recipients, bin
             FROM messages WHERE conv_id = ?1 AND timestamp <= ?2 AND (timestamp < ?2 OR seq < ?3)
             ORDER BY timestamp DESC, seq DESC LIMIT ?4",
        )?;
        let rows = stmt
            .query_map(params![conv, ts, seq, limit], |r| {
                Ok(MessageRow {
                    seq: r.get(0)?,
                    msg_id: r.get(1)?,
                    conv_id: r.get(2)?,
                    from: r.get(3)?,
                    data: r.get(4)?,
                    timestamp: r.get(5)?,
                    kind: MessageKind::parse(&r.get::<_, String>(6)?),
                    transient: r.get(7)?,
                    recipients: recipients_from_column(r.get(8)?),
                    binary: r.get(9)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok((total, rows))
    })
    .await
}

pub async fn per_minute(db: &SqliteDb, since: i64) -> StoreResult<Vec<(i64, i64)>> {
    db.read(move |conn| {
        // Timestamps never decrease in seq order: find the first message since `since` by bisecting on seq
        // (primary-key lookups), then count per minute over that tail only.
        let (lo, hi): (Option<i64>, Option<i64>) =
            conn.query_row("SELECT min(seq), max(seq) FROM messages", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let (Some(mut lo), Some(hi)) = (lo, hi) else {
            return Ok(Vec::new());
        };
        let mut hi = hi + 1;
        let mut stmt = conn.prepare_cached(
            "SELECT timestamp FROM messages WHERE seq >= ?1 ORDER BY seq LIMIT 1",
        )?;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let ts: Option<i64> = stmt.query_row([mid], |r| r.get(0)).optional()?;
            match ts {
                Some(ts) if ts < since => lo = mid + 1,
                _ => hi = mid,
            }
        }
        let mut stmt = conn.prepare_cached(
            "SELECT timestamp / 60000 AS minute, count(*) FROM messages
             WHERE seq >= ?1 AND timestamp >= ?2 GROUP BY minute ORDER BY minute",
        )?;
        let rows = stmt
            .query_map(params![lo, since], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    })
    .await
}
