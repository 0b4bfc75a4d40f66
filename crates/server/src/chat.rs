//! The WebSocket chat channel (`/api/ws`, subprotocol `tidings.v1`).
//!
//! A task per connection while it has something to do, looping over: frames from the client, the
//! connection's subscription (live events from the hub, the session's status every heartbeat — a
//! ping then — and the lock when the session ends; see [`crate::delivery`]), requests in flight
//! (sends waiting for their commit, history reads) and server shutdown. With nothing to do and
//! nothing in flight, the connection is parked and its task ends; the next of those wakes it
//! (see [`crate::park`]).
//! A `sync` is answered from the subscription's replay, in line, so it and the live events keep
//! their order. Requests run concurrently inside the task — a burst of
//! sends shares one group commit instead of waiting for each other — with a cap on how many are
//! in flight, after which the task stops reading (backpressure instead of memory).
//!
//! Close codes are those of [`tidings_proto::v1::close`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tidings_proto::v1::{
    ErrorCode, Hello, LockReason, SUBPROTOCOL, ServerFrame, SessionId, close, decode_client_frame,
};
use tidings_store::{Session, User};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, timeout};
use tokio_util::task::task_tracker::TaskTrackerToken;
use tracing::Instrument;

use crate::app::{AppState, Turn};
use crate::auth::{self, Authed};
use crate::delivery::{ChatFrame, Event, Form, Live, Subscription, Wants};
use crate::error::ApiError;
use crate::hub::{Kick, Presence};
use crate::outlet::{Outlet, Release, backlog};
use crate::park::Parker;
use crate::request::{self, error_frame};
use crate::wire;
use crate::ws::{self, Incoming, Refused, Socket, Upgrade};

/// Requests of one connection allowed in flight before it stops reading.
const MAX_IN_FLIGHT: usize = 64;
/// Queued frames written in one batch (one socket write) before flushing.
const WRITE_BATCH: usize = 16;
/// Messages sent per `sync` answer; the client syncs again when `has_more`.
const SYNC_PAGE: u32 = 500;
/// How long to wait for the peer's close frame after sending ours.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Upgrades an authenticated request offering our subprotocol.
pub async fn upgrade(
    State(state): State<AppState>,
    turn: Turn,
    authed: Authed,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    let offered = headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL);
    if !offered {
        return ApiError::new(
            ErrorCode::SubprotocolRequired,
            format!("offer the WebSocket subprotocol {SUBPROTOCOL:?}"),
        )
        .into_response();
    }
    let permit = state.connections.clone().try_acquire_owned().ok();
    let limit = state.config.limits.max_frame_bytes;
    ws.accept(SUBPROTOCOL, limit, move |socket| {
        // Tracked (graceful shutdown waits for it) and abortable at the drain deadline.
        let open = state.clone();
        let task = serve(socket, state, authed, permit, turn);
        open.connections_open.spawn(&open.tasks, task);
    })
}

/// `/api/ws` on a server whose WebSocket is switched off (`transports.websocket = false`, for
/// hosts behind proxies that break it): not found, before anything else, so a client takes the
/// next rung of its ladder at once.
pub async fn switched_off() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "the WebSocket is switched off on this server",
    )
}

/// `/api/test/echo`, routed only when `testing.websocket_echo` is on: echoes every message on a
/// WebSocket configured exactly as the chat channel's (its limit, its close handling), so a
/// protocol conformance suite (Autobahn's cases) can exercise that configuration. No auth, no
/// subprotocol: never enable it on a server people use.
pub async fn echo(State(state): State<AppState>, ws: Upgrade) -> Response {
    let write_timeout = state.config.chat.write_timeout;
    let limit = state.config.limits.max_frame_bytes;
    ws.accept("", limit, move |socket| {
        let open = state.clone();
        open.connections_open
            .spawn(&open.tasks, echo_until_closed(socket, write_timeout));
    })
}

/// The echo route's connection: every text or binary message sent back, until it closes.
async fn echo_until_closed(mut socket: Socket, write_timeout: Duration) {
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    let closing = loop {
        let echoed = match socket.next().await {
            None => return,
            Some(Ok(Incoming::Text(text))) => ws::encode(OpCode::Data(Data::Text), text.as_bytes()),
            Some(Ok(Incoming::Binary(bytes))) => ws::encode(OpCode::Data(Data::Binary), &bytes),
            Some(Ok(Incoming::Ping(payload))) => ws::pong(&payload),
            Some(Ok(Incoming::Pong)) => continue,
            Some(Ok(Incoming::Close(code))) => break answer(code),
            Some(Err(refused)) => break refusal(refused),
        };
        if bounded(write_timeout, socket.send(&echoed)).await.is_err() {
            return;
        }
    };
    close_with(&mut socket, closing, write_timeout).await;
}

/// The connection's requests in flight, in a set that exists only while one is: an empty
/// `FuturesUnordered` is two allocations, and most connections are idle most of the time.
#[derive(Default)]
struct InFlight(Option<FuturesUnordered<request::Reply>>);

impl InFlight {
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, FuturesUnordered::len)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&mut self, reply: request::Reply) {
        self.0.get_or_insert_with(FuturesUnordered::new).push(reply);
    }

    /// The next request to finish, its reply; `None` when none is in flight.
    async fn next(&mut self) -> Option<Option<Box<ServerFrame>>> {
        let reply = self.0.as_mut()?.next().await;
        if self.0.as_ref().is_some_and(FuturesUnordered::is_empty) {
            self.0 = None;
        }
        reply
    }
}

/// Runs a write to the socket within `limit` (see `clock::within`).
async fn bounded(
    limit: Duration,
    write: impl Future<Output = std::io::Result<()>>,
) -> Result<(), Closing> {
    match crate::clock::within(limit, write).await {
        Some(done) => done.map_err(|_| gone()),
        None => Err(Closing {
            code: close::LAGGING,
            reason: "write timed out",
        }),
    }
}

/// How a connection ends.
struct Closing {
    code: u16,
    reason: &'static str,
}

/// The connection's first task: subscribes, sends the hello, then serves the connection (see
/// [`Open`]). Built so the task holds one `Connection` and its subscription: the arguments move
/// into them before the future exists (an async fn would keep them too).
fn serve(
    socket: Socket,
    state: AppState,
    authed: Authed,
    permit: Option<OwnedSemaphorePermit>,
    turn: Turn,
) -> impl Future<Output = ()> + Send {
    let span = span(&authed.user, authed.session.id);
    let Authed { user, session } = authed;
    let mut connection = Connection::new(socket, state, user);
    // Subscribed before anything is read for the hello, so nothing committed from here on is
    // missed: it is either in the hello's counts and a later sync, or in the queue. The session
    // is the subscription's, which keeps it up to date.
    let subscription = permit.is_some().then(|| connection.subscribe(session));
    async move {
        // A shutdown whose drain deadline passed aborts the task wherever it is
        // (`AppState::connections_open`).
        let (Some(permit), Some(subscription)) = (permit, subscription) else {
            let overloaded = Closing {
                code: close::OVERLOADED,
                reason: "server at its connection limit; retry later",
            };
            return Box::pin(connection.close(overloaded)).await;
        };
        if let Err(closing) = Box::pin(connection.greet(subscription.session().id)).await {
            drop(subscription);
            if let Some(closing) = closing {
                Box::pin(connection.close(closing)).await;
            }
            return;
        }
        drop(turn);
        let open = Open {
            _tracked: connection.state.tasks.token(),
            connection,
            subscription,
            parker: Parker::new(resume),
            _permit: permit,
        };
        Box::pin(open.run()).await;
    }
    .instrument(span)
}

/// A debug span: at the default level it is never built, which keeps an idle connection small;
/// the few log lines above debug name the user themselves.
fn span(user: &User, session: SessionId) -> tracing::Span {
    tracing::debug_span!("chat", user = %user.name, session)
}

/// A connection once its hello is sent: what its task holds, and, while it waits with nothing
/// to do, what its parker keeps instead of a task (see `crate::park`).
struct Open {
    connection: Connection,
    subscription: Subscription,
    parker: Arc<Parker<Open>>,
    /// Counts the connection as open for a graceful shutdown while no task does. (The hub's
    /// shutdown kicks every connection, which wakes a parked one.)
    _tracked: TaskTrackerToken,
    _permit: OwnedSemaphorePermit,
}

/// Starts a task for a parked connection that was woken.
fn resume(open: Open, runtime: &tokio::runtime::Handle) {
    let state = open.connection.state.clone();
    let span = span(&open.connection.user, open.subscription.session().id);
    state
        .connections_open
        .spawn_on(&state.tasks, open.run().instrument(span), runtime);
}

impl Open {
    /// Serves the connection until it ends, or until it waits with nothing to do: then parks
    /// it, and the task ends.
    async fn run(mut self) {
        let closing = loop {
            let parker = Arc::clone(&self.parker);
            let outcome = parker
                .awake(self.connection.awake(&mut self.subscription))
                .await;
            match outcome {
                Ok(()) => match parker.park(self) {
                    None => return,
                    Some(woken) => self = woken,
                },
                Err(closing) => break closing,
            }
        };
        let Open {
            mut connection,
            subscription,
            _permit,
            ..
        } = self;
        drop(subscription);
        drop(_permit);
        if let Some(closing) = closing {
            Box::pin(connection.close(closing)).await;
        }
    }
}

struct Connection {
    socket: Socket,
    /// The socket's outlet, when the fan-out can write to it.
    outlet: Option<Arc<Outlet>>,
    /// The fan-out writes to the socket itself now: nothing comes through the queue.
    direct: bool,
    state: AppState,
    user: User,
    last_heard: Instant,
}

impl Connection {
    fn new(socket: Socket, state: AppState, user: User) -> Self {
        Connection {
            outlet: socket.outlet().cloned(),
            direct: false,
            socket,
            state,
            user,
            last_heard: Instant::now(),
        }
    }

    /// Registers the connection with the hub, for `session`.
    fn subscribe(&self, session: Session) -> Subscription {
        let wants = Wants {
            signals: true,
            presence: Presence::WhileOpen,
            per_session: None,
            // The heartbeat: the session read now and then (see `heartbeat`).
            status_every: Some(self.state.config.chat.heartbeat),
            transport: "websocket",
        };
        Subscription::open(
            &self.state,
            &self.user,
            session,
            wants,
            self.outlet.clone().map(|outlet| (outlet, Form::Chat)),
        )
    }

    /// Serves the connection until it ends — the close to send, or None when the peer is
    /// already gone — or until it waits with nothing in flight (Ok: it may be parked).
    async fn awake(&mut self, subscription: &mut Subscription) -> Result<(), Option<Closing>> {
        // The rare paths are boxed: the task then only holds the small state of its select
        // loop, not the largest future any of its branches could need.
        let mut pending = InFlight::default();
        // Set when the last wake-up wrote a whole batch: deliveries may be coming faster than
        // they are written, and the socket and the heartbeat get their turn first.
        let mut busy = false;
        let closing = loop {
            if !self.direct
                && let Err(closing) = Box::pin(self.go_direct(subscription)).await
            {
                break closing;
            }
            if std::mem::take(&mut busy) {
                if pending.len() < MAX_IN_FLIGHT
                    && let Some(incoming) =
                        futures_util::FutureExt::now_or_never(self.socket.next())
                {
                    let handled = self.on_incoming(incoming, &mut pending, subscription);
                    if let Err(closing) = Box::pin(handled).await {
                        break closing;
                    }
                }
                if subscription.status_due() {
                    let status = Box::pin(subscription.status()).await;
                    if let Err(closing) = Box::pin(self.heartbeat(status)).await {
                        break closing;
                    }
                }
            }
            tokio::select! {
                // In this order, the first ready one taken: a delivery (the common wake-up) is
                // then not preceded by looking at the socket and the timer for nothing; after a
                // whole batch they are looked at first (`busy`), so neither starves.
                biased;
                event = subscription.next() => match event {
                    Some(Event::Live(live)) => {
                        let written = self.write_queued(live, subscription);
                        match Box::pin(written).await {
                            Ok(whole_batch) => busy = whole_batch,
                            Err(closing) => break closing,
                        }
                    }
                    Some(event @ (Event::Status(_) | Event::Lock(_))) => {
                        if let Err(closing) = Box::pin(self.heartbeat(event)).await {
                            break closing;
                        }
                    }
                    Some(Event::Lagging) => break kick_close(Kick::Lagging),
                    Some(Event::Superseded) => break kick_close(Kick::Superseded),
                    None => {
                        // Shutting down: let in-flight sends commit and be acked before saying
                        // goodbye.
                        while let Some(reply) = pending.next().await {
                            if let Some(frame) = reply {
                                let _ = Box::pin(self.send(&frame)).await;
                            }
                        }
                        break Closing { code: close::GOING_AWAY, reason: "server shutting down" };
                    }
                },
                Some(reply) = pending.next(), if !pending.is_empty() => {
                    if let Some(frame) = reply
                        && Box::pin(self.send(&frame)).await.is_err()
                    {
                        return Err(None);
                    }
                }
                incoming = self.socket.next(), if pending.len() < MAX_IN_FLIGHT => {
                    let handled = self.on_incoming(incoming, &mut pending, subscription);
                    match Box::pin(handled).await {
                        Ok(()) => {}
                        Err(closing) => break closing,
                    }
                }
                // The fan-out left frames the socket could not take: written as it drains.
                () = backlog(self.outlet.as_deref()) => {
                    if let Err(closing) = Box::pin(self.flush()).await {
                        break closing;
                    }
                }
                // Nothing else was ready (each was looked at, in order), and nothing is in
                // flight: the connection waits.
                () = std::future::ready(()), if pending.is_empty() => return Ok(()),
            }
        };
        // Whatever the client sent but we did not finish still commits in the store (the write
        // is queued there); the client resends it after reconnecting and gets a duplicate ack.
        drop(pending);
        Err(Some(closing))
    }

    /// Sends `closing` (see [`close_with`]).
    async fn close(&mut self, closing: Closing) {
        tracing::debug!(code = closing.code, reason = closing.reason, "closing");
        let write_timeout = self.state.config.chat.write_timeout;
        close_with(&mut self.socket, closing, write_timeout).await;
    }

    /// Sends the hello; on failure, the close to send (None: the peer is gone).
    async fn greet(&mut self, session: SessionId) -> Result<(), Option<Closing>> {
        let hello = match hello(&self.state, &self.user, session).await {
            Ok(hello) => hello,
            Err(err) => {
                tracing::error!(%err, user = %self.user.name, "could not build hello");
                return Err(Some(internal()));
            }
        };
        self.send(&ServerFrame::Hello(hello))
            .await
            .map_err(|_| None)
    }

    /// Sends one frame now.
    async fn send(&mut self, frame: &ServerFrame) -> Result<(), Closing> {
        self.write(&ChatFrame::new(frame)).await?;
        self.flush().await
    }

    /// Writes one chat frame (see [`Connection::write_bytes`]).
    async fn write(&mut self, frame: &ChatFrame) -> Result<(), Closing> {
        self.write_bytes(&frame.wire).await
    }

    /// Writes chat frames in order, in one write.
    async fn write_all(&mut self, frames: &[&ChatFrame]) -> Result<(), Closing> {
        let mut bytes = Vec::with_capacity(frames.iter().map(|f| f.wire.len()).sum());
        for frame in frames {
            bytes.extend_from_slice(&frame.wire);
        }
        self.write_bytes(&bytes).await
    }

    /// Writes whole frames: on TCP through the outlet, which never waits (the rest goes at the
    /// next flush); over TLS, within the write timeout.
    async fn write_bytes(&mut self, frames: &[u8]) -> Result<(), Closing> {
        let write_timeout = self.state.config.chat.write_timeout;
        bounded(write_timeout, self.socket.write(frames)).await
    }

    async fn flush(&mut self) -> Result<(), Closing> {
        let write_timeout = self.state.config.chat.write_timeout;
        bounded(write_timeout, self.socket.flush()).await
    }

    /// Writes what is queued, then lets the fan-out write to the socket itself, if it can (see
    /// `crate::outlet`).
    async fn go_direct(&mut self, subscription: &mut Subscription) -> Result<(), Closing> {
        let Some(outlet) = self.outlet.clone() else {
            return Ok(());
        };
        loop {
            let queued: Vec<Arc<Live>> = std::iter::from_fn(|| subscription.try_next()).collect();
            if !queued.is_empty() {
                let frames: Vec<&ChatFrame> = queued.iter().map(|live| live.chat()).collect();
                self.write_all(&frames).await?;
                self.flush().await?;
            }
            match outlet.release(subscription.high_water(), || subscription.queue_is_empty()) {
                Release::Direct => {
                    self.direct = true;
                    return Ok(());
                }
                Release::Queued => {}
                // Kicked: the subscription says why.
                Release::Stopped => return Ok(()),
            }
        }
    }

    /// Writes `first` and whatever else is already queued, up to a batch, then flushes once;
    /// answers whether it wrote a whole batch.
    async fn write_queued(
        &mut self,
        first: Arc<Live>,
        subscription: &mut Subscription,
    ) -> Result<bool, Closing> {
        let mut batch = vec![first];
        while batch.len() < WRITE_BATCH
            && let Some(live) = subscription.try_next()
        {
            batch.push(live);
        }
        let frames: Vec<&ChatFrame> = batch.iter().map(|live| live.chat()).collect();
        self.write_all(&frames).await?;
        self.flush().await?;
        Ok(batch.len() == WRITE_BATCH)
    }

    /// The session's status, read by the subscription every heartbeat (or at the session's
    /// deadline): the subscription watches the session (its deadline, the hub's push on a
    /// revocation), and a look at the store now and then also catches what neither could see.
    /// The chat shows no status: it ends with the session, or with a peer that stopped
    /// answering pings, and otherwise pings.
    async fn heartbeat(&mut self, status: Event) -> Result<(), Closing> {
        if let Event::Lock(reason) = status {
            return Err(kick_close(Kick::Locked(reason)));
        }
        let heartbeat = self.state.config.chat.heartbeat;
        if self.last_heard.elapsed() > heartbeat * 2 {
            return Err(Closing {
                code: close::HEARTBEAT_TIMEOUT,
                reason: "no pong within two heartbeats",
            });
        }
        self.write_bytes(&ws::PING).await?;
        self.flush().await
    }

    async fn on_incoming(
        &mut self,
        incoming: Option<Result<Incoming, Refused>>,
        pending: &mut InFlight,
        subscription: &mut Subscription,
    ) -> Result<(), Closing> {
        let incoming = match incoming {
            None => return Err(gone()),
            Some(Ok(incoming)) => incoming,
            Some(Err(refused)) => return Err(refusal(refused)),
        };
        self.last_heard = Instant::now();
        match incoming {
            Incoming::Text(text) => self.on_frame(text, pending, subscription).await,
            Incoming::Binary(_) => Err(Closing {
                code: close::UNSUPPORTED_DATA,
                reason: "binary frames are not part of tidings.v1; send JSON text",
            }),
            Incoming::Ping(payload) => {
                self.write_bytes(&ws::pong(&payload)).await?;
                self.flush().await
            }
            Incoming::Pong => Ok(()),
            Incoming::Close(code) => Err(answer(code)),
        }
    }

    async fn on_frame(
        &mut self,
        text: String,
        pending: &mut InFlight,
        subscription: &mut Subscription,
    ) -> Result<(), Closing> {
        let frame = match decode_client_frame(&text) {
            Ok(frame) => frame,
            Err(err) => return self.send(&ServerFrame::Error(err.into())).await,
        };
        auth::touch(&self.state, subscription.session_mut());
        match request::start(&self.state, &self.user, frame).await {
            Ok(reply) => pending.push(reply),
            Err(since) => return self.sync(since, subscription).await,
        }
        Ok(())
    }

    /// Answers `sync` in line, so its messages and the live queue keep their order: a page of
    /// the subscription's replay, then `synced`.
    async fn sync(&mut self, since: i64, subscription: &mut Subscription) -> Result<(), Closing> {
        // The fan-out queues from now until the answer is written (see `go_direct`).
        if let Some(outlet) = &self.outlet {
            subscription.skip_to(outlet.hold());
            self.direct = false;
        }
        let replay = match subscription.replay(since.max(0), SYNC_PAGE).await {
            Ok(replay) => replay,
            Err(err) => return self.send(&error_frame(err, "sync", None)).await,
        };
        let synced = ChatFrame::new(&ServerFrame::Synced {
            latest_id: replay.synced_to(),
            has_more: replay.has_more,
        });
        let mut frames: Vec<&ChatFrame> = replay.messages.iter().map(|live| live.chat()).collect();
        frames.push(&synced);
        self.write_all(&frames).await?;
        self.flush().await
    }
}

/// The first frame: who the user is and where each of their rooms stands.
pub(crate) async fn hello(
    state: &AppState,
    user: &User,
    session: SessionId,
) -> Result<Hello, ApiError> {
    let rooms = state.store.rooms_of(user.id).await?;
    let latest_id = state.store.latest_message_id().await?;
    Ok(Hello {
        user: wire::user_ref(user),
        session,
        rooms: rooms.into_iter().map(wire::room_state).collect(),
        online: state.hub.online(user.id),
        latest_id,
        heartbeat_ms: auth::millis(state.config.chat.heartbeat) as u64,
        max_body_bytes: state.config.limits.max_body_bytes,
    })
}

fn kick_close(kick: Kick) -> Closing {
    match kick {
        Kick::Lagging => Closing {
            code: close::LAGGING,
            reason: "too far behind; reconnect and sync",
        },
        Kick::Locked(LockReason::Revoked) => Closing {
            code: close::SESSION_REVOKED,
            reason: "session revoked",
        },
        Kick::Locked(LockReason::Expired) => Closing {
            code: close::SESSION_EXPIRED,
            reason: "session expired",
        },
        Kick::Superseded => Closing {
            code: close::GOING_AWAY,
            reason: "replaced by a newer connection",
        },
        Kick::ShuttingDown => Closing {
            code: close::GOING_AWAY,
            reason: "server shutting down",
        },
    }
}

fn gone() -> Closing {
    Closing {
        code: close::NORMAL,
        reason: "",
    }
}

fn internal() -> Closing {
    Closing {
        code: close::INTERNAL_ERROR,
        reason: "internal error",
    }
}

/// The close that answers the client's: its code echoed (RFC 6455 §5.5.1), or a normal close.
fn answer(code: Option<u16>) -> Closing {
    Closing {
        code: code.unwrap_or(close::NORMAL),
        reason: "",
    }
}

/// Maps what the client's frames broke to its close code: a frame over the limit is 1009,
/// invalid UTF-8 in a text frame is 1007, anything else against the protocol is 1002.
fn refusal(refused: Refused) -> Closing {
    match refused {
        Refused::TooBig => Closing {
            code: close::TOO_BIG,
            reason: "frame too large",
        },
        Refused::NotUtf8 => Closing {
            code: close::INVALID_PAYLOAD,
            reason: "text frame is not valid UTF-8",
        },
        Refused::Protocol(reason) => Closing {
            code: close::PROTOCOL_ERROR,
            reason,
        },
    }
}

/// Sends a close frame and, unless it answers the client's, waits briefly for the client's, as
/// RFC 6455 asks. Both waits are bounded: a peer that does not read (its socket full, the close
/// frame stuck behind what it did not take) is dropped when the write times out, with its task
/// and its buffers.
async fn close_with(socket: &mut Socket, closing: Closing, write_timeout: Duration) {
    let frame = ws::close_frame(closing.code, closing.reason);
    if bounded(write_timeout, socket.send(&frame)).await.is_err() {
        tracing::debug!("the close frame could not be written in time; dropping");
        return;
    }
    if socket.closed_by_peer() {
        return;
    }
    let _ = timeout(CLOSE_WAIT, async {
        while let Some(Ok(incoming)) = socket.next().await {
            if matches!(incoming, Incoming::Close(_)) {
                break;
            }
        }
    })
    .await;
}
