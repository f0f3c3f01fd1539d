//! Persistence on SQLite or PostgreSQL ([`db::Db`], chosen at start): storage objects, messages, history, the
//! realtime positions, the operator console's queries. Knows nothing of HTTP or WebSocket: callers say who they
//! are with [`Caller`] and get a [`StoreError`] back, so the REST routes, the console and the realtime gateway
//! call the same functions on either backend. Each area (`objects`, `messages`, `history`, `realtime`,
//! `operator`) is a folder: its `mod.rs` holds the types, the rules and each operation as a match on the [`db::Db`],
//! and its `sqlite.rs` and `postgres.rs` the queries, peers that depend on the rules and never on each other. Each
//! backend's handle, and the queries several areas share, are in [`sqlite`] and [`postgres`]. No SQL lives outside
//! this module (except the bulk loader, `import/`, SQLite only).

pub mod blobs;
pub mod class_permissions;
pub mod conv_admin;
pub mod db;
mod error;
pub mod geo;
pub mod history;
pub mod messages;
pub mod objects;
pub mod operator;
pub mod ops;
pub mod postgres;
pub mod push_queue;
pub mod query;
pub mod realtime;
pub mod relations;
pub mod sqlite;
pub mod temp_convs;
pub mod time;
pub mod uploads;
pub mod user_tokens;
pub mod users;

pub use error::{StoreError, StoreResult};

/// Which lane a request goes in. On SQLite it is the writer's queue a job waits in: every batch runs all the
/// priority jobs waiting, then shared jobs for at most 4 ms of writer time (at least one), so a flood of expensive
/// storage writes from app-key clients (the public key: 10,000-element arrays, 128 KB objects) delays a message send by at most
/// about one such job instead of the whole queue of them (review finding H2, measured by `bench hardening`). On
/// PostgreSQL, shared-lane requests hold at most a quarter of the pool's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Message sends and master-key writes.
    Priority,
    /// Everything else (storage writes of app-key clients, conversation changes).
    Shared,
}

/// Who is asking: the app key (a client, bound by ACLs and class permissions), a client signed in as a user
/// (the app key with that user's session token: the ACL entries naming the user or its roles apply too), or the
/// master key (the app's backend, or the server itself acting for a logged-in realtime client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    App,
    User(std::sync::Arc<SessionUser>),
    Master,
}

/// The user a session token names, as ACLs see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub id: String,
    /// Names of the roles the user belongs to (directly or through roles of roles).
    pub roles: Vec<String>,
}

impl Caller {
    pub fn is_master(&self) -> bool {
        *self == Caller::Master
    }

    /// The signed-in user's id, if any.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Caller::User(u) => Some(&u.id),
            _ => None,
        }
    }

    /// The writer lane of this caller's writes: the app's backend goes ahead of app-key clients.
    pub fn lane(&self) -> Lane {
        match self {
            Caller::Master => Lane::Priority,
            Caller::App | Caller::User(_) => Lane::Shared,
        }
    }

    pub fn require_master(&self) -> StoreResult<()> {
        if self.is_master() {
            Ok(())
        } else {
            Err(StoreError::MasterKeyRequired)
        }
    }
}
