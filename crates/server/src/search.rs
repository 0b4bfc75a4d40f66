//! Full-text search over the rooms a user is in: `GET /api/search`.
//!
//! The words are parsed once, by the protocol's `Query`, and asked of the store in its backend's
//! syntax; the store never returns a message of a room the user is not in, nor a deleted one.
//! Searches are the costliest reads the server answers, so at most [`SEARCHES_AT_ONCE`] run at a
//! time (the rest of the store's read connections stay free for history and replays), and each
//! is stopped past the store's time limit.

use std::time::Duration;

use axum::extract::State;
use serde::Deserialize;
use tidings_proto::v1::search::{DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT, Query as Words};
use tidings_proto::v1::{ErrorBody, ErrorCode, MessageId, RoomId, SearchHit, SearchResults};
use tidings_store::{SEARCH_TIME_LIMIT, Search, StoreError};

use crate::app::AppState;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult, Query};
use crate::room::ensure_member;
use crate::wire;

/// How many searches the server runs at once, across all users.
pub const SEARCHES_AT_ONCE: usize = 2;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The words to find, as typed: every one must be in a message (any letter case); a word
    /// ending in `*` matches words that start with it.
    pub q: String,
    /// Only this room (one the user is in).
    #[param(value_type = Option<i64>)]
    pub room: Option<RoomId>,
    /// Only messages older than this id: the last hit of the page before.
    #[param(value_type = Option<i64>)]
    pub before: Option<MessageId>,
    /// At most this many hits (default 20; read as at least 1 and at most 50).
    pub limit: Option<i64>,
}

/// Messages of the user's rooms that have every word, newest first, with the words marked.
#[utoipa::path(
    get, path = "/api/search", tag = "messages",
    params(SearchQuery),
    responses(
        (status = OK, description = "The hits, newest first", body = SearchResults),
        (status = BAD_REQUEST, description = "No word to search for, or too many", body = ErrorBody),
        (status = FORBIDDEN, description = "The room asked for is not one of the user's", body = ErrorBody),
        (status = NOT_FOUND, description = "The room asked for does not exist", body = ErrorBody),
        (
            status = SERVICE_UNAVAILABLE, description = "Too many searches at once, or it took too long",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait")),
        ),
    ),
)]
pub async fn search(
    State(state): State<AppState>,
    authed: Authed,
    Query(q): Query<SearchQuery>,
) -> ApiResult<axum::Json<SearchResults>> {
    let words =
        Words::parse(&q.q).map_err(|err| ApiError::new(ErrorCode::Invalid, err.to_string()))?;
    if let Some(room) = q.room {
        ensure_member(&state, room, authed.user.id).await?;
    }
    let limit = q.limit.map_or(DEFAULT_SEARCH_LIMIT, |limit| {
        u32::try_from(limit.clamp(1, i64::from(MAX_SEARCH_LIMIT))).unwrap_or(MAX_SEARCH_LIMIT)
    });
    let Ok(Ok(_turn)) = tokio::time::timeout(SEARCH_TIME_LIMIT, state.searches.acquire()).await
    else {
        return Err(busy("too many searches at once; try again"));
    };
    // One extra row tells whether an older page exists.
    let found = state
        .store
        .search(Search {
            user: authed.user.id,
            room: q.room,
            before: q.before,
            limit: limit + 1,
            fts5: words.fts5(),
            tsquery: words.tsquery(),
        })
        .await;
    let mut found = match found {
        Err(StoreError::TimedOut) => {
            return Err(busy(
                "the search took too long; try more words or a rarer one",
            ));
        }
        other => other?,
    };
    let has_more = found.len() > limit as usize;
    found.truncate(limit as usize);
    let hits = found
        .into_iter()
        .map(|message| SearchHit {
            highlight: words.highlight(&message.body),
            message: wire::message(message),
        })
        .collect();
    Ok(axum::Json(SearchResults {
        hits,
        has_more,
        cached: false,
    }))
}

fn busy(why: &str) -> ApiError {
    ApiError::overloaded(why, Duration::from_secs(1))
}
