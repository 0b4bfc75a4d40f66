//! Fan-out: N subscribers in one room, one publisher at a fixed rate, then a rate search.
//!
//! A run connects the publisher, notes the server's memory, connects the N subscribers (a bounded
//! number of handshakes at a time), notes the memory again, then publishes in steps. Each step
//! counts only the messages it published (by sequence number), waits a bounded time for them to
//! arrive, and reads the server's CPU time around it. A subscriber the server disconnects
//! reconnects at once; what it missed counts as not delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tidings_proto::v1::{ClientFrame, EVENT_BATCH, EVENT_MESSAGE, ServerFrame};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use crate::latency::{Shards, Summary};
use crate::poll::Poller;
use crate::probe::{Clock, Probe};
use crate::process::{ServerProcess, cpu_of, own_cpu, rss_of};
use crate::search::{Criteria, RateSearch};
use crate::sse::Feed;
use crate::target::{Endpoint, Socket, Target, connect};

/// One connection attempt may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Before a step, the previous one's stragglers must have stopped arriving for this long...
const QUIET: Duration = Duration::from_millis(250);
/// ...and the subscribers it disconnected must be back, waiting at most this long for both.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);
/// Pause before a disconnected subscriber reconnects.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);
/// How often a step checks whether everything arrived.
const POLL: Duration = Duration::from_millis(5);
/// Latency shards: enough that subscriber tasks rarely meet on a lock.
const SHARDS: usize = 64;

/// How every fan-out run is shaped, whatever its size.
#[derive(Debug, Clone, Serialize)]
pub struct Shape {
    /// The fixed publish rate of the first measurement, messages per second.
    pub fixed_rate: f64,
    pub fixed_secs: f64,
    pub step_secs: f64,
    /// Most steps of the search for the most delivered at all...
    pub max_steps: usize,
    /// ...and of the search, after it, for the most delivered within the latency bound.
    pub max_latency_steps: usize,
    /// How long a step waits, once publishing ends, for the last deliveries.
    pub drain_secs: f64,
    /// Handshakes in flight at once while connecting the subscribers.
    pub connect_concurrency: usize,
    /// Connecting all subscribers must finish within this; the run goes on with those connected.
    pub connect_deadline_secs: f64,
    /// The search starts where this many deliveries a second would be (at least the fixed rate).
    pub search_start_deliveries: f64,
    pub criteria: Criteria,
}

impl Shape {
    /// The plan of a run with `subscribers`.
    pub fn plan(&self, subscribers: usize) -> Plan {
        Plan {
            subscribers,
            search_start: (self.search_start_deliveries / subscribers.max(1) as f64)
                .max(self.fixed_rate)
                .round(),
            shape: self.clone(),
        }
    }
}

/// How one fan-out run is shaped.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub subscribers: usize,
    /// Where the rate searches start, messages per second.
    pub search_start: f64,
    #[serde(flatten)]
    pub shape: Shape,
}

/// One publishing step.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The publish rate asked for, messages per second.
    pub rate: f64,
    /// Messages the schedule called for, and how many the publisher got out.
    pub scheduled: u64,
    pub published: u64,
    /// Messages received by subscribers, of `expected` = published × subscribers.
    pub delivered: u64,
    pub expected: u64,
    pub delivery_ratio: f64,
    /// From the first publish to the last delivery (or the end of the drain wait).
    pub seconds: f64,
    pub delivered_per_sec: f64,
    /// Post→received, across all subscribers.
    pub latency: Summary,
    /// Server CPU over the step, in percent of one core.
    pub server_cpu_pct: f64,
    /// This benchmark's own CPU over the step: it shares the cores with the server.
    pub loadgen_cpu_pct: f64,
    /// Subscribers the server disconnected during the step.
    pub disconnects: u64,
    /// Bytes on the subscribers' connections per delivered message.
    pub wire_bytes_per_delivery: f64,
    /// Whether the server closed the publisher's own connection during the step.
    pub publisher_dropped: bool,
    /// Delivered (≥ 99 %) with the publisher keeping up, whatever the latency.
    pub sustained: bool,
    /// Sustained, and within the latency bound.
    pub passed: bool,
}

/// What one fan-out run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub target: Target,
    pub subscribers: usize,
    /// Subscribers connected when publishing began.
    pub connected: usize,
    /// Time to connect them all (handshake done and, for Tidings, hello received).
    pub connect_secs: f64,
    pub rss_before_bytes: u64,
    pub rss_idle_bytes: u64,
    /// (RSS with the subscribers idle − RSS before them) ÷ subscribers.
    pub idle_bytes_per_connection: f64,
    /// The fixed-rate step (10 messages/s by default).
    pub fixed: Step,
    /// The rate searches, in the order tried: first for the most delivered at all, then for
    /// the most delivered within the latency bound.
    pub search: Vec<Step>,
    /// The sustained step that delivered the most per second.
    pub sustained: Option<Step>,
    /// Whether a higher rate than `sustained`'s was tried and not sustained; if not, the
    /// search ran out of steps first and `sustained` is only a lower bound.
    pub sustained_is_bounded: bool,
    /// The highest rate that passed the criteria.
    pub best: Option<Step>,
    /// Whether a higher rate was tried and failed; if not, the search ran out of steps first
    /// and `best` is only a lower bound.
    pub best_is_bounded: bool,
    /// The highest delivered/s of any step, passed or not.
    pub peak_delivered_per_sec: f64,
}

/// Counts and latencies every subscriber task writes into.
#[derive(Debug)]
struct Tally {
    clock: Clock,
    /// Probes with a lower sequence number belong to an earlier step and are ignored.
    floor: AtomicU64,
    delivered: AtomicU64,
    /// Every probe received, counted or not: shows when stragglers of a step stop arriving.
    seen: AtomicU64,
    latencies: Shards,
    connected: AtomicUsize,
    disconnects: AtomicU64,
    /// Bytes the subscribers' connections carried while counting (both ways, framing and HTTP
    /// heads included), for the bytes on the wire per delivered message.
    wire_bytes: AtomicU64,
}

impl Tally {
    /// Counts every probe in `frame` (a WebSocket frame holds one; a batch may hold several).
    fn on_frame(&self, index: usize, frame: &[u8]) {
        for probe in Probe::find_all(frame) {
            self.seen.fetch_add(1, Ordering::Relaxed);
            if probe.seq < self.floor.load(Ordering::Acquire) {
                continue;
            }
            let now = self.clock.micros();
            self.delivered.fetch_add(1, Ordering::Relaxed);
            self.latencies
                .record(index, now.saturating_sub(probe.sent_micros));
        }
    }

    /// Adds `bytes` carried while a step is being counted.
    fn on_wire(&self, bytes: u64) {
        if self.floor.load(Ordering::Acquire) != u64::MAX {
            self.wire_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Starts counting afresh from sequence number `floor`.
    fn begin(&self, floor: u64) {
        self.floor.store(floor, Ordering::Release);
        self.latencies.reset();
        self.delivered.store(0, Ordering::Release);
        self.wire_bytes.store(0, Ordering::Release);
    }
}

/// Runs the fan-out benchmark against a server that is already running (or the nodes of a
/// cluster, `servers` in the order of `endpoint.nodes`: their CPU and memory are summed).
/// The subscribers of a run, connected and at rest, and its publisher.
struct Audience {
    tally: Arc<Tally>,
    publisher: Publisher,
    subscribers: JoinSet<()>,
    cancel: CancellationToken,
    /// Cancels the subscribers however the run ends.
    _stop: tokio_util::sync::DropGuard,
    connected: usize,
    connect_secs: f64,
    rss_before: u64,
    rss_idle: u64,
    idle_bytes_per_connection: f64,
}

impl Audience {
    /// Opens the publisher, connects `plan.subscribers` and waits until they are at rest.
    async fn gather(
        endpoint: &Endpoint,
        servers: &[ServerProcess],
        plan: &Plan,
    ) -> Result<Audience> {
        let clock = Clock::start();
        let tally = Arc::new(Tally {
            clock,
            floor: AtomicU64::new(u64::MAX),
            delivered: AtomicU64::new(0),
            seen: AtomicU64::new(0),
            latencies: Shards::new(SHARDS),
            connected: AtomicUsize::new(0),
            disconnects: AtomicU64::new(0),
            wire_bytes: AtomicU64::new(0),
        });
        let publisher = Publisher::open(endpoint, clock).await?;
        // Let the server settle after the publisher's handshake before the baseline.
        sleep(Duration::from_millis(500)).await;
        let rss_before = rss_of(servers)?;

        let cancel = CancellationToken::new();
        let _stop = cancel.clone().drop_guard();
        let permits = Arc::new(Semaphore::new(plan.shape.connect_concurrency.max(1)));
        let mut subscribers = JoinSet::new();
        let started = Instant::now();
        let start = publisher.link.latest_id;
        for index in 0..plan.subscribers {
            subscribers.spawn(subscribe(
                index,
                start,
                endpoint.clone(),
                tally.clone(),
                permits.clone(),
                cancel.clone(),
            ));
        }
        let connect_deadline = started + Duration::from_secs_f64(plan.shape.connect_deadline_secs);
        while tally.connected.load(Ordering::Acquire) < plan.subscribers {
            if Instant::now() >= connect_deadline {
                tracing::warn!(
                    target = endpoint.target.name(),
                    connected = tally.connected.load(Ordering::Acquire),
                    wanted = plan.subscribers,
                    "not every subscriber connected in time; going on with those that did"
                );
                break;
            }
            sleep(POLL).await;
        }
        let connect_secs = started.elapsed().as_secs_f64();
        let connected = tally.connected.load(Ordering::Acquire);
        if connected == 0 {
            bail!("no subscriber could connect; {}", servers[0].log_tail());
        }
        // Idle for a moment so the memory reading sees connections at rest.
        sleep(Duration::from_secs(1)).await;
        let rss_idle = rss_of(servers)?;
        let idle_bytes_per_connection =
            (rss_idle.saturating_sub(rss_before)) as f64 / connected as f64;
        tracing::info!(
            target = endpoint.target.name(),
            connected,
            connect_secs = format!("{connect_secs:.2}"),
            idle_kib = format!("{:.1}", idle_bytes_per_connection / 1024.0),
            "subscribers connected"
        );
        Ok(Audience {
            tally,
            publisher,
            subscribers,
            cancel,
            _stop,
            connected,
            connect_secs,
            rss_before,
            rss_idle,
            idle_bytes_per_connection,
        })
    }

    /// Disconnects everyone.
    async fn leave(mut self) {
        self.cancel.cancel();
        self.publisher.close().await;
        self.subscribers.shutdown().await;
    }
}

pub async fn run(endpoint: &Endpoint, servers: &[ServerProcess], plan: &Plan) -> Result<Outcome> {
    let mut audience = Audience::gather(endpoint, servers, plan).await?;
    let mut steps = Stepper {
        tally: &audience.tally,
        connected: audience.connected,
        servers,
        publisher: &mut audience.publisher,
        plan,
        marks: None,
    };
    let fixed = steps
        .step(plan.shape.fixed_rate, plan.shape.fixed_secs)
        .await?;
    // First the most the server delivers at all, then — knowing how those rates fared — the
    // most it delivers within the latency bound.
    let mut tried = Vec::new();
    let mut search = RateSearch::new(plan.search_start, plan.shape.max_steps);
    while let Some(rate) = search.next_rate() {
        let step = steps.step(rate, plan.shape.step_secs).await?;
        search.record(step.sustained);
        tried.push(step);
    }
    let known: Vec<(f64, bool)> = std::iter::once(&fixed)
        .chain(&tried)
        .map(|s| (s.rate, s.passed))
        .collect();
    let mut search = RateSearch::resume(plan.search_start, plan.shape.max_latency_steps, known);
    while let Some(rate) = search.next_rate() {
        let step = steps.step(rate, plan.shape.step_secs).await?;
        search.record(step.passed);
        tried.push(step);
    }
    let all = || std::iter::once(&fixed).chain(&tried);
    let sustained = all()
        .filter(|s| s.sustained)
        .max_by(|a, b| a.delivered_per_sec.total_cmp(&b.delivered_per_sec))
        .cloned();
    let sustained_is_bounded =
        all().any(|s| !s.sustained && sustained.as_ref().is_none_or(|b| s.rate > b.rate));
    let best = search.best().and_then(|best| {
        all()
            .filter(|s| s.passed && s.rate == best)
            .max_by(|a, b| a.delivered_per_sec.total_cmp(&b.delivered_per_sec))
            .cloned()
    });
    let best_is_bounded = all().any(|s| !s.passed && best.as_ref().is_none_or(|b| s.rate > b.rate));
    let peak_delivered_per_sec = all().map(|s| s.delivered_per_sec).fold(0.0, f64::max);

    let outcome = Outcome {
        target: endpoint.target,
        subscribers: plan.subscribers,
        connected: audience.connected,
        connect_secs: audience.connect_secs,
        rss_before_bytes: audience.rss_before,
        rss_idle_bytes: audience.rss_idle,
        idle_bytes_per_connection: audience.idle_bytes_per_connection,
        fixed,
        search: tried,
        sustained,
        sustained_is_bounded,
        best,
        best_is_bounded,
        peak_delivered_per_sec,
    };
    audience.leave().await;
    Ok(outcome)
}

/// Publishes one step at a time and measures it.
struct Stepper<'a> {
    tally: &'a Tally,
    /// Subscribers connected before the first step.
    connected: usize,
    servers: &'a [ServerProcess],
    publisher: &'a mut Publisher,
    plan: &'a Plan,
    /// Told when publishing starts and when the step's deliveries are in (`--only profile`
    /// counts the server's instructions between the two).
    marks: Option<&'a dyn Fn(Mark) -> Result<()>>,
}

/// A moment of a step that `Stepper::marks` is told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Publishing,
    Delivered,
}

/// Connects `plan.subscribers`, then publishes `messages` at `rate` in one step, telling
/// `marks` when publishing starts and when every delivery is in (or the drain wait is over).
pub async fn counted(
    endpoint: &Endpoint,
    servers: &[ServerProcess],
    plan: &Plan,
    messages: u64,
    rate: f64,
    marks: &dyn Fn(Mark) -> Result<()>,
) -> Result<(usize, Step)> {
    let mut audience = Audience::gather(endpoint, servers, plan).await?;
    let mut steps = Stepper {
        tally: &audience.tally,
        connected: audience.connected,
        servers,
        publisher: &mut audience.publisher,
        plan,
        marks: Some(marks),
    };
    let step = steps.step(rate, messages as f64 / rate).await;
    let connected = audience.connected;
    audience.leave().await;
    Ok((connected, step?))
}

impl Stepper<'_> {
    /// Waits until the previous step has left the stage: no probes arriving any more and every
    /// subscriber it disconnected connected again (both bounded by [`SETTLE_LIMIT`]), so a step
    /// is never charged for the backlog of the one before.
    async fn settle(&self) {
        let give_up = Instant::now() + SETTLE_LIMIT;
        let mut seen = self.tally.seen.load(Ordering::Acquire);
        let mut quiet_since = Instant::now();
        while Instant::now() < give_up {
            sleep(POLL).await;
            let now_seen = self.tally.seen.load(Ordering::Acquire);
            if now_seen != seen {
                seen = now_seen;
                quiet_since = Instant::now();
            }
            let all_back = self.tally.connected.load(Ordering::Acquire) >= self.connected;
            if all_back && quiet_since.elapsed() >= QUIET {
                return;
            }
        }
        tracing::warn!(
            connected = self.tally.connected.load(Ordering::Acquire),
            "the previous step had not settled; going on"
        );
    }

    async fn step(&mut self, rate: f64, secs: f64) -> Result<Step> {
        let subscribers = self.plan.subscribers as u64;
        self.settle().await;
        self.tally.begin(self.publisher.next_seq);
        let disconnects_before = self.tally.disconnects.load(Ordering::Acquire);
        let cpu_before = cpu_of(self.servers)?;
        let own_before = own_cpu()?;
        if let Some(mark) = self.marks {
            mark(Mark::Publishing)?;
        }
        let started = Instant::now();
        let (scheduled, published, publisher_dropped) = self.publisher.publish(rate, secs).await?;
        let expected = published * subscribers;
        let drain_until = Instant::now() + Duration::from_secs_f64(self.plan.shape.drain_secs);
        while self.tally.delivered.load(Ordering::Acquire) < expected
            && Instant::now() < drain_until
        {
            sleep(POLL).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        if let Some(mark) = self.marks {
            mark(Mark::Delivered)?;
        }
        let cpu = cpu_of(self.servers)?.saturating_sub(cpu_before);
        let own = own_cpu()?.saturating_sub(own_before);
        // Stop counting before reading, so the figures belong to this step only.
        self.tally.floor.store(u64::MAX, Ordering::Release);
        let delivered = self.tally.delivered.load(Ordering::Acquire);
        let wire_bytes = self.tally.wire_bytes.load(Ordering::Acquire);
        let latency = Summary::of(&self.tally.latencies.merged());
        let delivery_ratio = if expected == 0 {
            0.0
        } else {
            delivered as f64 / expected as f64
        };
        let criteria = &self.plan.shape.criteria;
        let sustained =
            !publisher_dropped && criteria.sustains(scheduled, published, delivery_ratio);
        let passed = !publisher_dropped
            && criteria.passes(scheduled, published, delivery_ratio, latency.p99_ms);
        let step = Step {
            rate,
            scheduled,
            published,
            delivered,
            expected,
            delivery_ratio,
            seconds,
            delivered_per_sec: delivered as f64 / seconds.max(1e-9),
            latency,
            server_cpu_pct: 100.0 * cpu.as_secs_f64() / seconds.max(1e-9),
            loadgen_cpu_pct: 100.0 * own.as_secs_f64() / seconds.max(1e-9),
            disconnects: self.tally.disconnects.load(Ordering::Acquire) - disconnects_before,
            wire_bytes_per_delivery: wire_bytes as f64 / delivered.max(1) as f64,
            publisher_dropped,
            sustained,
            passed,
        };
        tracing::info!(
            rate,
            published,
            delivered = format!("{:.2}%", 100.0 * delivery_ratio),
            p99_ms = latency.p99_ms,
            delivered_per_sec = format!("{:.0}", step.delivered_per_sec),
            server_cpu = format!("{:.0}%", step.server_cpu_pct),
            sustained,
            passed,
            "step"
        );
        Ok(step)
    }
}

/// One subscriber: connects, reads until the server lets go, reconnects, until cancelled. An
/// HTTP stream or a poll starts from the message id `start`.
async fn subscribe(
    index: usize,
    start: i64,
    endpoint: Endpoint,
    tally: Arc<Tally>,
    permits: Arc<Semaphore>,
    cancel: CancellationToken,
) {
    // Where an HTTP stream or a poll starts, and resumes after the server ended it (its size
    // cut, or a kick).
    let mut cursor = start;
    loop {
        let opened = {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                opened = timeout(CONNECT_TIMEOUT, Subscription::open(&endpoint, index, cursor)) => opened,
            }
        };
        match opened {
            Ok(Ok(mut subscription)) => {
                tally.connected.fetch_add(1, Ordering::AcqRel);
                let cancelled = tokio::select! {
                    _ = cancel.cancelled() => true,
                    _ = subscription.read(&tally, index, &mut cursor) => false,
                };
                tally.connected.fetch_sub(1, Ordering::AcqRel);
                if cancelled {
                    return;
                }
                tally.disconnects.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(err)) => tracing::debug!(%err, "subscriber could not connect"),
            Err(_) => tracing::debug!("subscriber connect timed out"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = sleep(RECONNECT_PAUSE) => {}
        }
    }
}

/// A subscriber's open connection.
enum Subscription {
    Ws(Box<Socket>),
    /// The feed's `message` events, or the HTTP stream's `batch` events.
    Sse(Box<Feed>, &'static str),
    Poll(Box<Poller>),
}

/// Bytes of a WebSocket frame from the server carrying `len` bytes (unmasked, no extensions).
fn ws_frame_bytes(len: usize) -> u64 {
    let header = match len {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    };
    (header + len) as u64
}

impl Subscription {
    /// Connects and waits until the server has registered the subscriber: for Tidings' chat
    /// channel the hello (sent after registration), for its feed and stream the response head
    /// (likewise), for a long-poll the first answer (the next poll is then held).
    async fn open(endpoint: &Endpoint, index: usize, cursor: i64) -> Result<Subscription> {
        match (endpoint.target, &endpoint.access) {
            (Target::TidingsWs, Some(access)) => {
                let mut socket = connect(
                    endpoint.node(index),
                    "/api/ws",
                    Some(access.subscriber(index)),
                    true,
                )
                .await?;
                match socket.next().await {
                    Some(Ok(WsMessage::Text(text))) if text.contains("\"type\":\"hello\"") => {}
                    other => bail!("expected hello, got {other:?}"),
                }
                Ok(Subscription::Ws(Box::new(socket)))
            }
            (Target::TidingsSse, Some(access)) => {
                let feed = Feed::open(
                    endpoint.node(index),
                    "/api/events",
                    access.subscriber(index),
                    None,
                )
                .await?;
                Ok(Subscription::Sse(Box::new(feed), EVENT_MESSAGE))
            }
            (Target::TidingsStream, Some(access)) => {
                // At first from the newest message (nothing is replayed); after the server ended
                // a stream, from where it stopped, as a client does.
                let token = access.subscriber(index);
                let feed =
                    Feed::open(endpoint.node(index), "/api/stream", token, Some(cursor)).await?;
                Ok(Subscription::Sse(Box::new(feed), EVENT_BATCH))
            }
            (Target::TidingsPoll, Some(access)) => {
                let mut poller =
                    Poller::open(endpoint.node(index), access.subscriber(index), cursor).await?;
                poller.consume();
                poller.send().await?;
                Ok(Subscription::Poll(Box::new(poller)))
            }
            (Target::NaiveAxum | Target::NodeWs | Target::Floor, _) => {
                let socket = connect(endpoint.node(index), "/ws", None, true).await?;
                Ok(Subscription::Ws(Box::new(socket)))
            }
            (_, None) => bail!("Tidings needs a token"),
        }
    }

    /// Reads until the connection ends, keeping an HTTP stream's or a poll's `cursor`.
    async fn read(&mut self, tally: &Tally, index: usize, cursor: &mut i64) {
        match self {
            Subscription::Ws(socket) => {
                while let Some(Ok(message)) = socket.next().await {
                    match message {
                        WsMessage::Text(text) => {
                            tally.on_wire(ws_frame_bytes(text.len()));
                            tally.on_frame(index, text.as_bytes());
                        }
                        WsMessage::Close(_) => break,
                        _ => {}
                    }
                }
            }
            Subscription::Sse(feed, name) => loop {
                let before = feed.received;
                let more = feed
                    .next_events(|event| {
                        if event.name == *name {
                            tally.on_frame(index, event.data.as_bytes());
                            if let Some(id) = event.id.and_then(|id| id.parse().ok()) {
                                *cursor = id;
                            }
                        }
                    })
                    .await;
                tally.on_wire(feed.received - before);
                if !matches!(more, Ok(true)) {
                    break;
                }
            },
            Subscription::Poll(poller) => loop {
                let before = poller.wire_bytes;
                match poller.answer().await {
                    Ok(batch) => tally.on_frame(index, batch),
                    Err(_) => break,
                }
                *cursor = poller.cursor();
                poller.consume();
                let sent = poller.send().await;
                tally.on_wire(poller.wire_bytes - before);
                if sent.is_err() {
                    break;
                }
            },
        }
    }
}

/// The one publisher: its own connection, posting probes on a schedule.
struct Publisher {
    link: Link,
    endpoint: Endpoint,
    next_seq: u64,
    clock: Clock,
}

/// The publisher's connection.
struct Link {
    sink: SplitSink<Socket, WsMessage>,
    /// Reads (and discards) what the server sends the publisher, so it never counts as lagging.
    reader: JoinHandle<()>,
    /// Error frames received (a Tidings server refusing a send).
    errors: Arc<AtomicU64>,
    /// The Tidings room, or None for a peer that broadcasts raw text.
    room: Option<i64>,
    /// The newest message id when it connected (Tidings' hello says it), where a subscriber in
    /// step with the server starts; `i64::MAX` for a peer.
    latest_id: i64,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Link {
    async fn open(endpoint: &Endpoint) -> Result<Link> {
        let (socket, room, latest_id) = match &endpoint.access {
            Some(access) if endpoint.target.is_tidings() => {
                let mut socket = connect(
                    endpoint.first(),
                    "/api/ws",
                    Some(&access.publisher_token),
                    false,
                )
                .await
                .context("connecting the publisher")?;
                let latest_id = match socket.next().await {
                    Some(Ok(WsMessage::Text(text))) => match serde_json::from_str(&text) {
                        Ok(ServerFrame::Hello(hello)) => hello.latest_id,
                        _ => bail!("the publisher expected hello, got {text}"),
                    },
                    other => bail!("the publisher expected hello, got {other:?}"),
                };
                (socket, Some(access.room), latest_id)
            }
            _ => (
                connect(endpoint.first(), "/ws", None, false)
                    .await
                    .context("connecting the publisher")?,
                None,
                i64::MAX,
            ),
        };
        let (sink, mut stream) = socket.split();
        let errors = Arc::new(AtomicU64::new(0));
        let seen = errors.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                if let WsMessage::Text(text) = message
                    && text.starts_with("{\"type\":\"error\"")
                    && seen.fetch_add(1, Ordering::Relaxed) == 0
                {
                    tracing::warn!(frame = %text, "the server refused a publish");
                }
            }
        });
        Ok(Link {
            sink,
            reader,
            errors,
            room,
            latest_id,
        })
    }
}

impl Publisher {
    async fn open(endpoint: &Endpoint, clock: Clock) -> Result<Publisher> {
        Ok(Publisher {
            link: Link::open(endpoint).await?,
            endpoint: endpoint.clone(),
            next_seq: 0,
            clock,
        })
    }

    fn frame(&self, seq: u64) -> Result<WsMessage> {
        let body = Probe {
            seq,
            sent_micros: self.clock.micros(),
        }
        .body();
        let text = match self.link.room {
            Some(room) => serde_json::to_string(&ClientFrame::Send {
                room,
                client_id: format!("p{seq}"),
                body,
                reply_to: None,
                attachments: Vec::new(),
            })?,
            None => body,
        };
        Ok(WsMessage::text(text))
    }

    /// Publishes at `rate` for `secs`. Returns how many messages were scheduled, how many got
    /// out — a server that stops reading makes it smaller (bounded at 1.5 × `secs`) — and
    /// whether the server closed the publisher's connection (it is reconnected for the next
    /// step).
    async fn publish(&mut self, rate: f64, secs: f64) -> Result<(u64, u64, bool)> {
        let (scheduled, outcome) = self.publish_on_schedule(rate, secs).await;
        let errors = self.link.errors.swap(0, Ordering::Relaxed);
        if errors > 0 {
            tracing::warn!(errors, "publishes refused in this step");
        }
        match outcome {
            Ok(sent) => Ok((scheduled, sent, false)),
            Err((sent, err)) => {
                let err = format!("{err:#}");
                tracing::warn!(%err, "the publisher's connection broke; reconnecting");
                // A naive peer drops a publisher that lags behind its own broadcast.
                self.link = Link::open(&self.endpoint).await?;
                Ok((scheduled, sent, true))
            }
        }
    }

    /// The schedule itself: how many were scheduled, and how many were sent (with the error that
    /// stopped it, if any).
    async fn publish_on_schedule(
        &mut self,
        rate: f64,
        secs: f64,
    ) -> (u64, Result<u64, (u64, anyhow::Error)>) {
        let scheduled = ((rate * secs).round() as u64).max(1);
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(secs * 1.5 + 1.0);
        let mut sent = 0u64;
        while sent < scheduled {
            let due_at = started + Duration::from_secs_f64(sent as f64 / rate);
            sleep_until(due_at).await;
            let elapsed = started.elapsed().as_secs_f64();
            let due = ((elapsed * rate).floor() as u64 + 1).min(scheduled);
            let mut burst = 0;
            while sent < due {
                let frame = match self.frame(self.next_seq) {
                    Ok(frame) => frame,
                    Err(err) => return (scheduled, Err((sent, err))),
                };
                match timeout_at(deadline, self.link.sink.feed(frame)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => return (scheduled, Err((sent, err.into()))),
                    Err(_) => return (scheduled, Ok(sent)),
                }
                self.next_seq += 1;
                sent += 1;
                burst += 1;
                // Keep a burst short so the timestamps stay honest.
                if burst >= 64 {
                    break;
                }
            }
            match timeout_at(deadline, self.link.sink.flush()).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => return (scheduled, Err((sent, err.into()))),
                Err(_) => return (scheduled, Ok(sent)),
            }
        }
        (scheduled, Ok(sent))
    }

    async fn close(&mut self) {
        let _ = timeout(Duration::from_secs(2), self.link.sink.close()).await;
    }
}
