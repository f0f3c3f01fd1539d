//! The database handle ([`Db`]: SQLite or PostgreSQL, chosen at start), and SQLite access: one writer thread doing group commit, and a small pool of read connections.
//!
//! Every write is a job sent to the writer thread. The thread takes all jobs that are waiting, runs them
//! inside one transaction, commits, and only then answers each job. So a response is sent only for
//! committed data, and one commit (one WAL append, one fsync with `Durability::Full`) serves many requests
//! under load. Storage-API writes run in their own savepoint, so one that fails is undone alone; message
//! sends skip it (`write_unguarded`, the hot path) because they fail only before their first change — a send
//! that did fail after changing something (an I/O error) rolls back the whole batch, and every request in it
//! gets an error. A job that panics fails alone; a transaction SQLite rolled back by itself fails its batch.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::config::Durability;
use crate::store::{Lane, StoreError, StoreResult};

/// Versioned migrations, applied in order to a database whose `user_version` is below theirs. 3 holds the
/// tables of imported data (`ack-at`, service-conversation subscribers; see `crate::import`).
const MIGRATIONS: [(i64, &str); 3] = [
    (1, include_str!("../../migrations/001_init.sql")),
    (2, include_str!("../../migrations/002_realtime.sql")),
    (3, include_str!("../../migrations/003_migration.sql")),
];
/// Upper bound of one group commit, to keep the latency of the first job in a batch bounded.
const MAX_BATCH: usize = 2048;

type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;
/// `poisoned`: the job failed after writing something outside a savepoint, so the whole batch must roll back.
struct Applied {
    reply: Reply,
    poisoned: bool,
}
type Job = Box<dyn FnOnce(&mut WriteTx<'_>) -> Applied + Send>;

/// Writer time per batch for [`Lane::Shared`] jobs once the priority jobs ran.
const SHARED_BUDGET: std::time::Duration = std::time::Duration::from_millis(4);

/// What a write job sees: the writer's connection inside the batch's transaction, and the batch's pending
/// conversation updates, applied once per batch just before the commit (so a thousand sends to one
/// conversation update its `lm` once).
#[derive(Debug)]
pub struct WriteTx<'a> {
    conn: &'a Connection,
    last_message: &'a mut HashMap<String, i64>,
}

impl<'a> WriteTx<'a> {
    pub fn conn(&self) -> &'a Connection {
        self.conn
    }

    /// Sets the conversation's `lm` (last message time) as LeanCloud does on each stored message; applied
    /// when the batch commits. `lm` only moves forward.
    pub fn touch_last_message(&mut self, conv_id: &str, ts: i64) {
        match self.last_message.get_mut(conv_id) {
            Some(t) => *t = (*t).max(ts),
            None => {
                self.last_message.insert(conv_id.to_string(), ts);
            }
        }
    }
}

/// Writes the batch's `lm` updates. An explicit later `lm` is kept.
fn flush_last_messages(
    conn: &Connection,
    pending: &mut HashMap<String, i64>,
) -> rusqlite::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "UPDATE objects SET data = json_set(data, '$.lm', json(?2))
         WHERE class = '_Conversation' AND id = ?1
           AND (json_extract(data, '$.lm.iso') IS NULL OR json_extract(data, '$.lm.iso') < ?3)",
    )?;
    for (id, ts) in pending.drain() {
        let iso = iso_millis(ts);
        let date = serde_json::json!({"__type": "Date", "iso": iso}).to_string();
        stmt.execute(rusqlite::params![id, date, iso])?;
    }
    Ok(())
}

/// The server's database, chosen at start: the embedded SQLite file (the default), or a PostgreSQL database
/// that several instances share. Every function of the store takes it and runs the same operation on
/// either backend: each store module runs its SQLite side itself and its PostgreSQL side in its `postgres`
/// child, on the pool of [`crate::store::postgres`]. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqliteDb),
    Postgres(crate::store::postgres::Pg),
}

impl Db {
    /// Which backend, for logs and health: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Whether the database takes writes now: SQLite's writer thread runs, or PostgreSQL answers a query.
    pub async fn reachable(&self) -> bool {
        match self {
            Db::Sqlite(db) => db.writer_running(),
            Db::Postgres(pg) => pg.ping().await,
        }
    }

    /// Finishes the queued writes and closes the database (blocks: call it off the runtime's threads).
    pub fn close(&self) {
        match self {
            Db::Sqlite(db) => db.close(),
            Db::Postgres(pg) => pg.close(),
        }
    }
}

/// Shared handle to a SQLite database. Cheap to clone.
#[derive(Clone)]
pub struct SqliteDb {
    inner: Arc<DbInner>,
}

struct DbInner {
    path: PathBuf,
    jobs: Mutex<Option<mpsc::UnboundedSender<(Lane, Job)>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    clock: AtomicI64,
    /// Runs the queries of app-key clients: half the cores' worth of threads (one at least) at the lowest
    /// CPU priority, so parallel scans with the public key cannot take the CPU the writer needs for sends
    /// (review finding M6, `bench hardening`). `None` once closed.
    shared_queries: Mutex<Option<std::sync::mpsc::Sender<QueryJob>>>,
}

type QueryJob = Box<dyn FnOnce() + Send>;

/// The sender in `slot` (the writer's or the query threads' channel), unless the database was closed.
fn open_sender<S: Clone>(slot: &Mutex<Option<S>>, poisoned: &'static str) -> StoreResult<S> {
    slot.lock()
        .map_err(|_| StoreError::internal(poisoned))?
        .clone()
        .ok_or_else(|| StoreError::internal("database is closed"))
}

/// How many threads run app-key queries.
fn shared_query_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// The threads behind [`Lane::Shared`] reads: each lowers its own priority (nice 19 on Linux; where that is
/// refused it runs at normal priority), then takes queries one at a time.
fn start_query_threads() -> std::io::Result<std::sync::mpsc::Sender<QueryJob>> {
    let (tx, rx) = std::sync::mpsc::channel::<QueryJob>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..shared_query_threads() {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("sqlite-query-{i}"))
            .spawn(move || {
                if let Err(e) = thread_priority::set_current_thread_priority(
                    thread_priority::ThreadPriority::Min,
                ) {
                    tracing::debug!(error = ?e, "query thread keeps its priority");
                }
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            })?;
    }
    Ok(tx)
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDb")
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

/// Checkpoints the WAL about once a second (PASSIVE: never waits for the writer or readers) until the
/// database is closed.
fn checkpoint_loop(conn: Connection, db: std::sync::Weak<DbInner>) {
    loop {
        std::thread::sleep(std::time::Duration::from_millis(1000));
        let Some(inner) = db.upgrade() else { return };
        let open = inner.jobs.lock().map(|j| j.is_some()).unwrap_or(false);
        drop(inner);
        if !open {
            return;
        }
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "wal checkpoint skipped");
        }
    }
}

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (target, sql) in MIGRATIONS {
        if version < target {
            conn.execute_batch(&format!("BEGIN; {sql} COMMIT;"))?;
        }
    }
    Ok(())
}

impl SqliteDb {
    /// Opens (creating folders, file and schema as needed) and starts the writer thread.
    pub fn open(path: &Path, durability: Durability) -> Result<SqliteDb, rusqlite::Error> {
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
        migrate(&conn)?;
        let last_ts: i64 = conn.query_row(
            "SELECT COALESCE(MAX(timestamp), 0) FROM messages",
            [],
            |r| r.get(0),
        )?;

        // Checkpoints move off the writer thread: with SQLite's automatic checkpoint, every ~1,000 pages
        // one commit waits for the checkpoint's fsyncs, and every send queued behind it.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let (tx, rx) = mpsc::unbounded_channel::<(Lane, Job)>();
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        let db = SqliteDb {
            inner: Arc::new(DbInner {
                path: path.to_path_buf(),
                jobs: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
                readers: Mutex::new(Vec::new()),
                clock: AtomicI64::new(last_ts),
                shared_queries: Mutex::new(Some(
                    start_query_threads()
                        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
                )),
            }),
        };
        let checkpointer = Connection::open(path)?;
        checkpointer.busy_timeout(std::time::Duration::from_secs(1))?;
        let weak = Arc::downgrade(&db.inner);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, weak))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(db)
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
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteTx<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.submit(Lane::Shared, true, f).await
    }

    /// [`SqliteDb::write`] in `lane`.
    pub async fn write_in<T, F>(&self, lane: Lane, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteTx<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.submit(lane, true, f).await
    }

    /// Like [`SqliteDb::write`] without the savepoint, which saves copying the touched pages for every job on the
    /// hot path (sends). `f` should fail only before its first change: a failure after a change rolls back
    /// the whole batch, and every job in it is answered with an error.
    pub async fn write_unguarded<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteTx<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.submit(Lane::Priority, false, f).await
    }

    async fn submit<T, F>(&self, lane: Lane, savepoint: bool, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteTx<'_>) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(move |wtx: &mut WriteTx<'_>| -> Applied {
            let (result, poisoned) = if savepoint {
                (run_in_savepoint(wtx, f), false)
            } else {
                let before = wtx.conn.total_changes();
                let result = guarded(|| f(wtx));
                let poisoned = result.is_err() && wtx.conn.total_changes() != before;
                (result, poisoned)
            };
            let reply: Reply = Box::new(move |commit: Result<(), String>| {
                let outcome = match (commit, result) {
                    (Ok(()), r) => r,
                    (Err(e), _) => Err(StoreError::Internal(format!("commit failed: {e}"))),
                };
                let _ = tx.send(outcome);
            });
            Applied { reply, poisoned }
        });
        let sender = open_sender(&self.inner.jobs, "writer lock poisoned")?;
        sender
            .send((lane, job))
            .map_err(|_| StoreError::internal("writer thread has stopped"))?;
        rx.await
            .map_err(|_| StoreError::internal("writer dropped the job"))?
    }

    /// Runs `f` on a read connection in the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.read_blocking(f))
            .await
            .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }

    /// [`SqliteDb::read`] for a query of `lane`: shared-lane queries (app-key clients) wait for one of the few
    /// low-priority query threads; priority queries (the master key) run on the blocking pool at once.
    pub async fn read_in<T, F>(&self, lane: Lane, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        if lane == Lane::Priority {
            return self.read(f).await;
        }
        let (tx, rx) = oneshot::channel::<StoreResult<T>>();
        let db = self.clone();
        // A panicking query fails alone; its thread lives on.
        let job: QueryJob = Box::new(move || {
            let _ = tx.send(guarded(|| db.read_blocking(f)));
        });
        let sender = open_sender(&self.inner.shared_queries, "query lock poisoned")?;
        sender
            .send(job)
            .map_err(|_| StoreError::internal("query threads have stopped"))?;
        rx.await
            .map_err(|_| StoreError::internal("a query thread dropped the query"))?
    }

    pub fn read_blocking<T>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
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

    /// Whether the writer thread is running (health reports it).
    pub fn writer_running(&self) -> bool {
        self.inner
            .writer
            .lock()
            .map(|w| w.as_ref().is_some_and(|h| !h.is_finished()))
            .unwrap_or(false)
    }

    /// Stops the writer after the queued jobs are done and closes the read connections.
    pub fn close(&self) {
        if let Ok(mut jobs) = self.inner.jobs.lock() {
            jobs.take();
        }
        if let Ok(mut queries) = self.inner.shared_queries.lock() {
            queries.take();
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

/// Runs a job, turning a panic into an error of that job alone: the writer thread must outlive any bug
/// in one request's handling.
fn guarded<T>(f: impl FnOnce() -> StoreResult<T>) -> StoreResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, "a write job panicked; it fails alone");
            Err(StoreError::Internal(format!("write job panicked: {what}")))
        }
    }
}

/// Runs `f` in a savepoint; on error its changes, pending `lm` updates included, are undone.
fn run_in_savepoint<T>(
    wtx: &mut WriteTx<'_>,
    f: impl FnOnce(&mut WriteTx<'_>) -> StoreResult<T>,
) -> StoreResult<T> {
    let conn = wtx.conn;
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    let before = (!wtx.last_message.is_empty()).then(|| wtx.last_message.clone());
    let result = guarded(|| f(wtx));
    if result.is_err() {
        conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
        *wtx.last_message = before.unwrap_or_default();
    }
    conn.prepare_cached("RELEASE job")?.execute([])?;
    result
}

fn writer_loop(conn: Connection, mut rx: mpsc::UnboundedReceiver<(Lane, Job)>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut shared: VecDeque<Job> = VecDeque::new();
    let mut last_message: HashMap<String, i64> = HashMap::new();
    let mut open = true;
    loop {
        // Wait only when nothing is queued; after the channel closes, drain what is left.
        if shared.is_empty() && open {
            match rx.blocking_recv() {
                Some((Lane::Priority, job)) => batch.push(job),
                Some((Lane::Shared, job)) => shared.push_back(job),
                None => open = false,
            }
        }
        while open && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((Lane::Priority, job)) => batch.push(job),
                Ok((Lane::Shared, job)) => shared.push_back(job),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }
        // Only a closed channel leaves both empty here: every other pass received a job.
        if batch.is_empty() && shared.is_empty() {
            return;
        }
        run_lanes(&conn, &mut batch, &mut shared, &mut last_message);
    }
}

/// One group commit: every job in a transaction, then COMMIT, then every answer. If the transaction is
/// lost on the way (SQLite rolls back by itself on `SQLITE_FULL`, `IOERR`, `NOMEM`), the jobs left are not
/// run, since they would commit one by one in autocommit mode, and the whole batch answers with an error.
#[cfg(test)]
fn run_batch(conn: &Connection, batch: &mut Vec<Job>, last_message: &mut HashMap<String, i64>) {
    run_lanes(conn, batch, &mut VecDeque::new(), last_message);
}

/// [`run_batch`] of the priority jobs, then of shared jobs while the batch has used less than
/// [`SHARED_BUDGET`] of writer time (one at least, so the shared lane always moves).
fn run_lanes(
    conn: &Connection,
    priority: &mut Vec<Job>,
    shared: &mut VecDeque<Job>,
    last_message: &mut HashMap<String, i64>,
) {
    let started = std::time::Instant::now();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs drops their reply channels: each request gets an internal error.
        tracing::error!(error = %e, "cannot begin a write transaction");
        priority.clear();
        shared.clear();
        return;
    }
    let mut replies: Vec<Reply> = Vec::with_capacity(priority.len() + 1);
    let mut poisoned = false;
    let mut lost = false;
    let mut shared_run = 0usize;
    let mut priority_jobs = priority.drain(..);
    loop {
        let job = match priority_jobs.next() {
            Some(job) => job,
            None if shared_run == 0 || started.elapsed() < SHARED_BUDGET => {
                match shared.pop_front() {
                    Some(job) => {
                        shared_run += 1;
                        job
                    }
                    None => break,
                }
            }
            None => break,
        };
        if lost || conn.is_autocommit() {
            lost = true;
            continue; // dropped: its caller gets an internal error
        }
        let mut wtx = WriteTx { conn, last_message };
        let applied = job(&mut wtx);
        poisoned |= applied.poisoned;
        replies.push(applied.reply);
    }
    drop(priority_jobs);
    lost |= conn.is_autocommit();
    let outcome = if lost {
        last_message.clear();
        tracing::error!("the write transaction was rolled back under the batch; its requests fail");
        Err(
            "the transaction was lost (rolled back by SQLite); nothing of this batch was kept"
                .to_string(),
        )
    } else if poisoned {
        last_message.clear();
        Err("a write failed half-way; the batch was rolled back".to_string())
    } else {
        flush_last_messages(conn, last_message)
            .map_err(|e| e.to_string())
            .and_then(|()| conn.execute_batch("COMMIT").map_err(|e| e.to_string()))
    };
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for reply in replies {
        reply(outcome.clone());
    }
}

/// A stored time (ms since the epoch) as LeanCloud's ISO form, `2024-01-01T00:00:00.000Z`.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A job as `submit` builds it (no savepoint), answering into `out`.
    fn job(sql: &'static str, out: std::sync::mpsc::Sender<Result<(), String>>) -> Job {
        Box::new(move |wtx: &mut WriteTx<'_>| {
            let _ = wtx.conn().execute_batch(sql);
            Applied {
                reply: Box::new(move |r| {
                    let _ = out.send(r);
                }),
                poisoned: false,
            }
        })
    }

    #[test]
    fn u1_a_transaction_lost_mid_batch_fails_the_batch_and_nothing_after_it_commits_alone() {
        let conn = Connection::open_in_memory().expect("db");
        conn.execute_batch("CREATE TABLE t (v TEXT)")
            .expect("schema");
        let (tx, rx) = std::sync::mpsc::channel();
        // The second job stands in for SQLite rolling the transaction back by itself.
        let mut batch = vec![
            job("INSERT INTO t VALUES ('first')", tx.clone()),
            job("ROLLBACK", tx.clone()),
            job("INSERT INTO t VALUES ('after')", tx.clone()),
        ];
        run_batch(&conn, &mut batch, &mut HashMap::new());
        drop(tx);
        let answers: Vec<_> = rx.iter().collect();
        assert_eq!(
            2,
            answers.len(),
            "the job after the loss is not run (its caller gets an error)"
        );
        assert!(answers.iter().all(Result::is_err), "{answers:?}");
        let kept: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(
            0, kept,
            "no row of the batch was committed, none in autocommit"
        );
        assert!(conn.is_autocommit());
    }

    /// H2 (found by `bench hardening`): the writer ran jobs in arrival order, so a send queued behind a dozen
    /// app-key storage writes (each rewriting a 100 KB row) waited for all of them: senders' p99 was 8 s.
    /// Now a batch runs the priority jobs first. Before the fix the send ran 11th here; now 2nd, right after
    /// the storage write that was already running.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn h2_a_send_waits_for_at_most_the_storage_write_in_progress() {
        /// Poll a write once: that submits its job to the writer (the rest is waiting for the commit).
        async fn submit<F: std::future::Future + Unpin>(write: &mut F) {
            std::future::poll_fn(|cx| {
                let _ = std::pin::Pin::new(&mut *write).poll(cx);
                std::task::Poll::Ready(())
            })
            .await
        }
        let dir = tempfile::tempdir().expect("dir");
        let db = SqliteDb::open(&dir.path().join("t.sqlite3"), Durability::Normal).expect("open");
        let order = Arc::new(Mutex::new(Vec::<String>::new()));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (running_tx, running) = std::sync::mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        // The storage write in progress: it holds the writer until everything else is queued.
        let mut first = Box::pin({
            let order = order.clone();
            db.write(move |_| {
                let _ = running_tx.send(());
                let _ = gate.lock().expect("gate").recv();
                order.lock().expect("order").push("shared-0".into());
                Ok(())
            })
        });
        submit(&mut first).await;
        running
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the first write runs");
        let mut waiting = Vec::new();
        for i in 1..=10 {
            let order = order.clone();
            let mut write = Box::pin(db.write(move |_| {
                order.lock().expect("order").push(format!("shared-{i}"));
                std::thread::sleep(std::time::Duration::from_millis(5));
                Ok(())
            }));
            submit(&mut write).await;
            waiting.push(write);
        }
        let mut send = Box::pin({
            let order = order.clone();
            db.write_unguarded(move |_| {
                order.lock().expect("order").push("send".into());
                Ok(())
            })
        });
        submit(&mut send).await;
        release.send(()).expect("release");
        first.await.expect("written");
        send.await.expect("sent");
        for write in waiting {
            write.await.expect("written");
        }
        let order = order.lock().expect("order").clone();
        assert_eq!(11, order.len() - 1, "{order:?}");
        assert_eq!(
            Some(1),
            order.iter().position(|job| job == "send"),
            "the send runs right after the write in progress: {order:?}"
        );
        db.close();
    }

    /// M6 (found by `bench hardening`): sixteen app-key finds over 100,000 rows ran at once on the blocking
    /// pool and left the writer 27 of the ~105 ms/s of CPU the sends needed. Now app-key queries run at most
    /// half the cores at a time (one here on a 2-core machine), on threads of the lowest CPU priority; master-key
    /// queries never wait. Before the fix
    /// all eight ran at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn m6_app_key_queries_take_at_most_half_the_cores() {
        let dir = tempfile::tempdir().expect("dir");
        let db = SqliteDb::open(&dir.path().join("t.sqlite3"), Durability::Normal).expect("open");
        let limit = shared_query_threads();
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // The app-key queries hold their thread until the gate opens, so what runs at once is deterministic.
        let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        /// Opens the gate when dropped, on a failed assertion too, so a failure never leaves threads waiting.
        struct Opens(Arc<(Mutex<bool>, std::sync::Condvar)>);
        impl Drop for Opens {
            fn drop(&mut self) {
                if let Ok(mut open) = self.0 .0.lock() {
                    *open = true;
                }
                self.0 .1.notify_all();
            }
        }
        let opens = Opens(gate.clone());
        let queries: Vec<_> = (0..8)
            .map(|_| {
                let (db, running, peak, gate) =
                    (db.clone(), running.clone(), peak.clone(), gate.clone());
                tokio::spawn(async move {
                    db.read_in(Lane::Shared, move |_| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        let (open, opened) = &*gate;
                        let mut open = open.lock().expect("gate");
                        while !*open {
                            open = opened.wait(open).expect("gate");
                        }
                        drop(open);
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
                })
            })
            .collect();
        let started = std::time::Instant::now();
        while running.load(Ordering::SeqCst) < limit && started.elapsed().as_secs() < 10 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(
            limit,
            running.load(Ordering::SeqCst),
            "the query threads are busy"
        );
        // A master-key query is answered while every query thread is held.
        db.read_in(Lane::Priority, |_| Ok(()))
            .await
            .expect("priority read");
        assert_eq!(
            limit,
            running.load(Ordering::SeqCst),
            "no more started meanwhile"
        );
        drop(opens);
        for query in queries {
            query.await.expect("task").expect("read");
        }
        assert_eq!(limit, peak.load(Ordering::SeqCst));
        db.close();
    }

    #[tokio::test]
    async fn m1_a_panicking_job_fails_alone_and_the_writer_survives() {
        let dir = tempfile::tempdir().expect("dir");
        let db = SqliteDb::open(&dir.path().join("t.sqlite3"), Durability::Normal).expect("open");
        let panicked = db
            .write(|tx| -> StoreResult<()> {
                tx.conn()
                    .execute("INSERT INTO classes (name) VALUES ('Half')", [])?;
                panic!("a bug in one request");
            })
            .await;
        assert!(
            matches!(panicked, Err(StoreError::Internal(ref m)) if m.contains("panicked")),
            "{panicked:?}"
        );
        let after = db
            .write(|tx| {
                Ok(tx
                    .conn()
                    .execute("INSERT INTO classes (name) VALUES ('Next')", [])?)
            })
            .await;
        assert_eq!(1, after.expect("later writes still work"));
        assert!(db.writer_running());
        let half: i64 = db
            .read(|c| {
                Ok(c.query_row(
                    "SELECT COUNT(*) FROM classes WHERE name = 'Half'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .expect("read");
        assert_eq!(0, half, "the panicking job's change was rolled back");
        db.close();
        assert!(!db.writer_running());
    }
}
