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
