//! The exact JSON of every frame, feed event and API body, pinned. A change to any of these files
//! is a change to the protocol that every client sees: review it as one.
//!
//! Each pinned value is also decoded back from its own JSON, so a snapshot can never show a shape
//! the other side would refuse.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tidings_proto::v1::{
    Attachment, ClientFrame, CreateRoom, ErrorBody, ErrorCode, Fragment, Hello, HistoryPage,
    ImageSize, Invite, Lock, LockReason, LoginRequest, LoginResponse, Me, Message, MessageAlert,
    OpenDm, PresenceStatus, Quote, Reaction, ReadMarker, RegisterRequest, Reset, Retract, Revoked,
    Role, Room, RoomKind, RoomState, SearchHit, SearchResults, SendMessage, ServerFrame,
    SessionInfo, SessionState, SessionStatus, UserRef, decode_client_frame,
};

/// Pins the pretty JSON of a value under the name of the test that calls it. A macro rather than a
/// function so that insta names the snapshot after the test.
macro_rules! pin_json {
    ($value:expr) => {{
        let value = $value;
        let json = serde_json::to_string_pretty(&value).unwrap();
        assert_decodes_to(&json, &value);
        insta::assert_snapshot!(json);
    }};
}

fn assert_decodes_to<T>(json: &str, value: &T)
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let back: T = serde_json::from_str(json).unwrap();
    assert_eq!(&back, value, "json: {json}");
}

/// A fixed instant (2026-05-04 12:00:00 UTC) so timestamps in snapshots read as times.
const NOON: i64 = 1_777_896_000_000;

fn ada() -> UserRef {
    UserRef {
        id: 1,
        name: "ada".to_owned(),
    }
}

fn grace() -> UserRef {
    UserRef {
        id: 2,
        name: "grace".to_owned(),
    }
}

fn session_info() -> SessionInfo {
    SessionInfo {
        id: 7,
        device: "laptop".to_owned(),
        created_at: NOON - 86_400_000,
        last_seen_at: NOON,
        expires_at: NOON + 29 * 86_400_000,
        current: true,
    }
}

/// A message with everything optional present.
fn full_message() -> Message {
    Message {
        id: 42,
        room: 3,
        author: ada(),
        body: "hi @grace, \"quoted\"\nsecond line 🎉".to_owned(),
        sent_at: NOON,
        client_id: Some("c-0001".to_owned()),
        mentions: vec![2],
        edited_at: Some(NOON + 5_000),
        deleted_at: None,
        reactions: vec![Reaction {
            emoji: "👍".to_owned(),
            users: vec![2, 1],
        }],
        reply_to: Some(Quote {
            id: 40,
            author: grace(),
            preview: "who's around?".to_owned(),
            deleted: false,
        }),
        attachments: Vec::new(),
    }
}

/// A message with nothing optional: `client_id`, `mentions`, the times of changes and
/// `reactions` must be absent, not null or [].
fn bare_message() -> Message {
    Message {
        id: 43,
        room: 3,
        author: grace(),
        body: "hello".to_owned(),
        sent_at: NOON + 1_000,
        client_id: None,
        mentions: vec![],
        edited_at: None,
        deleted_at: None,
        reactions: vec![],
        reply_to: None,
        attachments: Vec::new(),
    }
}

// ---- Chat channel: client frames ----

#[test]
fn client_send() {
    let frame = ClientFrame::Send {
        room: 3,
        client_id: "c-0001".to_owned(),
        body: "hi @grace".to_owned(),
        reply_to: None,
        attachments: Vec::new(),
    };
    let json = serde_json::to_string(&frame).unwrap();
    assert_eq!(decode_client_frame(&json), Ok(frame.clone()));
    pin_json!(frame);
}

#[test]
fn client_read() {
    pin_json!(ClientFrame::Read {
        room: 3,
        message_id: 42,
    });
}

#[test]
fn client_typing() {
    pin_json!(ClientFrame::Typing { room: 3 });
}

#[test]
fn client_history_before() {
    pin_json!(ClientFrame::History {
        room: 3,
        before: Some(42),
        limit: Some(50),
    });
}

#[test]
fn client_history_newest() {
    pin_json!(ClientFrame::History {
        room: 3,
        before: None,
        limit: None,
    });
}

#[test]
fn client_sync() {
    pin_json!(ClientFrame::Sync { since: 42 });
}

// ---- Chat channel: server frames ----

#[test]
fn server_hello() {
    pin_json!(ServerFrame::Hello(Hello {
        user: ada(),
        session: 7,
        rooms: vec![
            RoomState {
                room: Room {
                    id: 3,
                    kind: RoomKind::Group,
                    name: Some("general".to_owned()),
                    dm_peer: None,
                },
                last_read_id: 40,
                latest_id: 43,
                unread: 2,
                unread_mentions: 1,
            },
            RoomState {
                room: Room {
                    id: 4,
                    kind: RoomKind::Dm,
                    name: None,
                    dm_peer: Some(grace()),
                },
                last_read_id: 0,
                latest_id: 0,
                unread: 0,
                unread_mentions: 0,
            },
        ],
        online: vec![1, 2],
        latest_id: 43,
        heartbeat_ms: 20_000,
        max_body_bytes: 4_096,
    }));
}

#[test]
fn server_message() {
    pin_json!(ServerFrame::Message(full_message()));
}

#[test]
fn server_message_bare() {
    pin_json!(ServerFrame::Message(bare_message()));
}

#[test]
fn server_ack() {
    pin_json!(ServerFrame::Ack {
        client_id: "c-0001".to_owned(),
        id: 42,
        room: 3,
    });
}

#[test]
fn server_typing() {
    pin_json!(ServerFrame::Typing {
        room: 3,
        user: grace(),
    });
}

#[test]
fn server_presence() {
    pin_json!(ServerFrame::Presence {
        user: grace(),
        status: PresenceStatus::Offline,
    });
}

#[test]
fn server_read() {
    pin_json!(ServerFrame::Read {
        room: 3,
        user: 1,
        message_id: 42,
    });
}

#[test]
fn server_history() {
    pin_json!(ServerFrame::History(HistoryPage {
        room: 3,
        messages: vec![full_message(), bare_message()],
        has_more: true,
    }));
}

/// An uploaded image: its size in pixels is there; a file has none.
#[test]
fn attachment_image() {
    pin_json!(Attachment {
        id: "Zm9vYmFy".to_owned(),
        room: 3,
        name: "photo.png".to_owned(),
        content_type: "image/png".to_owned(),
        size: 48_213,
        image: Some(ImageSize {
            width: 800,
            height: 600,
        }),
    });
}

/// The answer to a search: each hit's text as pieces, the matched words marked.
#[test]
fn search_results() {
    let results = SearchResults {
        hits: vec![SearchHit {
            message: bare_message(),
            highlight: vec![
                Fragment {
                    text: "say ".to_owned(),
                    hit: false,
                },
                Fragment {
                    text: "hello".to_owned(),
                    hit: true,
                },
            ],
        }],
        has_more: false,
        cached: false,
    };
    pin_json!(results);
}

#[test]
fn server_synced() {
    pin_json!(ServerFrame::Synced {
        latest_id: 43,
        has_more: false,
    });
}

#[test]
fn server_error_answering_a_send() {
    pin_json!(ServerFrame::Error(ErrorBody {
        code: ErrorCode::NotMember,
        message: "you are not a member of this room".to_owned(),
        frame: Some("send".to_owned()),
        client_id: Some("c-0001".to_owned()),
        retry_after_ms: None,
    }));
}

#[test]
fn server_error_rate_limited() {
    pin_json!(ServerFrame::Error(ErrorBody {
        retry_after_ms: Some(1_500),
        ..ErrorBody::new(ErrorCode::RateLimited, "slow down")
    }));
}

// ---- Errors ----

/// The wire names of every error code. Clients branch on these strings.
#[test]
fn error_codes() {
    pin_json!(vec![
        ErrorCode::BadFrame,
        ErrorCode::UnknownType,
        ErrorCode::Invalid,
        ErrorCode::TooLarge,
        ErrorCode::UnknownRoom,
        ErrorCode::NotMember,
        ErrorCode::RateLimited,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::OriginNotAllowed,
        ErrorCode::SubprotocolRequired,
        ErrorCode::BadCredentials,
        ErrorCode::InviteInvalid,
        ErrorCode::NameTaken,
        ErrorCode::NotFound,
        ErrorCode::Overloaded,
        ErrorCode::Storage,
        ErrorCode::Internal,
    ]);
}

/// An HTTP error body carries only the code and the message.
#[test]
fn api_error_body() {
    pin_json!(ErrorBody::new(ErrorCode::Unauthorized, "log in first"));
}

// ---- Feed ----

#[test]
fn feed_session_status() {
    pin_json!(SessionStatus {
        state: SessionState::Expiring,
        now: NOON,
        expires_at: NOON + 300_000,
        idle_expires_at: NOON + 120_000,
    });
}

#[test]
fn feed_session_states() {
    pin_json!(vec![
        SessionState::Active,
        SessionState::Expiring,
        SessionState::Expired,
        SessionState::Revoked,
    ]);
}

#[test]
fn feed_lock() {
    pin_json!(Lock {
        reason: LockReason::Revoked,
    });
}

#[test]
fn feed_lock_reasons() {
    pin_json!(vec![LockReason::Expired, LockReason::Revoked]);
}

#[test]
fn feed_message_alert() {
    pin_json!(MessageAlert {
        room: 3,
        id: 42,
        author: ada(),
        preview: "hi @grace".to_owned(),
        sent_at: NOON,
        mentions_you: true,
    });
}

#[test]
fn feed_retract() {
    pin_json!(Retract { room: 3, id: 44 });
}

#[test]
fn client_edit_delete_react() {
    pin_json!(ClientFrame::Edit {
        message_id: 42,
        body: "fixed".to_owned(),
    });
    pin_json!(ClientFrame::Delete { message_id: 42 });
    pin_json!(ClientFrame::React {
        message_id: 42,
        emoji: "🎉".to_owned(),
    });
    pin_json!(ClientFrame::Unreact {
        message_id: 42,
        emoji: "🎉".to_owned(),
    });
}

#[test]
fn server_changed() {
    let mut deleted = bare_message();
    deleted.body = String::new();
    deleted.deleted_at = Some(NOON + 9_000);
    pin_json!(ServerFrame::Changed {
        id: 50,
        message: deleted,
    });
}

#[test]
fn feed_reset() {
    pin_json!(Reset { latest_id: 43 });
}

// ---- HTTP API ----

#[test]
fn api_login_request() {
    pin_json!(LoginRequest {
        name: "ada".to_owned(),
        password: "correct horse battery staple".to_owned(),
        device: Some("laptop".to_owned()),
    });
}

#[test]
fn api_login_request_without_device() {
    pin_json!(LoginRequest {
        name: "ada".to_owned(),
        password: "correct horse battery staple".to_owned(),
        device: None,
    });
}

#[test]
fn api_register_request() {
    pin_json!(RegisterRequest {
        invite: "inv-3f9a".to_owned(),
        name: "grace".to_owned(),
        password: "hunter2hunter2".to_owned(),
        device: None,
    });
}

#[test]
fn api_login_response() {
    pin_json!(LoginResponse {
        token: "tok-opaque".to_owned(),
        user: ada(),
        role: Role::Owner,
        session: session_info(),
    });
}

#[test]
fn api_sessions() {
    pin_json!(vec![
        session_info(),
        SessionInfo {
            id: 8,
            device: "tidings-cli".to_owned(),
            current: false,
            ..session_info()
        },
    ]);
}

#[test]
fn api_me() {
    pin_json!(Me {
        user: grace(),
        role: Role::Member,
        session: session_info(),
    });
}

#[test]
fn api_revoked() {
    pin_json!(Revoked {
        revoked: vec![8, 9],
    });
}

#[test]
fn api_create_room() {
    pin_json!(CreateRoom {
        name: "general".to_owned(),
    });
}

#[test]
fn api_open_dm() {
    pin_json!(OpenDm {
        user: "grace".to_owned(),
    });
}

#[test]
fn api_send_message() {
    pin_json!(SendMessage {
        client_id: Some("c-0002".to_owned()),
        body: "posted over HTTP".to_owned(),
        reply_to: None,
        attachments: Vec::new(),
    });
}

#[test]
fn api_send_message_without_client_id() {
    pin_json!(SendMessage {
        client_id: None,
        body: "posted over HTTP".to_owned(),
        reply_to: None,
        attachments: Vec::new(),
    });
}

#[test]
fn api_read_marker() {
    pin_json!(ReadMarker { message_id: 42 });
}

#[test]
fn api_invite() {
    pin_json!(Invite {
        code: "inv-3f9a".to_owned(),
        expires_at: Some(NOON + 7 * 86_400_000),
    });
}

#[test]
fn api_invite_without_expiry() {
    pin_json!(Invite {
        code: "inv-3f9a".to_owned(),
        expires_at: None,
    });
}
