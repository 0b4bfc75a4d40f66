//! What the UI hears from the shell: [`UiEvent`], an event name and its payload. The contract is
//! generated for the UI from these types (`ui/src/generated/desktop.ts`, see `contract`): wire
//! types pass through as they are; the rest are small view-models.

use serde::Serialize;
use serde_json::Value;
use tauri::{AppHandle, Emitter};
use tidings_client::{ClientEvent, ConnectionState, LockCause};
use tidings_proto::v1::{
    ErrorBody, Message, MessageId, PresenceStatus, RoomId, RoomState, SessionStatus, UserId,
    UserRef,
};

/// Every event the shell emits: the variant's name (snake case) is the event's name, its content
/// the payload.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "name", content = "payload", rename_all = "snake_case")]
pub enum UiEvent {
    State(ConnectionState),
    Rooms(Vec<RoomState>),
    Message(Message),
    Changed(Message),
    Sent(SentEvent),
    SendFailed(SendFailedEvent),
    Typing(TypingEvent),
    Presence(PresenceEvent),
    /// Who is online as of a (re)connect; `presence` events follow each change.
    Online(Vec<UserId>),
    Read(ReadEvent),
    Session(SessionStatus),
    Locked(LockedEvent),
    Unlocked(()),
    /// A notification was clicked: open its room.
    OpenRoom(OpenRoomEvent),
    /// Do not disturb was switched (from the tray).
    Dnd(bool),
    /// How far an upload has gone.
    UploadProgress(UploadProgressEvent),
    /// Quit was chosen in the tray while this computer hosts the group: ask first.
    ConfirmQuit(()),
    /// The server's certificate is not trusted (changed since it was pinned, say) and the chat
    /// cannot connect: the error to show, with the fingerprint to compare.
    Untrusted(UntrustedEvent),
}

/// `sent` of `total` bytes of the upload the UI named `upload` have gone out.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct UploadProgressEvent {
    pub upload: String,
    pub sent: u64,
    pub total: u64,
}

/// An outbox message was stored by the server.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SentEvent {
    pub client_id: String,
    pub room: RoomId,
    pub message_id: MessageId,
}

/// The server refused an outbox message for good.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SendFailedEvent {
    pub client_id: String,
    pub room: RoomId,
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct TypingEvent {
    pub room: RoomId,
    pub user: UserRef,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct PresenceEvent {
    pub user: UserRef,
    pub status: PresenceStatus,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ReadEvent {
    pub room: RoomId,
    pub message_id: MessageId,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct LockedEvent {
    pub cause: LockCause,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct OpenRoomEvent {
    pub room: RoomId,
}

/// A certificate the client refused, mid-session.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct UntrustedEvent {
    pub server: String,
    pub error: crate::error::CommandError,
}

/// The UI event for a client event, or `None` for what the UI does not need.
pub fn event(event: &ClientEvent) -> Option<UiEvent> {
    Some(match event {
        ClientEvent::State(state) => UiEvent::State(state.clone()),
        ClientEvent::Rooms(rooms) => UiEvent::Rooms(rooms.clone()),
        ClientEvent::Message(message) => UiEvent::Message(message.clone()),
        ClientEvent::Changed(message) => UiEvent::Changed(message.clone()),
        ClientEvent::Sent {
            client_id,
            room,
            message_id,
        } => UiEvent::Sent(SentEvent {
            client_id: client_id.clone(),
            room: *room,
            message_id: *message_id,
        }),
        ClientEvent::SendFailed {
            client_id,
            room,
            error,
        } => UiEvent::SendFailed(SendFailedEvent {
            client_id: client_id.clone(),
            room: *room,
            error: error.clone(),
        }),
        ClientEvent::Typing { room, user } => UiEvent::Typing(TypingEvent {
            room: *room,
            user: user.clone(),
        }),
        ClientEvent::Presence { user, status } => UiEvent::Presence(PresenceEvent {
            user: user.clone(),
            status: *status,
        }),
        ClientEvent::Online(users) => UiEvent::Online(users.clone()),
        ClientEvent::Read { room, message_id } => UiEvent::Read(ReadEvent {
            room: *room,
            message_id: *message_id,
        }),
        ClientEvent::Session(status) => UiEvent::Session(status.clone()),
        ClientEvent::Locked(cause) => UiEvent::Locked(LockedEvent { cause: *cause }),
        ClientEvent::Unlocked => UiEvent::Unlocked(()),
        ClientEvent::Untrusted {
            server,
            fingerprint,
            reason,
            pinned,
        } => UiEvent::Untrusted(UntrustedEvent {
            server: server.clone(),
            error: tidings_client::ClientError::UntrustedCertificate {
                server: server.clone(),
                fingerprint: fingerprint.clone(),
                reason: reason.clone(),
                pinned: pinned.clone(),
            }
            .into(),
        }),
        ClientEvent::Synced { .. } | ClientEvent::Notified(_) | ClientEvent::Withdrawn { .. } => {
            return None;
        }
    })
}

/// Sends `event` to the UI: its name, and its payload as JSON.
pub fn emit(app: &AppHandle, event: &UiEvent) {
    let Ok(Value::Object(mut fields)) = serde_json::to_value(event) else {
        return;
    };
    let payload = fields.remove("payload").unwrap_or(Value::Null);
    if let Some(Value::String(name)) = fields.remove("name") {
        let _ = app.emit(&name, payload);
    }
}
