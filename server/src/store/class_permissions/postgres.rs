//! Class permissions on PostgreSQL (see [`crate::store::class_permissions`]): shared by every instance.

use serde_json::Value;

use crate::store::postgres::Pg;
use crate::store::StoreResult;

pub async fn load(pg: &Pg, class: String) -> StoreResult<Option<Value>> {
    let c = pg.client().await?;
    Ok(c.query_opt(
        "SELECT permissions FROM class_permissions WHERE class = $1",
        &[&class],
    )
    .await?
    .map(|r| r.get(0)))
}

pub async fn load_all(pg: &Pg) -> StoreResult<Vec<(String, Value)>> {
    let c = pg.client().await?;
    Ok(c.query(
        "SELECT class, permissions FROM class_permissions ORDER BY class",
        &[],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

pub async fn save(pg: &Pg, class: String, value: Option<Value>, now: i64) -> StoreResult<()> {
    let c = pg.client().await?;
    match value {
        Some(v) => {
            c.execute(
                "INSERT INTO class_permissions (class, permissions, updated_at) VALUES ($1, $2::text::jsonb, $3)
                 ON CONFLICT (class) DO UPDATE SET permissions = excluded.permissions, updated_at = excluded.updated_at",
                &[&class, &v.to_string(), &now],
            )
            .await?
        }
        None => {
            c.execute("DELETE FROM class_permissions WHERE class = $1", &[&class])
                .await?
        }
    };
    Ok(())
}

pub async fn fields(pg: &Pg, class: String) -> StoreResult<Vec<String>> {
    let c = pg.client().await?;
    Ok(c.query(
        "SELECT DISTINCT jsonb_object_keys(data) FROM objects WHERE class = $1",
        &[&class],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}
