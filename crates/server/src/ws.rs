//! The WebSocket under the chat channel: the upgrade's handshake (RFC 6455 §4.2), and the socket
//! over the upgraded connection — its frames read by [`frames::Reader`], and written whole, as
//! bytes encoded once.
//!
//! Not axum's `WebSocketUpgrade` (tokio-tungstenite's stream), for what an idle connection holds
//! and what a wake-up costs: a stream keeps a read buffer, a write buffer and wakers of its own
//! for life, where this socket holds nothing between frames; and on plain TCP its writes go
//! through the outlet the fan-out writes to (see `crate::outlet`), while a read that finds
//! nothing is a look at tokio's readiness, not a call through hyper's upgraded connection. Over
//! TLS, reads go through hyper's upgraded connection, [`Gated`] so that a wake-up for something
//! else does not read through TLS for nothing.

mod frames;

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker, ready};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::task::AtomicWaker;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tidings_proto::v1::ErrorCode;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::error::ApiError;
use crate::outlet::Outlet;

pub use frames::{Incoming, Reader as FrameReader, Refused, close_frame, encode, pong};

/// Bytes read from the socket at a time, into a buffer on the stack: what is not a whole frame
/// is kept by the reader until the rest comes.
const READ_CHUNK: usize = 4096;

/// A ping with no payload, as the server sends it.
pub const PING: [u8; 2] = [0x89, 0x00];

/// A server's WebSocket: frames in, whole, and bytes of whole frames out.
#[derive(Debug)]
pub struct Socket {
    wire: Wire,
    reader: frames::Reader,
    /// The largest frame or message taken from the client.
    limit: usize,
    /// The client's close frame has been read: nothing more comes.
    closed_by_peer: bool,
}

/// The connection under a WebSocket.
#[derive(Debug)]
enum Wire {
    /// A plain TCP connection, written through its outlet (which the fan-out writes to as
    /// well).
    Tcp(Arc<Outlet>),
    /// Anything else (TLS): hyper's upgraded connection.
    Upgraded(Box<Gated>),
}

impl Socket {
    fn new(upgraded: Upgraded, limit: usize) -> Socket {
        let (wire, reader) = match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let outlet = Arc::new(Outlet::new(parts.io.into_inner()));
                // What was read past the request is the start of the client's frames.
                (Wire::Tcp(outlet), frames::Reader::with(&parts.read_buf))
            }
            Err(upgraded) => (
                Wire::Upgraded(Box::new(Gated::new(TokioIo::new(upgraded)))),
                frames::Reader::default(),
            ),
        };
        Socket {
            wire,
            reader,
            limit,
            closed_by_peer: false,
        }
    }

    /// The socket's outlet, when the fan-out can write to it.
    pub fn outlet(&self) -> Option<&Arc<Outlet>> {
        match &self.wire {
            Wire::Tcp(outlet) => Some(outlet),
            Wire::Upgraded(_) => None,
        }
    }

    /// Whether the client's close frame has been read.
    pub fn closed_by_peer(&self) -> bool {
        self.closed_by_peer
    }

    /// The client's next message or control frame; `None` once the client is gone or has
    /// closed.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, Refused>>> {
        loop {
            if self.closed_by_peer {
                return Poll::Ready(None);
            }
            match self.reader.next(self.limit) {
                Ok(Some(incoming)) => {
                    self.closed_by_peer = matches!(incoming, Incoming::Close(_));
                    return Poll::Ready(Some(Ok(incoming)));
                }
                Ok(None) => {}
                Err(refused) => return Poll::Ready(Some(Err(refused))),
            }
            // Not zeroed: a read initialises what it fills, and only that is looked at.
            let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut buf = ReadBuf::uninit(&mut chunk);
            let read = match &mut self.wire {
                Wire::Tcp(outlet) => outlet.poll_read(cx, &mut buf),
                Wire::Upgraded(gated) => gated.poll_read(cx, &mut buf),
            };
            match ready!(read) {
                Ok(()) if buf.filled().is_empty() => return Poll::Ready(None),
                Ok(()) => self.reader.push(buf.filled()),
                Err(err) => {
                    tracing::debug!(%err, "the WebSocket's read failed");
                    return Poll::Ready(None);
                }
            }
        }
    }

    /// See [`Socket::poll_next`].
    pub async fn next(&mut self) -> Option<Result<Incoming, Refused>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Writes whole frames: on TCP through the outlet, after its backlog, never waiting (what
    /// the socket does not take now is kept, and written by [`Socket::flush`]); over TLS, all
    /// of them, waiting as needed.
    pub async fn write(&mut self, frames: &[u8]) -> io::Result<()> {
        match &mut self.wire {
            Wire::Tcp(outlet) => outlet.write(frames).map(drop),
            Wire::Upgraded(gated) => gated.io.write_all(frames).await,
        }
    }

    /// Waits until everything written has gone to the connection.
    pub async fn flush(&mut self) -> io::Result<()> {
        match &mut self.wire {
            Wire::Tcp(outlet) => std::future::poll_fn(|cx| outlet.poll_drain(cx)).await,
            Wire::Upgraded(gated) => gated.io.flush().await,
        }
    }

    /// Writes whole frames and flushes.
    pub async fn send(&mut self, frames: &[u8]) -> io::Result<()> {
        self.write(frames).await?;
        self.flush().await
    }
}

/// A request to upgrade to a WebSocket, its handshake checked.
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

fn refuse(message: &'static str) -> ApiError {
    ApiError::new(ErrorCode::Invalid, message)
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Upgrade, ApiError> {
        if parts.method != Method::GET {
            return Err(refuse("a WebSocket upgrade is a GET"));
        }
        if !has_token(&parts.headers, header::CONNECTION, "upgrade")
            || !has_token(&parts.headers, header::UPGRADE, "websocket")
        {
            return Err(refuse(
                "expected `Connection: upgrade` and `Upgrade: websocket`",
            ));
        }
        if parts.headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13"))
        {
            return Err(refuse("expected `Sec-WebSocket-Version: 13`"));
        }
        let key = parts
            .headers
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or_else(|| refuse("no `Sec-WebSocket-Key`"))?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or_else(|| refuse("this connection cannot be upgraded"))?;
        Ok(Upgrade { key, on_upgrade })
    }
}

impl Upgrade {
    /// Answers 101 with `protocol` selected; once the connection is upgraded (on a short task of
    /// its own), hands the socket to `serve`, which starts the connection's task: the upgrade's
    /// future is then freed instead of living as long as the connection.
    /// `limit` is the largest frame or message taken from the client.
    pub fn accept<F>(self, protocol: &'static str, limit: usize, serve: F) -> Response
    where
        F: FnOnce(Socket) + Send + 'static,
    {
        let accept = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(err) => {
                    tracing::debug!(%err, "the WebSocket upgrade failed");
                    return;
                }
            };
            serve(Socket::new(upgraded, limit));
        });
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if !protocol.is_empty() {
            headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(protocol),
            );
        }
        response
    }
}

/// Whether a [`Gated`] connection may have something to read: set when a read found something
/// or the connection has said it is readable since one found nothing.
#[derive(Debug)]
struct Readable {
    ready: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Readable {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// An upgraded connection read only when it may have something: a read that finds nothing
/// leaves the connection with a waker of its own, which marks it readable before waking the
/// task; until then, a read answers pending without going through TLS.
#[derive(Debug)]
struct Gated {
    io: TokioIo<Upgraded>,
    readable: Arc<Readable>,
    waker: Waker,
}

impl Gated {
    fn new(io: TokioIo<Upgraded>) -> Gated {
        let readable = Arc::new(Readable {
            ready: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Gated {
            io,
            waker: Waker::from(Arc::clone(&readable)),
            readable,
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        // Registered before looking, so a wake-up in between is not lost.
        self.readable.task.register(cx.waker());
        if !self.readable.ready.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let mut gate = Context::from_waker(&self.waker);
        match Pin::new(&mut self.io).poll_read(&mut gate, buf) {
            Poll::Pending => Poll::Pending,
            ready => {
                self.readable.ready.store(true, Ordering::Release);
                ready
            }
        }
    }
}
