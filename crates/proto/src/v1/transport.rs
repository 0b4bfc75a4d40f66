//! The HTTP transports of the chat channel, for networks where the WebSocket does not get
//! through: long-polling, short polling, HTTP streaming (plain or as Server-Sent Events) and
//! iframe streaming. They carry the same [`ServerFrame`]s as the WebSocket, in [`Batch`]es that
//! each end with the cursor to resume from; client frames go up as `POST /api/frames`.

use serde::{Deserialize, Serialize};

use super::chat::ServerFrame;
use super::model::MessageId;

/// `GET /api/transports`: what this server offers.
pub const TRANSPORTS_PATH: &str = "/api/transports";
/// `GET /api/poll?cursor=…&timeout=…&hello=1`: long-polling, or short polling with `timeout=0`.
pub const POLL_PATH: &str = "/api/poll";
/// `GET /api/stream?cursor=…`: one long response of batches, one JSON object per line; with
/// `Accept: text/event-stream`, one `batch` event per batch, the cursor as its id.
pub const STREAM_PATH: &str = "/api/stream";
/// `GET /api/stream/iframe?cursor=…`: `text/html` for a hidden iframe, one
/// `<script>parent.tidings(…)</script>` per batch.
pub const IFRAME_PATH: &str = "/api/stream/iframe";
/// `POST /api/frames`: one client frame; the answer is the frames it produced (an `ack`, an
/// `error`, a `history`), possibly none.
pub const FRAMES_PATH: &str = "/api/frames";
/// The SSE event name of a batch on `/api/stream`.
pub const EVENT_BATCH: &str = "batch";
/// The function an iframe stream calls in its parent, always this one (never taken from the
/// request: there is no JSONP).
pub const IFRAME_CALLBACK: &str = "parent.tidings";
/// A request authenticated by the session cookie that changes anything must carry this header:
/// a cross-site form cannot set it.
pub const CSRF_HEADER: &str = "x-tidings-csrf";

/// Frames in id order, and where to resume after them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct Batch {
    /// Every message of the user's up to here has been sent (in this batch or before): the
    /// `cursor` of the next request.
    pub cursor: MessageId,
    pub frames: Vec<ServerFrame>,
}

/// The ways of carrying the chat channel, from the best to the last resort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    /// `/api/ws`.
    WebSocket,
    /// `/api/stream` as Server-Sent Events, sends over `POST /api/frames`.
    Sse,
    /// `/api/stream` as newline-delimited JSON.
    Streaming,
    /// `/api/stream/iframe` (browsers without streaming `fetch`).
    Iframe,
    /// `/api/poll`, held until something happens.
    LongPolling,
    /// `/api/poll?timeout=0`, repeated every `short_poll_interval_ms`.
    ShortPolling,
}

impl TransportKind {
    /// The ladder a native client climbs down: every kind but the iframe, best first.
    pub const LADDER: [TransportKind; 5] = [
        TransportKind::WebSocket,
        TransportKind::Sse,
        TransportKind::Streaming,
        TransportKind::LongPolling,
        TransportKind::ShortPolling,
    ];

    /// As people read it ("long-polling").
    pub fn label(self) -> &'static str {
        match self {
            TransportKind::WebSocket => "WebSocket",
            TransportKind::Sse => "SSE",
            TransportKind::Streaming => "streaming",
            TransportKind::Iframe => "iframe streaming",
            TransportKind::LongPolling => "long-polling",
            TransportKind::ShortPolling => "short polling",
        }
    }

    /// The `--transport` / setting name (`long-polling`).
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::WebSocket => "websocket",
            TransportKind::Sse => "sse",
            TransportKind::Streaming => "streaming",
            TransportKind::Iframe => "iframe",
            TransportKind::LongPolling => "long-polling",
            TransportKind::ShortPolling => "short-polling",
        }
    }

    /// The kind a name (as [`TransportKind::name`] spells it) stands for.
    pub fn from_name(name: &str) -> Option<TransportKind> {
        [TransportKind::Iframe]
            .into_iter()
            .chain(TransportKind::LADDER)
            .find(|kind| kind.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// The answer to `GET /api/transports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct Transports {
    /// What this server offers, best first.
    pub transports: Vec<TransportKind>,
    /// How long a poll is held when it asks for no `timeout`.
    pub poll_timeout_ms: u64,
    /// The longest `timeout` a poll may ask for.
    pub max_poll_timeout_ms: u64,
    /// How often a short-polling client should poll.
    pub short_poll_interval_ms: u64,
    /// A stream sends at least this often (an empty batch when nothing happens).
    pub heartbeat_ms: u64,
    /// An iframe stream ends after about this many bytes; the client reopens it from its cursor.
    pub stream_max_bytes: u64,
    /// A user whose last transport that polls or streams ended stays online this long.
    pub presence_grace_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_found_by_its_name() {
        for kind in TransportKind::LADDER
            .into_iter()
            .chain([TransportKind::Iframe])
        {
            assert_eq!(TransportKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(TransportKind::from_name("pigeon"), None);
    }

    #[test]
    fn session_and_lock_frames_are_tagged_like_the_others() {
        let frame = ServerFrame::Lock(super::super::Lock {
            reason: super::super::LockReason::Revoked,
        });
        let json = serde_json::to_string(&frame).unwrap();
        assert_eq!(json, r#"{"type":"lock","reason":"revoked"}"#);
        assert_eq!(serde_json::from_str::<ServerFrame>(&json).unwrap(), frame);
    }
}
