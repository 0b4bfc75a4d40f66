//! Posting and reading messages: the one send path shared by the chat channel and the HTTP API,
//! history pages and read markers.

use std::pin::Pin;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tidings_proto::v1::{
    EditMessage, ErrorBody, ErrorCode, HistoryPage, MAX_ATTACHMENTS, MAX_CLIENT_ID_LEN,
    MAX_HISTORY_LIMIT, Message, MessageId, ReadMarker, RoomId, SendMessage,
};
use tidings_store::{
    Change, Changed, Inserted, MessageChange, NewMessage, Role, StoreError, User, UserId,
};

use crate::app::AppState;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::room::ensure_member;
use crate::wire;

/// Default history page size.
pub const DEFAULT_HISTORY_LIMIT: u32 = 50;

/// A stored message, and whether it was stored by an earlier send with the same client id.
pub struct Sent {
    pub message: Message,
    pub duplicate: bool,
}

/// A send waiting for its commit.
pub type Committing = Pin<Box<dyn Future<Output = ApiResult<Sent>> + Send>>;

/// Validates, rate-limits and stores a message, then fans it out. Returns once it is durable.
pub async fn post(
    state: &AppState,
    author: &User,
    room: RoomId,
    send: SendMessage,
) -> ApiResult<Sent> {
    queue(state, author, room, send).await?.await
}

/// Validates and rate-limits a message and queues it to the store, returning as soon as it is
/// queued; the returned future resolves once it is durable (or refused: an unknown room, a room
/// the author is not in). Sends queued one after another are stored in that order, which is how
/// a chat connection keeps a client's messages in the order it sent them.
pub async fn queue(
    state: &AppState,
    author: &User,
    room: RoomId,
    send: SendMessage,
) -> ApiResult<Committing> {
    let SendMessage {
        client_id,
        body,
        reply_to,
        attachments,
    } = send;
    if attachments.len() > MAX_ATTACHMENTS {
        return Err(ApiError::new(
            ErrorCode::Invalid,
            format!("a message carries at most {MAX_ATTACHMENTS} attachments"),
        ));
    }
    // A message of files alone need say nothing.
    check_body(state, &body, !attachments.is_empty())?;
    if let Some(id) = &client_id
        && (id.is_empty() || id.len() > MAX_CLIENT_ID_LEN)
    {
        return Err(ApiError::new(
            ErrorCode::Invalid,
            format!("client ids are 1-{MAX_CLIENT_ID_LEN} bytes"),
        ));
    }
    if let Err(not_until) = state.sends.check_key(&author.id) {
        // A resend of a message already stored (an outbox draining after a reconnect) is
        // acknowledged even when the user is over the rate: it stores nothing.
        if let Some(id) = client_id.clone() {
            let stored = state.store.message_by_client_id(author.id, &id).await?;
            if let Some(stored) = stored {
                let sent = Sent {
                    message: wire::message(stored),
                    duplicate: true,
                };
                return Ok(Box::pin(std::future::ready(Ok(sent))));
            }
        }
        return Err(too_fast(&not_until));
    }
    let new = NewMessage {
        room_id: room,
        author_id: author.id,
        client_id,
        body,
        sent_at: state.now_ms(),
        reply_to,
        attachments,
    };
    // The store checks, in the same transaction, that the room exists and the author is in it.
    // Fan-out follows the store's log (see `crate::run`), not this send.
    let queued = state.store.queue_message(new).await?;
    Ok(Box::pin(async move {
        match queued.await {
            Ok(Inserted::New(m)) => Ok(Sent {
                message: wire::message(m),
                duplicate: false,
            }),
            Ok(Inserted::Duplicate(m)) => Ok(Sent {
                message: wire::message(m),
                duplicate: true,
            }),
            Err(StoreError::NotFound) => Err(ApiError::new(ErrorCode::UnknownRoom, "no such room")),
            Err(StoreError::NotAllowed) => Err(ApiError::new(
                ErrorCode::NotMember,
                "you are not a member of this room",
            )),
            Err(StoreError::NotInRoom) => Err(ApiError::new(
                ErrorCode::Invalid,
                "a reply answers a message of the same room that is still there",
            )),
            Err(StoreError::AttachmentUnavailable) => Err(ApiError::new(
                ErrorCode::Invalid,
                "a message carries only your own uploads to its room, each once, \
                 and not after a day unsent",
            )),
            Err(err) => Err(err.into()),
        }
    }))
}

/// The refusal of a user over the send rate, saying when to try again.
fn too_fast(not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> ApiError {
    let now = governor::clock::Clock::now(&governor::clock::DefaultClock::default());
    ApiError::rate_limited(not_until.wait_time_from(now))
}

/// A body a message may have: not blank (unless `may_be_blank`), and within the size limit.
fn check_body(state: &AppState, body: &str, may_be_blank: bool) -> ApiResult<()> {
    if !may_be_blank && body.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::Invalid, "the message is empty"));
    }
    if body.len() > state.config.limits.max_body_bytes {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "the message is {} bytes; the limit is {}",
                body.len(),
                state.config.limits.max_body_bytes
            ),
        ));
    }
    Ok(())
}

/// The longest reaction, in bytes: room for an emoji joined from several (a family, a flag).
pub const MAX_EMOJI_BYTES: usize = 32;

/// A reaction is one short emoji: no spaces or control characters, at most [`MAX_EMOJI_BYTES`],
/// and not plain ASCII (so not a word).
fn check_emoji(emoji: &str) -> ApiResult<()> {
    let fits = !emoji.is_empty()
        && emoji.len() <= MAX_EMOJI_BYTES
        && !emoji.is_ascii()
        && !emoji.chars().any(|c| c.is_whitespace() || c.is_control());
    if fits {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Invalid,
            format!("a reaction is one emoji, at most {MAX_EMOJI_BYTES} bytes"),
        ))
    }
}

/// Edits, deletes or reacts to a message, for `user`. Everyone in its room hears of it from the
/// store's log, as of a message; a change that changes nothing is not an error. Returns the
/// message as it now is.
pub async fn change(
    state: &AppState,
    user: &User,
    message_id: MessageId,
    change: Change,
) -> ApiResult<Message> {
    match &change {
        Change::Edit { body } => check_body(state, body, false)?,
        Change::React { emoji } | Change::Unreact { emoji } => check_emoji(emoji)?,
        Change::Delete => {}
    }
    if let Err(not_until) = state.sends.check_key(&user.id) {
        return Err(too_fast(&not_until));
    }
    let refusal = match &change {
        Change::Edit { .. } => "only its author edits a message, and not once it is deleted",
        Change::Delete => "only its author or an owner deletes a message",
        Change::React { .. } | Change::Unreact { .. } => {
            "only the room's members react, and not to a deleted message"
        }
    };
    let request = MessageChange {
        message_id,
        user_id: user.id,
        change,
        may_delete_any: user.role == Role::Owner,
        at: state.now_ms(),
    };
    let deleting = matches!(request.change, Change::Delete);
    match state.store.change_message(request).await {
        Ok(Changed::Logged { message, .. }) => {
            if deleting {
                state.attachments.sweep_soon();
            }
            Ok(wire::message(message))
        }
        Ok(Changed::Unchanged(message)) => Ok(wire::message(message)),
        Err(StoreError::NotFound) => Err(ApiError::new(ErrorCode::NotFound, "no such message")),
        Err(StoreError::NotAllowed) => Err(ApiError::new(ErrorCode::Forbidden, refusal)),
        Err(err) => Err(err.into()),
    }
}

/// Reads one page of a room's history for a member.
pub async fn page(
    state: &AppState,
    user: UserId,
    room: RoomId,
    before: Option<MessageId>,
    limit: Option<u32>,
) -> ApiResult<HistoryPage> {
    ensure_member(state, room, user).await?;
    let limit = limit
        .unwrap_or(DEFAULT_HISTORY_LIMIT)
        .clamp(1, MAX_HISTORY_LIMIT);
    // One extra row tells whether an older page exists.
    let mut rows = state.store.history(room, before, limit + 1).await?;
    let has_more = rows.len() > limit as usize;
    if has_more {
        rows.remove(0);
    }
    Ok(HistoryPage {
        room,
        messages: rows.into_iter().map(wire::message).collect(),
        has_more,
    })
}

/// Moves a read marker; the store's log tells the user's other devices.
pub async fn mark_read(
    state: &AppState,
    user: UserId,
    room: RoomId,
    message_id: MessageId,
) -> ApiResult<MessageId> {
    ensure_member(state, room, user).await?;
    Ok(state.store.set_read_marker(room, user, message_id).await?)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only messages older than this id.
    #[param(value_type = Option<i64>)]
    pub before: Option<MessageId>,
    /// At most this many messages (default 50; read as at least 1 and at most 200).
    // Any int64 is a valid request (it is clamped), and the type says exactly that: a u32 is
    // documented as int32 yet takes values above it.
    pub limit: Option<i64>,
}

/// A page of a room's history, oldest first: the newest page, or the one before `before`.
#[utoipa::path(
    get, path = "/api/rooms/{id}/messages", tag = "messages",
    params(("id" = i64, Path, description = "The room's id"), HistoryQuery),
    responses(
        (status = OK, description = "One page", body = HistoryPage),
        (status = FORBIDDEN, description = "Not a member of the room", body = ErrorBody),
        (status = NOT_FOUND, description = "No such room", body = ErrorBody),
    ),
)]
pub async fn history(
    State(state): State<AppState>,
    authed: Authed,
    Path(room): Path<RoomId>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<axum::Json<HistoryPage>> {
    Ok(axum::Json(
        page(
            &state,
            authed.user.id,
            room,
            q.before,
            q.limit.map(|limit| {
                u32::try_from(limit.clamp(1, i64::from(MAX_HISTORY_LIMIT)))
                    .unwrap_or(MAX_HISTORY_LIMIT)
            }),
        )
        .await?,
    ))
}

/// Sends a message. Durable when answered; a resend with the same `client_id` stores nothing
/// new and answers with the stored message.
#[utoipa::path(
    post, path = "/api/rooms/{id}/messages", tag = "messages",
    params(("id" = i64, Path, description = "The room's id")),
    request_body = SendMessage,
    responses(
        (status = CREATED, description = "Stored", body = Message),
        (status = OK, description = "Stored before, by a send with the same client id", body = Message),
        (status = BAD_REQUEST, description = "An empty message, a bad client id, or an attachment that is not the sender's unsent upload to the room", body = ErrorBody),
        (status = FORBIDDEN, description = "Not a member of the room", body = ErrorBody),
        (status = NOT_FOUND, description = "No such room", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "The message is over the size limit", body = ErrorBody),
        (
            status = TOO_MANY_REQUESTS, description = "Sending too fast", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait")),
        ),
    ),
)]
pub async fn send(
    State(state): State<AppState>,
    authed: Authed,
    Path(room): Path<RoomId>,
    Json(req): Json<SendMessage>,
) -> ApiResult<(StatusCode, axum::Json<Message>)> {
    let sent = post(&state, &authed.user, room, req).await?;
    let status = if sent.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(sent.message)))
}

/// Moves the user's read marker forward (never back); the user's other devices are told.
#[utoipa::path(
    post, path = "/api/rooms/{id}/read", tag = "messages",
    params(("id" = i64, Path, description = "The room's id")),
    request_body = ReadMarker,
    responses(
        (status = OK, description = "The marker, as it now stands", body = ReadMarker),
        (status = FORBIDDEN, description = "Not a member of the room", body = ErrorBody),
        (status = NOT_FOUND, description = "No such room", body = ErrorBody),
    ),
)]
pub async fn read(
    State(state): State<AppState>,
    authed: Authed,
    Path(room): Path<RoomId>,
    Json(req): Json<ReadMarker>,
) -> ApiResult<axum::Json<ReadMarker>> {
    let marker = mark_read(&state, authed.user.id, room, req.message_id).await?;
    Ok(axum::Json(ReadMarker { message_id: marker }))
}

/// Gives one's own message a new body. Everyone in the room hears `changed`.
#[utoipa::path(
    patch, path = "/api/messages/{id}", tag = "messages",
    params(("id" = i64, Path, description = "The message's id")),
    request_body = EditMessage,
    responses(
        (status = OK, description = "The message as it now is", body = Message),
        (status = BAD_REQUEST, description = "An empty body", body = ErrorBody),
        (status = FORBIDDEN, description = "Not one's own message, or deleted", body = ErrorBody),
        (status = NOT_FOUND, description = "No such message", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "The body is over the size limit", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Changing too fast", body = ErrorBody),
    ),
)]
pub async fn edit(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<MessageId>,
    Json(req): Json<EditMessage>,
) -> ApiResult<axum::Json<Message>> {
    let changed = change(&state, &authed.user, id, Change::Edit { body: req.body }).await?;
    Ok(axum::Json(changed))
}

/// Deletes one's own message (an owner: anyone's); a placeholder without a body stays.
#[utoipa::path(
    delete, path = "/api/messages/{id}", tag = "messages",
    params(("id" = i64, Path, description = "The message's id")),
    responses(
        (status = OK, description = "The placeholder the message now is", body = Message),
        (status = FORBIDDEN, description = "Neither its author nor an owner", body = ErrorBody),
        (status = NOT_FOUND, description = "No such message", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Changing too fast", body = ErrorBody),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<MessageId>,
) -> ApiResult<axum::Json<Message>> {
    Ok(axum::Json(
        change(&state, &authed.user, id, Change::Delete).await?,
    ))
}

/// Adds the user's reaction to a message of a room they are in.
#[utoipa::path(
    put, path = "/api/messages/{id}/reactions/{emoji}", tag = "messages",
    params(
        ("id" = i64, Path, description = "The message's id"),
        ("emoji" = String, Path, description = "One emoji, percent-encoded"),
    ),
    responses(
        (status = OK, description = "The message as it now is", body = Message),
        (status = BAD_REQUEST, description = "Not one emoji, or too many on the message", body = ErrorBody),
        (status = FORBIDDEN, description = "Not in the room, or the message is deleted", body = ErrorBody),
        (status = NOT_FOUND, description = "No such message", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Changing too fast", body = ErrorBody),
    ),
)]
pub async fn react(
    State(state): State<AppState>,
    authed: Authed,
    Path((id, emoji)): Path<(MessageId, String)>,
) -> ApiResult<axum::Json<Message>> {
    Ok(axum::Json(
        change(&state, &authed.user, id, Change::React { emoji }).await?,
    ))
}

/// Takes back the user's reaction.
#[utoipa::path(
    delete, path = "/api/messages/{id}/reactions/{emoji}", tag = "messages",
    params(
        ("id" = i64, Path, description = "The message's id"),
        ("emoji" = String, Path, description = "One emoji, percent-encoded"),
    ),
    responses(
        (status = OK, description = "The message as it now is", body = Message),
        (status = BAD_REQUEST, description = "Not one emoji", body = ErrorBody),
        (status = FORBIDDEN, description = "Not in the room, or the message is deleted", body = ErrorBody),
        (status = NOT_FOUND, description = "No such message", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Changing too fast", body = ErrorBody),
    ),
)]
pub async fn unreact(
    State(state): State<AppState>,
    authed: Authed,
    Path((id, emoji)): Path<(MessageId, String)>,
) -> ApiResult<axum::Json<Message>> {
    Ok(axum::Json(
        change(&state, &authed.user, id, Change::Unreact { emoji }).await?,
    ))
}
