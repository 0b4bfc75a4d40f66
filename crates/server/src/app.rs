//! The shared state every request sees, and the routes.

use std::num::NonZeroU32;
use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tidings_store::{Store, StoreError, UserId};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::config::Config;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::{account, chat, feed, message, room};

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub config: Config,
    pub store: Store,
    pub hub: Arc<Hub>,
    /// Per-user send rate.
    pub sends: DefaultKeyedRateLimiter<UserId>,
    /// One permit per live chat or feed connection.
    pub connections: Arc<Semaphore>,
    /// Cancelled when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// Cancelled when a graceful shutdown's deadline (`drain_timeout`) has passed: every
    /// connection still open is dropped at once.
    pub drain_over: CancellationToken,
    /// Work that must finish before the server exits (in-flight sends, session touches).
    pub tasks: TaskTracker,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(config: Config, store: Store, hub: Arc<Hub>, shutdown: CancellationToken) -> Self {
        let rate = NonZeroU32::new(config.limits.messages_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.limits.message_burst).unwrap_or(rate);
        let connections = Arc::new(Semaphore::new(config.limits.max_connections));
        AppState(Arc::new(Shared {
            sends: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            connections,
            config,
            store,
            hub,
            shutdown,
            drain_over: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }))
    }

    /// Runs a store read on the blocking pool: SQLite calls block, and must not stall the
    /// runtime's few worker threads.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || f(&store)).await??)
    }
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.config.limits.max_frame_bytes;
    let body_timeout = state.config.limits.body_timeout;
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/register", post(account::register))
        .route("/api/login", post(account::login))
        .route("/api/logout", post(account::logout))
        .route("/api/me", get(account::me))
        .route("/api/users", get(account::users))
        .route(
            "/api/sessions",
            get(account::sessions).delete(account::revoke_others),
        )
        .route("/api/sessions/{id}", delete(account::revoke))
        .route("/api/invites", post(account::invite))
        .route("/api/rooms", get(room::mine).post(room::create))
        .route("/api/rooms/directory", get(room::directory))
        .route("/api/rooms/{id}/join", post(room::join))
        .route("/api/rooms/{id}/leave", post(room::leave))
        .route("/api/rooms/{id}/members", get(room::members))
        .route(
            "/api/rooms/{id}/messages",
            get(message::history).post(message::send),
        )
        .route("/api/rooms/{id}/read", post(message::read))
        .route("/api/dms", post(room::open_dm))
        .layer(DefaultBodyLimit::max(body_limit))
        // A body that trickles in is cut off: the connection and its task are not held for it.
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        // The long-lived connections take no body, and keep nothing of these layers.
        .route("/api/ws", get(chat::upgrade))
        .route("/api/events", get(feed::events))
        .merge(testing_routes(&state.config))
        .with_state(state)
}

/// Routes that exist only for tests of the server itself, each behind its own setting.
fn testing_routes(config: &Config) -> Router<AppState> {
    let routes = Router::new();
    if config.testing.websocket_echo {
        return routes.route("/api/test/echo", get(chat::echo));
    }
    routes
}
