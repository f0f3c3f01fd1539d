//! `remove-member` Lambda function: `DELETE /conversations/{conversation_id}/members` and SQS records.
//!
//! Run locally with `cargo lambda watch -A 127.0.0.1` and `LEANCLOUD_*` set (see `functions/README.md`).

use im_functions::{lambda, ops::remove_member::RemoveMemberOp};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::serve::<RemoveMemberOp>().await
}
