//! The conversation commands: `conv/start`, `conv/add` and `conv/remove`, `conv/update`, `conv/query`. The
//! gateway decides who may do what (signatures, membership); the change itself, its hooks and the
//! notifications of the other members are `crate::domain::conversations`.

use serde_json::{json, Map, Value};

use super::connection::Conn;
use super::replies::{conv_error, dedup, json_object, refusal, reply_to, store_error};
use crate::domain::conversations::{self, members_body, strings, Update};
use crate::protocol::conversation::{is_server_field, CLASS, CREATOR, MEMBERS, TRANSIENT, UNIQUE};
use crate::protocol::Reason;
use crate::realtime::proto::{
    CommandType, ConvCommand, ErrorCommand, GenericCommand, JsonObjectMessage, OpType,
};
use crate::realtime::signature::Signed;
use crate::store::objects::{self, QueryParams};
use crate::store::query::parse_order;
use crate::store::Caller;

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
        if conv.temp_conv == Some(true) {
            self.out.push(refusal(
                &req,
                Reason::ConversationApiFailed,
                Some("temporary conversations are not supported by this server".into()),
            ));
            return;
        }
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
        let is_member = strings(row.get(MEMBERS)).iter().any(|m| **m == *peer);
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
        // Anyone may add or remove themselves (join, quit); only members may change others.
        let (allowed, refused): (Vec<String>, Vec<String>) =
            ids.into_iter().partition(|id| is_member || **id == *peer);
        let failed = if refused.is_empty() {
            Vec::new()
        } else {
            let reason = Reason::ConversationMembershipRequired;
            vec![ErrorCommand {
                code: reason.code() as i32,
                reason: reason.name().into(),
                pids: refused,
                ..Default::default()
            }]
        };
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
        if conv.r#where.is_none() && !conv.temp_conv_ids.is_empty() {
            // Temporary conversations are not kept: none of them exists.
            self.out.push(results("[]".into()));
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
        match objects::find(&self.state.svc.db, Caller::Master, CLASS.to_string(), q).await {
            Ok(body) => {
                let rows = body.get("results").cloned().unwrap_or_else(|| json!([]));
                self.out.push(results(rows.to_string()));
            }
            Err(e) => {
                let detail = e.to_string();
                self.out
                    .push(refusal(&req, Reason::ConversationQueryFailed, Some(detail)));
            }
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
