//! Rooms: group rooms anyone can join, and direct messages between two users.

use axum::extract::State;
use axum::http::StatusCode;
use tidings_proto::v1::{
    CreateRoom, ErrorBody, ErrorCode, OpenDm, Room, RoomId, RoomState, UserRef,
};
use tidings_store::{StoreError, User};

use crate::account::validate_name;
use crate::app::AppState;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::wire;

/// The user's rooms with their unread counts.
#[utoipa::path(
    get, path = "/api/rooms", tag = "rooms",
    responses((status = OK, description = "The user's rooms", body = Vec<RoomState>)),
)]
pub async fn mine(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<axum::Json<Vec<RoomState>>> {
    let user = authed.user.id;
    let rooms = state.store.rooms_of(user).await?;
    Ok(axum::Json(
        rooms.into_iter().map(wire::room_state).collect(),
    ))
}

/// Every group room on the server, joined or not.
#[utoipa::path(
    get, path = "/api/rooms/directory", tag = "rooms",
    responses((status = OK, description = "The group rooms", body = Vec<Room>)),
)]
pub async fn directory(
    State(state): State<AppState>,
    _authed: Authed,
) -> ApiResult<axum::Json<Vec<Room>>> {
    let rooms = state.store.group_rooms().await?;
    Ok(axum::Json(
        rooms.into_iter().map(|r| wire::room(r, None)).collect(),
    ))
}

/// Creates a group room and joins it. A leading `#` is ignored.
#[utoipa::path(
    post, path = "/api/rooms", tag = "rooms",
    request_body = CreateRoom,
    responses(
        (status = CREATED, description = "Created", body = RoomState),
        (status = BAD_REQUEST, description = "A name that is not allowed", body = ErrorBody),
        (status = CONFLICT, description = "The name is taken", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    authed: Authed,
    Json(req): Json<CreateRoom>,
) -> ApiResult<(StatusCode, axum::Json<RoomState>)> {
    let name = req.name.trim().trim_start_matches('#');
    validate_name(name)?;
    let user = authed.user.id;
    let room = state.store.create_room(name, user, state.now_ms()).await?;
    let summary = summary(&state, room.id, user).await?;
    Ok((StatusCode::CREATED, axum::Json(summary)))
}

/// Opens the direct conversation with another user, or finds the one that exists.
#[utoipa::path(
    post, path = "/api/dms", tag = "rooms",
    request_body = OpenDm,
    responses(
        (status = OK, description = "The DM existed", body = RoomState),
        (status = CREATED, description = "The DM was created", body = RoomState),
        (status = BAD_REQUEST, description = "A DM with oneself", body = ErrorBody),
        (status = NOT_FOUND, description = "No user by that name", body = ErrorBody),
    ),
)]
pub async fn open_dm(
    State(state): State<AppState>,
    authed: Authed,
    Json(req): Json<OpenDm>,
) -> ApiResult<(StatusCode, axum::Json<RoomState>)> {
    let name = req.user.trim().trim_start_matches('@').to_owned();
    let peer = state
        .store
        .user_by_name(&name)
        .await?
        .map(|found| found.user)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no user by that name"))?;
    if peer.id == authed.user.id {
        return Err(ApiError::new(
            ErrorCode::Invalid,
            "a direct message needs another user",
        ));
    }
    let (room, created) = state
        .store
        .open_dm(authed.user.id, peer.id, state.now_ms())
        .await?;
    let summary = summary(&state, room.id, authed.user.id).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(summary)))
}

/// Joins a group room.
#[utoipa::path(
    post, path = "/api/rooms/{id}/join", tag = "rooms",
    params(("id" = i64, Path, description = "The room's id")),
    responses(
        (status = OK, description = "Joined (or already a member)", body = RoomState),
        (status = FORBIDDEN, description = "A DM cannot be joined", body = ErrorBody),
        (status = NOT_FOUND, description = "No such room", body = ErrorBody),
    ),
)]
pub async fn join(
    State(state): State<AppState>,
    authed: Authed,
    Path(room): Path<RoomId>,
) -> ApiResult<axum::Json<RoomState>> {
    let user = authed.user.id;
    // The join is an entry of the store's log: every node's fan-out applies it before any
    // message committed after it.
    match state.store.join_room(room, user, state.now_ms()).await {
        Ok(_) => Ok(axum::Json(summary(&state, room, user).await?)),
        Err(err) => Err(room_error(err)),
    }
}

/// Leaves a group room.
#[utoipa::path(
    post, path = "/api/rooms/{id}/leave", tag = "rooms",
    params(("id" = i64, Path, description = "The room's id")),
    responses(
        (status = NO_CONTENT, description = "Left"),
        (status = FORBIDDEN, description = "A DM cannot be left", body = ErrorBody),
        (status = NOT_FOUND, description = "No such room", body = ErrorBody),
    ),
)]
pub async fn leave(
    State(state): State<AppState>,
    authed: Authed,
    Path(room): Path<RoomId>,
) -> ApiResult<StatusCode> {
    let user = authed.user.id;
    match state.store.leave_room(room, user).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(err) => Err(room_error(err)),
    }
}

#[utoipa::path(
    get, path = "/api/rooms/{id}/members", tag = "rooms",
    params(("id" = i64, Path, description = "The room's id")),
    responses(
        (status = OK, description = "The room's members", body = Vec<UserRef>),
        (status = FORBIDDEN, description = "Not a member of the room", body = ErrorBody),
        (status = NOT_FOUND, description = "No such room", body = ErrorBody),
    ),
)]
pub async fn members(
    State(state): State<AppState>,
    authed: Authed,
    Path(room): Path<RoomId>,
) -> ApiResult<axum::Json<Vec<UserRef>>> {
    ensure_member(&state, room, authed.user.id).await?;
    let members = state.store.members(room).await?;
    Ok(axum::Json(members.iter().map(wire::user_ref).collect()))
}

/// Tells the room's other members that the user is typing (nothing is stored). For clients
/// without the chat channel; the chat's `typing` frame does the same.
#[utoipa::path(
    post, path = "/api/rooms/{id}/typing", tag = "rooms",
    params(("id" = i64, Path, description = "The room's id")),
    responses(
        (status = NO_CONTENT, description = "The members were told"),
        (status = FORBIDDEN, description = "Not a member of the room", body = ErrorBody),
        (status = NOT_FOUND, description = "No such room", body = ErrorBody),
    ),
)]
pub async fn typing(
    State(state): State<AppState>,
    authed: Authed,
    Path(room): Path<RoomId>,
) -> ApiResult<StatusCode> {
    is_typing(&state, room, &authed.user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Tells `room`'s other members that `user` is typing in it, if `user` is a member.
pub async fn is_typing(state: &AppState, room: RoomId, user: &User) -> ApiResult<()> {
    ensure_member(state, room, user.id).await?;
    state.hub.typing(room, &wire::user_ref(user));
    Ok(())
}

/// Fails with `unknown_room` or `not_member` unless `user` is a member of `room`.
pub async fn ensure_member(state: &AppState, room: RoomId, user: i64) -> ApiResult<()> {
    let (exists, member) = if state.store.is_member(room, user).await? {
        (true, true)
    } else {
        (state.store.room(room).await?.is_some(), false)
    };
    match (exists, member) {
        (_, true) => Ok(()),
        (true, false) => Err(ApiError::new(
            ErrorCode::NotMember,
            "you are not a member of this room",
        )),
        (false, _) => Err(ApiError::new(ErrorCode::UnknownRoom, "no such room")),
    }
}

async fn summary(state: &AppState, room: RoomId, user: i64) -> ApiResult<RoomState> {
    state
        .store
        .room_summary(room, user)
        .await?
        .map(wire::room_state)
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownRoom, "no such room"))
}

fn room_error(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound => ApiError::new(ErrorCode::UnknownRoom, "no such room"),
        StoreError::NotAllowed => ApiError::new(
            ErrorCode::Forbidden,
            "direct messages cannot be joined or left",
        ),
        other => other.into(),
    }
}
