//! `broadcast` Lambda function: `POST /conversations/{conversation_id}/broadcasts`, SQS records and schedules.
//!
//! Run locally with `cargo lambda watch -A 127.0.0.1` and `LEANCLOUD_*` set (see `functions/README.md`).

use im_functions::{lambda, ops::broadcast::BroadcastOp};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::serve::<BroadcastOp>().await
}
