//! Conversation administration, as LeanCloud has it: member roles (`_ConversationMemberInfo`: the owner is
//! the creator `c`; managers; members), muted members (shutups) and blocked clients (the blacklist). One
//! function per operation for every door. The rules:
//!
//! - only the owner changes roles, to `Manager` or `Member` (never `Owner`: 5130);
//! - the owner mutes, unmutes, blocks, unblocks and removes anyone; a manager plain members only (4320 for
//!   the whole command when the caller may not; the owner as a target is a per-client failure);
//! - while the conversation has managers, the owner cannot leave or be removed (4324
//!   `CONVERSATION_NEED_OWNER`), so the roles keep their owner; without managers it may leave (LeanCloud's
//!   own suite asks both);
//! - a blocked client is removed (`left` / `members_left`, through [`conversations::update`], with its
//!   hooks) and cannot join or be added again until unblocked (4548 `BLOCKED_BY_CONV`);
//! - a muted member's messages are refused (4563 `SILENCED`);
//! - notifications: the clients concerned hear `shutuped` / `unshutuped` / `blocked` / `unblocked`; the
//!   members (the author included) hear `members_shutuped` / `members_unshutuped` / `members_blocked` /
//!   `members_unblocked`; a role change is `member_info_changed` to every member.
//!
//! A conversation without a creator (made by the backend without `c`) has no owner: its members keep the
//! rights they had before roles existed.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::conversations::{self, members_body, strings, tell, ConvError, Update};
use super::Services;
use crate::protocol::conversation::{CLASS, CREATOR, MEMBERS};
use crate::realtime::ConvNotice;
use crate::store::conv_admin::{self, Mark};
use crate::store::objects;
use crate::store::{Caller, StoreError};

pub const OWNER: &str = "Owner";
pub const MANAGER: &str = "Manager";
pub const MEMBER: &str = "Member";

/// Longest page of a shutup or blacklist query, and the page when the client names none.
pub const PAGE_MAX: i64 = 100;
pub const PAGE_DEFAULT: i64 = 50;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Conv(#[from] ConvError),
    #[error("the conversation does not exist")]
    NotFound,
    /// The caller's role does not allow it.
    #[error("only the owner or a manager may do this")]
    Unauthorized,
    #[error("the client is not a member of the conversation")]
    NotMember,
    #[error("unknown role {0}")]
    UnknownRole(String),
    #[error("updating a member's role to owner is not allowed")]
    OwnerPromotion,
    /// Blocked in the conversation, or keeping it on their own blacklist: not added.
    #[error("blocked: {}", .0.join(", "))]
    Blocked(Vec<String>),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> AdminError {
        AdminError::Conv(ConvError::Store(e))
    }
}

/// Why one client of a command was not changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The owner cannot be muted, blocked or removed (and cannot leave).
    NeedOwner,
    /// Not a member (muting someone outside).
    NotMember,
    /// Blocked in the conversation (joining, being added).
    Blacklisted,
    /// The caller may not change others.
    Unauthorized,
}

/// What a command with a list of clients did: the ones changed, and the others grouped by why not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partial {
    pub allowed: Vec<String>,
    pub failed: Vec<(Failure, Vec<String>)>,
}

impl Partial {
    fn fail(&mut self, why: Failure, id: String) {
        match self.failed.iter_mut().find(|(w, _)| *w == why) {
            Some((_, ids)) => ids.push(id),
            None => self.failed.push((why, vec![id])),
        }
    }
}

/// A conversation as the rules need it.
#[derive(Debug, Clone)]
pub struct Admin {
    pub cid: String,
    /// The creator, if any.
    pub owner: Option<String>,
    pub members: Vec<String>,
}

impl Admin {
    pub fn is_owner(&self, client: &str) -> bool {
        self.owner.as_deref() == Some(client)
    }

    /// Whether `client` is a member (a linear scan: for many lookups, [`Admin::member_set`]).
    pub fn is_member(&self, client: &str) -> bool {
        self.members.iter().any(|m| m == client)
    }

    pub fn member_set(&self) -> HashSet<&str> {
        self.members.iter().map(String::as_str).collect()
    }
}

/// The conversation `cid` (a `_Conversation` row), or `NotFound`.
pub async fn load(svc: &Services, cid: &str) -> Result<Admin, AdminError> {
    let row = objects::get(
        &svc.db,
        Caller::Master,
        CLASS.to_string(),
        cid.to_string(),
        false,
    )
    .await?
    .ok_or(AdminError::NotFound)?;
    Ok(from_row(cid, &row))
}

/// The administration view of a `_Conversation` row.
pub fn from_row(cid: &str, row: &Map<String, Value>) -> Admin {
    Admin {
        cid: cid.to_string(),
        owner: row
            .get(CREATOR)
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        members: strings(row.get(MEMBERS)),
    }
}

/// `client`'s role in `conv`: `Owner` for the creator, else its mark (`Manager`), else `Member`.
pub async fn role_of(svc: &Services, conv: &Admin, client: &str) -> Result<String, AdminError> {
    if conv.is_owner(client) {
        return Ok(OWNER.to_string());
    }
    let marks =
        conv_admin::marks_of(&svc.db, &conv.cid, Mark::Role, vec![client.to_string()]).await?;
    Ok(marks
        .into_iter()
        .find_map(|m| m.role)
        .unwrap_or_else(|| MEMBER.to_string()))
}

/// Whether `client` may manage the other members of `conv`: the owner and managers; everyone when the
/// conversation has no owner.
pub async fn may_manage(svc: &Services, conv: &Admin, client: &str) -> Result<bool, AdminError> {
    if conv.owner.is_none() {
        return Ok(conv.is_member(client));
    }
    let role = role_of(svc, conv, client).await?;
    Ok(role == OWNER || role == MANAGER)
}

/// The members of `conv` with the role `Manager`.
pub async fn managers(svc: &Services, conv: &Admin) -> Result<Vec<String>, AdminError> {
    Ok(
        conv_admin::marked(&svc.db, &conv.cid, Mark::Role, None, i64::MAX)
            .await?
            .into_iter()
            .filter(|m| m.role.as_deref() == Some(MANAGER) && conv.is_member(&m.client))
            .map(|m| m.client)
            .collect(),
    )
}

/// Whether `by` may mute, unmute, block or unblock `ids` in `conv`: the owner anyone; a manager plain members
/// only (not another manager, not itself); anyone when the conversation has no owner and `by` is a member.
/// The owner among `ids` is not asked about here: it is a per-client failure.
async fn may_act_on(
    svc: &Services,
    conv: &Admin,
    by: &str,
    ids: &[String],
) -> Result<bool, AdminError> {
    if conv.owner.is_none() {
        return Ok(conv.is_member(by));
    }
    if conv.is_owner(by) {
        return Ok(true);
    }
    let managers = managers(svc, conv).await?;
    Ok(managers.iter().any(|m| m == by) && !ids.iter().any(|id| managers.contains(id)))
}

/// `member_info_update`: the owner `by` (or the app's backend, `None`) sets `target`'s role (`Manager` or
/// `Member`); every member hears `member_info_changed`.
pub async fn update_role(
    svc: &Services,
    by: Option<&str>,
    cid: &str,
    target: &str,
    role: &str,
) -> Result<(), AdminError> {
    let conv = load(svc, cid).await?;
    match role {
        OWNER => return Err(AdminError::OwnerPromotion),
        MANAGER | MEMBER => {}
        other => return Err(AdminError::UnknownRole(other.to_string())),
    }
    if by.is_some_and(|by| !conv.is_owner(by)) {
        return Err(AdminError::Unauthorized);
    }
    if !conv.is_member(target) {
        return Err(AdminError::NotMember);
    }
    if conv.is_owner(target) {
        return Err(AdminError::OwnerPromotion);
    }
    let now = chrono::Utc::now().timestamp_millis();
    if role == MEMBER {
        conv_admin::unset(&svc.db, cid, Mark::Role, vec![target.to_string()]).await?;
    } else {
        conv_admin::set(
            &svc.db,
            cid,
            Mark::Role,
            vec![target.to_string()],
            Some(role.to_string()),
            now,
        )
        .await?;
    }
    tell(
        svc,
        &conv.members,
        cid,
        by,
        ConvNotice::MemberInfoChanged { pid: target, role },
    );
    Ok(())
}

/// The roles of `cid`'s members other than `Member`: the owner first, then the managers.
pub async fn roles(svc: &Services, cid: &str) -> Result<Vec<(String, String)>, AdminError> {
    let conv = load(svc, cid).await?;
    let mut out = Vec::new();
    if let Some(owner) = &conv.owner {
        out.push((owner.clone(), OWNER.to_string()));
    }
    for m in conv_admin::marked(&svc.db, cid, Mark::Role, None, i64::MAX).await? {
        if conv.is_member(&m.client) && !conv.is_owner(&m.client) {
            out.push((m.client, m.role.unwrap_or_else(|| MEMBER.to_string())));
        }
    }
    Ok(out)
}

/// Splits `ids` of a command by `by` on `conv` that changes others: the owner is never changed; members
/// only (for shutups) when `members_only`.
fn split(conv: &Admin, ids: &[String], members_only: bool) -> Partial {
    let mut out = Partial::default();
    let members = conv.member_set();
    for id in ids {
        if conv.is_owner(id) {
            out.fail(Failure::NeedOwner, id.clone());
        } else if members_only && !members.contains(id.as_str()) {
            out.fail(Failure::NotMember, id.clone());
        } else {
            out.allowed.push(id.clone());
        }
    }
    out
}

/// `conv/add_shutup` (`add`) / `conv/remove_shutup`: the owner or a manager `by` mutes or unmutes `ids`
/// (members only). The app's backend (`by` `None`) may mute anyone but the owner, member or not (a chat room
/// keeps no member list).
pub async fn shutup(
    svc: &Services,
    by: Option<&str>,
    cid: &str,
    ids: &[String],
    add: bool,
) -> Result<Partial, AdminError> {
    let conv = load(svc, cid).await?;
    if let Some(by) = by {
        if !may_act_on(svc, &conv, by, ids).await? {
            return Err(AdminError::Unauthorized);
        }
    }
    let out = split(&conv, ids, add && by.is_some());
    if out.allowed.is_empty() {
        return Ok(out);
    }
    let now = chrono::Utc::now().timestamp_millis();
    if add {
        conv_admin::set(&svc.db, cid, Mark::Shutup, out.allowed.clone(), None, now).await?;
    } else {
        conv_admin::unset(&svc.db, cid, Mark::Shutup, out.allowed.clone()).await?;
    }
    let (own, theirs) = if add {
        (
            ConvNotice::Shutuped,
            ConvNotice::MembersShutuped(&out.allowed),
        )
    } else {
        (
            ConvNotice::Unshutuped,
            ConvNotice::MembersUnshutuped(&out.allowed),
        )
    };
    let targets: Vec<String> = out
        .allowed
        .iter()
        .filter(|c| Some(c.as_str()) != by)
        .cloned()
        .collect();
    tell(svc, &targets, cid, by, own);
    tell(svc, &conv.members, cid, by, theirs);
    Ok(out)
}

/// `blacklist/block` (`add`) / `unblock`: the owner or a manager `by` (or the app's backend, `None`) blocks
/// or unblocks `ids`. Blocked members are removed first (the `_conversationRemove` hook is asked and may
/// refuse the whole command).
pub async fn block(
    svc: &Services,
    by: Option<&str>,
    cid: &str,
    ids: &[String],
    add: bool,
) -> Result<Partial, AdminError> {
    let conv = load(svc, cid).await?;
    if let Some(by) = by {
        if !may_act_on(svc, &conv, by, ids).await? {
            return Err(AdminError::Unauthorized);
        }
    }
    let out = split(&conv, ids, false);
    if out.allowed.is_empty() {
        return Ok(out);
    }
    let now = chrono::Utc::now().timestamp_millis();
    let mut members = conv.members.clone();
    if add {
        let current = conv.member_set();
        let leaving: Vec<String> = out
            .allowed
            .iter()
            .filter(|c| current.contains(c.as_str()))
            .cloned()
            .collect();
        if !leaving.is_empty() {
            let update = Update::master(members_body(false, &leaving));
            conversations::update(svc, by, cid, update).await?;
            let leaving: HashSet<&String> = leaving.iter().collect();
            members.retain(|m| !leaving.contains(m));
        }
        conv_admin::set(&svc.db, cid, Mark::Block, out.allowed.clone(), None, now).await?;
        conv_admin::unset(&svc.db, cid, Mark::Role, out.allowed.clone()).await?;
    } else {
        conv_admin::unset(&svc.db, cid, Mark::Block, out.allowed.clone()).await?;
    }
    let (own, theirs) = if add {
        (
            ConvNotice::Blocked,
            ConvNotice::MembersBlocked(&out.allowed),
        )
    } else {
        (
            ConvNotice::Unblocked,
            ConvNotice::MembersUnblocked(&out.allowed),
        )
    };
    let targets: Vec<String> = out
        .allowed
        .iter()
        .filter(|c| Some(c.as_str()) != by)
        .cloned()
        .collect();
    tell(svc, &targets, cid, by, own);
    tell(svc, &members, cid, by, theirs);
    Ok(out)
}

/// A page of the muted (`Mark::Shutup`) or blocked (`Mark::Block`) clients of `cid`, asked by `by` (a
/// member, or for the blacklist the owner or a manager; `None`: the app's backend): the ids, by id, and the
/// cursor of the next page.
pub async fn listed(
    svc: &Services,
    by: Option<&str>,
    cid: &str,
    mark: Mark,
    limit: Option<i64>,
    next: Option<String>,
) -> Result<(Vec<String>, Option<String>), AdminError> {
    let conv = load(svc, cid).await?;
    let allowed = match (by, mark) {
        (None, _) => true,
        (Some(by), Mark::Block) => may_manage(svc, &conv, by).await?,
        (Some(by), _) => conv.is_member(by) || may_manage(svc, &conv, by).await?,
    };
    if !allowed {
        return Err(AdminError::Unauthorized);
    }
    Ok(page(svc, cid, mark, limit, next).await?)
}

/// A page of the ids marked `mark` under `key` (a conversation; a client for its own blacklist), by id after
/// `next`, at most `limit` (default [`PAGE_DEFAULT`], at most [`PAGE_MAX`]), and the cursor of the next page.
pub async fn page(
    svc: &Services,
    key: &str,
    mark: Mark,
    limit: Option<i64>,
    next: Option<String>,
) -> Result<(Vec<String>, Option<String>), StoreError> {
    let limit = limit
        .filter(|l| *l > 0)
        .unwrap_or(PAGE_DEFAULT)
        .min(PAGE_MAX);
    let found = conv_admin::marked(
        &svc.db,
        key,
        mark,
        next.filter(|n| !n.is_empty()),
        limit + 1,
    )
    .await?;
    let mut ids: Vec<String> = found.into_iter().map(|m| m.client).collect();
    let next = if ids.len() as i64 > limit {
        ids.truncate(limit as usize);
        ids.last().cloned()
    } else {
        None
    };
    Ok((ids, next))
}

/// Which of `ids` are blocked in `cid` (they may not join or be added).
pub async fn blocked_among(
    svc: &Services,
    cid: &str,
    ids: &[String],
) -> Result<Vec<String>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(
        conv_admin::marks_of(&svc.db, cid, Mark::Block, ids.to_vec())
            .await?
            .into_iter()
            .map(|m| m.client)
            .collect(),
    )
}

/// The app's backend adds `ids` to `cid` (with the hooks and notifications of [`conversations::update`]);
/// refused whole when one of them is blocked in it or keeps it on its own blacklist.
pub async fn add_by_backend(
    svc: &Services,
    cid: &str,
    ids: &[String],
) -> Result<Map<String, Value>, AdminError> {
    let mut refused = blocked_among(svc, cid, ids).await?;
    let refusing = refusing_among(svc, cid, ids).await?;
    for r in refusing {
        if !refused.contains(&r) {
            refused.push(r);
        }
    }
    if !refused.is_empty() {
        refused.sort();
        return Err(AdminError::Blocked(refused));
    }
    let update = Update::master(members_body(true, ids));
    Ok(conversations::update(svc, None, cid, update).await?)
}

/// Which of `ids` keep `cid` on their own blacklist (it may not add them; they may join by themselves).
pub async fn refusing_among(
    svc: &Services,
    cid: &str,
    ids: &[String],
) -> Result<HashSet<String>, StoreError> {
    let mut out = HashSet::new();
    for id in ids {
        if !conv_admin::marks_of(&svc.db, id, Mark::ClientBlock, vec![cid.to_string()])
            .await?
            .is_empty()
        {
            out.insert(id.clone());
        }
    }
    Ok(out)
}

/// `conv/add` / `conv/remove` by `by`: who of `ids` may be added or removed. Adding: anyone not blocked
/// and, added by another, not keeping the conversation on its own blacklist (a member adds others, anyone
/// adds itself). Removing: oneself; others by the owner (anyone) or a manager
/// (plain members). The owner stays while the conversation has managers (LeanCloud's
/// `CONVERSATION_NEED_OWNER`): someone must hold the roles; without managers it may leave, as before roles.
/// A member removing others without the role is refused per client (4320), a non-member too (4317).
pub async fn membership_change(
    svc: &Services,
    conv: &Admin,
    by: &str,
    ids: &[String],
    add: bool,
) -> Result<Partial, AdminError> {
    let mut out = Partial::default();
    if add {
        let blocked: HashSet<String> = blocked_among(svc, &conv.cid, ids)
            .await?
            .into_iter()
            .collect();
        let others: Vec<String> = ids.iter().filter(|id| *id != by).cloned().collect();
        let refusing = refusing_among(svc, &conv.cid, &others).await?;
        let by_member = conv.is_member(by);
        for id in ids {
            if blocked.contains(id) || refusing.contains(id) {
                out.fail(Failure::Blacklisted, id.clone());
            } else if id == by || by_member {
                out.allowed.push(id.clone());
            } else {
                out.fail(Failure::NotMember, id.clone());
            }
        }
        return Ok(out);
    }
    let managers = if conv.owner.is_some() {
        managers(svc, conv).await?
    } else {
        Vec::new()
    };
    let by_manager = managers.iter().any(|m| m == by);
    for id in ids {
        let may = if conv.is_owner(id) {
            if !managers.is_empty() {
                out.fail(Failure::NeedOwner, id.clone());
                continue;
            }
            id == by
        } else if id == by {
            true
        } else if conv.owner.is_none() {
            conv.is_member(by)
        } else {
            conv.is_owner(by) || (by_manager && !managers.contains(id))
        };
        if may {
            out.allowed.push(id.clone());
        } else if conv.is_member(by) {
            out.fail(Failure::Unauthorized, id.clone());
        } else {
            out.fail(Failure::NotMember, id.clone());
        }
    }
    Ok(out)
}

/// `GET /1.1/rtm/notifications`: `client`'s permanent notifications after `since` (ms), oldest first, at
/// most `limit` (the JSON entries the SDK dispatches), and whether there are more.
pub async fn notifications(
    svc: &Services,
    client: &str,
    since: i64,
    limit: i64,
) -> Result<(Vec<Value>, bool), StoreError> {
    let limit = limit.clamp(1, NOTIFICATIONS_PAGE_MAX);
    let mut found = conv_admin::since(&svc.db, client, since, limit + 1).await?;
    let more = found.len() as i64 > limit;
    found.truncate(limit as usize);
    Ok((
        found
            .into_iter()
            .filter_map(|n| serde_json::from_str(&n.body).ok())
            .collect(),
        more,
    ))
}

/// The longest page of `GET /1.1/rtm/notifications`, and its page when none is asked.
pub const NOTIFICATIONS_PAGE_MAX: i64 = 200;
pub const NOTIFICATIONS_PAGE_DEFAULT: i64 = 50;
