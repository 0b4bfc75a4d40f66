//! The Server-Sent Events feed (`/api/events`): the session feed and the new-message feed on one
//! stream per login.
//!
//! A stream opens with the `retry:` hint, the session's status and — when the client says where
//! it stopped (`Last-Event-ID`, or `?last_event_id=` for clients that cannot set headers) — the
//! `message` events it missed, read from the store. Then it follows the hub: new messages as they
//! commit, the session's status every `feed_interval`, a keepalive comment every `keepalive`.
//! When the session expires or is revoked it sends `lock` and ends; the token then gets 401.
//!
//! The stream is a state machine polled by the HTTP body, not a task: an idle stream costs its
//! queue and timers, nothing more.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use tidings_proto::v1::{
    EVENT_LOCK, EVENT_MESSAGE, EVENT_RESET, EVENT_SESSION, ErrorCode, Lock, LockReason,
    MessageAlert, MessageId, Reset, SessionState, SessionStatus, UserRef, preview,
};
use tidings_store::Session;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep, interval_at, sleep_until};

use crate::app::{AppState, Turn};
use crate::auth::{self, Passive};
use crate::error::{ApiError, Query};
use crate::hub::{FeedOut, Kick, Registration};
use crate::{sse, wire};

/// Queued events written as one chunk.
const WRITE_BATCH: usize = 64;

#[derive(Debug, Deserialize)]
pub struct FeedQuery {
    last_event_id: Option<String>,
}

pub async fn events(
    State(state): State<AppState>,
    turn: Turn,
    Passive(authed): Passive,
    headers: HeaderMap,
    Query(query): Query<FeedQuery>,
) -> Response {
    let cursor = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(query.last_event_id)
        .filter(|raw| !raw.trim().is_empty())
        .map(|raw| raw.trim().parse::<MessageId>().unwrap_or(-1));
    let Ok(permit) = state.connections.clone().try_acquire_owned() else {
        let mut err = ApiError::new(ErrorCode::Overloaded, "server at its connection limit");
        err.body.retry_after_ms = Some(auth::millis(state.config.feed.retry) as u64);
        return err.into_response();
    };
    let user = wire::user_ref(&authed.user);
    let (registration, queue) = state.hub.register_feed(&user, authed.session.id);
    let feed = Feed::new(
        state,
        authed.session,
        registration,
        queue,
        permit,
        cursor,
        turn,
    );
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let chunk = feed.next_chunk().await?;
        Some((Ok::<Bytes, Infallible>(chunk), feed))
    });
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells reverse proxies not to buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

enum Phase {
    Start,
    Live,
    Done,
}

struct Feed {
    state: AppState,
    session: Session,
    registration: Registration,
    queue: mpsc::Receiver<Arc<FeedOut>>,
    _permit: OwnedSemaphorePermit,
    /// Given back once the opening chunk is ready.
    turn: Option<Turn>,
    /// Where the client says it stopped (-1: unreadable).
    cursor: Option<MessageId>,
    /// The highest message id sent; queued events at or below it were sent by the replay.
    high_water: MessageId,
    phase: Phase,
    status_ticks: Interval,
    keepalive: Interval,
    /// Wakes the stream when the session's nearest deadline passes.
    deadline: Pin<Box<Sleep>>,
}

impl Feed {
    fn new(
        state: AppState,
        session: Session,
        registration: Registration,
        queue: mpsc::Receiver<Arc<FeedOut>>,
        permit: OwnedSemaphorePermit,
        cursor: Option<MessageId>,
        turn: Turn,
    ) -> Feed {
        let every = state.config.session.feed_interval;
        let mut status_ticks = interval_at(Instant::now() + every, every);
        status_ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let alive = state.config.feed.keepalive;
        let mut keepalive = interval_at(Instant::now() + alive, alive);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Feed {
            state,
            session,
            registration,
            queue,
            _permit: permit,
            turn: Some(turn),
            cursor,
            high_water: 0,
            phase: Phase::Start,
            status_ticks,
            keepalive,
            deadline: Box::pin(sleep_until(Instant::now())),
        }
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        match self.phase {
            Phase::Start => {
                self.phase = Phase::Live;
                let opening = self.start().await;
                self.turn = None;
                Some(opening)
            }
            Phase::Live => self.live().await,
            Phase::Done => None,
        }
    }

    /// The opening chunk: retry hint, status, and the replay of missed messages.
    async fn start(&mut self) -> Bytes {
        let mut out = BytesMut::new();
        out.extend_from_slice(&sse::retry(
            auth::millis(self.state.config.feed.retry) as u64
        ));
        if let Some(chunk) = self.status().await {
            out.extend_from_slice(&chunk);
        }
        if matches!(self.phase, Phase::Done) {
            return out.freeze();
        }
        if let Some(cursor) = self.cursor {
            match self.replay(cursor).await {
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(err) => {
                    tracing::error!(%err, "feed replay failed");
                    // Without the replay the client would miss messages silently: end the
                    // stream so it reconnects and tries again.
                    self.phase = Phase::Done;
                }
            }
        }
        out.freeze()
    }

    /// The `message` events after `cursor`, or `reset` when the cursor is out of reach.
    async fn replay(&mut self, cursor: MessageId) -> Result<Bytes, ApiError> {
        let user = self.session.user_id;
        let limit = self.state.config.feed.replay_limit;
        let (rows, latest_id) = self
            .state
            .read(move |store| {
                let latest = store.latest_message_id()?;
                if cursor < 0 || cursor > latest {
                    return Ok((Vec::new(), latest));
                }
                Ok((store.messages_since(user, cursor, limit + 1)?, latest))
            })
            .await?;
        if cursor < 0 || cursor > latest_id || rows.len() > limit as usize {
            // Further behind than we replay (or a cursor from another server): the client
            // reloads history and continues from the newest message.
            self.high_water = latest_id;
            return Ok(sse::event(
                EVENT_RESET,
                Some(latest_id),
                &Reset { latest_id },
            ));
        }
        let mut out = BytesMut::new();
        for row in rows {
            let alert = MessageAlert {
                room: row.room_id,
                id: row.id,
                mentions_you: row.mentions.contains(&user),
                preview: preview(&row.body),
                sent_at: row.sent_at,
                author: UserRef {
                    id: row.author.id,
                    name: row.author.name,
                },
            };
            out.extend_from_slice(&sse::event(EVENT_MESSAGE, Some(alert.id), &alert));
            self.high_water = alert.id;
        }
        self.high_water = self.high_water.max(cursor);
        Ok(out.freeze())
    }

    async fn live(&mut self) -> Option<Bytes> {
        loop {
            tokio::select! {
                kick = self.registration.kick.kicked() => {
                    return match kick {
                        Kick::Locked(reason) => Some(self.lock(reason)),
                        // The client reconnects with Last-Event-ID and is replayed what it missed.
                        Kick::Lagging => None,
                    };
                }
                _ = self.state.shutdown.cancelled() => return None,
                Some(first) = self.queue.recv() => {
                    if let Some(chunk) = self.drain(first) {
                        return Some(chunk);
                    }
                }
                _ = self.status_ticks.tick() => return self.status().await,
                _ = &mut self.deadline => return self.status().await,
                _ = self.keepalive.tick() => return Some(sse::keepalive()),
            }
        }
    }

    /// `first` and whatever else is queued, minus what the replay already sent.
    fn drain(&mut self, first: Arc<FeedOut>) -> Option<Bytes> {
        let mut fresh = Vec::new();
        let mut next = Some(first);
        while let Some(item) = next.take() {
            if item.id > self.high_water {
                self.high_water = item.id;
                fresh.push(item);
            }
            if fresh.len() < WRITE_BATCH {
                next = self.queue.try_recv().ok();
            }
        }
        match fresh.as_slice() {
            [] => None,
            // The common case at low rates: the shared bytes themselves, no copy.
            [one] => Some(one.event.clone()),
            many => {
                let mut out = BytesMut::with_capacity(many.iter().map(|i| i.event.len()).sum());
                for item in many {
                    out.extend_from_slice(&item.event);
                }
                Some(out.freeze())
            }
        }
    }

    /// Reads the session and reports it: `session`, or `lock` when it has ended.
    async fn status(&mut self) -> Option<Bytes> {
        let id = self.session.id;
        let session = match self.state.read(move |store| store.session(id)).await {
            Ok(Some(session)) => session,
            Ok(None) => return Some(self.lock(LockReason::Revoked)),
            Err(err) => {
                tracing::warn!(%err, "could not read session status");
                return Some(sse::keepalive());
            }
        };
        let status: SessionStatus =
            auth::session_status(&session, self.state.now_ms(), &self.state.config.session);
        self.session = session;
        match status.state {
            SessionState::Expired => Some(self.lock(LockReason::Expired)),
            SessionState::Revoked => Some(self.lock(LockReason::Revoked)),
            SessionState::Active | SessionState::Expiring => {
                let deadline = status.expires_at.min(status.idle_expires_at);
                let wait = (deadline - status.now).max(0) as u64;
                self.deadline
                    .as_mut()
                    .reset(Instant::now() + std::time::Duration::from_millis(wait));
                Some(sse::event(EVENT_SESSION, None, &status))
            }
        }
    }

    fn lock(&mut self, reason: LockReason) -> Bytes {
        self.phase = Phase::Done;
        sse::event(EVENT_LOCK, None, &Lock { reason })
    }
}
