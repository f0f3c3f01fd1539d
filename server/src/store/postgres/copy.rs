//! Copies a SQLite database of the server into a PostgreSQL one (`leancloud-migrate copy`, and `import --db
//! postgres://…` after its import into a SQLite file): objects, messages with their per-client history keys,
//! subscribers, read and delivery positions, broadcast cursors. Rows already in PostgreSQL are kept (objects by
//! class and id, messages by id, the rest by their keys), so copying again changes nothing. Messages keep their
//! order (they are inserted in the SQLite order); references to a message's position (history keys, broadcast
//! cursors) are carried over by the message's id.

use std::path::Path;

use rusqlite::types::Value as SqlValue;
use tokio::sync::mpsc;

use super::Pg;
use crate::store::{StoreError, StoreResult};

/// Rows per statement.
const CHUNK: usize = 2_000;

/// What a copy read, per table (rows already in PostgreSQL included).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CopyCounts {
    pub objects: u64,
    pub messages: u64,
    pub recipients: u64,
    pub subscribers: u64,
    pub positions: u64,
}

/// Reads `sql` from the SQLite file on a thread of its own, `CHUNK` rows at a time.
fn read(path: &Path, sql: &'static str) -> mpsc::Receiver<StoreResult<Vec<Vec<SqlValue>>>> {
    let (tx, rx) = mpsc::channel(2);
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let run = || -> StoreResult<()> {
            let conn = rusqlite::Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )?;
            let mut stmt = conn.prepare(sql)?;
            let columns = stmt.column_count();
            let mut rows = stmt.query([])?;
            let mut chunk = Vec::with_capacity(CHUNK);
            while let Some(row) = rows.next()? {
                chunk.push(
                    (0..columns)
                        .map(|i| row.get::<_, SqlValue>(i))
                        .collect::<Result<Vec<_>, _>>()?,
                );
                if chunk.len() == CHUNK && tx.blocking_send(Ok(std::mem::take(&mut chunk))).is_err()
                {
                    return Ok(());
                }
            }
            if !chunk.is_empty() {
                let _ = tx.blocking_send(Ok(chunk));
            }
            Ok(())
        };
        if let Err(e) = run() {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

fn text(v: &SqlValue) -> Option<String> {
    match v {
        SqlValue::Text(s) => Some(s.clone()),
        SqlValue::Integer(i) => Some(i.to_string()),
        SqlValue::Real(f) => Some(f.to_string()),
        SqlValue::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        SqlValue::Null => None,
    }
}

fn int(v: &SqlValue) -> Option<i64> {
    match v {
        SqlValue::Integer(i) => Some(*i),
        SqlValue::Real(f) => Some(*f as i64),
        SqlValue::Text(s) => s.parse().ok(),
        _ => None,
    }
}

/// Column `i` of every row of a chunk.
fn column<T>(chunk: &[Vec<SqlValue>], i: usize, f: impl Fn(&SqlValue) -> T) -> Vec<T> {
    chunk.iter().map(|row| f(&row[i])).collect()
}

/// Column `i` of every row as text (a NULL as the empty string): the key and name columns.
fn texts(chunk: &[Vec<SqlValue>], i: usize) -> Vec<String> {
    column(chunk, i, |v| text(v).unwrap_or_default())
}

/// Runs `insert` with the columns of every chunk `sql` reads; the number of rows read.
async fn copy_table(
    sqlite: &Path,
    sql: &'static str,
    mut insert: impl AsyncFnMut(&[Vec<SqlValue>]) -> StoreResult<()>,
) -> StoreResult<u64> {
    let mut rx = read(sqlite, sql);
    let mut n = 0;
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        insert(&chunk).await?;
        n += chunk.len() as u64;
    }
    Ok(n)
}

/// Copies the SQLite database at `sqlite` (which must exist) into `pg`.
pub async fn from_sqlite(sqlite: &Path, pg: &Pg) -> StoreResult<CopyCounts> {
    if !sqlite.exists() {
        return Err(StoreError::internal(format!(
            "{}: no such file",
            sqlite.display()
        )));
    }
    // The server's own start-up brings an older file's schema up to date.
    let path = sqlite.to_path_buf();
    tokio::task::spawn_blocking(move || {
        crate::store::sqlite::SqliteDb::open(&path, crate::config::Durability::Normal)
            .map(|db| db.close())
    })
    .await
    .map_err(StoreError::internal)??;
    let client = pg.client().await?;
    let c = &client;
    let mut counts = CopyCounts::default();

    copy_table(sqlite, "SELECT name FROM classes", async |rows| {
        c.execute(
            "INSERT INTO classes (name) SELECT * FROM unnest($1::text[]) ON CONFLICT DO NOTHING",
            &[&texts(rows, 0)],
        )
        .await?;
        Ok(())
    })
    .await?;
    counts.objects = copy_table(
        sqlite,
        "SELECT class, id, data, acl, created_at, updated_at, unique_key FROM objects ORDER BY seq",
        async |rows| {
            c.execute(
                "INSERT INTO objects (class, id, data, acl, created_at, updated_at, unique_key)
                 SELECT cl, id, d::jsonb, a::jsonb, ca, ua, uk
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[])
                      WITH ORDINALITY AS r(cl, id, d, a, ca, ua, uk, n)
                 ORDER BY n ON CONFLICT (class, id) DO NOTHING",
                &[
                    &texts(rows, 0),
                    &texts(rows, 1),
                    &column(rows, 2, |v| text(v).unwrap_or_else(|| "{}".into())),
                    &column(rows, 3, text),
                    &column(rows, 4, |v| int(v).unwrap_or(0)),
                    &column(rows, 5, |v| int(v).unwrap_or(0)),
                    &column(rows, 6, text),
                ],
            )
            .await?;
            Ok(())
        },
    )
    .await?;
    counts.messages = copy_table(
        sqlite,
        "SELECT msg_id, conv_id, from_peer, data, timestamp, kind, transient, is_room, recipients, push,
                push_field, valid_till, from_ip, bin, mentions FROM messages ORDER BY seq",
        async |rows| {
            let truthy = |v: &SqlValue| int(v).is_some_and(|i| i != 0);
            c.execute(
                "INSERT INTO messages (msg_id, conv_id, from_peer, data, timestamp, kind, transient, is_room,
                     recipients, push, push_field, valid_till, from_ip, bin, mentions)
                 SELECT mid, cid, fp, d, ts, k, tr, room, rc::jsonb, p::jsonb, pf, vt, ip, b, mn::jsonb
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::bool[],
                             $8::bool[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::text[],
                             $14::bool[], $15::text[])
                      WITH ORDINALITY AS r(mid, cid, fp, d, ts, k, tr, room, rc, p, pf, vt, ip, b, mn, n)
                 ORDER BY n ON CONFLICT (msg_id) DO NOTHING",
                &[
                    &texts(rows, 0),
                    &texts(rows, 1),
                    &texts(rows, 2),
                    &texts(rows, 3),
                    &column(rows, 4, |v| int(v).unwrap_or(0)),
                    &column(rows, 5, |v| text(v).unwrap_or_else(|| "normal".into())),
                    &column(rows, 6, truthy),
                    &column(rows, 7, truthy),
                    &column(rows, 8, text),
                    &column(rows, 9, text),
                    &column(rows, 10, text),
                    &column(rows, 11, int),
                    &column(rows, 12, text),
                    &column(rows, 13, truthy),
                    &column(rows, 14, text),
                ],
            )
            .await?;
            Ok(())
        },
    )
    .await?;
    counts.recipients = copy_table(
        sqlite,
        "SELECT r.user_conv, m.msg_id, r.client_id FROM message_recipients r JOIN messages m ON m.seq = r.msg_seq",
        async |rows| {
            c.execute(
                "INSERT INTO message_recipients (user_conv, msg_seq, client_id)
                 SELECT k, m.seq, cl FROM unnest($1::text[], $2::text[], $3::text[]) AS r(k, mid, cl)
                 JOIN messages m ON m.msg_id = r.mid ON CONFLICT DO NOTHING",
                &[
                    &texts(rows, 0),
                    &texts(rows, 1),
                    &texts(rows, 2),
                ],
            )
            .await?;
            Ok(())
        },
    )
    .await?;
    counts.subscribers = copy_table(
        sqlite,
        "SELECT conv_id, client_id, timestamp FROM service_subscribers",
        async |rows| {
            c.execute(
                "INSERT INTO service_subscribers (conv_id, client_id, timestamp)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) ON CONFLICT DO NOTHING",
                &[
                    &texts(rows, 0),
                    &texts(rows, 1),
                    &column(rows, 2, |v| int(v).unwrap_or(0)),
                ],
            )
            .await?;
            Ok(())
        },
    )
    .await?;
    copy_table(
        sqlite,
        "SELECT msg_id, bin, ack_at FROM message_meta",
        async |rows| {
            c.execute(
                "INSERT INTO message_meta (msg_id, bin, ack_at)
             SELECT * FROM unnest($1::text[], $2::bool[], $3::bigint[]) ON CONFLICT DO NOTHING",
                &[
                    &texts(rows, 0),
                    &column(rows, 1, |v| int(v).is_some_and(|i| i != 0)),
                    &column(rows, 2, int),
                ],
            )
            .await?;
            Ok(())
        },
    )
    .await?;
    counts.positions = copy_table(
        sqlite,
        "SELECT client_id, conv_id, read_ts, ack_ts FROM client_positions",
        async |rows| {
            c.execute(
                "INSERT INTO client_positions (client_id, conv_id, read_ts, ack_ts)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
                 ON CONFLICT (client_id, conv_id) DO UPDATE SET
                     read_ts = GREATEST(client_positions.read_ts, EXCLUDED.read_ts),
                     ack_ts = GREATEST(client_positions.ack_ts, EXCLUDED.ack_ts)",
                &[
                    &texts(rows, 0),
                    &texts(rows, 1),
                    &column(rows, 2, |v| int(v).unwrap_or(0)),
                    &column(rows, 3, |v| int(v).unwrap_or(0)),
                ],
            )
            .await?;
            Ok(())
        },
    )
    .await?;
    copy_table(
        sqlite,
        "SELECT b.client_id, m.msg_id FROM client_broadcasts b JOIN messages m ON m.seq = b.seq",
        async |rows| {
            c.execute(
                "INSERT INTO client_broadcasts (client_id, seq)
                 SELECT r.cl, m.seq FROM unnest($1::text[], $2::text[]) AS r(cl, mid)
                 JOIN messages m ON m.msg_id = r.mid
                 ON CONFLICT (client_id) DO UPDATE SET seq = GREATEST(client_broadcasts.seq, EXCLUDED.seq)",
                &[
                    &texts(rows, 0),
                    &texts(rows, 1),
                ],
            )
            .await?;
            Ok(())
        },
    )
    .await?;
    copy_table(
        sqlite,
        "SELECT owner_class, owner_id, key, target_class, target_id FROM relations",
        async |rows| {
            c.execute(
                "INSERT INTO relations (owner_class, owner_id, key, target_class, target_id)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                 ON CONFLICT DO NOTHING",
                &[
                    &texts(rows, 0),
                    &texts(rows, 1),
                    &texts(rows, 2),
                    &texts(rows, 3),
                    &texts(rows, 4),
                ],
            )
            .await?;
            Ok(())
        },
    )
    .await?;
    copy_table(
        sqlite,
        "SELECT class, permissions, updated_at FROM class_permissions",
        async |rows| {
            c.execute(
                "INSERT INTO class_permissions (class, permissions, updated_at)
                 SELECT cl, p::jsonb, at FROM unnest($1::text[], $2::text[], $3::bigint[]) AS r(cl, p, at)
                 ON CONFLICT (class) DO UPDATE SET permissions = EXCLUDED.permissions, updated_at = EXCLUDED.updated_at",
                &[
                    &texts(rows, 0),
                    &texts(rows, 1),
                    &column(rows, 2, |v| int(v).unwrap_or(0)),
                ],
            )
            .await?;
            Ok(())
        },
    )
    .await?;
    // Sends to a conversation continue after its newest copied message.
    c.execute(
        "INSERT INTO conversation_clocks (conv_id, last_ts)
         SELECT conv_id, MAX(timestamp) FROM messages GROUP BY conv_id
         ON CONFLICT (conv_id) DO UPDATE SET last_ts = GREATEST(conversation_clocks.last_ts, EXCLUDED.last_ts)",
        &[],
    )
    .await?;
    Ok(counts)
}
