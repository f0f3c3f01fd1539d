//! The conversation commands: `conv/start`, `conv/add` and `conv/remove`, `conv/update`, `conv/query`. The
//! gateway decides who may do what (signatures, membership); the change itself, its hooks and the
//! notifications of the other members are `crate::domain::conversations`.

use serde_json::{json, Map, Value};

use super::admin::{admin_error, failed_pids};
use super::connection::Conn;
use super::replies::{conv_error, dedup, json_object, now_ms, refusal, reply_to, store_error};
use crate::domain::conv_admin;
use crate::domain::conversations::{self, members_body, strings, TempConvError, Update};
use crate::protocol::conversation::{is_server_field, CLASS, CREATOR, MEMBERS, TRANSIENT, UNIQUE};
use crate::protocol::limits::QUERY_REPLY_BUDGET;
use crate::protocol::Reason;
use crate::realtime::proto::{CommandType, ConvCommand, GenericCommand, JsonObjectMessage, OpType};
use crate::realtime::signature::Signed;
use crate::store::objects::{self, QueryParams};
use crate::store::query::parse_order;
use crate::store::realtime::last_messages;
use crate::store::{Caller, StoreError};

/// `conv/query`'s `flag` bits (the SDK's `compact` and `withLastMessagesRefreshed`).
const QUERY_COMPACT: i32 = 1;
const QUERY_LAST_MESSAGE: i32 = 2;

impl Conn {
    /// Custom attributes of `conv/start` / `conv/update`, refused when they touch a field the server owns.
    fn attributes(
        &mut self,
        req: &GenericCommand,
        conv: &ConvCommand,
    ) -> Option<Map<String, Value>> {
        let attrs = match json_object(conv.attr.as_ref()) {
            Ok(attrs) => attrs,
            Err(e) => {
                self.out.push(refusal(
                    req,
                    Reason::ConversationApiFailed,
                    Some(format!("attr: {e}")),
                ));
                return None;
            }
        };
        if let Some(key) = attrs.keys().find(|k| is_server_field(k)) {
            self.out.push(refusal(
                req,
                Reason::ConversationApiFailed,
                Some(format!("attribute {key} is kept by the server")),
            ));
            return None;
        }
        Some(attrs)
    }

    pub(super) async fn start(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let conv = req.conv_message.clone().unwrap_or_default();
        let mut members = conv.m.clone();
        members.push(peer.to_string());
        let mut members = dedup(&members);
        members.sort();
        let signed = Signed::Create {
            client: &peer,
            members: &members,
        };
        if !self.signature_ok(signed, conv.t, conv.n.as_deref(), conv.s.as_deref()) {
            self.out
                .push(refusal(&req, Reason::ConversationSignatureFailed, None));
            return;
        }
        if conv.temp_conv == Some(true) {
            self.start_temporary(&req, &peer, members, &conv).await;
            return;
        }
        let Some(mut body) = self.attributes(&req, &conv) else {
            return;
        };
        body.insert(CREATOR.into(), json!(&*peer));
        body.insert(MEMBERS.into(), json!(members));
        if conv.transient == Some(true) {
            body.insert(TRANSIENT.into(), json!(true));
        }
        if conv.unique == Some(true) {
            body.insert(UNIQUE.into(), json!(true));
        }
        if self.realtime().config.private_conversations && conv.transient != Some(true) {
            // Read by nobody but the master key: the gateway still shows it to its members (`m`).
            body.insert("ACL".into(), json!({}));
        }
        match conversations::start(&self.state.svc, Some(&peer), body, true).await {
            Ok(created) => {
                let cdate = created
                    .body
                    .get("createdAt")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.out.push(GenericCommand {
                    conv_message: Some(ConvCommand {
                        cid: Some(created.id),
                        cdate,
                        ..Default::default()
                    }),
                    ..reply_to(&req, CommandType::Conv, Some(OpType::Started))
                });
            }
            Err(e) => self.out.push(conv_error(&req, e)),
        }
    }

    /// `conv/start` with `tempConv`: `started` with the id (`_tmp:…`) and the seconds it lives (`tempConvTTL`,
    /// without which the SDK would never expire it).
    async fn start_temporary(
        &mut self,
        req: &GenericCommand,
        peer: &str,
        members: Vec<String>,
        conv: &ConvCommand,
    ) {
        let ttl = conv.temp_conv_ttl.map(i64::from);
        let unique = conv.unique == Some(true);
        match conversations::start_temporary(&self.state.svc, peer, members, ttl, unique).await {
            Ok(started) => {
                let now = now_ms();
                let left = ((started.expires_at - now).max(0) + 999) / 1000;
                let cdate = chrono::DateTime::from_timestamp_millis(started.created_at)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                self.out.push(GenericCommand {
                    conv_message: Some(ConvCommand {
                        cid: Some(started.id),
                        cdate,
                        temp_conv_ttl: Some(left.min(i64::from(i32::MAX)) as i32),
                        ..Default::default()
                    }),
                    ..reply_to(req, CommandType::Conv, Some(OpType::Started))
                });
            }
            Err(TempConvError::BadTtl) => self.out.push(refusal(
                req,
                Reason::ConversationApiFailed,
                Some(TempConvError::BadTtl.to_string()),
            )),
            Err(TempConvError::Store(e)) => self.out.push(store_error(req, e)),
        }
    }

    /// A conversation as the store renders it, or an error reply when it does not exist.
    pub(super) async fn conversation(
        &mut self,
        req: &GenericCommand,
        cid: Option<&str>,
    ) -> Option<(String, Map<String, Value>)> {
        let Some(cid) = cid.filter(|c| !c.is_empty()).map(str::to_owned) else {
            self.out.push(refusal(
                req,
                Reason::ConversationNotFound,
                Some("cid is required".into()),
            ));
            return None;
        };
        let found = objects::get(
            &self.state.svc.db,
            Caller::Master,
            CLASS.to_string(),
            cid.clone(),
            false,
        )
        .await;
        match found {
            Ok(Some(row)) => Some((cid, row)),
            Ok(None) => {
                self.out
                    .push(refusal(req, Reason::ConversationNotFound, None));
                None
            }
            Err(e) => {
                self.out.push(store_error(req, e));
                None
            }
        }
    }

    /// `conv/add` (invite, join, subscribe) and `conv/remove` (kick, quit, unsubscribe).
    pub(super) async fn members(&mut self, req: GenericCommand, add: bool) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let conv = req.conv_message.clone().unwrap_or_default();
        let Some((cid, row)) = self.conversation(&req, conv.cid.as_deref()).await else {
            return;
        };
        let ids = dedup(&conv.m);
        let signed = if add {
            Signed::Add {
                client: &peer,
                conv: &cid,
                members: &ids,
            }
        } else {
            Signed::Remove {
                client: &peer,
                conv: &cid,
                members: &ids,
            }
        };
        if !self.signature_ok(signed, conv.t, conv.n.as_deref(), conv.s.as_deref()) {
            self.out
                .push(refusal(&req, Reason::ConversationSignatureFailed, None));
            return;
        }
        // Anyone may add or remove themselves (join, quit; not the owner while it has managers), members add
        // others, the owner and managers remove others; blocked clients never come back (`domain::conv_admin`).
        let admin = conv_admin::from_row(&cid, &row);
        let partial =
            match conv_admin::membership_change(&self.state.svc, &admin, &peer, &ids, add).await {
                Ok(partial) => partial,
                Err(e) => {
                    self.out.push(admin_error(&req, e));
                    return;
                }
            };
        let failed = failed_pids(&partial);
        let allowed = partial.allowed;
        if !allowed.is_empty() {
            let update = Update::master(members_body(add, &allowed));
            if let Err(e) = conversations::update(&self.state.svc, Some(&peer), &cid, update).await
            {
                self.out.push(conv_error(&req, e));
                return;
            }
        }
        let reply_op = if add { OpType::Added } else { OpType::Removed };
        self.out.push(GenericCommand {
            conv_message: Some(ConvCommand {
                allowed_pids: allowed,
                failed_pids: failed,
                ..Default::default()
            }),
            ..reply_to(&req, CommandType::Conv, Some(reply_op))
        });
    }

    /// `conv/query`: the conversations the client may see (it is a member, or a service conversation or
    /// chat room) matching `where`, as `_Conversation` rows.
    pub(super) async fn query(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let conv = req.conv_message.clone().unwrap_or_default();
        let results = |data: String| GenericCommand {
            conv_message: Some(ConvCommand {
                results: Some(JsonObjectMessage { data }),
                ..Default::default()
            }),
            ..reply_to(&req, CommandType::Conv, Some(OpType::Results))
        };
        if !conv.temp_conv_ids.is_empty() {
            // Temporary conversations by id: the live ones the client is in.
            let ids = dedup(&conv.temp_conv_ids);
            match conversations::temporary(&self.state.svc, &peer, ids).await {
                Ok(found) => {
                    let now = now_ms();
                    let rows: Vec<Value> = found
                        .iter()
                        .map(|c| conversations::temporary_row(c, now))
                        .collect();
                    self.out.push(results(Value::Array(rows).to_string()));
                }
                Err(e) => self.out.push(store_error(&req, e)),
            }
            return;
        }
        let where_ = match json_object(conv.r#where.as_ref()) {
            Ok(w) => Value::Object(w),
            Err(e) => {
                self.out.push(refusal(
                    &req,
                    Reason::ConversationQueryFailed,
                    Some(format!("where: {e}")),
                ));
                return;
            }
        };
        // What a client may see: conversations it is in, service conversations and chat rooms, and any
        // other whose ACL lets the public read it (no ACL: public, so `getConversation(id).join()` works
        // as on LeanCloud). The condition sits beside the query's own keys so their SQL narrowing applies.
        let visible = json!([
            {"m": &*peer}, {"sys": true}, {"tr": true},
            {"ACL": {"$exists": false}}, {"ACL.*.read": true}
        ]);
        let where_ = match where_ {
            Value::Object(mut w) if !w.contains_key("$or") => {
                w.insert("$or".into(), visible);
                Value::Object(w)
            }
            other => json!({"$and": [other, {"$or": visible}]}),
        };
        if conv.limit == Some(0) {
            // `limit(0)`: no conversation, as on LeanCloud (the `where` was still checked).
            if let Err(e) = crate::store::query::matches(&Map::new(), &where_) {
                self.out.push(refusal(
                    &req,
                    Reason::ConversationQueryFailed,
                    Some(e.to_string()),
                ));
            } else {
                self.out.push(results("[]".into()));
            }
            return;
        }
        let q = QueryParams {
            where_: Some(where_),
            keys: None,
            limit: conv.limit.map_or(10, |l| l.clamp(1, 1000) as usize),
            skip: conv.skip.map_or(0, |s| s.max(0) as usize),
            order: conv.sort.as_deref().map(parse_order).unwrap_or_default(),
            count: false,
            with_acl: false,
            max_scan: self.state.max_scan,
        };
        // The gateway's own visibility rule (above) as the master key, but on the app key's lane: a client's
        // query never takes the priority pool.
        let found = objects::find_on(
            &self.state.svc.db,
            Caller::Master,
            crate::store::Lane::Shared,
            CLASS.to_string(),
            q,
        );
        match found.await {
            Ok(mut body) => {
                let mut rows = match body.get_mut("results").map(Value::take) {
                    Some(Value::Array(rows)) => rows,
                    _ => Vec::new(),
                };
                let flag = conv.flag.unwrap_or(0);
                if flag & QUERY_COMPACT != 0 {
                    for row in rows.iter_mut().filter_map(Value::as_object_mut) {
                        row.remove(MEMBERS);
                    }
                }
                if flag & QUERY_LAST_MESSAGE != 0 {
                    if let Err(e) = self.with_last_messages(&mut rows).await {
                        self.out.push(store_error(&req, e));
                        return;
                    }
                }
                self.out
                    .push(results(rows_within(rows, QUERY_REPLY_BUDGET)));
            }
            Err(e) => {
                let detail = e.to_string();
                self.out
                    .push(refusal(&req, Reason::ConversationQueryFailed, Some(detail)));
            }
        }
    }

    /// The last-message flag of `conv/query`: each conversation's last kept message as `msg`, `msg_from`,
    /// `msg_mid`, `msg_timestamp` (and `bin` when binary, base64 in `msg`).
    async fn with_last_messages(&mut self, rows: &mut [Value]) -> Result<(), StoreError> {
        let ids: Vec<String> = rows
            .iter()
            .filter_map(|r| r.get("objectId").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let last = last_messages(&self.state.svc.db, ids).await?;
        for row in rows.iter_mut().filter_map(Value::as_object_mut) {
            let Some(id) = row.get("objectId").and_then(Value::as_str) else {
                continue;
            };
            let Some((_, m)) = last.iter().find(|(c, _)| c == id) else {
                continue;
            };
            row.insert("msg".into(), json!(m.data));
            row.insert("msg_from".into(), json!(m.from));
            row.insert("msg_mid".into(), json!(m.msg_id));
            row.insert("msg_timestamp".into(), json!(m.timestamp));
            if m.binary {
                row.insert("bin".into(), json!(true));
            }
        }
        Ok(())
    }

    /// `conv/count`: how many members a conversation has (`result` with `count`).
    pub(super) async fn count(&mut self, req: GenericCommand) {
        if self.session_of(&req).is_none() {
            return;
        }
        let conv = req.conv_message.clone().unwrap_or_default();
        let Some((_, row)) = self.conversation(&req, conv.cid.as_deref()).await else {
            return;
        };
        let count = strings(row.get(MEMBERS)).len().min(i32::MAX as usize) as i32;
        self.out.push(GenericCommand {
            conv_message: Some(ConvCommand {
                count: Some(count),
                ..Default::default()
            }),
            ..reply_to(&req, CommandType::Conv, Some(OpType::Result))
        });
    }

    /// `conv/mute` / `conv/unmute`: a member turns the conversation's offline pushes off or on for itself.
    pub(super) async fn mute(&mut self, req: GenericCommand, mute: bool) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let conv = req.conv_message.clone().unwrap_or_default();
        let Some((cid, row)) = self.conversation(&req, conv.cid.as_deref()).await else {
            return;
        };
        if !strings(row.get(MEMBERS)).iter().any(|m| **m == *peer) {
            self.out.push(refusal(
                &req,
                Reason::ConversationMembershipRequired,
                Some("only members may mute a conversation".into()),
            ));
            return;
        }
        match conversations::mute(&self.state.svc, &peer, &cid, mute).await {
            Ok(out) => {
                let udate = out
                    .get("updatedAt")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.out.push(GenericCommand {
                    conv_message: Some(ConvCommand {
                        udate,
                        ..Default::default()
                    }),
                    ..reply_to(&req, CommandType::Conv, Some(OpType::Updated))
                });
            }
            Err(e) => self.out.push(conv_error(&req, e)),
        }
    }

    /// `conv/update`: a member changes the conversation's attributes.
    pub(super) async fn update(&mut self, req: GenericCommand) {
        let Some(peer) = self.session_of(&req) else {
            return;
        };
        let conv = req.conv_message.clone().unwrap_or_default();
        let Some((cid, row)) = self.conversation(&req, conv.cid.as_deref()).await else {
            return;
        };
        if !strings(row.get(MEMBERS)).iter().any(|m| **m == *peer) {
            self.out.push(refusal(
                &req,
                Reason::ConversationUpdateRejected,
                Some("only members may change a conversation".into()),
            ));
            return;
        }
        let Some(attrs) = self.attributes(&req, &conv) else {
            return;
        };
        match conversations::update(&self.state.svc, Some(&peer), &cid, Update::master(attrs)).await
        {
            Ok(out) => {
                let udate = out
                    .get("updatedAt")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.out.push(GenericCommand {
                    conv_message: Some(ConvCommand {
                        udate,
                        ..Default::default()
                    }),
                    ..reply_to(&req, CommandType::Conv, Some(OpType::Updated))
                });
            }
            Err(e) => self.out.push(conv_error(&req, e)),
        }
    }
}

/// The JSON array of `rows`, stopping before the row that would take it past `budget` bytes (the first row
/// always goes): one `conv/query` answer stays a frame the gateway can write.
fn rows_within(rows: Vec<Value>, budget: usize) -> String {
    let mut out = String::from("[");
    for (i, row) in rows.iter().enumerate() {
        let text = row.to_string();
        if i > 0 {
            if out.len() + 1 + text.len() + 1 > budget {
                break;
            }
            out.push(',');
        }
        out.push_str(&text);
    }
    out.push(']');
    out
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn query_rows_stop_at_the_byte_budget_and_stay_valid_json() {
        let rows: Vec<Value> = (0..10)
            .map(|i| json!({"objectId": i, "pad": "x".repeat(100)}))
            .collect();
        let all = rows_within(rows.clone(), usize::MAX);
        assert_eq!(
            Value::Array(rows.clone()),
            serde_json::from_str::<Value>(&all).unwrap()
        );
        let some = rows_within(rows.clone(), 500);
        let parsed: Vec<Value> = serde_json::from_str(&some).unwrap();
        assert!(some.len() <= 500, "{}", some.len());
        assert_eq!(rows[..parsed.len()].to_vec(), parsed);
        assert_eq!(
            4,
            parsed.len(),
            "four rows of 123 bytes, commas and brackets: 497 bytes"
        );
        assert_eq!(
            1,
            serde_json::from_str::<Vec<Value>>(&rows_within(rows, 10))
                .unwrap()
                .len()
        );
        assert_eq!("[]", rows_within(Vec::new(), 10));
    }
}
