//! Delivery and read positions, and the receipts they trigger: a client's `ack` (messages reached it) and
//! `read` (it has read a conversation up to a time) move its positions; the senders of the messages concerned
//! that asked for receipts (`r: true`) are told, on every instance, with an `rcp` (`read: true` for reads). The
//! positions are what `conv/max_read` (the SDK's `fetchReceiptTimestamps`) answers.

use super::Services;
use crate::realtime::Receipt;
use crate::store::messages::{self, MessageRef, ReceiptQuery};
use crate::store::objects;
use crate::store::realtime::{self as positions, Position, Positions};
use crate::store::{StoreError, StoreResult};

/// Receipts sent for one `ack` at most (a client acks what it was just given: a handful).
const MAX_ACK_RECEIPTS: usize = 100;
/// Messages looked at for the read receipts of one conversation (one receipt per sender).
const MAX_READ_SCAN: usize = 50;

/// A client's `ack` for conversation `cid`: the messages sent from `from_ts` to `to_ts` (or the one message
/// `msg_id`) reached it.
#[derive(Debug, Clone, Default)]
pub struct Ack {
    pub cid: String,
    pub from_ts: Option<i64>,
    pub to_ts: Option<i64>,
    pub msg_id: Option<String>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Whether `client` is a member of conversation `cid` (not a chat room, not a system conversation: neither
/// has receipts).
async fn member_of(svc: &Services, cid: &str, client: &str) -> StoreResult<bool> {
    Ok(objects::conversation(&svc.db, cid.to_string())
        .await?
        .is_some_and(|c| !c.transient && !c.system && c.members.iter().any(|m| m == client)))
}

/// Tells the senders of `requests` that `reader` acked (or read) them at `at`, if `reader` is a member.
async fn tell(
    svc: &Services,
    cid: &str,
    reader: &str,
    requests: &[MessageRef],
    at: i64,
    read: bool,
) -> StoreResult<()> {
    if requests.is_empty() || !member_of(svc, cid, reader).await? {
        return Ok(());
    }
    for m in requests {
        svc.presence.receipt(
            &m.from,
            Receipt {
                msg_id: &m.msg_id,
                cid,
                at,
                by: reader,
                read,
            },
        );
    }
    Ok(())
}

/// Most conversations one `read` moves, and the longest conversation id kept (LeanCloud's ids are 24
/// characters): a client cannot fill the positions table with junk.
pub const MAX_MARKS: usize = 200;
pub const MAX_CID_BYTES: usize = 128;

/// The marks of `reader` that may move a position: conversations that exist, that it is a member of (or
/// service conversations), not chat rooms, each once, at most [`MAX_MARKS`]. The rest are dropped, as a mark
/// for a conversation one cannot see changes nothing anyone can see.
async fn visible_marks(
    svc: &Services,
    reader: &str,
    marks: Vec<(String, i64)>,
) -> StoreResult<Vec<(String, i64)>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (cid, ts) in marks {
        if out.len() >= MAX_MARKS {
            break;
        }
        if cid.is_empty() || cid.len() > MAX_CID_BYTES || !seen.insert(cid.clone()) {
            continue;
        }
        let Some(conv) = objects::conversation(&svc.db, cid.clone()).await? else {
            continue;
        };
        if !conv.transient && (conv.system || conv.members.iter().any(|m| m == reader)) {
            out.push((cid, ts));
        }
    }
    Ok(out)
}

/// `reader` acked messages of a conversation: its delivery position moves to the newest of them (never back),
/// and the senders that asked for receipts get one per message.
pub async fn acked(svc: &Services, reader: &str, ack: Ack) -> StoreResult<()> {
    let now = now_ms();
    if visible_marks(svc, reader, vec![(ack.cid.clone(), now)])
        .await?
        .is_empty()
    {
        return Ok(());
    }
    let one = match &ack.msg_id {
        Some(id) => messages::find(&svc.db, id.clone())
            .await?
            .filter(|m| m.conv_id == ack.cid),
        None => None,
    };
    let Some(to_ts) = ack.to_ts.or(one.as_ref().map(|m| m.timestamp)) else {
        return Ok(());
    };
    positions::advance(
        &svc.db,
        reader.to_string(),
        Position::Delivered,
        vec![(ack.cid.clone(), to_ts.min(now))],
    )
    .await?;
    let (from_ts, to_ts) = match (&ack.msg_id, ack.from_ts) {
        // One message: wherever it is.
        (Some(_), _) => (i64::MIN, i64::MAX),
        (None, Some(from)) => (from, to_ts),
        (None, None) => (to_ts, to_ts),
    };
    let requests = messages::receipt_requests(
        &svc.db,
        ReceiptQuery {
            conv_id: ack.cid.clone(),
            reader: reader.to_string(),
            from_ts,
            to_ts,
            msg_id: ack.msg_id.clone(),
            newest_first: false,
            limit: MAX_ACK_RECEIPTS,
        },
    )
    .await?;
    tell(svc, &ack.cid, reader, &requests, now, false).await
}

/// `reader` has read each conversation up to its time (capped at now): its read position moves (never back),
/// and each sender that asked for receipts of messages up to then is told once, with its newest such message
/// and the read time as `t`.
pub async fn read(svc: &Services, reader: &str, marks: Vec<(String, i64)>) -> StoreResult<()> {
    let now = now_ms();
    let marks: Vec<(String, i64)> = visible_marks(svc, reader, marks)
        .await?
        .into_iter()
        .map(|(c, t)| (c, t.min(now)))
        .collect();
    if marks.is_empty() {
        return Ok(());
    }
    positions::advance(&svc.db, reader.to_string(), Position::Read, marks.clone()).await?;
    // The reader's sessions (its other devices) clear their count for these conversations.
    let convs: Vec<String> = marks.iter().map(|(c, _)| c.clone()).collect();
    let last = positions::last_messages(&svc.db, convs.clone()).await?;
    for cid in &convs {
        let of = last.iter().find(|(c, _)| c == cid).map(|(_, m)| m);
        svc.presence.read_elsewhere(reader, cid, of, now);
    }
    for (cid, ts) in marks {
        let mut requests = messages::receipt_requests(
            &svc.db,
            ReceiptQuery {
                conv_id: cid.clone(),
                reader: reader.to_string(),
                from_ts: 0,
                to_ts: ts,
                msg_id: None,
                newest_first: true,
                limit: MAX_READ_SCAN,
            },
        )
        .await?;
        let mut senders = std::collections::HashSet::new();
        requests.retain(|m| senders.insert(m.from.clone()));
        // `t` is the read position itself, so that it agrees with what `conv/max_read` answers later.
        tell(svc, &cid, reader, &requests, ts, true).await?;
    }
    Ok(())
}

/// What `conv/max_read` answers: the newest delivery and read positions of the other members, and each other
/// member's own (those with any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiptTimes {
    pub max_ack: Option<i64>,
    pub max_read: Option<i64>,
    pub members: Vec<Positions>,
}

/// Why `conv/max_read` is refused.
#[derive(Debug, thiserror::Error)]
pub enum MaxReadError {
    #[error("no such conversation")]
    NotFound,
    #[error("only members may ask for a conversation's receipts")]
    NotMember,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The receipt positions of conversation `cid` as its member `client` may see them.
pub async fn max_read(
    svc: &Services,
    client: &str,
    cid: &str,
) -> Result<ReceiptTimes, MaxReadError> {
    let conv = objects::conversation(&svc.db, cid.to_string())
        .await?
        .ok_or(MaxReadError::NotFound)?;
    if !conv.members.iter().any(|m| m == client) {
        return Err(MaxReadError::NotMember);
    }
    let others: Vec<String> = conv.members.into_iter().filter(|m| m != client).collect();
    let members = positions::positions_of(&svc.db, cid.to_string(), others).await?;
    let positive = |v: i64| (v > 0).then_some(v);
    Ok(ReceiptTimes {
        max_ack: members.iter().map(|p| p.ack_ts).max().and_then(positive),
        max_read: members.iter().map(|p| p.read_ts).max().and_then(positive),
        members,
    })
}
