//! The mail flows' tokens on PostgreSQL (see [`crate::store::user_tokens`]): one table every instance shares, so
//! the spacing of requests and the single use of a link hold across instances.

use super::{Kind, NewToken, Taken};
use crate::store::postgres::Pg;
use crate::store::StoreResult;

pub async fn issue(pg: &Pg, t: NewToken) -> StoreResult<bool> {
    let c = pg.client().await?;
    c.execute(
        "DELETE FROM user_tokens WHERE expires_at <= $1",
        &[&t.now_ms],
    )
    .await?;
    let stored = c
        .execute(
            "INSERT INTO user_tokens (kind, user_id, token_hash, email, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (kind, user_id) DO UPDATE SET token_hash = excluded.token_hash,
                 email = excluded.email, created_at = excluded.created_at, expires_at = excluded.expires_at
             WHERE user_tokens.created_at <= $7",
            &[
                &t.kind.key(),
                &t.user_id,
                &super::hash(&t.token),
                &t.email,
                &t.now_ms,
                &t.expires_ms,
                &t.not_after_ms,
            ],
        )
        .await?;
    Ok(stored == 1)
}

pub async fn withdraw(pg: &Pg, kind: Kind, user_id: String, hash: String) -> StoreResult<()> {
    let c = pg.client().await?;
    c.execute(
        "DELETE FROM user_tokens WHERE kind = $1 AND user_id = $2 AND token_hash = $3",
        &[&kind.key(), &user_id, &hash],
    )
    .await?;
    Ok(())
}

pub async fn take(pg: &Pg, kind: Kind, hash: String) -> StoreResult<Option<(Taken, i64)>> {
    let c = pg.client().await?;
    Ok(c.query_opt(
        "DELETE FROM user_tokens WHERE kind = $1 AND token_hash = $2 RETURNING user_id, email, expires_at",
        &[&kind.key(), &hash],
    )
    .await?
    .map(|r| {
        (
            Taken {
                user_id: r.get(0),
                email: r.get(1),
            },
            r.get(2),
        )
    }))
}
