//! Version 1 of the wire protocol.

pub mod admin;
pub mod api;
pub mod chat;
pub mod close;
pub mod error;
pub mod feed;
mod model;
pub mod search;
pub mod transport;

pub use admin::*;
pub use api::*;
pub use chat::*;
pub use error::{ErrorBody, ErrorCode};
pub use feed::*;
pub use model::*;
pub use search::{Fragment, SearchHit, SearchResults};
pub use transport::*;

/// The WebSocket subprotocol for this version, offered in `Sec-WebSocket-Protocol`.
pub const SUBPROTOCOL: &str = "tidings.v1";
