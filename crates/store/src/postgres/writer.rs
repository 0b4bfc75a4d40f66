//! The message log on PostgreSQL: one writer task per node, committing messages in groups.
//!
//! Ids must follow commit order with no gap, across every node: a client's cursor is the last id
//! it has, and a reader that saw 12 before 11 committed would skip 11 for good. A sequence cannot
//! promise that (values are handed out before commit and never given back). So every batch takes
//! its ids from the one `log_head` row, updating it in the same transaction as the inserts: the
//! row lock that update takes is held until commit, so the next batch — from this node or any
//! other — waits for this one to commit (or roll back, giving the ids back) before it can number
//! its own. A reader therefore always sees a prefix of the log.
//!
//! Each message is one statement (its duplicate check, membership check, id, insert and mentions
//! together), and a batch's statements are pipelined: the batch costs about one round trip plus
//! the commit's WAL flush, however many messages it holds. A `NOTIFY tidings_log` in the same
//! transaction wakes the nodes that follow the log once it commits.
//!
//! If a batch fails as a whole (a message PostgreSQL cannot store, a race with another node on a
//! client id), its messages are retried one per transaction, so the bad one fails alone. A
//! connection lost before the commit's outcome is known answers `Unavailable`: the client retries
//! with the same client id, which stores the message at most once. Fan-out does not start here
//! but from the log (`follower`), which holds every node's messages in one order.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use deadpool_postgres::{GenericClient, Pool};
use futures_util::future::try_join_all;
use tokio::sync::{mpsc, oneshot, watch};

use super::message::load_message;
use crate::queued::{Answer, Queued};
use crate::{Author, Inserted, Message, NewMessage, StoreError, parse_mentions};

/// How many messages may wait for the writer before callers are made to wait.
const QUEUE_DEPTH: usize = 4096;

/// The channel every node listens on for new messages.
pub(crate) const LOG_CHANNEL: &str = "tidings_log";

/// One message: a duplicate check, the room and membership checks, then — only if it is new and
/// its author a member — the next id from `log_head`, the insert and its mentions. Answers
/// (earlier id, room found, author a member, new id, author's name, mentioned ids).
const INSERT: &str = "\
WITH dup AS (
    SELECT id FROM messages WHERE author_id = $2 AND client_id = $3
), place AS (
    SELECT EXISTS (SELECT 1 FROM rooms WHERE id = $1) AS found,
           EXISTS (SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2) AS member
), head AS (
    UPDATE log_head SET last_id = last_id + 1
    WHERE NOT EXISTS (SELECT 1 FROM dup) AND (SELECT member FROM place)
    RETURNING last_id
), stored AS (
    INSERT INTO messages (id, room_id, author_id, client_id, body, sent_at)
    SELECT last_id, $1, $2, $3, $4, $5 FROM head
    RETURNING id
), mentioned AS (
    INSERT INTO mentions (user_id, message_id)
    SELECT u.id, stored.id
    FROM stored, users u JOIN members mb ON mb.user_id = u.id AND mb.room_id = $1
    WHERE lower(u.name) = ANY ($6::text[])
    RETURNING user_id
)
SELECT (SELECT id FROM dup), (SELECT found FROM place), (SELECT member FROM place),
       (SELECT id FROM stored), (SELECT name FROM users WHERE id = $2),
       ARRAY(SELECT user_id FROM mentioned ORDER BY user_id)";

struct Job {
    msg: NewMessage,
    reply: oneshot::Sender<Result<Inserted, StoreError>>,
}

pub(crate) struct Writer {
    /// `None` once closed.
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    /// Becomes `true` when the task has finished.
    stopped: watch::Receiver<bool>,
    commits: std::sync::Arc<AtomicU64>,
}

impl Writer {
    pub(crate) fn spawn(pool: Pool, max_batch: usize) -> Writer {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let (stopped_tx, stopped) = watch::channel(false);
        let commits = std::sync::Arc::new(AtomicU64::new(0));
        let counted = std::sync::Arc::clone(&commits);
        tokio::spawn(async move {
            run(pool, receiver, max_batch, &counted).await;
            let _ = stopped_tx.send(true);
        });
        Writer {
            sender: Mutex::new(Some(sender)),
            stopped,
            commits,
        }
    }

    /// Queues `msg`; the answer comes once its batch has committed (or failed).
    pub(crate) async fn enqueue(&self, msg: NewMessage) -> Result<Queued<Inserted>, StoreError> {
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or(StoreError::WriterGone)?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(Job { msg, reply })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        Ok(Queued {
            answer: Answer::Direct(answer),
        })
    }

    pub(crate) async fn close(&self) {
        self.sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let mut stopped = self.stopped.clone();
        // The task ends once the queue is drained; an error means it is already gone.
        let _ = stopped.wait_for(|stopped| *stopped).await;
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_none()
    }

    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

async fn run(pool: Pool, mut jobs: mpsc::Receiver<Job>, max_batch: usize, commits: &AtomicU64) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let messages: Vec<&NewMessage> = batch.iter().map(|job| &job.msg).collect();
        match commit(&pool, &messages).await {
            Ok(results) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for (job, result) in batch.into_iter().zip(results) {
                    finish(job, result);
                }
            }
            // A lost connection would fail each retry the same way, one timeout at a time.
            Err(err) if batch.len() > 1 && !matches!(err, StoreError::Unavailable(_)) => {
                tracing::warn!(error = %err, size = batch.len(), "a batch of messages failed; retrying one by one");
                for job in batch {
                    let result = commit(&pool, &[&job.msg]).await;
                    if result.is_ok() {
                        commits.fetch_add(1, Ordering::Relaxed);
                    }
                    let result =
                        result.and_then(|mut one| one.pop().unwrap_or(Err(StoreError::WriterGone)));
                    finish(job, result);
                }
            }
            Err(err) => {
                for job in batch {
                    finish(job, Err(err.replicate()));
                }
            }
        }
    }
}

fn finish(job: Job, result: Result<Inserted, StoreError>) {
    // The caller may have stopped waiting; the message stands regardless.
    let _ = job.reply.send(result);
}

/// Stores `messages` in one transaction. `Err` if the transaction failed (nothing of it is
/// stored); otherwise each message's own answer, in order.
async fn commit(
    pool: &Pool,
    messages: &[&NewMessage],
) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let insert = tx.prepare_cached(INSERT).await?;
    // Sent back to back on the one connection: PostgreSQL runs them in this order, so ids are
    // handed out in batch order.
    let rows = try_join_all(messages.iter().map(|msg| {
        let names: Vec<String> = parse_mentions(&msg.body)
            .into_iter()
            .map(str::to_lowercase)
            .collect();
        let tx = &tx;
        let insert = &insert;
        async move {
            tx.query_one(
                insert,
                &[
                    &msg.room_id,
                    &msg.author_id,
                    &msg.client_id,
                    &msg.body,
                    &msg.sent_at,
                    &names,
                ],
            )
            .await
        }
    }))
    .await?;
    let mut results = Vec::with_capacity(rows.len());
    for (msg, row) in messages.iter().zip(&rows) {
        let earlier: Option<i64> = row.try_get(0)?;
        let found: bool = row.try_get(1)?;
        let member: bool = row.try_get(2)?;
        let stored: Option<i64> = row.try_get(3)?;
        results.push(match (stored, earlier) {
            (Some(id), _) => Ok(Inserted::New(Message {
                id,
                room_id: msg.room_id,
                author: Author {
                    id: msg.author_id,
                    name: row.try_get::<_, Option<String>>(4)?.unwrap_or_default(),
                },
                body: msg.body.clone(),
                sent_at: msg.sent_at,
                client_id: msg.client_id.clone(),
                mentions: row.try_get(5)?,
            })),
            (None, Some(id)) => match load_message(&tx, id).await? {
                Some(stored) => Ok(Inserted::Duplicate(stored)),
                None => Err(StoreError::NotFound),
            },
            (None, None) if !found => Err(StoreError::NotFound),
            (None, None) if !member => Err(StoreError::NotAllowed),
            (None, None) => Err(StoreError::NotFound),
        });
    }
    if results.iter().any(|r| matches!(r, Ok(Inserted::New(_)))) {
        tx.execute("SELECT pg_notify($1, '')", &[&LOG_CHANNEL])
            .await?;
    }
    tx.commit().await?;
    Ok(results)
}
