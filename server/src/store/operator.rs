//! The operator console's queries (`console/api.rs` serves them): conversation search, a conversation's
//! stored messages, message counts. Knows nothing of HTTP.

pub(crate) mod postgres;

use rusqlite::{params, OptionalExtension};
use serde_json::{Map, Value};

use super::db::Db;
use super::messages::{recipients_from_column, MessageKind};
use super::objects::CONVERSATION;
use super::StoreResult;

/// Which conversations a search lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindFilter {
    All,
    Normal,
    System,
    Transient,
}

/// A conversation as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationRow {
    pub id: String,
    pub data: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One stored message, whatever its kind (broadcasts, transient messages and messages to chosen clients too).
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    pub seq: i64,
    pub msg_id: String,
    pub conv_id: String,
    pub from: String,
    pub data: String,
    pub timestamp: i64,
    pub kind: MessageKind,
    pub transient: bool,
    pub recipients: Vec<String>,
    pub binary: bool,
}

/// Conversations matching `q` (part of the id, part of the name in any case, or a member id exactly; empty:
/// all) and `kind`, newest first: how many match, and the page `skip`..`skip + limit`.
pub async fn search_conversations(
    db: &Db,
    q: String,
    kind: KindFilter,
    skip: i64,
    limit: i64,
) -> StoreResult<(i64, Vec<ConversationRow>)> {
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => return postgres::search_conversations(pg, q, kind, skip, limit).await,
    };
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

/// How many messages `conv` has stored.
pub async fn message_count(db: &Db, conv: String) -> StoreResult<i64> {
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => return postgres::message_count(pg, conv).await,
    };
    db.read(move |conn| {
        Ok(conn.query_row(
            "SELECT count(*) FROM messages WHERE conv_id = ?1",
            [&conv],
            |r| r.get(0),
        )?)
    })
    .await
}

/// Where a page of [`messages_page`] starts: below the message `before` (its timestamp and seq, `cursor`, when it
/// is stored), else below `before` as a bare seq, else at the newest message.
pub(crate) fn page_start(before: Option<i64>, cursor: Option<(i64, i64)>) -> (i64, i64) {
    match (before, cursor) {
        (_, Some(c)) => c,
        (Some(seq), None) => (i64::MAX, seq),
        (None, None) => (i64::MAX, i64::MAX),
    }
}

/// `conv`'s stored messages, newest first, before the message whose `seq` is `before` (`None`: the newest):
/// how many it has in all, and up to `limit` of them.
pub async fn messages_page(
    db: &Db,
    conv: String,
    before: Option<i64>,
    limit: i64,
) -> StoreResult<(i64, Vec<MessageRow>)> {
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => return postgres::messages_page(pg, conv, before, limit).await,
    };
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

/// Messages stored per minute (`timestamp / 60000`) since `since` (ms), oldest minute first; minutes with none
/// are left out.
pub async fn per_minute(db: &Db, since: i64) -> StoreResult<Vec<(i64, i64)>> {
    let db = match db {
        Db::Sqlite(db) => db,
        Db::Postgres(pg) => return postgres::per_minute(pg, since).await,
    };
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
