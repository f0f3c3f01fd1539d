//! `recall-message` Lambda function: POST /conversations/{conversation_id}/messages/{msg_id}/recall (recall), PUT /conversations/{conversation_id}/messages/{msg_id} (edit) and SQS records.
//!
//! Run locally with `cargo lambda watch -A 127.0.0.1` and `LEANCLOUD_*` set (see `functions/README.md`).

use im_functions::{lambda, ops::recall_message::RecallMessageOp};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::serve::<RecallMessageOp>().await
}
