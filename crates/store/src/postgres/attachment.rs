//! Attachments on PostgreSQL: recorded on a pooled connection, the uploader's row locked while
//! the quota is checked, so two uploads at once cannot both slip under it.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::room::load_room;
use super::{Postgres, get};
use crate::{Attachment, Millis, NewAttachment, StoreError, UserId};

pub(super) const ATTACHMENT_SELECT: &str = "SELECT id, room_id, uploader_id, message_id, name, content_type, \
     size, width, height, created_at FROM attachments";

pub(super) fn attachment_from(row: &Row) -> Result<Attachment, StoreError> {
    let size: i64 = get(row, 6)?;
    let width: Option<i32> = get(row, 7)?;
    let height: Option<i32> = get(row, 8)?;
    let dimension = |d: i32| u32::try_from(d).map_err(|e| StoreError::Unreadable(e.to_string()));
    Ok(Attachment {
        id: get(row, 0)?,
        room_id: get(row, 1)?,
        uploader_id: get(row, 2)?,
        message_id: get(row, 3)?,
        name: get(row, 4)?,
        content_type: get(row, 5)?,
        size: u64::try_from(size).map_err(|e| StoreError::Unreadable(e.to_string()))?,
        image: match (width, height) {
            (Some(w), Some(h)) => Some((dimension(w)?, dimension(h)?)),
            _ => None,
        },
        created_at: get(row, 9)?,
    })
}

async fn usage(c: &impl GenericClient, user: UserId) -> Result<u64, StoreError> {
    let stmt = c
        .prepare_cached(
            "SELECT coalesce(sum(size), 0)::bigint FROM attachments WHERE uploader_id = $1",
        )
        .await?;
    let used: i64 = get(&c.query_one(&stmt, &[&user]).await?, 0)?;
    Ok(u64::try_from(used).unwrap_or(0))
}

impl Postgres {
    pub async fn add_attachment(&self, new: NewAttachment) -> Result<Attachment, StoreError> {
        let mut c = self.writable().await?;
        let tx = c.transaction().await?;
        if load_room(&tx, new.room_id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let member = tx
            .prepare_cached(
                "SELECT 1 FROM members m JOIN users u ON u.id = m.user_id \
                 WHERE m.room_id = $1 AND m.user_id = $2 FOR UPDATE OF u",
            )
            .await?;
        if tx
            .query_opt(&member, &[&new.room_id, &new.uploader_id])
            .await?
            .is_none()
        {
            return Err(StoreError::NotAllowed);
        }
        let used = usage(&tx, new.uploader_id).await?;
        if used.saturating_add(new.size) > new.quota {
            return Err(StoreError::QuotaExceeded {
                used,
                quota: new.quota,
            });
        }
        let size = i64::try_from(new.size).map_err(|e| StoreError::Unreadable(e.to_string()))?;
        let width = new.image.and_then(|(w, _)| i32::try_from(w).ok());
        let height = new.image.and_then(|(_, h)| i32::try_from(h).ok());
        let insert = tx
            .prepare_cached(
                "INSERT INTO attachments (id, room_id, uploader_id, name, content_type, size, \
                 width, height, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .await?;
        tx.execute(
            &insert,
            &[
                &new.id,
                &new.room_id,
                &new.uploader_id,
                &new.name,
                &new.content_type,
                &size,
                &width,
                &height,
                &new.now,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(new.recorded())
    }

    pub async fn attachment(&self, id: &str) -> Result<Option<Attachment>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "{ATTACHMENT_SELECT} WHERE id = $1 AND NOT EXISTS \
                 (SELECT 1 FROM messages m WHERE m.id = message_id AND m.deleted_at IS NOT NULL)"
            ))
            .await?;
        c.query_opt(&stmt, &[&id])
            .await?
            .as_ref()
            .map(attachment_from)
            .transpose()
    }

    pub async fn forget_attachments(
        &self,
        unsent_before: Millis,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let c = self.writable().await?;
        let stmt = c
            .prepare_cached(
                "DELETE FROM attachments WHERE id IN (SELECT id FROM attachments \
                 WHERE message_id IS NULL AND created_at < $1 \
                 OR message_id IN (SELECT id FROM messages WHERE deleted_at IS NOT NULL) \
                 LIMIT $2) RETURNING id",
            )
            .await?;
        let rows = c.query(&stmt, &[&unsent_before, &i64::from(limit)]).await?;
        rows.iter().map(|row| get(row, 0)).collect()
    }

    pub async fn attachment_usage(&self, user: UserId) -> Result<u64, StoreError> {
        let c = self.client().await?;
        usage(&c, user).await
    }
}
