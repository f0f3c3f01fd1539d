//! Stored messages on PostgreSQL: sends (one transaction each, acknowledged after its commit), the
//! inspector's reads and the 1.1 history API, under the rules of [`crate::store::messages`].

use deadpool_postgres::GenericClient;
use serde_json::Value;

use crate::protocol::records::MessageRecord;
use crate::store::messages::{
    bound, check_target, history_record, mentions, new_message_id, stored_message,
    user_conversation_key, Deletion, HistoryQuery, HistoryScope, LiveBroadcast, MessageKind,
    MessageRef, NewMessage, Patched, ReceiptQuery, Rewrite, Stored, StoredMessage,
};
use crate::store::objects::ConversationKind;
use crate::store::postgres::shared::{conversation_in, seq_of};
use crate::store::postgres::{strings, Params, Pg};
use crate::store::temp_convs::is_temp;
use crate::store::StoreResult;

/// Held by every broadcast until its commit: broadcasts commit in `seq` order, so a client's broadcast
/// cursor never passes one that commits later.
const BROADCAST_LOCK: i64 = 0x6c63_6263_6173;

/// One statement stores a message. It first locks the conversation's row (`FOR NO KEY UPDATE`, the lock its
/// `lm` update takes anyway), checking that it still exists and, for a client's send, that the sender is still
/// in `m` (`$18`, `$19`; review part 3, L-d: checked only by a read before, a member removed or a conversation
/// deleted in between could still be written to). Then it takes the conversation's clock row (the message's
/// timestamp: now, or later than the conversation's last one), inserts the message and moves `lm` forward. Both
/// rows stay locked until the commit, always in that order, so the next send to the conversation, from any
/// instance, waits, sees the row as committed, and gets a strictly later timestamp (at least a millisecond:
/// unread counts and offline delivery compare `timestamp > position`) and a higher seq. When the check fails,
/// nothing is written and no row comes back.
const INSERT: &str = "WITH conv AS (
        SELECT 1 FROM objects o
        WHERE $18 AND o.class = '_Conversation' AND o.id = $2
          AND (NOT $19 OR (o.data -> 'm') @> jsonb_build_array($3::text))
        FOR NO KEY UPDATE
    ), clock AS (
        INSERT INTO conversation_clocks (conv_id, last_ts)
        SELECT $2, $5 WHERE NOT $18 OR EXISTS (SELECT 1 FROM conv)
        ON CONFLICT (conv_id) DO UPDATE SET last_ts = GREATEST(conversation_clocks.last_ts + 1, EXCLUDED.last_ts)
        RETURNING last_ts
    ), msg AS (
        INSERT INTO messages (msg_id, conv_id, from_peer, data, timestamp, kind, transient, is_room,
            recipients, push, push_field, valid_till, from_ip, bin, mentions, receipt)
        SELECT $1, $2, $3, $4, clock.last_ts, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $17 FROM clock
        RETURNING seq, timestamp
    ), iso AS (
        SELECT to_char(timestamp 'epoch' + (timestamp / 1000) * interval '1 second', 'YYYY-MM-DD\"T\"HH24:MI:SS')
            || '.' || lpad((timestamp % 1000)::text, 3, '0') || 'Z' AS iso
        FROM msg
    ), touched AS (
        UPDATE objects SET data = jsonb_set(data, '{lm}', jsonb_build_object('__type', 'Date', 'iso', iso.iso))
        FROM iso
        WHERE $16 AND class = '_Conversation' AND id = $2
          AND (data #>> '{lm,iso}' IS NULL OR data #>> '{lm,iso}' < iso.iso COLLATE \"C\")
        RETURNING 1
    )
    SELECT seq, timestamp FROM msg";

/// Stores a message. A message to the members is one statement (atomic on its own); one to chosen clients
/// also writes its per-client history keys, and a broadcast takes the broadcast lock, each in a transaction.
pub async fn store(pg: &Pg, msg: NewMessage, member: bool) -> StoreResult<Stored> {
    let mut client = pg.client().await?;
    if msg.kind == MessageKind::Normal {
        let kind = if is_temp(&msg.conv_id) {
            let now = chrono::Utc::now().timestamp_millis();
            crate::store::temp_convs::postgres::live_members(&client, &msg.conv_id, now)
                .await?
                .map(ConversationKind::temporary)
        } else {
            conversation_in(&client, &msg.conv_id, false).await?
        };
        let guard = match (is_temp(&msg.conv_id), member) {
            (true, _) => Guard::None,
            (false, true) => Guard::Member,
            (false, false) => Guard::Exists,
        };
        let conv = check_target(kind, &msg, member)?;
        let (msg_id, seq, ts) = insert(&client, &msg, conv.transient, guard).await?;
        return Ok(stored_message(msg, conv, seq, msg_id, ts));
    }
    let tx = client.transaction().await?;
    let conv = check_target(
        conversation_in(&tx, &msg.conv_id, false).await?,
        &msg,
        member,
    )?;
    if msg.kind == MessageKind::Broadcast {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&BROADCAST_LOCK])
            .await?;
    }
    let guard = if member { Guard::Member } else { Guard::Exists };
    let (msg_id, seq, ts) = insert(&tx, &msg, conv.transient, guard).await?;
    if msg.kind == MessageKind::ToClients {
        let keys: Vec<String> = msg
            .recipients
            .iter()
            .map(|c| user_conversation_key(&msg.conv_id, c))
            .collect();
        tx.execute(
            "INSERT INTO message_recipients (user_conv, msg_seq, client_id)
             SELECT k, $2, c FROM unnest($1::text[], $3::text[]) AS r(k, c) ON CONFLICT DO NOTHING",
            &[&keys, &seq, &msg.recipients],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(stored_message(msg, conv, seq, msg_id, ts))
}

/// What the insert itself checks again, under a share lock on the conversation's row: that it still exists
/// and, for a client's send, that the sender is still in `m` (review part 3, L-d: checked only by the read
/// before, a member removed, or a conversation deleted, in between could still be written to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// A temporary conversation: no `_Conversation` row (its read is the check).
    None,
    Exists,
    Member,
}

/// Runs [`INSERT`] for `msg` (in a conversation that is a chat room when `room`): its id, seq and timestamp;
/// [`StoreError::InvalidMessagingTarget`](crate::store::StoreError) when the guard fails.
async fn insert(
    c: &impl GenericClient,
    msg: &NewMessage,
    room: bool,
    guard: Guard,
) -> StoreResult<(String, i64, i64)> {
    let msg_id = new_message_id();
    let now = chrono::Utc::now().timestamp_millis();
    let recipients = (!msg.recipients.is_empty()).then(|| Value::from(msg.recipients.clone()));
    let stmt = c.prepare_cached(INSERT).await?;
    let row = c
        .query_opt(
            &stmt,
            &[
                &msg_id,
                &msg.conv_id,
                &msg.from,
                &msg.data,
                &now,
                &msg.kind.as_str(),
                &msg.transient,
                &room,
                &recipients,
                &msg.push,
                &msg.push_field,
                &msg.valid_till,
                &msg.from_ip,
                &msg.binary,
                &mentions(&msg.mention_pids, msg.mention_all),
                &(msg.kind != MessageKind::Broadcast),
                &msg.receipt,
                &(guard != Guard::None),
                &(guard == Guard::Member),
            ],
        )
        .await?
        .ok_or(crate::store::StoreError::InvalidMessagingTarget)?;
    Ok((msg_id, row.get(0), row.get(1)))
}

const STORED_COLUMNS: &str =
    "msg_id, conv_id, from_peer, data, timestamp, kind, transient, recipients, push, push_field, valid_till";

fn stored_of(r: &tokio_postgres::Row) -> StoredMessage {
    StoredMessage {
        msg_id: r.get(0),
        conv_id: r.get(1),
        from: r.get(2),
        data: r.get(3),
        timestamp: r.get(4),
        kind: MessageKind::parse(r.get(5)),
        transient: r.get(6),
        recipients: strings(r.get(7)),
        push: r.get(8),
        push_field: r.get(9),
        valid_till: r.get(10),
    }
}

pub fn stored(pg: &Pg, conv_id: Option<&str>) -> StoreResult<Vec<StoredMessage>> {
    let conv_id = conv_id.map(str::to_owned);
    pg.blocking(move |c| {
        Box::pin(async move {
            let rows = match conv_id {
                Some(conv) => {
                    c.query(
                        &format!(
                            "SELECT {STORED_COLUMNS} FROM messages WHERE conv_id = $1 ORDER BY seq"
                        ),
                        &[&conv],
                    )
                    .await?
                }
                None => {
                    c.query(
                        &format!("SELECT {STORED_COLUMNS} FROM messages ORDER BY seq"),
                        &[],
                    )
                    .await?
                }
            };
            Ok(rows.iter().map(stored_of).collect())
        })
    })
}

pub async fn history(pg: &Pg, q: HistoryQuery) -> StoreResult<Vec<MessageRecord>> {
    let client = pg.client().await?;
    let c = &client;
    // Newest-first scans start below the start point and stop above the stop point; reversed the other way.
    let start = bound(
        seq_of(c, q.start_msgid.as_deref()).await?,
        q.start_ts,
        q.include_start,
        !q.reversed,
    );
    let stop = bound(
        seq_of(c, q.stop_msgid.as_deref()).await?,
        q.stop_ts,
        q.include_stop,
        q.reversed,
    );
    let (upper, lower) = if q.reversed {
        (stop, start)
    } else {
        (start, stop)
    };
    let (upper_ts, upper_seq) = upper.unwrap_or((i64::MAX, i64::MAX));
    let (lower_ts, lower_seq) = lower.unwrap_or((i64::MIN, i64::MIN));
    let order = if q.reversed { "ASC" } else { "DESC" };
    let mut p = Params::default();
    let (ut, us, lt, ls) = (
        p.push(upper_ts),
        p.push(upper_seq),
        p.push(lower_ts),
        p.push(lower_seq),
    );
    let range = format!(
        "(m.timestamp < {ut} OR (m.timestamp = {ut} AND m.seq <= {us})) AND (m.timestamp > {lt} OR (m.timestamp = {lt} AND m.seq >= {ls}))"
    );
    let scope = match &q.scope {
        HistoryScope::ConversationFor { conv, client } => {
            let (c, k) = (
                p.push(conv.clone()),
                p.push(user_conversation_key(conv, client)),
            );
            format!(" AND (m.conv_id = {c} AND m.kind = 'normal' OR m.seq IN (SELECT msg_seq FROM message_recipients WHERE user_conv = {k}))")
        }
        HistoryScope::Conversation(conv) => {
            let c = p.push(conv.clone());
            format!(" AND (m.conv_id = {c} OR m.seq IN (SELECT msg_seq FROM message_recipients WHERE user_conv = {c}))")
        }
        HistoryScope::From(from) => format!(" AND m.from_peer = {}", p.push(from.clone())),
        HistoryScope::All => String::new(),
    };
    let limit = p.push(q.limit as i64);
    let sql = format!(
        "SELECT m.timestamp, m.conv_id, m.data, m.from_peer, m.msg_id, m.is_room, m.from_ip, m.bin, m.mentions, m.patched_at
         FROM messages m WHERE m.kind != 'broadcast' AND NOT m.transient AND {range}{scope}
         ORDER BY m.timestamp {order}, m.seq {order} LIMIT {limit}"
    );
    let stmt = c.prepare_cached(&sql).await?;
    let rows = c.query(&stmt, &p.refs()).await?;
    Ok(rows
        .iter()
        .map(|r| MessageRecord {
            patch_timestamp: r.get(9),
            ..history_record(
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
                r.get(8),
            )
        })
        .collect())
}

fn message_ref(r: &tokio_postgres::Row) -> MessageRef {
    MessageRef {
        msg_id: r.get(0),
        conv_id: r.get(1),
        from: r.get(2),
        timestamp: r.get(3),
    }
}

pub async fn find(pg: &Pg, msg_id: String) -> StoreResult<Option<MessageRef>> {
    let c = pg.client().await?;
    let stmt = c
        .prepare_cached(
            "SELECT msg_id, conv_id, from_peer, timestamp FROM messages WHERE msg_id = $1 AND kind = 'normal'",
        )
        .await?;
    Ok(c.query_opt(&stmt, &[&msg_id])
        .await?
        .as_ref()
        .map(message_ref))
}

pub async fn receipt_requests(pg: &Pg, q: ReceiptQuery) -> StoreResult<Vec<MessageRef>> {
    let c = pg.client().await?;
    let order = if q.newest_first { "DESC" } else { "ASC" };
    let stmt = c
        .prepare_cached(&format!(
            "SELECT msg_id, conv_id, from_peer, timestamp FROM messages
             WHERE conv_id = $1 AND timestamp >= $2 AND timestamp <= $3 AND receipt AND kind = 'normal'
               AND from_peer != $4 AND ($5::text IS NULL OR msg_id = $5)
             ORDER BY timestamp {order}, seq {order} LIMIT $6"
        ))
        .await?;
    let rows = c
        .query(
            &stmt,
            &[
                &q.conv_id,
                &q.from_ts,
                &q.to_ts,
                &q.reader,
                &q.msg_id,
                &(q.limit as i64),
            ],
        )
        .await?;
    Ok(rows.iter().map(message_ref).collect())
}

pub async fn rewrite(pg: &Pg, rewrite: Rewrite) -> StoreResult<bool> {
    let c = pg.client().await?;
    let stmt = c
        .prepare_cached(
            "UPDATE messages SET data = $2, bin = $3, mentions = $4, patched_at = $5
             WHERE msg_id = $1 AND kind = 'normal' AND NOT (data = $2 AND bin = $3)",
        )
        .await?;
    let changed = c
        .execute(
            &stmt,
            &[
                &rewrite.msg_id,
                &rewrite.data,
                &rewrite.binary,
                &mentions(&rewrite.mention_pids, rewrite.mention_all),
                &rewrite.at,
            ],
        )
        .await?;
    Ok(changed > 0)
}

pub async fn patched_since(
    pg: &Pg,
    client: String,
    since: i64,
    limit: usize,
) -> StoreResult<Vec<Patched>> {
    let c = pg.client().await?;
    let stmt = c
        .prepare_cached(
            "SELECT m.msg_id, m.conv_id, m.from_peer, m.timestamp, m.data, m.bin, m.mentions, m.patched_at
             FROM messages m
             WHERE m.patched_at > $2 AND m.kind = 'normal' AND m.from_peer != $1
               AND EXISTS (SELECT 1 FROM objects o
                           WHERE o.class = '_Conversation' AND o.id = m.conv_id
                             AND (o.data -> 'm') @> jsonb_build_array($1::text))
             ORDER BY m.patched_at, m.seq LIMIT $3",
        )
        .await?;
    let rows = c.query(&stmt, &[&client, &since, &(limit as i64)]).await?;
    Ok(rows
        .iter()
        .map(|r| Patched::new(message_ref(r), r.get(4), r.get(5), r.get(6), r.get(7)))
        .collect())
}

pub async fn delete(pg: &Pg, what: Deletion) -> StoreResult<bool> {
    let mut c = pg.client().await?;
    let tx = c.transaction().await?;
    let found = match &what {
        Deletion::Message {
            conv_id,
            msg_id,
            timestamp,
        } => {
            tx.query_opt(
                "DELETE FROM messages WHERE msg_id = $1 AND conv_id = $2 AND timestamp = $3
                   AND kind != 'broadcast' RETURNING seq, msg_id, conv_id, recipients",
                &[msg_id, conv_id, timestamp],
            )
            .await?
        }
        Deletion::Broadcast { msg_id } => {
            tx.query_opt(
                "DELETE FROM messages WHERE msg_id = $1 AND kind = 'broadcast'
                 RETURNING seq, msg_id, conv_id, recipients",
                &[msg_id],
            )
            .await?
        }
    };
    let Some(row) = found else {
        return Ok(false);
    };
    let seq: i64 = row.get(0);
    let msg_id: String = row.get(1);
    let conv_id: String = row.get(2);
    let keys: Vec<String> = strings(row.get(3))
        .iter()
        .map(|client| user_conversation_key(&conv_id, client))
        .collect();
    tx.execute(
        "DELETE FROM message_recipients WHERE user_conv = ANY($1) AND msg_seq = $2",
        &[&keys, &seq],
    )
    .await?;
    tx.execute("DELETE FROM message_meta WHERE msg_id = $1", &[&msg_id])
        .await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn live_broadcasts(
    pg: &Pg,
    conv_id: Option<String>,
    now: i64,
    skip: i64,
    limit: i64,
) -> StoreResult<Vec<LiveBroadcast>> {
    let c = pg.client().await?;
    let stmt = c
        .prepare_cached(
            "SELECT msg_id, conv_id, from_peer, data, timestamp, valid_till FROM messages
             WHERE kind = 'broadcast' AND valid_till > $1 AND ($2::text IS NULL OR conv_id = $2)
             ORDER BY seq DESC LIMIT $3 OFFSET $4",
        )
        .await?;
    Ok(c.query(&stmt, &[&now, &conv_id, &limit, &skip])
        .await?
        .iter()
        .map(|r| LiveBroadcast {
            msg_id: r.get(0),
            conv_id: r.get(1),
            from: r.get(2),
            data: r.get(3),
            timestamp: r.get(4),
            valid_till: r.get(5),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    /// L-d: membership was read before the insert and not by it, so a member removed (or a conversation
    /// deleted) in between could still be written to. The insert's own guard refuses both. Needs the cluster
    /// at `LEANCLOUD_TEST_POSTGRES` (`scripts/test.sh` starts one).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn l_d_the_insert_itself_refuses_a_sender_outside_the_conversation_and_a_deleted_one() {
        let url = std::env::var("LEANCLOUD_TEST_POSTGRES").expect(
            "LEANCLOUD_TEST_POSTGRES names a PostgreSQL cluster (scripts/test.sh starts one)",
        );
        let pg = Pg::connect(&url, None).await.expect("connects");
        let client = pg.client().await.expect("a connection");
        let cid = format!("ld{}", hex::encode(rand::random::<[u8; 8]>()));
        client
            .execute(
                "INSERT INTO objects (class, id, data, acl, created_at, updated_at)
                 VALUES ('_Conversation', $1, '{\"m\": [\"alice\"]}'::jsonb, NULL, 0, 0)",
                &[&cid],
            )
            .await
            .expect("conversation");
        let from = |peer: &str| NewMessage::to_conversation(cid.clone(), peer.into(), "hi".into());
        let refused = insert(&client, &from("mallory"), false, Guard::Member).await;
        assert!(
            matches!(refused, Err(StoreError::InvalidMessagingTarget)),
            "{refused:?}"
        );
        insert(&client, &from("alice"), false, Guard::Member)
            .await
            .expect("a member's message is stored");
        // The app's backend may send as anyone, into a conversation that exists.
        insert(&client, &from("backend"), false, Guard::Exists)
            .await
            .expect("stored");
        client
            .execute(
                "DELETE FROM objects WHERE class = '_Conversation' AND id = $1",
                &[&cid],
            )
            .await
            .expect("deleted");
        let gone = insert(&client, &from("alice"), false, Guard::Exists).await;
        assert!(
            matches!(gone, Err(StoreError::InvalidMessagingTarget)),
            "{gone:?}"
        );
        let stored: i64 = client
            .query_one("SELECT count(*) FROM messages WHERE conv_id = $1", &[&cid])
            .await
            .expect("count")
            .get(0);
        assert_eq!(2, stored);
    }
}
