//! Messages on PostgreSQL: history pages and catch-up; inserts are the writer's (see `writer`).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{Postgres, get};
use crate::queued::Queued;
use crate::{Author, Inserted, Message, MessageId, NewMessage, RoomId, StoreError, UserId};

/// Messages with their author's name and their mentions (sorted); callers add the WHERE clause.
pub(super) const MESSAGE_SELECT: &str = "\
SELECT m.id, m.room_id, m.author_id, u.name, m.body, m.sent_at, m.client_id,
       ARRAY(SELECT mn.user_id FROM mentions mn WHERE mn.message_id = m.id ORDER BY mn.user_id)
FROM messages m
JOIN users u ON u.id = m.author_id";

pub(super) fn message_from(row: &Row) -> Result<Message, StoreError> {
    Ok(Message {
        id: get(row, 0)?,
        room_id: get(row, 1)?,
        author: Author {
            id: get(row, 2)?,
            name: get(row, 3)?,
        },
        body: get(row, 4)?,
        sent_at: get(row, 5)?,
        client_id: get(row, 6)?,
        mentions: get(row, 7)?,
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
    ) -> Result<Vec<Message>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "{MESSAGE_SELECT} WHERE m.id > $2 \
                 AND m.room_id IN (SELECT room_id FROM members WHERE user_id = $1) \
                 ORDER BY m.id LIMIT $3"
            ))
            .await?;
        c.query(&stmt, &[&user, &after, &i64::from(limit)])
            .await?
            .iter()
            .map(message_from)
            .collect()
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

    pub async fn latest_message_id(&self) -> Result<MessageId, StoreError> {
        // Ids follow commit order, so every message up to this one is committed.
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT coalesce(max(id), 0) FROM messages")
            .await?;
        get(&c.query_one(&stmt, &[]).await?, 0)
    }

    pub async fn queue_message(&self, msg: NewMessage) -> Result<Queued<Inserted>, StoreError> {
        self.writer.enqueue(msg).await
    }
}
