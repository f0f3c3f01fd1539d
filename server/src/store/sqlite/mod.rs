//! SQLite access: the handle ([`SqliteDb`]) with its schema migrations, one writer thread doing group commit
//! in two lanes (`writer`), and a small pool of read connections (app-key queries on a few low-priority
//! threads of their own). The store areas' SQLite queries (`store/<area>/sqlite.rs`) run on it; what several
//! areas share is in `shared`.

pub mod backup;
pub(crate) mod shared;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::config::Durability;
use crate::store::{Lane, StoreError, StoreResult};
pub use writer::WriteTx;
use writer::{guarded, into_job, writer_loop, Job};

/// Versioned migrations, applied in order to a database whose `user_version` is below theirs. 3 holds the
/// tables of imported data (`ack-at`, service-conversation subscribers; see `crate::import`), 4 the file API's
/// upload tokens, 5 receipts and patches (`messages.receipt`, `messages.patched_at`), 6 the indexes of user
/// lookups, 7 temporary conversations, 8 relation fields, 12 the one-time tokens of the mail flows, 13 the push
/// queue, 14 its APNs topic, 15 the index of devices by channel.
const MIGRATIONS: [(i64, &str); 15] = [
    (1, include_str!("../../../migrations/001_init.sql")),
    (2, include_str!("../../../migrations/002_realtime.sql")),
    (3, include_str!("../../../migrations/003_migration.sql")),
    (4, include_str!("../../../migrations/004_files.sql")),
    (
        5,
        include_str!("../../../migrations/005_receipts_patches.sql"),
    ),
    (6, include_str!("../../../migrations/006_users.sql")),
    (
        7,
        include_str!("../../../migrations/007_temp_conversations.sql"),
    ),
    (8, include_str!("../../../migrations/008_relations.sql")),
    (9, include_str!("../../../migrations/009_conv_admin.sql")),
    (
        10,
        include_str!("../../../migrations/010_class_permissions.sql"),
    ),
    (
        11,
        include_str!("../../../migrations/011_conversation_members.sql"),
    ),
    (12, include_str!("../../../migrations/012_user_tokens.sql")),
    (13, include_str!("../../../migrations/013_push_queue.sql")),
    (14, include_str!("../../../migrations/014_push_topic.sql")),
    (
        15,
        include_str!("../../../migrations/015_installation_channels.sql"),
    ),
];

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
    /// Where the writer reports its commits (`--metrics-listen`).
    metrics: writer::MetricsSlot,
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

/// `path` with `suffix` appended to its file name: the database's `-wal` and `-shm`, a backup's `.partial`.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
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
        let metrics = writer::MetricsSlot::default();
        let writer_metrics = metrics.clone();
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, writer_metrics))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        let db = SqliteDb {
            inner: Arc::new(DbInner {
                path: path.to_path_buf(),
                jobs: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
                readers: Mutex::new(Vec::new()),
                clock: AtomicI64::new(last_ts),
                metrics,
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

    /// Reports every group commit (its duration and jobs per lane) to `metrics` from now on; the first call wins.
    pub fn attach_metrics(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.inner.metrics.set(metrics);
    }

    /// The size of the database file and its WAL, in bytes.
    pub fn size_bytes(&self) -> u64 {
        [self.path().to_path_buf(), with_suffix(self.path(), "-wal")]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A message timestamp (ms): now, but always after every one already handed out, so timestamps follow
    /// insertion order and no two are equal (unread counts and offline delivery compare `timestamp >
    /// position`: a message stamped the same millisecond as the one a client just read would be missed).
    pub fn next_timestamp(&self) -> i64 {
        let now = chrono::Utc::now().timestamp_millis();
        let prev = self
            .inner
            .clock
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |prev| {
                Some(now.max(prev + 1))
            })
            .unwrap_or_else(|prev| prev);
        now.max(prev + 1)
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
        let job = into_job(savepoint, f, tx);
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

#[cfg(test)]
mod tests {
    use super::*;

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
