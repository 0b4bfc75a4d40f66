//! Persistence: how many messages a second the server acknowledges — an `ack` frame is sent only
//! once the message is committed — with 1, 10 and 100 concurrent senders, and the send→ack
//! latency at a fixed rate.
//!
//! Every sender is its own user alone in its own room, so no sender receives anyone else's
//! messages: the figure is the store's, not the fan-out's. Each sender pipelines its sends with a
//! bounded window of unacknowledged messages (the server reads at most 64 ahead per connection).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tidings_proto::v1::{ClientFrame, ServerFrame};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::latency::{Shards, Summary};
use crate::process::{ServerProcess, cpu_of};
use crate::target::connect;

/// How long a sender waits for its last acks after it stops sending.
const ACK_GRACE: Duration = Duration::from_secs(10);

/// How the persistence benchmark is shaped.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Concurrent senders of each flat-out run.
    pub concurrency: Vec<usize>,
    /// Unacknowledged sends each sender keeps in flight.
    pub window: usize,
    pub secs: f64,
    /// The fixed total rate of the latency run, messages per second, spread over `fixed_senders`.
    pub fixed_rate: f64,
    pub fixed_senders: usize,
}

/// One user allowed to send into one room.
#[derive(Debug, Clone)]
pub struct Sender {
    pub token: String,
    pub room: i64,
}

/// One run: some senders, flat out or at a fixed rate.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub senders: usize,
    pub window: usize,
    /// The total rate asked for; None when flat out.
    pub rate: Option<f64>,
    pub sent: u64,
    pub acked: u64,
    /// Sends answered by an error frame instead of an ack.
    pub errors: u64,
    /// From the first send to the last ack.
    pub seconds: f64,
    pub acked_per_sec: f64,
    /// Send→ack.
    pub latency: Summary,
    pub server_cpu_pct: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub runs: Vec<Run>,
    pub fixed: Run,
}

/// Runs every flat-out run of `plan`, then the fixed-rate run, against one server.
pub async fn run(server: &ServerProcess, senders: &[Sender], plan: &Plan) -> Result<Outcome> {
    let servers = std::slice::from_ref(server);
    let mut runs = Vec::new();
    for &count in &plan.concurrency {
        runs.push(one(servers, &senders[..count.min(senders.len())], plan, None).await?);
    }
    let fixed_senders = &senders[..plan.fixed_senders.min(senders.len())];
    let fixed = one(servers, fixed_senders, plan, Some(plan.fixed_rate)).await?;
    Ok(Outcome { runs, fixed })
}

/// One run of `senders`, flat out or at a total `rate`, the senders spread over `servers` in
/// turn (the nodes of a cluster: their CPU is summed).
pub async fn one(
    servers: &[ServerProcess],
    senders: &[Sender],
    plan: &Plan,
    rate: Option<f64>,
) -> Result<Run> {
    if senders.is_empty() || servers.is_empty() {
        bail!("no senders or no server");
    }
    let mut sockets = Vec::new();
    for (index, sender) in senders.iter().enumerate() {
        let node = servers[index % servers.len()].addr;
        let socket = connect(node, "/api/ws", Some(&sender.token), false).await?;
        sockets.push((socket, sender.room));
    }
    let latencies = Arc::new(Shards::new(senders.len()));
    let per_sender = rate.map(|r| r / senders.len() as f64);
    let cpu_before = cpu_of(servers)?;
    let started = Instant::now();
    let stop_at = started + Duration::from_secs_f64(plan.secs);
    let mut tasks = JoinSet::new();
    for (index, (socket, room)) in sockets.into_iter().enumerate() {
        let latencies = latencies.clone();
        let window = plan.window;
        tasks.spawn(async move {
            send_loop(
                socket, room, index, window, per_sender, started, stop_at, &latencies,
            )
            .await
        });
    }
    let mut totals = Counts::default();
    while let Some(joined) = tasks.join_next().await {
        let counts = joined.context("a sender panicked")??;
        totals.sent += counts.sent;
        totals.acked += counts.acked;
        totals.errors += counts.errors;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_of(servers)?.saturating_sub(cpu_before);
    let run = Run {
        senders: senders.len(),
        window: plan.window,
        rate,
        sent: totals.sent,
        acked: totals.acked,
        errors: totals.errors,
        seconds,
        acked_per_sec: totals.acked as f64 / seconds.max(1e-9),
        latency: Summary::of(&latencies.merged()),
        server_cpu_pct: 100.0 * cpu.as_secs_f64() / seconds.max(1e-9),
    };
    tracing::info!(
        senders = run.senders,
        rate = ?run.rate,
        acked_per_sec = format!("{:.0}", run.acked_per_sec),
        p99_ms = run.latency.p99_ms,
        errors = run.errors,
        "persistence run"
    );
    Ok(run)
}

#[derive(Debug, Default)]
struct Counts {
    sent: u64,
    acked: u64,
    errors: u64,
}

/// One sender: keeps `window` sends in flight (or follows `rate`) until `stop_at`, then waits
/// for the outstanding acks.
#[allow(clippy::too_many_arguments)]
async fn send_loop(
    mut socket: crate::target::Socket,
    room: i64,
    index: usize,
    window: usize,
    rate: Option<f64>,
    started: Instant,
    stop_at: Instant,
    latencies: &Shards,
) -> Result<Counts> {
    let mut in_flight: HashMap<u64, Instant> = HashMap::with_capacity(window);
    let mut counts = Counts::default();
    let mut seq = 0u64;
    let give_up = stop_at + ACK_GRACE;
    loop {
        let now = Instant::now();
        let sending = now < stop_at;
        if !sending && in_flight.is_empty() {
            break;
        }
        let due_at = match rate {
            Some(rate) => started + Duration::from_secs_f64(seq as f64 / rate),
            None => now,
        };
        let may_send = sending && in_flight.len() < window;
        tokio::select! {
            biased;
            incoming = socket.next() => {
                let Some(message) = incoming else {
                    bail!("the server closed a sender's connection");
                };
                if let WsMessage::Text(text) = message? {
                    on_reply(&text, &mut in_flight, &mut counts, latencies, index);
                }
            }
            _ = sleep_until(due_at), if may_send => {
                // Queue everything due that fits the window, then flush once.
                loop {
                    let frame = ClientFrame::Send {
                        room,
                        client_id: format!("b{seq}"),
                        body: format!("persistence {index} {seq}"),
                        reply_to: None,
                        attachments: Vec::new(),
                    };
                    socket.feed(WsMessage::text(serde_json::to_string(&frame)?)).await?;
                    in_flight.insert(seq, Instant::now());
                    seq += 1;
                    counts.sent += 1;
                    let due = rate.is_none_or(|r| {
                        started + Duration::from_secs_f64(seq as f64 / r) <= Instant::now()
                    });
                    if in_flight.len() >= window || !due || Instant::now() >= stop_at {
                        break;
                    }
                }
                socket.flush().await?;
            }
            _ = sleep_until(give_up) => {
                let outstanding = in_flight.len();
                tracing::warn!(outstanding, "acks still missing; giving up on them");
                break;
            }
        }
    }
    let _ = socket.close(None).await;
    Ok(counts)
}

/// Settles the send an `ack` or `error` frame answers; skips every other frame.
fn on_reply(
    text: &str,
    in_flight: &mut HashMap<u64, Instant>,
    counts: &mut Counts,
    latencies: &Shards,
    index: usize,
) {
    // Each send also comes back as a message frame: skip those without decoding.
    if text.starts_with("{\"type\":\"message\"") {
        return;
    }
    match serde_json::from_str::<ServerFrame>(text) {
        Ok(ServerFrame::Ack { client_id, .. }) => {
            if let Some(sent_at) = sequence(&client_id).and_then(|s| in_flight.remove(&s)) {
                counts.acked += 1;
                let micros = sent_at.elapsed().as_micros();
                latencies.record(index, u64::try_from(micros).unwrap_or(u64::MAX));
            }
        }
        Ok(ServerFrame::Error(error)) => {
            if counts.errors == 0 {
                tracing::warn!(code = ?error.code, message = %error.message, "a send was refused");
            }
            counts.errors += 1;
            if let Some(seq) = error.client_id.as_deref().and_then(sequence) {
                in_flight.remove(&seq);
            }
        }
        _ => {}
    }
}

/// The sequence number in a client id `b<seq>`.
fn sequence(client_id: &str) -> Option<u64> {
    client_id.strip_prefix('b')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_carry_the_sequence() {
        assert_eq!(sequence("b42"), Some(42));
        assert_eq!(sequence("p42"), None);
        assert_eq!(sequence("b"), None);
    }
}
