//! The `push` part of `bench run` (issue 25): one REST send to a conversation of N offline members, each bound to
//! one device — half iPhones (APNs `deviceToken`), half Android phones with FCM (`registrationId`) — and what
//! reaches the providers: pushes/s delivered to the local stand-ins of APNs and FCM (`push-standins`, which speak
//! the real protocols: HTTP/2 over TLS with ES256 provider tokens checked; the OAuth grant and `messages:send`),
//! the time from the send until the first and until the last, each provider's rate side by side, and whether any
//! device got two.
//!
//! It starts its own server in process (the `leancloud-server` library, as the tests do) on a fresh SQLite
//! database in the temporary directory, with both providers pointed at the stand-ins and the push worker's round
//! every [`WORKER_EVERY`]. Figures are reported, never asserted.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use leancloud_server::config::{ApnsConfig, FcmConfig};
use leancloud_server::{spawn, Durability, ServerConfig, DEV_APP_ID, DEV_MASTER_KEY};
use push_standins::{Apns, Fcm, Recorded, Seen, KEY_ID, TEAM_ID, TOPIC};
use serde_json::{json, Value};

use crate::report::{row, Measure, Target, Unit};
use crate::Bench;

/// Installations created at once while setting up.
const CREATE_CONCURRENCY: usize = 32;
/// How often the server's push worker looks for due jobs (`--push-every`; the server's default is 1 s).
const WORKER_EVERY: Duration = Duration::from_millis(100);
/// How often the stand-ins' records are read while waiting (the resolution of the times); less often when a read
/// takes on average more than a twentieth of that, so the reads keep to ~5 % of a core, but at least every
/// [`POLL_MAX`].
const POLL: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(100);
/// Given up when no push was delivered for this long.
const STALL: Duration = Duration::from_secs(60);
/// After the last expected push: time for any request too many to arrive (ten rounds of the worker).
const QUIET: Duration = Duration::from_secs(1);
/// Most client ids one `POST …/members` names (the server's `MAX_IDS`), for the fallback when a conversation
/// with every member at once is refused.
const MEMBERS_CHUNK: usize = 500;

/// What one run measured (seconds from the send's request going out).
#[derive(Debug, Clone, Default)]
struct Outcome {
    members: usize,
    ios: usize,
    android: usize,
    devices_s: f64,
    conversation_s: f64,
    /// How the conversation got its members.
    conversation_how: String,
    send_answered_s: f64,
    first_s: Option<f64>,
    apns_last_s: Option<f64>,
    fcm_last_s: Option<f64>,
    /// Until the stand-ins' records were last read (the end of the wait, or when it gave up).
    waited_s: f64,
    tally: Tally,
    polls: u32,
    poll_busy_s: f64,
    /// The longest pause between two reads.
    poll_pause_max_s: f64,
    /// The offline push's device lookup replayed through the API afterwards: queries, seconds, devices found.
    lookup: Option<(usize, f64, usize)>,
}

/// The stand-ins' records counted against the devices expected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    apns_delivered: usize,
    fcm_delivered: usize,
    /// Different devices that got a push (answered 200).
    distinct: usize,
    /// Deliveries beyond the first to the same device.
    duplicates: usize,
    /// Devices delivered to that were not among the expected.
    unexpected: usize,
    /// Requests answered other than 200.
    not_ok: usize,
}

/// The APNs device token of member `i` (64 hex digits, as an iPhone's).
fn apns_token(i: usize) -> String {
    // splitmix64 of the index: distinct, and not mostly zeros
    let mut parts = String::with_capacity(64);
    for k in 0..4u64 {
        let mut z = (i as u64)
            .wrapping_mul(4)
            .wrapping_add(k)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        parts.push_str(&format!("{:016x}", z ^ (z >> 31)));
    }
    parts
}

fn fcm_token(i: usize) -> String {
    format!("bench-fcm-registration-{i:06}")
}

/// Member `i`'s client id: short, because a conversation is one stored object of at most 128 KiB of JSON
/// (`MAX_OBJECT_BYTES`): 10,000 ids of 18 characters (`push-member-000123`) do not fit, ids of at most 5 do.
fn member(i: usize) -> String {
    format!("m{i}")
}

/// Member `i`'s device as `POST /1.1/installations` takes it, bound to the member (`channels`: what a realtime
/// login from the device stores); even members on iPhones, odd ones on Android phones with FCM.
fn installation(i: usize) -> Value {
    if i % 2 == 0 {
        json!({"deviceType": "ios", "deviceToken": apns_token(i), "channels": [member(i)]})
    } else {
        json!({
            "deviceType": "android", "installationId": format!("bench-push-phone-{i:06}"), "vendor": "fcm",
            "registrationId": fcm_token(i), "channels": [member(i)],
        })
    }
}

/// Counts what the stand-ins saw against the expected `apns` and `fcm` device tokens.
fn tally(
    apns_seen: &[Seen],
    fcm_seen: &[Seen],
    apns: &HashSet<String>,
    fcm: &HashSet<String>,
) -> Tally {
    let mut t = Tally::default();
    let mut got: HashSet<(bool, &str)> = HashSet::new();
    for (is_apns, seen, expected) in [(true, apns_seen, apns), (false, fcm_seen, fcm)] {
        for s in seen {
            if s.status != 200 {
                t.not_ok += 1;
                continue;
            }
            if is_apns {
                t.apns_delivered += 1;
            } else {
                t.fcm_delivered += 1;
            }
            if !got.insert((is_apns, s.device.as_str())) {
                t.duplicates += 1;
            } else if !expected.contains(&s.device) {
                t.unexpected += 1;
            }
        }
    }
    t.distinct = got.len();
    t
}

/// The members' devices found the way the offline push did before the server kept an index of devices by
/// channel: general queries `channels $in` over `_Installation` (1,000 clients at a time, pages of 1,000 in
/// `createdAt` order until a short one), each a scan of every device, through `GET /1.1/installations` after the
/// run: (queries, seconds, devices found). Beside the send → first push time (which holds the push's own lookup
/// through the index, and the queueing), it shows what the index saves.
async fn lookup(
    http: &reqwest::Client,
    base: &str,
    members: &[String],
) -> Result<(usize, f64, usize), String> {
    const PAGE: usize = 1000;
    let (mut queries, mut found) = (0, 0);
    let started = Instant::now();
    for chunk in members.chunks(PAGE) {
        let where_ =
            json!({"$and": [{"channels": {"$in": chunk}}, {"valid": {"$ne": false}}]}).to_string();
        let mut skip = 0;
        loop {
            let url = reqwest::Url::parse_with_params(
                &format!("{base}/1.1/installations"),
                &[
                    ("where", where_.as_str()),
                    ("limit", "1000"),
                    ("skip", &skip.to_string()),
                    ("order", "createdAt"),
                ],
            )
            .map_err(|e| e.to_string())?;
            let page = call(http, reqwest::Method::GET, url.to_string(), None).await?;
            queries += 1;
            let n = page["results"].as_array().map_or(0, Vec::len);
            found += n;
            skip += n;
            if n < PAGE {
                break;
            }
        }
    }
    Ok((queries, started.elapsed().as_secs_f64(), found))
}

/// A master-key request to the in-process server; the answer's JSON, or why it was not a 2xx.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<&Value>,
) -> Result<Value, String> {
    let mut req = http
        .request(method, &url)
        .header("X-LC-Id", DEV_APP_ID)
        .header("X-LC-Key", format!("{DEV_MASTER_KEY},master"));
    if let Some(body) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("{url}: {e}"))
}

/// A conversation of every member (at once, else 500 at a time through the members endpoint); its id and how.
async fn conversation(
    http: &reqwest::Client,
    base: &str,
    members: &[String],
) -> Result<(String, String), String> {
    let url = format!("{base}/1.2/rtm/conversations");
    let at_once = call(
        http,
        reqwest::Method::POST,
        url.clone(),
        Some(&json!({"name": "bench-push", "m": members})),
    )
    .await;
    let (id, how) = match at_once {
        Ok(conv) => (
            conv["objectId"].as_str().unwrap_or_default().to_owned(),
            "created with all its members in one request".to_owned(),
        ),
        Err(refused) => {
            let short: String = refused.chars().take(200).collect();
            let refused_too = |e: String| format!("all members at once: {short}; then {e}");
            let first = &members[..members.len().min(MEMBERS_CHUNK)];
            let conv = call(
                http,
                reqwest::Method::POST,
                url,
                Some(&json!({"name": "bench-push", "m": first})),
            )
            .await
            .map_err(refused_too)?;
            let id = conv["objectId"].as_str().unwrap_or_default().to_owned();
            for (k, chunk) in members[first.len()..].chunks(MEMBERS_CHUNK).enumerate() {
                call(
                    http,
                    reqwest::Method::POST,
                    format!("{base}/1.2/rtm/conversations/{id}/members"),
                    Some(&json!({ "client_ids": chunk })),
                )
                .await
                .map_err(|e| {
                    let had = first.len() + k * MEMBERS_CHUNK;
                    refused_too(format!("adding members past {had}: {e}"))
                })?;
            }
            (
                id,
                format!(
                    "created with {MEMBERS_CHUNK} members, the rest added {MEMBERS_CHUNK} at a time (all at once was refused: {short})"
                ),
            )
        }
    };
    if id.is_empty() {
        return Err("the conversation was created without an objectId".into());
    }
    let listed = call(
        http,
        reqwest::Method::GET,
        format!("{base}/1.2/rtm/conversations/{id}/members"),
        None,
    )
    .await?;
    let n = listed["result"].as_array().map_or(0, Vec::len);
    if n != members.len() {
        return Err(format!(
            "the conversation has {n} members, {} expected",
            members.len()
        ));
    }
    Ok((id, how))
}

/// One run: a fresh server and stand-ins, `n` members with their devices, one send, the wait for every push.
async fn measure(
    n: usize,
    dir: &std::path::Path,
    latency: Duration,
    concurrency: Option<usize>,
) -> Result<Outcome, String> {
    let apns = Apns::start().await;
    let fcm = Fcm::start().await;
    apns.set_latency(latency);
    fcm.set_latency(latency);
    let mut config = ServerConfig::for_tests(dir.join("bench.sqlite3"));
    // as `bench run`'s own server: the release server's default (one fsync per group commit)
    config.durability = Durability::default();
    config.request_log = 0;
    config.push.apns = Some(ApnsConfig {
        key_pem: apns.key_pem.clone(),
        key_id: KEY_ID.into(),
        team_id: TEAM_ID.into(),
        topic: Some(TOPIC.into()),
        endpoint: Some(apns.url.clone()),
        ca_pem: Some(apns.ca_pem.clone()),
    });
    config.push.fcm = Some(FcmConfig {
        service_account: fcm.service_account(),
        endpoint: Some(fcm.url.clone()),
    });
    config.push.every = WORKER_EVERY;
    if let Some(c) = concurrency {
        config.push.concurrency = c;
    }
    let server = spawn(config).await.map_err(|e| format!("server: {e}"))?;
    let result = measure_on(n, &server.base_url(), &apns, &fcm).await;
    server.shutdown().await;
    result
}

async fn measure_on(n: usize, base: &str, apns: &Apns, fcm: &Fcm) -> Result<Outcome, String> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CREATE_CONCURRENCY)
        .build()
        .map_err(|e| e.to_string())?;
    let mut out = Outcome {
        members: n,
        ios: n.div_ceil(2),
        android: n / 2,
        ..Outcome::default()
    };
    let apns_expected: HashSet<String> = (0..n).step_by(2).map(apns_token).collect();
    let fcm_expected: HashSet<String> = (1..n).step_by(2).map(fcm_token).collect();

    // Arrange: the devices, bound to their members, and the conversation of them all.
    let started = Instant::now();
    let url = format!("{base}/1.1/installations");
    let created: Vec<Result<Value, String>> = stream::iter(0..n)
        .map(|i| {
            let (http, url) = (&http, url.clone());
            async move { call(http, reqwest::Method::POST, url, Some(&installation(i))).await }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect()
        .await;
    if let Some(Err(e)) = created.into_iter().find(Result::is_err) {
        return Err(format!("creating the installations: {e}"));
    }
    out.devices_s = started.elapsed().as_secs_f64();
    let members: Vec<String> = (0..n).map(member).collect();
    let started = Instant::now();
    let (conv, how) = conversation(&http, base, &members).await?;
    out.conversation_s = started.elapsed().as_secs_f64();
    out.conversation_how = how;
    if !apns.seen().is_empty() || !fcm.seen().is_empty() {
        return Err("the stand-ins were sent requests before the message".into());
    }

    // Act: one send; then read the stand-ins' records until every device got its push.
    let body =
        json!({"from_client": "bench-sender", "message": "hi", "push_data": {"alert": "bench"}});
    let send_url = format!("{base}/1.2/rtm/conversations/{conv}/messages");
    let t0 = Instant::now();
    call(&http, reqwest::Method::POST, send_url, Some(&body)).await?;
    out.send_answered_s = t0.elapsed().as_secs_f64();
    let (mut last_total, mut last_progress) = (0usize, Instant::now());
    loop {
        let polled = Instant::now();
        let (a, f) = (apns.seen(), fcm.seen());
        let a_ok = a.iter().filter(|s| s.status == 200).count();
        let f_ok = f.iter().filter(|s| s.status == 200).count();
        out.polls += 1;
        out.poll_busy_s += polled.elapsed().as_secs_f64();
        let now_s = polled.duration_since(t0).as_secs_f64();
        if a_ok + f_ok > 0 && out.first_s.is_none() {
            out.first_s = Some(now_s);
        }
        if a_ok >= out.ios && out.apns_last_s.is_none() {
            out.apns_last_s = Some(now_s);
        }
        if f_ok >= out.android && out.fcm_last_s.is_none() {
            out.fcm_last_s = Some(now_s);
        }
        if a_ok + f_ok > last_total {
            (last_total, last_progress) = (a_ok + f_ok, polled);
        }
        out.waited_s = now_s;
        if (out.apns_last_s.is_some() && out.fcm_last_s.is_some())
            || polled.duration_since(last_progress) > STALL
        {
            break;
        }
        let average = Duration::from_secs_f64(out.poll_busy_s / f64::from(out.polls));
        let pause = (average * 20).clamp(POLL, POLL_MAX);
        out.poll_pause_max_s = out.poll_pause_max_s.max(pause.as_secs_f64());
        tokio::time::sleep(pause).await;
    }
    tokio::time::sleep(QUIET).await;
    out.tally = tally(&apns.seen(), &fcm.seen(), &apns_expected, &fcm_expected);
    out.lookup = lookup(&http, base, &members).await.ok();
    Ok(out)
}

/// One run in a temporary directory of its own.
async fn measured(
    n: usize,
    latency: Duration,
    concurrency: Option<usize>,
) -> Result<Outcome, String> {
    let dir = temp_dir()?;
    let r = measure(n, &dir, latency, concurrency).await;
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// A run's pushes/s when every device got its push.
fn complete_rate(out: &Result<Outcome, String>) -> Measure {
    let o = out.as_ref().map_err(Clone::clone)?;
    let t = &o.tally;
    match (o.apns_last_s, o.fcm_last_s) {
        (Some(a), Some(f)) if t.distinct == o.members && t.unexpected == 0 => {
            Ok((t.apns_delivered + t.fcm_delivered) as f64 / a.max(f))
        }
        _ => Err(format!(
            "{} of {} devices got their push",
            t.distinct, o.members
        )),
    }
}

/// Pushes/s through providers that answer after `--push-latency-ms`, at 16 in flight and at the server's default
/// `--push-concurrency`, measured one after the other in this run.
async fn with_latency(b: &mut Bench) {
    let n = b.args.push_latency_members.max(2);
    let latency = Duration::from_millis(b.args.push_latency_ms);
    let default = leancloud_server::config::PushConfig::default().concurrency;
    let narrow = complete_rate(&measured(n, latency, Some(16)).await);
    let wide = complete_rate(&measured(n, latency, None).await);
    let (narrow, wide) = (
        narrow.map_err(|e| b.failed("push at latency, 16 in flight", e)),
        wide.map_err(|e| b.failed("push at latency, default concurrency", e)),
    );
    let ratio: Measure = match (&wide, &narrow) {
        (Ok(w), Ok(n)) if *n > 0.0 => Ok(w / n),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
        _ => Err("nothing delivered at 16 in flight".into()),
    };
    let members = crate::report::group_thousands(n as u64);
    let ms = latency.as_millis();
    for (label, m) in [("16", &narrow), (default.to_string().as_str(), &wide)] {
        b.rows.push(row(
            &format!(
                "push: {members} members, providers answering in {ms} ms → pushes/s at --push-concurrency {label}"
            ),
            Unit::Rate,
            m,
            None,
            Target::None,
        ));
    }
    b.rows.push(row(
        &format!("push: at {ms} ms, --push-concurrency {default} vs 16 (÷, same run)"),
        Unit::Times,
        &ratio,
        None,
        Target::None,
    ));
    b.method.push(format!(
        "push at latency: the same setup with {n} members, the stand-ins answering every request {ms} ms late (a \
         provider across the internet); the server once with 16 deliveries in flight (the worker before \
         `--push-concurrency`) and once at its default {default}, one after the other in this run."
    ));
}

fn temp_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("bench-push-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// The part: measures, then adds its rows, method and notes to the table.
pub async fn push(b: &mut Bench) {
    b.stage("push to offline members' devices");
    let n = b.args.push_members.max(2);
    let result = measured(n, Duration::ZERO, None).await;
    let out = match result {
        Ok(out) => Ok(out),
        Err(e) => Err(b.failed("push", e)),
    };
    let out = out.and_then(|o| {
        let t = &o.tally;
        let complete = o.apns_last_s.is_some() && o.fcm_last_s.is_some();
        if complete && t.distinct == o.members && t.unexpected == 0 {
            return Ok(o);
        }
        let why = format!(
            "{} of {} devices got their push within {:.1} s (APNs {} of {}, FCM {} of {}; {} other answers, {} \
             unexpected devices); given up after {} s without one",
            t.distinct,
            o.members,
            o.waited_s,
            t.apns_delivered,
            o.ios,
            t.fcm_delivered,
            o.android,
            t.not_ok,
            t.unexpected,
            STALL.as_secs()
        );
        Err(b.failed("push", why))
    });
    let measure_of = |f: &dyn Fn(&Outcome) -> Option<f64>| -> Measure {
        out.as_ref()
            .map_err(Clone::clone)
            .and_then(|o| f(o).ok_or_else(|| "not measured".into()))
    };
    let last = |o: &Outcome| match (o.apns_last_s, o.fcm_last_s) {
        (Some(a), Some(f)) => Some(a.max(f)),
        _ => None,
    };
    let total_rate = measure_of(&|o| {
        last(o).map(|s| (o.tally.apns_delivered + o.tally.fcm_delivered) as f64 / s)
    });
    let apns_rate = measure_of(&|o| o.apns_last_s.map(|s| o.tally.apns_delivered as f64 / s));
    let fcm_rate = measure_of(&|o| o.fcm_last_s.map(|s| o.tally.fcm_delivered as f64 / s));
    let ratio: Measure = match (&apns_rate, &fcm_rate) {
        (Ok(a), Ok(f)) if *f > 0.0 => Ok(a / f),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
        _ => Err("no FCM rate".into()),
    };
    let (ios, android) = (n.div_ceil(2), n / 2);
    let members = crate::report::group_thousands(n as u64);
    b.rows.push(row(
        &format!("push: {members} offline members → pushes/s delivered (APNs + FCM stand-ins)"),
        Unit::Rate,
        &total_rate,
        None,
        Target::None,
    ));
    b.rows.push(row(
        "push: send → first push delivered",
        Unit::Seconds,
        &measure_of(&|o| o.first_s),
        None,
        Target::None,
    ));
    b.rows.push(row(
        &format!("push: send → last ({members}th) push delivered"),
        Unit::Seconds,
        &measure_of(&last),
        None,
        Target::None,
    ));
    b.rows.push(row(
        &format!(
            "push: APNs pushes/s ({} iOS devices)",
            crate::report::group_thousands(ios as u64)
        ),
        Unit::Rate,
        &apns_rate,
        None,
        Target::None,
    ));
    b.rows.push(row(
        &format!(
            "push: FCM pushes/s ({} Android devices)",
            crate::report::group_thousands(android as u64)
        ),
        Unit::Rate,
        &fcm_rate,
        None,
        Target::None,
    ));
    b.rows.push(row(
        "push: APNs vs FCM pushes/s (APNs ÷ FCM, same run)",
        Unit::Times,
        &ratio,
        None,
        Target::None,
    ));
    b.rows.push(row(
        "push: devices pushed more than once",
        Unit::Count,
        &measure_of(&|o| Some(o.tally.duplicates as f64)),
        None,
        Target::OursAtMost(0.0),
    ));
    b.method.push(format!(
        "push: its own server in this process (the `leancloud-server` library on a fresh SQLite database, default \
         durability `full`, the push worker's round every {} ms, APNs and FCM pointed at the stand-ins of \
         `push-standins`, which run in the same process and check what the providers check: HTTP/2 over TLS with \
         an ES256 provider token verified on every request; FCM's OAuth grant and `messages:send`). Setup, untimed: \
         {n} installations through `POST /1.1/installations` ({CREATE_CONCURRENCY} at once), each bound to its member \
         with `channels: [client id]` (the binding a realtime login stores) — even members iPhones (a 64-hex \
         `deviceToken`), odd ones Android phones with `vendor: fcm` and a `registrationId`; one conversation of all \
         {n} members (`POST /1.2/rtm/conversations`, master key), none of them online. Timed: from one \
         `POST /1.2/rtm/conversations/{{id}}/messages` with `push_data: {{\"alert\": \"bench\"}}` going out until the \
         stand-ins had answered 200 to the first push, to every iOS device ({ios}), to every Android device \
         ({android}), and to all; the stand-ins' records are read every {} to {} ms (the resolution of the times; see the note). \
         pushes/s = pushes delivered / seconds until the last of them (all, or that provider's). The server queues \
         the jobs (devices found through its index of devices by channel, 1,000 clients a lookup) and its worker \
         hands them to both providers from one pool, so the APNs ÷ FCM ratio compares the two clients under the \
         same load. Afterwards, {} s more for any request too many: every device must have had exactly one push; \
         \"pushed more than once\" counts the deliveries beyond the first to a device.",
        WORKER_EVERY.as_millis(),
        POLL.as_millis(),
        POLL_MAX.as_millis(),
        QUIET.as_secs()
    ));
    if let Ok(o) = &out {
        b.notes.push(format!(
            "push: setup took {:.1} s for {} installations ({:.0}/s) and {:.2} s for the conversation ({}); the \
             send was answered in {} ms; {} devices got a push, {} got more than one, {} requests were answered \
             other than 200; reading the stand-ins' records took {:.2} s of the wait over {} reads, at most {} ms \
             apart.",
            o.devices_s,
            o.members,
            o.members as f64 / o.devices_s.max(1e-9),
            o.conversation_s,
            o.conversation_how,
            (o.send_answered_s * 1000.0).round(),
            o.tally.distinct,
            o.tally.duplicates,
            o.tally.not_ok,
            o.poll_busy_s,
            o.polls,
            (o.poll_pause_max_s * 1000.0).round()
        ));
        if let Some((queries, secs, found)) = o.lookup {
            b.notes.push(format!(
                "push: the same devices found by general queries instead of the server's index of devices by \
                 channel (`GET /1.1/installations`, master key, `channels $in` 1,000 clients a query, each a scan \
                 of every device — how the offline push found them before the index): {queries} queries found \
                 {found} devices in {:.0} ms, against {:.0} ms from the send to the first push with the index \
                 (lookup, queueing and the worker's first round).",
                secs * 1000.0,
                o.first_s.unwrap_or(f64::NAN) * 1000.0
            ));
        }
    }
    with_latency(b).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(device: &str, status: u16) -> Seen {
        Seen {
            device: device.into(),
            headers: vec![],
            body: Value::Null,
            status,
        }
    }

    #[test]
    fn devices_are_distinct_and_shaped_like_the_providers() {
        let tokens: HashSet<String> = (0..10_000).step_by(2).map(apns_token).collect();
        assert_eq!(tokens.len(), 5_000);
        assert!(tokens
            .iter()
            .all(|t| t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit())));
        assert_eq!(installation(0)["deviceType"], "ios");
        assert_eq!(installation(0)["channels"], json!([member(0)]));
        assert_eq!(installation(1)["vendor"], "fcm");
        assert_eq!(installation(1)["registrationId"], fcm_token(1));
    }

    #[test]
    fn tally_counts_duplicates_failures_and_strangers() {
        let apns: HashSet<String> = ["a1", "a2"].map(String::from).into();
        let fcm: HashSet<String> = ["f1"].map(String::from).into();
        let t = tally(
            &[
                seen("a1", 200),
                seen("a1", 200),
                seen("a2", 503),
                seen("zz", 200),
            ],
            &[seen("f1", 200), seen("a2", 200)],
            &apns,
            &fcm,
        );
        assert_eq!(
            t,
            Tally {
                apns_delivered: 3,
                fcm_delivered: 2,
                distinct: 4,
                duplicates: 1,
                unexpected: 2,
                not_ok: 1,
            }
        );
    }
}
