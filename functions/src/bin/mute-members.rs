//! `mute-members` Lambda function: POST and DELETE /conversations/{conversation_id}/silenced and SQS records.
//!
//! Run locally with `cargo lambda watch -A 127.0.0.1` and `LEANCLOUD_*` set (see `functions/README.md`).

use im_functions::{lambda, ops::mute_members::MuteMembersOp};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::serve::<MuteMembersOp>().await
}
