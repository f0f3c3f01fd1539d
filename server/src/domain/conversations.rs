//! Conversation changes, one function per operation for every door (REST `_Conversation` writes, the
//! console, the WebSocket `conv/*` commands): before-hook → store → after-hook → notification of the online
//! members. The notification policy is stated once, in [`notify_members`] and [`notify_update`]:
//!
//! - clients added or removed hear `joined` / `left` (not the one who made the change, if it is a client);
//! - the members who were there before, and stay, hear `members_joined` / `members_left` with the ids;
//! - a change of attributes is `updated` to every member but its author;
//! - a started conversation is `joined` to its members but its creator (chat rooms excepted).
//!
//! `by` is the client that made the change (`initBy`), or `None` for the app's backend (REST with the
//! master key, the console). Who may make a change is the adapters' decision (signatures, membership);
//! what happens once it is made is decided here.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use super::Services;
use crate::hooks::Refusal;
use crate::protocol::conversation::{CLASS, CREATOR, MEMBERS, MUTED, TRANSIENT};
use crate::protocol::Hook;
use crate::realtime::ConvNotice;
use crate::store::conv_admin::{self, Notification};
use crate::store::objects::{self, Created};
use crate::store::temp_convs::{self, NewTempConv, TempConv};
use crate::store::{Caller, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ConvError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A before-hook refused the change.
    #[error("the change was rejected by the app")]
    Rejected(Refusal),
}

/// A change of `m` in an update: members added or removed, or the whole list replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    Add(Vec<String>),
    Remove(Vec<String>),
    /// `m` set to this list.
    Set(Vec<String>),
}

impl MemberChange {
    /// The change an update body makes to `m`, if any: `{"__op": "Add" | "AddUnique" | "Remove", "objects"}`
    /// or a plain array.
    pub fn of(body: &Map<String, Value>) -> Option<MemberChange> {
        match body.get(MEMBERS)? {
            Value::Array(_) => Some(MemberChange::Set(strings(body.get(MEMBERS)))),
            Value::Object(op) => {
                let ids = strings(op.get("objects"));
                match op.get("__op").and_then(Value::as_str) {
                    Some("Add" | "AddUnique") => Some(MemberChange::Add(ids)),
                    Some("Remove") => Some(MemberChange::Remove(ids)),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// What an update asks of a conversation.
#[derive(Debug, Clone)]
pub struct Update {
    /// Whose rights the store checks (the ACL of a REST caller; the gateway and console act as master).
    pub caller: Caller,
    /// The fields and operations, `m` included.
    pub body: Map<String, Value>,
    /// Apply only if the conversation matches (REST `where`).
    pub where_: Option<Value>,
    /// Answer with the whole object.
    pub fetch: bool,
}

impl Update {
    /// An update by the server itself (gateway, console): no ACL, no condition.
    pub fn master(body: Map<String, Value>) -> Update {
        Update {
            caller: Caller::Master,
            body,
            where_: None,
            fetch: false,
        }
    }
}

pub(crate) fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Starts a conversation from its whole body (`m`, `c`, attributes, `tr`, `unique`, …):
/// `_conversationStart` → store → `_conversationStarted` → `joined` to the members but `by`.
pub async fn start(
    svc: &Services,
    by: Option<&str>,
    body: Map<String, Value>,
    fetch: bool,
) -> Result<Created, ConvError> {
    let members = strings(body.get(MEMBERS));
    let attr: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), MEMBERS | CREATOR | "ACL"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    svc.hooks
        .conversation_start(by, &members, &attr)
        .await
        .map_err(ConvError::Rejected)?;
    let chat_room = body.get(TRANSIENT) == Some(&Value::Bool(true));
    let created = objects::create(&svc.db, CLASS.to_string(), body, fetch).await?;
    if !created.existed {
        svc.hooks
            .conversation_changed(Hook::ConversationStarted, by, &created.id, &members);
        if !chat_room {
            let others: Vec<String> = members
                .into_iter()
                .filter(|m| Some(m.as_str()) != by)
                .collect();
            tell(svc, &others, &created.id, by, ConvNotice::Joined);
        }
    }
    Ok(created)
}

/// Updates conversation `cid`: members (`m`) and attributes in one body. `_conversationAdd` /
/// `_conversationRemove` for a member change (not for a client leaving by itself), `_conversationUpdate`
/// for the attributes (its answer may rewrite them) → store → `_conversationAdded` / `_conversationRemoved`
/// → the notifications. Answers what the store answers (`updatedAt`, or the whole object with `fetch`).
pub async fn update(
    svc: &Services,
    by: Option<&str>,
    cid: &str,
    mut update: Update,
) -> Result<Map<String, Value>, ConvError> {
    let change = MemberChange::of(&update.body);
    // The members before the change: who is told what. A conversation the caller may not see is not
    // looked at: the store refuses the update below anyway.
    let before = match objects::conversation(&svc.db, cid.to_string()).await? {
        Some(kind) => kind.members,
        None => Vec::new(),
    };
    if let Some(change) = &change {
        let leaving = matches!(change, MemberChange::Remove(ids) if by.is_some() && ids.len() == 1 && Some(ids[0].as_str()) == by);
        // LeanCloud asks `_conversationRemove` about kicks only, not about a client leaving.
        match change {
            MemberChange::Add(ids) => svc.hooks.conversation_members(true, by, cid, ids).await,
            MemberChange::Remove(ids) if !leaving => {
                svc.hooks.conversation_members(false, by, cid, ids).await
            }
            MemberChange::Remove(_) | MemberChange::Set(_) => Ok(()),
        }
        .map_err(ConvError::Rejected)?;
    }
    let attr: Map<String, Value> = update
        .body
        .iter()
        .filter(|(k, _)| k.as_str() != MEMBERS)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut attr_json = None;
    if !attr.is_empty() {
        let attr = match svc
            .hooks
            .conversation_update(by, cid, &attr)
            .await
            .map_err(ConvError::Rejected)?
        {
            Some(rewritten) => {
                update.body.retain(|k, _| k == MEMBERS);
                update.body.extend(rewritten.clone());
                rewritten
            }
            None => attr,
        };
        attr_json = Some(Value::Object(attr).to_string());
    }
    let out = objects::update(
        &svc.db,
        update.caller,
        CLASS.to_string(),
        cid.to_string(),
        update.body,
        update.where_,
        update.fetch,
    )
    .await?;
    let (added, removed) = match change {
        None => (Vec::new(), Vec::new()),
        Some(MemberChange::Add(ids)) => (ids, Vec::new()),
        Some(MemberChange::Remove(ids)) => (Vec::new(), ids),
        Some(MemberChange::Set(ids)) => {
            let (old, new): (HashSet<&String>, HashSet<&String>) =
                (before.iter().collect(), ids.iter().collect());
            (
                ids.iter().filter(|m| !old.contains(m)).cloned().collect(),
                before
                    .iter()
                    .filter(|m| !new.contains(m))
                    .cloned()
                    .collect(),
            )
        }
    };
    if !added.is_empty() {
        svc.hooks
            .conversation_changed(Hook::ConversationAdded, by, cid, &added);
        notify_members(svc, cid, by, true, &added, &before);
    }
    if !removed.is_empty() {
        svc.hooks
            .conversation_changed(Hook::ConversationRemoved, by, cid, &removed);
        notify_members(svc, cid, by, false, &removed, &before);
    }
    if let Some(attr) = attr_json {
        // The members after the change, from the change itself: no second read of the conversation.
        let gone: HashSet<&String> = removed.iter().collect();
        let mut members: Vec<String> = before
            .iter()
            .filter(|m| !gone.contains(m))
            .cloned()
            .collect();
        let mut present: HashSet<String> = members.iter().cloned().collect();
        for id in added {
            if present.insert(id.clone()) {
                members.push(id);
            }
        }
        notify_update(svc, cid, by, &members, &attr);
    }
    Ok(out)
}

/// A temporary conversation's time to live when the client names none (LeanCloud's: one day), and the
/// longest it may ask for (30 days).
pub const TEMP_TTL_DEFAULT_SECS: i64 = 86_400;
pub const TEMP_TTL_MAX_SECS: i64 = 30 * 86_400;

/// Starts a temporary conversation of `members` (the creator `by` among them) living `ttl_secs` (default
/// one day; at most 30 days; refused when not positive). With `unique`, the live one of the same members is
/// answered instead of a new one. No hook and no notification: its members learn of it with its first
/// message, as on LeanCloud.
pub async fn start_temporary(
    svc: &Services,
    by: &str,
    members: Vec<String>,
    ttl_secs: Option<i64>,
    unique: bool,
) -> Result<TempConv, TempConvError> {
    let ttl = ttl_secs.unwrap_or(TEMP_TTL_DEFAULT_SECS);
    if ttl <= 0 || ttl > TEMP_TTL_MAX_SECS {
        return Err(TempConvError::BadTtl);
    }
    let mut members = members;
    if !members.iter().any(|m| m == by) {
        members.push(by.to_string());
    }
    members.sort();
    members.dedup();
    Ok(temp_convs::start(
        &svc.db,
        NewTempConv {
            creator: by.to_string(),
            members,
            ttl_ms: ttl * 1000,
            unique,
            now: chrono::Utc::now().timestamp_millis(),
        },
    )
    .await?)
}

/// The live temporary conversations among `ids` that `client` is a member of.
pub async fn temporary(
    svc: &Services,
    client: &str,
    ids: Vec<String>,
) -> Result<Vec<TempConv>, StoreError> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut found = temp_convs::live(&svc.db, ids, now).await?;
    found.retain(|c| c.members.iter().any(|m| m == client));
    Ok(found)
}

/// A live temporary conversation as `conv/query` answers it: `_Conversation`-like, with `tempConv` and `ttl`
/// (the seconds it has left, from which the SDK sets `expiredAt`).
pub fn temporary_row(conv: &TempConv, now: i64) -> Value {
    let iso = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    };
    json!({
        "objectId": conv.id,
        "m": conv.members,
        "c": conv.creator,
        "tempConv": true,
        "ttl": ((conv.expires_at - now).max(0) + 999) / 1000,
        "createdAt": iso(conv.created_at),
        "updatedAt": iso(conv.created_at),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum TempConvError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("tempConvTTL must be between 1 and {TEMP_TTL_MAX_SECS} seconds")]
    BadTtl,
}

/// `conv/mute` / `conv/unmute`: `by` added to (or removed from) the conversation's `mu`, so it gets no
/// offline push from it. `_conversationUpdate` is asked first with `mute`, as LeanCloud does (it may
/// refuse); nobody else is told.
pub async fn mute(
    svc: &Services,
    by: &str,
    cid: &str,
    mute: bool,
) -> Result<Map<String, Value>, ConvError> {
    let op = if mute { "AddUnique" } else { "Remove" };
    let mut body = Map::new();
    body.insert(MUTED.into(), json!({"__op": op, "objects": [by]}));
    svc.hooks
        .conversation_mute(by, cid, mute)
        .await
        .map_err(ConvError::Rejected)?;
    Ok(objects::update(
        &svc.db,
        Caller::Master,
        CLASS.to_string(),
        cid.to_string(),
        body,
        None,
        false,
    )
    .await?)
}

/// The notifications of `changed` joining (`added`) or leaving a conversation whose members were
/// `before`: `joined`/`left` to each of them but `by`, `members_joined`/`members_left` to the others.
pub fn notify_members(
    svc: &Services,
    cid: &str,
    by: Option<&str>,
    added: bool,
    changed: &[String],
    before: &[String],
) {
    let targets: Vec<String> = changed
        .iter()
        .filter(|c| Some(c.as_str()) != by)
        .cloned()
        .collect();
    let changed_set: HashSet<&String> = changed.iter().collect();
    let others: Vec<String> = before
        .iter()
        .filter(|m| !changed_set.contains(m))
        .cloned()
        .collect();
    let (own, theirs) = if added {
        (ConvNotice::Joined, ConvNotice::MembersJoined(changed))
    } else {
        (ConvNotice::Left, ConvNotice::MembersLeft(changed))
    };
    tell(svc, &targets, cid, by, own);
    tell(svc, &others, cid, by, theirs);
}

/// `updated` with the attributes set (`attr`, a JSON object) to every member but `by`.
pub fn notify_update(svc: &Services, cid: &str, by: Option<&str>, members: &[String], attr: &str) {
    let others: Vec<String> = members
        .iter()
        .filter(|m| Some(m.as_str()) != by)
        .cloned()
        .collect();
    tell(svc, &others, cid, by, ConvNotice::Updated(attr));
}

/// How long permanent notifications are kept for clients that were offline (7 days).
pub const NOTIFICATIONS_KEPT_MS: i64 = 7 * 86_400_000;

/// The time (ms) of a notification: now, but always after the previous one of this instance, so that two
/// notifications never share a `serverTs` (the SDK resumes `GET /1.1/rtm/notifications` strictly after the
/// last one it saw, and a shared time would lose the second).
fn notice_time() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = chrono::Utc::now().timestamp_millis();
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// Tells the online sessions of `peers` (on every instance) of `notice` about `cid`, made by `by`, and
/// keeps a permanent notice for `GET /1.1/rtm/notifications`, so a client offline now learns of it when it
/// comes back. The one way every conversation notification goes out.
pub fn tell(svc: &Services, peers: &[String], cid: &str, by: Option<&str>, notice: ConvNotice<'_>) {
    if peers.is_empty() {
        return;
    }
    let at = notice_time();
    svc.presence.notify_conversation(peers, cid, by, notice, at);
    if !notice.is_permanent() {
        return;
    }
    let body = crate::realtime::pushes::conv_entry(cid, by, notice, at).to_string();
    let items: Vec<Notification> = peers
        .iter()
        .map(|p| Notification {
            client: p.clone(),
            at,
            body: body.clone(),
        })
        .collect();
    let db = svc.db.clone();
    tokio::spawn(async move {
        if let Err(e) = conv_admin::keep(&db, items, at - NOTIFICATIONS_KEPT_MS).await {
            tracing::warn!(error = %e, "realtime: keeping notifications failed");
        }
    });
}

/// The `uniqueId` of a unique conversation of `members`: the MD5 (hex) of their ids sorted and joined with
/// nothing between them (LeanCloud's one documented example: `BillGates`, `SteveJobs` →
/// `6c7b0e5afcae9aa1139a0afa25833dec`).
pub fn unique_id(members: &[String]) -> String {
    use md5::{Digest, Md5};
    let mut sorted: Vec<&String> = members.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut hash = Md5::new();
    for m in sorted {
        hash.update(m.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// Deletes conversation `cid` (its messages stay in history). Nobody is told, as on LeanCloud.
pub async fn delete(svc: &Services, cid: &str) -> Result<(), ConvError> {
    objects::delete(
        &svc.db,
        Caller::Master,
        CLASS.to_string(),
        cid.to_string(),
        None,
    )
    .await?;
    Ok(())
}

/// The app's backend adds `ids` to (or removes them from) the push mutes `mu` of `cid`; no hook, nobody
/// told (a client's own `conv/mute` is [`mute`]).
pub async fn mute_many(
    svc: &Services,
    cid: &str,
    ids: &[String],
    mute: bool,
) -> Result<Map<String, Value>, ConvError> {
    let op = if mute { "AddUnique" } else { "Remove" };
    let mut body = Map::new();
    body.insert(MUTED.into(), json!({"__op": op, "objects": ids}));
    Ok(objects::update(
        &svc.db,
        Caller::Master,
        CLASS.to_string(),
        cid.to_string(),
        body,
        None,
        false,
    )
    .await?)
}

/// An update body that adds (`AddUnique`) or removes `ids` from `m`.
pub fn members_body(add: bool, ids: &[String]) -> Map<String, Value> {
    let op = if add { "AddUnique" } else { "Remove" };
    let mut body = Map::new();
    body.insert(MEMBERS.into(), json!({"__op": op, "objects": ids}));
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn the_member_change_of_an_update_body() {
        assert_eq!(
            Some(MemberChange::Add(vec!["a".into(), "b".into()])),
            MemberChange::of(&body(
                json!({"m": {"__op": "AddUnique", "objects": ["a", "b"]}})
            ))
        );
        assert_eq!(
            Some(MemberChange::Add(vec!["a".into()])),
            MemberChange::of(&body(json!({"m": {"__op": "Add", "objects": ["a"]}})))
        );
        assert_eq!(
            Some(MemberChange::Remove(vec!["a".into()])),
            MemberChange::of(&body(json!({"m": {"__op": "Remove", "objects": ["a"]}})))
        );
        assert_eq!(
            Some(MemberChange::Set(vec!["x".into()])),
            MemberChange::of(&body(json!({"m": ["x"]})))
        );
        assert_eq!(None, MemberChange::of(&body(json!({"name": "n"}))));
        assert_eq!(
            None,
            MemberChange::of(&body(json!({"m": {"__op": "Delete"}})))
        );
    }

    #[test]
    fn the_unique_id_is_the_md5_of_the_sorted_members_joined() {
        let members = ["SteveJobs".to_string(), "BillGates".to_string()];
        assert_eq!("6c7b0e5afcae9aa1139a0afa25833dec", unique_id(&members));
        let again = [
            "BillGates".to_string(),
            "SteveJobs".to_string(),
            "BillGates".to_string(),
        ];
        assert_eq!(unique_id(&members), unique_id(&again));
    }

    #[test]
    fn a_members_body_is_an_add_unique_or_remove_operation() {
        assert_eq!(
            body(json!({"m": {"__op": "AddUnique", "objects": ["a"]}})),
            members_body(true, &["a".to_string()])
        );
        assert_eq!(
            body(json!({"m": {"__op": "Remove", "objects": ["a"]}})),
            members_body(false, &["a".to_string()])
        );
    }
}
