//! The nouns every part of the protocol refers to.

use serde::{Deserialize, Serialize};

/// A user's id. Ids are positive and never reused.
pub type UserId = i64;
/// A room's id (group rooms and direct messages share one id space).
pub type RoomId = i64;
/// A message's id: assigned by the server at commit, strictly increasing across the whole server.
/// It is the resume cursor of both the chat channel (`sync`) and the feed (`Last-Event-ID`).
pub type MessageId = i64;
/// A login session's id (not its token: ids are safe to show and to send back).
pub type SessionId = i64;
/// A point in time: milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// A user as other users see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserRef {
    pub id: UserId,
    pub name: String,
}

/// What a user may do on the server beyond chatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Created by `tidings-server init`; can invite people.
    Owner,
    Member,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// A named room anyone on the server can join.
    Group,
    /// A direct conversation between exactly two users.
    Dm,
}

/// A room, without anything specific to the user looking at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "typescript", ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Room {
    pub id: RoomId,
    pub kind: RoomKind,
    /// The name of a group room; absent for a DM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The other member of a DM, when the room is seen by one of its two members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm_peer: Option<UserRef>,
}

/// A room the user is a member of, with the user's read position in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomState {
    #[serde(flatten)]
    pub room: Room,
    /// The newest message the user has read here (0: none).
    pub last_read_id: MessageId,
    /// The newest message in the room (0: the room is empty).
    pub latest_id: MessageId,
    /// Messages after `last_read_id` written by someone else.
    pub unread: u64,
    /// Of the unread messages, those that mention the user.
    pub unread_mentions: u64,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "typescript", ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    pub id: MessageId,
    pub room: RoomId,
    pub author: UserRef,
    /// Plain text. Never to be rendered as HTML.
    pub body: String,
    pub sent_at: Millis,
    /// The id the author's client chose for idempotency, echoed so the author can match its outbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Users mentioned with `@name` (and the author of the message it answers), ascending by id.
    /// Left out when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "typescript", ts(as = "Option<Vec<UserId>>", optional))]
    pub mentions: Vec<UserId>,
    /// When its author last changed the body; absent when never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Millis>,
    /// When it was deleted: the body is then empty, with no mentions or reactions. A deleted
    /// message stays in place as a placeholder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Millis>,
    /// Its reactions, each emoji once, in the order first added. Left out when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "typescript", ts(as = "Option<Vec<Reaction>>", optional))]
    pub reactions: Vec<Reaction>,
    /// The message this one answers, as that one now is. Its author is among `mentions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Quote>,
    /// The files and images it carries, in the order its author put them. Left out when there
    /// are none; a deleted message has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "typescript", ts(as = "Option<Vec<Attachment>>", optional))]
    pub attachments: Vec<Attachment>,
}

/// The message a reply answers, as it now is: its start, or nothing once deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quote {
    pub id: MessageId,
    pub author: UserRef,
    /// The start of its body (as the feed's previews are cut); empty once deleted.
    pub preview: String,
    pub deleted: bool,
}

/// One emoji on a message, and who added it, in the order they did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reaction {
    pub emoji: String,
    pub users: Vec<UserId>,
}

/// A file or image uploaded to a room, which its members may download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attachment {
    /// Random and unguessable: `GET /api/attachments/{id}` downloads it.
    pub id: String,
    pub room: RoomId,
    /// The file's name as uploaded, without any directory.
    pub name: String,
    /// What the server found it to be (an image's own format), or what the uploader said.
    pub content_type: String,
    pub size: u64,
    /// For an image the server could open: its size in pixels. It then has a thumbnail,
    /// `GET /api/attachments/{id}/thumbnail`, and is shown inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSize>,
}

/// An image's width and height in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

/// One page of a room's history, oldest message first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryPage {
    pub room: RoomId,
    pub messages: Vec<Message>,
    /// Whether older messages exist before the first one of this page.
    pub has_more: bool,
}

/// Whether a user has at least one live chat connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Online,
    Offline,
}
