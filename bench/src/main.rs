//! Benchmark harness: our Rust functions and client side by side with the official Python SDK
//! (`leancloud==3.0.2`) against the local `leancloud-server`. `bench/run.sh` builds everything, starts the
//! server and calls `bench run`; see `bench/README.md`.

mod coldstart;
mod emulator;
mod handlers;
mod hardening;
mod hardening_rt;
mod instances;
mod loadgen;
mod ours;
mod push;
mod python;
mod realtime;
mod report;
mod stats;
mod sys;

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use crate::coldstart::{cold_run, http_event, FunctionProcess};
use crate::python::Python;
use crate::report::{row, Measure, Row, Target, Unit};

const FUNCTIONS: [&str; 9] = [
    "create-conversation",
    "add-member",
    "remove-member",
    "send-message",
    "recall-message",
    "mute-members",
    "block-members",
    "broadcast",
    "schedules",
];
const DEV_APP_ID: &str = "dev-app-id-gzGzoHsz";
const DEV_APP_KEY: &str = "dev-app-key";
const DEV_MASTER_KEY: &str = "dev-master-key";
/// LeanCloud's limit of recipients per system-message call.
const CHUNK: usize = 20;

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Benchmarks: ours (Rust) vs the official Python SDK, side by side"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run every measurement against a running server and write the table.
    Run(Box<RunArgs>),
    /// (internal) The fan-out process for our side: send one notification to many recipients, print JSON.
    FanoutWorker(ours::FanoutArgs),
    /// The realtime gateway under WebSocket load: starts its own server, prints its table (bench/README.md).
    Realtime(Box<realtime::RealtimeArgs>),
    /// Message senders alone, then while app-key clients send the H2/M6 payloads: starts its own server
    /// (bench/README.md).
    Hardening(Box<hardening::HardeningArgs>),
    /// (internal) The realtime attackers of `hardening`, in their own process: run them, print their counts.
    RtAttackers(hardening_rt::AttackArgs),
    /// SQLite, PostgreSQL with one instance and with two: persisted sends/s and REST → client latency, in one
    /// run (needs a PostgreSQL cluster; bench/README.md).
    Instances(Box<instances::InstancesArgs>),
}

#[derive(Debug, Clone, Args)]
struct RunArgs {
    /// Base URL of the running leancloud-server (also LEANCLOUD_API_SERVER).
    #[arg(long, env = "LEANCLOUD_API_SERVER")]
    server_url: String,
    /// Directory holding the release binaries.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// The SDK venv's interpreter.
    #[arg(long, default_value = ".venv-sdk/bin/python")]
    python: PathBuf,
    /// bench/python (handler.py, ops.py, runtime_loop.py).
    #[arg(long, default_value = "bench/python")]
    python_dir: PathBuf,
    /// Where to write the results.
    #[arg(long, default_value = "bench/RESULTS.md")]
    out: PathBuf,
    /// Where the function processes' logs go.
    #[arg(long, default_value = "bench/out")]
    log_dir: PathBuf,
    /// Cold starts per side (median reported).
    #[arg(long, default_value_t = 15)]
    cold_runs: usize,
    /// Timed iterations per single operation.
    #[arg(long, default_value_t = 200)]
    iterations: u32,
    /// Untimed warm-up iterations per single operation.
    #[arg(long, default_value_t = 20)]
    warmup: u32,
    /// Recipients of the fan-out notification (sent in calls of 20).
    #[arg(long, default_value_t = 10_000)]
    recipients: usize,
    /// Calls in flight for our fan-out: as many as the load generator's connections, so the share of the server's
    /// capacity compares like with like.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Connections of the load generator.
    #[arg(long, default_value_t = 64)]
    load_concurrency: usize,
    /// Requests of the server-capacity run (system message to 20 clients).
    #[arg(long, default_value_t = 10_000)]
    capacity_requests: u64,
    /// Sends of the persisted-sends run.
    #[arg(long, default_value_t = 30_000)]
    persist_requests: u64,
    /// The server's own load generator (`server/examples/loadgen.rs`, release build); default `<bin-dir>/examples/loadgen`.
    #[arg(long)]
    server_loadgen: Option<PathBuf>,
    /// Seconds the server's own load generator runs.
    #[arg(long, default_value_t = 5)]
    server_loadgen_seconds: u32,
    /// How the server was started (for RESULTS.md).
    #[arg(long, default_value = "")]
    server_info: String,
    /// Small counts everywhere: a smoke run of the whole harness (figures not meaningful).
    #[arg(long)]
    quick: bool,
    /// Offline members of the push part's conversation, each with one device (half iOS, half Android with FCM).
    #[arg(long, default_value_t = 10_000)]
    push_members: usize,
    /// The push part's second measurement: members pushed through providers that answer after this many ms, at
    /// the server's default `--push-concurrency` and at 16 in flight, side by side.
    #[arg(long, default_value_t = 100)]
    push_latency_ms: u64,
    /// Offline members of that second measurement.
    #[arg(long, default_value_t = 2_000)]
    push_latency_members: usize,
    /// Run only these parts (comma-separated): sizes, cold-start, single, fanout, persist, push. Default: all.
    /// `--only sizes,cold-start` gives the lean-binary figures (every binary's size, the cold start ratio
    /// and peak RSS against Python) in about half a minute.
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<Part>,
}

/// The parts of `bench run`, for `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    Sizes,
    ColdStart,
    Single,
    Fanout,
    Persist,
    /// Pushes/s to the APNs and FCM stand-ins for the devices of one conversation's offline members (its own
    /// in-process server; `src/push.rs`).
    Push,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.cmd {
        Cmd::Run(args) => rt.block_on(run(*args)),
        Cmd::FanoutWorker(args) => rt.block_on(ours::fanout_worker(args)),
        Cmd::Realtime(args) => rt.block_on(realtime::realtime(*args)),
        Cmd::Hardening(args) => rt.block_on(hardening::hardening(*args)),
        Cmd::Instances(args) => rt.block_on(instances::instances(*args)),
        Cmd::RtAttackers(args) => rt.block_on(hardening_rt::attackers_process(args)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Credentials: the environment, else the development defaults the server also uses.
fn credentials() -> (String, String, String) {
    let get = |k: &str, d: &str| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| d.to_owned())
    };
    (
        get("LEANCLOUD_APP_ID", DEV_APP_ID),
        get("LEANCLOUD_APP_KEY", DEV_APP_KEY),
        get("LEANCLOUD_APP_MASTER_KEY", DEV_MASTER_KEY),
    )
}

/// Everything the measurements share, plus what they produce.
struct Bench {
    args: RunArgs,
    env: Vec<(String, String)>,
    master_key: String,
    app_id: String,
    server: SocketAddr,
    python: Python,
    ours: Result<ours::Ours, String>,
    rows: Vec<Row>,
    method: Vec<String>,
    notes: Vec<String>,
    failures: Vec<String>,
}

impl Bench {
    /// Record a failure to run (makes the exit status non-zero) and return the `n/a` reason.
    fn failed(&mut self, what: &str, e: String) -> String {
        eprintln!("bench: {what} failed: {e}");
        self.failures.push(format!("{what}: {e}"));
        drop(e);
        "failed, see the notes".into()
    }

    fn bin(&self, name: &str) -> Result<PathBuf, String> {
        let p = self.args.bin_dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{name} not built"))
        }
    }

    fn log(&self, name: &str) -> Option<PathBuf> {
        std::fs::create_dir_all(&self.args.log_dir).ok()?;
        Some(self.args.log_dir.join(format!("{name}.log")))
    }

    fn stage(&self, what: &str) {
        eprintln!("bench: {what}");
    }
}

async fn run(mut args: RunArgs) -> Result<(), String> {
    if args.quick {
        args.cold_runs = args.cold_runs.min(3);
        args.iterations = args.iterations.min(20);
        args.warmup = args.warmup.min(3);
        args.recipients = args.recipients.min(1000);
        args.capacity_requests = args.capacity_requests.min(1000);
        args.persist_requests = args.persist_requests.min(2000);
        args.push_members = args.push_members.min(1000);
        args.push_latency_members = args.push_latency_members.min(500);
        args.server_loadgen_seconds = args.server_loadgen_seconds.min(1);
    }
    let started = Instant::now();
    let load_at_start = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    // children run in other directories: make every path absolute (without resolving the venv's symlink)
    for p in [
        &mut args.bin_dir,
        &mut args.python,
        &mut args.python_dir,
        &mut args.out,
        &mut args.log_dir,
    ] {
        *p = std::path::absolute(&*p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if let Some(p) = &mut args.server_loadgen {
        *p = std::path::absolute(&*p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let (app_id, app_key, master_key) = credentials();
    let server_url = args.server_url.trim_end_matches('/').to_owned();
    let server = server_url
        .trim_start_matches("http://")
        .to_socket_addrs()
        .map_err(|e| format!("server url {server_url}: {e}"))?
        .next()
        .ok_or_else(|| format!("server url {server_url}: no address"))?;
    let env = vec![
        ("LEANCLOUD_APP_ID".to_string(), app_id.clone()),
        ("LEANCLOUD_APP_KEY".to_string(), app_key.clone()),
        ("LEANCLOUD_APP_MASTER_KEY".to_string(), master_key.clone()),
        ("LEANCLOUD_API_SERVER".to_string(), server_url.clone()),
    ];
    let python = Python {
        interpreter: args.python.clone(),
        dir: args.python_dir.clone(),
        env: env.clone(),
    };
    let ours = ours::Ours::new(&server_url, &app_id, &app_key, &master_key);
    let mut b = Bench {
        args,
        env,
        master_key,
        app_id,
        server,
        python,
        ours,
        rows: vec![],
        method: vec![],
        notes: vec![],
        failures: vec![],
    };
    if let Err(e) = &b.ours {
        let e = e.clone();
        b.failed("our client", e);
    }

    let wanted = |part: Part| b.args.only.is_empty() || b.args.only.contains(&part);
    let (sizes_on, cold_on, single_on, fanout_on, persist_on, push_on) = (
        wanted(Part::Sizes),
        wanted(Part::ColdStart),
        wanted(Part::Single),
        wanted(Part::Fanout),
        wanted(Part::Persist),
        wanted(Part::Push),
    );
    if sizes_on {
        sizes(&mut b).await;
    }
    if cold_on {
        cold_start(&mut b).await;
    }
    if single_on {
        single_ops(&mut b).await;
    }
    if fanout_on {
        fanout(&mut b).await;
    }
    if persist_on {
        persisted_sends(&mut b).await;
    }
    if push_on {
        push::push(&mut b).await;
    }

    let mut machine = sys::machine_description();
    machine.push((
        "load average (1, 5, 15 min) at the start".into(),
        load_at_start,
    ));
    machine.push(("Python".into(), b.python.version().await));
    machine.push((
        "server".into(),
        format!(
            "release `leancloud-server` on {server_url}, fresh SQLite database {}",
            b.args.server_info
        )
        .trim()
        .to_owned(),
    ));
    machine.push((
        "harness run time".into(),
        format!("{:.0} s", started.elapsed().as_secs_f64()),
    ));
    let mut notes = b.notes.clone();
    for f in &b.failures {
        notes.push(format!("FAILED: {f}"));
    }
    let table = report::table(&b.rows);
    println!("\n{table}");
    for n in &notes {
        println!("- {n}");
    }
    let md = report::results_markdown(&machine, &b.rows, &b.method, &notes);
    std::fs::write(&b.args.out, md).map_err(|e| format!("write {}: {e}", b.args.out.display()))?;
    eprintln!(
        "bench: wrote {} ({:.0} s)",
        b.args.out.display(),
        started.elapsed().as_secs_f64()
    );
    if b.failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} measurement(s) failed to run", b.failures.len()))
    }
}

// ---------------------------------------------------------------------------------------------------------
// size

async fn sizes(b: &mut Bench) {
    b.stage("sizes");
    let pkg: Measure = match b
        .python
        .ops::<python::PackageSize>(&["pkgsize", "--dist", "leancloud"])
        .await
    {
        Ok(p) => {
            b.notes.push(format!(
                "Python deployment package = leancloud 3.0.2 and its requirements ({} distributions: {}).",
                p.dists.len(),
                p.dists.join(", ")
            ));
            Ok(p.bytes as f64)
        }
        Err(e) => Err(b.failed("Python package size", e)),
    };
    for name in FUNCTIONS {
        let ours: Measure = b
            .bin(name)
            .and_then(|p| std::fs::metadata(&p).map_err(|e| e.to_string()))
            .map(|m| m.len() as f64);
        b.rows.push(row(
            &format!("size: `{name}` binary (Python: SDK package)"),
            Unit::Bytes,
            &ours,
            Some(&pkg),
            Target::OursAtMost(8e6),
        ));
    }
    b.method.push(
        "size: bytes of each stripped release binary in `target/release/` (the release profile strips symbols); \
         Python: bytes on disk of `leancloud` 3.0.2 and every distribution it requires, summed from their pip \
         RECORD files (what a Python function's deployment package must carry). MB = 10^6 bytes."
            .into(),
    );
}

// ---------------------------------------------------------------------------------------------------------
// cold start

async fn cold_start(b: &mut Bench) {
    b.stage("cold start");
    let runs = b.args.cold_runs.max(1);
    let conv = match &b.ours {
        Ok(o) => o.create_conversation("bench-cold-start", false).await,
        Err(e) => Err(e.clone()),
    };
    let body = serde_json::json!({"from_client": "alice", "message": "hello from a cold start"});
    let event: Result<Vec<u8>, String> = conv.as_ref().map_err(Clone::clone).map(|c| {
        http_event(
            &format!("/conversations/{c}/messages"),
            "POST /conversations/{conversation_id}/messages",
            serde_json::json!({"conversation_id": c}),
            &body,
        )
    });
    let ours_fn = b.bin("send-message").map(|program| FunctionProcess {
        program,
        args: vec![],
        cwd: None,
        env: b.env.clone(),
        runtime_api_with_scheme: true,
        log: b.log("send-message"),
    });
    let awslambdaric = b.python.has_awslambdaric().await;
    let (program, pargs, cwd) = b.python.lambda_command(awslambdaric);
    let py_fn = FunctionProcess {
        program,
        args: pargs,
        cwd: Some(cwd.to_path_buf()),
        env: b.env.clone(),
        runtime_api_with_scheme: false,
        log: b.log("python-handler"),
    };
    let timeout = Duration::from_secs(30);
    // one untimed run each (page cache, .pyc), then alternate ours and Python
    let mut ours_runs: Result<Vec<coldstart::ColdRun>, String> = match (&ours_fn, &event) {
        (Ok(f), Ok(ev)) => cold_run(f, ev, timeout).await.map(|_| vec![]),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    };
    let mut py_runs: Result<Vec<coldstart::ColdRun>, String> = match &event {
        Ok(ev) => cold_run(&py_fn, ev, timeout).await.map(|_| vec![]),
        Err(e) => Err(e.clone()),
    };
    for _ in 0..runs {
        if let (Ok(list), Ok(f), Ok(ev)) = (&mut ours_runs, &ours_fn, &event) {
            match cold_run(f, ev, timeout).await {
                Ok(r) => list.push(r),
                Err(e) => ours_runs = Err(e),
            }
        }
        if let (Ok(list), Ok(ev)) = (&mut py_runs, &event) {
            match cold_run(&py_fn, ev, timeout).await {
                Ok(r) => list.push(r),
                Err(e) => py_runs = Err(e),
            }
        }
    }
    let ours_missing = ours_fn.is_err() || event.is_err();
    let ours_runs = match ours_runs {
        Err(e) if !ours_missing => Err(b.failed("cold start (ours)", e)),
        other => other,
    };
    let py_runs = match py_runs {
        Err(e) if event.is_ok() => Err(b.failed("cold start (Python)", e)),
        other => other,
    };
    let median = |runs: &Result<Vec<coldstart::ColdRun>, String>,
                  f: &dyn Fn(&coldstart::ColdRun) -> Option<f64>|
     -> Measure {
        let runs = runs.as_ref().map_err(Clone::clone)?;
        let samples: Vec<f64> = runs.iter().filter_map(f).collect();
        stats::summarize(&samples)
            .map(|s| s.median)
            .ok_or_else(|| "no samples".to_string())
    };
    let total = |r: &coldstart::ColdRun| Some(r.total.as_secs_f64() * 1000.0);
    let init = |r: &coldstart::ColdRun| r.init.map(|d| d.as_secs_f64() * 1000.0);
    let rss = |r: &coldstart::ColdRun| r.vmhwm_kb.map(|k| k as f64);
    let invoke = |r: &coldstart::ColdRun| r.invoke.map(|d| d.as_secs_f64() * 1000.0);
    b.rows.push(row(
        &format!("cold start → first send answered (median of {runs})"),
        Unit::Millis,
        &median(&ours_runs, &total),
        Some(&median(&py_runs, &total)),
        Target::TimesBetter(30.0),
    ));
    b.rows.push(row(
        "peak RSS: cold start + first send",
        Unit::KiB,
        &median(&ours_runs, &rss),
        Some(&median(&py_runs, &rss)),
        Target::OursAtMost(25e6 / 1024.0),
    ));
    let show = |m: Measure| {
        m.map(|v| format!("{v:.1} ms"))
            .unwrap_or_else(|e| format!("n/a ({e})"))
    };
    b.notes.push(format!(
        "Cold start split (medians): spawn → first `next` call (init) ours {}, Python {}; event handed out → response \
         (the first send) ours {}, Python {}.",
        show(median(&ours_runs, &init)),
        show(median(&py_runs, &init)),
        show(median(&ours_runs, &invoke)),
        show(median(&py_runs, &invoke))
    ));
    if let Ok(Some(r)) = ours_runs.as_ref().map(|r| r.last()) {
        let text: String = String::from_utf8_lossy(&r.response)
            .chars()
            .take(200)
            .collect();
        b.notes.push(format!(
            "`send-message` answered the cold-start event with: `{text}`"
        ));
    }
    b.notes.push(if awslambdaric {
        "Python cold start ran under `awslambdaric` (AWS's runtime interface client from PyPI): `python -m awslambdaric handler.handler`.".into()
    } else {
        "Python cold start ran under `bench/python/runtime_loop.py` (a minimal urllib runtime loop): `awslambdaric` is not installed in .venv-sdk.".into()
    });
    b.method.push(format!(
        "cold start: a runtime-API emulator inside the harness (loopback, fresh per run) holds one API Gateway HTTP API \
         v2 event `POST /conversations/{{id}}/messages` (`{{\"from_client\":\"alice\",\"message\":…}}`); the harness \
         spawns the function process, hands it that invocation and times spawn → the response POST. Ours: the \
         `send-message` release binary. Python: `bench/python/handler.py` (module level: `import leancloud`, \
         `leancloud.init`; handler: `Conversation.create_without_data(id).send(...)`). One untimed run each, then \
         {runs} runs each, alternating; median. Only 2xx answers count. Peak RSS = VmHWM of the process after it answered."
    ));
}

// ---------------------------------------------------------------------------------------------------------
// single operations

const OPS: [(&str, &str); 5] = [
    ("create_conversation", "create conversation"),
    ("add_member", "add member"),
    ("send", "send"),
    ("system_send", "system send (20 to_clients)"),
    ("broadcast", "broadcast"),
];

/// Operations timed through the functions' handlers ([`handlers::handler_ops`]); no Python counterpart.
const HANDLER_OPS: [(&str, &str); 3] = [
    ("fn_send", "send via `send-message`"),
    ("fn_recall", "recall via `recall-message`"),
    ("fn_silence", "silence via `mute-members`"),
];

async fn single_ops(b: &mut Bench) {
    b.stage("single operations");
    let (it, wu) = (b.args.iterations, b.args.warmup);
    let ours = match &b.ours {
        Ok(o) => o.single_ops(it, wu).await,
        Err(e) => Err(e.clone()),
    };
    let ours = match ours {
        Err(e) if b.ours.is_ok() => Err(b.failed("single operations (ours)", e)),
        other => other,
    };
    let py = match b.python.single_ops(it, wu).await {
        Ok(p) => Ok(p),
        Err(e) => Err(b.failed("single operations (Python)", e)),
    };
    let pick = |m: &Result<BTreeMap<String, Vec<f64>>, String>,
                op: &str,
                f: fn(&stats::Summary) -> f64|
     -> Measure {
        let m = m.as_ref().map_err(Clone::clone)?;
        let samples = m.get(op).ok_or_else(|| format!("{op} not measured"))?;
        stats::summarize(samples)
            .map(|s| f(&s))
            .ok_or_else(|| "no samples".into())
    };
    for (key, label) in OPS {
        b.rows.push(row(
            &format!("{label}: median"),
            Unit::Millis,
            &pick(&ours, key, |s| s.median),
            Some(&pick(&py, key, |s| s.median)),
            Target::None,
        ));
        b.rows.push(row(
            &format!("{label}: p99"),
            Unit::Millis,
            &pick(&ours, key, |s| s.p99),
            Some(&pick(&py, key, |s| s.p99)),
            Target::None,
        ));
    }
    let handlers = match &b.ours {
        Ok(o) => handlers::handler_ops(o.client(), it, wu).await,
        Err(e) => Err(e.clone()),
    };
    let handlers = match handlers {
        Err(e) if b.ours.is_ok() => Err(b.failed("single operations through the handlers", e)),
        other => other,
    };
    for (key, label) in HANDLER_OPS {
        for (name, f) in [
            (
                "median",
                (|s: &stats::Summary| s.median) as fn(&stats::Summary) -> f64,
            ),
            ("p99", |s: &stats::Summary| s.p99),
        ] {
            b.rows.push(row(
                &format!("{label}: {name}"),
                Unit::Millis,
                &pick(&handlers, key, f),
                None,
                Target::None,
            ));
        }
    }
    b.method.push(format!(
        "through the functions: {wu} untimed warm-up calls, then {it} sequential timed calls of the handler \
         (`im_functions::lambda::handle_http`: route, decode, validate, run, answer) of `send-message` (a text to a \
         conversation), `recall-message` (`POST …/messages/{{msg_id}}/recall` of one of the messages just sent) and \
         `mute-members` (`POST …/silenced`, a permanent silence of one member, lifted untimed after each call), in \
         process with the client the binaries build. The Python SDK has no recall or silence: no Python figure."
    ));
    b.method.push(format!(
        "single operations: {wu} untimed warm-up calls, then {it} sequential timed calls of each operation over one \
         keep-alive connection; median and p99 (nearest rank). Ours: the `leancloud-im` client the functions run \
         (`CreateConversation` with a name and 2 members, `AddMembers` with one new id, `SendMessage`, `SendMessage` \
         with 20 `to_clients` in a system conversation, `Broadcast`). Python: `bench/python/ops.py` with the SDK calls \
         of the LeanCloud guide (`Conversation(name)` + 2× `add_member` + `save()`, `add_member` + `save()`, `send`, \
         `send(..., to_clients=[20 ids])`, `broadcast`)."
    ));
}

// ---------------------------------------------------------------------------------------------------------
// fan-out and server capacity

fn path_name(p: ours::FanoutPath) -> &'static str {
    match p {
        ours::FanoutPath::Bulk => "bulk",
        ours::FanoutPath::Client => "client",
    }
}

/// Headers of a master-key request signed once (`X-LC-Sign: md5(ts+master),ts,master`, by the client crate's
/// [`leancloud_im::sign`], the one copy of the SDK's rule on the calling side).
fn signed_headers(app_id: &str, master_key: &str) -> Vec<(&'static str, String)> {
    let ts = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    vec![
        ("x-lc-id", app_id.to_owned()),
        ("x-lc-sign", leancloud_im::sign(ts, master_key, true)),
    ]
}

/// Body of `POST /1.1/rtm/messages` as the SDK writes it.
fn send_body(conv: &str, from: &str, message: &str, to_peers: Option<&[String]>) -> Vec<u8> {
    let mut v = serde_json::json!({"from_peer": from, "conv_id": conv, "transient": false, "message": message});
    if let Some(peers) = to_peers {
        v["to_peers"] = serde_json::json!(peers);
    }
    v.to_string().into_bytes()
}

async fn load(b: &Bench, body: Vec<u8>, total: u64) -> loadgen::LoadResult {
    let host = b.server.to_string();
    let request = loadgen::post_json(
        &host,
        "/1.1/rtm/messages",
        &signed_headers(&b.app_id, &b.master_key),
        &body,
    );
    loadgen::run(b.server, request, b.args.load_concurrency, total).await
}

/// Rounds of the fan-out comparison (1 with `--quick`).
const FANOUT_ROUNDS: usize = 3;

/// The run whose `key` is the median of the successful ones; the first failure when none succeeded.
fn median_run<T>(runs: Vec<Result<T, String>>, key: impl Fn(&T) -> f64) -> Result<T, String> {
    let mut ok: Vec<T> = Vec::new();
    let mut first_error = None;
    for run in runs {
        match run {
            Ok(run) => ok.push(run),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if ok.is_empty() {
        return Err(first_error.unwrap_or_else(|| "not run".to_string()));
    }
    ok.sort_by(|a, b| key(a).total_cmp(&key(b)));
    Ok(ok.swap_remove(ok.len() / 2))
}

/// One round of our library fan-out: the bulk path; if it fails to run, the plain client (and the failure is
/// reported).
async fn fanout_library(b: &mut Bench, round: usize) -> Result<ours::FanoutOutcome, String> {
    let n = b.args.recipients;
    let mut ours = Err("not run".to_string());
    if let Ok(o) = b.ours.clone() {
        for path in [ours::FanoutPath::Bulk, ours::FanoutPath::Client] {
            let name = format!("bench-fanout-ours-{}-{round}", path_name(path));
            let r = match o.create_conversation(&name, true).await {
                Ok(conv) => match ours::fanout(
                    &ours::FanoutArgs {
                        conv: conv.clone(),
                        recipients: n,
                        chunk: CHUNK,
                        concurrency: b.args.concurrency,
                        prefix: format!("rs-user-{round}-"),
                        path,
                        ledger: ours::LedgerKind::Memory,
                    },
                    &b.env,
                    b.log("fanout-worker"),
                )
                .await
                {
                    // every call must have left one stored message in the conversation
                    Ok(f) => match o.count_messages(&conv).await {
                        Ok(stored) if stored == f.calls => Ok(f),
                        Ok(stored) => Err(format!(
                            "{} calls reported, {stored} messages stored",
                            f.calls
                        )),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match r {
                Ok(f) => {
                    ours = Ok(f);
                    break;
                }
                Err(e) => {
                    ours = Err(b.failed(&format!("fan-out (ours, {} path)", path_name(path)), e))
                }
            }
        }
    } else if let Err(e) = &b.ours {
        ours = Err(e.clone());
    }
    ours
}

async fn fanout(b: &mut Bench) {
    b.stage("fan-out");
    let n = b.args.recipients;
    let calls_expected = n.div_ceil(CHUNK);
    // Ours, the library path and the `send-message` binary, alternately in rounds on fresh conversations and
    // fresh recipients: each send makes the database bigger, and a run right after another does less well, so
    // neither side always goes first. The median round of each is reported.
    let rounds = if b.args.quick { 1 } else { FANOUT_ROUNDS };
    let mut ours_runs = Vec::new();
    let mut function_runs = Vec::new();
    for round in 0..rounds {
        ours_runs.push(fanout_library(b, round).await);
        function_runs.push(fanout_function_run(b, round).await);
    }
    let ours = median_run(ours_runs, |o| o.total_s);
    let function = median_run(function_runs, |r| {
        r.run.invoke.map_or(f64::INFINITY, |d| d.as_secs_f64())
    });
    // Python
    let py = b
        .python
        .ops::<python::Fanout>(&[
            "fanout",
            "--recipients",
            &n.to_string(),
            "--chunk",
            &CHUNK.to_string(),
        ])
        .await;
    let py = match py {
        Ok(p) if p.calls as usize == calls_expected && p.recipients as usize == n => Ok(p),
        Ok(p) => Err(b.failed(
            "fan-out (Python)",
            format!("made {} calls for {} recipients", p.calls, p.recipients),
        )),
        Err(e) => Err(b.failed("fan-out (Python)", e)),
    };
    // the server's capacity on the same endpoint
    let capacity: Measure = match &b.ours {
        Ok(o) => match o.create_conversation("bench-capacity", true).await {
            Ok(conv) => {
                let peers: Vec<String> = (0..CHUNK).map(|i| format!("cap-user-{i}")).collect();
                let body = send_body(&conv, "system", "bench fan-out notification", Some(&peers));
                let _ = load(b, body.clone(), 500.min(b.args.capacity_requests)).await; // warm-up
                let r = load(b, body, b.args.capacity_requests).await;
                if r.failed > 0 {
                    Err(b.failed(
                        "server capacity",
                        format!(
                            "{} of {} requests failed: {:?}",
                            r.failed,
                            r.ok + r.failed,
                            r.first_error
                        ),
                    ))
                } else {
                    Ok(r.rate())
                }
            }
            Err(e) => Err(b.failed("server capacity", e)),
        },
        Err(e) => Err(e.clone()),
    };
    let secs = |m: &Result<f64, String>| m.clone();
    let ours_total: Measure = ours.as_ref().map(|o| o.total_s).map_err(Clone::clone);
    let py_total: Measure = py.as_ref().map(|p| p.total_s).map_err(Clone::clone);
    let ours_rate: Measure = ours
        .as_ref()
        .map(|o| o.calls as f64 / o.total_s)
        .map_err(Clone::clone);
    let py_rate: Measure = py
        .as_ref()
        .map(|p| p.calls as f64 / p.total_s)
        .map_err(Clone::clone);
    let share = |rate: &Measure| -> Measure {
        let c = capacity.as_ref().map_err(|e| format!("no capacity: {e}"))?;
        Ok(rate.as_ref().map_err(Clone::clone)? / c * 100.0)
    };
    let figure = format!(
        "fan-out: {} recipients = {calls_expected} calls of {CHUNK}, total",
        report::group_thousands(n as u64)
    );
    b.rows.push(row(
        &figure,
        Unit::Seconds,
        &secs(&ours_total),
        Some(&secs(&py_total)),
        Target::TimesBetter(50.0),
    ));
    b.rows.push(row(
        "fan-out: calls/s",
        Unit::Rate,
        &ours_rate,
        Some(&py_rate),
        Target::None,
    ));
    b.rows.push(row(
        "server capacity, same endpoint (load generator)",
        Unit::Rate,
        &capacity,
        None,
        Target::None,
    ));
    b.rows.push(row(
        "fan-out: share of server capacity",
        Unit::Percent,
        &share(&ours_rate),
        Some(&share(&py_rate)),
        Target::OursAtLeast(80.0),
    ));
    let ours_rss: Measure = ours
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|o| o.vmhwm_kb.map(|k| k as f64).ok_or("VmHWM not read".into()));
    let py_rss: Measure = py
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|p| p.vmhwm_kb.map(|k| k as f64).ok_or("VmHWM not read".into()));
    b.rows.push(row(
        "peak RSS of the fan-out process",
        Unit::KiB,
        &ours_rss,
        Some(&py_rss),
        Target::OursAtMost(25e6 / 1024.0),
    ));
    if let Ok(o) = &ours {
        b.notes.push(format!("Our fan-out used {}.", o.method));
    }
    b.method.push(format!(
        "fan-out: one notification to {n} distinct recipients in a fresh system conversation, {calls_expected} calls \
         of `POST /1.1/rtm/messages` with {CHUNK} `to_peers` each; time from the first call to the last answer, measured \
         inside the sending process. Ours: see the note on which path was used; the median of {rounds} rounds, each \
         on a fresh conversation and fresh recipients, alternating with the `send-message` rounds below; Python: a plain loop over \
         `conv.send(..., to_clients=chunk)` (`ops.py fanout`). Server capacity: the harness's load generator \
         (`{}` keep-alive connections, a request signed once, the same endpoint and body shape: 20 `to_peers` in a \
         system conversation; {} requests after 500 warm-up) — the most calls/s the server answers here, so the share \
         column shows how much of that limit each client reaches. Peak RSS = VmHWM of the sending process \
         (`/proc/self/status`) after the fan-out.",
        b.args.load_concurrency, b.args.capacity_requests, rounds = rounds
    ));
    fanout_function(b, function, &capacity);
}

/// The same fan-out through the deployed shape: the `send-message` release binary handed one SQS record with all
/// recipients (the bulk queue's record), under the runtime-API emulator. Timed from the event being handed out to
/// the batch response; the process's peak RSS is read after it answered.
/// One round of the fan-out through `send-message`, with the fan-out's own time from the function's log.
struct FunctionFanout {
    run: coldstart::ColdRun,
    /// `elapsed_ms` of the function's `fan-out` log line: the fan-out alone, without decoding the event,
    /// validating the 10,000 ids and answering.
    fan_out: Option<Duration>,
}

async fn fanout_function_run(b: &mut Bench, round: usize) -> Result<FunctionFanout, String> {
    let n = b.args.recipients;
    let calls = n.div_ceil(CHUNK) as u64;
    let concurrency = b.args.concurrency;
    let result: Result<coldstart::ColdRun, String> = async {
        let program = b.bin("send-message")?;
        let o = b.ours.clone()?;
        let conv = o
            .create_conversation(&format!("bench-fanout-function-{round}"), true)
            .await?;
        let recipients: Vec<String> = (0..n).map(|i| format!("fn-user-{round}-{i}")).collect();
        let body = serde_json::json!({
            "conversation_id": conv,
            "from_client": "system",
            "message": "bench fan-out notification",
            "to_clients": recipients,
            "idempotency_key": format!("bench-{conv}"),
        });
        let event = coldstart::sqs_event(&[("bench-bulk-1".into(), body.to_string())]);
        let mut env = b.env.clone();
        env.push(("BULK_CONCURRENCY".into(), concurrency.to_string()));
        let f = FunctionProcess {
            program,
            args: vec![],
            cwd: None,
            env,
            runtime_api_with_scheme: true,
            log: b.log("send-message-bulk"),
        };
        let run = cold_run(&f, &event, Duration::from_secs(120)).await?;
        let failures = coldstart::batch_failures(&run.response)?;
        if !failures.is_empty() {
            return Err(format!(
                "send-message reported {} failed record(s) (see bench/out/send-message-bulk.log)",
                failures.len()
            ));
        }
        let stored = o.count_messages(&conv).await?;
        if stored != calls {
            return Err(format!("{stored} messages stored, {calls} expected"));
        }
        Ok(run)
    }
    .await;
    match result {
        Err(e) if e.ends_with("not built") => Err(e),
        Err(e) => Err(b.failed("fan-out through send-message (SQS record)", e)),
        Ok(run) => {
            let fan_out = b
                .log("send-message-bulk")
                .and_then(|path| last_fan_out_ms(&path))
                .map(Duration::from_millis);
            Ok(FunctionFanout { run, fan_out })
        }
    }
}

/// `elapsed_ms` of the last `fan-out` line in a function's JSON log.
fn last_fan_out_ms(path: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        (v["message"] == "fan-out").then(|| v["elapsed_ms"].as_u64())?
    })
}

/// The figures of the fan-out through `send-message` (the median round).
fn fanout_function(b: &mut Bench, result: Result<FunctionFanout, String>, capacity: &Measure) {
    let n = b.args.recipients;
    let calls = n.div_ceil(CHUNK) as u64;
    let concurrency = b.args.concurrency;
    let inside: Measure = result.as_ref().map_err(Clone::clone).and_then(|r| {
        r.fan_out
            .map(|d| d.as_secs_f64())
            .ok_or_else(|| "no fan-out line in the function's log".into())
    });
    let result = result.map(|r| r.run);
    let secs: Measure = result.as_ref().map_err(Clone::clone).and_then(|r| {
        r.invoke
            .map(|d| d.as_secs_f64())
            .ok_or_else(|| "no timing".into())
    });
    let rate: Measure = secs
        .as_ref()
        .map(|s| calls as f64 / s)
        .map_err(Clone::clone);
    let share: Measure = match (&rate, capacity) {
        (Ok(r), Ok(c)) => Ok(r / c * 100.0),
        (Err(e), _) => Err(e.clone()),
        (_, Err(e)) => Err(format!("no capacity: {e}")),
    };
    let rss: Measure = result.as_ref().map_err(Clone::clone).and_then(|r| {
        r.vmhwm_kb
            .map(|k| k as f64)
            .ok_or_else(|| "VmHWM not read".into())
    });
    b.rows.push(row(
        "fan-out via `send-message` (1 SQS record): total",
        Unit::Seconds,
        &secs,
        None,
        Target::None,
    ));
    b.rows.push(row(
        "fan-out via `send-message`: of which the fan-out itself",
        Unit::Seconds,
        &inside,
        None,
        Target::None,
    ));
    b.rows.push(row(
        "fan-out via `send-message`: calls/s",
        Unit::Rate,
        &rate,
        None,
        Target::None,
    ));
    b.rows.push(row(
        "fan-out via `send-message`: share of server capacity",
        Unit::Percent,
        &share,
        None,
        Target::OursAtLeast(80.0),
    ));
    b.rows.push(row(
        "fan-out via `send-message`: peak RSS of the function",
        Unit::KiB,
        &rss,
        None,
        Target::OursAtMost(25e6 / 1024.0),
    ));
    b.method.push(format!(
        "fan-out via `send-message`: the deployed shape of the same work — the `send-message` release binary \
         (BULK_CONCURRENCY={concurrency}, no DynamoDB table: in-memory ledger) under the runtime-API emulator, handed one \
         SQS record `{{conversation_id, from_client, message, to_clients: [{n} ids], idempotency_key}}`; timed from \
         the event being handed out to the batch response (no cold start included), which must list no failure, and \
         the conversation must then hold {calls} messages; the median round (see the fan-out rows). \
         \"Of which the fan-out itself\": the `elapsed_ms` the function logs for its fan-out; the rest is the \
         invocation around it (decoding the event and its {n} ids, validating them, answering). Peak RSS = the \
         function process's VmHWM after it answered."
    ));
}

// ---------------------------------------------------------------------------------------------------------
// server: persisted sends per second

async fn persisted_sends(b: &mut Bench) {
    b.stage("server persisted sends");
    let total = b.args.persist_requests;
    let result: Measure = async {
        let o = b.ours.as_ref().map_err(Clone::clone)?;
        let conv = o.create_conversation("bench-persist", false).await?;
        let body = send_body(&conv, "alice", "persisted?", None);
        let r = load(b, body, total).await;
        let stored = o.count_messages(&conv).await?;
        if r.failed > 0 || stored != r.ok {
            return Err(format!(
                "{} acknowledged, {} failed ({:?}), {} stored",
                r.ok, r.failed, r.first_error, stored
            ));
        }
        Ok(r.rate())
    }
    .await;
    let result = match result {
        Err(e) if b.ours.is_ok() => Err(b.failed("persisted sends", e)),
        other => other,
    };
    b.rows.push(row(
        "server: persisted sends/s",
        Unit::Rate,
        &result,
        None,
        Target::OursAtLeast(10_000.0),
    ));
    b.method.push(format!(
        "server: {total} `POST /1.1/rtm/messages` to one normal conversation from the harness's load generator ({} \
         connections, signed once), acknowledged sends / wall time; afterwards the conversation's history is counted \
         and must hold exactly the acknowledged sends, else the figure is reported as failed.",
        b.args.load_concurrency
    ));
    server_loadgen(b).await;
}

/// The server engineer's load generator (`server/examples/loadgen.rs`) in its in-process mode: the server
/// library on a fresh temporary database, no request logging, acknowledged sends checked against stored rows.
/// Run six times, rotating `--durability full` (the default), `normal` and `full` with metrics counted, so the
/// three are measured side by side under the same load of the machine; each figure is the mean of its two runs.
async fn server_loadgen(b: &mut Bench) {
    let path = b
        .args
        .server_loadgen
        .clone()
        .unwrap_or_else(|| b.args.bin_dir.join("examples/loadgen"));
    let secs = b.args.server_loadgen_seconds;
    let conc = b.args.load_concurrency;
    // (durability, metrics counted)
    let modes = [("full", false), ("normal", false), ("full", true)];
    let mut runs: [Vec<Measure>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..6 {
        let mode = round % 3;
        let result: Measure = if !path.is_file() {
            Err("server/examples/loadgen not built".into())
        } else {
            let out = tokio::process::Command::new(&path)
                .args([secs.to_string(), conc.to_string()])
                .env("RUST_LOG", "warn")
                .env("LOADGEN_DURABILITY", modes[mode].0)
                .env("LOADGEN_METRICS", if modes[mode].1 { "1" } else { "0" })
                .kill_on_drop(true)
                .output()
                .await;
            match out {
                Ok(o) if o.status.success() => {
                    let text = String::from_utf8_lossy(&o.stdout).to_string();
                    parse_server_loadgen(&text).map_err(|e| b.failed("server load generator", e))
                }
                Ok(o) => Err(b.failed(
                    "server load generator",
                    format!("{}: {}", o.status, String::from_utf8_lossy(&o.stderr)),
                )),
                Err(e) => Err(b.failed("server load generator", e.to_string())),
            }
        };
        runs[mode].push(result);
    }
    let mut each = Vec::new();
    let mut means = Vec::new();
    for ((mode, metrics), results) in modes.iter().zip(&runs) {
        let ok: Vec<f64> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        let mean: Measure = if ok.len() == results.len() && !ok.is_empty() {
            Ok(ok.iter().sum::<f64>() / ok.len() as f64)
        } else {
            Err(results
                .iter()
                .find_map(|r| r.as_ref().err().cloned())
                .unwrap_or_else(|| "no run".into()))
        };
        let with = if *metrics {
            ", with --metrics-listen"
        } else {
            ""
        };
        each.push(format!(
            "`{mode}`{with} {}",
            ok.iter()
                .map(|v| format!("{v:.0}"))
                .collect::<Vec<_>>()
                .join(" and ")
        ));
        means.push(mean.as_ref().ok().copied());
        b.rows.push(row(
            &format!(
                "server: persisted sends/s (server's own loadgen, in-process, --durability {mode}{with})"
            ),
            Unit::Rate,
            &mean,
            None,
            Target::OursAtLeast(10_000.0),
        ));
    }
    let metrics_cost = match (means[0], means[2]) {
        (Some(without), Some(with)) if without > 0.0 => format!(
            "{:+.1} % sends/s with metrics against without",
            (with / without - 1.0) * 100.0
        ),
        _ => "not measured".into(),
    };
    b.method.push(format!(
        "server (second figure): `server/examples/loadgen.rs`, the server engineer's load generator, run as \
         `loadgen {secs} {conc}`: the server library in the same process on a fresh temporary database, {conc} \
         concurrent reqwest senders for {secs} s; counts only if its stored-row check confirms every acknowledged send. \
         Six runs rotating `--durability full` (the default: one fsync per group commit), `normal` \
         (`LOADGEN_DURABILITY`) and `full` with metrics counted (`LOADGEN_METRICS=1`: `--metrics-listen`), each \
         figure the mean of its two: {}. Metrics cost: {metrics_cost}.",
        each.join("; ")
    ));
}

/// Read `loadgen: N persisted sends/s`, requiring its `acknowledged and persisted: true` line.
fn parse_server_loadgen(text: &str) -> Result<f64, String> {
    if !text.contains("acknowledged and persisted: true") {
        return Err(format!(
            "stored-row check missing or false: {}",
            text.trim()
        ));
    }
    text.lines()
        .find_map(|l| {
            l.strip_prefix("loadgen: ")?
                .strip_suffix(" persisted sends/s")?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .ok_or_else(|| format!("no rate in: {}", text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_server_loadgen_output() {
        let ok = "loadgen: 50000 acknowledged sends, 0 failed, in 5.00 s with 64 concurrent requests\n\
                  loadgen: 50000 messages stored (acknowledged and persisted: true)\nloadgen: 10000 persisted sends/s\n";
        assert_eq!(parse_server_loadgen(ok), Ok(10000.0));
        let bad = ok.replace("persisted: true", "persisted: false");
        assert!(parse_server_loadgen(&bad).is_err());
    }

    #[test]
    fn send_body_matches_the_sdk_shape() {
        let peers = vec!["u1".to_string(), "u2".to_string()];
        let body = String::from_utf8(send_body("c1", "sys", "hi", Some(&peers))).expect("utf8");
        assert_eq!(
            body,
            r#"{"from_peer":"sys","conv_id":"c1","transient":false,"message":"hi","to_peers":["u1","u2"]}"#
        );
        let headers = signed_headers("app", "key");
        assert_eq!(headers[0], ("x-lc-id", "app".to_string()));
        assert!(headers[1].1.ends_with(",master"));
        assert_eq!(headers[1].1.split(',').next().map(str::len), Some(32));
    }
}
