//! The Tidings server: the HTTP API, the WebSocket chat channel, the SSE feeds and the fan-out
//! between them, over the SQLite store.
//!
//! [`run`] serves on a listener until a shutdown future resolves; the headless `tidings-server`
//! binary and the desktop app's local server mode both call it. Module map:
//!
//! - [`config`]: the typed configuration (file, environment, flags); [`Clock`]: wall time.
//! - `app`: shared state and routes; `auth`: tokens, passwords, the request extractor;
//!   `account`, `room`, `message`: the HTTP handlers and the one send path; `admin`: the
//!   owners' administration (also the `tidings-server` subcommands');
//!   `delivery`: the one delivery path every transport takes (a subscription: replay from a
//!   cursor merged with the hub's live events, the session watched);
//!   `chat`: the WebSocket channel (`ws`: its handshake and gated stream); `feed`: the SSE feed; `direct`: the listener, which serves
//!   feed connections without hyper; `hub`: live connections and fan-out;
//!   `openapi`: the API's OpenAPI document; `sse`: event encoding; `wire`: store rows to wire types; `error`: HTTP errors;
//!   `web`: the web app (`ui/dist`, embedded in the binary) at `/`.

pub mod account;
pub mod admin;
mod app;
mod attachment;
mod auth;
pub mod backup;
mod batch;
mod chat;
mod clock;
mod comet;
pub mod config;
mod delivery;
mod direct;
mod error;
mod feed;
mod hub;
mod message;
mod metrics;
mod openapi;
mod outlet;
mod park;
mod presence;
mod request;
mod room;
mod search;
mod sse;
pub mod tls;
mod web;
mod wire;
mod ws;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

pub use clock::Clock;
pub use config::Config;
pub use error::ApiError;
use tidings_store::{Store, StoreError, StoreOptions};

/// The parsers that read what a peer sends, as the server calls them, for the fuzz targets in
/// `fuzz/`. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::direct::parse_head;
    pub use crate::ws::{FrameReader, Incoming, Refused};
}

/// The accept queue's depth: where new connections wait while `limits.max_pending_requests` are
/// being read (the kernel caps it at `net.core.somaxconn`, commonly this).
const ACCEPT_QUEUE: u32 = 4096;
/// Files the server needs open besides its connections: the database and its WAL, the pooled
/// read connections, the listener, logs.
const FILES_BESIDES_CONNECTIONS: u64 = 64;

/// Binds the server's listener on `addr`: with `SO_REUSEADDR`, so a restarted server gets its
/// port back at once, and a deep accept queue, so a burst of connections (everyone reconnecting
/// after a restart) waits there instead of being refused. Must be called inside a tokio runtime.
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_QUEUE)
}

/// Raises the process's soft limit on open files to its hard limit: the usual soft limit (1,024)
/// would stop the server at about a thousand connections, far below `limits.max_connections`.
/// Warns when even the hard limit is below what the limits configured can open.
fn open_files_for(limits: &config::LimitsConfig) {
    let wanted =
        (limits.max_connections + limits.max_pending_requests) as u64 + FILES_BESIDES_CONNECTIONS;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(files) if files < wanted => tracing::warn!(
            files,
            wanted,
            "the open files limit is below limits.max_connections + limits.max_pending_requests; \
             connections past it will be refused"
        ),
        Ok(files) => tracing::debug!(files, "open files limit"),
        Err(err) => tracing::warn!(%err, "could not raise the open files limit"),
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data dir could not be created or the listener failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The database could not be opened (or is from a newer Tidings).
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The configuration names something the server cannot use.
    #[error("configuration: {0}")]
    Config(String),
    /// A backup or restore could not be made.
    #[error("backup: {0}")]
    Backup(String),
}

/// Opens the database: the PostgreSQL one `store` names, or else (creating it if needed) the data
/// dir's SQLite file.
pub async fn open_store(config: &Config) -> Result<Store, ServerError> {
    let options = StoreOptions {
        paused_clock: config.testing.paused_clock,
        ..StoreOptions::default()
    };
    match &config.store {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Store::connect(url, options).await?)
        }
        Some(other) => Err(ServerError::Config(format!(
            "store = {other:?}: expected a postgres:// URL (or no store, for the data dir's \
             SQLite file)"
        ))),
        None => {
            std::fs::create_dir_all(&config.data_dir)?;
            Ok(Store::open(&config.database_path(), options)?)
        }
    }
}

/// Serves Tidings on `listener` until `shutdown` resolves, then shuts down gracefully: stops
/// accepting, lets in-flight sends commit and be acknowledged, closes chat connections with 1001
/// and ends feeds — for at most `drain_timeout`, after which the connections left are dropped —
/// and waits for the store's writer to commit what it holds.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    open_files_for(&config.limits);
    let tls = tls::Tls::from_config(&config)?.map(Arc::new);
    let store = open_store(&config).await?;
    // The log's head first, then who is in which room: a join committed in between is in the
    // memberships and also followed (applying it twice is harmless), none is in neither.
    let latest = store.latest_message_id().await?;
    let memberships = store.memberships().await?;
    let hub = Arc::new(hub::Hub::new(
        memberships,
        latest,
        config.limits.send_queue,
        config.transports.presence_grace,
    ));
    let token = CancellationToken::new();
    let attachments =
        attachment::Attachments::open(config.attachments.object_store.as_deref(), &config.data_dir)
            .map_err(|err| ServerError::Config(format!("attachments.object_store: {err}")))?;
    let state = app::AppState::new(config, store.clone(), hub, attachments, token.clone());
    // This node's fan-out follows the store's log — on PostgreSQL, every node's.
    let follower = state.clone();
    store.follow(latest, move |entry| follower.apply(entry))?;
    store.observe_commits(state.metrics.commit_observer())?;
    // Presence and typing, which are not in the log, reach the other nodes through Redis.
    if let Some(url) = &state.config.redis {
        presence::start(url, Arc::clone(&state.hub), token.clone())
            .map_err(|err| ServerError::Config(format!("redis = {url:?}: {err}")))?;
    }
    tokio::spawn(attachment::sweep(state.clone(), token.clone()));
    // On PostgreSQL every process's revocations are in the log every node follows.
    if state.store.backend_name() == "sqlite" {
        tokio::spawn(state.clone().follow_outside_revocations(token.clone()));
    }
    tokio::spawn(backup::schedule(state.clone(), token.clone()));
    if let Some(addr) = state.config.metrics.listen {
        let listener = TcpListener::bind(addr).await?;
        tracing::info!(addr = %listener.local_addr()?, "serving metrics");
        let routes = metrics::router(state.clone());
        let stop = token.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, routes)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(err) = served {
                tracing::warn!(%err, "the metrics listener failed");
            }
        });
    }
    let router = app::router(state.clone());
    match &tls {
        Some(tls) => {
            let watching = tls::watch(Arc::clone(tls), token.clone());
            tracing::info!(
                addr = %listener.local_addr()?,
                fingerprint = %tls.fingerprint(),
                "serving over TLS"
            );
            tokio::spawn(watching);
        }
        None => tracing::info!(addr = %listener.local_addr()?, "serving"),
    }
    web::warn_if_missing();

    let signal = token.clone();
    let hub = Arc::clone(&state.hub);
    tokio::spawn(async move {
        shutdown.await;
        signal.cancel();
        hub.shut_down();
    });
    // Until shutdown: every connection is accepted and served by `direct`.
    direct::serve(listener, router, state.clone(), tls).await;
    // Connections finish what they are doing — in-flight sends commit and are acked, chat
    // connections exchange their close, hyper connections finish the request in hand — within
    // the drain deadline; whatever is still open then (a client that stopped reading, say) is
    // dropped. Background writes are tracked too.
    state.tasks.close();
    let drain = state.config.drain_timeout;
    if timeout(drain, state.tasks.wait()).await.is_err() {
        tracing::warn!(
            left = state.tasks.len(),
            ?drain,
            "graceful shutdown deadline passed; closing what is left"
        );
        state.connections_open.abort_all();
        state.tasks.wait().await;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}
