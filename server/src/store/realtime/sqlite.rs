//! The realtime gateway's per-client positions on SQLite (see [`crate::store::realtime`]): read and delivery
//! positions, unread counts, offline delivery and the broadcast cursor.

use rusqlite::{params, Connection, OptionalExtension, Row as SqlRow};

use crate::store::messages::user_conversation_key;
use crate::store::realtime::{LastMessage, Pending, Position, Positions, Unread};
use crate::store::sqlite::SqliteDb;
use crate::store::StoreResult;

fn last_from_row(r: &SqlRow<'_>) -> rusqlite::Result<LastMessage> {
    Ok(LastMessage {
        msg_id: r.get(0)?,
        from: r.get(1)?,
        timestamp: r.get(2)?,
        data: r.get(3)?,
        binary: r.get(4)?,
    })
}

/// Conversations (not chat rooms) that have `client` in `m`.
fn member_conversations(conn: &Connection, client: &str) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.id FROM conversation_members cm JOIN objects o ON o.seq = cm.conv_seq
         WHERE cm.client = ?1 AND o.class = '_Conversation'
           AND json_type(o.data, '$.tr') IS NOT 'true'
           AND EXISTS (SELECT 1 FROM json_each(o.data, '$.m') j WHERE j.value = ?1)",
    )?;
    let ids = stmt
        .query_map([client], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(ids)
}

fn position(conn: &Connection, client: &str, conv: &str) -> StoreResult<(i64, i64)> {
    Ok(conn
        .prepare_cached(
            "SELECT read_ts, ack_ts FROM client_positions WHERE client_id = ?1 AND conv_id = ?2",
        )?
        .query_row([client, conv], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, 0)))
}

pub async fn unread(db: &SqliteDb, client: String) -> StoreResult<Vec<Unread>> {
    db.read(move |conn| {
        let mut out = Vec::new();
        let mut count_normal = conn.prepare_cached(
            "SELECT COUNT(*), COALESCE(MAX(mentions IS NOT NULL AND (json_extract(mentions, '$.all') = 1
                 OR EXISTS (SELECT 1 FROM json_each(mentions, '$.pids') j WHERE j.value = ?2))), 0)
             FROM messages WHERE conv_id = ?1 AND kind = 'normal' AND transient = 0
               AND from_peer != ?2 AND timestamp > ?3",
        )?;
        let mut last_normal = conn.prepare_cached(
            "SELECT msg_id, from_peer, timestamp, data, bin FROM messages
             WHERE conv_id = ?1 AND kind = 'normal' AND transient = 0 ORDER BY seq DESC LIMIT 1",
        )?;
        for conv in member_conversations(conn, &client)? {
            let (read_ts, _) = position(conn, &client, &conv)?;
            let (count, mentioned): (i64, bool) =
                count_normal.query_row(params![conv, client, read_ts], |r| Ok((r.get(0)?, r.get(1)?)))?;
            if count > 0 {
                let last = last_normal.query_row([&conv], last_from_row).optional()?;
                out.push(Unread { conv_id: conv, count, last, mentioned });
            }
        }
        // Messages of system conversations sent to this client alone (`to_peers`).
        let mut per_user = conn.prepare_cached(
            "SELECT m.conv_id, COUNT(*), MAX(m.seq) FROM message_recipients r JOIN messages m ON m.seq = r.msg_seq
             WHERE r.client_id = ?1 AND m.transient = 0
               AND m.timestamp > COALESCE((SELECT read_ts FROM client_positions p WHERE p.client_id = ?1 AND p.conv_id = m.conv_id), 0)
             GROUP BY m.conv_id",
        )?;
        let rows = per_user
            .query_map([&client], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut by_seq = conn.prepare_cached(
            "SELECT msg_id, from_peer, timestamp, data, bin FROM messages WHERE seq = ?1",
        )?;
        for (conv, count, seq) in rows {
            let last = by_seq.query_row([seq], last_from_row).optional()?;
            match out.iter_mut().find(|u| u.conv_id == conv) {
                Some(u) => u.count += count,
                None => out.push(Unread { conv_id: conv, count, last, mentioned: false }),
            }
        }
        Ok(out)
    })
    .await
}

pub async fn last_messages(
    db: &SqliteDb,
    convs: Vec<String>,
) -> StoreResult<Vec<(String, LastMessage)>> {
    db.read(move |conn| {
        let mut last_normal = conn.prepare_cached(
            "SELECT msg_id, from_peer, timestamp, data, bin FROM messages
             WHERE conv_id = ?1 AND kind = 'normal' AND transient = 0 ORDER BY seq DESC LIMIT 1",
        )?;
        let mut out = Vec::new();
        for conv in convs {
            if let Some(last) = last_normal.query_row([&conv], last_from_row).optional()? {
                out.push((conv, last));
            }
        }
        Ok(out)
    })
    .await
}

pub async fn undelivered(db: &SqliteDb, client: String, limit: usize) -> StoreResult<Vec<Pending>> {
    db.read(move |conn| {
        let mut out = Vec::new();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, msg_id, conv_id, from_peer, timestamp, data, bin FROM messages
             WHERE (conv_id = ?1 AND kind = 'normal' OR seq IN (SELECT msg_seq FROM message_recipients WHERE user_conv = ?4))
               AND transient = 0 AND from_peer != ?2 AND timestamp > ?3
             ORDER BY seq LIMIT ?5",
        )?;
        for conv in member_conversations(conn, &client)? {
            let (_, ack_ts) = position(conn, &client, &conv)?;
            let key = user_conversation_key(&conv, &client);
            let rows = stmt
                .query_map(params![conv, client, ack_ts, key, limit as i64], pending_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            out.extend(rows);
        }
        out.sort_by_key(|p| p.seq);
        Ok(out)
    })
    .await
}

fn pending_from_row(r: &SqlRow<'_>) -> rusqlite::Result<Pending> {
    Ok(Pending {
        seq: r.get(0)?,
        msg_id: r.get(1)?,
        conv_id: r.get(2)?,
        from: r.get(3)?,
        timestamp: r.get(4)?,
        data: r.get(5)?,
        binary: r.get(6)?,
    })
}

pub async fn pending_broadcasts(
    db: &SqliteDb,
    client: String,
    now: i64,
) -> StoreResult<(Vec<Pending>, i64)> {
    db.read(move |conn| {
        let cursor: i64 = conn
            .prepare_cached("SELECT seq FROM client_broadcasts WHERE client_id = ?1")?
            .query_row([&client], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let rows = conn
            .prepare_cached(
                "SELECT seq, msg_id, conv_id, from_peer, timestamp, data, bin FROM messages
                 WHERE kind = 'broadcast' AND seq > ?1 AND valid_till > ?2 ORDER BY seq",
            )?
            .query_map(params![cursor, now], pending_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let newest: i64 = conn
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE kind = 'broadcast'")?
            .query_row([], |r| r.get(0))?;
        Ok((rows, newest.max(cursor)))
    })
    .await
}

pub async fn set_broadcast_cursor(db: &SqliteDb, client: String, seq: i64) -> StoreResult<()> {
    db.write(move |tx| {
        tx.conn()
            .prepare_cached(
                "INSERT INTO client_broadcasts (client_id, seq) VALUES (?1, ?2)
                 ON CONFLICT (client_id) DO UPDATE SET seq = MAX(seq, excluded.seq)",
            )?
            .execute(params![client, seq])?;
        Ok(())
    })
    .await
}

pub async fn advance(
    db: &SqliteDb,
    client: String,
    which: Position,
    marks: Vec<(String, i64)>,
) -> StoreResult<()> {
    db.write(move |tx| {
        let sql = match which {
            Position::Read => {
                "INSERT INTO client_positions (client_id, conv_id, read_ts, ack_ts) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (client_id, conv_id) DO UPDATE SET read_ts = MAX(read_ts, excluded.read_ts), ack_ts = MAX(ack_ts, excluded.ack_ts)"
            }
            Position::Delivered => {
                "INSERT INTO client_positions (client_id, conv_id, read_ts, ack_ts) VALUES (?1, ?2, 0, ?3)
                 ON CONFLICT (client_id, conv_id) DO UPDATE SET ack_ts = MAX(ack_ts, excluded.ack_ts)"
            }
        };
        let mut stmt = tx.conn().prepare_cached(sql)?;
        for (conv, ts) in marks {
            stmt.execute(params![client, conv, ts])?;
        }
        Ok(())
    })
    .await
}

pub async fn positions_of(
    db: &SqliteDb,
    conv: String,
    clients: Vec<String>,
) -> StoreResult<Vec<Positions>> {
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT read_ts, ack_ts FROM client_positions WHERE client_id = ?1 AND conv_id = ?2",
        )?;
        let mut out = Vec::new();
        for client in clients {
            let found = stmt
                .query_row(params![client, conv], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if let Some((read_ts, ack_ts)) = found {
                out.push(Positions {
                    client,
                    read_ts,
                    ack_ts,
                });
            }
        }
        Ok(out)
    })
    .await
}
