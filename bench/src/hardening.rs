//! `bench hardening`: do the H2 and M6 fixes (review-2026-12.md part 2) hold under load? It starts its own
//! release `leancloud-server` (fresh database, free loopback port), seeds a class with many rows, and measures
//! master-key message senders twice in one run: alone (the baseline), then while app-key attackers send the
//! H2 payloads (huge `AddUnique`/`Remove` arrays near and above the limits, `Add` growing an object to the
//! size cap) and the M6 payloads (finds with `where`, `order` on non-scalar fields, large `skip`/`limit`) as
//! fast as the server answers them. Everything goes through the harness's load generator (`loadgen.rs`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::{json, Value};

use crate::loadgen::{self, Outcome, Pace};
use crate::realtime::rest::{self, Rest, Server};
use crate::report::group_thousands;
use crate::stats;

/// Target of issue 12: the senders' p99 under attack, and no failed send.
const TARGET_P99_MS: f64 = 50.0;

#[derive(Debug, Clone, Args)]
pub struct HardeningArgs {
    /// The release server binary to start (its own fresh database, a free loopback port).
    #[arg(long, default_value = "target/release/leancloud-server")]
    server_bin: PathBuf,
    /// Rows seeded into the class the M6 finds query (above the server's 100,000-row scan bound).
    #[arg(long, default_value_t = 120_000)]
    rows: u64,
    /// Master-key connections sending messages.
    #[arg(long, default_value_t = 16)]
    senders: usize,
    /// Sends per second of each sender connection (a fixed schedule; latency counts from the scheduled instant).
    #[arg(long, default_value_t = 50)]
    rate: u32,
    /// App-key connections sending the attack payloads, each as soon as the previous is answered.
    #[arg(long, default_value_t = 16)]
    attackers: usize,
    /// Seconds of each measured phase (baseline, under attack).
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Realtime attackers (third phase): sockets opening a new client id with every command.
    #[arg(long, default_value_t = 8)]
    rt_session_floods: usize,
    /// Realtime attackers: sockets that never open a session and only `echo`.
    #[arg(long, default_value_t = 64)]
    rt_silent: usize,
    /// Realtime attackers: logins of victims whose unread holds 60 conversations of a 5 KB message each.
    #[arg(long, default_value_t = 4)]
    rt_bombers: usize,
    /// Only these attack payloads (by name, see the attackers' table; repeatable). Default: all of them.
    #[arg(long)]
    only: Vec<String>,
    /// Where the server's log goes.
    #[arg(long, default_value = "bench/out")]
    log_dir: PathBuf,
    /// Append the tables and the method to this Markdown file (`bench/run.sh`: bench/RESULTS.md).
    #[arg(long)]
    append_to: Option<PathBuf>,
    /// Small counts (a smoke run; figures not meaningful).
    #[arg(long)]
    quick: bool,
}

/// One attack request.
struct Payload {
    name: &'static str,
    what: String,
    request: Vec<u8>,
}

/// What one phase measured.
struct Phase {
    senders: Outcome,
    attackers: Vec<Outcome>,
    seconds: f64,
    server_cpu_ms: f64,
    writer_cpu_ms: f64,
    writer_wait_ms: f64,
}

pub async fn hardening(mut args: HardeningArgs) -> Result<(), String> {
    if args.quick {
        args.rows = args.rows.min(5_000);
        args.seconds = args.seconds.min(3);
    }
    let (app_id, app_key, master_key) = crate::credentials();
    std::fs::create_dir_all(&args.log_dir)
        .map_err(|e| format!("{}: {e}", args.log_dir.display()))?;
    let log = args.log_dir.join("hardening-server.log");
    let env = vec![
        ("LEANCLOUD_APP_ID".to_string(), app_id.clone()),
        ("LEANCLOUD_APP_KEY".to_string(), app_key.clone()),
        ("LEANCLOUD_APP_MASTER_KEY".to_string(), master_key.clone()),
    ];
    let mut server = Server::start(&args.server_bin, &log, &env).await?;
    eprintln!(
        "bench hardening: leancloud-server pid {} on {} (log {})",
        server.pid,
        server.addr,
        log.display()
    );
    let result = measure(&args, &server, &app_id, &app_key, &master_key).await;
    server.stop().await;
    let md = result?;
    println!("\n{md}");
    if let Some(path) = &args.append_to {
        crate::report::append_markdown(path, &md)?;
        eprintln!("bench hardening: appended to {}", path.display());
    }
    Ok(())
}

async fn measure(
    args: &HardeningArgs,
    server: &Server,
    app_id: &str,
    app_key: &str,
    master_key: &str,
) -> Result<String, String> {
    let addr = server.addr;
    let host = addr.to_string();
    let app_headers = [
        ("x-lc-id", app_id.to_owned()),
        ("x-lc-key", app_key.to_owned()),
    ];
    let master_headers = [
        ("x-lc-id", app_id.to_owned()),
        ("x-lc-key", format!("{master_key},master")),
    ];
    let mut rest_client = Rest::new(addr, app_id, master_key);

    // the senders' conversations
    let mut convs = Vec::new();
    for i in 0..args.senders.max(1) {
        convs.push(
            rest_client
                .create_conversation(&json!({
                    "name": format!("hardening-{i}"),
                    "m": [format!("sender-{i}"), format!("peer-{i}")],
                    "c": format!("sender-{i}"),
                }))
                .await?,
        );
    }
    let sends: Vec<Vec<u8>> = convs
        .iter()
        .enumerate()
        .map(|(i, conv)| {
            let body = json!({
                "from_peer": format!("sender-{i}"),
                "conv_id": conv,
                "message": "{\"_lctype\":-1,\"_lctext\":\"hardening bench\"}",
                "transient": false,
            });
            loadgen::post_json(
                &host,
                "/1.1/rtm/messages",
                &master_headers,
                body.to_string().as_bytes(),
            )
        })
        .collect();
    let sends = Arc::new(sends);

    // the class the finds query: `rows` objects in 50 shapes
    eprintln!("bench hardening: seeding {} rows into Big", args.rows);
    let seed_started = std::time::Instant::now();
    let shapes = 50u64;
    let mut seeded = 0u64;
    for t in 0..shapes {
        let n = args.rows / shapes + u64::from(t < args.rows % shapes);
        let body = json!({
            "n": t,
            "tag": format!("t{t}"),
            "half": format!("h{}", t % 2),
            "arr": [t, t % 7, "x"],
            "obj": {"k": t, "s": format!("{:0>40}", t)},
            "text": "a row of the hardening benchmark, about as big as a small conversation object",
        });
        let r = loadgen::run(
            addr,
            loadgen::post_json(
                &host,
                "/1.1/classes/Big",
                &app_headers,
                body.to_string().as_bytes(),
            ),
            32,
            n,
        )
        .await;
        if r.failed > 0 {
            return Err(format!(
                "seeding Big: {} failed, e.g. {:?}",
                r.failed, r.first_error
            ));
        }
        seeded += r.ok;
    }
    let seed_secs = seed_started.elapsed().as_secs_f64();

    // the objects the H2 updates work on
    let ints: Vec<u32> = (0..10_000).collect();
    let arrays: Vec<[i64; 1]> = (0..10_000).map(|i| [i]).collect();
    let id_ints = object_id(
        rest_client
            .post_ok("/1.1/classes/Hard", &json!({"a": ints}))
            .await?,
    )?;
    let id_arrays = object_id(
        rest_client
            .post_ok("/1.1/classes/Hard", &json!({"c": arrays}))
            .await?,
    )?;
    let id_grow = object_id(
        rest_client
            .post_ok("/1.1/classes/Hard", &json!({"g": []}))
            .await?,
    )?;

    let payloads = payloads(&host, &app_headers, &id_ints, &id_arrays, &id_grow);
    let payloads: Vec<Payload> = payloads
        .into_iter()
        .filter(|p| args.only.is_empty() || args.only.iter().any(|o| o == p.name))
        .collect();
    if payloads.is_empty() {
        return Err(format!("no attack payload is named {:?}", args.only));
    }
    let attacks = Arc::new(
        payloads
            .iter()
            .map(|p| p.request.clone())
            .collect::<Vec<_>>(),
    );

    let every = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let phase = Duration::from_secs(args.seconds.max(1));
    // warm-up, not counted
    let _ = loadgen::run_for(
        addr,
        sends.clone(),
        args.senders,
        Duration::from_secs(1),
        Pace::Every(every),
    )
    .await;
    eprintln!(
        "bench hardening: baseline, {} senders × {}/s for {} s",
        args.senders,
        args.rate,
        phase.as_secs()
    );
    let baseline = run_phase(server, &sends, None, args, every, phase).await;
    eprintln!(
        "bench hardening: under attack, + {} attackers × {} payloads",
        args.attackers,
        payloads.len()
    );
    let attack = run_phase(server, &sends, Some(&attacks), args, every, phase).await;

    // Third phase: realtime attackers instead of the app-key ones.
    let who = crate::hardening_rt::Attackers {
        session_floods: args.rt_session_floods,
        silent: args.rt_silent,
        bombers: args.rt_bombers,
    };
    crate::hardening_rt::prepare_bombs(&mut rest_client, who.bombers).await?;
    eprintln!(
        "bench hardening: under realtime attack, {} session floods, {} silent sockets, {} unread bombers",
        who.session_floods, who.silent, who.bombers
    );
    let rt = tokio::spawn(crate::hardening_rt::run_elsewhere(
        addr,
        app_id.to_owned(),
        who,
        phase + Duration::from_secs(2),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rt_phase = run_phase(server, &sends, None, args, every, phase).await;
    let rt_counts = rt.await.map_err(|e| e.to_string())??;

    let mut md = render(args, &payloads, &baseline, &attack, seeded, seed_secs);
    md.push_str(&render_rt(&baseline, &rt_phase, who, &rt_counts));
    Ok(md)
}

/// The realtime attackers' section: the senders beside the baseline, and what the attackers got.
fn render_rt(
    baseline: &Phase,
    rt: &Phase,
    who: crate::hardening_rt::Attackers,
    c: &crate::hardening_rt::Counts,
) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let (b, a) = (
        stats::summarize(&baseline.senders.latencies_ms),
        stats::summarize(&rt.senders.latencies_ms),
    );
    let pick = |s: Option<stats::Summary>, f: fn(&stats::Summary) -> f64| {
        s.map_or("n/a (no answer)".to_string(), |s| fmt_ms(f(&s)))
    };
    let met = |ok: bool| if ok { "yes" } else { "**no**" }.to_string();
    let failed = rt.senders.failed();
    let rows = vec![
        vec![
            "senders: p50".into(),
            pick(b, |s| s.median),
            pick(a, |s| s.median),
            "—".into(),
            "—".into(),
        ],
        vec![
            "senders: p99".into(),
            pick(b, |s| s.p99),
            pick(a, |s| s.p99),
            format!("< {TARGET_P99_MS} ms"),
            met(a.is_some_and(|a| a.p99 < TARGET_P99_MS)),
        ],
        vec![
            "senders: max".into(),
            pick(b, |s| s.max),
            pick(a, |s| s.max),
            "—".into(),
            "—".into(),
        ],
        vec![
            "senders: failed sends".into(),
            baseline.senders.failed().to_string(),
            failed.to_string(),
            "0".into(),
            met(failed == 0),
        ],
        vec![
            "server CPU (all threads)".into(),
            format!("{:.0} ms/s", baseline.server_cpu_ms / baseline.seconds),
            format!("{:.0} ms/s", rt.server_cpu_ms / rt.seconds),
            "—".into(),
            "—".into(),
        ],
    ];
    let mut md = String::from(
        "
### Realtime attackers (review part 3: R1, R3, R4)

",
    );
    md.push_str(&md_table(
        &[
            "figure",
            "baseline (no attackers)",
            "under realtime attack",
            "target",
            "met",
        ],
        &rows,
    ));
    md.push_str(&format!(
        "\nThe attackers run in a process of their own at `nice -n 10` (on a real network they are other machines; \
         in the senders' process their client work was counted as the server's latency).\n\n\
         What the attackers got, over the phase:\n\n\
         - {} session floods (a new client id with every command): {} sockets, {} sessions opened, {} refused \
         (16 per socket: `TOO_MANY_SESSIONS`, then the socket is closed after 50 refusals in a row).\n\
         - {} silent sockets (no session, an `echo` every 0.5 s): {} sockets opened, {} closed by the server \
         (login timeout).\n\
         - {} unread bombers (a victim with {} conversations of one 5 KB message, logging in again and again on one socket): \
         {} login attempts, {} refused (`TOO_MANY_LOGINS`), {} conversations received in `unread` notifications.\n\
         - WebSocket upgrades refused (budget): {}.\n",
        who.session_floods,
        c.flood_sockets.load(Relaxed),
        c.sessions_opened.load(Relaxed),
        c.sessions_refused.load(Relaxed),
        who.silent,
        c.silent_sockets.load(Relaxed),
        c.silent_closed.load(Relaxed),
        who.bombers,
        crate::hardening_rt::BOMB_CONVERSATIONS,
        c.bomb_logins.load(Relaxed),
        c.bomb_refused.load(Relaxed),
        c.bomb_conversations.load(Relaxed),
        c.upgrades_refused.load(Relaxed),
    ));
    md
}

fn object_id(v: Value) -> Result<String, String> {
    v.get("objectId")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no objectId in {v}"))
}

fn payloads(
    host: &str,
    app: &[(&str, String)],
    id_ints: &str,
    id_arrays: &str,
    id_grow: &str,
) -> Vec<Payload> {
    let post = |path: &str, body: Value| {
        loadgen::request("POST", host, path, app, body.to_string().as_bytes())
    };
    let put = |id: &str, body: Value| {
        loadgen::request(
            "PUT",
            host,
            &format!("/1.1/classes/Hard/{id}"),
            app,
            body.to_string().as_bytes(),
        )
    };
    let find = |query: &str| {
        loadgen::request(
            "GET",
            host,
            &format!("/1.1/classes/Big?{}", encode_query(query)),
            app,
            b"",
        )
    };
    let ints = |from: i64, to: i64| (from..to).collect::<Vec<i64>>();
    let arrays = |from: i64, to: i64| (from..to).map(|i| [i]).collect::<Vec<[i64; 1]>>();
    let kb_strings: Vec<String> = (0..20).map(|i| format!("{i:0>1000}")).collect();
    vec![
        Payload {
            name: "addunique-300k",
            what: "`POST` a new object with `AddUnique` of 300,000 ints (the review's H2 request, ~2 MB)".into(),
            request: post(
                "/1.1/classes/Hard",
                json!({"a": {"__op": "AddUnique", "objects": ints(0, 300_000)}}),
            ),
        },
        Payload {
            name: "addunique-10001",
            what: "`POST` `AddUnique` of 10,001 ints (one above the limit)".into(),
            request: post(
                "/1.1/classes/Hard",
                json!({"a": {"__op": "AddUnique", "objects": ints(0, 10_001)}}),
            ),
        },
        Payload {
            name: "addunique-ints",
            what: "`PUT` `AddUnique` of the 10,000 ints the object holds (at the limit)".into(),
            request: put(id_ints, json!({"a": {"__op": "AddUnique", "objects": ints(0, 10_000)}})),
        },
        Payload {
            name: "addunique-arrays",
            what: "`PUT` `AddUnique` of the 10,000 one-element arrays the object holds (compound values)".into(),
            request: put(
                id_arrays,
                json!({"c": {"__op": "AddUnique", "objects": arrays(0, 10_000)}}),
            ),
        },
        Payload {
            name: "remove-ints",
            what: "`PUT` `Remove` of 10,000 ints the object does not hold (from 10,000)".into(),
            request: put(id_ints, json!({"a": {"__op": "Remove", "objects": ints(10_000, 20_000)}})),
        },
        Payload {
            name: "remove-arrays",
            what: "`PUT` `Remove` of 10,000 one-element arrays the object does not hold (from 10,000)".into(),
            request: put(
                id_arrays,
                json!({"c": {"__op": "Remove", "objects": arrays(10_000, 20_000)}}),
            ),
        },
        Payload {
            name: "add-grow",
            what: "`PUT` `Add` of 20 strings of 1 KB to one object: grows it to the 128 KB cap, then is refused there"
                .into(),
            request: put(id_grow, json!({"g": {"__op": "Add", "objects": kb_strings}})),
        },
        Payload {
            name: "find-half-order-obj",
            what: "find `where={\"half\":\"h0\"}` (half the rows) `order=-obj,arr` (non-scalar) `skip=50000&limit=1000`"
                .into(),
            request: find(r#"where={"half":"h0"}&order=-obj,arr&skip=50000&limit=1000"#),
        },
        Payload {
            name: "find-tag-order-arr",
            what: "find `where={\"tag\":\"t7\",\"n\":{\"$gte\":0}}` `order=arr` `limit=1000`".into(),
            request: find(r#"where={"tag":"t7","n":{"$gte":0}}&order=arr&limit=1000"#),
        },
        Payload {
            name: "find-all-order-obj",
            what: "find without a narrowing condition (`where={\"n\":{\"$gte\":0}}`, `order=obj`, `skip=100000`): \
                   more rows than the scan bound"
                .into(),
            request: find(r#"where={"n":{"$gte":0}}&order=obj&skip=100000&limit=1000"#),
        },
        Payload {
            name: "find-count",
            what: "find `where={\"arr\":\"x\"}` (every row) `count=1&limit=0`".into(),
            request: find(r#"where={"arr":"x"}&count=1&limit=0"#),
        },
    ]
}

/// Percent-encode a query string's values (keeps `=` and `&` between the parameters).
fn encode_query(q: &str) -> String {
    q.split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => {
                let enc: String = v
                    .bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b',' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect();
                format!("{k}={enc}")
            }
            None => kv.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// One measured phase: the senders for `phase`, with the attackers (if any) running from one second before
/// the senders start until one second after they stop.
async fn run_phase(
    server: &Server,
    sends: &Arc<Vec<Vec<u8>>>,
    attacks: Option<&Arc<Vec<Vec<u8>>>>,
    args: &HardeningArgs,
    every: Duration,
    phase: Duration,
) -> Phase {
    let addr = server.addr;
    let attackers = attacks.map(|a| {
        let a = a.clone();
        let n = args.attackers;
        tokio::spawn(async move {
            loadgen::run_for(addr, a, n, phase + Duration::from_secs(2), Pace::Flat).await
        })
    });
    if attackers.is_some() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let before = rest::sched_ns(server.pid);
    let started = std::time::Instant::now();
    let senders = loadgen::run_for(addr, sends.clone(), args.senders, phase, Pace::Every(every))
        .await
        .into_iter()
        .fold(Outcome::default(), |mut acc, o| {
            acc.merge(o);
            acc
        });
    let seconds = started.elapsed().as_secs_f64();
    let after = rest::sched_ns(server.pid);
    let attackers = match attackers {
        Some(t) => t.await.unwrap_or_default(),
        None => Vec::new(),
    };
    let (server_cpu_ms, _) = rest::sched_delta_ms(&before, &after, None);
    let (writer_cpu_ms, writer_wait_ms) =
        rest::sched_delta_ms(&before, &after, Some("sqlite-writer"));
    Phase {
        senders,
        attackers,
        seconds,
        server_cpu_ms,
        writer_cpu_ms,
        writer_wait_ms,
    }
}

fn fmt_ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

/// A Markdown table with aligned columns.
fn md_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    cells.extend(rows.iter().cloned());
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            cells
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |r: &[String]| {
        let parts: Vec<String> = (0..cols)
            .map(|i| {
                let c = r.get(i).map_or("", String::as_str);
                format!("{c}{}", " ".repeat(widths[i] - c.chars().count()))
            })
            .collect();
        format!("| {} |\n", parts.join(" | "))
    };
    let mut out = line(&cells[0]);
    let dashes: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&format!("|-{}-|\n", dashes.join("-|-")));
    for r in &cells[1..] {
        out.push_str(&line(r));
    }
    out
}

fn status_mix(o: &Outcome) -> String {
    let mut parts: Vec<String> = o
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}×{}", group_thousands(*n)))
        .collect();
    if o.errors > 0 {
        parts.push(format!("no answer×{}", o.errors));
    }
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join(", ")
    }
}

fn render(
    args: &HardeningArgs,
    payloads: &[Payload],
    baseline: &Phase,
    attack: &Phase,
    seeded: u64,
    seed_secs: f64,
) -> String {
    let (b, a) = (
        stats::summarize(&baseline.senders.latencies_ms),
        stats::summarize(&attack.senders.latencies_ms),
    );
    let pick = |s: Option<stats::Summary>, f: fn(&stats::Summary) -> f64| {
        s.map_or("n/a (no answer)".to_string(), |s| fmt_ms(f(&s)))
    };
    let met = |ok: bool| if ok { "yes" } else { "**no**" }.to_string();
    let p99_met = match (b, a) {
        (Some(b), Some(a)) => format!(
            "{} / {}",
            met(b.p99 < TARGET_P99_MS),
            met(a.p99 < TARGET_P99_MS)
        ),
        _ => "n/a".into(),
    };
    let (bf, af) = (baseline.senders.failed(), attack.senders.failed());
    let answered = |p: &Phase| p.senders.statuses.values().sum::<u64>();
    let rows = vec![
        vec![
            "senders: sends answered".into(),
            group_thousands(answered(baseline)),
            group_thousands(answered(attack)),
            "—".into(),
            "—".into(),
        ],
        vec![
            "senders: p50".into(),
            pick(b, |s| s.median),
            pick(a, |s| s.median),
            "—".into(),
            "—".into(),
        ],
        vec![
            "senders: p99".into(),
            pick(b, |s| s.p99),
            pick(a, |s| s.p99),
            format!("< {TARGET_P99_MS} ms"),
            p99_met,
        ],
        vec![
            "senders: max".into(),
            pick(b, |s| s.max),
            pick(a, |s| s.max),
            "—".into(),
            "—".into(),
        ],
        vec![
            "senders: failed sends".into(),
            bf.to_string(),
            af.to_string(),
            "0".into(),
            format!("{} / {}", met(bf == 0), met(af == 0)),
        ],
        vec![
            "server CPU (all threads)".into(),
            format!("{:.0} ms/s", baseline.server_cpu_ms / baseline.seconds),
            format!("{:.0} ms/s", attack.server_cpu_ms / attack.seconds),
            "—".into(),
            "—".into(),
        ],
        vec![
            "store writer thread: CPU, runnable wait".into(),
            format!(
                "{:.0} ms/s, {:.0} ms/s",
                baseline.writer_cpu_ms / baseline.seconds,
                baseline.writer_wait_ms / baseline.seconds
            ),
            format!(
                "{:.0} ms/s, {:.0} ms/s",
                attack.writer_cpu_ms / attack.seconds,
                attack.writer_wait_ms / attack.seconds
            ),
            "—".into(),
            "—".into(),
        ],
    ];
    let mut md = String::from("## Hardening under load (`bench hardening`)\n\n");
    md.push_str(&md_table(
        &[
            "figure",
            "baseline (no attackers)",
            "under attack",
            "target",
            "met (baseline / attack)",
        ],
        &rows,
    ));
    md.push_str(
        "\nThe attackers (app key; a 400 is the expected answer to a payload above a limit):\n\n",
    );
    let attack_rows: Vec<Vec<String>> = payloads
        .iter()
        .zip(
            attack
                .attackers
                .iter()
                .chain(std::iter::repeat(&Outcome::default())),
        )
        .map(|(p, o)| {
            let s = stats::summarize(&o.latencies_ms);
            vec![
                format!("`{}`", p.name),
                p.what.clone(),
                status_mix(o),
                s.map_or("—".into(), |s| fmt_ms(s.median)),
                s.map_or("—".into(), |s| fmt_ms(s.max)),
            ]
        })
        .collect();
    md.push_str(&md_table(
        &["payload", "request", "answers", "p50", "max"],
        &attack_rows,
    ));
    md.push_str("\nHow it was measured:\n\n");
    md.push_str(&format!(
        "- Its own release `leancloud-server` (fresh database, `RUST_LOG=warn`), {cores} cores shared by the server, \
         this load client and whatever else runs on the machine. Seeded first through the API: {seeded} rows \
         into class `Big` in {seed_secs:.1} s (50 shapes; `half` splits them in two, `tag` in 50; `arr` and `obj` \
         are an array and an object), plus three `Hard` objects for the updates (10,000 ints, 10,000 one-element \
         arrays, an empty array to grow).\n",
        cores = std::thread::available_parallelism().map_or(0, |n| n.get()),
        seeded = group_thousands(seeded),
    ));
    md.push_str(&format!(
        "- Senders: {} master-key keep-alive connections, each sending `POST /1.1/rtm/messages` (persisted, \
         `transient: false`, over {} conversations) {} times a second on a fixed schedule; a send's latency \
         counts from its scheduled instant, so a stall also counts against the sends it held up. A failed send \
         is any non-2xx answer or a lost connection. One second of warm-up, then {} s alone (baseline), then \
         {} s while the attackers run (they start a second earlier and stop a second later).\n",
        args.senders, args.senders, args.rate, args.seconds, args.seconds
    ));
    md.push_str(&format!(
        "- Attackers: {} app-key keep-alive connections, each sending the payloads above in turn, the next as \
         soon as the previous is answered (closed loop), through the harness's load generator (`loadgen.rs`). \
         CPU figures are from `/proc/<pid>/task/*/schedstat` over each phase's senders' window.\n",
        args.attackers
    ));
    if let Some(e) = &attack
        .senders
        .first_error
        .clone()
        .or(baseline.senders.first_error.clone())
    {
        md.push_str(&format!("- First failed send: {e}\n"));
    }
    md
}
