//! Client events as the UI receives them: an event name and a JSON payload (the contract is in
//! `ui/src/ipc.ts`). Wire types pass through as they are; the rest are small view-models.

use serde_json::{Value, json};
use tidings_client::{ClientEvent, ConnectionState};

/// The UI event for a client event, or `None` for what the UI does not need.
pub fn event(event: &ClientEvent) -> Option<(&'static str, Value)> {
    let named = match event {
        ClientEvent::State(state) => ("state", state_json(state)),
        ClientEvent::Rooms(rooms) => ("rooms", json!(rooms)),
        ClientEvent::Message(message) => ("message", json!(message)),
        ClientEvent::Sent {
            client_id,
            room,
            message_id,
        } => (
            "sent",
            json!({ "client_id": client_id, "room": room, "message_id": message_id }),
        ),
        ClientEvent::SendFailed {
            client_id,
            room,
            error,
        } => (
            "send_failed",
            json!({ "client_id": client_id, "room": room, "error": error }),
        ),
        ClientEvent::Typing { room, user } => ("typing", json!({ "room": room, "user": user })),
        ClientEvent::Presence { user, status } => {
            ("presence", json!({ "user": user, "status": status }))
        }
        ClientEvent::Online(users) => ("online", json!(users)),
        ClientEvent::Read { room, message_id } => {
            ("read", json!({ "room": room, "message_id": message_id }))
        }
        ClientEvent::Session(status) => ("session", json!(status)),
        ClientEvent::Locked(cause) => ("locked", json!({ "cause": cause })),
        ClientEvent::Unlocked => ("unlocked", Value::Null),
        ClientEvent::Synced { .. } | ClientEvent::Notified(_) => return None,
    };
    Some(named)
}

pub fn state_json(state: &ConnectionState) -> Value {
    serde_json::to_value(state).unwrap_or(Value::Null)
}
