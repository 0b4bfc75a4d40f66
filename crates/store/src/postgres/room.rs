//! Rooms on PostgreSQL: group rooms, DMs, members and read markers.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::account::{user_exists, user_from};
use super::{Postgres, count, get, log_change, room_kind};
use crate::error::pg_name_taken_or;
use crate::room::{ROOM_SELECT, SUMMARY_SELECT};
use crate::{
    LogEntry, MessageId, Millis, Room, RoomId, RoomKind, RoomSummary, StoreError, User, UserId,
};

fn room_from(row: &Row, at: usize) -> Result<Room, StoreError> {
    Ok(Room {
        id: get(row, at)?,
        kind: room_kind(row, at + 1)?,
        name: get(row, at + 2)?,
        created_at: get(row, at + 3)?,
    })
}

fn summary_from(row: &Row) -> Result<RoomSummary, StoreError> {
    let peer_id: Option<UserId> = get(row, 8)?;
    Ok(RoomSummary {
        room: room_from(row, 0)?,
        last_read_id: get(row, 4)?,
        latest_id: get(row, 5)?,
        unread: count(row, 6)?,
        unread_mentions: count(row, 7)?,
        dm_peer: match peer_id {
            Some(_) => Some(user_from(row, 8)?),
            None => None,
        },
    })
}

pub(super) async fn load_room(
    c: &impl GenericClient,
    id: RoomId,
) -> Result<Option<Room>, StoreError> {
    let stmt = c
        .prepare_cached(&format!("{ROOM_SELECT} WHERE id = $1"))
        .await?;
    c.query_opt(&stmt, &[&id])
        .await?
        .map(|row| room_from(&row, 0))
        .transpose()
}

async fn add_member(
    c: &impl GenericClient,
    room: RoomId,
    user: UserId,
    now: Millis,
) -> Result<bool, StoreError> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO members (room_id, user_id, joined_at) VALUES ($1, $2, $3) \
             ON CONFLICT (room_id, user_id) DO NOTHING",
        )
        .await?;
    Ok(c.execute(&stmt, &[&room, &user, &now]).await? == 1)
}

/// Adds `user` to every room for everyone, each join in the log.
pub(super) async fn join_everyone_rooms(
    tx: &deadpool_postgres::Transaction<'_>,
    user: UserId,
    now: Millis,
) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO members (room_id, user_id, joined_at) \
             SELECT id, $1, $2 FROM rooms WHERE everyone ORDER BY id \
             ON CONFLICT (room_id, user_id) DO NOTHING RETURNING room_id",
        )
        .await?;
    let rooms: Vec<RoomId> = tx
        .query(&stmt, &[&user, &now])
        .await?
        .iter()
        .map(|row| get(row, 0))
        .collect::<Result<_, _>>()?;
    for room in rooms {
        log_change(tx, LogEntry::Joined { room, user }).await?;
    }
    Ok(())
}

/// The key that makes a DM unique: both ids, smaller first.
fn dm_key(a: UserId, b: UserId) -> String {
    format!("{}:{}", a.min(b), a.max(b))
}

/// A group room that exists, or why not.
async fn group_room(c: &impl GenericClient, room: RoomId) -> Result<(), StoreError> {
    match load_room(c, room).await? {
        None => Err(StoreError::NotFound),
        Some(found) if found.kind == RoomKind::Dm => Err(StoreError::NotAllowed),
        Some(_) => Ok(()),
    }
}

impl Postgres {
    pub async fn room(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        load_room(&self.client().await?, id).await
    }

    pub async fn rooms_of(&self, user: UserId) -> Result<Vec<RoomSummary>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "{SUMMARY_SELECT} WHERE mb.user_id = $1 ORDER BY mb.room_id"
            ))
            .await?;
        c.query(&stmt, &[&user])
            .await?
            .iter()
            .map(summary_from)
            .collect()
    }

    pub async fn room_summary(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<RoomSummary>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "{SUMMARY_SELECT} WHERE mb.room_id = $1 AND mb.user_id = $2"
            ))
            .await?;
        c.query_opt(&stmt, &[&room, &user])
            .await?
            .map(|row| summary_from(&row))
            .transpose()
    }

    pub async fn group_rooms(&self) -> Result<Vec<Room>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "{ROOM_SELECT} WHERE kind = 'group' ORDER BY lower(name), name"
            ))
            .await?;
        c.query(&stmt, &[])
            .await?
            .iter()
            .map(|row| room_from(row, 0))
            .collect()
    }

    pub async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2")
            .await?;
        Ok(c.query_opt(&stmt, &[&room, &user]).await?.is_some())
    }

    pub async fn members(&self, room: RoomId) -> Result<Vec<User>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT u.id, u.name, u.role, u.created_at FROM members mb \
                 JOIN users u ON u.id = mb.user_id WHERE mb.room_id = $1 \
                 ORDER BY lower(u.name), u.name",
            )
            .await?;
        c.query(&stmt, &[&room])
            .await?
            .iter()
            .map(|row| user_from(row, 0))
            .collect()
    }

    pub async fn memberships(&self) -> Result<Vec<(RoomId, UserId)>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT room_id, user_id FROM members ORDER BY room_id, user_id")
            .await?;
        c.query(&stmt, &[])
            .await?
            .iter()
            .map(|row| Ok((get(row, 0)?, get(row, 1)?)))
            .collect()
    }

    pub async fn create_room(
        &self,
        name: &str,
        creator: UserId,
        now: Millis,
    ) -> Result<Room, StoreError> {
        self.create_group_room(name, creator, now, false).await
    }

    pub async fn create_everyone_room(
        &self,
        name: &str,
        creator: UserId,
        now: Millis,
    ) -> Result<Room, StoreError> {
        self.create_group_room(name, creator, now, true).await
    }

    /// A group room with its creator in it — or, for a room for everyone, every user.
    async fn create_group_room(
        &self,
        name: &str,
        creator: UserId,
        now: Millis,
        everyone: bool,
    ) -> Result<Room, StoreError> {
        let mut c = self.writable().await?;
        let tx = c.transaction().await?;
        if !user_exists(&tx, creator).await? {
            return Err(StoreError::NotFound);
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO rooms (kind, name, created_by, created_at, everyone) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .await?;
        let row = tx
            .query_one(
                &stmt,
                &[&RoomKind::Group.as_str(), &name, &creator, &now, &everyone],
            )
            .await
            .map_err(pg_name_taken_or)?;
        let room = Room {
            id: get(&row, 0)?,
            kind: RoomKind::Group,
            name: Some(name.to_owned()),
            created_at: now,
        };
        let joined: Vec<UserId> = if everyone {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO members (room_id, user_id, joined_at) \
                     SELECT $1, id, $2 FROM users ORDER BY id RETURNING user_id",
                )
                .await?;
            tx.query(&stmt, &[&room.id, &now])
                .await?
                .iter()
                .map(|row| get(row, 0))
                .collect::<Result<_, _>>()?
        } else {
            add_member(&tx, room.id, creator, now).await?;
            vec![creator]
        };
        for user in joined {
            log_change(
                &tx,
                LogEntry::Joined {
                    room: room.id,
                    user,
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(room)
    }

    pub async fn open_dm(
        &self,
        a: UserId,
        b: UserId,
        now: Millis,
    ) -> Result<(Room, bool), StoreError> {
        if a == b {
            return Err(StoreError::NotAllowed);
        }
        let key = dm_key(a, b);
        let mut c = self.writable().await?;
        let tx = c.transaction().await?;
        if !user_exists(&tx, a).await? || !user_exists(&tx, b).await? {
            return Err(StoreError::NotFound);
        }
        // Two nodes opening the same DM at once: one inserts, the other waits for it on the
        // unique key and then finds its room below.
        let insert = tx
            .prepare_cached(
                "INSERT INTO rooms (kind, dm_key, created_by, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (dm_key) DO NOTHING RETURNING id",
            )
            .await?;
        let created = tx
            .query_opt(&insert, &[&RoomKind::Dm.as_str(), &key, &a, &now])
            .await?;
        let room = match created {
            Some(row) => {
                let room = Room {
                    id: get(&row, 0)?,
                    kind: RoomKind::Dm,
                    name: None,
                    created_at: now,
                };
                for user in [a, b] {
                    add_member(&tx, room.id, user, now).await?;
                    log_change(
                        &tx,
                        LogEntry::Joined {
                            room: room.id,
                            user,
                        },
                    )
                    .await?;
                }
                (room, true)
            }
            None => {
                let stmt = tx
                    .prepare_cached(&format!("{ROOM_SELECT} WHERE dm_key = $1"))
                    .await?;
                let row = tx.query_one(&stmt, &[&key]).await?;
                (room_from(&row, 0)?, false)
            }
        };
        tx.commit().await?;
        Ok(room)
    }

    pub async fn join_room(
        &self,
        room: RoomId,
        user: UserId,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut c = self.writable().await?;
        let tx = c.transaction().await?;
        group_room(&tx, room).await?;
        if !user_exists(&tx, user).await? {
            return Err(StoreError::NotFound);
        }
        let added = add_member(&tx, room, user, now).await?;
        log_change(&tx, LogEntry::Joined { room, user }).await?;
        tx.commit().await?;
        Ok(added)
    }

    pub async fn leave_room(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let mut c = self.writable().await?;
        let tx = c.transaction().await?;
        group_room(&tx, room).await?;
        let stmt = tx
            .prepare_cached("SELECT everyone FROM rooms WHERE id = $1")
            .await?;
        let everyone: bool = get(&tx.query_one(&stmt, &[&room]).await?, 0)?;
        if everyone {
            return Err(StoreError::NotAllowed);
        }
        let stmt = tx
            .prepare_cached("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
            .await?;
        let removed = tx.execute(&stmt, &[&room, &user]).await? == 1;
        log_change(&tx, LogEntry::Left { room, user }).await?;
        tx.commit().await?;
        Ok(removed)
    }

    pub async fn set_read_marker(
        &self,
        room: RoomId,
        user: UserId,
        message_id: MessageId,
    ) -> Result<MessageId, StoreError> {
        let mut c = self.writable().await?;
        let tx = c.transaction().await?;
        // One statement: forward only, capped at the room's newest message.
        let stmt = tx
            .prepare_cached(
                "UPDATE members SET last_read_id = greatest(last_read_id, least($3, \
                 (SELECT coalesce(max(id), 0) FROM messages WHERE room_id = $1))) \
                 WHERE room_id = $1 AND user_id = $2 RETURNING last_read_id",
            )
            .await?;
        let row = tx
            .query_opt(&stmt, &[&room, &user, &message_id])
            .await?
            .ok_or(StoreError::NotFound)?;
        let marker = get(&row, 0)?;
        log_change(
            &tx,
            LogEntry::ReadMarker {
                room,
                user,
                message_id: marker,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(marker)
    }
}
