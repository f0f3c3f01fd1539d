//! Class permissions, as LeanCloud's console sets them: per class, who may `get`, `find`, `create`, `update`,
//! `delete` and `add_fields` — everyone (`{"*": true}`), signed-in users (`{"onlySignInUsers": true}`), or
//! named users and roles (`{"users": [ids], "roles": [names]}`; both empty: the master key only). The master
//! key passes every class permission; ACLs still apply to each object afterwards.
//!
//! A class without a stored row has the defaults: `_Conversation` the master key only for every operation but
//! `add_fields` (conversations are managed by the app's backend and the realtime gateway unless the app opens them), `_User`
//! no `find` (LeanCloud's default: a client cannot list every user's e-mail and phone), every other class open.

pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::store::db::Db;
use crate::store::{Caller, StoreError, StoreResult};

/// An operation a class permission governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    Get,
    Find,
    Create,
    Update,
    Delete,
    AddFields,
}

impl Op {
    pub const ALL: [Op; 6] = [
        Op::Get,
        Op::Find,
        Op::Create,
        Op::Update,
        Op::Delete,
        Op::AddFields,
    ];

    /// The key in LeanCloud's permissions object.
    pub fn key(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Find => "find",
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::AddFields => "add_fields",
        }
    }

    /// The words of the refusal: «Forbidden to {verb} by class permissions.».
    pub fn verb(self) -> &'static str {
        match self {
            Op::AddFields => "add fields",
            other => other.key(),
        }
    }

    fn from_key(key: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.key() == key)
    }
}

/// Who may perform one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    Everyone,
    SignedIn,
    /// These users and the members of these roles (neither: the master key only).
    Named {
        users: Vec<String>,
        roles: Vec<String>,
    },
}

impl Permission {
    pub fn master_only() -> Permission {
        Permission::Named {
            users: Vec::new(),
            roles: Vec::new(),
        }
    }

    pub fn allows(&self, caller: &Caller) -> bool {
        match (self, caller) {
            (_, Caller::Master) | (Permission::Everyone, _) => true,
            (Permission::SignedIn, Caller::User(_)) => true,
            (Permission::Named { users, roles }, Caller::User(user)) => {
                users.iter().any(|u| *u == user.id) || user.roles.iter().any(|r| roles.contains(r))
            }
            _ => false,
        }
    }

    /// LeanCloud's wire form.
    pub fn to_json(&self) -> Value {
        match self {
            Permission::Everyone => json!({"*": true}),
            Permission::SignedIn => json!({"onlySignInUsers": true}),
            Permission::Named { users, roles } => json!({"users": users, "roles": roles}),
        }
    }

    /// Reads LeanCloud's wire form: `*` wins over `onlySignInUsers`, which wins over the lists (as LeanCloud's
    /// own schema tool reads them). Anything else is refused, so a typo never opens or closes a class silently.
    pub fn from_json(op: &str, value: &Value) -> StoreResult<Permission> {
        let bad = |why: &str| invalid(format!("The {op} permission {why}."));
        let Some(map) = value.as_object() else {
            return Err(bad("must be an object"));
        };
        let flag = |key: &str| -> StoreResult<bool> {
            match map.get(key) {
                None => Ok(false),
                Some(Value::Bool(true)) => Ok(true),
                Some(_) => Err(bad(&format!("may set {key:?} only to true"))),
            }
        };
        let list = |key: &str| -> StoreResult<Option<Vec<String>>> {
            match map.get(key) {
                None => Ok(None),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .ok_or_else(|| bad(&format!("lists {key} as non-empty strings")))
                    })
                    .collect::<StoreResult<Vec<_>>>()
                    .map(Some),
                Some(_) => Err(bad(&format!("lists {key} in an array"))),
            }
        };
        if let Some(other) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "*" | "onlySignInUsers" | "users" | "roles"))
        {
            return Err(bad(&format!(
                "has an unknown key {other:?} (known: \"*\", \"onlySignInUsers\", \"users\", \"roles\")"
            )));
        }
        let (everyone, signed_in) = (flag("*")?, flag("onlySignInUsers")?);
        let (users, roles) = (list("users")?, list("roles")?);
        if everyone {
            Ok(Permission::Everyone)
        } else if signed_in {
            Ok(Permission::SignedIn)
        } else if users.is_none() && roles.is_none() {
            Err(bad(
                "is empty: give \"*\", \"onlySignInUsers\" or \"users\"/\"roles\"",
            ))
        } else {
            Ok(Permission::Named {
                users: users.unwrap_or_default(),
                roles: roles.unwrap_or_default(),
            })
        }
    }
}

fn invalid(message: String) -> StoreError {
    StoreError::Rule {
        code: crate::protocol::codes::INVALID_JSON,
        message,
    }
}

/// The permissions of one class, every operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassPermissions(BTreeMap<Op, Permission>);

impl ClassPermissions {
    /// What a class has until the app sets its permissions.
    pub fn defaults(class: &str) -> ClassPermissions {
        let open = |op: Op| match (class, op) {
            // Adding fields is open: closed `create` and `update` already keep clients from writing.
            ("_Conversation", op) if op != Op::AddFields => Permission::master_only(),
            ("_User", Op::Find) => Permission::master_only(),
            _ => Permission::Everyone,
        };
        ClassPermissions(Op::ALL.into_iter().map(|op| (op, open(op))).collect())
    }

    pub fn get(&self, op: Op) -> &Permission {
        // Every operation has an entry (built from `Op::ALL`).
        &self.0[&op]
    }

    /// The refusal when `caller` may not perform `op`.
    pub fn check(&self, op: Op, caller: &Caller) -> StoreResult<()> {
        if self.get(op).allows(caller) {
            Ok(())
        } else {
            Err(StoreError::ClassForbidden(op.verb()))
        }
    }

    /// How the admin endpoint and the console show a class's permissions: `{"className", "permissions",
    /// "default"}` (`default`: the class has its default permissions).
    pub fn summary(&self, class: &str) -> Value {
        json!({
            "className": class,
            "permissions": self.to_json(),
            "default": *self == ClassPermissions::defaults(class),
        })
    }

    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(op, p)| (op.key().to_string(), p.to_json()))
                .collect(),
        )
    }

    /// Reads `{"get": …, "find": …, …}`. An operation left out keeps the class's default; an unknown one is
    /// refused.
    pub fn from_json(class: &str, value: &Value) -> StoreResult<ClassPermissions> {
        let Some(map) = value.as_object() else {
            return Err(invalid(
                "Class permissions are an object: {\"get\": …, \"find\": …, \"create\": …, \"update\": …, \"delete\": …, \"add_fields\": …}.".into(),
            ));
        };
        let mut out = ClassPermissions::defaults(class);
        for (key, value) in map {
            let op = Op::from_key(key).ok_or_else(|| {
                invalid(format!(
                    "Unknown operation {key:?} in class permissions (known: get, find, create, update, delete, add_fields)."
                ))
            })?;
            out.0.insert(op, Permission::from_json(key, value)?);
        }
        Ok(out)
    }
}

/// The stored permissions of `class` (`None`: it has the defaults).
pub async fn load(db: &Db, class: String) -> StoreResult<Option<ClassPermissions>> {
    let stored = match db {
        Db::Sqlite(db) => sqlite::load(db, class.clone()).await?,
        Db::Postgres(pg) => postgres::load(pg, class.clone()).await?,
    };
    stored
        .map(|v| ClassPermissions::from_json(&class, &v))
        .transpose()
}

/// Every class with stored permissions, by name.
pub async fn load_all(db: &Db) -> StoreResult<BTreeMap<String, ClassPermissions>> {
    let rows = match db {
        Db::Sqlite(db) => sqlite::load_all(db).await?,
        Db::Postgres(pg) => postgres::load_all(pg).await?,
    };
    rows.into_iter()
        .map(|(class, v)| Ok((class.clone(), ClassPermissions::from_json(&class, &v)?)))
        .collect()
}

/// Stores the permissions of `class`, or with `None` forgets them (back to the defaults).
pub async fn save(
    db: &Db,
    class: String,
    perms: Option<&ClassPermissions>,
    now: i64,
) -> StoreResult<()> {
    let value = perms.map(ClassPermissions::to_json);
    match db {
        Db::Sqlite(db) => sqlite::save(db, class, value, now).await,
        Db::Postgres(pg) => postgres::save(pg, class, value, now).await,
    }
}

/// The top-level field names the objects of `class` have (for `add_fields`).
pub async fn fields(db: &Db, class: String) -> StoreResult<Vec<String>> {
    match db {
        Db::Sqlite(db) => sqlite::fields(db, class).await,
        Db::Postgres(pg) => postgres::fields(pg, class).await,
    }
}

/// The field names a create or update body would write (the part before a `.` of a nested key), without the
/// ones the server owns.
pub fn written_fields(body: &Map<String, Value>) -> impl Iterator<Item = &str> {
    body.keys()
        .map(|k| k.split('.').next().unwrap_or(k))
        .filter(|k| !crate::store::ops::RESERVED.contains(k) && *k != "ACL")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::SessionUser;

    fn user(id: &str, roles: &[&str]) -> Caller {
        Caller::User(Arc::new(SessionUser {
            id: id.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }))
    }

    #[test]
    fn defaults_close_conversations_and_the_user_list_only() {
        let conv = ClassPermissions::defaults("_Conversation");
        let users = ClassPermissions::defaults("_User");
        let other = ClassPermissions::defaults("GameScore");
        for op in Op::ALL {
            let closed = op != Op::AddFields;
            assert_eq!(conv.get(op).allows(&Caller::App), !closed, "{op:?}");
            assert_eq!(conv.get(op).allows(&user("u", &[])), !closed, "{op:?}");
            assert!(conv.get(op).allows(&Caller::Master), "{op:?}");
            assert!(other.get(op).allows(&Caller::App), "{op:?}");
            assert_eq!(users.get(op).allows(&Caller::App), op != Op::Find, "{op:?}");
        }
    }

    #[test]
    fn each_kind_of_permission_admits_its_callers() {
        let signed = Permission::SignedIn;
        assert!(!signed.allows(&Caller::App));
        assert!(signed.allows(&user("u", &[])));
        let named = Permission::Named {
            users: vec!["u1".into()],
            roles: vec!["Admin".into()],
        };
        assert!(named.allows(&user("u1", &[])));
        assert!(named.allows(&user("u2", &["Admin"])));
        assert!(!named.allows(&user("u2", &["Staff"])));
        assert!(!named.allows(&Caller::App));
        assert!(named.allows(&Caller::Master));
    }

    #[test]
    fn wire_form_round_trips_and_left_out_operations_keep_the_defaults() {
        let body = json!({"find": {"onlySignInUsers": true}, "create": {"users": ["u1"]}, "delete": {"*": true, "roles": ["x"]}});
        let perms = ClassPermissions::from_json("_Conversation", &body).unwrap();
        assert_eq!(
            perms.to_json(),
            json!({
                "get": {"users": [], "roles": []},
                "find": {"onlySignInUsers": true},
                "create": {"users": ["u1"], "roles": []},
                "update": {"users": [], "roles": []},
                "delete": {"*": true},
                "add_fields": {"*": true},
            })
        );
        assert_eq!(
            ClassPermissions::from_json("_Conversation", &perms.to_json()).unwrap(),
            perms
        );
    }

    #[test]
    fn malformed_permissions_are_refused_with_a_reason() {
        for (body, needle) in [
            (json!([]), "are an object"),
            (json!({"read": {"*": true}}), "Unknown operation \"read\""),
            (json!({"get": {}}), "is empty"),
            (json!({"get": {"*": false}}), "only to true"),
            (json!({"get": {"users": "u1"}}), "in an array"),
            (json!({"get": {"users": [1]}}), "non-empty strings"),
            (
                json!({"get": {"everyone": true}}),
                "unknown key \"everyone\"",
            ),
            (json!({"get": true}), "must be an object"),
        ] {
            let err = ClassPermissions::from_json("A", &body)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn written_fields_are_the_top_level_user_fields() {
        let body = json!({"a": 1, "b.c": 2, "objectId": "x", "ACL": {}, "createdAt": "t"});
        let mut fields: Vec<&str> = written_fields(body.as_object().unwrap()).collect();
        fields.sort();
        assert_eq!(fields, ["a", "b"]);
    }
}
