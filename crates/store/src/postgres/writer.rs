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
//! A batch is a handful of statements however many messages it holds: the checks of all its
//! messages in one (duplicates, rooms, memberships), then the ids, the inserts and the mentions,
//! each one statement over arrays, pipelined: about two round trips plus the commit's WAL flush.
//! The `log_head` lock is taken after the checks, so the other nodes wait for this batch only
//! through its inserts and commit. A `NOTIFY tidings_log` in the same transaction wakes the
//! nodes that follow the log once it commits.
//!
//! If a batch fails as a whole (a message PostgreSQL cannot store, a race with another node on a
//! client id), its messages are retried one per transaction, so the bad one fails alone. A
//! connection lost before the commit's outcome is known answers `Unavailable`: the client retries
//! with the same client id, which stores the message at most once. Fan-out does not start here
//! but from the log (`follower`), which holds every node's messages in one order.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use deadpool_postgres::{GenericClient, Pool};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::types::ToSql;

use super::attachment::{ATTACHMENT_SELECT, attachment_from};
use super::message::load_message;
use crate::Commits;
use crate::attachment::{asked, claim};
use crate::queued::{Answer, Queued};
use crate::{Attachment, Author, Inserted, Message, NewMessage, Quote, StoreError, parse_mentions};

/// How many messages may wait for the writer before callers are made to wait.
const QUEUE_DEPTH: usize = 4096;

/// The channel every node listens on for new messages.
pub(crate) const LOG_CHANNEL: &str = "tidings_log";

/// The checks of a whole batch in one statement, row `i` for message `i`: an earlier message
/// with the same author and client id, whether the room exists, whether the author is a member,
/// the author's name, and the message it answers (its author's id and name, and its body) when
/// that is a message of the same room, not deleted.
const CHECK: &str = "\
SELECT (SELECT id FROM messages m WHERE m.author_id = b.author AND m.client_id = b.client),
       EXISTS (SELECT 1 FROM rooms r WHERE r.id = b.room),
       EXISTS (SELECT 1 FROM members mb WHERE mb.room_id = b.room AND mb.user_id = b.author),
       (SELECT name FROM users u WHERE u.id = b.author),
       q.author_id, q.name, q.body
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[])
     WITH ORDINALITY AS b(room, author, client, reply, i)
LEFT JOIN LATERAL (
    SELECT r.author_id, u.name, r.body FROM messages r JOIN users u ON u.id = r.author_id
    WHERE r.id = b.reply AND r.room_id = b.room AND r.deleted_at IS NULL
) q ON true
ORDER BY b.i";

/// The batch's ids: the last of `$1` new ones. The row lock this takes is held until commit.
const TAKE_IDS: &str = "UPDATE log_head SET last_id = last_id + $1 RETURNING last_id";

/// Every new message of the batch in one statement.
const INSERT: &str = "\
INSERT INTO messages (id, room_id, author_id, client_id, body, sent_at, reply_to)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[],
                     $6::bigint[], $7::bigint[])";

/// The batch's mentions in one statement: (message, room, lowercased name) triples, kept when
/// the name is a member of the room. Answers who was mentioned in which message.
pub(super) const MENTION: &str = "\
INSERT INTO mentions (user_id, message_id)
SELECT DISTINCT u.id, t.message
FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS t(message, room, name)
JOIN users u ON lower(u.name) = t.name
JOIN members mb ON mb.user_id = u.id AND mb.room_id = t.room
RETURNING message_id, user_id";

/// The batch's attachments become their messages': (attachment, message, place in it) triples,
/// each taken only if no message has it yet. Answers how many were.
const LINK: &str = "\
UPDATE attachments SET message_id = t.message, position = t.position
FROM unnest($1::text[], $2::bigint[], $3::int[]) AS t(id, message, position)
WHERE attachments.id = t.id AND attachments.message_id IS NULL";

struct Job {
    msg: NewMessage,
    reply: oneshot::Sender<Result<Inserted, StoreError>>,
}

pub(crate) struct Writer {
    /// `None` once closed.
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    /// Becomes `true` when the task has finished.
    stopped: watch::Receiver<bool>,
    commits: std::sync::Arc<Commits>,
}

impl Writer {
    pub(crate) fn spawn(pool: Pool, max_batch: usize) -> Writer {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let (stopped_tx, stopped) = watch::channel(false);
        let commits = std::sync::Arc::new(Commits::default());
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

    pub(crate) fn commits(&self) -> &Commits {
        &self.commits
    }
}

async fn run(pool: Pool, mut jobs: mpsc::Receiver<Job>, max_batch: usize, commits: &Commits) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let messages: Vec<&NewMessage> = batch.iter().map(|job| &job.msg).collect();
        let started = Instant::now();
        match commit(&pool, &messages).await {
            Ok(results) => {
                commits.record(batch.len(), started);
                for (job, result) in batch.into_iter().zip(results) {
                    finish(job, result);
                }
            }
            // A lost connection would fail each retry the same way, one timeout at a time.
            Err(err) if batch.len() > 1 && !matches!(err, StoreError::Unavailable(_)) => {
                tracing::warn!(error = %err, size = batch.len(), "a batch of messages failed; retrying one by one");
                for job in batch {
                    let started = Instant::now();
                    let result = commit(&pool, &[&job.msg]).await;
                    if result.is_ok() {
                        commits.record(1, started);
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

/// What the checks decided for one message of a batch.
enum Fate {
    /// New: stored under the batch's `n`th new id.
    New(usize),
    /// Already stored (by an earlier batch) under this id.
    Stored(i64),
    /// The same client id as message `n` of this batch, which is new.
    Repeat(usize),
    Refused(StoreError),
}

/// Stores `messages` in one transaction. `Err` if the transaction failed (nothing of it is
/// stored); otherwise each message's own answer, in order.
///
/// A handful of statements whatever the batch's size, pipelined where they do not depend on
/// each other: the checks of every message at once, then — only if some message is new — the
/// ids from `log_head` (its lock taken as late as possible, so other nodes wait for this batch
/// only through its inserts and commit), the inserts, the mentions and the wake-up.
async fn commit(
    pool: &Pool,
    messages: &[&NewMessage],
) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let rooms: Vec<i64> = messages.iter().map(|m| m.room_id).collect();
    let authors: Vec<i64> = messages.iter().map(|m| m.author_id).collect();
    let clients: Vec<Option<&str>> = messages.iter().map(|m| m.client_id.as_deref()).collect();
    let replies: Vec<Option<i64>> = messages.iter().map(|m| m.reply_to).collect();
    let check = tx.prepare_cached(CHECK).await?;
    let checks = tx
        .query(&check, &[&rooms, &authors, &clients, &replies])
        .await?;
    if checks.len() != messages.len() {
        return Err(StoreError::Unreadable(format!(
            "the batch's checks answered {} rows for {} messages",
            checks.len(),
            messages.len()
        )));
    }

    // The attachments the batch's messages ask for, as recorded (one query, if any).
    let mut recorded: HashMap<String, Attachment> = HashMap::new();
    let asking: Vec<&str> = messages.iter().flat_map(|m| asked(m)).collect();
    if !asking.is_empty() {
        let select = tx
            .prepare_cached(&format!("{ATTACHMENT_SELECT} WHERE id = ANY($1)"))
            .await?;
        for row in tx.query(&select, &[&asking]).await? {
            let attachment = attachment_from(&row)?;
            recorded.insert(attachment.id.clone(), attachment);
        }
    }
    let mut claimed: Vec<Vec<Attachment>> = vec![Vec::new(); messages.len()];

    let mut fates = Vec::with_capacity(messages.len());
    let mut names = Vec::with_capacity(messages.len());
    let mut quotes: Vec<Option<Quote>> = Vec::with_capacity(messages.len());
    let mut new = Vec::new();
    for (index, (msg, row)) in messages.iter().zip(&checks).enumerate() {
        let earlier: Option<i64> = row.try_get(0)?;
        let found: bool = row.try_get(1)?;
        let member: bool = row.try_get(2)?;
        names.push(row.try_get::<_, Option<String>>(3)?.unwrap_or_default());
        let quote = match (msg.reply_to, row.try_get::<_, Option<i64>>(4)?) {
            (Some(id), Some(author)) => Some(Quote {
                id,
                author: Author {
                    id: author,
                    name: row.try_get(5)?,
                },
                body: row.try_get(6)?,
                deleted: false,
            }),
            _ => None,
        };
        let bad_reply = msg.reply_to.is_some() && quote.is_none();
        quotes.push(quote);
        // A retry that arrived in the same batch as its first try.
        let repeat = msg.client_id.as_ref().and_then(|client_id| {
            new.iter().position(|&n: &usize| {
                let first = messages[n];
                first.author_id == msg.author_id && first.client_id.as_ref() == Some(client_id)
            })
        });
        fates.push(match (earlier, repeat) {
            (Some(id), _) => Fate::Stored(id),
            (None, Some(n)) => Fate::Repeat(n),
            (None, None) if !found => Fate::Refused(StoreError::NotFound),
            (None, None) if !member => Fate::Refused(StoreError::NotAllowed),
            (None, None) if bad_reply => Fate::Refused(StoreError::NotInRoom),
            (None, None) => {
                let found = asked(msg)
                    .into_iter()
                    .map(|id| recorded.get(id).cloned())
                    .collect();
                match claim(msg, found) {
                    Ok(attachments) => {
                        // Taken: a later message of the batch cannot claim them too.
                        for a in &attachments {
                            if let Some(taken) = recorded.get_mut(&a.id) {
                                taken.message_id = Some(0);
                            }
                        }
                        claimed[index] = attachments;
                        new.push(index);
                        Fate::New(new.len() - 1)
                    }
                    Err(err) => Fate::Refused(err),
                }
            }
        });
    }

    let mut ids = Vec::with_capacity(new.len());
    let mut mentions: Vec<Vec<i64>> = vec![Vec::new(); new.len()];
    if !new.is_empty() {
        let count = i64::try_from(new.len())
            .map_err(|_| StoreError::Unreadable("a batch too large to number".to_owned()))?;
        let take = tx.prepare_cached(TAKE_IDS).await?;
        let last: i64 = tx.query_one(&take, &[&count]).await?.try_get(0)?;
        ids.extend(last - count + 1..=last);

        let pick = |f: &dyn Fn(&NewMessage) -> i64| -> Vec<i64> {
            new.iter().map(|&n| f(messages[n])).collect()
        };
        let (rooms, authors, sent) = (
            pick(&|m| m.room_id),
            pick(&|m| m.author_id),
            pick(&|m| m.sent_at),
        );
        let clients: Vec<Option<&str>> = new
            .iter()
            .map(|&n| messages[n].client_id.as_deref())
            .collect();
        let bodies: Vec<&str> = new.iter().map(|&n| messages[n].body.as_str()).collect();
        let (mut by_message, mut by_room, mut by_name) = (Vec::new(), Vec::new(), Vec::new());
        for (k, &n) in new.iter().enumerate() {
            // The author of the message it answers counts as mentioned.
            let answered = quotes[n]
                .as_ref()
                .filter(|q| q.author.id != messages[n].author_id)
                .map(|q| q.author.name.as_str());
            for name in parse_mentions(&messages[n].body)
                .into_iter()
                .chain(answered)
            {
                by_message.push(ids[k]);
                by_room.push(messages[n].room_id);
                by_name.push(name.to_lowercase());
            }
        }
        for (k, &n) in new.iter().enumerate() {
            for a in &mut claimed[n] {
                a.message_id = Some(ids[k]);
            }
        }
        let (mut linked_ids, mut linked_to, mut placed) = (Vec::new(), Vec::new(), Vec::new());
        for (k, &n) in new.iter().enumerate() {
            for (position, a) in (0i32..).zip(&claimed[n]) {
                linked_ids.push(a.id.as_str());
                linked_to.push(ids[k]);
                placed.push(position);
            }
        }
        let insert = tx.prepare_cached(INSERT).await?;
        let mention = tx.prepare_cached(MENTION).await?;
        // Sent back to back on the one connection; PostgreSQL runs them in this order.
        let answering: Vec<Option<i64>> = new.iter().map(|&n| messages[n].reply_to).collect();
        let columns: [&(dyn ToSql + Sync); 7] =
            [&ids, &rooms, &authors, &clients, &bodies, &sent, &answering];
        let (_, mentioned, _) = futures_util::try_join!(
            tx.execute(&insert, &columns),
            async {
                if by_message.is_empty() {
                    Ok(Vec::new())
                } else {
                    tx.query(&mention, &[&by_message, &by_room, &by_name]).await
                }
            },
            tx.execute("SELECT pg_notify($1, '')", &[&LOG_CHANNEL]),
        )?;
        if !linked_ids.is_empty() {
            let link = tx.prepare_cached(LINK).await?;
            let linked = tx
                .execute(&link, &[&linked_ids, &linked_to, &placed])
                .await?;
            // Fewer: another node's message took one since the checks. The batch fails, and
            // its messages, retried one by one, are checked again.
            if linked != linked_ids.len() as u64 {
                return Err(StoreError::AttachmentUnavailable);
            }
        }
        for row in mentioned {
            let message: i64 = row.try_get(0)?;
            let user: i64 = row.try_get(1)?;
            let list = usize::try_from(message - ids[0])
                .ok()
                .and_then(|k| mentions.get_mut(k))
                .ok_or_else(|| StoreError::Unreadable(format!("a mention of message {message}")))?;
            list.push(user);
        }
        for list in &mut mentions {
            list.sort_unstable();
        }
    }

    let new_message = |k: usize| {
        let n = new[k];
        let msg = messages[n];
        Message {
            id: ids[k],
            room_id: msg.room_id,
            author: Author {
                id: msg.author_id,
                name: names[n].clone(),
            },
            body: msg.body.clone(),
            sent_at: msg.sent_at,
            client_id: msg.client_id.clone(),
            mentions: mentions[k].clone(),
            edited_at: None,
            deleted_at: None,
            reactions: Vec::new(),
            reply_to: quotes[n].clone(),
            attachments: claimed[n].clone(),
        }
    };
    let mut results = Vec::with_capacity(messages.len());
    for fate in fates {
        results.push(match fate {
            Fate::New(k) => Ok(Inserted::New(new_message(k))),
            Fate::Repeat(k) => Ok(Inserted::Duplicate(new_message(k))),
            Fate::Stored(id) => match load_message(&tx, id).await? {
                Some(stored) => Ok(Inserted::Duplicate(stored)),
                None => Err(StoreError::NotFound),
            },
            Fate::Refused(err) => Err(err),
        });
    }
    tx.commit().await?;
    Ok(results)
}
