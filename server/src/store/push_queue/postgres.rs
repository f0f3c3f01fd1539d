//! The push queue on PostgreSQL (see [`crate::store::push_queue`]): claims skip rows another instance holds
//! (`FOR UPDATE SKIP LOCKED`), so two instances never lease the same job.

use deadpool_postgres::GenericClient;
use serde_json::Value;

use super::{Job, NewJob, Outcome, State};
use crate::store::postgres::Pg;
use crate::store::StoreResult;

const COLUMNS: &str =
    "id, source, ref_id, installation_id, platform, target, payload, profile, due_at, \
                       expires_at, state, attempts::BIGINT, last_error, created_at, done_at, topic";

fn job(r: &tokio_postgres::Row) -> Job {
    let state: String = r.get(10);
    Job {
        id: r.get(0),
        source: r.get(1),
        ref_id: r.get(2),
        installation_id: r.get(3),
        platform: r.get(4),
        target: r.get(5),
        payload: r.get::<_, Value>(6),
        profile: r.get(7),
        due_at: r.get(8),
        expires_at: r.get(9),
        state: State::parse(&state),
        attempts: r.get(11),
        last_error: r.get(12),
        created_at: r.get(13),
        done_at: r.get(14),
        topic: r.get(15),
    }
}

pub async fn enqueue(pg: &Pg, jobs: Vec<NewJob>, now: i64) -> StoreResult<()> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO push_jobs (source, ref_id, installation_id, platform, target, payload, profile, due_at,
                                    expires_at, state, created_at, done_at, topic)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .await?;
    for j in jobs {
        let done = (j.state != State::Pending).then_some(now);
        tx.execute(
            &stmt,
            &[
                &j.source,
                &j.ref_id,
                &j.installation_id,
                &j.platform,
                &j.target,
                &j.payload,
                &j.profile,
                &j.due_at,
                &j.expires_at,
                &j.state.as_str(),
                &now,
                &done,
                &j.topic,
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn claim(pg: &Pg, now: i64, lease_ms: i64, limit: i64) -> StoreResult<Vec<Job>> {
    let client = pg.client().await?;
    let until = now + lease_ms;
    Ok(client
        .query(
            &format!(
                "UPDATE push_jobs SET lease_until = $2, attempts = attempts + 1
                 WHERE id IN (SELECT id FROM push_jobs
                              WHERE state = 'pending' AND due_at <= $1
                                AND (lease_until IS NULL OR lease_until <= $1)
                              ORDER BY due_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING {COLUMNS}"
            ),
            &[&now, &until, &limit],
        )
        .await?
        .iter()
        .map(job)
        .collect())
}

pub async fn settle(pg: &Pg, id: i64, outcome: Outcome, now: i64) -> StoreResult<()> {
    let client = pg.client().await?;
    match outcome {
        Outcome::Done(state, error) => {
            client
                .execute(
                    "UPDATE push_jobs SET state = $2, last_error = $3, done_at = $4, lease_until = NULL
                     WHERE id = $1",
                    &[&id, &state.as_str(), &error, &now],
                )
                .await?
        }
        Outcome::Retry(at, error) => {
            client
                .execute(
                    "UPDATE push_jobs SET due_at = $2, last_error = $3, lease_until = NULL WHERE id = $1",
                    &[&id, &at, &error],
                )
                .await?
        }
    };
    Ok(())
}

pub async fn recent(pg: &Pg, ref_id: Option<String>, limit: i64) -> StoreResult<Vec<Job>> {
    let client = pg.client().await?;
    Ok(client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM push_jobs WHERE ($1::text IS NULL OR ref_id = $1)
                 ORDER BY id DESC LIMIT $2"
            ),
            &[&ref_id, &limit],
        )
        .await?
        .iter()
        .map(job)
        .collect())
}

pub async fn purge(pg: &Pg, before: i64) -> StoreResult<u64> {
    let client = pg.client().await?;
    Ok(client
        .execute(
            "DELETE FROM push_jobs WHERE state != 'pending' AND done_at < $1",
            &[&before],
        )
        .await?)
}
