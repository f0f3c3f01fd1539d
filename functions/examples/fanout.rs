//! Fan-out benchmark: one bulk send to N recipients against the local LeanCloud-compatible server, through
//! the same path the send-message function takes for a queue record ([`im_functions::bulk::fan_out`]).
//!
//! ```sh
//! cargo run -p im-functions --release --example fanout -- [RECIPIENTS] [CONCURRENCY] [off|memory]
//! ```
//!
//! Defaults: 20,000 recipients, concurrency 8, the in-memory ledger (a DynamoDB ledger adds one conditional
//! write before and one after each call, so its rate depends on the table's latency, not on this code). No
//! rate budget: the figure is what the function and the server sustain, not what LeanCloud would allow.

use std::time::{Duration, Instant};

use im_functions::budget::{Budget, BudgetConfig};
use im_functions::bulk::{fan_out, BulkJob};
use im_functions::ledger::Ledger;
use im_functions::services::BulkOptions;
use im_functions::{Backend, Services};
use leancloud_im::{Client, ClientId, ClientOptions, Config, CreateConversation, SendMessage};
use leancloud_server::{spawn, ServerConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let recipients: usize = args.next().map_or(Ok(20_000), |a| a.parse())?;
    let concurrency: usize = args.next().map_or(Ok(8), |a| a.parse())?;
    let ledger = match args.next().as_deref() {
        None | Some("memory") => Ledger::memory(),
        Some("off") => Ledger::Off,
        Some(other) => return Err(format!("unknown ledger {other:?}: off or memory").into()),
    };

    let db = tempfile::tempdir()?;
    let server = spawn(ServerConfig::for_tests(db.path().join("bench.sqlite3"))).await?;
    let config = Config::builder("dev-app-id-gzGzoHsz")
        .master_key("dev-master-key")
        .api_server(server.base_url())
        .build()?;
    let client = Client::with_options(
        config,
        ClientOptions {
            request_timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        },
    )?;
    let conversation = client
        .execute(&CreateConversation::new().name("bench").system(true))
        .await?
        .id;

    let ids: Vec<ClientId> = (0..recipients)
        .map(|i| ClientId::parse(format!("user-{i:06}")))
        .collect::<Result<_, _>>()?;
    let template = SendMessage::new(conversation.clone(), ClientId::parse("bench")?, "benchmark");
    let job = BulkJob::new(template, Some(ids), Some("bench-1".to_owned()));
    let services = Services {
        ledger,
        budget: Budget::memory(BudgetConfig::unlimited()),
        queue: None,
        options: BulkOptions {
            concurrency,
            ..BulkOptions::default()
        },
    };
    let backend = Backend::new(&client).with_services(&services);

    let started = Instant::now();
    let report = fan_out(&backend, &job).await;
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(error) = &report.error {
        return Err(format!("fan-out incomplete: {error}").into());
    }
    let stored: usize = server
        .inspect()
        .messages(conversation.as_ref())
        .iter()
        .map(|m| m.recipients.len())
        .sum();
    println!(
        "fan-out: {recipients} recipients in {} calls, concurrency {concurrency}, {:.2} s: \
         {:.0} recipients/s, {:.0} calls/s (server stored {stored} recipient deliveries)",
        report.calls,
        elapsed,
        recipients as f64 / elapsed,
        report.calls as f64 / elapsed,
    );
    server.shutdown().await;
    Ok(())
}
