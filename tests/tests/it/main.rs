//! End-to-end tests: the real server on port 0 with a fresh database, the real client over HTTP, and the
//! function handlers fed the sample events in `events/` and malformed ones.

// The handlers' futures nest deeply (trigger → operation → client → retries).
#![recursion_limit = "256"]

mod aws;
mod backend_errors;
mod bulk;
mod events;
mod helpers;
mod http_api;
mod jwt;
mod malformed;
mod moderation;
mod schedules;
