//! Rate-limit windows in the database, so a limit holds for the app across every instance: one row per
//! bucket with the start of its current window and what was counted in it.

use super::Pg;
use crate::store::StoreResult;

/// A window after one `take`: whether the unit was granted, when the window started (ms) and its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub granted: bool,
    pub window_start: i64,
    pub count: i64,
}

/// Takes a unit of bucket `name` (at most `limit` per window of `window_ms`): a window that has ended starts
/// again at `now`. A refused take counts at most once over the limit, so a refund frees a real unit.
pub async fn take(pg: &Pg, name: &str, now: i64, window_ms: i64, limit: i64) -> StoreResult<Taken> {
    let client = pg.client().await?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO rate_buckets (name, window_start, count) VALUES ($1, $2, 1)
             ON CONFLICT (name) DO UPDATE SET
                 window_start = CASE WHEN rate_buckets.window_start + $3 <= EXCLUDED.window_start
                                     THEN EXCLUDED.window_start ELSE rate_buckets.window_start END,
                 count = CASE WHEN rate_buckets.window_start + $3 <= EXCLUDED.window_start THEN 1
                              ELSE LEAST(rate_buckets.count + 1, $4::bigint + 1) END
             RETURNING window_start, count",
        )
        .await?;
    let row = client
        .query_one(&stmt, &[&name, &now, &window_ms, &limit])
        .await?;
    let count: i64 = row.get(1);
    Ok(Taken {
        granted: count <= limit,
        window_start: row.get(0),
        count,
    })
}

/// Gives back a unit granted from the window that started at `window_start` (none if it has ended).
pub async fn refund(pg: &Pg, name: &str, window_start: i64, limit: i64) -> StoreResult<()> {
    let client = pg.client().await?;
    client
        .execute(
            "UPDATE rate_buckets SET count = GREATEST(LEAST(count, $3::bigint) - 1, 0)
             WHERE name = $1 AND window_start = $2",
            &[&name, &window_start, &limit],
        )
        .await?;
    Ok(())
}

/// The current window of `name`: its start and count (units granted, at most the limit plus one).
pub async fn read(pg: &Pg, name: &str) -> StoreResult<Option<(i64, i64)>> {
    let client = pg.client().await?;
    Ok(client
        .query_opt(
            "SELECT window_start, count FROM rate_buckets WHERE name = $1",
            &[&name],
        )
        .await?
        .map(|r| (r.get(0), r.get(1))))
}

/// Starts every window again (the limits were changed).
pub async fn reset(pg: &Pg) -> StoreResult<()> {
    let client = pg.client().await?;
    client.execute("DELETE FROM rate_buckets", &[]).await?;
    Ok(())
}
