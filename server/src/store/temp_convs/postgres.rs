//! Temporary conversations on PostgreSQL (see [`crate::store::temp_convs`]): shared by every instance; a
//! unique start takes a transaction lock on its member set, so two instances never make two of them.

use deadpool_postgres::GenericClient;

use super::{members_key, members_of, new_id, NewTempConv, TempConv};
use crate::store::postgres::Pg;
use crate::store::StoreResult;

fn from_row(r: &tokio_postgres::Row) -> TempConv {
    TempConv {
        id: r.get(0),
        members: members_of(r.get::<_, &str>(1)),
        creator: r.get(2),
        created_at: r.get(3),
        expires_at: r.get(4),
    }
}

/// The members of a live temporary conversation (for the message store).
pub(crate) async fn live_members(
    c: &impl GenericClient,
    id: &str,
    now: i64,
) -> StoreResult<Option<Vec<String>>> {
    Ok(c.query_opt(
        "SELECT members FROM temp_conversations WHERE id = $1 AND expires_at > $2",
        &[&id, &now],
    )
    .await?
    .map(|r| members_of(r.get::<_, &str>(0))))
}

pub async fn start(pg: &Pg, new: NewTempConv) -> StoreResult<TempConv> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    tx.execute(
        "DELETE FROM temp_conversations WHERE expires_at <= $1",
        &[&new.now],
    )
    .await?;
    let key = members_key(&new.members);
    if new.unique {
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&key])
            .await?;
        let found = tx
            .query_opt(
                "SELECT id, members, creator, created_at, expires_at FROM temp_conversations
                 WHERE members = $1 AND expires_at > $2 ORDER BY created_at DESC LIMIT 1",
                &[&key, &new.now],
            )
            .await?;
        if let Some(found) = found {
            tx.commit().await?;
            return Ok(from_row(&found));
        }
    }
    let conv = TempConv {
        id: new_id(),
        members: new.members,
        creator: new.creator,
        created_at: new.now,
        expires_at: new.now.saturating_add(new.ttl_ms),
    };
    tx.execute(
        "INSERT INTO temp_conversations (id, members, creator, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        &[&conv.id, &key, &conv.creator, &conv.created_at, &conv.expires_at],
    )
    .await?;
    tx.commit().await?;
    Ok(conv)
}

pub async fn live(pg: &Pg, ids: Vec<String>, now: i64) -> StoreResult<Vec<TempConv>> {
    let client = pg.client().await?;
    Ok(client
        .query(
            "SELECT id, members, creator, created_at, expires_at FROM temp_conversations
             WHERE id = ANY($1) AND expires_at > $2",
            &[&ids, &now],
        )
        .await?
        .iter()
        .map(from_row)
        .collect())
}
