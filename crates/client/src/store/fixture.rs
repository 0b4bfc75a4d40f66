//! Rooms and messages for the store's tests.

use tidings_proto::v1::{Message, MessageId, Room, RoomId, RoomKind, RoomState, UserId, UserRef};

/// A user named after their id.
pub(super) fn user(id: UserId) -> UserRef {
    UserRef {
        id,
        name: format!("user{id}"),
    }
}

/// A group room with nothing read and nothing unread.
pub(super) fn group(id: RoomId, name: &str) -> RoomState {
    RoomState {
        room: Room {
            id,
            kind: RoomKind::Group,
            name: Some(name.to_owned()),
            dm_peer: None,
        },
        last_read_id: 0,
        latest_id: 0,
        unread: 0,
        unread_mentions: 0,
    }
}

/// A DM with `peer`, with nothing read and nothing unread.
pub(super) fn dm(id: RoomId, peer: UserRef) -> RoomState {
    RoomState {
        room: Room {
            id,
            kind: RoomKind::Dm,
            name: None,
            dm_peer: Some(peer),
        },
        last_read_id: 0,
        latest_id: 0,
        unread: 0,
        unread_mentions: 0,
    }
}

/// A message mentioning nobody.
pub(super) fn message(id: MessageId, room: RoomId, author: UserId, body: &str) -> Message {
    Message {
        id,
        room,
        author: user(author),
        body: body.to_owned(),
        sent_at: 1_700_000_000_000 + id,
        client_id: None,
        mentions: Vec::new(),
        edited_at: None,
        deleted_at: None,
        reactions: Vec::new(),
        reply_to: None,
        attachments: Vec::new(),
    }
}

/// A message mentioning `mentions`.
pub(super) fn mentioning(
    id: MessageId,
    room: RoomId,
    author: UserId,
    mentions: &[UserId],
) -> Message {
    Message {
        mentions: mentions.to_vec(),
        ..message(id, room, author, "hey")
    }
}
