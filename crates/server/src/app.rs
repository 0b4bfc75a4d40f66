//! The shared state every request sees, and the routes.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::routing::{get, post};
use bytes::Bytes;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tidings_proto::v1::{self as v1, LockReason, ServerFrame};
use tidings_store::{LogEntry, SessionId, Store, UserId};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Clock;
use crate::attachment::{self, Attachments};
use crate::auth::SessionCache;
use crate::config::Config;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::{account, admin, chat, comet, feed, message, openapi, room, search, web};

/// How often a server on SQLite looks for sessions another process revoked.
const OUTSIDE_EVERY: Duration = Duration::from_secs(2);
/// How far before the newest revocation seen each look starts, in ms: a revocation carries its
/// process's time, and commits a moment after it.
const OUTSIDE_OVERLAP: i64 = 60_000;

/// Tasks that can be aborted all at once. A task knows nothing of it, so nothing is polled for
/// it while the task runs: dropping a connection's task at a shutdown's deadline costs its
/// deliveries nothing until then.
#[derive(Default)]
pub struct Aborts {
    next: AtomicU64,
    handles: Arc<Mutex<Handles>>,
}

/// The running tasks' abort handles by id; `None` marks a task that ended before its handle was
/// put in (see [`Aborts::spawn_on`]).
type Handles = HashMap<u64, Option<AbortHandle>>;

pin_project_lite::pin_project! {
    /// A task that takes itself out of [`Aborts`] when it ends. A struct, not an `async` block
    /// awaiting the task: such a block holds the task's future twice (as captured, and as
    /// awaited), and a connection's future is most of what an idle connection costs.
    struct Forgotten<F> {
        #[pin]
        task: F,
        _forget: Forget,
    }
}

impl<F: Future<Output = ()>> Future for Forgotten<F> {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        self.project().task.poll(cx)
    }
}

/// Takes a task out of [`Aborts`] when it ends.
struct Forget {
    id: u64,
    handles: Arc<Mutex<Handles>>,
}

impl Drop for Forget {
    fn drop(&mut self) {
        let mut handles = locked(&self.handles);
        if handles.remove(&self.id).is_none() {
            handles.insert(self.id, None);
        }
    }
}

fn locked(handles: &Mutex<Handles>) -> std::sync::MutexGuard<'_, Handles> {
    handles
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Aborts {
    /// Spawns `task` on `tasks`, to be aborted by [`Aborts::abort_all`] unless it ends first.
    pub fn spawn<F>(&self, tasks: &TaskTracker, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn_on(tasks, task, &tokio::runtime::Handle::current());
    }

    /// As [`Aborts::spawn`], on the runtime of `handle`: from any thread.
    pub fn spawn_on<F>(&self, tasks: &TaskTracker, task: F, handle: &tokio::runtime::Handle)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let forget = Forget {
            id,
            handles: Arc::clone(&self.handles),
        };
        // Not locked while spawning: a runtime shutting down drops the task in `spawn`, and its
        // `Forget` takes the lock. A task that ended first has left a mark instead of its handle.
        let spawned = tasks.spawn_on(
            Forgotten {
                task,
                _forget: forget,
            },
            handle,
        );
        let mut handles = locked(&self.handles);
        if handles.remove(&id).is_none() {
            handles.insert(id, Some(spawned.abort_handle()));
        }
    }

    /// Aborts every task spawned here that is still running.
    pub fn abort_all(&self) {
        let handles: Vec<AbortHandle> = locked(&self.handles)
            .drain()
            .filter_map(|(_, h)| h)
            .collect();
        for handle in handles {
            handle.abort();
        }
    }
}

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub config: Config,
    /// Wall time, for everything the server stamps or derives a deadline from.
    pub clock: Clock,
    pub store: Store,
    pub hub: Arc<Hub>,
    /// Where attachments' bytes are kept.
    pub attachments: Attachments,
    /// Per-user send rate.
    pub sends: DefaultKeyedRateLimiter<UserId>,
    /// One permit per search running ([`crate::search::SEARCHES_AT_ONCE`]).
    pub searches: Semaphore,
    /// One permit per live chat or feed connection.
    pub connections: Arc<Semaphore>,
    /// One permit per chat or feed connection being set up ([`Turn`]).
    pub connecting: Arc<Semaphore>,
    /// Sessions read moments ago, for passive requests.
    pub sessions: SessionCache,
    /// Cancelled when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// The connections' tasks, aborted together when a graceful shutdown's deadline
    /// (`drain_timeout`) has passed: every connection still open is dropped at once.
    pub connections_open: Aborts,
    /// Work that must finish before the server exits (in-flight sends, session touches).
    pub tasks: TaskTracker,
    /// What `/metrics` reports.
    pub metrics: crate::metrics::Metrics,
    /// When this server started, by its clock.
    pub started_at: i64,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(
        config: Config,
        store: Store,
        hub: Arc<Hub>,
        attachments: Attachments,
        shutdown: CancellationToken,
    ) -> Self {
        let rate = NonZeroU32::new(config.limits.messages_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.limits.message_burst).unwrap_or(rate);
        let connections = Arc::new(Semaphore::new(config.limits.max_connections));
        let clock = if config.testing.paused_clock {
            Clock::runtime()
        } else {
            Clock::System
        };
        AppState(Arc::new(Shared {
            started_at: clock.now_ms(),
            sends: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            connections,
            searches: Semaphore::new(crate::search::SEARCHES_AT_ONCE),
            connecting: Arc::new(Semaphore::new(config.limits.max_connecting.max(1))),
            sessions: SessionCache::default(),
            clock,
            config,
            store,
            hub,
            attachments,
            shutdown,
            connections_open: Aborts::default(),
            tasks: TaskTracker::new(),
            metrics: crate::metrics::Metrics::default(),
        }))
    }

    /// Applies one entry of the store's log to this node (see `Store::follow`): a message goes to
    /// its room's connections, a join or leave changes who hears a room, a revoked session's
    /// connections are locked, a read marker reaches the user's other devices.
    pub fn apply(&self, entry: LogEntry<'_>) {
        match entry {
            LogEntry::Message(message) => {
                self.metrics.messages_stored.inc();
                let started = std::time::Instant::now();
                self.hub
                    .publish_message(crate::wire::message(message.clone()));
                self.metrics
                    .fanout_seconds
                    .observe(started.elapsed().as_secs_f64());
            }
            LogEntry::Changed { id, message } => self
                .hub
                .publish_changed(id, crate::wire::message(message.clone())),
            LogEntry::Joined { room, user } => {
                self.hub.joined(room, user);
                self.hub.introduce(room, user);
            }
            LogEntry::Left { room, user } => self.hub.left(room, user),
            LogEntry::SessionEnded { user, session } => {
                self.lock_session(user, session, LockReason::Revoked);
            }
            LogEntry::ReadMarker {
                room,
                user,
                message_id,
            } => self.hub.to_user(
                user,
                &ServerFrame::Read {
                    room,
                    user,
                    message_id,
                },
            ),
        }
    }

    /// Hears of the sessions another process revoked (the host's `tidings-server user disable`
    /// while this server serves its SQLite file), which the store's log, followed in this
    /// process only, does not bring: looks every [`OUTSIDE_EVERY`] for revocations newer than
    /// the last seen, and applies each as the log would. Applying one this server made itself
    /// again is harmless.
    pub async fn follow_outside_revocations(self, cancel: CancellationToken) {
        let mut newest = self.now_ms();
        let mut applied: std::collections::HashMap<SessionId, i64> = Default::default();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(OUTSIDE_EVERY) => {}
            }
            match self
                .store
                .sessions_revoked_since(newest - OUTSIDE_OVERLAP)
                .await
            {
                Ok(revoked) => {
                    for (user, session, at) in revoked {
                        if applied.insert(session, at).is_none() {
                            self.apply(LogEntry::SessionEnded { user, session });
                        }
                        newest = newest.max(at);
                    }
                }
                Err(err) => tracing::warn!(%err, "could not look for revoked sessions"),
            }
            applied.retain(|_, at| *at >= newest - OUTSIDE_OVERLAP);
        }
    }

    /// Ends a session's live connections (each is sent its lock) once the store says it ended,
    /// and forgets it from the session cache.
    fn lock_session(&self, user: UserId, session: SessionId, reason: LockReason) {
        self.sessions.forget(session);
        self.hub.lock_session(user, session, reason);
    }

    /// Milliseconds since the Unix epoch, from the server's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A place among the server's live connections (a feed, a stream, a held poll), or the 503
    /// that says they are all taken, with when to try again.
    pub fn connection_permit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.connections.clone().try_acquire_owned().map_err(|_| {
            ApiError::overloaded("server at its connection limit", self.config.feed.retry)
        })
    }
}

/// The routes. The request/response API is built from the handlers' OpenAPI annotations, so
/// the document served at `/api/openapi.json` describes exactly what is routed.
/// A turn to set up a chat or feed connection, `limits.max_connecting` at a time: taken before
/// the request is authenticated, given back (dropped) once the connection has sent its opening —
/// the chat's hello, the feed's status and replay. Waiting for it is bounded by
/// `limits.head_timeout`; past that the answer is 503 and the client backs off.
pub struct Turn(#[allow(dead_code)] OwnedSemaphorePermit);

impl FromRequestParts<AppState> for Turn {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Turn, ApiError> {
        let limits = &state.config.limits;
        match tokio::time::timeout(
            limits.head_timeout,
            state.connecting.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => Ok(Turn(permit)),
            _ => Err(ApiError::overloaded(
                "too many connections being set up; try again shortly",
                Duration::from_secs(1),
            )),
        }
    }
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.config.limits.max_frame_bytes;
    let body_timeout = state.config.limits.body_timeout;
    let (api, mut doc) = api()
        .layer(DefaultBodyLimit::max(body_limit))
        // A body that trickles in is cut off: the connection and its task are not held for it.
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        // Uploads read their own, larger, body, and have longer to send it.
        .merge(
            OpenApiRouter::new()
                .routes(routes!(attachment::upload))
                .layer(RequestBodyTimeoutLayer::new(
                    state.config.attachments.upload_timeout,
                )),
        )
        .split_for_parts();
    openapi::finish(&mut doc);
    let doc = Bytes::from(doc.to_json().unwrap_or_default());
    api.route(
        "/api/openapi.json",
        get(|| async move { ([(header::CONTENT_TYPE, "application/json")], doc) }),
    )
    // The long-lived connections take no body, and keep nothing of the layers above.
    .route(
        "/api/ws",
        if state.config.transports.websocket {
            get(chat::upgrade)
        } else {
            get(chat::switched_off)
        },
    )
    .route("/api/events", get(feed::events))
    // The chat channel over plain HTTP, for networks the WebSocket does not get through.
    .route(v1::TRANSPORTS_PATH, get(comet::transports))
    .route(v1::POLL_PATH, get(comet::poll))
    .route(v1::STREAM_PATH, get(comet::stream))
    .route(v1::IFRAME_PATH, get(comet::iframe))
    .merge(
        Router::new()
            .route(v1::FRAMES_PATH, post(comet::frames))
            .layer(DefaultBodyLimit::max(body_limit))
            .layer(RequestBodyTimeoutLayer::new(body_timeout)),
    )
    .merge(testing_routes(&state.config))
    // The web app; not API, so not in the document. Every path not routed ends there too.
    .merge(web::routes())
    .fallback(web::fallback)
    .layer(tower::util::option_layer(
        // Over TLS, browsers are told to come back only over TLS.
        state.config.tls_cert.is_some().then(|| {
            SetResponseHeaderLayer::overriding(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(crate::tls::HSTS),
            )
        }),
    ))
    .with_state(state)
}

/// The request/response API, each route from its annotated handler.
pub(crate) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(account::register))
        .routes(routes!(account::login))
        .routes(routes!(account::logout))
        .routes(routes!(account::me))
        .routes(routes!(account::users))
        .routes(routes!(account::sessions, account::revoke_others))
        .routes(routes!(account::revoke))
        .routes(routes!(account::invite))
        .routes(routes!(admin::overview))
        .routes(routes!(admin::manage_member))
        .routes(routes!(admin::create))
        .routes(routes!(admin::revoke))
        .routes(routes!(room::mine, room::create))
        .routes(routes!(room::directory))
        .routes(routes!(room::join))
        .routes(routes!(room::leave))
        .routes(routes!(room::members))
        .routes(routes!(room::typing))
        .routes(routes!(message::history, message::send))
        .routes(routes!(message::read))
        .routes(routes!(message::edit, message::delete))
        .routes(routes!(message::react, message::unreact))
        .routes(routes!(room::open_dm))
        .routes(routes!(search::search))
        .routes(routes!(attachment::download))
        .routes(routes!(attachment::thumbnail))
}

/// Whether the server is up (for load balancers and supervisors).
#[utoipa::path(
    get, path = "/healthz", tag = "accounts", security(()),
    responses((status = OK, description = "Serving", body = String, content_type = "text/plain")),
)]
pub(crate) async fn health() -> &'static str {
    "ok"
}

/// How long `/readyz` waits for the store's answer before saying it is not ready.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether the server can take writes now: its store answers a write (on PostgreSQL, from a
/// primary) within [`READY_WITHIN`]. 503 says why not.
#[utoipa::path(
    get, path = "/readyz", tag = "accounts", security(()),
    responses(
        (status = OK, description = "Ready", body = String, content_type = "text/plain"),
        (status = SERVICE_UNAVAILABLE, description = "The store takes no writes", body = String, content_type = "text/plain"),
    ),
)]
pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, String) {
    match tokio::time::timeout(READY_WITHIN, state.store.check_writable()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready".to_owned()),
        Ok(Err(err)) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {err}")),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the store took no write within {READY_WITHIN:?}"),
        ),
    }
}

/// Routes that exist only for tests of the server itself, each behind its own setting.
fn testing_routes(config: &Config) -> Router<AppState> {
    let routes = Router::new();
    if config.testing.websocket_echo {
        return routes.route("/api/test/echo", get(chat::echo));
    }
    routes
}
