//! History: one page of 50 messages over HTTP, and a `Last-Event-ID` replay of 1,000 events on the
//! feed, in a room seeded with millions of messages.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tidings_proto::v1::{EVENT_MESSAGE, EVENT_RESET, HistoryPage};
use tokio::time::{Instant, timeout};

use crate::latency::Summary;
use crate::process::ServerProcess;
use crate::seed::SeededHistory;
use crate::sse::Feed;

/// Messages in a page.
const PAGE: u32 = 50;
/// Events in a replay (the server's default replay limit).
pub const REPLAY: i64 = 1000;
/// Requests before measuring, so caches are as warm as on a server that has been up a while.
const WARMUP: usize = 10;
/// One replay may take this long.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub rows: u64,
    /// Page requests measured, at each position.
    pub pages: usize,
    pub replays: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub rows: u64,
    pub seed_secs: f64,
    pub seed_rows_per_sec: f64,
    pub database_bytes: u64,
    /// The newest page of the room.
    pub page_newest: Summary,
    /// A page from the middle of the room (`before` = half the newest id).
    pub page_middle: Summary,
    /// Events per replay (1,000 unless the room is smaller).
    pub replay_events: i64,
    /// Connect with `Last-Event-ID` → the last replayed `message` event parsed.
    pub replay: Summary,
}

/// Measures pages and replays against a server whose database `seeded` filled.
pub async fn run(server: &ServerProcess, seeded: &SeededHistory, plan: &Plan) -> Result<Outcome> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    let base = format!("http://{}/api/rooms/{}/messages", server.addr, seeded.room);
    let newest = format!("{base}?limit={PAGE}");
    let middle = format!("{base}?limit={PAGE}&before={}", seeded.last_id / 2 + 1);
    let expected = u64::from(PAGE).min(seeded.rows) as usize;
    let page_newest = pages(&client, &newest, &seeded.token, plan.pages, expected).await?;
    let page_middle = pages(
        &client,
        &middle,
        &seeded.token,
        plan.pages,
        expected.min(usize::try_from(seeded.last_id / 2).unwrap_or(usize::MAX)),
    )
    .await?;

    let replay_events = REPLAY.min(seeded.last_id);
    let mut samples = Vec::with_capacity(plan.replays);
    for _ in 0..plan.replays {
        let micros = timeout(
            REPLAY_TIMEOUT,
            replay(
                server,
                &seeded.token,
                seeded.last_id - replay_events,
                replay_events,
            ),
        )
        .await
        .context("a replay took too long")??;
        samples.push(micros);
    }
    let outcome = Outcome {
        rows: seeded.rows,
        seed_secs: seeded.seconds,
        seed_rows_per_sec: seeded.rows as f64 / seeded.seconds.max(1e-9),
        database_bytes: seeded.database_bytes,
        page_newest,
        page_middle,
        replay_events,
        replay: Summary::of_samples(&samples),
    };
    tracing::info!(
        page_ms = outcome.page_newest.p50_ms,
        replay_ms = outcome.replay.p50_ms,
        "history"
    );
    Ok(outcome)
}

/// Times `count` requests of one page, after a warm-up; checks each holds `expected` messages.
async fn pages(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    count: usize,
    expected: usize,
) -> Result<Summary> {
    let mut samples = Vec::with_capacity(count);
    for i in 0..WARMUP + count {
        let started = Instant::now();
        let response = client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body = response.bytes().await?;
        let micros = started.elapsed().as_micros();
        if !status.is_success() {
            bail!("GET {url}: {status}: {}", String::from_utf8_lossy(&body));
        }
        if i == 0 {
            let page: HistoryPage =
                serde_json::from_slice(&body).context("decoding a history page")?;
            if page.messages.len() != expected {
                bail!(
                    "a history page held {} messages, not {expected}",
                    page.messages.len()
                );
            }
        }
        if i >= WARMUP {
            samples.push(u64::try_from(micros).unwrap_or(u64::MAX));
        }
    }
    Ok(Summary::of_samples(&samples))
}

/// Opens the feed resuming after `after` and waits for `events` replayed messages. Returns the
/// time taken, in microseconds.
async fn replay(server: &ServerProcess, token: &str, after: i64, events: i64) -> Result<u64> {
    let started = Instant::now();
    let mut feed = Feed::open(server.addr, "/api/events", token, Some(after)).await?;
    let mut seen = 0i64;
    let mut reset = false;
    while seen < events && !reset {
        let open = feed
            .next_events(|event| {
                if event.name == EVENT_MESSAGE {
                    seen += 1;
                } else if event.name == EVENT_RESET {
                    reset = true;
                }
            })
            .await?;
        if !open {
            bail!("the feed ended after {seen} of {events} replayed events");
        }
    }
    if reset {
        bail!("the server answered the replay with a reset");
    }
    Ok(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX))
}
