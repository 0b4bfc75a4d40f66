//! Rooms on SQLite: group rooms, DMs, members and read markers.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::Sqlite;
use super::account::{user_exists, user_from};
use crate::error::name_taken_or;
use crate::room::{ROOM_SELECT, SUMMARY_SELECT};
use crate::{
    LogEntry, MessageId, Millis, Room, RoomId, RoomKind, RoomSummary, StoreError, User, UserId,
};

fn room_from(row: &Row<'_>, at: usize) -> rusqlite::Result<Room> {
    Ok(Room {
        id: row.get(at)?,
        kind: row.get(at + 1)?,
        name: row.get(at + 2)?,
        created_at: row.get(at + 3)?,
    })
}

fn summary_from(row: &Row<'_>) -> rusqlite::Result<RoomSummary> {
    let peer_id: Option<UserId> = row.get(8)?;
    Ok(RoomSummary {
        room: room_from(row, 0)?,
        last_read_id: row.get(4)?,
        latest_id: row.get(5)?,
        unread: count(row, 6)?,
        unread_mentions: count(row, 7)?,
        dm_peer: match peer_id {
            Some(_) => Some(user_from(row, 8)?),
            None => None,
        },
    })
}

/// A `count(*)` column, which SQLite returns as a (never negative) integer.
fn count(row: &Row<'_>, at: usize) -> rusqlite::Result<u64> {
    Ok(u64::try_from(row.get::<_, i64>(at)?).unwrap_or(0))
}

pub(crate) fn load_room(conn: &Connection, id: RoomId) -> Result<Option<Room>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("{ROOM_SELECT} WHERE id = ?1"))?
        .query_row([id], |row| room_from(row, 0))
        .optional()?)
}

pub(crate) fn is_member(conn: &Connection, room: RoomId, user: UserId) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM members WHERE room_id = ?1 AND user_id = ?2")?
        .exists([room, user])?)
}

/// The newest message id of `room`, 0 when it is empty.
fn latest_in(conn: &Connection, room: RoomId) -> Result<MessageId, StoreError> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(id), 0) FROM messages WHERE room_id = ?1")?
        .query_row([room], |row| row.get(0))?)
}

fn add_member(
    conn: &Connection,
    room: RoomId,
    user: UserId,
    now: Millis,
) -> Result<bool, StoreError> {
    let added = conn
        .prepare_cached(
            "INSERT INTO members (room_id, user_id, joined_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (room_id, user_id) DO NOTHING",
        )?
        .execute(params![room, user, now])?;
    Ok(added == 1)
}

/// Adds `user` to every room for everyone; returns those rooms.
pub(super) fn join_everyone_rooms(
    conn: &Connection,
    user: UserId,
    now: Millis,
) -> Result<Vec<RoomId>, StoreError> {
    let rooms = conn
        .prepare_cached(
            "INSERT INTO members (room_id, user_id, joined_at) \
             SELECT id, ?1, ?2 FROM rooms WHERE everyone = 1 \
             ON CONFLICT (room_id, user_id) DO NOTHING RETURNING room_id",
        )?
        .query_map(params![user, now], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rooms)
}

/// The key that makes a DM unique: both ids, smaller first.
fn dm_key(a: UserId, b: UserId) -> String {
    format!("{}:{}", a.min(b), a.max(b))
}

impl Sqlite {
    pub async fn room(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        self.read(move |conn| load_room(conn, id)).await
    }

    pub async fn rooms_of(&self, user: UserId) -> Result<Vec<RoomSummary>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "{SUMMARY_SELECT} WHERE mb.user_id = ?1 ORDER BY mb.room_id"
            ))?;
            let rooms = stmt
                .query_map([user], summary_from)?
                .collect::<Result<_, _>>()?;
            Ok(rooms)
        })
        .await
    }

    pub async fn room_summary(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<RoomSummary>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "{SUMMARY_SELECT} WHERE mb.room_id = ?1 AND mb.user_id = ?2"
                ))?
                .query_row([room, user], summary_from)
                .optional()?)
        })
        .await
    }

    pub async fn group_rooms(&self) -> Result<Vec<Room>, StoreError> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached(&format!("{ROOM_SELECT} WHERE kind = 'group' ORDER BY name"))?;
            let rooms = stmt
                .query_map([], |row| room_from(row, 0))?
                .collect::<Result<_, _>>()?;
            Ok(rooms)
        })
        .await
    }

    pub async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        self.read(move |conn| is_member(conn, room, user)).await
    }

    pub async fn members(&self, room: RoomId) -> Result<Vec<User>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT u.id, u.name, u.role, u.created_at FROM members mb \
                 JOIN users u ON u.id = mb.user_id WHERE mb.room_id = ?1 ORDER BY u.name",
            )?;
            let users = stmt
                .query_map([room], |row| user_from(row, 0))?
                .collect::<Result<_, _>>()?;
            Ok(users)
        })
        .await
    }

    pub async fn memberships(&self) -> Result<Vec<(RoomId, UserId)>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT room_id, user_id FROM members ORDER BY room_id, user_id")?;
            let pairs = stmt
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(pairs)
        })
        .await
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
        let name = name.to_owned();
        let (room, _) = self
            .write_logged(
                move |conn| {
                    if !user_exists(conn, creator)? {
                        return Err(StoreError::NotFound);
                    }
                    conn.prepare_cached(
                        "INSERT INTO rooms (kind, name, created_by, created_at, everyone) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![RoomKind::Group, name, creator, now, everyone])
                    .map_err(name_taken_or)?;
                    let room = Room {
                        id: conn.last_insert_rowid(),
                        kind: RoomKind::Group,
                        name: Some(name),
                        created_at: now,
                    };
                    let joined: Vec<UserId> = if everyone {
                        conn.prepare_cached(
                            "INSERT INTO members (room_id, user_id, joined_at) \
                             SELECT ?1, id, ?2 FROM users ORDER BY id RETURNING user_id",
                        )?
                        .query_map(params![room.id, now], |row| row.get(0))?
                        .collect::<Result<_, _>>()?
                    } else {
                        add_member(conn, room.id, creator, now)?;
                        vec![creator]
                    };
                    Ok((room, joined))
                },
                |(room, joined): &(Room, Vec<UserId>)| {
                    joined
                        .iter()
                        .map(|&user| LogEntry::Joined {
                            room: room.id,
                            user,
                        })
                        .collect()
                },
            )
            .await?;
        Ok(room)
    }

    pub async fn open_dm(
        &self,
        a: UserId,
        b: UserId,
        now: Millis,
    ) -> Result<(Room, bool), StoreError> {
        self.write_logged(
            move |conn| {
                if a == b {
                    return Err(StoreError::NotAllowed);
                }
                let key = dm_key(a, b);
                let existing = conn
                    .prepare_cached(&format!("{ROOM_SELECT} WHERE dm_key = ?1"))?
                    .query_row([&key], |row| room_from(row, 0))
                    .optional()?;
                if let Some(room) = existing {
                    return Ok((room, false));
                }
                if !user_exists(conn, a)? || !user_exists(conn, b)? {
                    return Err(StoreError::NotFound);
                }
                conn.prepare_cached(
                "INSERT INTO rooms (kind, dm_key, created_by, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![RoomKind::Dm, key, a, now])?;
                let room = Room {
                    id: conn.last_insert_rowid(),
                    kind: RoomKind::Dm,
                    name: None,
                    created_at: now,
                };
                add_member(conn, room.id, a, now)?;
                add_member(conn, room.id, b, now)?;
                Ok((room, true))
            },
            move |(room, created): &(Room, bool)| {
                if *created {
                    vec![
                        LogEntry::Joined {
                            room: room.id,
                            user: a,
                        },
                        LogEntry::Joined {
                            room: room.id,
                            user: b,
                        },
                    ]
                } else {
                    Vec::new()
                }
            },
        )
        .await
    }

    pub async fn join_room(
        &self,
        room: RoomId,
        user: UserId,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.write_logged(
            move |conn| {
                match load_room(conn, room)? {
                    None => return Err(StoreError::NotFound),
                    Some(found) if found.kind == RoomKind::Dm => {
                        return Err(StoreError::NotAllowed);
                    }
                    Some(_) => {}
                }
                if !user_exists(conn, user)? {
                    return Err(StoreError::NotFound);
                }
                add_member(conn, room, user, now)
            },
            move |_: &bool| vec![LogEntry::Joined { room, user }],
        )
        .await
    }

    pub async fn leave_room(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        self.write_logged(
            move |conn| {
                match load_room(conn, room)? {
                    None => return Err(StoreError::NotFound),
                    Some(found) if found.kind == RoomKind::Dm => {
                        return Err(StoreError::NotAllowed);
                    }
                    Some(_) => {}
                }
                let everyone: bool = conn
                    .prepare_cached("SELECT everyone FROM rooms WHERE id = ?1")?
                    .query_row([room], |row| row.get(0))?;
                if everyone {
                    return Err(StoreError::NotAllowed);
                }
                let removed = conn
                    .prepare_cached("DELETE FROM members WHERE room_id = ?1 AND user_id = ?2")?
                    .execute([room, user])?;
                Ok(removed == 1)
            },
            move |_: &bool| vec![LogEntry::Left { room, user }],
        )
        .await
    }

    pub async fn set_read_marker(
        &self,
        room: RoomId,
        user: UserId,
        message_id: MessageId,
    ) -> Result<MessageId, StoreError> {
        self.write_logged(
            move |conn| {
                let old: MessageId = conn
                    .prepare_cached(
                        "SELECT last_read_id FROM members WHERE room_id = ?1 AND user_id = ?2",
                    )?
                    .query_row([room, user], |row| row.get(0))
                    .optional()?
                    .ok_or(StoreError::NotFound)?;
                let marker = old.max(message_id.min(latest_in(conn, room)?));
                if marker != old {
                    conn.prepare_cached(
                        "UPDATE members SET last_read_id = ?3 WHERE room_id = ?1 AND user_id = ?2",
                    )?
                    .execute([room, user, marker])?;
                }
                Ok(marker)
            },
            move |&message_id: &MessageId| {
                vec![LogEntry::ReadMarker {
                    room,
                    user,
                    message_id,
                }]
            },
        )
        .await
    }
}
