//! JSON logs for every function.

use tracing::Level;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Targets whose TRACE events carry whole events, requests or responses: `lambda_runtime` logs the raw
/// invocation event (`raw JSON event received from Lambda`: API Gateway's `Authorization` header with the
/// caller's bearer JWT, message bodies, recipient lists), the AWS SDK's orchestrator logs every request and
/// response it transmits (SQS record bodies, DynamoDB items) and `aws_sigv4` logs the request it signs. They are
/// capped at DEBUG whatever level is configured (review 2026-12, L11). A prefix covers its submodules and any
/// target that starts with it.
pub const BODY_TARGETS: [&str; 4] = [
    "lambda_runtime",
    "lambda_runtime_api_client",
    "aws_smithy_runtime",
    "aws_sigv4",
];

/// The most any of [`BODY_TARGETS`] may log.
pub const BODY_TARGETS_MAX: LevelFilter = LevelFilter::DEBUG;

/// Install the JSON subscriber. Level: `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, then `info`.
///
/// Every line carries the `invocation` span (request id, operation, trigger); events add the conversation and
/// the outcome. Secrets are never logged: the master key lives only inside the client.
pub fn init() {
    let var = |name: &str| std::env::var(name).ok();
    let filter = filter(
        var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        var("RUST_LOG").as_deref(),
    );
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(LevelFilter::TRACE)
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .finish()
        .with(filter)
        .try_init();
}

/// The filter for a level setting (`AWS_LAMBDA_LOG_LEVEL`: a bare level such as `DEBUG`) and `RUST_LOG`
/// (`target=level` directives, comma-separated, as [`Targets`] parses them: no span or field filters, no
/// regular expressions). The first one that is set and parses wins; else `info`. Lambda's `FATAL` means
/// `error`. Whatever wins, [`BODY_TARGETS`] never log above [`BODY_TARGETS_MAX`].
pub fn filter(lambda_level: Option<&str>, rust_log: Option<&str>) -> Targets {
    let parse = |text: &str| -> Option<Targets> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if text.eq_ignore_ascii_case("fatal") {
            return Some(Targets::new().with_default(LevelFilter::ERROR));
        }
        text.parse().ok()
    };
    let chosen = lambda_level
        .and_then(parse)
        .or_else(|| rust_log.and_then(parse))
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    cap_body_targets(chosen)
}

/// `targets` with every directive on a [`BODY_TARGETS`] prefix, and the prefixes themselves, lowered to
/// [`BODY_TARGETS_MAX`] (a more specific directive such as `lambda_runtime::layers=trace` is capped too).
fn cap_body_targets(targets: Targets) -> Targets {
    let is_body = |target: &str| BODY_TARGETS.iter().any(|t| target.starts_with(t));
    let mut capped = Targets::new();
    if let Some(default) = targets.default_level() {
        capped = capped.with_default(default);
    }
    for (target, level) in targets.iter() {
        let level = if is_body(target) {
            level.min(BODY_TARGETS_MAX)
        } else {
            level
        };
        capped = capped.with_target(target, level);
    }
    for target in BODY_TARGETS {
        if !capped.iter().any(|(t, _)| t == target) {
            let level = max_enabled(&targets, target).min(BODY_TARGETS_MAX);
            capped = capped.with_target(target, level);
        }
    }
    capped
}

/// The most verbose level `targets` enables for `target`.
fn max_enabled(targets: &Targets, target: &str) -> LevelFilter {
    [
        Level::TRACE,
        Level::DEBUG,
        Level::INFO,
        Level::WARN,
        Level::ERROR,
    ]
    .into_iter()
    .find(|level| targets.would_enable(target, level))
    .map_or(LevelFilter::OFF, LevelFilter::from_level)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW_EVENT: &str = "lambda_runtime::layers::api_response";

    #[test]
    fn l11_trace_never_reaches_the_targets_that_log_raw_events() {
        for (lambda, rust_log) in [
            (Some("trace"), None),
            (Some("TRACE"), None),
            (None, Some("trace")),
            (
                None,
                Some("lambda_runtime=trace,lambda_runtime::layers=trace,trace"),
            ),
        ] {
            let filter = filter(lambda, rust_log);
            let case = format!("{lambda:?} {rust_log:?}: {filter}");
            assert!(!filter.would_enable(RAW_EVENT, &Level::TRACE), "{case}");
            assert!(filter.would_enable(RAW_EVENT, &Level::DEBUG), "{case}");
            for target in [
                "lambda_runtime_api_client::body",
                "aws_smithy_runtime::client::orchestrator",
                "aws_sigv4::http_request::sign",
            ] {
                assert!(
                    !filter.would_enable(target, &Level::TRACE),
                    "{case}: {target}"
                );
            }
            // Our own code still traces.
            assert!(
                filter.would_enable("im_functions::delivery", &Level::TRACE),
                "{case}"
            );
            assert!(
                filter.would_enable("leancloud_im::client", &Level::TRACE),
                "{case}"
            );
        }
    }

    #[test]
    fn the_level_comes_from_lambda_then_rust_log_then_info() {
        let f = filter(Some("DEBUG"), Some("trace"));
        assert!(f.would_enable("im_functions", &Level::DEBUG));
        assert!(!f.would_enable("im_functions", &Level::TRACE));

        let f = filter(None, Some("warn,im_functions=debug"));
        assert!(f.would_enable("im_functions::ops", &Level::DEBUG));
        assert!(!f.would_enable("leancloud_im", &Level::INFO));
        assert!(f.would_enable("leancloud_im", &Level::WARN));

        for (lambda, rust_log) in [
            (None, None),
            (Some(""), Some("")),
            (Some("not a level=loud"), None),
        ] {
            let f = filter(lambda, rust_log);
            assert!(f.would_enable("im_functions", &Level::INFO), "{lambda:?}");
            assert!(!f.would_enable("im_functions", &Level::DEBUG), "{lambda:?}");
            // lambda_runtime's INFO lines are kept below the cap
            assert!(f.would_enable(RAW_EVENT, &Level::INFO), "{lambda:?}");
        }

        let f = filter(Some("FATAL"), None);
        assert!(f.would_enable("im_functions", &Level::ERROR));
        assert!(!f.would_enable("im_functions", &Level::WARN));
        assert!(!f.would_enable(RAW_EVENT, &Level::WARN));
    }

    #[test]
    fn a_body_target_below_the_cap_stays_where_it_was_set() {
        let f = filter(None, Some("trace,aws_smithy_runtime=warn"));
        assert!(!f.would_enable("aws_smithy_runtime::client", &Level::INFO));
        assert!(f.would_enable("aws_smithy_runtime::client", &Level::WARN));
        assert!(!f.would_enable("lambda_runtime", &Level::TRACE));
        assert!(f.would_enable("lambda_runtime", &Level::DEBUG));
    }
}
