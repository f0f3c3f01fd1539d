//! Edits and recalls of a sent message (`patch` `modify`): only its sender may patch it; the stored message is
//! rewritten, so history (`logs`, the REST history, the console) shows the new version; the conversation's
//! other members are told, on every instance, with the `patch` push. A recall carries no content: the message
//! becomes LeanCloud's recalled message (`_lctype` -127, the SDK's `RecalledMessage`).

use serde_json::{json, Value};

use super::limits::{Bucket, Limited};
use super::Services;
use crate::hooks::Refusal;
use crate::protocol::hook::Hook;
use crate::protocol::limits::MAX_MESSAGE_BYTES;
use crate::realtime::Patch;
use crate::store::messages::{self, Patched, Rewrite};
use crate::store::objects;
use crate::store::{StoreError, StoreResult};

/// The content a recalled message is stored and pushed with.
pub const RECALLED_CONTENT: &str = r#"{"_lctype":-127}"#;

/// One edit or recall asked by client `by`.
#[derive(Debug, Clone, Default)]
pub struct PatchRequest {
    pub by: String,
    pub cid: String,
    pub msg_id: String,
    pub recall: bool,
    /// The new content (base64 of the bytes when `binary`); ignored for a recall.
    pub data: Option<String>,
    pub binary: bool,
    pub mention_pids: Vec<String>,
    pub mention_all: bool,
    /// Asked by the app's backend (master key): the clients' switches, time limit and `_messageUpdate` do
    /// not apply.
    pub by_backend: bool,
    /// The client's address, for `_messageUpdate`.
    pub source_ip: Option<String>,
    /// The message's send time (ms), when the caller names it (the 1.2 REST API): a message id with another
    /// time is not found.
    pub timestamp: Option<i64>,
}

/// Why a patch is refused.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("no such message in this conversation")]
    NotFound,
    #[error("only the sender may edit or recall a message")]
    NotOwner,
    #[error("an edit needs the new content")]
    Empty,
    #[error("the new content is {0} bytes; the limit is {MAX_MESSAGE_BYTES}")]
    TooLarge(usize),
    #[error("clients may not edit messages in this app")]
    EditDisabled,
    #[error("clients may not recall messages in this app")]
    RecallDisabled,
    #[error("a message may be edited or recalled only within {0} s of being sent")]
    TooLate(u64),
    /// The app's rate limit refused a backend's edit or recall (they share the messages bucket with sends).
    #[error(transparent)]
    Limited(#[from] Limited),
    /// `_messageUpdate` refused it (or failed, with fail-closed hooks).
    #[error("the edit or recall was rejected by the app")]
    Rejected(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies one patch; its time (ms, the message's new `patchTimestamp`). The backend's edits and recalls count
/// against the app's messages bucket, as LeanCloud counts them; a refused one gives its unit back.
pub async fn patch(svc: &Services, req: PatchRequest) -> Result<i64, PatchError> {
    if !req.by_backend {
        return apply(svc, req).await;
    }
    let grant = svc.limits.take(Bucket::Messages).await?;
    let out = apply(svc, req).await;
    if out.is_err() {
        svc.limits.refund(grant).await;
    }
    out
}

async fn apply(svc: &Services, req: PatchRequest) -> Result<i64, PatchError> {
    let found = messages::find(&svc.db, req.msg_id.clone())
        .await?
        .filter(|m| m.conv_id == req.cid && req.timestamp.is_none_or(|t| t == m.timestamp))
        .ok_or(PatchError::NotFound)?;
    if found.from != req.by {
        return Err(PatchError::NotOwner);
    }
    if !req.by_backend {
        let policy = svc.presence.config.patches;
        match req.recall {
            true if !policy.recall => return Err(PatchError::RecallDisabled),
            false if !policy.edit => return Err(PatchError::EditDisabled),
            _ => {}
        }
        if let Some(window) = policy.window {
            let age = chrono::Utc::now().timestamp_millis() - found.timestamp;
            if age > window.as_millis() as i64 {
                return Err(PatchError::TooLate(window.as_secs()));
            }
        }
    }
    let (mut data, mut binary, mention_pids, mention_all) = if req.recall {
        (RECALLED_CONTENT.to_string(), false, Vec::new(), false)
    } else {
        let data = req
            .data
            .filter(|d| !d.is_empty())
            .ok_or(PatchError::Empty)?;
        if data.len() > MAX_MESSAGE_BYTES {
            return Err(PatchError::TooLarge(data.len()));
        }
        (data, req.binary, req.mention_pids, req.mention_all)
    };
    let members: Vec<String> = objects::conversation(&svc.db, req.cid.clone())
        .await?
        .map(|c| c.members)
        .unwrap_or_default()
        .into_iter()
        .filter(|m| *m != req.by)
        .collect();
    if !req.by_backend && svc.hooks.defines(Hook::MessageUpdate) {
        let verdict = svc
            .hooks
            .before(
                Hook::MessageUpdate,
                json!({
                    "fromPeer": &req.by, "convId": &req.cid, "toPeers": &members, "bin": binary,
                    "content": &data, "timestamp": found.timestamp, "msgId": &found.msg_id,
                    "sourceIP": req.source_ip, "recall": req.recall, "system": false,
                }),
            )
            .await;
        if let Some(refusal) = verdict.refusal("drop") {
            return Err(PatchError::Rejected(refusal));
        }
        if let (Some(answer), false) = (verdict.answer(), req.recall) {
            // An edit's new content may be rewritten (as `_messageReceived` rewrites a send).
            if let Some(content) = answer.get("content").and_then(Value::as_str) {
                data = content.to_string();
            }
            if let Some(bin) = answer.get("bin").and_then(Value::as_bool) {
                binary = bin;
            }
        }
    }
    let at = chrono::Utc::now()
        .timestamp_millis()
        .max(found.timestamp + 1);
    let rewritten = messages::rewrite(
        &svc.db,
        Rewrite {
            msg_id: found.msg_id.clone(),
            data: data.clone(),
            binary,
            mention_pids: mention_pids.clone(),
            mention_all,
            at,
        },
    )
    .await?;
    if !rewritten {
        // Found above, so it holds this content already (a recall asked again): nothing changes, nobody is
        // told again.
        return Ok(at);
    }
    svc.presence.patched(
        &members,
        Patch {
            cid: &req.cid,
            msg_id: &found.msg_id,
            timestamp: found.timestamp,
            from: &found.from,
            data: &data,
            binary,
            recall: req.recall,
            mention_pids: &mention_pids,
            mention_all,
            patch_timestamp: at,
        },
    );
    Ok(at)
}

/// Patches told at most at one login; older ones are left to history.
const MAX_MISSED_PATCHES: usize = 100;

/// The edits and recalls `client` missed since `since` (the `lastPatchTime` its SDK sends at login): of other
/// clients' messages in its conversations, oldest first, at most [`MAX_MISSED_PATCHES`].
pub async fn missed(svc: &Services, client: &str, since: i64) -> StoreResult<Vec<Patched>> {
    messages::patched_since(&svc.db, client.to_string(), since, MAX_MISSED_PATCHES).await
}

/// Whether a patched message was recalled (it holds the recalled content).
pub fn is_recall(p: &Patched) -> bool {
    !p.binary && p.data == RECALLED_CONTENT
}

/// A patched message as the `patch` push carries it.
pub fn as_patch(p: &Patched) -> Patch<'_> {
    Patch {
        cid: &p.conv_id,
        msg_id: &p.msg_id,
        timestamp: p.timestamp,
        from: &p.from,
        data: &p.data,
        binary: p.binary,
        recall: is_recall(p),
        mention_pids: &p.mention_pids,
        mention_all: p.mention_all,
        patch_timestamp: p.patched_at,
    }
}
