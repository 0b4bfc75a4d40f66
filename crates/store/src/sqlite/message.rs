//! Messages on SQLite: stored idempotently in the writer's group commit, history pages, catch-up.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::Sqlite;
use super::account::insert_audit;
use super::room::{is_member, load_room};
use crate::Queued;
use crate::attachment::{asked, carried, claim};
use crate::message::{Quote, Target, allowed, audited, group_reactions, merge_replay};
use crate::{
    Attachment, Author, Change, Changed, Inserted, LogEntry, MAX_REACTIONS_PER_MESSAGE, Message,
    MessageChange, MessageId, Millis, NewMessage, Replayed, RoomId, SEARCH_TIME_LIMIT, Search,
    StoreError, UserId, parse_mentions,
};

/// The columns of a message, with its author's name, its mentions (a comma-separated list), its
/// reactions (records of emoji, user and time), the message it answers (`r`, its author `ru`)
/// and its attachments (a JSON array, see `attachment::carried`; looked for only when there are
/// some, which keeps a replay of messages without any within a few percent of what it was),
/// parsed by `message_from`.
macro_rules! message_columns {
    () => {
        "SELECT m.id, m.room_id, m.author_id, u.name, m.body, m.sent_at, m.client_id,
       (SELECT group_concat(mn.user_id) FROM mentions mn WHERE mn.message_id = m.id),
       m.edited_at, m.deleted_at,
       (SELECT group_concat(x.emoji || char(31) || x.user_id || char(31) || x.at, char(30))
        FROM reactions x WHERE x.message_id = m.id),
       m.reply_to, r.author_id, ru.name, r.body, r.deleted_at IS NOT NULL,
       CASE WHEN m.deleted_at IS NULL
                 AND EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = m.id) THEN
         (SELECT json_group_array(json_array(a.id, a.name, a.content_type, a.size, a.width,
                                             a.height, a.created_at) ORDER BY a.position)
          FROM attachments a WHERE a.message_id = m.id)
       END"
    };
}

/// The joins `message_columns!` reads the author and the message answered from.
macro_rules! message_joins {
    () => {
        " JOIN users u ON u.id = m.author_id \
         LEFT JOIN messages r ON r.id = m.reply_to LEFT JOIN users ru ON ru.id = r.author_id"
    };
}

/// Messages; callers add the WHERE clause.
const MESSAGE_SELECT: &str = concat!(message_columns!(), " FROM messages m", message_joins!());

/// A changed message as it now is, and after its columns the change's id.
const CHANGE_SELECT: &str = concat!(
    message_columns!(),
    ", c.id FROM message_changes c JOIN messages m ON m.id = c.message_id",
    message_joins!()
);

fn unreadable(at: usize, err: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(at, rusqlite::types::Type::Text, Box::new(err))
}

fn message_from(row: &Row<'_>) -> rusqlite::Result<Message> {
    let mentioned: Option<String> = row.get(7)?;
    let mut mentions = mentioned
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|id| !id.is_empty())
        .map(|id| id.parse::<UserId>().map_err(|err| unreadable(7, err)))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    mentions.sort_unstable();
    mentions.dedup();
    let reacted: Option<String> = row.get(10)?;
    let mut reactions = Vec::new();
    for record in reacted.as_deref().unwrap_or("").split('\u{1e}') {
        let mut fields = record.split('\u{1f}');
        if let (Some(emoji), Some(user), Some(at)) = (fields.next(), fields.next(), fields.next()) {
            let user = user.parse::<UserId>().map_err(|err| unreadable(10, err))?;
            let at = at.parse::<Millis>().map_err(|err| unreadable(10, err))?;
            reactions.push((emoji.to_owned(), user, at));
        }
    }
    let (id, room_id, author_id) = (row.get(0)?, row.get(1)?, row.get(2)?);
    let attachments = carried(row.get_ref(16)?.as_str_or_null()?, room_id, author_id, id)
        .map_err(|err| unreadable(16, err))?;
    Ok(Message {
        id,
        room_id,
        author: Author {
            id: author_id,
            name: row.get(3)?,
        },
        body: row.get(4)?,
        sent_at: row.get(5)?,
        client_id: row.get(6)?,
        mentions,
        edited_at: row.get(8)?,
        deleted_at: row.get(9)?,
        reactions: group_reactions(reactions),
        reply_to: match row.get::<_, Option<MessageId>>(11)? {
            None => None,
            Some(id) => Some(Quote {
                id,
                author: Author {
                    id: row.get(12)?,
                    name: row.get(13)?,
                },
                body: row.get(14)?,
                deleted: row.get(15)?,
            }),
        },
        attachments,
    })
}

fn load_message(conn: &Connection, id: MessageId) -> Result<Option<Message>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("{MESSAGE_SELECT} WHERE m.id = ?1"))?
        .query_row([id], message_from)
        .optional()?)
}

/// How many messages wait to be indexed for search before the writer indexes them (see
/// `migrations/server/0006_search_in_bulk.sql`): a commit that writes a segment of the index per
/// message costs durable sends about 40 % of their rate, one per this many almost nothing.
pub(crate) const SEARCH_INDEX_BATCH: MessageId = 1024;

/// The newest message the search index holds: every message up to it is in it.
fn indexed_up_to(conn: &Connection) -> Result<MessageId, StoreError> {
    Ok(conn
        .prepare_cached("SELECT indexed_up_to FROM search_state")?
        .query_row([], |row| row.get(0))?)
}

/// Adds the messages stored since the search index's newest to it, inside the writer's
/// transaction: each as it now is (edited, or deleted and empty).
fn index_for_search(conn: &Connection) -> Result<(), StoreError> {
    let from = indexed_up_to(conn)?;
    let to: MessageId = conn
        .prepare_cached("SELECT coalesce(max(id), 0) FROM messages")?
        .query_row([], |row| row.get(0))?;
    if to <= from {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO message_search (rowid, body) \
         SELECT id, body FROM messages WHERE id > ?1 AND id <= ?2",
    )?
    .execute(params![from, to])?;
    conn.prepare_cached("UPDATE search_state SET indexed_up_to = ?1")?
        .execute([to])?;
    Ok(())
}

/// Stores `msg` (or finds its earlier copy) inside the writer's transaction.
fn insert(conn: &Connection, msg: NewMessage) -> Result<Inserted, StoreError> {
    if let Some(client_id) = &msg.client_id {
        let earlier: Option<MessageId> = conn
            .prepare_cached("SELECT id FROM messages WHERE author_id = ?1 AND client_id = ?2")?
            .query_row(params![msg.author_id, client_id], |row| row.get(0))
            .optional()?;
        if let Some(id) = earlier {
            let stored = load_message(conn, id)?.ok_or(StoreError::NotFound)?;
            return Ok(Inserted::Duplicate(stored));
        }
    }
    if load_room(conn, msg.room_id)?.is_none() {
        return Err(StoreError::NotFound);
    }
    // Checked in the same transaction as the insert, so a concurrent leave cannot slip between.
    if !is_member(conn, msg.room_id, msg.author_id)? {
        return Err(StoreError::NotAllowed);
    }
    let author_name: String = conn
        .prepare_cached("SELECT name FROM users WHERE id = ?1")?
        .query_row([msg.author_id], |row| row.get(0))?;
    let quote = match msg.reply_to {
        None => None,
        Some(answered) => Some(
            conn.prepare_cached(
                "SELECT r.author_id, u.name, r.body FROM messages r \
                 JOIN users u ON u.id = r.author_id \
                 WHERE r.id = ?1 AND r.room_id = ?2 AND r.deleted_at IS NULL",
            )?
            .query_row(params![answered, msg.room_id], |row| {
                Ok(Quote {
                    id: answered,
                    author: Author {
                        id: row.get(0)?,
                        name: row.get(1)?,
                    },
                    body: row.get(2)?,
                    deleted: false,
                })
            })
            .optional()?
            .ok_or(StoreError::NotInRoom)?,
        ),
    };
    let attachments = claim_attachments(conn, &msg)?;
    conn.prepare_cached(
        "INSERT INTO messages (room_id, author_id, client_id, body, sent_at, reply_to) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        msg.room_id,
        msg.author_id,
        msg.client_id,
        msg.body,
        msg.sent_at,
        msg.reply_to
    ])?;
    let id = conn.last_insert_rowid();
    for (position, attachment) in attachments.iter().enumerate() {
        conn.prepare_cached("UPDATE attachments SET message_id = ?1, position = ?2 WHERE id = ?3")?
            .execute(params![id, position as i64, attachment.id])?;
    }
    if id - indexed_up_to(conn)? >= SEARCH_INDEX_BATCH {
        index_for_search(conn)?;
    }

    // The author of the message answered counts as mentioned (unless it is the same person).
    let answered = quote
        .as_ref()
        .filter(|q| q.author.id != msg.author_id)
        .map(|q| q.author.name.as_str());
    let mentions = record_mentions(conn, msg.room_id, id, &msg.body, answered)?;

    Ok(Inserted::New(Message {
        id,
        room_id: msg.room_id,
        author: Author {
            id: msg.author_id,
            name: author_name,
        },
        body: msg.body,
        sent_at: msg.sent_at,
        client_id: msg.client_id,
        mentions,
        edited_at: None,
        deleted_at: None,
        reactions: Vec::new(),
        reply_to: quote,
        attachments: attachments
            .into_iter()
            .map(|a| Attachment {
                message_id: Some(id),
                ..a
            })
            .collect(),
    }))
}

/// The attachments `msg` may carry (see `attachment::claim`), read in the writer's transaction.
fn claim_attachments(conn: &Connection, msg: &NewMessage) -> Result<Vec<Attachment>, StoreError> {
    let mut found = Vec::with_capacity(msg.attachments.len());
    for id in asked(msg) {
        found.push(super::attachment::load(conn, id)?);
    }
    claim(msg, found)
}

/// Records the members of `room` that `body` mentions (and `answered`, the author of the message
/// it replies to) as mentioned by message `id`; returns them, sorted.
fn record_mentions(
    conn: &Connection,
    room: RoomId,
    id: MessageId,
    body: &str,
    answered: Option<&str>,
) -> Result<Vec<UserId>, StoreError> {
    let mut mentions = Vec::new();
    for name in parse_mentions(body).into_iter().chain(answered) {
        // `u.name` compares case-insensitively: the column is COLLATE NOCASE.
        let member: Option<UserId> = conn
            .prepare_cached(
                "SELECT u.id FROM users u JOIN members mb ON mb.user_id = u.id \
                 WHERE u.name = ?2 AND mb.room_id = ?1",
            )?
            .query_row(params![room, name], |row| row.get(0))
            .optional()?;
        if let Some(user) = member {
            mentions.push(user);
        }
    }
    mentions.sort_unstable();
    mentions.dedup();
    for &user in &mentions {
        conn.prepare_cached("INSERT INTO mentions (user_id, message_id) VALUES (?1, ?2)")?
            .execute([user, id])?;
    }
    Ok(mentions)
}

/// Makes `change` inside the writer's transaction.
fn change(conn: &Connection, change: MessageChange) -> Result<Changed, StoreError> {
    let id = change.message_id;
    let target = conn
        .prepare_cached(
            "SELECT room_id, author_id, body, deleted_at IS NOT NULL FROM messages WHERE id = ?1",
        )?
        .query_row([id], |row| {
            Ok(Target {
                room_id: row.get(0)?,
                author_id: row.get(1)?,
                body: row.get(2)?,
                deleted: row.get(3)?,
            })
        })
        .optional()?
        .ok_or(StoreError::NotFound)?;
    let member = is_member(conn, target.room_id, change.user_id)?;
    let unchanged = |conn| {
        Ok(Changed::Unchanged(
            load_message(conn, id)?.ok_or(StoreError::NotFound)?,
        ))
    };
    if !allowed(&target, member, &change)? {
        return unchanged(conn);
    }
    let kind = match &change.change {
        Change::Edit { body } => {
            conn.prepare_cached("UPDATE messages SET body = ?2, edited_at = ?3 WHERE id = ?1")?
                .execute(params![id, body, change.at])?;
            conn.prepare_cached("DELETE FROM mentions WHERE message_id = ?1")?
                .execute([id])?;
            let answered: Option<String> = conn
                .prepare_cached(
                    "SELECT u.name FROM messages m JOIN messages r ON r.id = m.reply_to \
                     JOIN users u ON u.id = r.author_id \
                     WHERE m.id = ?1 AND r.author_id != m.author_id",
                )?
                .query_row([id], |row| row.get(0))
                .optional()?;
            record_mentions(conn, target.room_id, id, body, answered.as_deref())?;
            "edited"
        }
        Change::Delete => {
            conn.prepare_cached(
                "UPDATE messages SET body = '', edited_at = NULL, deleted_at = ?2 WHERE id = ?1",
            )?
            .execute(params![id, change.at])?;
            if let Some(entry) = audited(&target, &change) {
                insert_audit(conn, &entry)?;
            }
            conn.prepare_cached("DELETE FROM mentions WHERE message_id = ?1")?
                .execute([id])?;
            conn.prepare_cached("DELETE FROM reactions WHERE message_id = ?1")?
                .execute([id])?;
            "deleted"
        }
        Change::React { emoji } => {
            let (kinds, have): (i64, bool) = conn
                .prepare_cached(
                    "SELECT count(DISTINCT emoji), coalesce(max(emoji = ?2), 0) \
                     FROM reactions WHERE message_id = ?1",
                )?
                .query_row(params![id, emoji], |row| Ok((row.get(0)?, row.get(1)?)))?;
            if !have && kinds >= MAX_REACTIONS_PER_MESSAGE as i64 {
                return Err(StoreError::TooMany("reactions on this message"));
            }
            let added = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO reactions (message_id, emoji, user_id, at) \
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![id, emoji, change.user_id, change.at])?;
            if added == 0 {
                return unchanged(conn);
            }
            "reacted"
        }
        Change::Unreact { emoji } => {
            let removed = conn
                .prepare_cached(
                    "DELETE FROM reactions WHERE message_id = ?1 AND emoji = ?2 AND user_id = ?3",
                )?
                .execute(params![id, emoji, change.user_id])?;
            if removed == 0 {
                return unchanged(conn);
            }
            "reacted"
        }
    };
    let entry = next_log_id(conn)?;
    conn.prepare_cached(
        "INSERT INTO message_changes (id, room_id, message_id, user_id, kind, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        entry,
        target.room_id,
        id,
        change.user_id,
        kind,
        change.at
    ])?;
    Ok(Changed::Logged {
        id: entry,
        message: load_message(conn, id)?.ok_or(StoreError::NotFound)?,
    })
}

/// Takes the next id of the log from the messages' AUTOINCREMENT counter, so the next message
/// gets a greater one: messages and changes share one increasing sequence. (SQLite's next
/// AUTOINCREMENT id is one more than the larger of this counter and the largest id in use.)
fn next_log_id(conn: &Connection) -> Result<MessageId, StoreError> {
    conn.prepare_cached(
        "INSERT INTO sqlite_sequence (name, seq) \
         SELECT 'messages', (SELECT coalesce(max(id), 0) FROM messages) \
         WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'messages')",
    )?
    .execute([])?;
    Ok(conn
        .prepare_cached(
            "UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = 'messages' RETURNING seq",
        )?
        .query_row([], |row| row.get(0))?)
}

impl Sqlite {
    pub async fn history(
        &self,
        room: RoomId,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "{MESSAGE_SELECT} WHERE m.room_id = ?1 AND m.id < ?2 ORDER BY m.id DESC LIMIT ?3"
            ))?;
            let mut page = stmt
                .query_map(
                    params![room, before.unwrap_or(MessageId::MAX), limit],
                    message_from,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            page.reverse();
            Ok(page)
        })
        .await
    }

    pub async fn messages_since(
        &self,
        user: UserId,
        after: MessageId,
        limit: u32,
    ) -> Result<Vec<Replayed>, StoreError> {
        self.read(move |conn| {
            // One snapshot for both reads, so the two lists agree on where the log ends.
            let tx = conn.unchecked_transaction()?;
            let messages = tx
                .prepare_cached(&format!(
                    "{MESSAGE_SELECT} WHERE m.id > ?2 \
                     AND m.room_id IN (SELECT room_id FROM members WHERE user_id = ?1) \
                     ORDER BY m.id LIMIT ?3"
                ))?
                .query_map(params![user, after, limit], message_from)?
                .collect::<Result<_, _>>()?;
            let changes = tx
                .prepare_cached(&format!(
                    "{CHANGE_SELECT} WHERE c.id > ?2 \
                     AND c.room_id IN (SELECT room_id FROM members WHERE user_id = ?1) \
                     ORDER BY c.id LIMIT ?3"
                ))?
                .query_map(params![user, after, limit], |row| {
                    Ok((row.get(17)?, message_from(row)?))
                })?
                .collect::<Result<_, _>>()?;
            Ok(merge_replay(messages, changes, limit as usize))
        })
        .await
    }

    pub async fn search(&self, search: Search) -> Result<Vec<Message>, StoreError> {
        // The index first takes in every message committed so far.
        self.inner.writer.write(index_for_search).await?;
        self.read(move |conn| {
            // Stopped by SQLite's progress handler once past the limit: a search of a word in
            // millions of messages of rooms the user is not in walks them all.
            let deadline = std::time::Instant::now() + SEARCH_TIME_LIMIT;
            conn.progress_handler(10_000, Some(move || std::time::Instant::now() > deadline))?;
            let found = conn
                .prepare_cached(&format!(
                    "{MESSAGE_SELECT} JOIN message_search s ON s.rowid = m.id \
                     WHERE message_search MATCH ?1 AND s.rowid < ?2 \
                     AND m.room_id IN (SELECT room_id FROM members WHERE user_id = ?3) \
                     AND (?4 IS NULL OR m.room_id = ?4) AND m.deleted_at IS NULL \
                     ORDER BY s.rowid DESC LIMIT ?5"
                ))
                .and_then(|mut stmt| {
                    stmt.query_map(
                        params![
                            search.fts5,
                            search.before.unwrap_or(MessageId::MAX),
                            search.user,
                            search.room,
                            search.limit
                        ],
                        message_from,
                    )?
                    .collect::<Result<Vec<_>, _>>()
                });
            conn.progress_handler(0, None::<fn() -> bool>)?;
            match found {
                Err(err)
                    if err.sqlite_error_code()
                        == Some(rusqlite::ErrorCode::OperationInterrupted) =>
                {
                    Err(StoreError::TimedOut)
                }
                other => Ok(other?),
            }
        })
        .await
    }

    pub async fn message_by_client_id(
        &self,
        author: UserId,
        client_id: &str,
    ) -> Result<Option<Message>, StoreError> {
        let client_id = client_id.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "{MESSAGE_SELECT} WHERE m.author_id = ?1 AND m.client_id = ?2"
                ))?
                .query_row(params![author, client_id], message_from)
                .optional()?)
        })
        .await
    }

    pub async fn check_writable(&self) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.prepare_cached("SELECT 1")?.query_row([], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    pub async fn latest_message_id(&self) -> Result<MessageId, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT max((SELECT coalesce(max(id), 0) FROM messages), \
                                (SELECT coalesce(max(id), 0) FROM message_changes))",
                )?
                .query_row([], |row| row.get(0))?)
        })
        .await
    }

    pub async fn change_message(&self, request: MessageChange) -> Result<Changed, StoreError> {
        let log = Arc::clone(&self.inner.log);
        self.inner
            .writer
            .enqueue(
                move |conn| change(conn, request),
                Some(move |changed: &Changed| {
                    if let (Changed::Logged { id, message }, Some(follow)) = (changed, log.get()) {
                        follow(LogEntry::Changed { id: *id, message });
                    }
                }),
            )
            .await?
            .await
    }

    pub async fn queue_message(&self, msg: NewMessage) -> Result<Queued<Inserted>, StoreError> {
        let log = Arc::clone(&self.inner.log);
        self.inner
            .writer
            .enqueue(
                move |conn| insert(conn, msg),
                Some(move |inserted: &Inserted| {
                    if let (Inserted::New(message), Some(follow)) = (inserted, log.get()) {
                        follow(LogEntry::Message(message));
                    }
                }),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::sqlite::writer::tests::{hold_writer, until_queued};
    use crate::{Role, StoreOptions};

    /// 200 messages sent at once from as many tasks commit in a handful of transactions, and the
    /// log's follower sees their ids in ascending order, each before its sender is answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_inserts_are_group_committed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("t.db"), StoreOptions::default()).unwrap();
        let user = store.create_user("ana", "h", Role::Owner, 1).await.unwrap();
        let room = store.create_room("general", user.id, 1).await.unwrap();

        // Hold the writer so that all 200 are queued before any is written: without it, how many
        // batches form would depend on how fast this machine's fsync is.
        let (release, held) = hold_writer(&store).await;
        let commits_before = store.commits();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let followed = Arc::clone(&seen);
        store
            .follow(Arc::new(move |entry: LogEntry<'_>| {
                if let LogEntry::Message(m) = entry {
                    followed.lock().unwrap().push(m.id);
                }
            }))
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let msg = NewMessage {
                    room_id: room.id,
                    author_id: user.id,
                    client_id: Some(format!("c{i}")),
                    body: format!("message {i}"),
                    sent_at: 2,
                    reply_to: None,
                    attachments: Vec::new(),
                };
                store.queue_message(msg).await?.await
            }));
        }
        until_queued(&store, 200).await;
        release.send(()).unwrap();
        held.await.unwrap();

        let mut ids = Vec::new();
        for task in tasks {
            match task.await.unwrap().unwrap() {
                Inserted::New(m) => ids.push(m.id),
                Inserted::Duplicate(m) => panic!("unexpected duplicate {m:?}"),
            }
        }
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 200);
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "hooks out of order");
        ids.sort_unstable();
        assert_eq!(ids, seen);

        let commits = store.commits() - commits_before;
        // The held write's own transaction plus one batch for the 200.
        assert!(commits < 200, "{commits} transactions for 200 messages");
        assert_eq!(commits, 2);
        assert_eq!(
            store.latest_message_id().await.unwrap(),
            *seen.last().unwrap()
        );
    }
}
