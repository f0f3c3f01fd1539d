//! `add-member` Lambda function: `POST /conversations/{conversation_id}/members` and SQS records.
//!
//! Run locally with `cargo lambda watch -A 127.0.0.1` and `LEANCLOUD_*` set (see `functions/README.md`).

use im_functions::{add_member::AddMemberOp, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    handler::serve::<AddMemberOp>().await
}
