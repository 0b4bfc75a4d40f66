//! Every wire type survives a JSON round trip: what one side encodes, the other decodes to the same
//! value. The strategies cover every variant and every optional field both present and absent, with
//! text that JSON has to escape (quotes, backslashes, control characters, line separators) and text
//! far outside ASCII (emoji, joiners, byte order marks).

use std::collections::HashSet;
use std::fmt::Debug;

use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tidings_proto::v1::{
    AdminInvite, AdminMember, AdminOverview, AuditAction, AuditEntry, CreateInvite, CreatedInvite,
    ManageMember, MemberAction, MemberManaged, ServerStatus, TransportConnections,
};
use tidings_proto::v1::{
    Attachment, ClientFrame, CreateRoom, ErrorBody, ErrorCode, Fragment, Hello, HistoryPage,
    ImageSize, Invite, Lock, LockReason, LoginRequest, LoginResponse, Me, Message, MessageAlert,
    OpenDm, PresenceStatus, Quote, Reaction, ReadMarker, RegisterRequest, Reset, Retract, Revoked,
    Role, Room, RoomKind, RoomState, SearchHit, SearchResults, SendMessage, ServerFrame,
    SessionInfo, SessionState, SessionStatus, UserRef, decode_client_frame,
};

/// Enough cases to meet every variant and option many times over, few enough to run in a blink.
const CASES: u32 = 256;

/// Every code a server sends. `Unknown` is missing on purpose: it is what a client reads for a
/// code it does not know, not a code anyone sends.
const KNOWN_CODES: [ErrorCode; 20] = [
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
    ErrorCode::CsrfHeaderRequired,
    ErrorCode::SubprotocolRequired,
    ErrorCode::BadCredentials,
    ErrorCode::AccountDisabled,
    ErrorCode::InviteInvalid,
    ErrorCode::NameTaken,
    ErrorCode::NotFound,
    ErrorCode::Overloaded,
    ErrorCode::Storage,
    ErrorCode::Internal,
];

/// Whether `code` is one a server sends. The match has no wildcard, so adding a code to
/// [`ErrorCode`] stops this file compiling until the code is placed here and in [`KNOWN_CODES`].
fn is_sent(code: ErrorCode) -> bool {
    match code {
        ErrorCode::BadFrame
        | ErrorCode::UnknownType
        | ErrorCode::Invalid
        | ErrorCode::TooLarge
        | ErrorCode::UnknownRoom
        | ErrorCode::NotMember
        | ErrorCode::RateLimited
        | ErrorCode::Unauthorized
        | ErrorCode::Forbidden
        | ErrorCode::OriginNotAllowed
        | ErrorCode::CsrfHeaderRequired
        | ErrorCode::SubprotocolRequired
        | ErrorCode::BadCredentials
        | ErrorCode::AccountDisabled
        | ErrorCode::InviteInvalid
        | ErrorCode::NameTaken
        | ErrorCode::NotFound
        | ErrorCode::Overloaded
        | ErrorCode::Storage
        | ErrorCode::Internal => true,
        ErrorCode::Unknown => false,
    }
}

/// Encodes `value` compactly (as it goes on the wire) and pretty (as people paste it), and checks
/// both decode back to `value`.
fn assert_round_trip<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let compact = serde_json::to_string(value)
        .map_err(|e| TestCaseError::fail(format!("encoding {value:?}: {e}")))?;
    let back: T = serde_json::from_str(&compact)
        .map_err(|e| TestCaseError::fail(format!("decoding {compact}: {e}")))?;
    prop_assert_eq!(&back, value, "compact json: {}", compact);

    let pretty = serde_json::to_vec_pretty(value)
        .map_err(|e| TestCaseError::fail(format!("encoding {value:?}: {e}")))?;
    let back: T = serde_json::from_slice(&pretty).map_err(|e| {
        TestCaseError::fail(format!(
            "decoding {}: {e}",
            String::from_utf8_lossy(&pretty)
        ))
    })?;
    prop_assert_eq!(
        &back,
        value,
        "pretty json: {}",
        String::from_utf8_lossy(&pretty)
    );
    Ok(())
}

// ---- Text and numbers ----

/// Characters that JSON must escape or that tend to break naive handling of text.
const AWKWARD_CHARS: &[char] = &[
    '"', '\\', '/', '\'', '\n', '\r', '\t', '\u{0}', '\u{8}', '\u{c}', '\u{1f}', '\u{7f}',
    '\u{85}', '\u{a0}', '\u{2028}', '\u{2029}', '\u{200d}', '\u{feff}', '\u{fffd}', '\u{fe0f}',
    '\u{301}', '😀', '🎉', '👩', '🏳', 'é', 'ß', '中', 'ع', '{', '}', '[', ']', ':', ',', '<', '>',
    '&',
];

/// Arbitrary Unicode text with a generous share of awkward characters.
fn text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        2 => any::<char>(),
        1 => prop::sample::select(AWKWARD_CHARS),
        1 => prop::char::range('a', 'z'),
    ];
    prop::collection::vec(ch, 0..24).prop_map(String::from_iter)
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

// ---- Model ----

prop_compose! {
    fn user_ref()(id in any::<i64>(), name in text()) -> UserRef {
        UserRef { id, name }
    }
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Owner), Just(Role::Member)]
}

fn room_kind() -> impl Strategy<Value = RoomKind> {
    prop_oneof![Just(RoomKind::Group), Just(RoomKind::Dm)]
}

fn presence_status() -> impl Strategy<Value = PresenceStatus> {
    prop_oneof![Just(PresenceStatus::Online), Just(PresenceStatus::Offline)]
}

prop_compose! {
    fn room()(
        id in any::<i64>(),
        kind in room_kind(),
        name in opt_text(),
        dm_peer in prop::option::of(user_ref()),
    ) -> Room {
        Room { id, kind, name, dm_peer }
    }
}

prop_compose! {
    fn room_state()(
        room in room(),
        last_read_id in any::<i64>(),
        latest_id in any::<i64>(),
        unread in any::<u64>(),
        unread_mentions in any::<u64>(),
    ) -> RoomState {
        RoomState { room, last_read_id, latest_id, unread, unread_mentions }
    }
}

prop_compose! {
    fn message()(
        id in any::<i64>(),
        room in any::<i64>(),
        author in user_ref(),
        body in text(),
        sent_at in any::<i64>(),
        client_id in opt_text(),
        mentions in prop::collection::vec(any::<i64>(), 0..4),
        edited_at in prop::option::of(any::<i64>()),
        deleted_at in prop::option::of(any::<i64>()),
        reactions in prop::collection::vec(reaction(), 0..3),
        reply_to in prop::option::of(quote()),
    ) -> Message {
        Message {
            id, room, author, body, sent_at, client_id, mentions, edited_at, deleted_at, reactions,
            reply_to,
            attachments: Vec::new(),
        }
    }
}

prop_compose! {
    fn quote()(
        id in any::<i64>(),
        author in user_ref(),
        preview in text(),
        deleted in any::<bool>(),
    ) -> Quote {
        Quote { id, author, preview, deleted }
    }
}

prop_compose! {
    fn reaction()(
        emoji in text(),
        users in prop::collection::vec(any::<i64>(), 1..4),
    ) -> Reaction {
        Reaction { emoji, users }
    }
}

prop_compose! {
    fn history_page()(
        room in any::<i64>(),
        messages in prop::collection::vec(message(), 0..4),
        has_more in any::<bool>(),
    ) -> HistoryPage {
        HistoryPage { room, messages, has_more }
    }
}

prop_compose! {
    fn search_results()(
        hits in prop::collection::vec(
            (message(), prop::collection::vec((text(), any::<bool>()), 0..4)),
            0..3,
        ),
        has_more in any::<bool>(),
        cached in any::<bool>(),
    ) -> SearchResults {
        let hits = hits
            .into_iter()
            .map(|(message, pieces)| SearchHit {
                message,
                highlight: pieces.into_iter().map(|(text, hit)| Fragment { text, hit }).collect(),
            })
            .collect();
        SearchResults { hits, has_more, cached }
    }
}

prop_compose! {
    fn attachment()(
        id in text(),
        room in any::<i64>(),
        name in text(),
        content_type in text(),
        size in any::<u64>(),
        image in prop::option::of((any::<u32>(), any::<u32>())),
    ) -> Attachment {
        let image = image.map(|(width, height)| ImageSize { width, height });
        Attachment { id, room, name, content_type, size, image }
    }
}

// ---- Errors ----

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop::sample::select(KNOWN_CODES.to_vec())
}

prop_compose! {
    fn error_body()(
        code in error_code(),
        message in text(),
        frame in opt_text(),
        client_id in opt_text(),
        retry_after_ms in prop::option::of(any::<u64>()),
    ) -> ErrorBody {
        ErrorBody { code, message, frame, client_id, retry_after_ms }
    }
}

// ---- Chat channel ----

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        (any::<i64>(), text(), text(), prop::option::of(any::<i64>())).prop_map(
            |(room, client_id, body, reply_to)| ClientFrame::Send {
                room,
                client_id,
                body,
                reply_to,
                attachments: Vec::new(),
            }
        ),
        (any::<i64>(), any::<i64>())
            .prop_map(|(room, message_id)| ClientFrame::Read { room, message_id }),
        any::<i64>().prop_map(|room| ClientFrame::Typing { room }),
        (
            any::<i64>(),
            prop::option::of(any::<i64>()),
            prop::option::of(any::<u32>()),
        )
            .prop_map(|(room, before, limit)| ClientFrame::History {
                room,
                before,
                limit,
            }),
        any::<i64>().prop_map(|since| ClientFrame::Sync { since }),
        (any::<i64>(), text())
            .prop_map(|(message_id, body)| ClientFrame::Edit { message_id, body }),
        any::<i64>().prop_map(|message_id| ClientFrame::Delete { message_id }),
        (any::<i64>(), text())
            .prop_map(|(message_id, emoji)| ClientFrame::React { message_id, emoji }),
        (any::<i64>(), text())
            .prop_map(|(message_id, emoji)| ClientFrame::Unreact { message_id, emoji }),
    ]
}

prop_compose! {
    fn hello()(
        user in user_ref(),
        session in any::<i64>(),
        rooms in prop::collection::vec(room_state(), 0..4),
        online in prop::collection::vec(any::<i64>(), 0..4),
        latest_id in any::<i64>(),
        heartbeat_ms in any::<u64>(),
        max_body_bytes in any::<usize>(),
    ) -> Hello {
        Hello { user, session, rooms, online, latest_id, heartbeat_ms, max_body_bytes }
    }
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        hello().prop_map(ServerFrame::Hello),
        message().prop_map(ServerFrame::Message),
        (any::<i64>(), message()).prop_map(|(id, message)| ServerFrame::Changed { id, message }),
        (text(), any::<i64>(), any::<i64>()).prop_map(|(client_id, id, room)| ServerFrame::Ack {
            client_id,
            id,
            room
        }),
        (any::<i64>(), user_ref()).prop_map(|(room, user)| ServerFrame::Typing { room, user }),
        (user_ref(), presence_status())
            .prop_map(|(user, status)| ServerFrame::Presence { user, status }),
        (any::<i64>(), any::<i64>(), any::<i64>()).prop_map(|(room, user, message_id)| {
            ServerFrame::Read {
                room,
                user,
                message_id,
            }
        }),
        history_page().prop_map(ServerFrame::History),
        (any::<i64>(), any::<bool>()).prop_map(|(latest_id, has_more)| ServerFrame::Synced {
            latest_id,
            has_more
        }),
        error_body().prop_map(ServerFrame::Error),
    ]
}

// ---- Feed ----

fn session_state() -> impl Strategy<Value = SessionState> {
    prop_oneof![
        Just(SessionState::Active),
        Just(SessionState::Expiring),
        Just(SessionState::Expired),
        Just(SessionState::Revoked),
    ]
}

prop_compose! {
    fn session_status()(
        state in session_state(),
        now in any::<i64>(),
        expires_at in any::<i64>(),
        idle_expires_at in any::<i64>(),
    ) -> SessionStatus {
        SessionStatus { state, now, expires_at, idle_expires_at }
    }
}

fn lock() -> impl Strategy<Value = Lock> {
    prop_oneof![Just(LockReason::Expired), Just(LockReason::Revoked)]
        .prop_map(|reason| Lock { reason })
}

prop_compose! {
    fn message_alert()(
        room in any::<i64>(),
        id in any::<i64>(),
        author in user_ref(),
        preview in text(),
        sent_at in any::<i64>(),
        mentions_you in any::<bool>(),
    ) -> MessageAlert {
        MessageAlert { room, id, author, preview, sent_at, mentions_you }
    }
}

fn retract() -> impl Strategy<Value = Retract> {
    (any::<i64>(), any::<i64>()).prop_map(|(room, id)| Retract { room, id })
}

fn reset() -> impl Strategy<Value = Reset> {
    any::<i64>().prop_map(|latest_id| Reset { latest_id })
}

// ---- HTTP API ----

prop_compose! {
    fn login_request()(name in text(), password in text(), device in opt_text()) -> LoginRequest {
        LoginRequest { name, password, device }
    }
}

prop_compose! {
    fn register_request()(
        invite in text(),
        name in text(),
        password in text(),
        device in opt_text(),
    ) -> RegisterRequest {
        RegisterRequest { invite, name, password, device }
    }
}

prop_compose! {
    fn session_info()(
        id in any::<i64>(),
        device in text(),
        created_at in any::<i64>(),
        last_seen_at in any::<i64>(),
        expires_at in any::<i64>(),
        current in any::<bool>(),
    ) -> SessionInfo {
        SessionInfo { id, device, created_at, last_seen_at, expires_at, current }
    }
}

prop_compose! {
    fn login_response()(
        token in text(),
        user in user_ref(),
        role in role(),
        session in session_info(),
    ) -> LoginResponse {
        LoginResponse { token, user, role, session }
    }
}

prop_compose! {
    fn me()(user in user_ref(), role in role(), session in session_info()) -> Me {
        Me { user, role, session }
    }
}

fn revoked() -> impl Strategy<Value = Revoked> {
    prop::collection::vec(any::<i64>(), 0..6).prop_map(|revoked| Revoked { revoked })
}

fn create_room() -> impl Strategy<Value = CreateRoom> {
    text().prop_map(|name| CreateRoom { name })
}

fn open_dm() -> impl Strategy<Value = OpenDm> {
    text().prop_map(|user| OpenDm { user })
}

fn send_message() -> impl Strategy<Value = SendMessage> {
    (opt_text(), text(), prop::option::of(any::<i64>())).prop_map(|(client_id, body, reply_to)| {
        SendMessage {
            client_id,
            body,
            reply_to,
            attachments: Vec::new(),
        }
    })
}

fn read_marker() -> impl Strategy<Value = ReadMarker> {
    any::<i64>().prop_map(|message_id| ReadMarker { message_id })
}

fn invite() -> impl Strategy<Value = Invite> {
    (text(), prop::option::of(any::<i64>()))
        .prop_map(|(code, expires_at)| Invite { code, expires_at })
}

// ---- Administration ----

fn admin_member() -> impl Strategy<Value = AdminMember> {
    (
        user_ref(),
        role(),
        any::<i64>(),
        prop::option::of(any::<i64>()),
        any::<u32>(),
        prop::option::of(any::<i64>()),
    )
        .prop_map(
            |(user, role, created_at, disabled_at, live_sessions, last_seen_at)| AdminMember {
                user,
                role,
                created_at,
                disabled_at,
                live_sessions,
                last_seen_at,
            },
        )
}

fn admin_invite() -> impl Strategy<Value = AdminInvite> {
    (
        any::<i64>(),
        prop::option::of(user_ref()),
        any::<i64>(),
        prop::option::of(any::<i64>()),
        (any::<u32>(), any::<u32>()),
        prop::option::of(any::<i64>()),
        prop::option::of(any::<i64>()),
    )
        .prop_map(
            |(
                id,
                created_by,
                created_at,
                expires_at,
                (max_uses, uses),
                last_used_at,
                revoked_at,
            )| {
                AdminInvite {
                    id,
                    created_by,
                    created_at,
                    expires_at,
                    max_uses,
                    uses,
                    last_used_at,
                    revoked_at,
                }
            },
        )
}

fn audit_entry() -> impl Strategy<Value = AuditEntry> {
    let action = prop_oneof![
        Just(AuditAction::Disabled),
        Just(AuditAction::Enabled),
        Just(AuditAction::PasswordReset),
        Just(AuditAction::RoleChanged),
        Just(AuditAction::InviteCreated),
        Just(AuditAction::InviteRevoked),
        Just(AuditAction::MessageDeleted),
    ];
    (
        (any::<i64>(), any::<i64>()),
        prop::option::of(user_ref()),
        action,
        prop::option::of(user_ref()),
        prop::option::of(any::<i64>()),
        prop::option::of(any::<i64>()),
        prop::option::of(role()),
    )
        .prop_map(
            |((id, at), actor, action, user, invite, message, role)| AuditEntry {
                id,
                at,
                actor,
                action,
                user,
                invite,
                message,
                role,
            },
        )
}

fn server_status() -> impl Strategy<Value = ServerStatus> {
    let connections = prop::collection::vec(
        (text(), any::<u64>())
            .prop_map(|(transport, count)| TransportConnections { transport, count }),
        0..5,
    );
    (
        text(),
        any::<i64>(),
        any::<u64>(),
        any::<u64>(),
        text(),
        connections,
    )
        .prop_map(
            |(version, started_at, uptime_secs, database_bytes, database, connections)| {
                ServerStatus {
                    version,
                    started_at,
                    uptime_secs,
                    database_bytes,
                    database,
                    connections,
                }
            },
        )
}

fn admin_overview() -> impl Strategy<Value = AdminOverview> {
    (
        server_status(),
        prop::collection::vec(admin_member(), 0..4),
        prop::collection::vec(admin_invite(), 0..4),
        prop::collection::vec(audit_entry(), 0..4),
    )
        .prop_map(|(status, members, invites, audit)| AdminOverview {
            status,
            members,
            invites,
            audit,
        })
}

fn member_action() -> impl Strategy<Value = MemberAction> {
    prop_oneof![
        Just(MemberAction::Disable),
        Just(MemberAction::Enable),
        Just(MemberAction::ResetPassword),
        Just(MemberAction::Promote),
        Just(MemberAction::Demote),
    ]
}

// ---- Properties ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn client_frame_round_trips(frame in client_frame()) {
        assert_round_trip(&frame)?;
    }

    #[test]
    fn decode_client_frame_reads_back_an_encoded_frame(frame in client_frame()) {
        let json = serde_json::to_string(&frame).unwrap();
        let decoded = decode_client_frame(&json);
        prop_assert_eq!(decoded, Ok(frame), "json: {}", json);
    }

    #[test]
    fn client_frame_type_tag_is_its_kind(frame in client_frame()) {
        let json = serde_json::to_value(&frame).unwrap();
        prop_assert_eq!(json["type"].as_str(), Some(frame.kind()));
    }

    #[test]
    fn server_frame_round_trips(frame in server_frame()) {
        assert_round_trip(&frame)?;
    }

    #[test]
    fn hello_round_trips(hello in hello()) {
        assert_round_trip(&hello)?;
    }

    #[test]
    fn message_round_trips(message in message()) {
        assert_round_trip(&message)?;
    }

    #[test]
    fn room_round_trips(room in room()) {
        assert_round_trip(&room)?;
    }

    #[test]
    fn room_state_round_trips(state in room_state()) {
        assert_round_trip(&state)?;
        // The room's fields sit beside the read position, not under a key of their own.
        let json = serde_json::to_value(&state).unwrap();
        prop_assert!(json.get("room").is_none(), "json: {}", json);
        prop_assert_eq!(json["id"].as_i64(), Some(state.room.id));
    }

    #[test]
    fn history_page_round_trips(page in history_page()) {
        assert_round_trip(&page)?;
    }

    #[test]
    fn attachment_round_trips(attachment in attachment()) {
        assert_round_trip(&attachment)?;
    }

    #[test]
    fn search_results_round_trip(results in search_results()) {
        assert_round_trip(&results)?;
    }

    #[test]
    fn user_ref_round_trips(user in user_ref()) {
        assert_round_trip(&user)?;
    }

    #[test]
    fn error_body_round_trips(body in error_body()) {
        assert_round_trip(&body)?;
    }

    #[test]
    fn session_status_round_trips(status in session_status()) {
        assert_round_trip(&status)?;
    }

    #[test]
    fn lock_round_trips(lock in lock()) {
        assert_round_trip(&lock)?;
    }

    #[test]
    fn message_alert_round_trips(alert in message_alert()) {
        assert_round_trip(&alert)?;
    }

    #[test]
    fn retract_round_trips(retract in retract()) {
        assert_round_trip(&retract)?;
    }

    #[test]
    fn reset_round_trips(reset in reset()) {
        assert_round_trip(&reset)?;
    }

    #[test]
    fn login_request_round_trips(request in login_request()) {
        assert_round_trip(&request)?;
    }

    #[test]
    fn register_request_round_trips(request in register_request()) {
        assert_round_trip(&request)?;
    }

    #[test]
    fn login_response_round_trips(response in login_response()) {
        assert_round_trip(&response)?;
    }

    #[test]
    fn session_info_round_trips(info in session_info()) {
        assert_round_trip(&info)?;
    }

    #[test]
    fn session_list_round_trips(list in prop::collection::vec(session_info(), 0..4)) {
        assert_round_trip(&list)?;
    }

    #[test]
    fn me_round_trips(me in me()) {
        assert_round_trip(&me)?;
    }

    #[test]
    fn revoked_round_trips(revoked in revoked()) {
        assert_round_trip(&revoked)?;
    }

    #[test]
    fn create_room_round_trips(request in create_room()) {
        assert_round_trip(&request)?;
    }

    #[test]
    fn open_dm_round_trips(request in open_dm()) {
        assert_round_trip(&request)?;
    }

    #[test]
    fn send_message_round_trips(request in send_message()) {
        assert_round_trip(&request)?;
    }

    #[test]
    fn read_marker_round_trips(marker in read_marker()) {
        assert_round_trip(&marker)?;
    }

    #[test]
    fn invite_round_trips(invite in invite()) {
        assert_round_trip(&invite)?;
    }

    #[test]
    fn admin_overview_round_trips(overview in admin_overview()) {
        assert_round_trip(&overview)?;
    }

    #[test]
    fn admin_requests_and_answers_round_trip(
        action in member_action(),
        member in admin_member(),
        sessions_ended in any::<u32>(),
        password in opt_text(),
        invite in admin_invite(),
        code in text(),
        expires_in_hours in prop::option::of(any::<u32>()),
        max_uses in any::<u32>(),
    ) {
        assert_round_trip(&ManageMember { action })?;
        assert_round_trip(&MemberManaged { member, sessions_ended, password })?;
        assert_round_trip(&CreatedInvite { invite, code })?;
        assert_round_trip(&CreateInvite { expires_in_hours, max_uses })?;
    }
}

#[test]
fn every_sent_error_code_round_trips_as_itself() {
    let distinct: HashSet<ErrorCode> = KNOWN_CODES.into_iter().collect();
    assert_eq!(distinct.len(), KNOWN_CODES.len(), "a code is listed twice");
    for code in KNOWN_CODES {
        assert!(is_sent(code), "{code:?} is not a code servers send");
        let json = serde_json::to_string(&code).unwrap();
        let back: ErrorCode = serde_json::from_str(&json).unwrap();
        assert_eq!(back, code, "json: {json}");
    }
}
