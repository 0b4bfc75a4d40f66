//! What a fan-out run is pointed at: Tidings over its chat channel or its feed, or one of the
//! peers, and how a client connects to each.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tidings_proto::v1::SUBPROTOCOL;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// A WebSocket over plain TCP on loopback.
pub type Socket = WebSocketStream<TcpStream>;

/// The servers and transports the fan-out benchmark compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Tidings, subscribers on the WebSocket chat channel.
    TidingsWs,
    /// Tidings, subscribers on the SSE feed (the publisher still posts over the chat channel).
    TidingsSse,
    /// Tidings, subscribers on the chat channel's HTTP stream (`/api/stream`, SSE framing).
    TidingsStream,
    /// Tidings, subscribers long-polling the chat channel (`/api/poll`, kept-alive connections).
    TidingsPoll,
    /// axum + `tokio::sync::broadcast`, as the textbook chat example has it.
    NaiveAxum,
    /// Node's `ws` package, its README's broadcast example.
    NodeWs,
    /// The least a broadcast server can do per delivery (`floor`).
    Floor,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::TidingsWs => "tidings-ws",
            Target::TidingsSse => "tidings-sse",
            Target::TidingsStream => "tidings-stream",
            Target::TidingsPoll => "tidings-poll",
            Target::NaiveAxum => "naive-axum",
            Target::NodeWs => "node-ws",
            Target::Floor => "floor",
        }
    }

    /// Whether each subscriber needs a session of its own (a session holds one poll and a couple
    /// of streams at a time, like one device).
    pub fn session_per_subscriber(self) -> bool {
        matches!(self, Target::TidingsStream | Target::TidingsPoll)
    }

    pub fn is_tidings(self) -> bool {
        matches!(
            self,
            Target::TidingsWs | Target::TidingsSse | Target::TidingsStream | Target::TidingsPoll
        )
    }
}

/// Credentials for Tidings: the subscribers' sessions and the publisher's own.
#[derive(Debug, Clone)]
pub struct Access {
    /// One session shared by every subscriber, or (for the HTTP transports, which keep one poll
    /// and a few streams per session, as one device holds) one per subscriber. Shared: every
    /// subscriber's task holds a copy of its endpoint.
    pub subscriber_tokens: Arc<[String]>,
    pub publisher_token: String,
    pub room: i64,
}

impl Access {
    /// The token of subscriber `index`.
    pub fn subscriber(&self, index: usize) -> &str {
        &self.subscriber_tokens[index % self.subscriber_tokens.len().max(1)]
    }
}

/// A running server — or the nodes of a cluster — to point clients at.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub target: Target,
    /// Where each node listens; one for a single server. The publisher talks to the first.
    pub nodes: Vec<SocketAddr>,
    /// Present for Tidings; the peers take anyone.
    pub access: Option<Access>,
}

impl Endpoint {
    /// The node the publisher talks to.
    pub fn first(&self) -> SocketAddr {
        self.nodes[0]
    }

    /// The node subscriber `index` talks to: the nodes in turn.
    pub fn node(&self, index: usize) -> SocketAddr {
        self.nodes[index % self.nodes.len()]
    }
}

/// Opens a WebSocket to `path`, offering the Tidings subprotocol and a bearer token when given.
/// `small` keeps the client's buffers small, as thousands of idle subscribers need.
pub async fn connect(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    small: bool,
) -> Result<Socket> {
    let mut request = format!("ws://{addr}{path}").into_client_request()?;
    if let Some(token) = token {
        let headers = request.headers_mut();
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).context("token as a header")?,
        );
    }
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let config = if small {
        WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0)
    } else {
        WebSocketConfig::default()
    };
    let (socket, response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .context("WebSocket handshake")?;
    if token.is_some() {
        let agreed = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok());
        if agreed != Some(SUBPROTOCOL) {
            bail!("the server did not agree to {SUBPROTOCOL}: {agreed:?}");
        }
    }
    Ok(socket)
}
