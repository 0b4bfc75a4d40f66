//! The user's rooms as last seen from the server, with read markers and unread counts.
//!
//! The server's `RoomState` is the truth when it arrives (`replace_rooms`, `upsert_room`); in
//! between, `save_messages` and `set_read` keep the counts current from the cached messages.

use std::collections::HashSet;

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row};
use tidings_proto::v1::{MessageId, Room, RoomId, RoomKind, RoomState, UserId, UserRef};

use super::{LocalError, LocalStore, bad_value};

/// The columns `room_from_row` reads, in its order.
const COLUMNS: &str = "id, kind, name, dm_peer_id, dm_peer_name, \
                       last_read_id, latest_id, unread, unread_mentions";

fn kind_text(kind: RoomKind) -> &'static str {
    match kind {
        RoomKind::Group => "group",
        RoomKind::Dm => "dm",
    }
}

fn room_from_row(row: &Row<'_>) -> rusqlite::Result<RoomState> {
    let kind = match row.get_ref(1)?.as_str()? {
        "group" => RoomKind::Group,
        "dm" => RoomKind::Dm,
        other => {
            return Err(bad_value(
                1,
                Type::Text,
                format!("unknown room kind {other:?}"),
            ));
        }
    };
    let dm_peer = match (row.get(3)?, row.get(4)?) {
        (Some(id), Some(name)) => Some(UserRef { id, name }),
        _ => None,
    };
    Ok(RoomState {
        room: Room {
            id: row.get(0)?,
            kind,
            name: row.get(2)?,
            dm_peer,
        },
        last_read_id: row.get(5)?,
        latest_id: row.get(6)?,
        unread: count_from_row(row, 7)?,
        unread_mentions: count_from_row(row, 8)?,
    })
}

/// A count read from disk, which must not be negative.
fn count_from_row(row: &Row<'_>, column: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(column)?;
    u64::try_from(value)
        .map_err(|_| bad_value(column, Type::Integer, format!("negative count {value}")))
}

/// A count as SQLite stores it (a signed 64-bit integer).
fn count_to_sql(count: u64) -> rusqlite::Result<i64> {
    i64::try_from(count).map_err(|err| rusqlite::Error::ToSqlConversionFailure(err.into()))
}

/// Inserts the room or updates it to the server's view. `latest_id` only moves forward: a message
/// cached since the server's snapshot is still the newest.
fn upsert(conn: &Connection, state: &RoomState) -> Result<(), LocalError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO rooms (id, kind, name, dm_peer_id, dm_peer_name,
                            last_read_id, latest_id, unread, unread_mentions)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (id) DO UPDATE SET
             kind = excluded.kind,
             name = excluded.name,
             dm_peer_id = excluded.dm_peer_id,
             dm_peer_name = excluded.dm_peer_name,
             last_read_id = excluded.last_read_id,
             latest_id = max(latest_id, excluded.latest_id),
             unread = excluded.unread,
             unread_mentions = excluded.unread_mentions",
    )?;
    let room = &state.room;
    stmt.execute((
        room.id,
        kind_text(room.kind),
        &room.name,
        room.dm_peer.as_ref().map(|peer| peer.id),
        room.dm_peer.as_ref().map(|peer| &peer.name),
        state.last_read_id,
        state.latest_id,
        count_to_sql(state.unread)?,
        count_to_sql(state.unread_mentions)?,
    ))?;
    Ok(())
}

impl LocalStore {
    /// Replaces the room list with the server's full list: rooms not in it are removed, with
    /// their cached messages. Drafts, notification levels and the outbox are kept (they are the
    /// user's own, and the server settles pending messages).
    pub fn replace_rooms(&self, rooms: &[RoomState]) -> Result<(), LocalError> {
        self.write(|tx| {
            let keep: HashSet<RoomId> = rooms.iter().map(|state| state.room.id).collect();
            let cached: Vec<RoomId> = tx
                .prepare_cached("SELECT id FROM rooms")?
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            let mut delete = tx.prepare_cached("DELETE FROM rooms WHERE id = ?1")?;
            for id in cached.into_iter().filter(|id| !keep.contains(id)) {
                delete.execute([id])?;
            }
            for state in rooms {
                upsert(tx, state)?;
            }
            // Also drops messages cached for a room that never made it into the list.
            tx.prepare_cached("DELETE FROM messages WHERE room_id NOT IN (SELECT id FROM rooms)")?
                .execute([])?;
            Ok(())
        })
    }

    /// Inserts one room or updates it to the server's view (its `latest_id` only moves forward).
    pub fn upsert_room(&self, room: &RoomState) -> Result<(), LocalError> {
        self.run(|conn| upsert(conn, room))
    }

    /// Every cached room, by id.
    pub fn rooms(&self) -> Result<Vec<RoomState>, LocalError> {
        self.run(|conn| {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {COLUMNS} FROM rooms ORDER BY id"))?;
            let rooms = stmt
                .query_map([], room_from_row)?
                .collect::<Result<_, _>>()?;
            Ok(rooms)
        })
    }

    /// The cached room with this id.
    pub fn room(&self, id: RoomId) -> Result<Option<RoomState>, LocalError> {
        self.run(|conn| {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {COLUMNS} FROM rooms WHERE id = ?1"))?;
            Ok(stmt.query_row([id], room_from_row).optional()?)
        })
    }

    /// The room a user typed: a group by name, compared case-insensitively with one leading `#`
    /// ignored (`#ops`, `OPS`), or with a leading `@` the DM with that peer (`@bo`).
    pub fn room_by_name(&self, name: &str) -> Result<Option<RoomState>, LocalError> {
        self.run(|conn| {
            let (sql, key) = match name.strip_prefix('@') {
                Some(peer) => (
                    format!(
                        "SELECT {COLUMNS} FROM rooms
                         WHERE kind = 'dm' AND dm_peer_name = ?1 COLLATE NOCASE
                         ORDER BY id LIMIT 1"
                    ),
                    peer,
                ),
                None => (
                    format!(
                        "SELECT {COLUMNS} FROM rooms
                         WHERE kind = 'group' AND name = ?1 COLLATE NOCASE
                         ORDER BY id LIMIT 1"
                    ),
                    name.strip_prefix('#').unwrap_or(name),
                ),
            };
            let mut stmt = conn.prepare_cached(&sql)?;
            Ok(stmt.query_row([key], room_from_row).optional()?)
        })
    }

    /// Records a read marker locally (only forward) and recomputes `unread`/`unread_mentions`
    /// of that room from the cached messages after the marker (messages by `me` don't count).
    /// A room that is not cached is left alone: the next room list brings its state.
    pub fn set_read(
        &self,
        room: RoomId,
        message_id: MessageId,
        me: UserId,
    ) -> Result<(), LocalError> {
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE rooms SET last_read_id = max(last_read_id, ?2) WHERE id = ?1",
            )?
            .execute((room, message_id))?;
            tx.prepare_cached(
                "UPDATE rooms SET
                     unread = (SELECT count(*) FROM messages m
                               WHERE m.room_id = rooms.id AND m.id > rooms.last_read_id
                                 AND m.author_id <> ?2),
                     unread_mentions = (SELECT count(*) FROM messages m
                               WHERE m.room_id = rooms.id AND m.id > rooms.last_read_id
                                 AND m.author_id <> ?2
                                 AND EXISTS (SELECT 1 FROM mentions
                                             WHERE message_id = m.id AND user_id = ?2))
                 WHERE id = ?1",
            )?
            .execute((room, me))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixture::{dm, group, mentioning, message, user};

    const ME: UserId = 1;

    #[test]
    fn rooms_round_trip_by_id() {
        let store = LocalStore::open_in_memory().unwrap();
        let ops = RoomState {
            last_read_id: 3,
            latest_id: 9,
            unread: 4,
            unread_mentions: 1,
            ..group(7, "ops")
        };
        let bo = dm(2, user(5));
        store.upsert_room(&ops).unwrap();
        store.upsert_room(&bo).unwrap();
        assert_eq!(store.rooms().unwrap(), vec![bo.clone(), ops.clone()]);
        assert_eq!(store.room(7).unwrap(), Some(ops));
        assert_eq!(store.room(2).unwrap(), Some(bo));
        assert_eq!(store.room(3).unwrap(), None);
    }

    #[test]
    fn upsert_takes_the_servers_view_but_keeps_the_newest_message() {
        let store = LocalStore::open_in_memory().unwrap();
        store.upsert_room(&group(1, "ops")).unwrap();
        store
            .save_messages(&[message(20, 1, 2, "live")], ME)
            .unwrap();

        let snapshot = RoomState {
            last_read_id: 10,
            latest_id: 15,
            unread: 2,
            unread_mentions: 0,
            ..group(1, "Ops")
        };
        store.upsert_room(&snapshot).unwrap();
        assert_eq!(
            store.room(1).unwrap(),
            Some(RoomState {
                latest_id: 20,
                ..snapshot
            })
        );
    }

    #[test]
    fn replace_rooms_removes_stale_rooms_and_their_messages() {
        let store = LocalStore::open_in_memory().unwrap();
        store
            .replace_rooms(&[group(1, "ops"), group(2, "dev"), dm(3, user(5))])
            .unwrap();
        store
            .save_messages(
                &[
                    message(10, 1, 2, "ops"),
                    mentioning(11, 2, 2, &[ME]),
                    message(12, 3, 5, "dm"),
                    // A room the list never named.
                    message(13, 4, 2, "stray"),
                ],
                ME,
            )
            .unwrap();
        store.set_draft(2, "kept").unwrap();

        let ops = RoomState {
            unread: 1,
            latest_id: 10,
            ..group(1, "ops")
        };
        store.replace_rooms(&[ops.clone(), dm(3, user(5))]).unwrap();
        let ids: Vec<RoomId> = store.rooms().unwrap().iter().map(|r| r.room.id).collect();
        assert_eq!(ids, vec![1, 3]);
        assert_eq!(store.room(1).unwrap(), Some(ops));
        assert_eq!(store.history(1, None, 10).unwrap().len(), 1);
        assert!(store.history(2, None, 10).unwrap().is_empty());
        assert_eq!(store.history(3, None, 10).unwrap().len(), 1);
        assert!(store.history(4, None, 10).unwrap().is_empty());
        assert_eq!(store.draft(2).unwrap().as_deref(), Some("kept"));

        store.replace_rooms(&[]).unwrap();
        assert!(store.rooms().unwrap().is_empty());
        assert!(store.history(3, None, 10).unwrap().is_empty());
    }

    #[test]
    fn room_by_name_finds_groups_and_dms() {
        let store = LocalStore::open_in_memory().unwrap();
        let ops = group(1, "ops");
        let bo = dm(
            2,
            UserRef {
                id: 5,
                name: "Bo".to_owned(),
            },
        );
        store
            .replace_rooms(&[ops.clone(), bo.clone(), group(3, "dev")])
            .unwrap();

        for name in ["#ops", "OPS", "ops", "#Ops"] {
            assert_eq!(
                store.room_by_name(name).unwrap(),
                Some(ops.clone()),
                "{name}"
            );
        }
        for name in ["@bo", "@BO", "@Bo"] {
            assert_eq!(
                store.room_by_name(name).unwrap(),
                Some(bo.clone()),
                "{name}"
            );
        }
        for name in ["##ops", "@ops", "bo", "#bo", "qa", "", "#", "@"] {
            assert_eq!(store.room_by_name(name).unwrap(), None, "{name}");
        }
    }

    #[test]
    fn set_read_moves_forward_and_recounts_from_the_cache() {
        let store = LocalStore::open_in_memory().unwrap();
        store.upsert_room(&group(1, "ops")).unwrap();
        store
            .save_messages(
                &[
                    message(10, 1, 2, "a"),
                    mentioning(11, 1, 2, &[ME, 3]),
                    message(12, 1, ME, "mine"),
                    mentioning(13, 1, ME, &[ME]),
                    mentioning(14, 1, 3, &[3]),
                    mentioning(15, 1, 2, &[ME]),
                ],
                ME,
            )
            .unwrap();
        let counts = |store: &LocalStore| {
            let room = store.room(1).unwrap().unwrap();
            (room.last_read_id, room.unread, room.unread_mentions)
        };
        assert_eq!(counts(&store), (0, 4, 2));

        store.set_read(1, 11, ME).unwrap();
        assert_eq!(counts(&store), (11, 2, 1));

        // Backwards is ignored, but the counts are still those after the marker.
        store.set_read(1, 5, ME).unwrap();
        assert_eq!(counts(&store), (11, 2, 1));

        store.set_read(1, 15, ME).unwrap();
        assert_eq!(counts(&store), (15, 0, 0));

        // A room that is not cached is left alone.
        store.set_read(9, 15, ME).unwrap();
        assert_eq!(store.room(9).unwrap(), None);
    }
}
