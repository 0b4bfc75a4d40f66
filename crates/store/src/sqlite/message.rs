//! Messages on SQLite: stored idempotently in the writer's group commit, history pages, catch-up.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::Sqlite;
use super::room::{is_member, load_room};
use crate::Queued;
use crate::{
    Author, Inserted, LogEntry, Message, MessageId, NewMessage, RoomId, StoreError, UserId,
    parse_mentions,
};

/// Messages with their author's name and their mentions (as a comma-separated list, parsed by
/// `message_from`); callers add the WHERE clause.
const MESSAGE_SELECT: &str = "\
SELECT m.id, m.room_id, m.author_id, u.name, m.body, m.sent_at, m.client_id,
       (SELECT group_concat(mn.user_id) FROM mentions mn WHERE mn.message_id = m.id)
FROM messages m
JOIN users u ON u.id = m.author_id";

fn message_from(row: &Row<'_>) -> rusqlite::Result<Message> {
    let mentioned: Option<String> = row.get(7)?;
    let mut mentions = mentioned
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|id| !id.is_empty())
        .map(|id| {
            id.parse::<UserId>().map_err(|err| {
                rusqlite::Error::FromSqlConversionFailure(
                    7,
                    rusqlite::types::Type::Text,
                    Box::new(err),
                )
            })
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    mentions.sort_unstable();
    mentions.dedup();
    Ok(Message {
        id: row.get(0)?,
        room_id: row.get(1)?,
        author: Author {
            id: row.get(2)?,
            name: row.get(3)?,
        },
        body: row.get(4)?,
        sent_at: row.get(5)?,
        client_id: row.get(6)?,
        mentions,
    })
}

fn load_message(conn: &Connection, id: MessageId) -> Result<Option<Message>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("{MESSAGE_SELECT} WHERE m.id = ?1"))?
        .query_row([id], message_from)
        .optional()?)
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
    conn.prepare_cached(
        "INSERT INTO messages (room_id, author_id, client_id, body, sent_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        msg.room_id,
        msg.author_id,
        msg.client_id,
        msg.body,
        msg.sent_at
    ])?;
    let id = conn.last_insert_rowid();

    let mut mentions = Vec::new();
    for name in parse_mentions(&msg.body) {
        // `u.name` compares case-insensitively: the column is COLLATE NOCASE.
        let member: Option<UserId> = conn
            .prepare_cached(
                "SELECT u.id FROM users u JOIN members mb ON mb.user_id = u.id \
                 WHERE u.name = ?2 AND mb.room_id = ?1",
            )?
            .query_row(params![msg.room_id, name], |row| row.get(0))
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
    }))
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
    ) -> Result<Vec<Message>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "{MESSAGE_SELECT} WHERE m.id > ?2 \
                 AND m.room_id IN (SELECT room_id FROM members WHERE user_id = ?1) \
                 ORDER BY m.id LIMIT ?3"
            ))?;
            let messages = stmt
                .query_map(params![user, after, limit], message_from)?
                .collect::<Result<_, _>>()?;
            Ok(messages)
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

    pub async fn latest_message_id(&self) -> Result<MessageId, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT coalesce(max(id), 0) FROM messages")?
                .query_row([], |row| row.get(0))?)
        })
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
