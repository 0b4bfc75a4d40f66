//! Feed connections served without hyper.
//!
//! A feed is one response that never ends, and hyper keeps an HTTP/1 connection's read and write
//! buffers (8 KiB each) for as long as the response lasts — most of what an idle feed costs. So
//! the listener looks at the first bytes of every new connection: one that starts with
//! `GET /api/events` has its request head read and parsed here (with `httparse`), goes through the
//! same router as every other request (same extractors, same auth), and has its response written
//! straight to the socket, close-delimited (`Connection: close`, no length), each chunk of the
//! stream as it comes. Every other connection — and a feed requested later on a kept-alive
//! connection — is handed to `axum::serve` as usual.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use axum::serve::Listener;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tower::ServiceExt;

use crate::app::AppState;

/// The request line a feed starts with; the next byte must be ` ` or `?`.
const FEED_PREFIX: &[u8] = b"GET /api/events";
/// A request head larger than this is refused with 431.
const MAX_HEAD: usize = 16 * 1024;
/// Most request headers accepted.
const MAX_HEADERS: usize = 64;
/// The whole request head must arrive within this.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A finite response (an error) larger than this is not sent whole.
const MAX_FINITE_BODY: usize = 64 * 1024;

/// The listener `axum::serve` accepts from: every connection but the feeds taken over here.
pub struct SniffingListener {
    accepted: mpsc::Receiver<(TcpStream, SocketAddr)>,
    local: SocketAddr,
}

impl SniffingListener {
    /// Starts accepting on `listener`; feeds go to `router` directly, the rest to `accept`.
    pub fn new(listener: TcpListener, router: Router, state: AppState) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (to_hyper, accepted) = mpsc::channel(64);
        let tasks = state.tasks.clone();
        tasks.spawn(accept_loop(listener, router, state, to_hyper));
        Ok(SniffingListener { accepted, local })
    }
}

impl Listener for SniffingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop has stopped, which it only does when shutting down; axum stops
            // calling accept then too.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    state: AppState,
    to_hyper: mpsc::Sender<(TcpStream, SocketAddr)>,
) {
    loop {
        let accepted = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, addr) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors, mostly: wait a little instead of spinning.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Chat frames and feed events are small and must leave at once: no Nagle delay.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "could not set TCP_NODELAY");
        }
        let (router, state2, to_hyper) = (router.clone(), state.clone(), to_hyper.clone());
        state.tasks.spawn(async move {
            let is_feed = tokio::select! {
                _ = state2.shutdown.cancelled() => return,
                is_feed = starts_a_feed(&stream) => is_feed,
            };
            if is_feed {
                serve_feed(stream, router, &state2).await;
            } else {
                // Fails only when axum has stopped accepting: the connection is dropped.
                let _ = to_hyper.send((stream, addr)).await;
            }
        });
    }
}

/// Whether the connection's first bytes are a feed request. Waits for the first bytes; when
/// they are too few to tell, it is not a feed (hyper serves it, feed or not).
async fn starts_a_feed(stream: &TcpStream) -> bool {
    let mut first = [0u8; FEED_PREFIX.len() + 1];
    match stream.peek(&mut first).await {
        Ok(n) if n == first.len() => {
            first.starts_with(FEED_PREFIX) && matches!(first[FEED_PREFIX.len()], b' ' | b'?')
        }
        _ => false,
    }
}

/// Reads the request, runs it through the router and writes the response to the socket.
async fn serve_feed(mut stream: TcpStream, router: Router, state: &AppState) {
    let request = match timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(request)) => request,
        Ok(Err(status)) => {
            let response = Response::builder()
                .status(status)
                .body(Body::empty())
                .unwrap_or_default();
            let _ = write_response(&mut stream, response, state).await;
            return;
        }
        Err(_) => return,
    };
    let Ok(response) = router.oneshot(request).await;
    if let Err(err) = write_response(&mut stream, response, state).await {
        tracing::debug!(%err, "feed connection ended");
    }
    let _ = stream.shutdown().await;
}

/// Reads and parses the request head; anything after it is ignored (the connection closes
/// after the response).
async fn read_head(stream: &mut TcpStream) -> Result<Request<Body>, StatusCode> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.len() >= MAX_HEAD {
            return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        }
        let mut chunk = [0u8; 1024];
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|_| StatusCode::BAD_REQUEST)?;
        if n == 0 {
            return Err(StatusCode::BAD_REQUEST);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => return to_request(&parsed),
            Ok(httparse::Status::Partial) => continue,
            Err(httparse::Error::TooManyHeaders) => {
                return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            }
            Err(_) => return Err(StatusCode::BAD_REQUEST),
        }
    }
}

fn to_request(parsed: &httparse::Request<'_, '_>) -> Result<Request<Body>, StatusCode> {
    let version = match parsed.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(parsed.path.ok_or(StatusCode::BAD_REQUEST)?)
        .version(version);
    for h in parsed.headers.iter() {
        let name =
            HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| StatusCode::BAD_REQUEST)?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| StatusCode::BAD_REQUEST)?;
        builder = builder.header(name, value);
    }
    builder
        .body(Body::empty())
        .map_err(|_| StatusCode::BAD_REQUEST)
}

/// Writes the head, then the body: whole when its length is known, else chunk by chunk as the
/// stream yields them, until it ends, the client goes away or a write times out.
async fn write_response(
    stream: &mut TcpStream,
    response: Response<Body>,
    state: &AppState,
) -> io::Result<()> {
    let (parts, body) = response.into_parts();
    let exact = body.size_hint().exact();
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(parts.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if [
            header::CONNECTION,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
        ]
        .contains(name)
        {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if let Some(len) = exact {
        head.extend_from_slice(format!("content-length: {len}\r\n").as_bytes());
    }
    head.extend_from_slice(b"connection: close\r\n\r\n");
    let write_timeout = state.config.chat.write_timeout;
    let write = async |stream: &mut TcpStream, bytes: &[u8]| match timeout(
        write_timeout,
        stream.write_all(bytes),
    )
    .await
    {
        Ok(written) => written,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
    };
    if exact.is_some() {
        let body = axum::body::to_bytes(body, MAX_FINITE_BODY)
            .await
            .map_err(io::Error::other)?;
        head.extend_from_slice(&body);
        return write(stream, &head).await;
    }
    write(stream, &head).await?;
    drop(head);
    let mut chunks = body.into_data_stream();
    // The client sends nothing more; a read returning says it has gone (or broke the protocol).
    let mut sink = [0u8; 16];
    loop {
        tokio::select! {
            chunk = chunks.next() => match chunk {
                Some(Ok(bytes)) => write(stream, &bytes).await?,
                Some(Err(err)) => return Err(io::Error::other(err)),
                None => return Ok(()),
            },
            read = stream.read(&mut sink) => match read {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => {}
            },
        }
    }
}
