//! The operator console's queries on PostgreSQL (see [`crate::store::operator`]).

use serde_json::{Map, Value};

use crate::store::messages::MessageKind;
use crate::store::operator::{page_start, ConversationRow, KindFilter, MessageRow};
use crate::store::postgres::strings;
use crate::store::postgres::Pg;
use crate::store::StoreResult;

pub async fn search_conversations(
    pg: &Pg,
    q: String,
    kind: KindFilter,
    skip: i64,
    limit: i64,
) -> StoreResult<(i64, Vec<ConversationRow>)> {
    // As on SQLite: `true` or 1 (and their strings) count as set.
    let sys = "COALESCE(data ->> 'sys', '0') IN ('1', 'true')";
    let tr = "COALESCE(data ->> 'tr', '0') IN ('1', 'true')";
    let kind = match kind {
        KindFilter::All => "TRUE".to_string(),
        KindFilter::System => sys.to_string(),
        KindFilter::Transient => format!("{tr} AND NOT ({sys})"),
        KindFilter::Normal => format!("NOT ({sys}) AND NOT ({tr})"),
    };
    let filter = format!(
        "class = '_Conversation' AND ({kind}) AND ($1 = '' OR strpos(id, $1) > 0
           OR strpos(lower(COALESCE(data ->> 'name', '')), lower($1)) > 0
           OR (data -> 'm') @> jsonb_build_array($1::text))"
    );
    let client = pg.client().await?;
    let count: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM objects WHERE {filter}"),
            &[&q],
        )
        .await?
        .get(0);
    let rows = client
        .query(
            &format!(
                "SELECT id, data, created_at, updated_at FROM objects WHERE {filter}
                 ORDER BY seq DESC LIMIT $2 OFFSET $3"
            ),
            &[&q, &limit, &skip],
        )
        .await?;
    let rows = rows
        .iter()
        .map(|r| ConversationRow {
            id: r.get(0),
            data: match r.get::<_, Value>(1) {
                Value::Object(m) => m,
                _ => Map::new(),
            },
            created_at: r.get(2),
            updated_at: r.get(3),
        })
        .collect();
    Ok((count, rows))
}

pub async fn message_count(pg: &Pg, conv: String) -> StoreResult<i64> {
    let client = pg.client().await?;
    Ok(client
        .query_one("SELECT count(*) FROM messages WHERE conv_id = $1", &[&conv])
        .await?
        .get(0))
}

pub async fn messages_page(
    pg: &Pg,
    conv: String,
    before: Option<i64>,
    limit: i64,
) -> StoreResult<(i64, Vec<MessageRow>)> {
    let client = pg.client().await?;
    let total: i64 = client
        .query_one("SELECT count(*) FROM messages WHERE conv_id = $1", &[&conv])
        .await?
        .get(0);
    let cursor = match before {
        Some(seq) => client
            .query_opt(
                "SELECT timestamp, seq FROM messages WHERE seq = $1",
                &[&seq],
            )
            .await?
            .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1))),
        None => None,
    };
    let (ts, seq) = page_start(before, cursor);
    let rows = client
        .query(
            "SELECT seq, msg_id, conv_id, from_peer, data, timestamp, kind, transient, recipients, bin
             FROM messages WHERE conv_id = $1 AND timestamp <= $2 AND (timestamp < $2 OR seq < $3)
             ORDER BY timestamp DESC, seq DESC LIMIT $4",
            &[&conv, &ts, &seq, &limit],
        )
        .await?;
    let rows = rows
        .iter()
        .map(|r| MessageRow {
            seq: r.get(0),
            msg_id: r.get(1),
            conv_id: r.get(2),
            from: r.get(3),
            data: r.get(4),
            timestamp: r.get(5),
            kind: MessageKind::parse(r.get(6)),
            transient: r.get(7),
            recipients: strings(r.get(8)),
            binary: r.get(9),
        })
        .collect();
    Ok((total, rows))
}

/// Messages per minute since `since` (ms), oldest minute first; the timestamp index finds the start.
pub async fn per_minute(pg: &Pg, since: i64) -> StoreResult<Vec<(i64, i64)>> {
    let client = pg.client().await?;
    let rows = client
        .query(
            "SELECT timestamp / 60000 AS minute, count(*) FROM messages
             WHERE timestamp >= $1 GROUP BY minute ORDER BY minute",
            &[&since],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
