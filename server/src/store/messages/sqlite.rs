//! Stored messages on SQLite: sends as jobs of the writer thread (acknowledged after the batch's commit), the
//! inspector's reads and the 1.1 history API, under the rules of [`crate::store::messages`].

use rusqlite::{params, OptionalExtension, Row as SqlRow};
use serde_json::Value;

use crate::protocol::records::MessageRecord;
use crate::store::messages::{
    bound, check_target, history_record, mentions, new_message_id, recipients_column,
    recipients_from_column, stored_message, user_conversation_key, Deletion, HistoryQuery,
    HistoryScope, LiveBroadcast, MessageKind, MessageRef, NewMessage, Patched, ReceiptQuery,
    Rewrite, Stored, StoredMessage,
};
use crate::store::objects::ConversationKind;
use crate::store::sqlite::shared::{conversation_kind, seq_of};
use crate::store::sqlite::SqliteDb;
use crate::store::temp_convs::is_temp;
use crate::store::StoreResult;

const STORED_COLUMNS: &str =
    "msg_id, conv_id, from_peer, data, timestamp, kind, transient, recipients, push, push_field, valid_till";

fn stored_from_row(r: &SqlRow<'_>) -> rusqlite::Result<StoredMessage> {
    let recipients: Option<String> = r.get(7)?;
    let push: Option<String> = r.get(8)?;
    Ok(StoredMessage {
        msg_id: r.get(0)?,
        conv_id: r.get(1)?,
        from: r.get(2)?,
        data: r.get(3)?,
        timestamp: r.get(4)?,
        kind: MessageKind::parse(&r.get::<_, String>(5)?),
        transient: r.get(6)?,
        recipients: recipients_from_column(recipients),
        push: push.and_then(|s| serde_json::from_str(&s).ok()),
        push_field: r.get(9)?,
        valid_till: r.get(10)?,
    })
}

pub async fn store(db: &SqliteDb, msg: NewMessage, member: bool) -> StoreResult<Stored> {
    let clock = db.clone();
    // Every error below comes before the first change, so no savepoint is needed.
    db.write_unguarded(move |tx| {
        let conn = tx.conn();
        let ts = clock.next_timestamp();
        let kind = if is_temp(&msg.conv_id) {
            crate::store::temp_convs::sqlite::live_members(conn, &msg.conv_id, ts)?
                .map(ConversationKind::temporary)
        } else {
            conversation_kind(conn, &msg.conv_id)?
        };
        let conv = check_target(kind, &msg, member)?;
        let msg_id = new_message_id();
        let recipients = recipients_column(&msg.recipients);
        conn.prepare_cached(
            "INSERT INTO messages (msg_id, conv_id, from_peer, data, timestamp, kind, transient, is_room, recipients, push, push_field, valid_till, from_ip, bin, mentions, receipt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?
        .execute(params![
            msg_id,
            msg.conv_id,
            msg.from,
            msg.data,
            ts,
            msg.kind.as_str(),
            msg.transient,
            conv.transient,
            recipients,
            msg.push.as_ref().map(Value::to_string),
            msg.push_field,
            msg.valid_till,
            msg.from_ip,
            msg.binary,
            mentions(&msg.mention_pids, msg.mention_all).map(|m| m.to_string()),
            msg.receipt,
        ])?;
        let seq = conn.last_insert_rowid();
        if msg.kind == MessageKind::ToClients {
            let mut stmt = conn.prepare_cached(
                "INSERT OR IGNORE INTO message_recipients (user_conv, msg_seq, client_id) VALUES (?1, ?2, ?3)",
            )?;
            for client in &msg.recipients {
                stmt.execute(params![user_conversation_key(&msg.conv_id, client), seq, client])?;
            }
        }
        if msg.kind != MessageKind::Broadcast {
            tx.touch_last_message(&msg.conv_id, ts);
        }
        Ok(stored_message(msg, conv, seq, msg_id, ts))
    })
    .await
}

pub fn stored(db: &SqliteDb, conv_id: Option<&str>) -> StoreResult<Vec<StoredMessage>> {
    db.read_blocking(|conn| {
        let rows = match conv_id {
            Some(conv) => {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {STORED_COLUMNS} FROM messages WHERE conv_id = ?1 ORDER BY seq"
                ))?;
                let rows = stmt
                    .query_map([conv], stored_from_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                rows
            }
            None => {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {STORED_COLUMNS} FROM messages ORDER BY seq"
                ))?;
                let rows = stmt
                    .query_map([], stored_from_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                rows
            }
        };
        Ok(rows)
    })
}

pub async fn history(db: &SqliteDb, q: HistoryQuery) -> StoreResult<Vec<MessageRecord>> {
    db.read(move |conn| {
        // Newest-first scans start below the start point and stop above the stop point; reversed the other way.
        let start = bound(seq_of(conn, q.start_msgid.as_deref())?, q.start_ts, q.include_start, !q.reversed);
        let stop = bound(seq_of(conn, q.stop_msgid.as_deref())?, q.stop_ts, q.include_stop, q.reversed);
        let (upper, lower) = if q.reversed { (stop, start) } else { (start, stop) };
        let (upper_ts, upper_seq) = upper.unwrap_or((i64::MAX, i64::MAX));
        let (lower_ts, lower_seq) = lower.unwrap_or((i64::MIN, i64::MIN));
        let order = if q.reversed { "ASC" } else { "DESC" };
        let range = "(m.timestamp < ?2 OR (m.timestamp = ?2 AND m.seq <= ?3)) AND (m.timestamp > ?4 OR (m.timestamp = ?4 AND m.seq >= ?5))";
        // `?7` (the per-user key) is named in every variant so that the parameter count is always 7.
        let filter = "m.kind != 'broadcast' AND m.transient = 0 AND ?7 = ?7";
        let select = "SELECT m.timestamp, m.conv_id, m.data, m.from_peer, m.msg_id, m.is_room, m.from_ip, m.bin, m.mentions, m.patched_at FROM messages m";
        let mut user_conv = String::new();
        let (sql, key) = match &q.scope {
            HistoryScope::ConversationFor { conv, client } => {
                user_conv = user_conversation_key(conv, client);
                (
                    format!(
                        "{select} WHERE {filter} AND {range} AND (m.conv_id = ?1 AND m.kind = 'normal' OR m.seq IN (SELECT msg_seq FROM message_recipients WHERE user_conv = ?7))
                         ORDER BY m.timestamp {order}, m.seq {order} LIMIT ?6"
                    ),
                    conv.clone(),
                )
            }
            HistoryScope::Conversation(conv) => (
                format!(
                    "{select} WHERE {filter} AND {range} AND (m.conv_id = ?1 OR m.seq IN (SELECT msg_seq FROM message_recipients WHERE user_conv = ?1))
                     ORDER BY m.timestamp {order}, m.seq {order} LIMIT ?6"
                ),
                conv.clone(),
            ),
            HistoryScope::From(from) => (
                format!("{select} WHERE {filter} AND {range} AND m.from_peer = ?1 ORDER BY m.timestamp {order}, m.seq {order} LIMIT ?6"),
                from.clone(),
            ),
            HistoryScope::All => (
                format!("{select} WHERE {filter} AND {range} AND ?1 = ?1 ORDER BY m.timestamp {order}, m.seq {order} LIMIT ?6"),
                String::new(),
            ),
        };
        let mut stmt = conn.prepare(&sql)?;
        let records = stmt
            .query_map(params![key, upper_ts, upper_seq, lower_ts, lower_seq, q.limit as i64, user_conv], |r| {
                let mentions: Option<String> = r.get(8)?;
                let patched_at: Option<i64> = r.get(9)?;
                Ok(MessageRecord {
                    patch_timestamp: patched_at,
                    ..history_record(
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    mentions.and_then(|m| serde_json::from_str::<Value>(&m).ok()),
                )
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(records)
    })
    .await
}

fn message_ref(r: &SqlRow<'_>) -> rusqlite::Result<MessageRef> {
    Ok(MessageRef {
        msg_id: r.get(0)?,
        conv_id: r.get(1)?,
        from: r.get(2)?,
        timestamp: r.get(3)?,
    })
}

pub async fn find(db: &SqliteDb, msg_id: String) -> StoreResult<Option<MessageRef>> {
    db.read(move |conn| {
        Ok(conn
            .prepare_cached(
                "SELECT msg_id, conv_id, from_peer, timestamp FROM messages WHERE msg_id = ?1 AND kind = 'normal'",
            )?
            .query_row([msg_id], message_ref)
            .optional()?)
    })
    .await
}

pub async fn receipt_requests(db: &SqliteDb, q: ReceiptQuery) -> StoreResult<Vec<MessageRef>> {
    db.read(move |conn| {
        let order = if q.newest_first { "DESC" } else { "ASC" };
        let rows = conn
            .prepare_cached(&format!(
                "SELECT msg_id, conv_id, from_peer, timestamp FROM messages
                 WHERE conv_id = ?1 AND timestamp >= ?2 AND timestamp <= ?3 AND receipt = 1 AND kind = 'normal'
                   AND from_peer != ?4 AND (?5 IS NULL OR msg_id = ?5)
                 ORDER BY timestamp {order}, seq {order} LIMIT ?6"
            ))?
            .query_map(
                params![q.conv_id, q.from_ts, q.to_ts, q.reader, q.msg_id, q.limit as i64],
                message_ref,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    })
    .await
}

pub async fn rewrite(db: &SqliteDb, rewrite: Rewrite) -> StoreResult<bool> {
    db.write(move |tx| {
        let changed = tx
            .conn()
            .prepare_cached(
                "UPDATE messages SET data = ?2, bin = ?3, mentions = ?4, patched_at = ?5
                 WHERE msg_id = ?1 AND kind = 'normal' AND NOT (data = ?2 AND bin = ?3)",
            )?
            .execute(params![
                rewrite.msg_id,
                rewrite.data,
                rewrite.binary,
                mentions(&rewrite.mention_pids, rewrite.mention_all).map(|m| m.to_string()),
                rewrite.at,
            ])?;
        Ok(changed > 0)
    })
    .await
}

pub async fn patched_since(
    db: &SqliteDb,
    client: String,
    since: i64,
    limit: usize,
) -> StoreResult<Vec<Patched>> {
    db.read(move |conn| {
        let rows = conn
            .prepare_cached(
                "SELECT m.msg_id, m.conv_id, m.from_peer, m.timestamp, m.data, m.bin, m.mentions, m.patched_at
                 FROM messages m
                 WHERE m.patched_at > ?2 AND m.kind = 'normal' AND m.from_peer != ?1
                   AND EXISTS (SELECT 1 FROM objects o, json_each(o.data, '$.m') j
                               WHERE o.class = '_Conversation' AND o.id = m.conv_id AND j.value = ?1)
                 ORDER BY m.patched_at, m.seq LIMIT ?3",
            )?
            .query_map(params![client, since, limit as i64], |r| {
                let mentions: Option<String> = r.get(6)?;
                Ok(Patched::new(
                    message_ref(r)?,
                    r.get(4)?,
                    r.get(5)?,
                    mentions.and_then(|m| serde_json::from_str::<Value>(&m).ok()),
                    r.get(7)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    })
    .await
}

pub async fn delete(db: &SqliteDb, what: Deletion) -> StoreResult<bool> {
    db.write(move |tx| {
        let conn = tx.conn();
        let row = |r: &SqlRow<'_>| -> rusqlite::Result<(i64, String, String, Option<String>)> {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        };
        let found = match &what {
            Deletion::Message {
                conv_id,
                msg_id,
                timestamp,
            } => conn
                .prepare_cached(
                    "SELECT seq, msg_id, conv_id, recipients FROM messages
                     WHERE msg_id = ?1 AND conv_id = ?2 AND timestamp = ?3 AND kind != 'broadcast'",
                )?
                .query_row(params![msg_id, conv_id, timestamp], row)
                .optional()?,
            Deletion::Broadcast { msg_id } => conn
                .prepare_cached(
                    "SELECT seq, msg_id, conv_id, recipients FROM messages
                     WHERE msg_id = ?1 AND kind = 'broadcast'",
                )?
                .query_row([msg_id], row)
                .optional()?,
        };
        let Some((seq, msg_id, conv_id, recipients)) = found else {
            return Ok(false);
        };
        let mut keys = conn.prepare_cached(
            "DELETE FROM message_recipients WHERE user_conv = ?1 AND msg_seq = ?2",
        )?;
        for client in recipients_from_column(recipients) {
            keys.execute(params![user_conversation_key(&conv_id, &client), seq])?;
        }
        conn.prepare_cached("DELETE FROM message_meta WHERE msg_id = ?1")?
            .execute([&msg_id])?;
        conn.prepare_cached("DELETE FROM messages WHERE seq = ?1")?
            .execute([seq])?;
        Ok(true)
    })
    .await
}

pub async fn live_broadcasts(
    db: &SqliteDb,
    conv_id: Option<String>,
    now: i64,
    skip: i64,
    limit: i64,
) -> StoreResult<Vec<LiveBroadcast>> {
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT msg_id, conv_id, from_peer, data, timestamp, valid_till FROM messages
             WHERE kind = 'broadcast' AND valid_till > ?1 AND (?2 IS NULL OR conv_id = ?2)
             ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
        )?;
        let rows = stmt.query_map(params![now, conv_id, limit, skip], |r| {
            Ok(LiveBroadcast {
                msg_id: r.get(0)?,
                conv_id: r.get(1)?,
                from: r.get(2)?,
                data: r.get(3)?,
                timestamp: r.get(4)?,
                valid_till: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
    .await
}
