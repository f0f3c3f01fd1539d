//! PostgreSQL's `LISTEN/NOTIFY` as a transport of texts between server instances, for the realtime bus
//! (`crate::realtime::bus`, which decides what the texts mean). A batch of texts is one statement, one
//! notification per text in order, all delivered at its commit; a text over PostgreSQL's 8,000-byte limit goes
//! through the `bus_payloads` table, and the notification names its row. The listener gets every text back,
//! large ones fetched, in commit order.

use futures::StreamExt;
use tokio::sync::mpsc;

use super::Pg;
use crate::store::{StoreError, StoreResult};

/// Largest text sent inline; PostgreSQL refuses notifications of 8,000 bytes and more.
pub const MAX_INLINE: usize = 7_900;
/// Rows of `bus_payloads` older than this are dropped by the next large publish.
const PAYLOAD_TTL_MS: i64 = 300_000;

/// Sends `texts` on `channel`, in order, in one commit.
pub async fn publish(pg: &Pg, channel: &str, texts: &[String]) -> StoreResult<()> {
    const NOTIFY: &str =
        "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n) ORDER BY n";
    let mut client = pg.client().await?;
    if texts.iter().all(|t| t.len() <= MAX_INLINE) {
        let stmt = client.prepare_cached(NOTIFY).await?;
        client.execute(&stmt, &[&channel, &texts]).await?;
        return Ok(());
    }
    let tx = client.transaction().await?;
    let now = chrono::Utc::now().timestamp_millis();
    tx.execute(
        "DELETE FROM bus_payloads WHERE created_at < $1",
        &[&(now - PAYLOAD_TTL_MS)],
    )
    .await?;
    let mut inline = Vec::with_capacity(texts.len());
    for text in texts {
        if text.len() <= MAX_INLINE {
            inline.push(text.clone());
        } else {
            let id: i64 = tx
                .query_one(
                    "INSERT INTO bus_payloads (payload, created_at) VALUES ($1, $2) RETURNING id",
                    &[text, &now],
                )
                .await?
                .get(0);
            inline.push(reference(id));
        }
    }
    tx.execute(NOTIFY, &[&channel, &inline]).await?;
    tx.commit().await?;
    Ok(())
}

/// The notification that stands for the text in row `id` of `bus_payloads`.
fn reference(id: i64) -> String {
    serde_json::json!({ "payload_id": id }).to_string()
}

/// The row a notification refers to, if it is a reference (a JSON object with `payload_id` alone).
fn referenced(text: &str) -> Option<i64> {
    if !text.starts_with("{\"payload_id\":") {
        return None;
    }
    match serde_json::from_str::<serde_json::Value>(text).ok()? {
        serde_json::Value::Object(map) if map.len() == 1 => map.get("payload_id")?.as_i64(),
        _ => None,
    }
}

/// A connection listening on one channel.
#[derive(Debug)]
pub struct Listening {
    client: tokio_postgres::Client,
    texts: mpsc::UnboundedReceiver<String>,
    driver: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
}

/// Starts listening on `channel`, on a connection of its own.
pub async fn listen(pg: &Pg, channel: &str) -> StoreResult<Listening> {
    let (client, mut connection) = pg.dedicated().await?;
    let (tx, texts) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    // A channel name is an identifier: only ours, never a client's text, is put here.
    client.batch_execute(&format!("LISTEN {channel}")).await?;
    Ok(Listening {
        client,
        texts,
        driver,
    })
}

impl Listening {
    /// The next text published on the channel (a large one fetched from `bus_payloads`; one whose row is
    /// gone is skipped). An error when the connection is lost.
    pub async fn next(&mut self) -> StoreResult<String> {
        while let Some(text) = self.texts.recv().await {
            let Some(id) = referenced(&text) else {
                return Ok(text);
            };
            let row = self
                .client
                .query_opt("SELECT payload FROM bus_payloads WHERE id = $1", &[&id])
                .await?;
            if let Some(row) = row {
                return Ok(row.get(0));
            }
        }
        match (&mut self.driver).await {
            Ok(Ok(())) => Err(StoreError::internal("listener connection closed")),
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(StoreError::internal(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lone_payload_id_is_a_reference() {
        assert_eq!(Some(42), referenced(&reference(42)));
        assert_eq!(None, referenced(r#"{"payload_id":42,"from":1}"#));
        assert_eq!(None, referenced(r#"{"from":1,"type":"alive"}"#));
        assert_eq!(None, referenced("not json"));
    }
}
