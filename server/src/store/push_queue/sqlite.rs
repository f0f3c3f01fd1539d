//! The push queue on SQLite (see [`crate::store::push_queue`]): one writer, so a claim is one transaction.

use rusqlite::{params, Row as SqlRow};

use super::{Job, NewJob, Outcome, State};
use crate::store::sqlite::SqliteDb;
use crate::store::StoreResult;

const COLUMNS: &str =
    "id, source, ref_id, installation_id, platform, target, payload, profile, due_at, \
                       expires_at, state, attempts, last_error, created_at, done_at, topic";

fn job(r: &SqlRow<'_>) -> rusqlite::Result<Job> {
    let payload: String = r.get(6)?;
    let state: String = r.get(10)?;
    Ok(Job {
        id: r.get(0)?,
        source: r.get(1)?,
        ref_id: r.get(2)?,
        installation_id: r.get(3)?,
        platform: r.get(4)?,
        target: r.get(5)?,
        payload: serde_json::from_str(&payload).unwrap_or_default(),
        profile: r.get(7)?,
        due_at: r.get(8)?,
        expires_at: r.get(9)?,
        state: State::parse(&state),
        attempts: r.get(11)?,
        last_error: r.get(12)?,
        created_at: r.get(13)?,
        done_at: r.get(14)?,
        topic: r.get(15)?,
    })
}

pub async fn enqueue(db: &SqliteDb, jobs: Vec<NewJob>, now: i64) -> StoreResult<()> {
    db.write(move |tx| {
        let mut stmt = tx.conn().prepare_cached(
            "INSERT INTO push_jobs (source, ref_id, installation_id, platform, target, payload, profile, due_at,
                                    expires_at, state, created_at, done_at, topic)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        for j in jobs {
            let done = (j.state != State::Pending).then_some(now);
            stmt.execute(params![
                j.source,
                j.ref_id,
                j.installation_id,
                j.platform,
                j.target,
                j.payload.to_string(),
                j.profile,
                j.due_at,
                j.expires_at,
                j.state.as_str(),
                now,
                done,
                j.topic,
            ])?;
        }
        Ok(())
    })
    .await
}

pub async fn claim(db: &SqliteDb, now: i64, lease_ms: i64, limit: i64) -> StoreResult<Vec<Job>> {
    db.write(move |tx| {
        let conn = tx.conn();
        let ids: Vec<i64> = conn
            .prepare_cached(
                "SELECT id FROM push_jobs
                 WHERE state = 'pending' AND due_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
                 ORDER BY due_at, id LIMIT ?2",
            )?
            .query_map(params![now, limit], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut lease = conn.prepare_cached(
            "UPDATE push_jobs SET lease_until = ?2, attempts = attempts + 1 WHERE id = ?1",
        )?;
        let mut read = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM push_jobs WHERE id = ?1"))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            lease.execute(params![id, now + lease_ms])?;
            out.push(read.query_row([id], job)?);
        }
        Ok(out)
    })
    .await
}

pub async fn settle(db: &SqliteDb, id: i64, outcome: Outcome, now: i64) -> StoreResult<()> {
    db.write(move |tx| {
        let conn = tx.conn();
        match outcome {
            Outcome::Done(state, error) => conn
                .prepare_cached(
                    "UPDATE push_jobs SET state = ?2, last_error = ?3, done_at = ?4, lease_until = NULL
                     WHERE id = ?1",
                )?
                .execute(params![id, state.as_str(), error, now])?,
            Outcome::Retry(at, error) => conn
                .prepare_cached(
                    "UPDATE push_jobs SET due_at = ?2, last_error = ?3, lease_until = NULL WHERE id = ?1",
                )?
                .execute(params![id, at, error])?,
        };
        Ok(())
    })
    .await
}

pub async fn recent(db: &SqliteDb, ref_id: Option<String>, limit: i64) -> StoreResult<Vec<Job>> {
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM push_jobs WHERE (?1 IS NULL OR ref_id = ?1) ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![ref_id, limit], job)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
    .await
}

pub async fn purge(db: &SqliteDb, before: i64) -> StoreResult<u64> {
    db.write(move |tx| {
        let n = tx
            .conn()
            .prepare_cached("DELETE FROM push_jobs WHERE state != 'pending' AND done_at < ?1")?
            .execute([before])?;
        Ok(n as u64)
    })
    .await
}
