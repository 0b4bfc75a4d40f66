//! Attachments on SQLite: recorded by the writer (the quota checked in the same transaction).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::Sqlite;
use super::room::{is_member, load_room};
use crate::{Attachment, MessageId, Millis, NewAttachment, StoreError, UserId};

const ATTACHMENT_SELECT: &str = "SELECT id, room_id, uploader_id, message_id, name, content_type, \
     size, width, height, created_at FROM attachments";

fn attachment_from(row: &Row<'_>) -> rusqlite::Result<Attachment> {
    let width: Option<u32> = row.get(7)?;
    let height: Option<u32> = row.get(8)?;
    Ok(Attachment {
        id: row.get(0)?,
        room_id: row.get(1)?,
        uploader_id: row.get(2)?,
        message_id: row.get(3)?,
        name: row.get(4)?,
        content_type: row.get(5)?,
        size: u64::try_from(row.get::<_, i64>(6)?).unwrap_or(0),
        image: width.zip(height),
        created_at: row.get(9)?,
    })
}

/// Attachment `id` as recorded, whatever became of its message.
pub(super) fn load(conn: &Connection, id: &str) -> Result<Option<Attachment>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("{ATTACHMENT_SELECT} WHERE id = ?1"))?
        .query_row([id], attachment_from)
        .optional()?)
}

/// The attachments still read or still to be sent: all but a deleted message's, whose bytes go.
pub(crate) fn kept(conn: &Connection) -> Result<Vec<Attachment>, StoreError> {
    let mut statement = conn.prepare(&format!(
        "{ATTACHMENT_SELECT} WHERE message_id IS NULL \
         OR message_id NOT IN (SELECT id FROM messages WHERE deleted_at IS NOT NULL) ORDER BY id"
    ))?;
    let kept = statement
        .query_map([], attachment_from)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(kept)
}

/// Attachments no one reads again (see `Store::forget_attachments`): `?1` is `unsent_before`.
const FORGOTTEN: &str = "message_id IS NULL AND created_at < ?1 \
     OR message_id IN (SELECT id FROM messages WHERE deleted_at IS NOT NULL)";

fn is_deleted(conn: &Connection, message: MessageId) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT deleted_at IS NOT NULL FROM messages WHERE id = ?1")?
        .query_row([message], |row| row.get(0))
}

fn usage(conn: &Connection, user: UserId) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT coalesce(sum(size), 0) FROM attachments WHERE uploader_id = ?1")?
        .query_row([user], |row| row.get::<_, i64>(0))
        .map(|used| u64::try_from(used).unwrap_or(0))?)
}

impl Sqlite {
    pub async fn add_attachment(&self, new: NewAttachment) -> Result<Attachment, StoreError> {
        self.write(move |conn| {
            if load_room(conn, new.room_id)?.is_none() {
                return Err(StoreError::NotFound);
            }
            if !is_member(conn, new.room_id, new.uploader_id)? {
                return Err(StoreError::NotAllowed);
            }
            let used = usage(conn, new.uploader_id)?;
            if used.saturating_add(new.size) > new.quota {
                return Err(StoreError::QuotaExceeded {
                    used,
                    quota: new.quota,
                });
            }
            conn.prepare_cached(
                "INSERT INTO attachments (id, room_id, uploader_id, name, content_type, size, \
                 width, height, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                new.id,
                new.room_id,
                new.uploader_id,
                new.name,
                new.content_type,
                i64::try_from(new.size).unwrap_or(i64::MAX),
                new.image.map(|(w, _)| w),
                new.image.map(|(_, h)| h),
                new.now
            ])?;
            Ok(new.recorded())
        })
        .await
    }

    pub async fn attachment(&self, id: &str) -> Result<Option<Attachment>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            Ok(load(conn, &id)?.filter(|a| match a.message_id {
                None => true,
                Some(message) => !is_deleted(conn, message).unwrap_or(true),
            }))
        })
        .await
    }

    pub async fn forget_attachments(
        &self,
        unsent_before: Millis,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.write(move |conn| {
            let ids = conn
                .prepare_cached(&format!(
                    "DELETE FROM attachments WHERE id IN \
                     (SELECT id FROM attachments WHERE {FORGOTTEN} LIMIT ?2) RETURNING id"
                ))?
                .query_map(params![unsent_before, limit], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(ids)
        })
        .await
    }

    pub async fn attachment_usage(&self, user: UserId) -> Result<u64, StoreError> {
        self.read(move |conn| usage(conn, user)).await
    }
}
