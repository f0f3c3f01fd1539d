//! `create-conversation` Lambda function: `POST /conversations` and SQS records.
//!
//! Run locally with `cargo lambda watch -A 127.0.0.1` and `LEANCLOUD_*` set (see `functions/README.md`).

use im_functions::{config, create_conversation::CreateConversationOp, handler, telemetry};
use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config = config::load()
        .await
        .inspect_err(|err| tracing::error!(%err, "cannot start"))?;
    let client = config::client(config)?;
    lambda_runtime::run(service_fn(|event| {
        handler::handle::<CreateConversationOp>(&client, event)
    }))
    .await
}
