//! The LeanCloud IM Lambda functions: `create-conversation`, `add-member`, `remove-member`, `send-message`,
//! `recall-message`, `mute-members`, `block-members`, `broadcast` and `schedules`.
//!
//! Dependencies point one way: `bin → lambda → ops → delivery → leancloud_im` (checked by
//! `scripts/checks/05-module-cycles.sh`).
//! - [`lambda`]: the trigger adapters (HTTP API 2.0 / function URL, SQS, EventBridge Scheduler and classic
//!   scheduled events) around one core, [`lambda::run_one`];
//! - [`ops`]: one file per operation, owning its validation and its execution;
//! - [`delivery`]: fan-out, idempotency ledger, budgets, bulk queue and dry-run plans; it never names an
//!   operation;
//! - [`app`]: the state built once in [`lambda::serve`] and passed to every invocation.
//!
//! The HTTP API, queue records and schedule payloads are documented in `functions/README.md` and
//! `functions/openapi.yaml`.
//!
//! ```no_run
//! use im_functions::{lambda, ops::send_message::SendMessageOp};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), lambda_runtime::Error> {
//!     // JSON logs, the App built once at cold start, reused by every invocation.
//!     lambda::serve::<SendMessageOp>().await
//! }
//! ```

pub mod app;
pub mod aws_env;
pub mod aws_http;
pub mod config;
pub mod delivery;
pub mod error;
pub mod lambda;
pub mod ops;
pub mod scheduler;
pub mod secrets;
pub mod telemetry;

pub use app::App;
pub use error::{ErrorCode, FunctionError};
pub use lambda::trigger::{Trigger, TriggerKind};
pub use ops::{Invocation, Operation};
