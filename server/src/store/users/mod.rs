//! Users (`_User` rows of the objects table) as sign-up and login need them: found by session token, username,
//! e-mail or phone (indexed: migration 5), created with those fields unique, and their private fields
//! (`password`, `salt`, `sessionToken`) changed by the server itself. The rules (hashing, codes, who may do what)
//! are in `crate::domain::users`.

mod postgres;
mod sqlite;

use serde_json::{Map, Value};

use crate::store::db::Db;
use crate::store::objects::Row;
use crate::store::StoreResult;

/// The class of users.
pub const USER_CLASS: &str = "_User";
/// Fields of `_User` stored but never served to anyone: the password hash, LeanCloud's salt, the token.
pub const PRIVATE_FIELDS: [&str; 3] = ["password", "salt", "sessionToken"];

/// The fields a user is found by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKey {
    SessionToken,
    Username,
    Email,
    Phone,
}

impl UserKey {
    pub fn field(self) -> &'static str {
        match self {
            UserKey::SessionToken => "sessionToken",
            UserKey::Username => "username",
            UserKey::Email => "email",
            UserKey::Phone => "mobilePhoneNumber",
        }
    }

    /// The fields no two users share.
    pub const UNIQUE: [UserKey; 3] = [UserKey::Username, UserKey::Email, UserKey::Phone];
}

/// The user whose `key` field is `value`.
pub async fn find_by(db: &Db, key: UserKey, value: String) -> StoreResult<Option<Row>> {
    match db {
        Db::Sqlite(db) => sqlite::find_by(db, key, value).await,
        Db::Postgres(pg) => postgres::find_by(pg, key, value).await,
    }
}

/// User `id`, with every stored field.
pub async fn get(db: &Db, id: String) -> StoreResult<Option<Row>> {
    match db {
        Db::Sqlite(db) => sqlite::get(db, id).await,
        Db::Postgres(pg) => postgres::get(pg, id).await,
    }
}

/// The user linked to `platform`'s account `id` (`authData.<platform>.<id_field>`). `platform` and
/// `id_field` are letters, digits and `_` (checked by the caller).
pub async fn find_by_auth(
    db: &Db,
    platform: String,
    id_field: String,
    id: String,
) -> StoreResult<Option<Row>> {
    match db {
        Db::Sqlite(db) => sqlite::find_by_auth(db, platform, id_field, id).await,
        Db::Postgres(pg) => postgres::find_by_auth(pg, platform, id_field, id).await,
    }
}

/// Stores a new user: `data` (with its hashed password and session token) and `acl`. Refuses with
/// [`crate::store::StoreError::Taken`] a username, e-mail or phone another user has.
pub async fn create(db: &Db, data: Map<String, Value>, acl: Option<Value>) -> StoreResult<Row> {
    match db {
        Db::Sqlite(db) => sqlite::create(db, data, acl).await,
        Db::Postgres(pg) => postgres::create(pg, data, acl).await,
    }
}

/// Sets (`Some`) or removes (`None`) fields of user `id` as the server (no ACL; unique fields stay unique),
/// moves its `updatedAt`, and answers the row after the change; `None` when there is no such user.
pub async fn set_fields(
    db: &Db,
    id: String,
    changes: Vec<(String, Option<Value>)>,
) -> StoreResult<Option<Row>> {
    match db {
        Db::Sqlite(db) => sqlite::set_fields(db, id, changes).await,
        Db::Postgres(pg) => postgres::set_fields(pg, id, changes).await,
    }
}

/// Applies `changes` to `data`; the unique keys among them, to check.
fn apply(data: &mut Map<String, Value>, changes: Vec<(String, Option<Value>)>) -> Vec<UserKey> {
    let mut touched = Vec::new();
    for (field, value) in changes {
        if let Some(key) = UserKey::UNIQUE.into_iter().find(|k| k.field() == field) {
            touched.push(key);
        }
        match value {
            Some(v) => data.insert(field, v),
            None => data.remove(&field),
        };
    }
    touched
}

/// The value of a unique key in `data`, when it is a non-empty string (what uniqueness applies to).
fn unique_value(data: &Map<String, Value>, key: UserKey) -> Option<&str> {
    data.get(key.field())
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}
