//! SQLite access: one writer thread doing group commit, and a small pool of read connections.
//!
//! Every write is a job sent to the writer thread. The thread takes all jobs that are waiting, runs each in
//! its own savepoint inside one transaction, commits, and only then answers each job. So a response is sent
//! only for committed data, and one commit (one WAL append, one fsync with `Durability::Full`) serves many
//! requests under load.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::config::Durability;
use crate::error::AppError;
use crate::store::objects;

const SCHEMA: &str = include_str!("../../migrations/001_init.sql");
/// Tables for imported data (`bin`/`ack-at`, service-conversation subscribers); see `crate::import`.
pub const SCHEMA_MIGRATION: &str = include_str!("../../migrations/002_migration.sql");
/// Upper bound of one group commit, to keep the latency of the first job in a batch bounded.
const MAX_BATCH: usize = 2048;

type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;
/// `poisoned`: the job failed after writing something outside a savepoint, so the whole batch must roll back.
struct Applied {
    reply: Reply,
    poisoned: bool,
}
type Job = Box<dyn FnOnce(&Connection) -> Applied + Send>;

/// Shared handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

struct DbInner {
    path: PathBuf,
    jobs: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    clock: AtomicI64,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    Ok(())
}

impl Db {
    /// Opens (creating folders, file and schema as needed) and starts the writer thread.
    pub fn open(path: &Path, durability: Durability) -> Result<Db, rusqlite::Error> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                        Some(format!("cannot create {}: {e}", parent.display())),
                    )
                })?;
            }
        }
        let conn = Connection::open(path)?;
        configure(&conn, durability)?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(SCHEMA_MIGRATION)?;
        let last_ts: i64 = conn.query_row(
            "SELECT COALESCE(MAX(timestamp), 0) FROM messages",
            [],
            |r| r.get(0),
        )?;

        let (tx, rx) = mpsc::unbounded_channel::<Job>();
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Db {
            inner: Arc::new(DbInner {
                path: path.to_path_buf(),
                jobs: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
                readers: Mutex::new(Vec::new()),
                clock: AtomicI64::new(last_ts),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A message timestamp (ms): now, but never below one already handed out, so that timestamps follow
    /// insertion order.
    pub fn next_timestamp(&self) -> i64 {
        let now = chrono::Utc::now().timestamp_millis();
        let prev = self.inner.clock.fetch_max(now, Ordering::SeqCst);
        prev.max(now)
    }

    /// Runs `f` in the writer thread inside a savepoint of the current batch; resolves once the batch is
    /// committed. An `Err` from `f` rolls back only this job.
    pub async fn write<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, AppError> + Send + 'static,
    {
        self.submit(true, f).await
    }

    /// Like [`Db::write`] without the savepoint, which saves copying the touched pages for every job on the
    /// hot path (sends). `f` should fail only before its first change: a failure after a change rolls back
    /// the whole batch, and every job in it is answered with an error.
    pub async fn write_unguarded<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, AppError> + Send + 'static,
    {
        self.submit(false, f).await
    }

    async fn submit<T, F>(&self, savepoint: bool, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, AppError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, AppError>>();
        let job: Job = Box::new(move |conn: &Connection| -> Applied {
            let (result, poisoned) = if savepoint {
                (run_in_savepoint(conn, f), false)
            } else {
                let before = conn.total_changes();
                let result = f(conn);
                let poisoned = result.is_err() && conn.total_changes() != before;
                (result, poisoned)
            };
            let reply: Reply = Box::new(move |commit: Result<(), String>| {
                let outcome = match (commit, result) {
                    (Ok(()), r) => r,
                    (Err(e), _) => Err(AppError::internal(format!("commit failed: {e}"))),
                };
                let _ = tx.send(outcome);
            });
            Applied { reply, poisoned }
        });
        let sender = self
            .inner
            .jobs
            .lock()
            .map_err(|_| AppError::internal("writer lock poisoned"))?
            .clone()
            .ok_or_else(|| AppError::internal("database is closed"))?;
        sender
            .send(job)
            .map_err(|_| AppError::internal("writer thread has stopped"))?;
        rx.await
            .map_err(|_| AppError::internal("writer dropped the job"))?
    }

    /// Runs `f` on a read connection in the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, AppError> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.read_blocking(f))
            .await
            .map_err(|e| AppError::internal(format!("read task failed: {e}")))?
    }

    pub fn read_blocking<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let pooled = self
            .inner
            .readers
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop());
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open(&self.inner.path)?;
                conn.busy_timeout(std::time::Duration::from_secs(10))?;
                conn
            }
        };
        let result = f(&conn);
        if let Ok(mut pool) = self.inner.readers.lock() {
            if pool.len() < 16 {
                pool.push(conn);
            }
        }
        result
    }

    /// Stops the writer after the queued jobs are done and closes the read connections.
    pub fn close(&self) {
        if let Ok(mut jobs) = self.inner.jobs.lock() {
            jobs.take();
        }
        let handle = self.inner.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        if let Ok(mut pool) = self.inner.readers.lock() {
            pool.clear();
        }
    }
}

fn run_in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, AppError>,
) -> Result<T, AppError> {
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    let result = f(conn);
    if result.is_err() {
        conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
    }
    conn.prepare_cached("RELEASE job")?.execute([])?;
    result
}

fn writer_loop(conn: Connection, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut replies: Vec<Reply> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Dropping the jobs drops their reply channels: each request gets an internal error.
            tracing::error!(error = %e, "cannot begin a write transaction");
            batch.clear();
            continue;
        }
        let mut poisoned = false;
        for job in batch.drain(..) {
            let applied = job(&conn);
            poisoned |= applied.poisoned;
            replies.push(applied.reply);
        }
        let outcome = if poisoned {
            objects::discard_pending();
            Err("a write failed half-way; the batch was rolled back".to_string())
        } else {
            objects::flush_pending(&conn)
                .map_err(|e| e.to_string())
                .and_then(|()| conn.execute_batch("COMMIT").map_err(|e| e.to_string()))
        };
        if outcome.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for reply in replies.drain(..) {
            reply(outcome.clone());
        }
    }
}

/// Shared helpers for timestamps in storage encoding.
pub fn iso_millis(ms: i64) -> String {
    match chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => "1970-01-01T00:00:00.000Z".to_string(),
    }
}

pub fn parse_iso_millis(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}
