//! The WebSocket chat channel: JSON text frames, one object per frame, tagged by `type`.

use serde::{Deserialize, Serialize};

use super::error::{ErrorBody, ErrorCode};
use super::feed::{Lock, SessionStatus};
use super::model::{
    HistoryPage, Message, MessageId, PresenceStatus, RoomId, RoomState, SessionId, UserId, UserRef,
};

/// Longest `client_id` the server accepts, in bytes.
pub const MAX_CLIENT_ID_LEN: usize = 64;
/// Largest history page; larger `limit`s are clamped to it.
pub const MAX_HISTORY_LIMIT: u32 = 200;

/// The most files one message carries.
pub const MAX_ATTACHMENTS: usize = 10;

/// A frame from the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Post a message. The server answers `ack` once it is durably stored (and `error` if not).
    /// Sending the same `client_id` again stores nothing new and acks the stored message.
    Send {
        room: RoomId,
        client_id: String,
        body: String,
        /// A message of the same room this one answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<MessageId>,
        /// Ids of the sender's own uploads to this room that no message carries yet (at most
        /// [`MAX_ATTACHMENTS`]); with some, the body may be empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[cfg_attr(feature = "typescript", ts(as = "Option<Vec<String>>", optional))]
        attachments: Vec<String>,
    },
    /// Move the read marker of a room forward.
    Read { room: RoomId, message_id: MessageId },
    /// The user is typing in a room.
    Typing { room: RoomId },
    /// Ask for one page of a room's history, older than `before` (the newest page when absent).
    History {
        room: RoomId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<MessageId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Ask for every message after `since` in the user's rooms, as `message` frames followed by
    /// one `synced`. Sent after each reconnect with the last message id seen.
    Sync { since: MessageId },
    /// Replace the body of one's own message. Everyone in the room hears `changed`; a refusal
    /// is an `error` naming the frame.
    Edit { message_id: MessageId, body: String },
    /// Delete one's own message (an owner: anyone's). It stays as a placeholder without a body.
    Delete { message_id: MessageId },
    /// Add a reaction to a message of a room one is in.
    React {
        message_id: MessageId,
        emoji: String,
    },
    /// Take back one's reaction.
    Unreact {
        message_id: MessageId,
        emoji: String,
    },
}

impl ClientFrame {
    /// The frame's `type`, as it appears on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Send { .. } => "send",
            ClientFrame::Read { .. } => "read",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::History { .. } => "history",
            ClientFrame::Sync { .. } => "sync",
            ClientFrame::Edit { .. } => "edit",
            ClientFrame::Delete { .. } => "delete",
            ClientFrame::React { .. } => "react",
            ClientFrame::Unreact { .. } => "unreact",
        }
    }
}

/// A frame from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The first frame on every connection.
    Hello(Hello),
    /// A new message in one of the user's rooms (also the answer to `sync`).
    Message(Message),
    /// A message was edited or deleted, or its reactions changed: `message` is as it now is.
    /// `id` is the change's place in the log, the cursor `sync` resumes from like a message's.
    Changed { id: MessageId, message: Message },
    /// The message sent with `client_id` is durably stored as `id`.
    Ack {
        client_id: String,
        id: MessageId,
        room: RoomId,
    },
    /// Someone is typing in a room.
    Typing { room: RoomId, user: UserRef },
    /// A user came online or went offline.
    Presence {
        user: UserRef,
        status: PresenceStatus,
    },
    /// The user's read marker moved (on this or another of the user's devices).
    Read {
        room: RoomId,
        user: UserId,
        message_id: MessageId,
    },
    /// The answer to `history`.
    History(HistoryPage),
    /// The end of the answer to `sync`: every message up to `latest_id` has been sent. When
    /// `has_more`, sync again from the last message received.
    Synced {
        latest_id: MessageId,
        has_more: bool,
    },
    /// A frame could not be carried out. The connection stays open.
    Error(ErrorBody),
    /// The session's status. Only on the HTTP transports (`/api/poll`, `/api/stream`): the
    /// WebSocket leaves it to the feed.
    Session(SessionStatus),
    /// The session has ended; nothing follows. Only on the HTTP transports: the WebSocket says
    /// it with its close code.
    Lock(Lock),
}

/// The first frame on every connection: who you are and where you stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct Hello {
    pub user: UserRef,
    pub session: SessionId,
    pub rooms: Vec<RoomState>,
    /// Of the users who share a room with this one (and this one), those with at least one live
    /// chat connection when this connection opened; `presence` frames keep it current. Presence
    /// is told only to the people who share a room with the user.
    pub online: Vec<UserId>,
    /// The newest message id on the server when the connection opened.
    pub latest_id: MessageId,
    /// The server pings this often; a client that hears nothing for two intervals should reconnect.
    pub heartbeat_ms: u64,
    /// The largest message body the server accepts, in bytes.
    pub max_body_bytes: usize,
}

/// Why a client frame could not be decoded. Carries what could be read of it, so the `error`
/// frame can say which frame it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub code: ErrorCode,
    pub message: String,
    pub frame: Option<String>,
    pub client_id: Option<String>,
}

impl From<FrameError> for ErrorBody {
    fn from(e: FrameError) -> Self {
        ErrorBody {
            code: e.code,
            message: e.message,
            frame: e.frame,
            client_id: e.client_id,
            retry_after_ms: None,
        }
    }
}

/// Decodes a client frame, telling a malformed frame (`bad_frame`) from a well-formed one of a type
/// this version does not have (`unknown_type`).
pub fn decode_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    // serde would also take a JSON array for a tagged enum; the protocol is objects only.
    if !text.trim_start().starts_with('{') {
        return Err(FrameError {
            code: ErrorCode::BadFrame,
            message: "malformed frame: expected a JSON object".to_owned(),
            frame: None,
            client_id: None,
        });
    }
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => Ok(frame),
        Err(err) => {
            // Read just the envelope to say which frame failed and why.
            #[derive(Deserialize)]
            struct Envelope {
                #[serde(rename = "type")]
                kind: Option<String>,
                client_id: Option<serde_json::Value>,
            }
            let envelope = serde_json::from_str::<Envelope>(text).ok();
            let kind = envelope.as_ref().and_then(|e| e.kind.clone());
            let client_id = envelope
                .and_then(|e| e.client_id)
                .and_then(|v| v.as_str().map(str::to_owned));
            let known = matches!(
                kind.as_deref(),
                Some(
                    "send"
                        | "read"
                        | "typing"
                        | "history"
                        | "sync"
                        | "edit"
                        | "delete"
                        | "react"
                        | "unreact"
                )
            );
            let (code, message) = match &kind {
                Some(k) if !known => (ErrorCode::UnknownType, format!("unknown frame type {k:?}")),
                _ => (ErrorCode::BadFrame, format!("malformed frame: {err}")),
            };
            Err(FrameError {
                code,
                message,
                frame: kind,
                client_id,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_type_is_unknown_type_and_names_it() {
        let err = decode_client_frame(r#"{"type":"dance"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownType);
        assert_eq!(err.frame.as_deref(), Some("dance"));
        assert_eq!(err.client_id, None);
    }

    #[test]
    fn text_that_is_not_json_is_a_bad_frame_of_no_type() {
        let err = decode_client_frame("not json").unwrap_err();
        assert_eq!(err.code, ErrorCode::BadFrame);
        assert_eq!(err.frame, None);
        assert_eq!(err.client_id, None);
    }

    #[test]
    fn json_without_a_type_is_a_bad_frame() {
        for text in [
            r#"{"room":1}"#,
            r#"{"type":null}"#,
            r#"{"type":7}"#,
            "[]",
            "42",
        ] {
            let err = decode_client_frame(text).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadFrame, "{text}");
            assert_eq!(err.frame, None, "{text}");
        }
    }

    #[test]
    fn a_known_type_missing_fields_is_a_bad_frame_naming_the_type() {
        let err = decode_client_frame(r#"{"type":"send","room":1}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadFrame);
        assert_eq!(err.frame.as_deref(), Some("send"));
        assert_eq!(err.client_id, None);
    }

    #[test]
    fn a_known_type_with_a_wrongly_typed_field_is_a_bad_frame() {
        let err = decode_client_frame(r#"{"type":"sync","since":"yesterday"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadFrame);
        assert_eq!(err.frame.as_deref(), Some("sync"));
    }

    #[test]
    fn a_bad_send_carries_its_client_id_so_the_outbox_can_match_it() {
        let err =
            decode_client_frame(r#"{"type":"send","room":"one","client_id":"c-1","body":"x"}"#)
                .unwrap_err();
        assert_eq!(err.code, ErrorCode::BadFrame);
        assert_eq!(err.frame.as_deref(), Some("send"));
        assert_eq!(err.client_id.as_deref(), Some("c-1"));

        let err = decode_client_frame(r#"{"type":"dance","client_id":"c-2"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownType);
        assert_eq!(err.client_id.as_deref(), Some("c-2"));
    }

    #[test]
    fn a_client_id_that_is_not_a_string_is_not_echoed() {
        let err = decode_client_frame(r#"{"type":"send","room":1,"client_id":7}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadFrame);
        assert_eq!(err.frame.as_deref(), Some("send"));
        assert_eq!(err.client_id, None);
    }

    #[test]
    fn a_frame_error_becomes_an_error_body_with_everything_it_read() {
        let err = decode_client_frame(r#"{"type":"send","room":1,"client_id":"c-1"}"#).unwrap_err();
        let message = err.message.clone();
        let body = ErrorBody::from(err);
        assert_eq!(body.code, ErrorCode::BadFrame);
        assert_eq!(body.message, message);
        assert_eq!(body.frame.as_deref(), Some("send"));
        assert_eq!(body.client_id.as_deref(), Some("c-1"));
        assert_eq!(body.retry_after_ms, None);
    }

    #[test]
    fn a_well_formed_frame_decodes_whatever_the_field_order_and_extra_fields() {
        let frame = decode_client_frame(
            r#"{"body":"hi","client_id":"c-1","room":3,"type":"send","sent_by":"a newer client"}"#,
        );
        assert_eq!(
            frame,
            Ok(ClientFrame::Send {
                room: 3,
                client_id: "c-1".to_owned(),
                body: "hi".to_owned(),
                reply_to: None,
                attachments: Vec::new(),
            })
        );
    }

    #[test]
    fn kind_names_every_frame_type_the_decoder_knows() {
        let frames = [
            ClientFrame::Send {
                room: 1,
                client_id: "c".to_owned(),
                body: "b".to_owned(),
                reply_to: None,
                attachments: Vec::new(),
            },
            ClientFrame::Read {
                room: 1,
                message_id: 2,
            },
            ClientFrame::Typing { room: 1 },
            ClientFrame::History {
                room: 1,
                before: None,
                limit: None,
            },
            ClientFrame::Sync { since: 0 },
        ];
        for frame in frames {
            let json = serde_json::to_value(&frame).unwrap();
            assert_eq!(json["type"], frame.kind());
            // With its fields gone, the type must still be recognised as known.
            let bare = format!(r#"{{"type":"{}","room":"x","since":"x"}}"#, frame.kind());
            let err = decode_client_frame(&bare).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadFrame, "{bare}");
        }
    }

    #[test]
    fn an_unknown_error_code_reads_as_unknown() {
        let code: ErrorCode = serde_json::from_str(r#""quota_exceeded""#).unwrap();
        assert_eq!(code, ErrorCode::Unknown);

        let frame: ServerFrame = serde_json::from_str(
            r#"{"type":"error","code":"quota_exceeded","message":"from a newer server","frame":"send"}"#,
        )
        .unwrap();
        let ServerFrame::Error(body) = frame else {
            panic!("expected an error frame, got {frame:?}");
        };
        assert_eq!(body.code, ErrorCode::Unknown);
        assert_eq!(body.message, "from a newer server");
        assert_eq!(body.frame.as_deref(), Some("send"));
    }

    #[test]
    fn a_json_array_is_not_a_frame() {
        let err = decode_client_frame(r#"["sync", 5]"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadFrame);
    }
}
