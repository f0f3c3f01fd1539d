//! The 1.2 history API and service-conversation subscribers on SQLite: the SQL of
//! [`crate::store::history`], with SQLite's placeholders.

use rusqlite::params_from_iter;
use rusqlite::types::Value as SqlValue;

use crate::store::history::{
    history_sql, resolve, subscribable, Args, HistoryQuery, HistoryRecord, Subscriber,
};
use crate::store::messages::recipients_from_column;
use crate::store::sqlite::shared::{conversation_kind, seq_of};
use crate::store::sqlite::SqliteDb;
use crate::store::StoreResult;

impl Args for Vec<SqlValue> {
    fn text(&mut self, v: String) -> String {
        self.push(SqlValue::Text(v));
        "?".into()
    }
    fn int(&mut self, v: i64) -> String {
        self.push(SqlValue::Integer(v));
        "?".into()
    }
}

pub async fn history(db: &SqliteDb, query: HistoryQuery) -> StoreResult<Vec<HistoryRecord>> {
    db.read(move |conn| {
        let start = resolve(&query.start, seq_of(conn, query.start.msg_id.as_deref())?);
        let stop = resolve(&query.stop, seq_of(conn, query.stop.msg_id.as_deref())?);
        let mut args: Vec<SqlValue> = Vec::new();
        let sql = history_sql(&query, start, stop, &mut args);
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt
            .query_map(params_from_iter(args), |r| {
                Ok(HistoryRecord {
                    timestamp: r.get(0)?,
                    conv_id: r.get(1)?,
                    data: r.get(2)?,
                    from: r.get(3)?,
                    msg_id: r.get(4)?,
                    is_room: r.get(5)?,
                    from_ip: r.get(6)?,
                    binary: r.get::<_, Option<bool>>(7)?.unwrap_or(false),
                    ack_at: r.get(8)?,
                    recipients: recipients_from_column(r.get(9)?),
                    ..HistoryRecord::default()
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    })
    .await
}

pub async fn subscribers(
    db: &SqliteDb,
    conv: String,
    after: String,
    limit: i64,
) -> StoreResult<Vec<Subscriber>> {
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT client_id, timestamp FROM service_subscribers
             WHERE conv_id = ?1 AND client_id > ?2 ORDER BY client_id LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(rusqlite::params![conv, after, limit], |r| {
                Ok(Subscriber {
                    client_id: r.get(0)?,
                    timestamp: r.get(1)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    })
    .await
}

pub async fn subscribe(db: &SqliteDb, conv: String, client: String, now: i64) -> StoreResult<()> {
    db.write(move |tx| {
        let conn = tx.conn();
        subscribable(conversation_kind(conn, &conv)?)?;
        conn.prepare_cached(
            "INSERT OR IGNORE INTO service_subscribers (conv_id, client_id, timestamp) VALUES (?1, ?2, ?3)",
        )?
        .execute(rusqlite::params![conv, client, now])?;
        Ok(())
    })
    .await
}

pub async fn unsubscribe(db: &SqliteDb, conv: String, client: String) -> StoreResult<bool> {
    db.write(move |tx| {
        let gone = tx
            .conn()
            .prepare_cached(
                "DELETE FROM service_subscribers WHERE conv_id = ?1 AND client_id = ?2",
            )?
            .execute(rusqlite::params![conv, client])?;
        Ok(gone > 0)
    })
    .await
}
