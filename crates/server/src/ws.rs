//! The WebSocket under the chat channel: the upgrade's handshake (RFC 6455 §4.2), and the
//! stream over the upgraded connection, whose reads are gated.
//!
//! The gate is why this is not axum's `WebSocketUpgrade`: a chat connection's task wakes for
//! every delivery, and asking the socket for a frame at each wake-up — through tungstenite's
//! framing and hyper's upgraded connection, only to hear there is nothing — cost about a fifth of
//! a delivery's instructions. [`Readable`] knows whether the socket can have anything since the
//! last read that found nothing: the connection reads only then, and otherwise waits on it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::task::AtomicWaker;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tidings_proto::v1::ErrorCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::{Role, WebSocketConfig};

use crate::error::ApiError;
use crate::outlet::{Io, Outlet};

/// The chat channel's socket.
pub type Socket = WebSocketStream<Gated<Wire>>;

/// The connection under a WebSocket.
#[derive(Debug)]
pub enum Wire {
    /// A plain TCP connection, written through its outlet (which the fan-out writes to as
    /// well).
    Tcp(Io),
    /// Anything else (TLS): hyper's upgraded connection.
    Upgraded(TokioIo<Upgraded>),
}

impl Wire {
    fn new(upgraded: Upgraded) -> Wire {
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let outlet = Arc::new(Outlet::new(parts.io.into_inner()));
                Wire::Tcp(Io::new(outlet, &parts.read_buf))
            }
            Err(upgraded) => Wire::Upgraded(TokioIo::new(upgraded)),
        }
    }

    /// The socket's outlet, when the fan-out can write to it.
    pub fn outlet(&self) -> Option<Arc<Outlet>> {
        match self {
            Wire::Tcp(io) => Some(Arc::clone(io.outlet())),
            Wire::Upgraded(_) => None,
        }
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Wire::Tcp(io) => Pin::new(io).poll_read(cx, buf),
            Wire::Upgraded(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Wire::Tcp(io) => Pin::new(io).poll_write(cx, buf),
            Wire::Upgraded(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Wire::Tcp(io) => Pin::new(io).poll_flush(cx),
            Wire::Upgraded(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Wire::Tcp(io) => Pin::new(io).poll_shutdown(cx),
            Wire::Upgraded(io) => Pin::new(io).poll_shutdown(cx),
        }
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
    pub fn accept<F>(self, protocol: &'static str, config: WebSocketConfig, serve: F) -> Response
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
            let io = Gated::new(Wire::new(upgraded));
            let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
            serve(socket);
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
/// or the socket has said it is readable since one found nothing.
#[derive(Debug)]
pub struct Readable {
    ready: AtomicBool,
    task: AtomicWaker,
}

impl Readable {
    /// Whether reading now may find something.
    pub fn now(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Resolves once reading may find something.
    pub async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.now() {
                return Poll::Ready(());
            }
            self.task.register(cx.waker());
            if self.now() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
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

/// An IO whose reads keep [`Readable`] up to date: a read that finds nothing leaves the socket
/// with a waker of its own, which marks the connection readable before waking its task.
#[derive(Debug)]
pub struct Gated<IO> {
    io: IO,
    readable: Arc<Readable>,
    waker: Waker,
}

impl<IO> Gated<IO> {
    fn new(io: IO) -> Gated<IO> {
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

    pub fn readable(&self) -> Arc<Readable> {
        Arc::clone(&self.readable)
    }

    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Gated<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        this.readable.task.register(cx.waker());
        this.readable.ready.store(false, Ordering::Release);
        let mut gate = Context::from_waker(&this.waker);
        match Pin::new(&mut this.io).poll_read(&mut gate, buf) {
            Poll::Pending => Poll::Pending,
            ready => {
                this.readable.ready.store(true, Ordering::Release);
                ready
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Gated<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
