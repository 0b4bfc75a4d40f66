//! Attachments: files and images shared in a room. The store keeps what is known of each (its
//! room, uploader, name, type, size, an image's dimensions); the bytes are the server's to keep,
//! under the attachment's id.

use crate::{MessageId, Millis, RoomId, UserId};

/// An attachment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Random and unguessable, chosen by the server; the bytes are kept under it.
    pub id: String,
    /// The room it was uploaded to: its members may read it.
    pub room_id: RoomId,
    pub uploader_id: UserId,
    /// The message that carries it, once one does.
    pub message_id: Option<MessageId>,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// Width and height of an image the server could open (it then has a thumbnail).
    pub image: Option<(u32, u32)>,
    pub created_at: Millis,
}

impl NewAttachment {
    /// The attachment as stored once recorded: carried by no message yet.
    pub(crate) fn recorded(self) -> Attachment {
        Attachment {
            id: self.id,
            room_id: self.room_id,
            uploader_id: self.uploader_id,
            message_id: None,
            name: self.name,
            content_type: self.content_type,
            size: self.size,
            image: self.image,
            created_at: self.now,
        }
    }
}

/// An attachment to record: see [`crate::Store::add_attachment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub id: String,
    pub room_id: RoomId,
    pub uploader_id: UserId,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub image: Option<(u32, u32)>,
    pub now: Millis,
    /// The most bytes the uploader's attachments may add up to, this one included.
    pub quota: u64,
}
