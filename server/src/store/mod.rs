//! Persistence: the SQLite handle, storage objects, messages. Knows nothing of HTTP or WebSocket: callers
//! say who they are with [`Caller`] and get a [`StoreError`] back, so the REST routes and the realtime
//! gateway call the same functions.

pub mod db;
mod error;
pub mod messages;
pub mod objects;
pub mod ops;
pub mod query;
pub mod realtime;

pub use error::{StoreError, StoreResult};

/// Who is asking: the app key (a client, bound by ACLs and class permissions) or the master key (the
/// app's backend, or the server itself acting for a logged-in realtime client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    App,
    Master,
}

impl Caller {
    pub fn is_master(self) -> bool {
        self == Caller::Master
    }

    /// The writer lane of this caller's writes: the app's backend goes ahead of app-key clients.
    pub fn lane(self) -> db::Lane {
        match self {
            Caller::Master => db::Lane::Priority,
            Caller::App => db::Lane::Shared,
        }
    }

    pub fn require_master(self) -> StoreResult<()> {
        if self.is_master() {
            Ok(())
        } else {
            Err(StoreError::MasterKeyRequired)
        }
    }
}
