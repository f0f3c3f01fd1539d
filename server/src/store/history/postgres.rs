//! The 1.2 history API and service-conversation subscribers on PostgreSQL: the SQL of
//! [`crate::store::history`], with PostgreSQL's placeholders.

use crate::store::history::{
    history_sql, resolve, subscribable, Args, HistoryQuery, HistoryRecord, Subscriber,
};
use crate::store::postgres::shared::{conversation_in, seq_of};
use crate::store::postgres::strings;
use crate::store::postgres::{Params, Pg};
use crate::store::StoreResult;

impl Args for Params {
    fn text(&mut self, v: String) -> String {
        self.push(v)
    }
    fn int(&mut self, v: i64) -> String {
        self.push(v)
    }
}

pub async fn history(pg: &Pg, query: HistoryQuery) -> StoreResult<Vec<HistoryRecord>> {
    let client = pg.client().await?;
    let c = &client;
    let start = resolve(
        &query.start,
        seq_of(c, query.start.msg_id.as_deref()).await?,
    );
    let stop = resolve(&query.stop, seq_of(c, query.stop.msg_id.as_deref()).await?);
    let mut args = Params::default();
    let sql = history_sql(&query, start, stop, &mut args);
    let stmt = c.prepare_cached(&sql).await?;
    let rows = c.query(&stmt, &args.refs()).await?;
    Ok(rows
        .iter()
        .map(|r| HistoryRecord {
            timestamp: r.get(0),
            conv_id: r.get(1),
            data: r.get(2),
            from: r.get(3),
            msg_id: r.get(4),
            is_room: r.get(5),
            from_ip: r.get(6),
            binary: r.get::<_, Option<bool>>(7).unwrap_or(false),
            ack_at: r.get(8),
            recipients: strings(r.get(9)),
            ..HistoryRecord::default()
        })
        .collect())
}

pub async fn subscribers(
    pg: &Pg,
    conv: String,
    after: String,
    limit: i64,
) -> StoreResult<Vec<Subscriber>> {
    let client = pg.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT client_id, timestamp FROM service_subscribers
             WHERE conv_id = $1 AND client_id > $2 ORDER BY client_id LIMIT $3",
        )
        .await?;
    let rows = client.query(&stmt, &[&conv, &after, &limit]).await?;
    Ok(rows
        .iter()
        .map(|r| Subscriber {
            client_id: r.get(0),
            timestamp: r.get(1),
        })
        .collect())
}

pub async fn subscribe(pg: &Pg, conv: String, client_id: String, now: i64) -> StoreResult<()> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    subscribable(conversation_in(&tx, &conv, false).await?)?;
    tx.execute(
        "INSERT INTO service_subscribers (conv_id, client_id, timestamp) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        &[&conv, &client_id, &now],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn unsubscribe(pg: &Pg, conv: String, client_id: String) -> StoreResult<bool> {
    let client = pg.client().await?;
    let gone = client
        .execute(
            "DELETE FROM service_subscribers WHERE conv_id = $1 AND client_id = $2",
            &[&conv, &client_id],
        )
        .await?;
    Ok(gone > 0)
}
