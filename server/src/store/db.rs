//! The database handle ([`Db`]: SQLite or PostgreSQL, chosen at start). Each backend lives in a module of its
//! own, as peers: [`crate::store::sqlite`] (one writer thread doing group commit, a small pool of read
//! connections) and [`crate::store::postgres`] (a connection pool shared by several instances). The time helpers
//! ([`iso_millis`], [`parse_iso_millis`]) are re-exported here from [`crate::store::time`].

pub use crate::store::sqlite::{SqliteDb, WriteTx};
pub use crate::store::time::{iso_millis, parse_iso_millis};

/// The server's database, chosen at start: the embedded SQLite file (the default), or a PostgreSQL database
/// that several instances share. Every function of the store takes it and runs the same operation on
/// either backend: each store area (`store/<area>/mod.rs`) holds the operation's rules and hands the query to
/// its `sqlite` or `postgres` child. Cheap to clone.
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

    /// The database's size in bytes: the SQLite file and its WAL, or PostgreSQL's `pg_database_size` (0 when it
    /// cannot be read).
    pub async fn size_bytes(&self) -> u64 {
        match self {
            Db::Sqlite(db) => db.size_bytes(),
            Db::Postgres(pg) => pg
                .database_size()
                .await
                .ok()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
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
