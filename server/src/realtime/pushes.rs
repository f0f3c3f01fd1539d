//! The frames a server pushes unasked (`realtime-protocol.md` §3.2, §8.6): a stored message as `direct`, a
//! message waiting since the client was offline, and the conversation notifications (`joined`, `left`,
//! `members_joined`, `members_left`, `updated`), receipts (`rcp`) and edits and recalls (`patch`). Built here
//! once, for the hub, the bus and the gateway.

use base64::Engine as _;

use crate::realtime::proto::{
    CommandType, ConvCommand, ConvMemberInfo, DirectCommand, GenericCommand, JsonObjectMessage,
    OpType, PatchCommand, PatchItem, RcpCommand, UnreadCommand, UnreadTuple,
};
use crate::store::messages::Stored;
use crate::store::realtime::{LastMessage, Pending};

/// A change to a conversation, as its online members are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvNotice<'a> {
    /// You were added (invited, or the conversation was started with you in it).
    Joined,
    /// You were removed.
    Left,
    /// These clients were added.
    MembersJoined(&'a [String]),
    /// These clients were removed.
    MembersLeft(&'a [String]),
    /// Attributes changed; the JSON object of what was set.
    Updated(&'a str),
    /// A member's role changed (`pid`, its new `role`).
    MemberInfoChanged {
        pid: &'a str,
        role: &'a str,
    },
    /// You were muted / unmuted.
    Shutuped,
    Unshutuped,
    /// These members were muted / unmuted.
    MembersShutuped(&'a [String]),
    MembersUnshutuped(&'a [String]),
    /// You were blocked / unblocked.
    Blocked,
    Unblocked,
    /// These clients were blocked / unblocked.
    MembersBlocked(&'a [String]),
    MembersUnblocked(&'a [String]),
}

impl ConvNotice<'_> {
    /// Whether it is a permanent notification (`notificationType` 1): kept for a client that was offline,
    /// answered by `GET /1.1/rtm/notifications`. Attribute changes are not.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, ConvNotice::Updated(_))
    }

    /// The op and the `convMessage` of the notice about `cid`, made by `by`.
    fn parts(&self, cid: &str, by: Option<&str>) -> (OpType, ConvCommand) {
        let mut conv = ConvCommand {
            cid: Some(cid.to_string()),
            init_by: by.map(str::to_owned),
            ..Default::default()
        };
        let op = match *self {
            ConvNotice::Joined => OpType::Joined,
            ConvNotice::Left => OpType::Left,
            ConvNotice::Shutuped => OpType::Shutuped,
            ConvNotice::Unshutuped => OpType::Unshutuped,
            ConvNotice::Blocked => OpType::Blocked,
            ConvNotice::Unblocked => OpType::Unblocked,
            ConvNotice::MembersJoined(m)
            | ConvNotice::MembersLeft(m)
            | ConvNotice::MembersShutuped(m)
            | ConvNotice::MembersUnshutuped(m)
            | ConvNotice::MembersBlocked(m)
            | ConvNotice::MembersUnblocked(m) => {
                conv.m = m.to_vec();
                match *self {
                    ConvNotice::MembersJoined(_) => OpType::MembersJoined,
                    ConvNotice::MembersLeft(_) => OpType::MembersLeft,
                    ConvNotice::MembersShutuped(_) => OpType::MembersShutuped,
                    ConvNotice::MembersUnshutuped(_) => OpType::MembersUnshutuped,
                    ConvNotice::MembersBlocked(_) => OpType::MembersBlocked,
                    _ => OpType::MembersUnblocked,
                }
            }
            ConvNotice::Updated(attr) => {
                conv.attr = Some(JsonObjectMessage {
                    data: attr.to_string(),
                });
                OpType::Updated
            }
            ConvNotice::MemberInfoChanged { pid, role } => {
                conv.info = Some(ConvMemberInfo {
                    pid: Some(pid.to_string()),
                    role: Some(role.to_string()),
                    info_id: None,
                });
                OpType::MemberInfoChanged
            }
        };
        (op, conv)
    }
}

/// The name of a conversation notice's op, as `GET /1.1/rtm/notifications` spells it (the schema's).
fn op_name(op: OpType) -> &'static str {
    match op {
        OpType::Joined => "joined",
        OpType::Left => "left",
        OpType::MembersJoined => "members_joined",
        OpType::MembersLeft => "members_left",
        OpType::Updated => "updated",
        OpType::MemberInfoChanged => "member_info_changed",
        OpType::Shutuped => "shutuped",
        OpType::Unshutuped => "unshutuped",
        OpType::MembersShutuped => "members_shutuped",
        OpType::MembersUnshutuped => "members_unshutuped",
        OpType::Blocked => "blocked",
        OpType::Unblocked => "unblocked",
        OpType::MembersBlocked => "members_blocked",
        _ => "members_unblocked",
    }
}

/// The entry of `GET /1.1/rtm/notifications` for `notice`, made at `at` (ms): `{cmd, op, serverTs,
/// notificationType, …the fields of convMessage}`, which the SDK dispatches like the push.
pub fn conv_entry(
    cid: &str,
    by: Option<&str>,
    notice: ConvNotice<'_>,
    at: i64,
) -> serde_json::Value {
    let (op, conv) = notice.parts(cid, by);
    let mut entry = serde_json::json!({
        "cmd": "conv",
        "op": op_name(op),
        "serverTs": at,
        "notificationType": 1,
        "cid": cid,
    });
    if let Some(by) = conv.init_by {
        entry["initBy"] = by.into();
    }
    if !conv.m.is_empty() {
        entry["m"] = conv.m.into();
    }
    if let Some(info) = conv.info {
        entry["info"] = serde_json::json!({"pid": info.pid, "role": info.role});
    }
    if let Some(attr) = conv.attr {
        entry["attr"] = serde_json::json!({"data": attr.data});
    }
    entry
}

/// The `conv` push that tells `peer` of `notice` about conversation `cid`, made by `by` (a client id, or
/// none when the app's backend made it) at `at` (ms, its `serverTs`; permanent ones carry `notificationType`
/// 1, from which the SDK knows where to resume with `GET /1.1/rtm/notifications`).
pub fn conv_notice(
    peer: &str,
    cid: &str,
    by: Option<&str>,
    notice: ConvNotice<'_>,
    at: i64,
) -> GenericCommand {
    let (op, conv) = notice.parts(cid, by);
    let mut cmd = conv_push(peer, op, conv);
    cmd.server_ts = Some(at);
    if notice.is_permanent() {
        cmd.notification_type = Some(1);
    }
    cmd
}

/// A stored message as the `direct` push the SDK reads (§3.2).
pub fn direct_push(
    peer: &str,
    msg_id: &str,
    conv: &str,
    from: &str,
    ts: i64,
    data: &str,
    binary: bool,
) -> GenericCommand {
    let mut dm = DirectCommand {
        from_peer_id: Some(from.to_string()),
        timestamp: Some(ts),
        cid: Some(conv.to_string()),
        id: Some(msg_id.to_string()),
        ..Default::default()
    };
    if binary {
        dm.binary_msg = Some(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap_or_default(),
        );
    } else {
        dm.msg = Some(data.to_string());
    }
    GenericCommand {
        peer_id: Some(peer.to_string()),
        direct_message: Some(dm),
        ..GenericCommand::new(CommandType::Direct, None)
    }
}

pub fn stored_push(peer: &str, msg: &Stored) -> GenericCommand {
    let mut cmd = direct_push(
        peer,
        &msg.msg_id,
        &msg.conv_id,
        &msg.from,
        msg.timestamp,
        &msg.data,
        msg.binary,
    );
    if let Some(dm) = cmd.direct_message.as_mut() {
        dm.transient = msg.transient.then_some(true);
        dm.mention_pids = msg.mention_pids.clone();
        dm.mention_all = msg.mention_all.then_some(true);
    }
    cmd
}

pub fn pending_push(peer: &str, p: &Pending, offline: bool) -> GenericCommand {
    let mut cmd = direct_push(
        peer,
        &p.msg_id,
        &p.conv_id,
        &p.from,
        p.timestamp,
        &p.data,
        p.binary,
    );
    if let Some(dm) = cmd.direct_message.as_mut() {
        dm.offline = offline.then_some(true);
    }
    cmd
}

pub fn conv_push(peer: &str, op: OpType, conv: ConvCommand) -> GenericCommand {
    GenericCommand {
        peer_id: Some(peer.to_string()),
        conv_message: Some(conv),
        ..GenericCommand::new(CommandType::Conv, Some(op))
    }
}

/// A receipt for a message sent with `r: true`, as its sender is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt<'a> {
    pub msg_id: &'a str,
    pub cid: &'a str,
    /// When the recipient acked or read (ms).
    pub at: i64,
    /// The recipient.
    pub by: &'a str,
    /// Read (else delivered).
    pub read: bool,
}

/// The `rcp` push (`realtime-protocol.md` §8.2): `id` is the message's id (the send's `uid`).
pub fn receipt(peer: &str, r: Receipt<'_>) -> GenericCommand {
    GenericCommand {
        peer_id: Some(peer.to_string()),
        rcp_message: Some(RcpCommand {
            id: Some(r.msg_id.to_string()),
            cid: Some(r.cid.to_string()),
            t: Some(r.at),
            read: r.read.then_some(true),
            from: Some(r.by.to_string()),
        }),
        ..GenericCommand::new(CommandType::Rcp, None)
    }
}

/// A message's new version after an edit or a recall, as the members are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patch<'a> {
    pub cid: &'a str,
    pub msg_id: &'a str,
    /// When the message was sent (ms).
    pub timestamp: i64,
    pub from: &'a str,
    /// The new content (base64 of the bytes when `binary`; the recalled-message content for a recall).
    pub data: &'a str,
    pub binary: bool,
    pub recall: bool,
    pub mention_pids: &'a [String],
    pub mention_all: bool,
    /// When it was patched (ms).
    pub patch_timestamp: i64,
}

/// The patch's item as the `patch` push carries it (`PatchItem`).
pub fn patch_item(p: Patch<'_>) -> PatchItem {
    let mut item = PatchItem {
        cid: Some(p.cid.to_string()),
        mid: Some(p.msg_id.to_string()),
        timestamp: Some(p.timestamp),
        recall: p.recall.then_some(true),
        patch_timestamp: Some(p.patch_timestamp),
        from: Some(p.from.to_string()),
        mention_all: p.mention_all.then_some(true),
        mention_pids: p.mention_pids.to_vec(),
        ..Default::default()
    };
    if p.binary {
        item.binary_msg = Some(
            base64::engine::general_purpose::STANDARD
                .decode(p.data)
                .unwrap_or_default(),
        );
    } else {
        item.data = Some(p.data.to_string());
    }
    item
}

/// The `patch` push (`cmd: patch, op: modify`): the SDK emits `MESSAGE_RECALL` or `MESSAGE_UPDATE`.
pub fn patch(peer: &str, p: Patch<'_>) -> GenericCommand {
    patches(peer, &[p])
}

/// One `patch` push with several patches (those a client missed while offline).
pub fn patches(peer: &str, list: &[Patch<'_>]) -> GenericCommand {
    GenericCommand {
        peer_id: Some(peer.to_string()),
        patch_message: Some(PatchCommand {
            patches: list.iter().map(|p| patch_item(*p)).collect(),
            last_patch_time: None,
        }),
        ..GenericCommand::new(CommandType::Patch, Some(OpType::Modify))
    }
}

/// The `unread` push that tells `peer`'s sessions a conversation was read on one of them (0 unread, not
/// mentioned), with the conversation's last message, as LeanCloud syncs a read across devices.
pub fn unread_cleared(
    peer: &str,
    cid: &str,
    last: Option<&LastMessage>,
    now: i64,
) -> GenericCommand {
    let mut t = UnreadTuple {
        cid: cid.to_string(),
        unread: 0,
        mentioned: Some(false),
        ..Default::default()
    };
    if let Some(last) = last {
        t.mid = Some(last.msg_id.clone());
        t.timestamp = Some(last.timestamp);
        t.from = Some(last.from.clone());
        if last.binary {
            t.binary_msg = base64::engine::general_purpose::STANDARD
                .decode(&last.data)
                .ok();
        } else {
            t.data = Some(last.data.clone());
        }
    }
    GenericCommand {
        peer_id: Some(peer.to_string()),
        unread_message: Some(UnreadCommand {
            convs: vec![t],
            notif_time: Some(now),
        }),
        ..GenericCommand::new(CommandType::Unread, None)
    }
}
