//! `schedules` Lambda function: `POST /schedules`, `GET /schedules` and `DELETE /schedules/{name}` (EventBridge
//! Scheduler schedules that fire `send-message` or `broadcast`). The only binary that links the Scheduler client.
//!
//! Run locally with `cargo lambda watch -A 127.0.0.1` and `LEANCLOUD_*`, `AWS_REGION` and the `SCHEDULE_*`
//! variables set (see `functions/README.md`).

use im_functions::{lambda, ops::schedules::SchedulesOp};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::serve::<SchedulesOp>().await
}
