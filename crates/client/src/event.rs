//! What the client tells a UI: one stream of [`ClientEvent`]s.

use serde::Serialize;
use tidings_proto::v1::{
    ErrorBody, Message, MessageId, Millis, PresenceStatus, RoomId, RoomState, SessionStatus,
    TransportKind, UserId, UserRef,
};

use crate::notify::Notification;

/// Where the connection to the server stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    /// Opening the chat channel.
    Connecting,
    /// Connected and in sync, over `transport` (the WebSocket, or a rung below it where the
    /// network breaks it).
    Online { transport: TransportKind },
    /// Not connected; the next attempt is at `retry_at` (unix ms). `attempt` counts failures
    /// since the last success.
    Offline { retry_at: Millis, attempt: u32 },
    /// The session ended; nothing is sent until the user logs in again.
    Locked,
}

/// Why the client locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum LockCause {
    /// The session's lifetime or idle timeout ran out.
    Expired,
    /// The session was revoked from another device, or logged out.
    Revoked,
    /// The server no longer accepts the token (it answered 401).
    Rejected,
    /// The user locked the client ("lock now").
    Manual,
}

/// One thing that happened, for a UI to render.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    State(ConnectionState),
    /// The room list changed (counts, names, a room joined or left).
    Rooms(Vec<RoomState>),
    /// A message new to this client (live, or caught up after a reconnect).
    Message(Message),
    /// A message was edited or deleted, or its reactions changed: here it is as it now is.
    Changed(Message),
    /// An outbox message was stored by the server.
    Sent {
        client_id: String,
        room: RoomId,
        message_id: MessageId,
    },
    /// The server refused an outbox message for good (too large, not a member, ...); it was
    /// taken out of the outbox.
    SendFailed {
        client_id: String,
        room: RoomId,
        error: ErrorBody,
    },
    Typing {
        room: RoomId,
        user: UserRef,
    },
    Presence {
        user: UserRef,
        status: PresenceStatus,
    },
    /// Who is online, as of a (re)connect; `Presence` events follow each change.
    Online(Vec<UserId>),
    /// The user's read marker moved (here or on another device).
    Read {
        room: RoomId,
        message_id: MessageId,
    },
    /// Caught up: every message up to `latest_id` is in the local cache.
    Synced {
        latest_id: MessageId,
    },
    /// The session's status, as the server pushes it every few seconds.
    Session(SessionStatus),
    Locked(LockCause),
    /// A new login replaced the locked session.
    Unlocked,
    /// An OS notification was raised (or updated).
    Notified(Notification),
    /// The notification of burst `key` was withdrawn: the message it showed was deleted.
    Withdrawn {
        key: u64,
    },
    /// The server showed a certificate this client does not believe, and the chat cannot
    /// connect: `pinned` is the one trusted before (it changed), else none was. Show
    /// `fingerprint` to compare; [`crate::Client::trust_certificate`] pins it and reconnects.
    Untrusted {
        server: String,
        fingerprint: String,
        reason: String,
        pinned: Option<String>,
    },
}
