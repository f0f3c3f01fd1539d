//! Silences and clients' own blacklists, beyond the roles, shutups and blocks of [`super::conv_admin`]:
//!
//! - a **temporary silence** (`…/temporary-silenceds`, the 1.2 REST API) mutes one client of a conversation
//!   for a while (at most a day); it ends by itself or when lifted; the client and the members hear
//!   `shutuped` / `members_shutuped` (and the `un…` forms when it is lifted) as for a permanent one;
//! - [`silence_of`] is the one check a client's send asks: muted for good (4563 `SILENCED`) or for a while
//!   (4315);
//! - a **client's blacklist** (`/1.2/rtm/clients/{client}/blacklists`) lists the conversations that may not
//!   add it; it may still join them itself ([`super::conv_admin::membership_change`] asks).

use super::conv_admin::{self, AdminError};
use super::conversations::tell;
use super::Services;
use crate::realtime::ConvNotice;
use crate::store::conv_admin::{self as marks, Mark};
use crate::store::StoreError;

/// The longest temporary silence (s).
pub const MAX_SILENCE_SECS: i64 = 86_400;

/// Whether a client may speak in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// Not silenced.
    None,
    /// Muted until unmuted (a shutup, or a permanent silence).
    Permanent,
    /// Muted until this time (ms).
    Until(i64),
}

/// Whether `client` is silenced in `cid` at `now` (ms).
pub async fn silence_of(
    svc: &Services,
    cid: &str,
    client: &str,
    now: i64,
) -> Result<Silence, StoreError> {
    let who = vec![client.to_string()];
    if !marks::marks_of(&svc.db, cid, Mark::Shutup, who.clone())
        .await?
        .is_empty()
    {
        return Ok(Silence::Permanent);
    }
    let until = marks::marks_of(&svc.db, cid, Mark::SilencedUntil, who)
        .await?
        .into_iter()
        .map(|m| m.at)
        .max();
    Ok(match until {
        Some(until) if until > now => Silence::Until(until),
        _ => Silence::None,
    })
}

/// Why a temporary silence was refused.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("ttl must be between 1 and {MAX_SILENCE_SECS} seconds")]
    Ttl,
    #[error("the owner of a conversation cannot be silenced")]
    Owner,
}

impl From<StoreError> for SilenceError {
    fn from(e: StoreError) -> SilenceError {
        SilenceError::Admin(e.into())
    }
}

/// Silences `client` in `cid` for `ttl_secs` (1 to [`MAX_SILENCE_SECS`]) from `now` (ms), by the app's
/// backend; a second silence replaces the first. Answers when it ends (ms).
pub async fn silence_for(
    svc: &Services,
    cid: &str,
    client: &str,
    ttl_secs: i64,
    now: i64,
) -> Result<i64, SilenceError> {
    if !(1..=MAX_SILENCE_SECS).contains(&ttl_secs) {
        return Err(SilenceError::Ttl);
    }
    let conv = conv_admin::load(svc, cid).await?;
    if conv.is_owner(client) {
        return Err(SilenceError::Owner);
    }
    let until = now + ttl_secs * 1000;
    let who = vec![client.to_string()];
    marks::set(&svc.db, cid, Mark::SilencedUntil, who.clone(), None, until).await?;
    tell(svc, &who, cid, None, ConvNotice::Shutuped);
    tell(
        svc,
        &conv.members,
        cid,
        None,
        ConvNotice::MembersShutuped(&who),
    );
    Ok(until)
}

/// Lifts `client`'s temporary silence in `cid` (nothing when it has none).
pub async fn lift_silence(svc: &Services, cid: &str, client: &str) -> Result<(), AdminError> {
    let conv = conv_admin::load(svc, cid).await?;
    let who = vec![client.to_string()];
    let had = !marks::marks_of(&svc.db, cid, Mark::SilencedUntil, who.clone())
        .await?
        .is_empty();
    if had {
        marks::unset(&svc.db, cid, Mark::SilencedUntil, who.clone()).await?;
        tell(svc, &who, cid, None, ConvNotice::Unshutuped);
        tell(
            svc,
            &conv.members,
            cid,
            None,
            ConvNotice::MembersUnshutuped(&who),
        );
    }
    Ok(())
}

/// Adds `cid` to (or removes it from) `client`'s blacklist of conversations that may not add it.
pub async fn client_block(
    svc: &Services,
    client: &str,
    cid: &str,
    add: bool,
) -> Result<(), StoreError> {
    let conv = vec![cid.to_string()];
    if add {
        let now = chrono::Utc::now().timestamp_millis();
        marks::set(&svc.db, client, Mark::ClientBlock, conv, None, now).await
    } else {
        marks::unset(&svc.db, client, Mark::ClientBlock, conv).await
    }
}

/// A page of `client`'s blacklist of conversations, by id after `next`, at most `limit` (default
/// [`conv_admin::PAGE_DEFAULT`], at most [`conv_admin::PAGE_MAX`]), and the cursor of the next page.
pub async fn client_blocks(
    svc: &Services,
    client: &str,
    limit: Option<i64>,
    next: Option<String>,
) -> Result<(Vec<String>, Option<String>), StoreError> {
    conv_admin::page(svc, client, Mark::ClientBlock, limit, next).await
}
