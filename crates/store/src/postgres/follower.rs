//! Follows the message log for this node: every message committed — by this node's writer or any
//! other node's — handed on once, in id order.
//!
//! The cursor is the truth and the notification only a wake-up. A connection of its own
//! `LISTEN`s on the writers' channel; on each notification, on each (re)connect of that
//! connection and on each tick, the follower reads `id > last ORDER BY id` and hands on what it
//! finds. Ids have no gaps and follow commit order (see `writer`), so that read misses nothing: a
//! notification lost while the connection was down delays a message by at most a tick.

use std::time::Duration;

use deadpool_postgres::Pool;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};

use super::message::{CHANGE_SELECT, MESSAGE_CHANGES, MESSAGE_SELECT, message_from};
use super::writer::LOG_CHANNEL;
use super::{change_from, get};
use crate::{FOLLOW_TICK, LogEntry, LogHandler, Message, MessageId, StoreError};

/// The most log ids read at once.
const WINDOW: i64 = 1000;
/// How long to wait before connecting again after the `LISTEN` connection failed.
const RECONNECT: Duration = Duration::from_millis(500);

pub(super) async fn run(
    config: tokio_postgres::Config,
    pool: Pool,
    mut last: MessageId,
    handler: LogHandler,
    mut closed: watch::Receiver<bool>,
) {
    let mut listening: Option<Listening> = None;
    let mut tick = tokio::time::interval(FOLLOW_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if listening.is_none() {
            // Read after (re)connecting: whatever was notified while it was down is in the log.
            listening = listen(&config).await;
        }
        if let Err(err) = catch_up(&pool, &mut last, &handler).await {
            tracing::warn!(error = %err, last, "reading the message log failed; retrying");
        }
        let woken = async {
            match &mut listening {
                Some(listening) => listening.wakeups.recv().await.is_some(),
                None => {
                    tokio::time::sleep(RECONNECT).await;
                    true
                }
            }
        };
        tokio::select! {
            alive = woken => if !alive {
                tracing::warn!("the log's LISTEN connection was lost; reconnecting");
                listening = None;
            },
            _ = tick.tick() => {}
            _ = closed.wait_for(|closed| *closed) => return,
        }
        // Several notifications may be waiting: one read covers them all.
        if let Some(listening) = &mut listening {
            while listening.wakeups.try_recv().is_ok() {}
        }
    }
}

/// The `LISTEN` connection: its notifications arrive on `wakeups`, which closes when the
/// connection is lost.
struct Listening {
    /// Keeps the connection open.
    _client: tokio_postgres::Client,
    wakeups: mpsc::UnboundedReceiver<()>,
}

/// Opens the `LISTEN` connection; `None` if it cannot be opened now.
async fn listen(config: &tokio_postgres::Config) -> Option<Listening> {
    let (client, mut connection) = match config.connect(NoTls).await {
        Ok(pair) => pair,
        Err(err) => {
            tracing::warn!(error = %err, "cannot open the log's LISTEN connection");
            return None;
        }
    };
    let (tx, wakeups) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if matches!(message, AsyncMessage::Notification(_)) && tx.send(()).is_err() {
                return;
            }
        }
        // The connection ended: dropping `tx` tells the follower.
    });
    if let Err(err) = client.batch_execute(&format!("LISTEN {LOG_CHANNEL}")).await {
        tracing::warn!(error = %err, "LISTEN failed");
        return None;
    }
    Some(Listening {
        _client: client,
        wakeups,
    })
}

/// Hands on every entry of the log after `last`, a window of ids at a time, moving `last`.
/// Every id up to the head is committed (the head's row lock orders commits), so a window below
/// it is complete: each of its ids is a message or a change, read here in one pass, in order.
async fn catch_up(
    pool: &Pool,
    last: &mut MessageId,
    handler: &LogHandler,
) -> Result<(), StoreError> {
    let client = pool.get().await?;
    let head_stmt = client
        .prepare_cached("SELECT last_id FROM log_head")
        .await?;
    let messages_stmt = client
        .prepare_cached(&format!(
            "{MESSAGE_SELECT} WHERE m.id > $1 AND m.id <= $2 ORDER BY m.id"
        ))
        .await?;
    let changes_stmt = client
        .prepare_cached(&format!(
            "SELECT id, kind, room_id, user_id, session_id, message_id FROM log_changes \
             WHERE id > $1 AND id <= $2 AND kind NOT IN {MESSAGE_CHANGES} ORDER BY id"
        ))
        .await?;
    let changed_stmt = client
        .prepare_cached(&format!(
            "{CHANGE_SELECT} WHERE c.id > $1 AND c.id <= $2 AND c.kind IN {MESSAGE_CHANGES} \
             ORDER BY c.id"
        ))
        .await?;
    loop {
        let head: MessageId = client.query_one(&head_stmt, &[]).await?.try_get(0)?;
        if head <= *last {
            return Ok(());
        }
        let upto = head.min(*last + WINDOW);
        let from = *last;
        let window: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&from, &upto];
        // Pipelined on the one connection.
        let (messages, changes, changed) = futures_util::try_join!(
            client.query(&messages_stmt, &window),
            client.query(&changes_stmt, &window),
            client.query(&changed_stmt, &window),
        )?;
        let messages = messages
            .iter()
            .map(message_from)
            .collect::<Result<Vec<_>, _>>()?;
        let changes = changes
            .iter()
            .map(|row| Ok((get(row, 0)?, change_from(row)?)))
            .collect::<Result<Vec<(MessageId, LogEntry<'static>)>, StoreError>>()?;
        let changed = changed
            .iter()
            .map(|row| Ok((get(row, 18)?, message_from(row)?)))
            .collect::<Result<Vec<(MessageId, Message)>, StoreError>>()?;
        // Merged by id: the log's order.
        let mut entries: Vec<(MessageId, LogEntry<'_>)> = messages
            .iter()
            .map(|m| (m.id, LogEntry::Message(m)))
            .chain(changes)
            .chain(
                changed
                    .iter()
                    .map(|(id, message)| (*id, LogEntry::Changed { id: *id, message })),
            )
            .collect();
        entries.sort_by_key(|(id, _)| *id);
        for (_, entry) in entries {
            handler(entry);
        }
        *last = upto;
    }
}
