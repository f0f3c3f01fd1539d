//! JSON logs for every function.

use tracing_subscriber::EnvFilter;

/// Install the JSON subscriber. Level: `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, then `info`.
///
/// Every line carries the `invocation` span (request id, operation, trigger); events add the conversation and
/// the outcome. Secrets are never logged: the master key lives only inside the client.
pub fn init() {
    let filter = EnvFilter::try_from_env("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .try_init();
}
