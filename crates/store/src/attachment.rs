//! Attachments: files and images shared in a room. The store keeps what is known of each (its
//! room, uploader, name, type, size, an image's dimensions); the bytes are the server's to keep,
//! under the attachment's id.

use crate::{MessageId, Millis, NewMessage, RoomId, StoreError, UserId};

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

/// The attachments `msg` asks to carry, each once, in the order asked.
pub(crate) fn asked(msg: &NewMessage) -> Vec<&str> {
    let mut ids: Vec<&str> = Vec::with_capacity(msg.attachments.len());
    for id in &msg.attachments {
        if !ids.contains(&id.as_str()) {
            ids.push(id);
        }
    }
    ids
}

/// Decides whether `msg` may carry the attachments `found` for what it [`asked`] (`None` where
/// no attachment has that id): each must be its author's upload to its room that no message
/// carries yet. Returns them as the message will show them, in the order asked.
pub(crate) fn claim(
    msg: &NewMessage,
    found: Vec<Option<Attachment>>,
) -> Result<Vec<Attachment>, StoreError> {
    let mut claimed = Vec::with_capacity(found.len());
    for attachment in found {
        match attachment {
            Some(a)
                if a.room_id == msg.room_id
                    && a.uploader_id == msg.author_id
                    && a.message_id.is_none() =>
            {
                claimed.push(a);
            }
            _ => return Err(StoreError::AttachmentUnavailable),
        }
    }
    Ok(claimed)
}

/// One attachment as a message's read gives it: `[id, name, content_type, size, width, height,
/// created_at]` (see the backends' `message_columns!`).
type CarriedRow = (
    String,
    String,
    String,
    u64,
    Option<u32>,
    Option<u32>,
    Millis,
);

/// The attachments of a message read from its JSON column (`None` or `[]`: none), already in
/// the order the message put them.
pub(crate) fn carried(
    json: Option<&str>,
    room_id: RoomId,
    uploader_id: UserId,
    message_id: MessageId,
) -> Result<Vec<Attachment>, StoreError> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let rows: Vec<CarriedRow> = serde_json::from_str(json)
        .map_err(|err| StoreError::Unreadable(format!("a message's attachments: {err}")))?;
    Ok(rows
        .into_iter()
        .map(
            |(id, name, content_type, size, width, height, created_at)| Attachment {
                id,
                room_id,
                uploader_id,
                message_id: Some(message_id),
                name,
                content_type,
                size,
                image: width.zip(height),
                created_at,
            },
        )
        .collect())
}
