//! Persistence: the SQLite handle, storage objects, messages.

pub mod db;
pub mod messages;
pub mod objects;
pub mod query;
