//! `send-message` Lambda function: `POST /conversations/{conversation_id}/messages`, SQS records and schedules.
//!
//! Run locally with `cargo lambda watch -A 127.0.0.1` and `LEANCLOUD_*` set (see `functions/README.md`).

use im_functions::{config, handler, send_message::SendMessageOp, telemetry};
use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config = config::load()
        .await
        .inspect_err(|err| tracing::error!(%err, "cannot start"))?;
    let client = config::client(config)?;
    lambda_runtime::run(service_fn(|event| {
        handler::handle::<SendMessageOp>(&client, event)
    }))
    .await
}
