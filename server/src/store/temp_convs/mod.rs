//! Temporary conversations (`conv/start` with `tempConv`): fixed members, an expiry, `_tmp:` ids. Not
//! `_Conversation` rows: the storage API never sees them, and they are found by id only. Expired ones are
//! never answered and are purged when a temporary conversation is started.

pub(crate) mod postgres;
pub(crate) mod sqlite;

use rand::distr::{Alphanumeric, SampleString};

use crate::store::db::Db;
use crate::store::StoreResult;

/// The prefix of every temporary conversation id (the SDKs recognise them by it).
pub const ID_PREFIX: &str = "_tmp:";

/// Whether `cid` names a temporary conversation.
pub fn is_temp(cid: &str) -> bool {
    cid.starts_with(ID_PREFIX)
}

/// A live temporary conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempConv {
    pub id: String,
    /// Sorted.
    pub members: Vec<String>,
    pub creator: String,
    /// ms.
    pub created_at: i64,
    /// ms.
    pub expires_at: i64,
}

/// What a start asks for.
#[derive(Debug, Clone)]
pub struct NewTempConv {
    pub creator: String,
    /// Sorted, without duplicates, the creator included.
    pub members: Vec<String>,
    /// Time to live (ms).
    pub ttl_ms: i64,
    /// With `unique`, the live conversation of exactly these members is answered if there is one.
    pub unique: bool,
    /// ms.
    pub now: i64,
}

fn new_id() -> String {
    format!(
        "{ID_PREFIX}{}",
        Alphanumeric.sample_string(&mut rand::rng(), 24)
    )
}

fn members_key(members: &[String]) -> String {
    serde_json::Value::from(members.to_vec()).to_string()
}

fn members_of(key: &str) -> Vec<String> {
    serde_json::from_str(key).unwrap_or_default()
}

/// Starts a temporary conversation (or, `unique`, finds the live one of the same members); purges the
/// expired ones first.
pub async fn start(db: &Db, new: NewTempConv) -> StoreResult<TempConv> {
    match db {
        Db::Sqlite(db) => sqlite::start(db, new).await,
        Db::Postgres(pg) => postgres::start(pg, new).await,
    }
}

/// The live ones among `ids`, in no particular order.
pub async fn live(db: &Db, ids: Vec<String>, now: i64) -> StoreResult<Vec<TempConv>> {
    match db {
        Db::Sqlite(db) => sqlite::live(db, ids, now).await,
        Db::Postgres(pg) => postgres::live(pg, ids, now).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_recognised_by_their_prefix() {
        let id = new_id();
        assert!(is_temp(&id), "{id}");
        assert!(!is_temp("5f0c1e2d3a4b5c6d7e8f9a0b"));
        assert_eq!(
            vec!["a".to_string(), "b".to_string()],
            members_of(&members_key(&["a".into(), "b".into()]))
        );
    }
}
