//! `add-member` Lambda function: `POST /conversations/{conversation_id}/members` and SQS records.
//!
//! Run locally with `cargo lambda watch -A 127.0.0.1` and `LEANCLOUD_*` set (see `functions/README.md`).

use im_functions::{lambda, ops::add_member::AddMemberOp};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::serve::<AddMemberOp>().await
}
