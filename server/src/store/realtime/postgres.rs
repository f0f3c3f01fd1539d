//! The realtime gateway's per-client positions on PostgreSQL (see [`crate::store::realtime`]): shared by
//! every instance, so a client's unread counts and offline delivery are the same whichever instance it
//! logs in to.

use deadpool_postgres::GenericClient;

use crate::store::messages::user_conversation_key;
use crate::store::postgres::Pg;
use crate::store::realtime::{LastMessage, Pending, Position, Positions, Unread};
use crate::store::StoreResult;

/// Conversations (not chat rooms) with `client` in `m`, each with the client's (read, ack) positions.
async fn member_conversations(
    c: &impl GenericClient,
    client: &str,
) -> StoreResult<Vec<(String, i64, i64)>> {
    let stmt = c
        .prepare_cached(
            "SELECT o.id, COALESCE(p.read_ts, 0), COALESCE(p.ack_ts, 0) FROM objects o
             LEFT JOIN client_positions p ON p.client_id = $1 AND p.conv_id = o.id
             WHERE o.class = '_Conversation' AND (o.data -> 'm') @> jsonb_build_array($1::text)
               AND (o.data -> 'tr') IS DISTINCT FROM 'true'::jsonb",
        )
        .await?;
    Ok(c.query(&stmt, &[&client])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

fn last_of(r: &tokio_postgres::Row) -> LastMessage {
    LastMessage {
        msg_id: r.get(0),
        from: r.get(1),
        timestamp: r.get(2),
        data: r.get(3),
        binary: r.get(4),
    }
}

pub async fn last_messages(pg: &Pg, convs: Vec<String>) -> StoreResult<Vec<(String, LastMessage)>> {
    let db = pg.client().await?;
    let last_normal = db
        .prepare_cached(
            "SELECT msg_id, from_peer, timestamp, data, bin FROM messages
             WHERE conv_id = $1 AND kind = 'normal' AND NOT transient ORDER BY seq DESC LIMIT 1",
        )
        .await?;
    let mut out = Vec::new();
    for conv in convs {
        if let Some(r) = db.query_opt(&last_normal, &[&conv]).await? {
            out.push((conv, last_of(&r)));
        }
    }
    Ok(out)
}

pub async fn unread(pg: &Pg, client: String) -> StoreResult<Vec<Unread>> {
    let db = pg.client().await?;
    let c = &db;
    let count_normal = c
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(bool_or(mentions IS NOT NULL AND (mentions -> 'all' = 'true'::jsonb
                 OR (mentions -> 'pids') @> jsonb_build_array($2::text))), false)
             FROM messages WHERE conv_id = $1 AND kind = 'normal' AND NOT transient
               AND from_peer != $2 AND timestamp > $3",
        )
        .await?;
    let last_normal = c
        .prepare_cached(
            "SELECT msg_id, from_peer, timestamp, data, bin FROM messages
             WHERE conv_id = $1 AND kind = 'normal' AND NOT transient ORDER BY seq DESC LIMIT 1",
        )
        .await?;
    let mut out = Vec::new();
    for (conv, read_ts, _) in member_conversations(c, &client).await? {
        let row = c
            .query_one(&count_normal, &[&conv, &client, &read_ts])
            .await?;
        let (count, mentioned): (i64, bool) = (row.get(0), row.get(1));
        if count > 0 {
            let last = c
                .query_opt(&last_normal, &[&conv])
                .await?
                .as_ref()
                .map(last_of);
            out.push(Unread {
                conv_id: conv,
                count,
                last,
                mentioned,
            });
        }
    }
    // Messages of system conversations sent to this client alone (`to_peers`).
    let per_user = c
        .prepare_cached(
            "SELECT m.conv_id, COUNT(*), MAX(m.seq) FROM message_recipients r JOIN messages m ON m.seq = r.msg_seq
             WHERE r.client_id = $1 AND NOT m.transient
               AND m.timestamp > COALESCE((SELECT read_ts FROM client_positions p WHERE p.client_id = $1 AND p.conv_id = m.conv_id), 0)
             GROUP BY m.conv_id",
        )
        .await?;
    let by_seq = c
        .prepare_cached(
            "SELECT msg_id, from_peer, timestamp, data, bin FROM messages WHERE seq = $1",
        )
        .await?;
    for r in c.query(&per_user, &[&client]).await? {
        let (conv, count, seq): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
        let last = c.query_opt(&by_seq, &[&seq]).await?.as_ref().map(last_of);
        match out.iter_mut().find(|u| u.conv_id == conv) {
            Some(u) => u.count += count,
            None => out.push(Unread {
                conv_id: conv,
                count,
                last,
                mentioned: false,
            }),
        }
    }
    Ok(out)
}

fn pending_of(r: &tokio_postgres::Row) -> Pending {
    Pending {
        seq: r.get(0),
        msg_id: r.get(1),
        conv_id: r.get(2),
        from: r.get(3),
        timestamp: r.get(4),
        data: r.get(5),
        binary: r.get(6),
    }
}

pub async fn undelivered(pg: &Pg, client: String, limit: usize) -> StoreResult<Vec<Pending>> {
    let db = pg.client().await?;
    let c = &db;
    let stmt = c
        .prepare_cached(
            "SELECT seq, msg_id, conv_id, from_peer, timestamp, data, bin FROM messages
             WHERE (conv_id = $1 AND kind = 'normal' OR seq IN (SELECT msg_seq FROM message_recipients WHERE user_conv = $4))
               AND NOT transient AND from_peer != $2 AND timestamp > $3
             ORDER BY seq LIMIT $5",
        )
        .await?;
    let mut out = Vec::new();
    for (conv, _, ack_ts) in member_conversations(c, &client).await? {
        let key = user_conversation_key(&conv, &client);
        let rows = c
            .query(&stmt, &[&conv, &client, &ack_ts, &key, &(limit as i64)])
            .await?;
        out.extend(rows.iter().map(pending_of));
    }
    out.sort_by_key(|p| p.seq);
    Ok(out)
}

pub async fn pending_broadcasts(
    pg: &Pg,
    client: String,
    now: i64,
) -> StoreResult<(Vec<Pending>, i64)> {
    let db = pg.client().await?;
    let c = &db;
    let cursor: i64 = c
        .query_opt(
            "SELECT seq FROM client_broadcasts WHERE client_id = $1",
            &[&client],
        )
        .await?
        .map_or(0, |r| r.get(0));
    let rows = c
        .query(
            "SELECT seq, msg_id, conv_id, from_peer, timestamp, data, bin FROM messages
             WHERE kind = 'broadcast' AND seq > $1 AND valid_till > $2 ORDER BY seq",
            &[&cursor, &now],
        )
        .await?;
    let newest: i64 = c
        .query_one(
            "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE kind = 'broadcast'",
            &[],
        )
        .await?
        .get(0);
    Ok((rows.iter().map(pending_of).collect(), newest.max(cursor)))
}

pub async fn set_broadcast_cursor(pg: &Pg, client: String, seq: i64) -> StoreResult<()> {
    let db = pg.client().await?;
    db.execute(
        "INSERT INTO client_broadcasts (client_id, seq) VALUES ($1, $2)
         ON CONFLICT (client_id) DO UPDATE SET seq = GREATEST(client_broadcasts.seq, EXCLUDED.seq)",
        &[&client, &seq],
    )
    .await?;
    Ok(())
}

pub async fn advance(
    pg: &Pg,
    client: String,
    which: Position,
    marks: Vec<(String, i64)>,
) -> StoreResult<()> {
    let sql = match which {
        Position::Read => {
            "INSERT INTO client_positions (client_id, conv_id, read_ts, ack_ts)
             SELECT $1, c, t, t FROM unnest($2::text[], $3::bigint[]) AS m(c, t)
             ON CONFLICT (client_id, conv_id) DO UPDATE SET
                 read_ts = GREATEST(client_positions.read_ts, EXCLUDED.read_ts),
                 ack_ts = GREATEST(client_positions.ack_ts, EXCLUDED.ack_ts)"
        }
        Position::Delivered => {
            "INSERT INTO client_positions (client_id, conv_id, read_ts, ack_ts)
             SELECT $1, c, 0, t FROM unnest($2::text[], $3::bigint[]) AS m(c, t)
             ON CONFLICT (client_id, conv_id) DO UPDATE SET
                 ack_ts = GREATEST(client_positions.ack_ts, EXCLUDED.ack_ts)"
        }
    };
    // One statement may not touch a row twice: keep each conversation's latest mark.
    let mut latest: std::collections::BTreeMap<String, i64> = Default::default();
    for (conv, ts) in marks {
        let t = latest.entry(conv).or_insert(ts);
        *t = (*t).max(ts);
    }
    let (convs, times): (Vec<String>, Vec<i64>) = latest.into_iter().unzip();
    let db = pg.client().await?;
    db.execute(sql, &[&client, &convs, &times]).await?;
    Ok(())
}

pub async fn positions_of(
    pg: &Pg,
    conv: String,
    clients: Vec<String>,
) -> StoreResult<Vec<Positions>> {
    let db = pg.client().await?;
    let stmt = db
        .prepare_cached(
            "SELECT client_id, read_ts, ack_ts FROM client_positions
             WHERE conv_id = $1 AND client_id = ANY($2::text[])",
        )
        .await?;
    let rows = db.query(&stmt, &[&conv, &clients]).await?;
    Ok(rows
        .iter()
        .map(|r| Positions {
            client: r.get(0),
            read_ts: r.get(1),
            ack_ts: r.get(2),
        })
        .collect())
}
