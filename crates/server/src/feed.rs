//! The Server-Sent Events feed (`/api/events`): the session feed and the new-message feed on one
//! stream per login.
//!
//! A stream opens with the `retry:` hint, the session's status and — when the client says where
//! it stopped (`Last-Event-ID`, or `?last_event_id=` for clients that cannot set headers) — the
//! `message` events it missed, read from the store. Then it follows the hub: new messages as they
//! commit, the session's status every `feed_interval`, and a keepalive comment every `keepalive`
//! when that is shorter (the status keeps proxies from closing the stream otherwise).
//! When the session expires or is revoked it sends `lock` and ends; the token then gets 401.
//!
//! What it sends comes from the connection's [`Subscription`] (the one delivery path: replay,
//! live events, the session's status and lock); this module only encodes it as SSE. The stream
//! is a state machine polled by its HTTP body, not a task: an idle stream costs its queue and
//! timers, nothing more.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use tidings_proto::v1::{EVENT_LOCK, EVENT_RESET, EVENT_SESSION, Lock, MessageId, Reset};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Interval;

use crate::app::{AppState, Turn};
use crate::auth::{self, Passive};
use crate::delivery::{self, Event, Form, Live, Subscription, Wants, tick};
use crate::error::{ApiError, Query};
use crate::hub::Presence;
use crate::outlet::{Attached, Outlet, Release};
use crate::sse;

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
    attached: Option<Extension<Attached>>,
) -> Response {
    let cursor = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(query.last_event_id)
        .filter(|raw| !raw.trim().is_empty())
        .map(|raw| raw.trim().parse::<MessageId>().unwrap_or(-1));
    let permit = match state.connection_permit() {
        Ok(permit) => permit,
        Err(err) => return err.into_response(),
    };
    let wants = Wants {
        signals: false,
        presence: Presence::No,
        per_session: None,
        status_every: Some(state.config.session.feed_interval),
        transport: "feed",
    };
    let outlet = attached.map(|Extension(Attached(outlet))| outlet);
    let form = Form::Alert(authed.user.id);
    let subscription = Subscription::open(
        &state,
        &authed.user,
        authed.session,
        wants,
        outlet.clone().map(|outlet| (outlet, form)),
    );
    let mut feed = Feed::new(state, subscription, permit, cursor, turn);
    feed.outlet = outlet;
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
    subscription: Subscription,
    _permit: OwnedSemaphorePermit,
    /// Given back once the opening chunk is ready.
    turn: Option<Turn>,
    /// Where the client says it stopped (-1: unreadable).
    cursor: Option<MessageId>,
    phase: Phase,
    /// Only when the status comes less often than a keepalive should: an idle feed then keeps one
    /// timer fewer.
    keepalive: Option<Interval>,
    /// The socket's outlet, when the fan-out can write to it: once what was queued after the
    /// opening is written, the fan-out writes the events itself (see `crate::outlet`).
    outlet: Option<Arc<Outlet>>,
}

impl Feed {
    fn new(
        state: AppState,
        subscription: Subscription,
        permit: OwnedSemaphorePermit,
        cursor: Option<MessageId>,
        turn: Turn,
    ) -> Feed {
        let config = &state.config;
        let keepalive = delivery::keepalive(config.feed.keepalive, config.session.feed_interval);
        Feed {
            state,
            subscription,
            _permit: permit,
            turn: Some(turn),
            cursor,
            phase: Phase::Start,
            keepalive,
            outlet: None,
        }
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        match self.phase {
            Phase::Start => {
                self.phase = Phase::Live;
                // Boxed: the opening's reads are done once, and the stream's state lives on.
                let opening = Box::pin(self.start()).await;
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
        let status = self.subscription.status().await;
        out.extend_from_slice(&self.encode(status));
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

    /// The `message` events after `cursor`, or `reset` when the cursor is out of reach or
    /// further behind than the feed replays (`feed.replay_limit`): the client then reloads
    /// history and continues from the newest message.
    async fn replay(&mut self, cursor: MessageId) -> Result<Bytes, ApiError> {
        let limit = self.state.config.feed.replay_limit;
        self.state.metrics.feed_replays.inc();
        let replay = self.subscription.replay(cursor, limit).await?;
        if replay.out_of_reach || replay.has_more {
            let latest_id = replay.latest_id;
            self.subscription.skip_to(latest_id);
            return Ok(sse::event(
                EVENT_RESET,
                Some(latest_id),
                &Reset { latest_id },
            ));
        }
        let mut out = BytesMut::new();
        for live in &replay.messages {
            self.append(&mut out, live);
        }
        Ok(out.freeze())
    }

    async fn live(&mut self) -> Option<Bytes> {
        if let Some(queued) = self.go_direct() {
            return Some(queued);
        }
        loop {
            let chunk = tokio::select! {
                event = self.subscription.next() => match event? {
                    Event::Live(first) => self.drain(first),
                    // The client reconnects with Last-Event-ID and is replayed what it missed.
                    Event::Lagging | Event::Superseded => return None,
                    event => self.encode(event),
                },
                _ = tick(&mut self.keepalive) => sse::keepalive(),
            };
            // A change the feed says nothing of (an edit, a reaction) makes no chunk.
            if !chunk.is_empty() {
                return Some(chunk);
            }
        }
    }

    /// What is queued, as a chunk, until there is nothing: then the fan-out writes to the socket
    /// itself, and the outlet is forgotten (its backlog is the listener's to write).
    fn go_direct(&mut self) -> Option<Bytes> {
        let outlet = self.outlet.clone()?;
        loop {
            if let Some(first) = self.subscription.try_next() {
                let chunk = self.drain(first);
                if !chunk.is_empty() {
                    return Some(chunk);
                }
                continue;
            }
            let subscription = &self.subscription;
            match outlet.release(subscription.high_water(), || subscription.queue_is_empty()) {
                // Stopped: kicked, which the subscription tells next.
                Release::Direct | Release::Stopped => {
                    self.outlet = None;
                    return None;
                }
                Release::Queued => {}
            }
        }
    }

    /// `first` and whatever else is queued, as one chunk.
    fn drain(&mut self, first: Arc<Live>) -> Bytes {
        // The common case at low rates: one message, its shared bytes themselves, no copy.
        let Some(second) = self.subscription.try_next() else {
            return match &*first {
                Live::Message(published) => published.alert_for(self.subscription.user()).clone(),
                Live::Signal(_) => Bytes::new(),
            };
        };
        let mut out = BytesMut::new();
        self.append(&mut out, &first);
        let mut next = Some(second);
        let mut written = 1;
        while let Some(live) = next.take() {
            self.append(&mut out, &live);
            written += 1;
            if written < WRITE_BATCH {
                next = self.subscription.try_next();
            }
        }
        out.freeze()
    }

    /// A live item's event: a message's alert (the feed takes no signals).
    fn append(&self, out: &mut BytesMut, live: &Live) {
        if let Live::Message(published) = live {
            out.extend_from_slice(published.alert_for(self.subscription.user()));
        }
    }

    /// The event for the session's status, or the lock that ends the stream.
    fn encode(&mut self, event: Event) -> Bytes {
        match event {
            Event::Status(status) => sse::event(EVENT_SESSION, None, &status),
            Event::Lock(reason) => {
                self.phase = Phase::Done;
                sse::event(EVENT_LOCK, None, &Lock { reason })
            }
            Event::Live(live) => self.drain(live),
            Event::Lagging | Event::Superseded => {
                self.phase = Phase::Done;
                Bytes::new()
            }
        }
    }
}
