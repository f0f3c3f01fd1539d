//! The server's metrics, in the OpenMetrics text format Prometheus scrapes (`prometheus-client`), served on their
//! own listen address (`--metrics-listen`, off by default: never public by accident). One [`Metrics`] per server,
//! with its own registry (several servers in one process, as in the tests, count apart).
//!
//! Names follow Prometheus' conventions (`leancloud_` prefix, units in the names, counters ending in `_total`), and
//! every label has a bounded set of values: a route template (never a path with ids in it), a status code, a
//! command and operation of the realtime protocol, a hook name, a rate bucket; never a client id, a conversation
//! id or a user. Gauges of state (connections, sessions, database size) are read when scraped.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`Metrics::render`]'s answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// One of HTTP's own methods, or `OTHER`.
    pub method: &'static str,
    /// The route template (`/1.1/classes/{class}/{id}`), `other` for what no route matched.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: &'static str,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    /// The realtime command (`session`, `conv`, `direct`, …; `unknown` for a number this server does not know).
    pub cmd: String,
    /// Its operation (`open`, `start`, …), `none` without one.
    pub op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `normal`, `to_clients` or `broadcast`.
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookLabels {
    pub hook: &'static str,
    /// `ok`, `error` (an error status, a bad answer, no connection), `timeout`, `busy` (no slot free in time),
    /// `dropped` (the after-hook queue was full).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BucketLabels {
    /// `messages`, `broadcasts` (LeanCloud's RTM buckets).
    pub bucket: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LaneLabels {
    /// The SQLite writer's lane: `priority` (sends, master-key writes) or `shared` (everything else).
    pub lane: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BusLabels {
    /// `published` (sent to the other instances), `received` (from them), `rejected` (unsealed, forged, stale),
    /// `dropped` (a full queue).
    pub event: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn batch_histogram() -> Histogram {
    // 1 to 1,024 jobs.
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

/// The bus's counters since start, as the scrape reads them (PostgreSQL; all zero on SQLite).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusTotals {
    pub published: u64,
    pub received: u64,
    pub rejected: u64,
    pub dropped: u64,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Every metric of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    enabled: bool,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    realtime_commands: Family<CommandLabels, Counter>,
    messages_stored: Family<KindLabels, Counter>,
    hook_calls: Family<HookLabels, Counter>,
    rate_limited: Family<BucketLabels, Counter>,
    realtime_connections: Gauge,
    realtime_sessions: Gauge,
    database_size: Gauge,
    store_commit_duration: HistogramFamily<LaneLabels>,
    store_commit_jobs: HistogramFamily<LaneLabels>,
    bus_events: Family<BusLabels, Counter>,
    /// The bus totals of the last scrape (the counters move by the difference).
    bus_seen: std::sync::Mutex<BusTotals>,
}

impl Default for Metrics {
    /// Metrics that count nothing (a server without `--metrics-listen`, and unit tests).
    fn default() -> Self {
        Metrics::new(false)
    }
}

/// What the scrape reads of the server's state at that moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub connections: usize,
    pub sessions: usize,
    pub database_bytes: u64,
    pub bus: BusTotals,
}

impl Metrics {
    /// The metrics of one server; with `enabled` false every record call does nothing.
    pub fn new(enabled: bool) -> Metrics {
        let mut registry = Registry::with_prefix("leancloud");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = HistogramFamily::<RouteLabels>::new_with_constructor(latency_histogram);
        let realtime_commands = Family::<CommandLabels, Counter>::default();
        let messages_stored = Family::<KindLabels, Counter>::default();
        let hook_calls = Family::<HookLabels, Counter>::default();
        let rate_limited = Family::<BucketLabels, Counter>::default();
        let (realtime_connections, realtime_sessions, database_size) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        let store_commit_duration =
            HistogramFamily::<LaneLabels>::new_with_constructor(latency_histogram);
        let store_commit_jobs =
            HistogramFamily::<LaneLabels>::new_with_constructor(batch_histogram);
        let bus_events = Family::<BusLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template and status",
            http_requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its answer, by route template",
            Unit::Seconds,
            http_duration.clone(),
        );
        registry.register(
            "realtime_commands",
            "Realtime (WebSocket) commands received, by command and operation",
            realtime_commands.clone(),
        );
        registry.register(
            "messages_stored",
            "Messages and broadcasts stored (REST and realtime sends), by kind",
            messages_stored.clone(),
        );
        registry.register(
            "hook_calls",
            "Calls of the app's hooks (Cloud Engine), by hook and outcome",
            hook_calls.clone(),
        );
        registry.register(
            "rate_limited",
            "Sends refused by LeanCloud's rate-limit buckets (429), by bucket",
            rate_limited.clone(),
        );
        registry.register(
            "realtime_connections",
            "Open WebSocket connections of this instance",
            realtime_connections.clone(),
        );
        registry.register(
            "realtime_sessions",
            "Logged-in realtime sessions (client ids) of this instance",
            realtime_sessions.clone(),
        );
        registry.register_with_unit(
            "database_size",
            "Size of the database (the SQLite file and its WAL; the PostgreSQL database)",
            Unit::Bytes,
            database_size.clone(),
        );
        registry.register_with_unit(
            "store_commit_duration",
            "Time of one SQLite group commit (every job in one transaction), by the lane of its first job",
            Unit::Seconds,
            store_commit_duration.clone(),
        );
        registry.register(
            "store_commit_jobs",
            "Jobs per lane in one SQLite group commit",
            store_commit_jobs.clone(),
        );
        registry.register(
            "bus_events",
            "Events between instances on PostgreSQL (LISTEN/NOTIFY), by what became of them",
            bus_events.clone(),
        );
        Metrics {
            registry,
            enabled,
            http_requests,
            http_duration,
            realtime_commands,
            messages_stored,
            hook_calls,
            rate_limited,
            realtime_connections,
            realtime_sessions,
            database_size,
            store_commit_duration,
            store_commit_jobs,
            bus_events,
            bus_seen: std::sync::Mutex::new(BusTotals::default()),
        }
    }

    /// One SQLite group commit: `priority` and `shared` jobs in `seconds`.
    pub fn commit(&self, priority: usize, shared: usize, seconds: f64) {
        if !self.enabled {
            return;
        }
        let first = if priority > 0 { "priority" } else { "shared" };
        self.store_commit_duration
            .get_or_create(&LaneLabels { lane: first })
            .observe(seconds);
        for (lane, jobs) in [("priority", priority), ("shared", shared)] {
            if jobs > 0 {
                self.store_commit_jobs
                    .get_or_create(&LaneLabels { lane })
                    .observe(jobs as f64);
            }
        }
    }

    /// Whether anything is counted.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// One HTTP request answered. A method outside HTTP's own is counted as `OTHER`: a client chooses the method
    /// token, and a label must not grow with what clients send.
    pub fn http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if !self.enabled {
            return;
        }
        const KNOWN: [&str; 9] = [
            "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT",
        ];
        let method = KNOWN
            .into_iter()
            .find(|known| *known == method)
            .unwrap_or("OTHER");
        let route = route.to_string();
        self.http_duration
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(seconds);
        self.http_requests
            .get_or_create(&HttpLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// One realtime command received (`cmd` and `op` as the protocol names them, lower case).
    pub fn command(&self, cmd: &str, op: &str) {
        if self.enabled {
            self.realtime_commands
                .get_or_create(&CommandLabels {
                    cmd: cmd.to_string(),
                    op: op.to_string(),
                })
                .inc();
        }
    }

    /// One message of `kind` stored.
    pub fn stored(&self, kind: &'static str) {
        if self.enabled {
            self.messages_stored
                .get_or_create(&KindLabels { kind })
                .inc();
        }
    }

    /// One hook call, with its outcome.
    pub fn hook(&self, hook: &'static str, outcome: &'static str) {
        if self.enabled {
            self.hook_calls
                .get_or_create(&HookLabels { hook, outcome })
                .inc();
        }
    }

    /// One send refused by a rate-limit bucket.
    pub fn rate_limited(&self, bucket: &'static str) {
        if self.enabled {
            self.rate_limited
                .get_or_create(&BucketLabels { bucket })
                .inc();
        }
    }

    /// The text a scrape gets, with the state gauges set from `now`.
    pub fn render(&self, now: Snapshot) -> String {
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.realtime_connections.set(gauge(now.connections as u64));
        self.realtime_sessions.set(gauge(now.sessions as u64));
        self.database_size.set(gauge(now.database_bytes));
        if let Ok(mut seen) = self.bus_seen.lock() {
            for (event, total, last) in [
                ("published", now.bus.published, seen.published),
                ("received", now.bus.received, seen.received),
                ("rejected", now.bus.rejected, seen.rejected),
                ("dropped", now.bus.dropped, seen.dropped),
            ] {
                let counter = self.bus_events.get_or_create(&BusLabels { event });
                counter.inc_by(total.saturating_sub(last));
            }
            *seen = now.bus;
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_render_with_their_conventional_names_and_only_when_enabled() {
        let off = Metrics::default();
        off.http("GET", "/1.1/date", 200, 0.001);
        assert!(!off
            .render(Snapshot::default())
            .contains("route=\"/1.1/date\""));

        let on = Metrics::new(true);
        on.http("GET", "/1.1/date", 200, 0.001);
        on.http("GET", "/1.1/date", 200, 0.002);
        on.command("session", "open");
        on.stored("normal");
        on.hook("_messageReceived", "timeout");
        on.rate_limited("messages");
        on.commit(3, 1, 0.002);
        on.commit(0, 2, 0.001);
        let bus = |published| BusTotals {
            published,
            received: 4,
            ..BusTotals::default()
        };
        on.render(Snapshot {
            bus: bus(5),
            ..Snapshot::default()
        });
        on.http("BREW", "other", 405, 0.001);
        on.http("PROPFIND-7f3a", "other", 405, 0.001);
        let text = on.render(Snapshot {
            connections: 3,
            sessions: 2,
            database_bytes: 4096,
            bus: bus(7),
        });
        for line in [
            "leancloud_http_requests_total{method=\"GET\",route=\"/1.1/date\",status=\"200\"} 2",
            "leancloud_http_request_duration_seconds_count{method=\"GET\",route=\"/1.1/date\"} 2",
            "leancloud_realtime_commands_total{cmd=\"session\",op=\"open\"} 1",
            "leancloud_messages_stored_total{kind=\"normal\"} 1",
            "leancloud_hook_calls_total{hook=\"_messageReceived\",outcome=\"timeout\"} 1",
            "leancloud_rate_limited_total{bucket=\"messages\"} 1",
            "leancloud_realtime_connections 3",
            "leancloud_realtime_sessions 2",
            "leancloud_database_size_bytes 4096",
            "leancloud_store_commit_duration_seconds_count{lane=\"priority\"} 1",
            "leancloud_store_commit_duration_seconds_count{lane=\"shared\"} 1",
            "leancloud_store_commit_jobs_sum{lane=\"priority\"} 3.0",
            "leancloud_store_commit_jobs_sum{lane=\"shared\"} 3.0",
            "leancloud_bus_events_total{event=\"published\"} 7",
            "leancloud_bus_events_total{event=\"received\"} 4",
            "leancloud_bus_events_total{event=\"rejected\"} 0",
            "leancloud_http_requests_total{method=\"OTHER\",route=\"other\",status=\"405\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        assert!(
            !text.contains("BREW") && !text.contains("PROPFIND"),
            "{text}"
        );
    }
}
