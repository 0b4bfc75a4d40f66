//! Posting and reading messages: the one send path shared by the chat channel and the HTTP API,
//! history pages and read markers.

use std::pin::Pin;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tidings_proto::v1::{
    ErrorBody, ErrorCode, HistoryPage, MAX_CLIENT_ID_LEN, MAX_HISTORY_LIMIT, Message, MessageId,
    ReadMarker, RoomId, SendMessage,
};
use tidings_store::{Inserted, NewMessage, StoreError, User, UserId};

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
    client_id: Option<String>,
    body: String,
) -> ApiResult<Sent> {
    queue(state, author, room, client_id, body).await?.await
}

/// Validates and rate-limits a message and queues it to the store, returning as soon as it is
/// queued; the returned future resolves once it is durable (or refused: an unknown room, a room
/// the author is not in). Sends queued one after another are stored in that order, which is how
/// a chat connection keeps a client's messages in the order it sent them.
pub async fn queue(
    state: &AppState,
    author: &User,
    room: RoomId,
    client_id: Option<String>,
    body: String,
) -> ApiResult<Committing> {
    if body.trim().is_empty() {
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
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        return Err(ApiError::rate_limited(wait));
    }
    let new = NewMessage {
        room_id: room,
        author_id: author.id,
        client_id,
        body,
        sent_at: state.now_ms(),
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
            Err(err) => Err(err.into()),
        }
    }))
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
        (status = BAD_REQUEST, description = "An empty message or a bad client id", body = ErrorBody),
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
    let sent = post(&state, &authed.user, room, req.client_id, req.body).await?;
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
