//! Presence and typing across the nodes of a cluster, through Redis (`redis` in the config).
//!
//! Both are ephemeral, so they stay out of the store's log. Each node:
//! - publishes what its hub announces (its users coming online or going offline, typing) on one
//!   channel, tagged with its node id, and applies what the other nodes publish;
//! - rewrites, every [`TICK`], a hash of who is online on it, which expires after three ticks: a
//!   node that dies drops out of everyone's picture when its hash expires;
//! - reads every other node's hash on each tick (and so after reconnecting): the full picture,
//!   which repairs whatever events were missed.
//!
//! When Redis cannot be reached, the other nodes' users show offline after the next tick and
//! their typing is not seen; chat is untouched. Every call to Redis is bounded by [`PATIENCE`],
//! and a lost connection is retried each tick.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use tidings_proto::v1::{ServerFrame, UserRef};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::hub::{Announce, Hub};

/// How often a node rewrites its own presence and reads the others'.
pub const TICK: Duration = Duration::from_secs(1);
/// The longest any call to Redis may take.
const PATIENCE: Duration = Duration::from_secs(2);
/// The channel every node publishes on.
const CHANNEL: &str = "tidings:announce";
/// The start of each node's presence hash's key.
const ONLINE: &str = "tidings:online:";

/// One announcement on the channel.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    node: String,
    #[serde(flatten)]
    what: Announce,
}

/// Connects this node's hub to the other nodes through Redis at `url`, until `shutdown`.
pub fn start(
    url: &str,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) -> Result<(), redis::RedisError> {
    let client = redis::Client::open(url)?;
    let node = format!("{:016x}", rand::random::<u64>());
    let (announce, announced) = mpsc::unbounded_channel();
    hub.announce_to(announce);
    tokio::spawn(publish(
        client.clone(),
        node.clone(),
        Arc::clone(&hub),
        announced,
        shutdown.clone(),
    ));
    tokio::spawn(subscribe(client, node, hub, shutdown));
    Ok(())
}

async fn connect(client: &redis::Client) -> Option<MultiplexedConnection> {
    match timeout(PATIENCE, client.get_multiplexed_async_connection()).await {
        Ok(Ok(conn)) => Some(conn),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "redis unavailable: presence and typing stay on this node");
            None
        }
        Err(_) => {
            tracing::warn!("redis did not answer: presence and typing stay on this node");
            None
        }
    }
}

/// Publishes this node's announcements; on each tick rewrites its presence hash and reads the
/// other nodes'.
async fn publish(
    client: redis::Client,
    node: String,
    hub: Arc<Hub>,
    mut announced: mpsc::UnboundedReceiver<Announce>,
    shutdown: CancellationToken,
) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                if let Some(conn) = &mut conn {
                    let _: Result<Result<(), _>, _> =
                        timeout(PATIENCE, conn.del(format!("{ONLINE}{node}"))).await;
                }
                return;
            }
            what = announced.recv() => {
                let Some(what) = what else { return };
                let Some(live) = &mut conn else { continue };
                let wire = Wire { node: node.clone(), what };
                let Ok(text) = serde_json::to_string(&wire) else { continue };
                let sent: Result<Result<(), _>, _> = timeout(PATIENCE, live.publish(CHANNEL, text)).await;
                if !matches!(sent, Ok(Ok(()))) {
                    conn = None;
                }
            }
            _ = tick.tick() => {
                if conn.is_none() {
                    conn = connect(&client).await;
                }
                let picture = match &mut conn {
                    Some(live) => timeout(PATIENCE, refresh(live, &node, &hub)).await,
                    None => Ok(Ok(HashMap::new())),
                };
                match picture {
                    Ok(Ok(picture)) => hub.remote_snapshot(picture),
                    failed => {
                        if let Ok(Err(err)) = failed {
                            tracing::warn!(error = %err, "redis failed; presence of other nodes unknown");
                        }
                        conn = None;
                        hub.remote_snapshot(HashMap::new());
                    }
                }
            }
        }
    }
}

/// Rewrites this node's presence hash and reads every other node's.
async fn refresh(
    conn: &mut MultiplexedConnection,
    node: &str,
    hub: &Hub,
) -> redis::RedisResult<HashMap<i64, (UserRef, HashSet<String>)>> {
    let key = format!("{ONLINE}{node}");
    let here: Vec<(i64, String)> = hub
        .online_here()
        .into_iter()
        .filter_map(|user| Some((user.id, serde_json::to_string(&user).ok()?)))
        .collect();
    let mut write = redis::pipe();
    write.atomic().del(&key);
    if !here.is_empty() {
        write.hset_multiple(&key, &here);
    }
    write.pexpire(&key, (3 * TICK).as_millis() as i64);
    let () = write.query_async(conn).await?;

    let keys: Vec<String> = {
        let mut found = Vec::new();
        let mut iter = conn.scan_match::<_, String>(format!("{ONLINE}*")).await?;
        while let Some(key) = iter.next().await {
            found.push(key?);
        }
        found
    };
    let mut picture: HashMap<i64, (UserRef, HashSet<String>)> = HashMap::new();
    for other in keys.iter().filter(|k| **k != key) {
        let users: HashMap<i64, String> = conn.hgetall(other).await?;
        let other_node = other.trim_start_matches(ONLINE).to_owned();
        for text in users.values() {
            if let Ok(user) = serde_json::from_str::<UserRef>(text) {
                picture
                    .entry(user.id)
                    .or_insert_with(|| (user, HashSet::new()))
                    .1
                    .insert(other_node.clone());
            }
        }
    }
    Ok(picture)
}

/// Applies the other nodes' announcements as they come; resubscribes after a lost connection.
async fn subscribe(
    client: redis::Client,
    node: String,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) {
    loop {
        let subscribed = async {
            let mut pubsub = timeout(PATIENCE, client.get_async_pubsub())
                .await
                .ok()?
                .ok()?;
            timeout(PATIENCE, pubsub.subscribe(CHANNEL))
                .await
                .ok()?
                .ok()?;
            Some(pubsub)
        };
        let pubsub = tokio::select! {
            _ = shutdown.cancelled() => return,
            pubsub = subscribed => pubsub,
        };
        if let Some(mut pubsub) = pubsub {
            let mut messages = pubsub.on_message();
            loop {
                let message = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    message = messages.next() => message,
                };
                let Some(message) = message else { break };
                let Ok(wire) = serde_json::from_slice::<Wire>(message.get_payload_bytes()) else {
                    continue;
                };
                if wire.node == node {
                    continue;
                }
                match wire.what {
                    Announce::Presence { user, online } => {
                        hub.remote_presence(&wire.node, user, online)
                    }
                    Announce::Typing { room, user } => {
                        hub.to_room(room, Some(user.id), &ServerFrame::Typing { room, user });
                    }
                }
            }
            tracing::warn!("lost the redis subscription; resubscribing");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}
