//! The Tidings client core: everything a client knows about talking to a Tidings server, with no
//! UI in it. The desktop app and the `tidings` CLI are thin shells over [`Client`].
//!
//! - [`Client`] (`client.rs`): one account on one server — login, rooms, history, send, read
//!   markers, typing, lock/unlock, sessions — and one stream of [`ClientEvent`]s for a UI.
//! - `chat.rs`: the WebSocket chat channel's supervisor: reconnect with jittered backoff, sync
//!   from the last message id after each reconnect, send the outbox.
//! - `feed.rs`: the SSE feed's supervisor: session status, lock, new-message alerts (resumed with
//!   `Last-Event-ID`) into the notification policy.
//! - [`store`]: the local SQLite cache: rooms, messages, read markers, drafts, the outbox, the
//!   account, notification settings.
//! - [`notify`]: the notification policy and the [`notify::Notifier`] seam (OS notifications
//!   through notify-rust).
//! - [`api`]: the server's HTTP API, typed; [`backoff`]: reconnect delays.
//! - `tls.rs`: which `https://` servers are believed: the system's roots, or a pinned
//!   certificate's fingerprint.
//!
//! Invariant: no UI types and no Tauri here. A shell renders [`ClientEvent`]s and calls
//! [`Client`] methods.

pub mod api;
pub mod backoff;
mod chat;
mod client;
mod error;
mod event;
mod feed;
pub mod notify;
pub mod store;
mod tls;
mod transport;

pub use client::{Client, ClientOptions};
pub use error::ClientError;
pub use event::{ClientEvent, ConnectionState, LockCause};
pub use feed::room_label;
pub use tls::http_builder;
