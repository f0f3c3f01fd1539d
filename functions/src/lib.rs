//! The LeanCloud IM Lambda functions: `create-conversation`, `add-member`, `send-message` and `broadcast`.
//!
//! Each binary in `src/bin/` is [`handler::serve`] for one [`Operation`]; the shared [`handler::handle`] accepts
//! API Gateway HTTP API 2.0 / function URL requests, SQS batches and (for `send-message` and `broadcast`)
//! EventBridge Scheduler inputs and classic EventBridge scheduled events. The HTTP API, queue records and
//! schedule payloads are documented in `functions/README.md` and `functions/openapi.yaml`.
//!
//! ```no_run
//! use im_functions::{handler, send_message::SendMessageOp};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), lambda_runtime::Error> {
//!     // JSON logs, configuration once at cold start, one client reused by every invocation.
//!     handler::serve::<SendMessageOp>().await
//! }
//! ```

pub mod add_member;
pub mod broadcast;
pub mod budget;
pub mod bulk;
pub mod config;
pub mod create_conversation;
pub mod error;
pub mod handler;
pub mod http;
pub mod idempotency;
pub mod input;
pub mod ledger;
pub mod operation;
pub mod queue;
pub mod secrets;
pub mod send_message;
pub mod services;
pub mod telemetry;
pub mod trigger;

pub use error::FunctionError;
pub use operation::{Backend, Operation, Source};
pub use services::Services;
pub use trigger::{Trigger, TriggerKind};
