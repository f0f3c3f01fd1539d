//! Class permissions in force: the checks every door of the storage API makes before it reads or writes a
//! class (`/1.1/classes`, the `/1.1/users` and `/1.1/roles` aliases, `/1.1/batch`), and their settings (the admin
//! endpoint and the console). The rules themselves are [`crate::store::class_permissions`].
//!
//! Each instance keeps what it read for [`FRESH`], so a check costs no query; a change made on another instance
//! (PostgreSQL) is in force everywhere within that time, on the instance that made it at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::domain::Services;
use crate::store::class_permissions::{self as perms, ClassPermissions, Op};
use crate::store::objects::{validate_class_name, CONVERSATION};
use crate::store::users::USER_CLASS;
use crate::store::{Caller, StoreError, StoreResult};

/// How long an instance answers from what it read.
pub const FRESH: Duration = Duration::from_secs(2);

/// What this instance read recently: each class's permissions, and the fields of the classes whose
/// `add_fields` is closed to someone.
#[derive(Debug, Default)]
pub struct PermissionCache {
    classes: Mutex<HashMap<String, (Arc<ClassPermissions>, Instant)>>,
    fields: Mutex<HashMap<String, HashSet<String>>>,
}

impl PermissionCache {
    fn cached(&self, class: &str) -> Option<Arc<ClassPermissions>> {
        let map = self.classes.lock().unwrap_or_else(|e| e.into_inner());
        map.get(class)
            .filter(|(_, at)| at.elapsed() < FRESH)
            .map(|(p, _)| p.clone())
    }

    fn remember(&self, class: &str, p: Arc<ClassPermissions>) {
        let mut map = self.classes.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded by the classes the app has; forget the stale ones now and then.
        if map.len() > 10_000 {
            map.retain(|_, (_, at)| at.elapsed() < FRESH);
        }
        map.insert(class.to_string(), (p, Instant::now()));
    }

    fn known_fields(&self, class: &str) -> Option<HashSet<String>> {
        let map = self.fields.lock().unwrap_or_else(|e| e.into_inner());
        map.get(class).cloned()
    }

    fn remember_fields(&self, class: &str, fields: HashSet<String>) {
        let mut map = self.fields.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(class.to_string(), fields);
    }
}

/// The permissions of `class` in force.
pub async fn of(svc: &Services, class: &str) -> StoreResult<Arc<ClassPermissions>> {
    if let Some(p) = svc.class_permissions.cached(class) {
        return Ok(p);
    }
    let p = Arc::new(
        perms::load(&svc.db, class.to_string())
            .await?
            .unwrap_or_else(|| ClassPermissions::defaults(class)),
    );
    svc.class_permissions.remember(class, p.clone());
    Ok(p)
}

/// Refuses `caller` an operation the class's permissions do not give it.
pub async fn check(svc: &Services, class: &str, op: Op, caller: &Caller) -> StoreResult<()> {
    if caller.is_master() {
        return Ok(());
    }
    of(svc, class).await?.check(op, caller)
}

/// A create or update: the operation's permission, and `add_fields` for each field the class's objects do not
/// have yet.
pub async fn check_write(
    svc: &Services,
    class: &str,
    op: Op,
    caller: &Caller,
    body: &Map<String, Value>,
) -> StoreResult<()> {
    if caller.is_master() {
        return Ok(());
    }
    let p = of(svc, class).await?;
    p.check(op, caller)?;
    if p.get(Op::AddFields).allows(caller) {
        return Ok(());
    }
    let written: Vec<&str> = perms::written_fields(body).collect();
    let cached = svc.class_permissions.known_fields(class);
    let covered = |known: &HashSet<String>| written.iter().all(|f| known.contains(*f));
    if cached.as_ref().is_some_and(covered) {
        return Ok(());
    }
    // A field this instance has not seen: look at the class as it is now (another caller may have added it).
    let known: HashSet<String> = perms::fields(&svc.db, class.to_string())
        .await?
        .into_iter()
        .collect();
    let ok = covered(&known);
    svc.class_permissions.remember_fields(class, known);
    if ok {
        Ok(())
    } else {
        Err(StoreError::ClassForbidden(Op::AddFields.verb()))
    }
}

/// Every class whose permissions were set, and the built-in classes whose defaults close something, by name (the
/// other classes are open).
pub async fn list(svc: &Services) -> StoreResult<BTreeMap<String, ClassPermissions>> {
    let mut set = perms::load_all(&svc.db).await?;
    for class in [CONVERSATION, USER_CLASS] {
        set.entry(class.to_string())
            .or_insert_with(|| ClassPermissions::defaults(class));
    }
    Ok(set)
}

/// Sets the permissions of `class` from LeanCloud's wire form (an operation left out gets the class's default),
/// in force on this instance at once; what is now in force.
pub async fn set(svc: &Services, class: &str, value: &Value) -> StoreResult<ClassPermissions> {
    validate_class_name(class)?;
    let p = ClassPermissions::from_json(class, value)?;
    perms::save(&svc.db, class.to_string(), Some(&p), now_ms()).await?;
    svc.class_permissions.remember(class, Arc::new(p.clone()));
    Ok(p)
}

/// Gives `class` its default permissions back.
pub async fn reset(svc: &Services, class: &str) -> StoreResult<ClassPermissions> {
    validate_class_name(class)?;
    perms::save(&svc.db, class.to_string(), None, now_ms()).await?;
    let p = ClassPermissions::defaults(class);
    svc.class_permissions.remember(class, Arc::new(p.clone()));
    Ok(p)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
