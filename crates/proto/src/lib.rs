//! The Tidings wire protocol: every JSON shape that crosses the network, defined once.
//!
//! The server, the client core and the tests all speak through these types; nothing else derives
//! `Serialize`/`Deserialize` for the wire. Storage rows and UI view-models convert to and from them
//! explicitly.
//!
//! The protocol is versioned by module. [`v1`] is the only version; it is negotiated on the
//! WebSocket as the subprotocol [`v1::SUBPROTOCOL`]. A breaking change adds `v2` beside it.
//!
//! - [`v1::chat`]: the WebSocket chat channel (`/api/ws`): [`v1::ClientFrame`] and
//!   [`v1::ServerFrame`], and the close codes in [`v1::close`].
//! - [`v1::feed`]: the Server-Sent Events feed (`/api/events`): session status, lock, new-message
//!   alerts, reset.
//! - [`v1::api`]: the bodies of the HTTP API.
//! - [`v1::error`]: error codes, shared by all three. Clients match codes, never messages.
//!
//! With the `typescript` feature, [`typescript::declarations`] writes every one of these types
//! as TypeScript (with ts-rs), for the web UI: `ui/src/generated/protocol.ts` is its output, and
//! a test fails when the two differ.

#[cfg(feature = "typescript")]
pub mod typescript;
pub mod v1;
