//! Conversation administration on PostgreSQL (see [`crate::store::conv_admin`]), shared by every instance.

use super::{Mark, Marked, Notification};
use crate::store::postgres::Pg;
use crate::store::StoreResult;

fn from_row(r: &tokio_postgres::Row) -> Marked {
    Marked {
        client: r.get(0),
        role: r.get(1),
        at: r.get(2),
    }
}

pub async fn marked(
    pg: &Pg,
    cid: String,
    mark: Mark,
    after: String,
    limit: i64,
) -> StoreResult<Vec<Marked>> {
    let client = pg.client().await?;
    Ok(client
        .query(
            "SELECT client_id, role, at FROM conv_member_marks
             WHERE cid = $1 AND kind = $2 AND client_id > $3 ORDER BY client_id LIMIT $4",
            &[&cid, &mark.kind(), &after, &limit],
        )
        .await?
        .iter()
        .map(from_row)
        .collect())
}

pub async fn marks_of(
    pg: &Pg,
    cid: String,
    mark: Mark,
    clients: Vec<String>,
) -> StoreResult<Vec<Marked>> {
    let client = pg.client().await?;
    Ok(client
        .query(
            "SELECT client_id, role, at FROM conv_member_marks
             WHERE cid = $1 AND kind = $2 AND client_id = ANY($3)",
            &[&cid, &mark.kind(), &clients],
        )
        .await?
        .iter()
        .map(from_row)
        .collect())
}

pub async fn set(
    pg: &Pg,
    cid: String,
    mark: Mark,
    clients: Vec<String>,
    role: Option<String>,
    at: i64,
) -> StoreResult<()> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    for c in &clients {
        tx.execute(
            "INSERT INTO conv_member_marks (cid, kind, client_id, role, at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (cid, kind, client_id) DO UPDATE SET role = EXCLUDED.role, at = EXCLUDED.at",
            &[&cid, &mark.kind(), c, &role, &at],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn unset(pg: &Pg, cid: String, mark: Mark, clients: Vec<String>) -> StoreResult<()> {
    let client = pg.client().await?;
    client
        .execute(
            "DELETE FROM conv_member_marks WHERE cid = $1 AND kind = $2 AND client_id = ANY($3)",
            &[&cid, &mark.kind(), &clients],
        )
        .await?;
    Ok(())
}

pub async fn keep(pg: &Pg, items: Vec<Notification>, purge_before: i64) -> StoreResult<()> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    tx.execute(
        "DELETE FROM rtm_notifications WHERE at < $1",
        &[&purge_before],
    )
    .await?;
    for n in &items {
        tx.execute(
            "INSERT INTO rtm_notifications (client_id, at, body) VALUES ($1, $2, $3)",
            &[&n.client, &n.at, &n.body],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn since(
    pg: &Pg,
    client: String,
    since: i64,
    limit: i64,
) -> StoreResult<Vec<Notification>> {
    let c = pg.client().await?;
    Ok(c.query(
        "SELECT client_id, at, body FROM rtm_notifications
         WHERE client_id = $1 AND at > $2 ORDER BY at LIMIT $3",
        &[&client, &since, &limit],
    )
    .await?
    .iter()
    .map(|r| Notification {
        client: r.get(0),
        at: r.get(1),
        body: r.get(2),
    })
    .collect())
}
