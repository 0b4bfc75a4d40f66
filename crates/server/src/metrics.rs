//! What the server counts for the person who hosts it, in Prometheus' text format: served on
//! `/metrics` of a listener of its own (`metrics.listen`, off by default), never on the public
//! one. One registry per server, not a process-wide one, so a desktop app hosting its group (or a
//! test running many servers) counts each server apart.
//!
//! That listener also answers `/healthz` and `/readyz`, as the public one does (see `app`).

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::app::AppState;

/// A transport, as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Transport {
    pub transport: &'static str,
}

/// The transports connections are counted by: the chat channel's `websocket`, `stream` (SSE,
/// streaming, iframe) and `poll` (long and short), and the event `feed`.
pub const TRANSPORTS: [&str; 4] = ["websocket", "stream", "poll", "feed"];

/// The server's counters and gauges.
pub struct Metrics {
    registry: Registry,
    connections: Family<Transport, Gauge>,
    /// Messages stored (by any node, on PostgreSQL: each node counts what its log follower sees).
    pub messages_stored: Counter,
    /// Logins refused for a wrong name or password.
    pub logins_rejected: Counter,
    /// Feeds opened with a `Last-Event-ID` and replayed from the store.
    pub feed_replays: Counter,
    /// Connections ended because their queue was full (close code 4000).
    pub queue_kicks: Counter,
    /// How long handing one stored message to every connection of its room took, in seconds:
    /// queued for each, or handed to the fan-out's tasks, which write to the sockets after.
    pub fanout_seconds: Histogram,
    /// How long the store's write transactions took, from their start to their commit.
    commit_seconds: Histogram,
    /// How many writes each of those transactions committed together.
    commit_writes: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tidings");
        let connections = Family::<Transport, Gauge>::default();
        registry.register(
            "connections",
            "Open chat and feed connections, by transport",
            connections.clone(),
        );
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let messages_stored = counter(&mut registry, "messages_stored", "Messages stored");
        let logins_rejected = counter(
            &mut registry,
            "logins_rejected",
            "Logins refused for a wrong name or password",
        );
        let feed_replays = counter(
            &mut registry,
            "feed_replays",
            "Event feeds resumed from Last-Event-ID and replayed from the store",
        );
        let queue_kicks = counter(
            &mut registry,
            "queue_kicks",
            "Connections ended because they fell too far behind (close code 4000)",
        );
        // 10 µs to about 1.3 s.
        let fanout_seconds = Histogram::new(exponential_buckets(1e-5, 2.0, 18));
        registry.register(
            "fanout_seconds",
            "Time to hand one stored message to every connection of its room",
            fanout_seconds.clone(),
        );
        // 50 µs to about 1.6 s.
        let commit_seconds = Histogram::new(exponential_buckets(5e-5, 2.0, 16));
        registry.register(
            "store_commit_seconds",
            "Time of each of the store's write transactions, to its commit",
            commit_seconds.clone(),
        );
        // 1 to 1024: the writer commits at most 512 at once.
        let commit_writes = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register(
            "store_commit_writes",
            "Writes committed together in one of the store's transactions",
            commit_writes.clone(),
        );
        Metrics {
            commit_seconds,
            commit_writes,
            fanout_seconds,
            registry,
            connections,
            messages_stored,
            logins_rejected,
            feed_replays,
            queue_kicks,
        }
    }
}

impl Metrics {
    /// Counts one open connection over `transport` until the guard is dropped.
    pub fn connection(&self, transport: &'static str) -> Counted {
        let gauge = self
            .connections
            .get_or_create(&Transport { transport })
            .clone();
        gauge.inc();
        Counted(gauge)
    }

    /// Open connections on this server, by transport, every transport listed.
    pub fn connections_by_transport(&self) -> Vec<(&'static str, u64)> {
        TRANSPORTS
            .iter()
            .map(|&transport| {
                let open = self
                    .connections
                    .get_or_create(&Transport { transport })
                    .get();
                (transport, u64::try_from(open).unwrap_or(0))
            })
            .collect()
    }

    /// What to tell of each of the store's commits (see `Store::observe_commits`).
    pub fn commit_observer(&self) -> impl Fn(tidings_store::Commit) + Send + Sync + 'static {
        let (seconds, writes) = (self.commit_seconds.clone(), self.commit_writes.clone());
        move |commit| {
            seconds.observe(commit.took.as_secs_f64());
            writes.observe(commit.writes as f64);
        }
    }

    /// Everything, in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One connection counted in `tidings_connections` while it lives.
pub struct Counted(Gauge);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// The metrics listener's routes: `/metrics`, `/healthz`, `/readyz`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(crate::app::health))
        .route("/readyz", get(crate::app::ready))
        .with_state(state)
}
