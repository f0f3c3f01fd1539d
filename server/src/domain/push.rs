//! Pushes to phones: what is queued, for which devices (`leancloud-users-files-push.md` §3.2–§3.4).
//!
//! - [`offline`]: an IM message's offline push (decided by `messaging` after `_receiversOffline`) becomes one
//!   job per device its clients are bound to (`channels`, see [`super::installations`]; found through the
//!   store's index of devices by channel, so it costs the same with a thousand devices or ten million), valid 7
//!   days; [`everyone`]: a broadcast's push to every device;
//! - [`send`]: `POST /1.1/push` — `where` over `_Installation` (and `channels`), `data`, `prod`, `push_time` (a
//!   later send), `expiration_time` / `expiration_interval` — keeps a `_Notification` record and queues one job
//!   per matching device.
//!
//! A job's target is the device's APNs `deviceToken` (iOS) or its FCM `registrationId` (Android with `vendor`
//! `fcm`); devices of other platforms and vendors are queued as `unsupported`, so they show in the records
//! instead of being dropped silently. Devices marked `valid: false` get nothing. Delivery is the queue's
//! workers' job.

use serde_json::{json, Map, Value};

use super::Services;
use crate::store::objects::{self, INSTALLATION};
use crate::store::push_queue::{self, NewJob, State};
use crate::store::query;
use crate::store::time::{iso_millis, parse_iso_millis};
use crate::store::StoreError;

/// The class of the push API's records.
pub const NOTIFICATION: &str = "_Notification";
/// How long an IM offline push may wait for its device (LeanCloud's: 7 days).
pub const OFFLINE_TTL_MS: i64 = 7 * 86_400_000;
/// Devices read per page when a push is fanned out.
const PAGE: usize = 1000;
/// A `push_time` less than this ahead means now (LeanCloud's rule).
const SOON_MS: i64 = 60_000;

/// One device as a push needs it.
#[derive(Debug, Clone, PartialEq)]
struct Device {
    id: String,
    platform: String,
    /// The provider's address of the device, and whether a provider of this server serves it.
    target: Option<String>,
    /// An iOS device's `apnsTopic` (its app's bundle id).
    topic: Option<String>,
}

/// The device an `_Installation` row is, unless it has no id or is marked `valid: false` (gets nothing).
fn device_of(row: &Map<String, Value>) -> Option<Device> {
    if row.get("valid") == Some(&Value::Bool(false)) {
        return None;
    }
    let text = |k: &str| {
        row.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let id = text("objectId")?;
    let kind = text("deviceType").unwrap_or_default();
    let vendor = text("vendor");
    let (platform, target) = match (kind.as_str(), vendor.as_deref()) {
        ("ios", _) => ("ios".to_string(), text("deviceToken")),
        ("android", Some("fcm")) => ("android".to_string(), text("registrationId")),
        ("android", Some(other)) => (format!("android/{other}"), None),
        ("android", None) => ("android/lc".to_string(), None),
        (other, _) => (other.to_string(), None),
    };
    let topic = (platform == "ios").then(|| text("apnsTopic")).flatten();
    Some(Device {
        id,
        platform,
        target,
        topic,
    })
}

/// Every valid device matching `where_` (conditions over `_Installation`), in the order they were saved: read
/// page by page in storage order and matched here, so a push to every device (or to any condition) works with any
/// number of devices, where a storage query would be refused past `MAX_SCANNED_ROWS`.
async fn devices(svc: &Services, where_: Value) -> Result<Vec<Device>, StoreError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = match objects::scan(&svc.db, INSTALLATION.to_string(), after, PAGE as i64).await
        {
            Ok(page) => page,
            // No device was ever saved.
            Err(StoreError::ClassNotFound(_)) => return Ok(out),
            Err(e) => return Err(e),
        };
        for (_, row) in &page {
            if query::matches(&row.match_view(), &where_)? {
                out.extend(device_of(&row.render(false)));
            }
        }
        match page.last() {
            Some((seq, _)) if page.len() == PAGE => after = *seq,
            _ => return Ok(out),
        }
    }
}

/// What the jobs of one push share.
struct Batch<'a> {
    source: &'static str,
    ref_id: &'a str,
    payload: &'a Value,
    profile: Option<String>,
    due_at: i64,
    expires_at: Option<i64>,
}

fn jobs(batch: &Batch<'_>, devices: Vec<Device>) -> Vec<NewJob> {
    devices
        .into_iter()
        .map(|d| {
            let state = if d.target.is_some() {
                State::Pending
            } else {
                State::Unsupported
            };
            NewJob {
                source: batch.source,
                ref_id: batch.ref_id.to_string(),
                target: d.target.unwrap_or_default(),
                installation_id: d.id,
                platform: d.platform,
                payload: batch.payload.clone(),
                profile: batch.profile.clone(),
                due_at: batch.due_at,
                expires_at: batch.expires_at,
                state,
                topic: d.topic,
            }
        })
        .collect()
}

/// `dev` when the payload asks for the APNs sandbox (`"_profile": "dev"`).
fn profile_of(payload: &Value) -> Option<String> {
    payload
        .get("_profile")
        .and_then(Value::as_str)
        .filter(|p| *p == "dev")
        .map(str::to_owned)
}

/// Queues the offline push of message `msg_id` (its `payload`) for the devices of `peers`; how many jobs.
pub async fn offline(
    svc: &Services,
    msg_id: &str,
    peers: &[String],
    payload: &Value,
    now: i64,
) -> Result<usize, StoreError> {
    if peers.is_empty() {
        return Ok(0);
    }
    // A device two of the peers are bound to is pushed once.
    let mut all: Vec<Device> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for peers in peers.chunks(PAGE) {
        let rows = objects::installations_on(&svc.db, peers.to_vec()).await?;
        all.extend(
            rows.iter()
                .filter_map(device_of)
                .filter(|d| seen.insert(d.id.clone())),
        );
    }
    queue_message_push(svc, msg_id, payload, all, now).await
}

/// Queues the push of IM message `msg_id` for `devices`, due now and valid 7 days; how many jobs.
async fn queue_message_push(
    svc: &Services,
    msg_id: &str,
    payload: &Value,
    devices: Vec<Device>,
    now: i64,
) -> Result<usize, StoreError> {
    let batch = Batch {
        source: "rtm",
        ref_id: msg_id,
        payload,
        profile: profile_of(payload),
        due_at: now,
        expires_at: Some(now + OFFLINE_TTL_MS),
    };
    let jobs = jobs(&batch, devices);
    let n = jobs.len();
    push_queue::enqueue(&svc.db, jobs, now).await?;
    Ok(n)
}

/// Queues a broadcast's push (`msg_id`, its `payload`) for every valid device of the app; how many jobs.
pub async fn everyone(
    svc: &Services,
    msg_id: &str,
    payload: &Value,
    now: i64,
) -> Result<usize, StoreError> {
    let all = devices(svc, json!({})).await?;
    queue_message_push(svc, msg_id, payload, all, now).await
}

/// The payload of an IM offline push that neither the hook nor the message gave: the app's template with
/// `${convId}`, `${timestamp}` and `${fromClientId}` replaced in its strings, else LeanCloud's default alert.
pub fn from_template(template: Option<&Value>, conv_id: &str, from: &str, timestamp: i64) -> Value {
    fn fill(v: &Value, vars: &[(&str, &str)]) -> Value {
        match v {
            Value::String(s) => Value::String(
                vars.iter()
                    .fold(s.clone(), |s, (name, value)| s.replace(name, value)),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|i| fill(i, vars)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), fill(v, vars)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    match template {
        Some(t) => {
            let ts = timestamp.to_string();
            fill(
                t,
                &[
                    ("${convId}", conv_id),
                    ("${timestamp}", &ts),
                    ("${fromClientId}", from),
                ],
            )
        }
        None => json!({"alert": "New message"}),
    }
}

/// A push API request, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PushRequest {
    pub data: Value,
    /// `_Installation` conditions (`where` and `channels` together).
    pub where_: Value,
    /// `prod` (`"dev"` or `"prod"`), else `dev` when the request's `X-LC-Prod` is `0`.
    pub prod: Option<String>,
    /// `topic`: the APNs topic (bundle id) for every iOS device of this push, over the devices' `apnsTopic`.
    pub topic: Option<String>,
    /// ms; `None`: now.
    pub push_time: Option<i64>,
    /// ms.
    pub expires_at: Option<i64>,
    /// The request body as given, kept in the record.
    pub body: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(m: impl Into<String>) -> PushError {
    PushError::Invalid(m.into())
}

fn time_param(body: &Map<String, Value>, key: &str) -> Result<Option<i64>, PushError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_iso_millis(s)
            .map(Some)
            .ok_or_else(|| invalid(format!("{key} must be an ISO 8601 time."))),
        Some(Value::Object(d)) => d
            .get("iso")
            .and_then(Value::as_str)
            .and_then(parse_iso_millis)
            .map(Some)
            .ok_or_else(|| invalid(format!("{key} must be an ISO 8601 time."))),
        Some(_) => Err(invalid(format!("{key} must be an ISO 8601 time."))),
    }
}

/// Reads a `POST /1.1/push` body at `now` (ms); `prod_header` is the request's `X-LC-Prod` (`0`: a stage
/// environment, the APNs sandbox unless `prod` says otherwise).
pub fn request(
    body: Map<String, Value>,
    prod_header: Option<&str>,
    now: i64,
) -> Result<PushRequest, PushError> {
    let data = match body.get("data") {
        Some(d @ Value::Object(_)) => d.clone(),
        Some(Value::String(s)) => {
            serde_json::from_str::<Value>(s).map_err(|_| invalid("data must be a JSON object."))?
        }
        _ => return Err(invalid("data is required: the notification's content.")),
    };
    if body.contains_key("cql") {
        return Err(invalid("cql is not supported: use where."));
    }
    let mut conditions = vec![];
    match body.get("where") {
        None | Some(Value::Null) => {}
        Some(w @ Value::Object(_)) => conditions.push(w.clone()),
        Some(Value::String(s)) => conditions.push(
            serde_json::from_str::<Value>(s)
                .map_err(|_| invalid("where must be a JSON object."))?,
        ),
        Some(_) => return Err(invalid("where must be a JSON object.")),
    }
    match body.get("channels") {
        None | Some(Value::Null) => {}
        Some(Value::Array(c)) if c.iter().all(Value::is_string) => {
            conditions.push(json!({"channels": {"$in": c}}))
        }
        Some(_) => return Err(invalid("channels must be an array of channel names.")),
    }
    let prod = match body.get("prod") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if p == "dev" || p == "prod" => Some(p.clone()),
        Some(_) => return Err(invalid("prod must be \"dev\" or \"prod\".")),
    }
    .or_else(|| (prod_header.map(str::trim) == Some("0")).then(|| "dev".to_string()));
    let topic = match body.get("topic") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if !t.trim().is_empty() => Some(t.trim().to_string()),
        Some(_) => return Err(invalid("topic must be the app's bundle id.")),
    };
    let push_time = time_param(&body, "push_time")?.filter(|t| *t > now + SOON_MS);
    let expiration = time_param(&body, "expiration_time")?;
    let interval = match body.get("expiration_interval") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|s| *s > 0.0)
                .ok_or_else(|| invalid("expiration_interval must be a number of seconds."))?,
        ),
    };
    let expires_at = match (expiration, interval) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "expiration_time and expiration_interval cannot both be given.",
            ))
        }
        (Some(t), None) => Some(t),
        (None, Some(s)) => Some(push_time.unwrap_or(now) + (s * 1000.0) as i64),
        (None, None) => None,
    };
    if expires_at.is_some_and(|e| e <= push_time.unwrap_or(now)) {
        return Err(invalid("The push expires before it would be sent."));
    }
    let where_ = match conditions.len() {
        0 => json!({}),
        1 => conditions.remove(0),
        _ => json!({ "$and": conditions }),
    };
    Ok(PushRequest {
        data,
        where_,
        prod,
        topic,
        push_time,
        expires_at,
        body,
    })
}

/// Keeps the `_Notification` record of `req` and queues its jobs at `now`: the record's id and creation time.
pub async fn send(
    svc: &Services,
    req: PushRequest,
    now: i64,
) -> Result<Map<String, Value>, PushError> {
    let mut found = devices(svc, req.where_.clone()).await?;
    if let Some(topic) = &req.topic {
        found
            .iter_mut()
            .filter(|d| d.platform == "ios")
            .for_each(|d| d.topic = Some(topic.clone()));
    }
    let profile = match req.prod.as_deref() {
        Some("dev") => Some("dev".to_string()),
        Some(_) => None,
        None => profile_of(&req.data),
    };
    let mut record = Map::new();
    record.insert("data".into(), req.data.clone());
    record.insert("where".into(), req.where_.clone());
    record.insert(
        "prod".into(),
        json!(if profile.is_some() { "dev" } else { "prod" }),
    );
    record.insert("devices".into(), json!(found.len()));
    record.insert(
        "status".into(),
        json!(if req.push_time.is_some() {
            "scheduled"
        } else {
            "queued"
        }),
    );
    if let Some(t) = req.push_time {
        record.insert("push_time".into(), json!(iso_millis(t)));
    }
    if let Some(t) = req.expires_at {
        record.insert("expiration_time".into(), json!(iso_millis(t)));
    }
    for key in ["notification_id", "req_id"] {
        if let Some(v) = req.body.get(key) {
            record.insert(key.into(), v.clone());
        }
    }
    let created = objects::create(&svc.db, NOTIFICATION.to_string(), record, false).await?;
    let batch = Batch {
        source: "api",
        ref_id: &created.id,
        payload: &req.data,
        profile,
        due_at: req.push_time.unwrap_or(now),
        expires_at: req.expires_at,
    };
    push_queue::enqueue(&svc.db, jobs(&batch, found), now).await?;
    let mut answer = Map::new();
    answer.insert("objectId".into(), json!(created.id));
    answer.insert(
        "createdAt".into(),
        created
            .body
            .get("createdAt")
            .cloned()
            .unwrap_or_else(|| json!(iso_millis(now))),
    );
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_device_is_addressed_by_its_token_or_marked_unsupported() {
        let ios = device_of(&body(
            json!({"objectId": "i", "deviceType": "ios", "deviceToken": "ab"}),
        ));
        assert_eq!(Some(Some("ab".to_string())), ios.map(|d| d.target));
        let fcm = device_of(&body(
            json!({"objectId": "a", "deviceType": "android", "vendor": "fcm", "registrationId": "r"}),
        ))
        .expect("device");
        assert_eq!(
            ("android".to_string(), Some("r".to_string())),
            (fcm.platform, fcm.target)
        );
        let hms = device_of(&body(
            json!({"objectId": "h", "deviceType": "android", "vendor": "HMS", "registrationId": "r"}),
        ))
        .expect("device");
        assert_eq!(
            ("android/HMS".to_string(), None),
            (hms.platform, hms.target)
        );
        let gone = device_of(&body(
            json!({"objectId": "g", "deviceType": "ios", "deviceToken": "cd", "valid": false}),
        ));
        assert_eq!(None, gone.map(|d| d.id));
    }

    #[test]
    fn the_template_names_the_conversation_sender_and_time() {
        let t = json!({"alert": {"title": "${fromClientId}", "body": "in ${convId} at ${timestamp}"},
                       "badge": "Increment", "sound": "default", "n": 1});
        assert_eq!(
            json!({"alert": {"title": "alice", "body": "in c1 at 1700000000000"},
                   "badge": "Increment", "sound": "default", "n": 1}),
            from_template(Some(&t), "c1", "alice", 1_700_000_000_000)
        );
        assert_eq!(
            json!({"alert": "New message"}),
            from_template(None, "c1", "alice", 1)
        );
    }

    #[test]
    fn a_push_request_is_checked_and_its_times_resolved() {
        let now = 1_800_000_000_000;
        let r = request(
            body(
                json!({"data": {"alert": "hi"}, "channels": ["a"], "where": {"deviceType": "ios"},
                        "expiration_interval": 60}),
            ),
            None,
            now,
        )
        .expect("valid");
        assert_eq!(
            json!({"$and": [{"deviceType": "ios"}, {"channels": {"$in": ["a"]}}]}),
            r.where_
        );
        assert_eq!((None, Some(now + 60_000)), (r.push_time, r.expires_at));
        let later = iso_millis(now + 3_600_000);
        let r = request(body(json!({"data": {}, "push_time": later})), None, now).expect("valid");
        assert_eq!(Some(now + 3_600_000), r.push_time);
        let soon = iso_millis(now + 30_000);
        let r = request(body(json!({"data": {}, "push_time": soon})), None, now).expect("valid");
        assert_eq!(None, r.push_time, "less than a minute ahead is now");
        // A stage environment's request (`X-LC-Prod: 0`) goes to the sandbox unless `prod` says otherwise.
        let stage = |b: Value| request(body(b), Some("0"), now).expect("valid").prod;
        assert_eq!(Some("dev".to_string()), stage(json!({"data": {}})));
        assert_eq!(
            Some("prod".to_string()),
            stage(json!({"data": {}, "prod": "prod"}))
        );
        let r = request(
            body(json!({"data": {}, "topic": "com.example.b"})),
            Some("1"),
            now,
        )
        .expect("valid");
        assert_eq!((None, Some("com.example.b".to_string())), (r.prod, r.topic));
        for bad in [
            json!({}),
            json!({"data": 1}),
            json!({"data": {}, "prod": "staging"}),
            json!({"data": {}, "channels": "a"}),
            json!({"data": {}, "expiration_interval": 1, "expiration_time": later}),
            json!({"data": {}, "expiration_time": iso_millis(now - 1)}),
            json!({"data": {}, "cql": "select * from _Installation"}),
            json!({"data": {}, "topic": 7}),
        ] {
            assert!(request(body(bad.clone()), None, now).is_err(), "{bad}");
        }
    }
}
