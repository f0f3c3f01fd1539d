//! Our side: the `leancloud-im` client (what the functions run) and the fan-out worker process.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use clap::Args;
use futures::StreamExt;
use im_functions::delivery::budget::BudgetConfig;
use im_functions::delivery::ledger::Ledger;
use im_functions::delivery::{fan_out, BulkJob, Delivery, Sender};
use leancloud_im::{
    AddMembers, Broadcast, Client, ClientId, Config, ConversationId, CreateConversation,
    MessageHistory, MessageId, SendMessage, MAX_HISTORY_LIMIT, MAX_RECIPIENTS,
};
use serde::{Deserialize, Serialize};

/// Our client, configured for the local server.
#[derive(Debug, Clone)]
pub struct Ours {
    client: Client,
}

fn client(
    server_url: &str,
    app_id: &str,
    app_key: &str,
    master_key: &str,
) -> Result<Client, String> {
    let config = Config::builder(app_id)
        .app_key(app_key)
        .master_key(master_key)
        .api_server(server_url)
        .build()
        .map_err(|e| format!("config: {e}"))?;
    Client::new(config).map_err(|e| format!("client: {e}"))
}

fn cid(s: &str) -> Result<ClientId, String> {
    ClientId::parse(s).map_err(|e| e.to_string())
}

fn ms_since(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1000.0
}

/// Time `f(i)` for `warmup` untimed then `iterations` timed calls (ms).
async fn timed<F, Fut>(iterations: u32, warmup: u32, mut f: F) -> Result<Vec<f64>, String>
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    for i in 0..warmup {
        f(-1 - i64::from(i)).await?;
    }
    let mut samples = Vec::with_capacity(iterations as usize);
    for i in 0..iterations {
        let t0 = Instant::now();
        f(i64::from(i)).await?;
        samples.push(ms_since(t0));
    }
    Ok(samples)
}

impl Ours {
    /// The client the measurements use.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn new(
        server_url: &str,
        app_id: &str,
        app_key: &str,
        master_key: &str,
    ) -> Result<Ours, String> {
        Ok(Ours {
            client: client(server_url, app_id, app_key, master_key)?,
        })
    }

    async fn create(
        &self,
        name: &str,
        system: bool,
        members: &[&str],
    ) -> Result<ConversationId, String> {
        let members = members
            .iter()
            .map(|m| cid(m))
            .collect::<Result<Vec<_>, _>>()?;
        let created = CreateConversation::new()
            .name(name)
            .system(system)
            .members(members)
            .send(&self.client)
            .await
            .map_err(|e| format!("create conversation: {e}"))?;
        Ok(created.id)
    }

    /// Create a conversation; its id.
    pub async fn create_conversation(&self, name: &str, system: bool) -> Result<String, String> {
        let members: &[&str] = if system { &[] } else { &["alice", "bob"] };
        Ok(self.create(name, system, members).await?.to_string())
    }

    /// Latency samples (ms) per operation, keyed like `ops.py single`.
    pub async fn single_ops(
        &self,
        iterations: u32,
        warmup: u32,
    ) -> Result<BTreeMap<String, Vec<f64>>, String> {
        let run = format!("rs{}", chrono::Utc::now().timestamp_millis());
        let c = &self.client;
        let mut out = BTreeMap::new();

        let (alice, bob) = (cid("alice")?, cid("bob")?);
        let create = timed(iterations, warmup, |i| {
            let req = CreateConversation::new()
                .name(format!("bench-create-{run}-{i}"))
                .members([&alice, &bob]);
            async move {
                req.send(c)
                    .await
                    .map(drop)
                    .map_err(|e| format!("create conversation: {e}"))
            }
        })
        .await?;
        out.insert("create_conversation".into(), create);

        let members_conv = self
            .create(&format!("bench-members-{run}"), false, &[])
            .await?;
        let add = timed(iterations, warmup, |i| {
            let req =
                cid(&format!("member-{run}-{i}")).map(|m| AddMembers::new(&members_conv, [m]));
            async move {
                req?.send(c)
                    .await
                    .map(drop)
                    .map_err(|e| format!("add member: {e}"))
            }
        })
        .await?;
        out.insert("add_member".into(), add);

        let chat = self
            .create(&format!("bench-chat-{run}"), false, &["alice", "bob"])
            .await?;
        let send = timed(iterations, warmup, |i| {
            let req = SendMessage::new(&chat, &alice, format!("hello {i}"));
            async move {
                req.send(c)
                    .await
                    .map(drop)
                    .map_err(|e| format!("send: {e}"))
            }
        })
        .await?;
        out.insert("send".into(), send);

        let system = self
            .create(&format!("bench-system-{run}"), true, &[])
            .await?;
        let recipients = (0..MAX_RECIPIENTS)
            .map(|n| cid(&format!("user-{n}")))
            .collect::<Result<Vec<_>, _>>()?;
        let from = cid("system")?;
        let system_send = timed(iterations, warmup, |i| {
            let req = SendMessage::new(&system, &from, format!("notice {i}"))
                .to_clients(recipients.iter());
            async move {
                req.send(c)
                    .await
                    .map(drop)
                    .map_err(|e| format!("system send: {e}"))
            }
        })
        .await?;
        out.insert("system_send".into(), system_send);

        let broadcast = timed(iterations, warmup, |i| {
            let req = Broadcast::new(&system, &from, format!("broadcast {i}"));
            async move {
                req.send(c)
                    .await
                    .map(drop)
                    .map_err(|e| format!("broadcast: {e}"))
            }
        })
        .await?;
        out.insert("broadcast".into(), broadcast);
        Ok(out)
    }

    /// Messages stored in a conversation, counted through the history API (pages of 1000, newest first).
    pub async fn count_messages(&self, conv: &str) -> Result<u64, String> {
        let conv = ConversationId::parse(conv).map_err(|e| e.to_string())?;
        let mut seen = std::collections::HashSet::new();
        let mut cursor: Option<(i64, MessageId)> = None;
        loop {
            let mut req = MessageHistory::conversation(&conv).limit(MAX_HISTORY_LIMIT);
            if let Some((ts, id)) = &cursor {
                req = req.before(*ts).before_message(id);
            }
            let page = req
                .send(&self.client)
                .await
                .map_err(|e| format!("history: {e}"))?;
            let before = seen.len();
            for r in &page {
                seen.insert(r.msg_id.to_string());
            }
            match page.last() {
                Some(last) if seen.len() > before => {
                    cursor = Some((last.timestamp, last.msg_id.clone()))
                }
                _ => break,
            }
        }
        Ok(seen.len() as u64)
    }
}

/// `bench fanout-worker` arguments.
#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    /// The system conversation.
    #[arg(long)]
    pub conv: String,
    #[arg(long, default_value_t = 10_000)]
    pub recipients: usize,
    #[arg(long, default_value_t = 20)]
    pub chunk: usize,
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    #[arg(long, default_value = "rs-user-")]
    pub prefix: String,
    /// `bulk`: the functions' bulk path (`im_functions::delivery::fan_out`: ledger, budget, retries), with
    /// `--concurrency` as its BULK_CONCURRENCY; `client`: plain `leancloud-im` calls, `--concurrency` in flight.
    #[arg(long, value_enum, default_value = "bulk")]
    pub path: FanoutPath,
    /// For `--path bulk`: the in-memory ledger (as a function without a table) or none at all. A DynamoDB
    /// ledger adds one conditional write before and one after each call, so its rate is the table's.
    #[arg(long, value_enum, default_value = "memory")]
    pub ledger: LedgerKind,
}

/// The ledger of a bulk fan-out run (this was `functions/examples/fanout.rs`'s third argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LedgerKind {
    Memory,
    Off,
}

/// Which code sends our fan-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FanoutPath {
    Bulk,
    Client,
}

impl FanoutPath {
    fn as_arg(self) -> &'static str {
        match self {
            FanoutPath::Bulk => "bulk",
            FanoutPath::Client => "client",
        }
    }
}

/// What the fan-out worker prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FanoutReport {
    pub calls: u64,
    pub recipients: u64,
    pub total_s: f64,
    pub vmhwm_kb: Option<u64>,
}

/// The result of our fan-out and which path produced it.
#[derive(Debug, Clone)]
pub struct FanoutOutcome {
    pub calls: u64,
    pub total_s: f64,
    pub vmhwm_kb: Option<u64>,
    pub method: String,
}

/// The fan-out worker process: send to every recipient in chunks with bounded concurrency, print JSON.
pub async fn fanout_worker(args: FanoutArgs) -> Result<(), String> {
    let config = Config::from_env().map_err(|e| format!("config: {e}"))?;
    let client = Client::new(config).map_err(|e| format!("client: {e}"))?;
    let conv = ConversationId::parse(args.conv.as_str()).map_err(|e| e.to_string())?;
    let from = cid("system")?;
    let recipients = (0..args.recipients)
        .map(|n| cid(&format!("{}{n}", args.prefix)))
        .collect::<Result<Vec<_>, _>>()?;
    let requests: Vec<SendMessage> = recipients
        .chunks(args.chunk.max(1))
        .map(|chunk| {
            SendMessage::new(&conv, &from, "bench fan-out notification").to_clients(chunk.iter())
        })
        .collect();
    let calls = requests.len() as u64;
    let t0 = Instant::now();
    match args.path {
        FanoutPath::Client => {
            let results: Vec<Result<_, _>> =
                futures::stream::iter(requests.iter().map(|r| r.send(&client)))
                    .buffer_unordered(args.concurrency.max(1))
                    .collect()
                    .await;
            let failed: Vec<String> = results
                .into_iter()
                .filter_map(Result::err)
                .map(|e| e.to_string())
                .collect();
            if let Some(first) = failed.first() {
                return Err(format!(
                    "{} of {calls} calls failed, first: {first}",
                    failed.len()
                ));
            }
        }
        FanoutPath::Bulk => {
            let mut delivery = Delivery::in_memory(BudgetConfig::default());
            delivery.options.concurrency = args.concurrency.max(1);
            if args.ledger == LedgerKind::Off {
                delivery.ledger = Ledger::Off;
            }
            let sender = Sender::new(&client, &delivery);
            let template = SendMessage::new(&conv, &from, "bench fan-out notification");
            let key = format!("bench-fanout-{}", args.conv);
            let job = BulkJob::new(template, Some(recipients), Some(key));
            let report = fan_out(&sender, &job).await;
            if !report.is_complete() || report.sent as u64 != calls {
                return Err(format!(
                    "bulk fan-out incomplete: {} sent, {} failed, {} not started, error {:?}",
                    report.sent, report.failed, report.not_started, report.error
                ));
            }
        }
    }
    let total_s = t0.elapsed().as_secs_f64();
    let report = FanoutReport {
        calls,
        recipients: args.recipients as u64,
        total_s,
        vmhwm_kb: crate::sys::vmhwm_kb(std::process::id()),
    };
    println!(
        "{}",
        serde_json::to_string(&report).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Run our fan-out (`args`, as `bench fanout-worker` takes them) in its own process, so its peak RSS is its own,
/// and read its report.
pub async fn fanout(
    args: &FanoutArgs,
    env: &[(String, String)],
    log: Option<PathBuf>,
) -> Result<FanoutOutcome, String> {
    let FanoutArgs {
        conv,
        recipients,
        chunk,
        concurrency,
        prefix,
        path,
        ledger: _,
    } = args;
    let (recipients, chunk) = (*recipients, *chunk);
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args([
        "fanout-worker",
        "--conv",
        conv,
        "--recipients",
        &recipients.to_string(),
        "--chunk",
        &chunk.to_string(),
        "--concurrency",
        &concurrency.to_string(),
        "--path",
        path.as_arg(),
        "--prefix",
        prefix.as_str(),
    ])
    .env_clear()
    .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    .stdin(Stdio::null())
    .kill_on_drop(true);
    if let Some(log) = log {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| e.to_string())?;
        cmd.stderr(f);
    }
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("fan-out worker not run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "fan-out worker failed ({}), see its log",
            out.status
        ));
    }
    let r: FanoutReport =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("fan-out worker output: {e}"))?;
    let expected = recipients.div_ceil(chunk) as u64;
    if r.calls != expected || r.recipients != recipients as u64 {
        return Err(format!(
            "fan-out worker made {} calls for {} recipients",
            r.calls, r.recipients
        ));
    }
    Ok(FanoutOutcome {
        calls: r.calls,
        total_s: r.total_s,
        vmhwm_kb: r.vmhwm_kb,
        method: match path {
            FanoutPath::Bulk => format!(
                "the functions' bulk path (`im_functions::delivery::fan_out`, what `send-message` runs for a bulk \
                 record: in-memory idempotency ledger with a key, unlimited budget, per-chunk retries) in its own \
                 process (`bench fanout-worker --path bulk`), chunks of {chunk}, {concurrency} in flight \
                 (BULK_CONCURRENCY={concurrency}; the functions' default is 4)"
            ),
            FanoutPath::Client => format!(
                "the `leancloud-im` client in its own process (`bench fanout-worker --path client`), chunks of \
                 {chunk} with {concurrency} calls in flight (not the bulk path of issue 6)"
            ),
        },
    })
}
