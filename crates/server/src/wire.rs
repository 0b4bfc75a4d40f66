//! Explicit conversions from store rows to wire types: the store never derives the protocol's
//! JSON, and the protocol never knows about rows.

use tidings_proto::v1 as proto;
use tidings_store as store;

pub fn user_ref(user: &store::User) -> proto::UserRef {
    proto::UserRef {
        id: user.id,
        name: user.name.clone(),
    }
}

pub fn role(role: store::Role) -> proto::Role {
    match role {
        store::Role::Owner => proto::Role::Owner,
        store::Role::Member => proto::Role::Member,
    }
}

pub fn room(room: store::Room, dm_peer: Option<&store::User>) -> proto::Room {
    proto::Room {
        id: room.id,
        kind: match room.kind {
            store::RoomKind::Group => proto::RoomKind::Group,
            store::RoomKind::Dm => proto::RoomKind::Dm,
        },
        name: room.name,
        dm_peer: dm_peer.map(user_ref),
    }
}

pub fn room_state(summary: store::RoomSummary) -> proto::RoomState {
    proto::RoomState {
        room: room(summary.room, summary.dm_peer.as_ref()),
        last_read_id: summary.last_read_id,
        latest_id: summary.latest_id,
        unread: summary.unread,
        unread_mentions: summary.unread_mentions,
    }
}

pub fn message(message: store::Message) -> proto::Message {
    proto::Message {
        id: message.id,
        room: message.room_id,
        author: proto::UserRef {
            id: message.author.id,
            name: message.author.name,
        },
        body: message.body,
        sent_at: message.sent_at,
        client_id: message.client_id,
        mentions: message.mentions,
        edited_at: message.edited_at,
        deleted_at: message.deleted_at,
        reactions: message
            .reactions
            .into_iter()
            .map(|r| proto::Reaction {
                emoji: r.emoji,
                users: r.users,
            })
            .collect(),
        reply_to: message.reply_to.map(|quote| proto::Quote {
            id: quote.id,
            author: proto::UserRef {
                id: quote.author.id,
                name: quote.author.name,
            },
            preview: proto::preview(&quote.body),
            deleted: quote.deleted,
        }),
        attachments: message.attachments.into_iter().map(attachment).collect(),
    }
}

pub fn attachment(a: store::Attachment) -> proto::Attachment {
    proto::Attachment {
        id: a.id,
        room: a.room_id,
        name: a.name,
        content_type: a.content_type,
        size: a.size,
        image: a
            .image
            .map(|(width, height)| proto::ImageSize { width, height }),
    }
}

pub fn session_info(session: &store::Session, current: store::SessionId) -> proto::SessionInfo {
    proto::SessionInfo {
        id: session.id,
        device: session.device.clone(),
        created_at: session.created_at,
        last_seen_at: session.last_seen_at,
        expires_at: session.expires_at,
        current: session.id == current,
    }
}
