//! Messages on PostgreSQL: history pages and catch-up; inserts are the writer's (see `writer`).

use deadpool_postgres::GenericClient;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, Row};

use super::account::insert_audit;
use super::writer::MENTION;
use super::{Postgres, get, log_entry};
use crate::attachment::carried;
use crate::message::{Quote, Target, allowed, audited, group_reactions, merge_replay};
use crate::queued::Queued;
use crate::{
    Author, Change, Changed, Inserted, MAX_REACTIONS_PER_MESSAGE, Message, MessageChange,
    MessageId, NewMessage, Replayed, RoomId, SEARCH_TIME_LIMIT, Search, StoreError, UserId,
    parse_mentions,
};

/// The columns of a message, with its author's name, its mentions (sorted), its reactions
/// (emoji and user, in the order they came), the message it answers and its attachments (a JSON
/// array, see `attachment::carried`), read by `message_from`.
macro_rules! message_columns {
    () => {
        "SELECT m.id, m.room_id, m.author_id, u.name, m.body, m.sent_at, m.client_id,
       ARRAY(SELECT mn.user_id FROM mentions mn WHERE mn.message_id = m.id ORDER BY mn.user_id),
       m.edited_at, m.deleted_at,
       ARRAY(SELECT x.emoji FROM reactions x WHERE x.message_id = m.id
             ORDER BY x.at, x.user_id, x.emoji),
       ARRAY(SELECT x.user_id FROM reactions x WHERE x.message_id = m.id
             ORDER BY x.at, x.user_id, x.emoji),
       m.reply_to, r.author_id, ru.name, r.body, r.deleted_at IS NOT NULL,
       CASE WHEN m.deleted_at IS NULL
                 AND EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = m.id) THEN
         (SELECT json_agg(json_build_array(a.id, a.name, a.content_type, a.size, a.width,
                                           a.height, a.created_at) ORDER BY a.position)
          FROM attachments a WHERE a.message_id = m.id)::text
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
pub(super) const MESSAGE_SELECT: &str =
    concat!(message_columns!(), " FROM messages m", message_joins!());

/// A changed message as it now is, and after its columns the change's id.
pub(super) const CHANGE_SELECT: &str = concat!(
    message_columns!(),
    ", c.id FROM log_changes c JOIN messages m ON m.id = c.message_id",
    message_joins!()
);

/// The kinds of `log_changes` that change a message.
pub(super) const MESSAGE_CHANGES: &str = "('edited', 'deleted', 'reacted')";

pub(super) fn message_from(row: &Row) -> Result<Message, StoreError> {
    let emoji: Vec<String> = get(row, 10)?;
    let users: Vec<UserId> = get(row, 11)?;
    // Already in order: their place stands for when they came.
    let reactions = emoji
        .into_iter()
        .zip(users)
        .zip(0..)
        .map(|((emoji, user), at)| (emoji, user, at))
        .collect();
    let (id, room_id, author_id) = (get(row, 0)?, get(row, 1)?, get(row, 2)?);
    let attachments = carried(
        get::<Option<String>>(row, 17)?.as_deref(),
        room_id,
        author_id,
        id,
    )?;
    Ok(Message {
        id,
        room_id,
        author: Author {
            id: author_id,
            name: get(row, 3)?,
        },
        body: get(row, 4)?,
        sent_at: get(row, 5)?,
        client_id: get(row, 6)?,
        mentions: get(row, 7)?,
        edited_at: get(row, 8)?,
        deleted_at: get(row, 9)?,
        reactions: group_reactions(reactions),
        reply_to: match get::<Option<MessageId>>(row, 12)? {
            None => None,
            Some(id) => Some(Quote {
                id,
                author: Author {
                    id: get(row, 13)?,
                    name: get(row, 14)?,
                },
                body: get(row, 15)?,
                deleted: get(row, 16)?,
            }),
        },
        attachments,
    })
}

pub(super) async fn load_message(
    c: &impl GenericClient,
    id: MessageId,
) -> Result<Option<Message>, StoreError> {
    let stmt = c
        .prepare_cached(&format!("{MESSAGE_SELECT} WHERE m.id = $1"))
        .await?;
    c.query_opt(&stmt, &[&id])
        .await?
        .map(|row| message_from(&row))
        .transpose()
}

impl Postgres {
    pub async fn history(
        &self,
        room: RoomId,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "{MESSAGE_SELECT} WHERE m.room_id = $1 AND m.id < $2 ORDER BY m.id DESC LIMIT $3"
            ))
            .await?;
        let mut page = c
            .query(
                &stmt,
                &[&room, &before.unwrap_or(MessageId::MAX), &i64::from(limit)],
            )
            .await?
            .iter()
            .map(message_from)
            .collect::<Result<Vec<_>, _>>()?;
        page.reverse();
        Ok(page)
    }

    pub async fn messages_since(
        &self,
        user: UserId,
        after: MessageId,
        limit: u32,
    ) -> Result<Vec<Replayed>, StoreError> {
        let mut c = self.client().await?;
        // One snapshot for both reads, so the two lists agree on where the log ends.
        let tx = c
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let messages_stmt = tx
            .prepare_cached(&format!(
                "{MESSAGE_SELECT} WHERE m.id > $2 \
                 AND m.room_id IN (SELECT room_id FROM members WHERE user_id = $1) \
                 ORDER BY m.id LIMIT $3"
            ))
            .await?;
        let changes_stmt = tx
            .prepare_cached(&format!(
                "{CHANGE_SELECT} WHERE c.id > $2 AND c.kind IN {MESSAGE_CHANGES} \
                 AND c.room_id IN (SELECT room_id FROM members WHERE user_id = $1) \
                 ORDER BY c.id LIMIT $3"
            ))
            .await?;
        let params: [&(dyn ToSql + Sync); 3] = [&user, &after, &i64::from(limit)];
        let (messages, changes) = futures_util::try_join!(
            tx.query(&messages_stmt, &params),
            tx.query(&changes_stmt, &params),
        )?;
        let messages = messages
            .iter()
            .map(message_from)
            .collect::<Result<Vec<_>, _>>()?;
        let changes = changes
            .iter()
            .map(|row| Ok((get(row, 18)?, message_from(row)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        tx.commit().await?;
        Ok(merge_replay(messages, changes, limit as usize))
    }

    pub async fn search(&self, search: Search) -> Result<Vec<Message>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.build_transaction().read_only(true).start().await?;
        // The limit as PostgreSQL's own, for this transaction only.
        tx.batch_execute(&format!(
            "SET LOCAL statement_timeout = {}",
            SEARCH_TIME_LIMIT.as_millis()
        ))
        .await?;
        let stmt = tx
            .prepare_cached(&format!(
                "{MESSAGE_SELECT} WHERE to_tsvector('simple', m.body) @@ to_tsquery('simple', $1) \
                 AND m.id < $2 \
                 AND m.room_id IN (SELECT room_id FROM members WHERE user_id = $3) \
                 AND ($4::bigint IS NULL OR m.room_id = $4) AND m.deleted_at IS NULL \
                 ORDER BY m.id DESC LIMIT $5"
            ))
            .await?;
        let found = tx
            .query(
                &stmt,
                &[
                    &search.tsquery,
                    &search.before.unwrap_or(MessageId::MAX),
                    &search.user,
                    &search.room,
                    &i64::from(search.limit),
                ],
            )
            .await
            .map_err(|err| match err.code() {
                Some(&SqlState::QUERY_CANCELED) => StoreError::TimedOut,
                _ => err.into(),
            })?
            .iter()
            .map(message_from)
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await?;
        Ok(found)
    }

    pub async fn message_by_client_id(
        &self,
        author: UserId,
        client_id: &str,
    ) -> Result<Option<Message>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "{MESSAGE_SELECT} WHERE m.author_id = $1 AND m.client_id = $2"
            ))
            .await?;
        c.query_opt(&stmt, &[&author, &client_id])
            .await?
            .map(|row| message_from(&row))
            .transpose()
    }

    pub async fn check_writable(&self) -> Result<(), StoreError> {
        let c = self.writable().await?;
        let stmt = c.prepare_cached("SELECT pg_is_in_recovery()").await?;
        let standby: bool = get(&c.query_one(&stmt, &[]).await?, 0)?;
        if standby {
            return Err(StoreError::Unavailable(
                "the database is a read-only standby".to_owned(),
            ));
        }
        Ok(())
    }

    pub async fn latest_message_id(&self) -> Result<MessageId, StoreError> {
        // The head of the log: every id up to it is committed (its row lock orders commits).
        let c = self.client().await?;
        let stmt = c.prepare_cached("SELECT last_id FROM log_head").await?;
        get(&c.query_one(&stmt, &[]).await?, 0)
    }

    pub async fn change_message(&self, change: MessageChange) -> Result<Changed, StoreError> {
        let id = change.message_id;
        let mut c = self.writable().await?;
        let tx = c.transaction().await?;
        // The row lock makes changes to one message take turns.
        let stmt = tx
            .prepare_cached(
                "SELECT room_id, author_id, body, deleted_at IS NOT NULL FROM messages \
                 WHERE id = $1 FOR UPDATE",
            )
            .await?;
        let row = tx
            .query_opt(&stmt, &[&id])
            .await?
            .ok_or(StoreError::NotFound)?;
        let target = Target {
            room_id: get(&row, 0)?,
            author_id: get(&row, 1)?,
            body: get(&row, 2)?,
            deleted: get(&row, 3)?,
        };
        let stmt = tx
            .prepare_cached("SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2")
            .await?;
        let member = tx
            .query_opt(&stmt, &[&target.room_id, &change.user_id])
            .await?
            .is_some();
        let changed = allowed(&target, member, &change)? && apply(&tx, &target, &change).await?;
        if !changed {
            let message = load_message(&tx, id).await?.ok_or(StoreError::NotFound)?;
            return Ok(Changed::Unchanged(message));
        }
        if let Some(entry) = audited(&target, &change) {
            insert_audit(&tx, &entry).await?;
        }
        let kind = match change.change {
            Change::Edit { .. } => "edited",
            Change::Delete => "deleted",
            Change::React { .. } | Change::Unreact { .. } => "reacted",
        };
        let entry = log_entry(
            &tx,
            kind,
            Some(target.room_id),
            change.user_id,
            None,
            Some(id),
        )
        .await?;
        let message = load_message(&tx, id).await?.ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(Changed::Logged { id: entry, message })
    }

    pub async fn queue_message(&self, msg: NewMessage) -> Result<Queued<Inserted>, StoreError> {
        self.writer.enqueue(msg).await
    }
}

/// Makes an allowed `change` to `target` inside `tx`; false when it changed nothing.
async fn apply(
    tx: &deadpool_postgres::Transaction<'_>,
    target: &Target,
    change: &MessageChange,
) -> Result<bool, StoreError> {
    let id = change.message_id;
    match &change.change {
        Change::Edit { body } => {
            let stmt = tx
                .prepare_cached("UPDATE messages SET body = $2, edited_at = $3 WHERE id = $1")
                .await?;
            tx.execute(&stmt, &[&id, body, &change.at]).await?;
            let stmt = tx
                .prepare_cached("DELETE FROM mentions WHERE message_id = $1")
                .await?;
            tx.execute(&stmt, &[&id]).await?;
            // The author of the message it answers counts as mentioned.
            let stmt = tx
                .prepare_cached(
                    "SELECT u.name FROM messages m JOIN messages r ON r.id = m.reply_to \
                     JOIN users u ON u.id = r.author_id \
                     WHERE m.id = $1 AND r.author_id <> m.author_id",
                )
                .await?;
            let answered: Option<String> = match tx.query_opt(&stmt, &[&id]).await? {
                Some(row) => Some(get(&row, 0)?),
                None => None,
            };
            let names: Vec<String> = parse_mentions(body)
                .into_iter()
                .chain(answered.as_deref())
                .map(str::to_lowercase)
                .collect();
            if !names.is_empty() {
                let stmt = tx.prepare_cached(MENTION).await?;
                let messages = vec![id; names.len()];
                let rooms = vec![target.room_id; names.len()];
                tx.query(&stmt, &[&messages, &rooms, &names]).await?;
            }
            Ok(true)
        }
        Change::Delete => {
            for sql in [
                "UPDATE messages SET body = '', edited_at = NULL, deleted_at = $2 WHERE id = $1",
                "DELETE FROM mentions WHERE message_id = $1",
                "DELETE FROM reactions WHERE message_id = $1",
            ] {
                let stmt = tx.prepare_cached(sql).await?;
                let at = change.at;
                let params: &[&(dyn ToSql + Sync)] = if sql.contains("$2") {
                    &[&id, &at]
                } else {
                    &[&id]
                };
                tx.execute(&stmt, params).await?;
            }
            Ok(true)
        }
        Change::React { emoji } => {
            let stmt = tx
                .prepare_cached(
                    "SELECT count(DISTINCT emoji), coalesce(bool_or(emoji = $2), false) \
                     FROM reactions WHERE message_id = $1",
                )
                .await?;
            let row = tx.query_one(&stmt, &[&id, emoji]).await?;
            let (kinds, have): (i64, bool) = (get(&row, 0)?, get(&row, 1)?);
            if !have && kinds >= MAX_REACTIONS_PER_MESSAGE as i64 {
                return Err(StoreError::TooMany("reactions on this message"));
            }
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO reactions (message_id, emoji, user_id, at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .await?;
            Ok(tx
                .execute(&stmt, &[&id, emoji, &change.user_id, &change.at])
                .await?
                == 1)
        }
        Change::Unreact { emoji } => {
            let stmt = tx
                .prepare_cached(
                    "DELETE FROM reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3",
                )
                .await?;
            Ok(tx.execute(&stmt, &[&id, emoji, &change.user_id]).await? == 1)
        }
    }
}
