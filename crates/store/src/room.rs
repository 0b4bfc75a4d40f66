//! Rooms: named group rooms anyone may join, two-person DMs, their members and read markers.

use crate::account::User;
use crate::{MessageId, Millis, RoomId};

/// What kind of room a room is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomKind {
    /// A named room listed in the directory; anyone may join or leave.
    Group,
    /// A direct conversation between exactly two users, who can neither leave nor be joined.
    Dm,
}

text_enum!(RoomKind, "room kind", {
    Group => "group",
    Dm => "dm",
});

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub id: RoomId,
    pub kind: RoomKind,
    /// The name of a group room; `None` for a DM.
    pub name: Option<String>,
    pub created_at: Millis,
}

/// A room as one member sees it in their room list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSummary {
    pub room: Room,
    /// The other member of a DM; `None` for a group room.
    pub dm_peer: Option<User>,
    /// The last message this member has read (0 for none).
    pub last_read_id: MessageId,
    /// The room's newest message; 0 when the room is empty.
    pub latest_id: MessageId,
    /// Messages after `last_read_id` not written by this member.
    pub unread: u64,
    /// Of the unread messages, the ones mentioning this member.
    pub unread_mentions: u64,
}

/// One summary row per membership of `mb.user_id`, in SQL both backends read alike; callers add
/// the WHERE clause. Each count is
/// answered from an index: unread from `messages_room` (room_id, id, author_id), mentions from the
/// mentions primary key (user_id, message_id). A DM's only other member is its peer.
pub(crate) const SUMMARY_SELECT: &str = "\
SELECT r.id, r.kind, r.name, r.created_at,
       mb.last_read_id,
       coalesce((SELECT max(m.id) FROM messages m WHERE m.room_id = r.id), 0),
       (SELECT count(*) FROM messages m
         WHERE m.room_id = r.id AND m.id > mb.last_read_id AND m.author_id != mb.user_id),
       (SELECT count(*) FROM mentions mn JOIN messages m ON m.id = mn.message_id
         WHERE mn.user_id = mb.user_id AND mn.message_id > mb.last_read_id
           AND m.room_id = r.id AND m.author_id != mb.user_id),
       peer.id, peer.name, peer.role, peer.created_at
FROM members mb
JOIN rooms r ON r.id = mb.room_id
LEFT JOIN members pm ON r.kind = 'dm' AND pm.room_id = r.id AND pm.user_id != mb.user_id
LEFT JOIN users peer ON peer.id = pm.user_id";

/// Every column of a room; callers add the WHERE clause.
pub(crate) const ROOM_SELECT: &str = "SELECT id, kind, name, created_at FROM rooms";
