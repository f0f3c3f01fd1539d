//! Relation members on PostgreSQL (see [`crate::store::relations`]).

use deadpool_postgres::GenericClient;

use super::RelationChange;
use crate::store::postgres::Pg;
use crate::store::StoreResult;

/// Applies `changes` to the fields of object `owner_id` (inside the caller's transaction).
pub(crate) async fn apply(
    c: &impl GenericClient,
    owner_class: &str,
    owner_id: &str,
    changes: &[RelationChange],
) -> StoreResult<()> {
    for change in changes {
        if !change.add.is_empty() {
            c.execute(
                "INSERT INTO relations (owner_class, owner_id, key, target_class, target_id)
                 SELECT $1, $2, $3, $4, t FROM unnest($5::text[]) AS t ON CONFLICT DO NOTHING",
                &[
                    &owner_class,
                    &owner_id,
                    &change.key,
                    &change.target_class,
                    &change.add,
                ],
            )
            .await?;
        }
        if !change.remove.is_empty() {
            c.execute(
                "DELETE FROM relations WHERE owner_class = $1 AND owner_id = $2 AND key = $3 AND target_id = ANY($4)",
                &[&owner_class, &owner_id, &change.key, &change.remove],
            )
            .await?;
        }
    }
    Ok(())
}

/// Forgets the relation fields of a deleted object.
pub(crate) async fn remove_owner(
    c: &impl GenericClient,
    owner_class: &str,
    owner_id: &str,
) -> StoreResult<()> {
    c.execute(
        "DELETE FROM relations WHERE owner_class = $1 AND owner_id = $2",
        &[&owner_class, &owner_id],
    )
    .await?;
    Ok(())
}

pub async fn targets(
    pg: &Pg,
    owner_class: String,
    owner_id: String,
    key: String,
) -> StoreResult<Vec<String>> {
    let c = pg.client().await?;
    Ok(c.query(
        "SELECT target_id FROM relations WHERE owner_class = $1 AND owner_id = $2 AND key = $3 ORDER BY target_id LIMIT 10000",
        &[&owner_class, &owner_id, &key],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

pub async fn owners(
    pg: &Pg,
    owner_class: String,
    key: String,
    target_id: String,
) -> StoreResult<Vec<String>> {
    let c = pg.client().await?;
    Ok(c.query(
        "SELECT owner_id FROM relations WHERE owner_class = $1 AND key = $2 AND target_id = $3 ORDER BY owner_id LIMIT 10000",
        &[&owner_class, &key, &target_id],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

pub async fn is_relation(pg: &Pg, owner_class: String, key: String) -> StoreResult<bool> {
    let c = pg.client().await?;
    Ok(c.query_opt(
        "SELECT 1 FROM relations WHERE owner_class = $1 AND key = $2 LIMIT 1",
        &[&owner_class, &key],
    )
    .await?
    .is_some())
}
