//! A history record: one stored message as LeanCloud's history APIs list it (1.1 `GET /1.1/rtm/messages/history`,
//! 1.2 `…/messages`), typed for the store to fill and rendered here once for every API (`leancloud-rest.md` §3.8,
//! `leancloud-migration.md` §1.3). The realtime `logs` command reads the same typed record.

use serde_json::{json, Value};

/// One message of a history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageRecord {
    /// When the server received it (ms).
    pub timestamp: i64,
    pub conv_id: String,
    /// The message text (base64 when `binary`).
    pub data: String,
    pub from: String,
    pub msg_id: String,
    /// Sent in a chat room.
    pub is_room: bool,
    pub from_ip: Option<String>,
    pub binary: bool,
    /// First delivery (imported messages).
    pub ack_at: Option<i64>,
    /// For a message to chosen clients of a service conversation: who it went to (empty for any other).
    pub recipients: Vec<String>,
    pub mention_pids: Vec<String>,
    pub mention_all: bool,
    /// When the message was last edited or recalled (ms).
    pub patch_timestamp: Option<i64>,
}

/// The record as the history APIs answer it: `timestamp`, `conv-id`, `data`, `from`, `msg-id`, `is-conv`,
/// `is-room`, `to`, `bin`, `from-ip`, then what the message has of `ack-at`, `recipients` (not a LeanCloud
/// field: an export from this server keeps who a message to chosen clients went to), `mention-pids` and
/// `mention-all`.
pub fn render(r: &MessageRecord) -> Value {
    let mut record = json!({
        "timestamp": r.timestamp,
        "conv-id": r.conv_id,
        "data": r.data,
        "from": r.from,
        "msg-id": r.msg_id,
        "is-conv": true,
        "is-room": r.is_room,
        "to": r.conv_id,
        "bin": r.binary,
        "from-ip": r.from_ip.clone().unwrap_or_default(),
    });
    if let Some(ack) = r.ack_at {
        record["ack-at"] = json!(ack);
    }
    if !r.recipients.is_empty() {
        record["recipients"] = json!(r.recipients);
    }
    if !r.mention_pids.is_empty() || r.mention_all {
        record["mention-pids"] = json!(r.mention_pids);
        record["mention-all"] = json!(r.mention_all);
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_renders_as_the_history_apis_answer_it() {
        let r = MessageRecord {
            timestamp: 1_700_000_000_123,
            conv_id: "c1".into(),
            data: "hi".into(),
            from: "alice".into(),
            msg_id: "m1".into(),
            ..MessageRecord::default()
        };
        assert_eq!(
            json!({"timestamp": 1_700_000_000_123_i64, "conv-id": "c1", "data": "hi", "from": "alice",
                "msg-id": "m1", "is-conv": true, "is-room": false, "to": "c1", "bin": false, "from-ip": ""}),
            render(&r)
        );
        let full = MessageRecord {
            ack_at: Some(5),
            recipients: vec!["bob".into()],
            mention_pids: vec!["carol".into()],
            ..r
        };
        let v = render(&full);
        assert_eq!(
            (json!(5), json!(["bob"]), json!(["carol"]), json!(false)),
            (
                v["ack-at"].clone(),
                v["recipients"].clone(),
                v["mention-pids"].clone(),
                v["mention-all"].clone()
            )
        );
    }
}
