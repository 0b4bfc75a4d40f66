//! The HTTP transports of the chat channel, for networks where the WebSocket does not get
//! through (a proxy that strips `Upgrade`, one that buffers responses, one that cuts quiet
//! connections): long-polling and short polling (`/api/poll`), HTTP streaming as JSON lines or
//! Server-Sent Events (`/api/stream`), iframe streaming (`/api/stream/iframe`), and
//! `POST /api/frames` for what the client sends.
//!
//! All of them are one [`Channel`] — a [`Subscription`] opened at the client's cursor — and an
//! encoder. A channel hands out [`Batch`]es: the frames the WebSocket would have sent (messages,
//! acks aside, presence, typing, read markers) plus the session's status and lock, and the
//! cursor to resume from. The cursor is the only state a client keeps between requests, and it
//! only moves past a message once a batch holding it has been written: a poll answered to a
//! client that is gone, or a stream cut mid-chunk, loses nothing, since the next request replays
//! from the cursor; and nothing goes out twice, since the subscription skips what the replay sent.
//!
//! On a connection the listener serves itself (`crate::direct`), a JSON-lines or SSE stream lets
//! the fan-out write to its socket once its replay and what was queued after it are out: each
//! message as a batch of its own, encoded once for every stream of its format, and each signal
//! as a batch made for the connection, with its cursor (`delivery::Form::Stream`). The stream's
//! own batches (status, heartbeat, lock) then go through the same outlet, under its lock, with
//! the cursor the fan-out's writes left, so a batch's cursor never goes back.
//!
//! Bounds: every poll and stream takes one of `limits.max_connections`; a session holds one poll
//! (a newer one answers the older at once, empty) and `transports.streams_per_session` streams
//! (a newer one ends the oldest); an iframe stream ends after `transports.stream_max_bytes` and
//! the client reopens it; a client that stops reading is kicked as lagging when its queue fills, and
//! its writes time out.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::BytesMut;
use serde::Deserialize;
use tidings_proto::v1::{
    ClientFrame, ErrorBody, ErrorCode, Lock, MessageId, ServerFrame, TransportKind, Transports,
    decode_client_frame,
};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Interval, sleep};
use tungstenite::Utf8Bytes;

use crate::app::{AppState, Turn};
use crate::auth::{self, Authed, Passive};
use crate::batch::{self, Format};
use crate::delivery::{self, Event, Form, Live, Subscription, Wants};
use crate::error::{ApiError, Query};
use crate::hub::{Lane, Presence};
use crate::outlet::{Attached, Outlet, Release};
use crate::request;

/// Messages per replayed batch; a client further behind gets several.
const REPLAY_PAGE: u32 = 500;
/// Queued live events put in one batch.
const BATCH_EVENTS: usize = 64;

/// `GET /api/transports`.
pub async fn transports(State(state): State<AppState>) -> Json<Transports> {
    let config = &state.config;
    let ms = |d: Duration| auth::millis(d) as u64;
    let websocket = config
        .transports
        .websocket
        .then_some(TransportKind::WebSocket);
    Json(Transports {
        transports: websocket
            .into_iter()
            .chain([
                TransportKind::Sse,
                TransportKind::Streaming,
                TransportKind::Iframe,
                TransportKind::LongPolling,
                TransportKind::ShortPolling,
            ])
            .collect(),
        poll_timeout_ms: ms(config.transports.poll_timeout),
        max_poll_timeout_ms: ms(config.transports.max_poll_timeout),
        short_poll_interval_ms: ms(config.transports.short_poll_interval),
        heartbeat_ms: ms(config.feed.keepalive),
        stream_max_bytes: config.transports.stream_max_bytes,
        presence_grace_ms: ms(config.transports.presence_grace),
    })
}

#[derive(Debug, Deserialize)]
pub struct ChannelQuery {
    /// The last message id the client has (its `synced` or batch cursor); 0 when it has none.
    #[serde(default)]
    cursor: MessageId,
    /// Seconds to hold a poll; 0 answers at once (short polling).
    timeout: Option<u64>,
    /// `1`: start with the `hello` frame (the first request of a connection).
    #[serde(default)]
    hello: u8,
}

/// A batch on its way out: pre-encoded frames and the cursor after them.
#[derive(Debug, Default)]
struct Out {
    cursor: MessageId,
    frames: Vec<Utf8Bytes>,
    /// Nothing follows: the session ended, the connection fell behind or was superseded, or the
    /// server is shutting down.
    end: bool,
}

impl Out {
    fn push(&mut self, frame: &ServerFrame) {
        self.frames.push(delivery::encode(frame));
    }

    fn push_live(&mut self, live: &Live) {
        self.frames.push(live.text().clone());
    }
}

/// A client's place in the delivery path for one request: see the module documentation.
struct Channel {
    state: AppState,
    subscription: Subscription,
    cursor: MessageId,
}

impl Channel {
    /// With an outlet, the fan-out writes to the socket in `Form::Stream` once the stream lets
    /// it (see [`Stream::go_direct`]).
    fn open(
        state: &AppState,
        authed: &Authed,
        lane: Lane,
        cursor: MessageId,
        outlet: Option<(Arc<Outlet>, Form)>,
    ) -> Channel {
        let (per_session, status_every) = match lane {
            Lane::Poll => (1, None),
            Lane::Stream => (
                state.config.transports.streams_per_session.max(1),
                Some(state.config.session.feed_interval),
            ),
        };
        let wants = Wants {
            signals: true,
            presence: Presence::WithGrace,
            per_session: Some((lane, per_session)),
            status_every,
            transport: match lane {
                Lane::Poll => "poll",
                Lane::Stream => "stream",
            },
        };
        let session = authed.session.clone();
        let subscription = Subscription::open(state, &authed.user, session, wants, outlet);
        Channel {
            state: state.clone(),
            subscription,
            cursor: cursor.max(0),
        }
    }

    /// The opening batch: the hello when asked for, the session's status, and a page of what
    /// the client missed followed by `synced` (when there was anything, or a hello).
    async fn opening(&mut self, authed: &Authed, hello: bool) -> Result<(Out, bool), ApiError> {
        let mut out = Out::default();
        if hello {
            let hello = crate::chat::hello(&self.state, &authed.user, authed.session.id).await?;
            out.push(&ServerFrame::Hello(hello));
        }
        let status = auth::session_status(
            &authed.session,
            self.state.now_ms(),
            &self.state.config.session,
        );
        out.push(&ServerFrame::Session(status));
        let has_more = self.replay(&mut out, hello).await?;
        Ok((out, has_more))
    }

    /// A page of the replay from the cursor into `out`; whether more follow.
    async fn replay(&mut self, out: &mut Out, always_synced: bool) -> Result<bool, ApiError> {
        let replay = self.subscription.replay(self.cursor, REPLAY_PAGE).await?;
        for live in &replay.messages {
            out.push_live(live);
        }
        self.cursor = if replay.out_of_reach {
            // Not a cursor of this server (past its newest message): the client starts over
            // from the newest, as the feed's `reset` has it.
            self.subscription.skip_to(replay.latest_id);
            replay.latest_id
        } else {
            self.cursor.max(replay.synced_to())
        };
        if always_synced || !replay.messages.is_empty() || replay.has_more {
            out.push(&ServerFrame::Synced {
                latest_id: replay.synced_to(),
                has_more: replay.has_more,
            });
        }
        out.cursor = self.cursor;
        Ok(replay.has_more)
    }

    /// The next batch of live events: waits for the first.
    async fn next(&mut self) -> Out {
        let mut out = Out::default();
        match self.subscription.next().await {
            Some(Event::Live(first)) => {
                out.push_live(&first);
                let (rest, _) = self.subscription.drain(BATCH_EVENTS - 1);
                for live in &rest {
                    out.push_live(live);
                }
            }
            Some(Event::Status(status)) => out.push(&ServerFrame::Session(status)),
            Some(Event::Lock(reason)) => {
                out.push(&ServerFrame::Lock(Lock { reason }));
                out.end = true;
            }
            Some(Event::Lagging | Event::Superseded) | None => out.end = true,
        }
        self.cursor = self.cursor.max(self.subscription.high_water());
        out.cursor = self.cursor;
        out
    }

    /// What is already queued, without waiting (for a batch about to be answered).
    fn drain_into(&mut self, out: &mut Out) {
        let room = BATCH_EVENTS.saturating_sub(out.frames.len());
        let (rest, _) = self.subscription.drain(room);
        for live in &rest {
            out.push_live(live);
        }
        self.cursor = self.cursor.max(self.subscription.high_water());
        out.cursor = self.cursor;
    }
}

/// `GET /api/poll`: everything after the cursor at once, or the first thing that happens
/// within the timeout, or an empty batch when the timeout passes.
pub async fn poll(
    State(state): State<AppState>,
    turn: Turn,
    Passive(authed): Passive,
    Query(query): Query<ChannelQuery>,
) -> Result<Response, ApiError> {
    let _permit = state.connection_permit()?;
    let config = &state.config.transports;
    let hold = query
        .timeout
        .map_or(config.poll_timeout, Duration::from_secs)
        .min(config.max_poll_timeout);
    let mut channel = Channel::open(&state, &authed, Lane::Poll, query.cursor, None);
    let (mut out, _) = channel.opening(&authed, query.hello == 1).await?;
    drop(turn);
    // The session's status alone is no news.
    if out.frames.len() == 1 && !hold.is_zero() {
        tokio::select! {
            next = channel.next() => {
                out.frames.extend(next.frames);
                out.cursor = next.cursor;
            }
            _ = sleep(hold) => {}
        }
    }
    channel.drain_into(&mut out);
    let mut response = Body::from(batch::json(out.cursor, &out.frames).freeze()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /api/stream`: batches as they happen, as JSON lines or, for `Accept:
/// text/event-stream`, as Server-Sent Events.
pub async fn stream(
    State(state): State<AppState>,
    turn: Turn,
    Passive(authed): Passive,
    headers: HeaderMap,
    Query(query): Query<ChannelQuery>,
    attached: Option<Extension<Attached>>,
) -> Result<Response, ApiError> {
    let sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    // An SSE client resuming by itself says where it stopped in `Last-Event-ID`: the cursor.
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<MessageId>().ok());
    let cursor = resumed.unwrap_or(query.cursor).max(query.cursor);
    let format = if sse { Format::Sse } else { Format::Lines };
    let outlet = attached.map(|Extension(Attached(outlet))| outlet);
    open_stream(
        state,
        turn,
        authed,
        cursor,
        query.hello == 1,
        format,
        outlet,
    )
}

/// `GET /api/stream/iframe`: batches as `<script>` chunks for a hidden iframe. Never written by
/// the fan-out: the stream ends after `stream_max_bytes` of what it wrote itself.
pub async fn iframe(
    State(state): State<AppState>,
    turn: Turn,
    Passive(authed): Passive,
    Query(query): Query<ChannelQuery>,
) -> Result<Response, ApiError> {
    open_stream(
        state,
        turn,
        authed,
        query.cursor,
        query.hello == 1,
        Format::Iframe,
        None,
    )
}

fn open_stream(
    state: AppState,
    turn: Turn,
    authed: Authed,
    cursor: MessageId,
    hello: bool,
    format: Format,
    outlet: Option<Arc<Outlet>>,
) -> Result<Response, ApiError> {
    let permit = state.connection_permit()?;
    let routed = outlet.clone().map(|outlet| (outlet, Form::Stream(format)));
    let channel = Channel::open(&state, &authed, Lane::Stream, cursor, routed);
    let opening = Opening {
        _turn: turn,
        authed,
        hello,
    };
    let stream = Stream::new(channel, permit, opening, format, outlet);
    let body = futures_util::stream::unfold(stream, |mut stream| async move {
        let chunk = stream.next_chunk().await?;
        Some((Ok::<Bytes, Infallible>(chunk), stream))
    });
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    // Neither stored nor transformed (compressed, buffered) on the way.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-transform"),
    );
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if format == Format::Iframe {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'self'"),
        );
    }
    Ok(response)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The prelude and the opening batch.
    Start,
    /// More replay pages.
    Replaying,
    Live,
    Done,
}

/// What a stream needs until its opening batch is ready, and not after.
struct Opening {
    /// Given back once the opening batch is ready.
    _turn: Turn,
    authed: Authed,
    hello: bool,
}

/// A stream's state machine, polled by its HTTP body: an open stream costs its subscription
/// and its timers, no task.
struct Stream {
    channel: Channel,
    _permit: OwnedSemaphorePermit,
    /// Until the opening batch is ready.
    opening: Option<Box<Opening>>,
    format: Format,
    phase: Phase,
    /// Only when the session's status comes less often than a keepalive should.
    heartbeat: Option<Interval>,
    /// Bytes written so far; past `stream_max_bytes` the stream ends.
    written: u64,
    /// The socket's outlet, when the fan-out can write to it: once the replay and what was
    /// queued after it are written, the fan-out writes the messages and signals itself
    /// (`direct`), and the stream writes its own batches (status, heartbeat, lock) through the
    /// outlet, with the cursor the fan-out's writes left.
    outlet: Option<Arc<Outlet>>,
    direct: bool,
}

impl Stream {
    fn new(
        channel: Channel,
        permit: OwnedSemaphorePermit,
        opening: Opening,
        format: Format,
        outlet: Option<Arc<Outlet>>,
    ) -> Stream {
        let config = &channel.state.config;
        let heartbeat = delivery::keepalive(config.feed.keepalive, config.session.feed_interval);
        Stream {
            channel,
            _permit: permit,
            opening: Some(Box::new(opening)),
            format,
            phase: Phase::Start,
            heartbeat,
            written: 0,
            outlet,
            direct: false,
        }
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        let chunk = match self.phase {
            Phase::Done => return None,
            Phase::Start => {
                let mut chunk = BytesMut::from(self.format.prelude());
                let opening = self.opening.take()?;
                // Boxed, as the replay below: they are done once, and the stream's state lives on.
                let opened = Box::pin(self.channel.opening(&opening.authed, opening.hello)).await;
                drop(opening);
                match opened {
                    Ok((out, has_more)) => {
                        self.phase = if has_more {
                            Phase::Replaying
                        } else {
                            Phase::Live
                        };
                        chunk.extend_from_slice(&self.format.encode(out.cursor, &out.frames));
                    }
                    Err(err) => {
                        // Without the replay the client would miss messages: end, so that it
                        // reopens and the replay is tried again.
                        tracing::error!(%err, "stream replay failed");
                        self.phase = Phase::Done;
                    }
                }
                chunk.freeze()
            }
            Phase::Replaying => {
                let mut out = Out::default();
                match Box::pin(self.channel.replay(&mut out, false)).await {
                    Ok(true) => {}
                    Ok(false) => self.phase = Phase::Live,
                    Err(err) => {
                        tracing::error!(%err, "stream replay failed");
                        return None;
                    }
                }
                self.format.encode(out.cursor, &out.frames)
            }
            Phase::Live => {
                if let Some(queued) = self.go_direct() {
                    return Some(queued);
                }
                let out = tokio::select! {
                    out = self.channel.next() => out,
                    _ = delivery::tick(&mut self.heartbeat) => Out {
                        cursor: self.channel.cursor,
                        ..Out::default()
                    },
                };
                if out.end {
                    self.phase = Phase::Done;
                    if out.frames.is_empty() {
                        return None;
                    }
                }
                self.encode(out)?
            }
        };
        self.written += chunk.len() as u64;
        // An iframe's document keeps every script it ran: it is ended after a bound and the
        // client reopens from this chunk's cursor. A streamed response read as it comes keeps
        // nothing, and goes on.
        if self.format == Format::Iframe
            && self.written >= self.channel.state.config.transports.stream_max_bytes
        {
            self.phase = Phase::Done;
        }
        Some(chunk)
    }

    /// What is queued, as batches, until there is nothing: then the fan-out writes to the
    /// socket itself (`None` once it does, or when it cannot).
    fn go_direct(&mut self) -> Option<Bytes> {
        if self.direct {
            return None;
        }
        let outlet = self.outlet.clone()?;
        loop {
            let mut out = Out::default();
            self.channel.drain_into(&mut out);
            if !out.frames.is_empty() {
                return Some(self.format.encode(out.cursor, &out.frames));
            }
            let subscription = &self.channel.subscription;
            match outlet.release(subscription.high_water(), || subscription.queue_is_empty()) {
                Release::Direct => {
                    self.direct = true;
                    return None;
                }
                // Kicked, which the subscription tells next.
                Release::Stopped => {
                    self.outlet = None;
                    return None;
                }
                Release::Queued => {}
            }
        }
    }

    /// `out` as a chunk of the body; once the fan-out writes to the socket, written through
    /// the outlet instead, with the cursor its writes left (the chunk is then empty: the body
    /// writes what the socket did not take yet, within the write timeout). `None` when the
    /// socket has failed.
    fn encode(&mut self, mut out: Out) -> Option<Bytes> {
        let format = self.format;
        let (Some(outlet), true) = (&self.outlet, self.direct) else {
            return Some(format.encode(out.cursor, &out.frames));
        };
        let cursor = &mut self.channel.cursor;
        let written = outlet.write_with(|written| {
            out.cursor = out.cursor.max(written);
            *cursor = out.cursor;
            format.encode(out.cursor, &out.frames)
        });
        match written {
            Ok(()) => Some(Bytes::new()),
            Err(err) => {
                tracing::debug!(%err, "stream connection ended");
                None
            }
        }
    }
}

/// `POST /api/frames`: one client frame, carried out as on the WebSocket; the answer is the
/// frames it produced. A sync is the poll's and the stream's business (their `cursor`).
pub async fn frames(
    State(state): State<AppState>,
    authed: Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::new(ErrorCode::BadFrame, "the frame is not valid UTF-8"))?;
    let frame = decode_client_frame(text).map_err(|err| ApiError {
        body: ErrorBody::from(err),
    })?;
    if let ClientFrame::Sync { .. } = frame {
        return Err(ApiError::new(
            ErrorCode::Invalid,
            "sync over HTTP is the cursor of /api/poll or /api/stream",
        ));
    }
    let reply = match request::start(&state, &authed.user, frame).await {
        Ok(reply) => reply.await,
        Err(_) => None,
    };
    let frames: Vec<ServerFrame> = reply.into_iter().map(|frame| *frame).collect();
    Ok((StatusCode::OK, Json(frames)).into_response())
}
