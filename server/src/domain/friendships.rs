//! The status system's follow graph (`AV.User#follow`, `followerQuery`, `getFollowersAndFollowees`): `user`
//! follows `target` as two rows, `_Follower {user: target, follower: user}` and `_Followee {user: user, followee:
//! target}`, both with the attributes the follow carried. Only the follower (its session) or the master key
//! follows and unfollows; everyone may read the graph (the rows' ACL is public read, written only here). One row
//! per pair: the store keys both classes by the pair, so a repeated or concurrent follow never duplicates one, and
//! a second follow answers 137 as LeanCloud does.

use serde_json::{json, Map, Value};

use super::users::UserError;
use super::Services;
use crate::protocol::codes;
use crate::store::objects::{self, QueryParams, FOLLOWEE, FOLLOWER};
use crate::store::users::{self, USER_CLASS};
use crate::store::{Caller, StoreError};

/// Fields of the rows the follow itself sets; the attributes may not replace them.
const EDGE_FIELDS: [&str; 4] = ["user", "follower", "followee", "ACL"];

fn user_pointer(id: &str) -> Value {
    json!({"__type": "Pointer", "className": USER_CLASS, "objectId": id})
}

fn refused(code: i64, message: &str) -> UserError {
    UserError::Refused {
        code,
        message: message.to_string(),
    }
}

/// The follower itself or the master key (206 otherwise), and both users existing (211).
/// Whether `caller` may change `user`'s follows of `target` (the user itself or the master key; never itself).
fn may_change(caller: &Caller, user: &str, target: &str) -> Result<(), UserError> {
    if !(caller.is_master() || caller.user_id() == Some(user)) {
        return Err(UserError::SessionMissing);
    }
    if user == target {
        return Err(refused(codes::INVALID_JSON, "A user cannot follow itself."));
    }
    Ok(())
}

async fn check(svc: &Services, caller: &Caller, user: &str, target: &str) -> Result<(), UserError> {
    may_change(caller, user, target)?;
    for id in [user, target] {
        if users::get(&svc.db, id.to_string()).await?.is_none() {
            return Err(refused(codes::USER_NOT_FOUND, "Could not find user."));
        }
    }
    Ok(())
}

/// `POST /1.1/users/{user}/friendship/{target}`: `user` follows `target`, the rows carrying `attributes`.
pub async fn follow(
    svc: &Services,
    caller: &Caller,
    user: &str,
    target: &str,
    attributes: Map<String, Value>,
) -> Result<(), UserError> {
    check(svc, caller, user, target).await?;
    let mut base = attributes;
    for field in EDGE_FIELDS {
        base.remove(field);
    }
    base.insert("ACL".into(), json!({"*": {"read": true}}));
    let mut follower = base.clone();
    follower.insert("user".into(), user_pointer(target));
    follower.insert("follower".into(), user_pointer(user));
    let mut followee = base;
    followee.insert("user".into(), user_pointer(user));
    followee.insert("followee".into(), user_pointer(target));
    // `_Followee` first: a follow that fails halfway leaves the follower's own list, which a retry completes.
    let second = objects::create(&svc.db, FOLLOWEE.into(), followee, false).await?;
    let first = objects::create(&svc.db, FOLLOWER.into(), follower, false).await?;
    if second.existed && first.existed {
        return Err(refused(
            codes::DUPLICATE_VALUE,
            "The user is already followed.",
        ));
    }
    Ok(())
}

/// The rows of `class` matching `where_` (as the master key: the graph is public).
async fn edge_ids(svc: &Services, class: &str, where_: Value) -> Result<Vec<String>, UserError> {
    let q = QueryParams {
        where_: Some(where_),
        keys: Some(vec!["objectId".into()]),
        limit: 1000,
        max_scan: crate::protocol::limits::MAX_SCANNED_ROWS,
        ..QueryParams::default()
    };
    let found = match objects::find(&svc.db, Caller::Master, class.into(), q).await {
        Ok(found) => found,
        Err(StoreError::ClassNotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(found
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("objectId").and_then(Value::as_str).map(str::to_owned))
        .collect())
}

/// `DELETE /1.1/users/{user}/friendship/{target}`: `user` no longer follows `target` (done also when it did not).
pub async fn unfollow(
    svc: &Services,
    caller: &Caller,
    user: &str,
    target: &str,
) -> Result<(), UserError> {
    // Neither user need still exist: the edges to a deleted user are exactly what is left to remove.
    may_change(caller, user, target)?;
    let edges = [
        (
            FOLLOWER,
            json!({"user": user_pointer(target), "follower": user_pointer(user)}),
        ),
        (
            FOLLOWEE,
            json!({"user": user_pointer(user), "followee": user_pointer(target)}),
        ),
    ];
    for (class, where_) in edges {
        for id in edge_ids(svc, class, where_).await? {
            objects::delete(&svc.db, Caller::Master, class.into(), id, None).await?;
        }
    }
    Ok(())
}

/// The condition of a user's followers (`_Follower`) or followees (`_Followee`) query, joined with the request's.
pub fn edges_of(user: &str, request_where: Option<Value>) -> Value {
    let own = json!({"user": user_pointer(user)});
    match request_where {
        None => own,
        Some(Value::Object(mut w)) if !w.contains_key("user") => {
            w.insert("user".into(), user_pointer(user));
            Value::Object(w)
        }
        Some(other) => json!({"$and": [own, other]}),
    }
}
