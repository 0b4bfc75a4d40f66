//! The listener: every connection of the server is accepted here, and none is held without a
//! deadline.
//!
//! A new connection must send its first bytes and then a complete request head within
//! `limits.head_timeout` (a connection that stays silent, or sends its head a byte at a time, is
//! closed), and at most `limits.max_pending_requests` connections may be waiting for their head
//! at once — while that many are, the listener accepts no more and new connections wait in the
//! kernel's accept queue, so a flood of idle sockets cannot take every file descriptor. A
//! connection whose whole head has already arrived when it is accepted is not waiting for its
//! peer and takes no place: in a reconnect storm, where every connection brings its head at once,
//! the listener keeps accepting as fast as connections come, and someone logging in meanwhile is
//! not left in the kernel's queue behind thousands of others. Request bodies have
//! `limits.body_timeout` (in `app::router`).
//!
//! The long waits are served without hyper: feeds and the chat channel's HTTP streams (responses
//! that never end), and long-polls (held until something happens). hyper keeps an HTTP/1
//! connection's read and write buffers (8 KiB each) for as long as a response is pending — most of
//! what an idle feed or a held poll costs. So the listener looks at the first bytes of every
//! request before hyper sees the connection: one that starts with `GET /api/events` or `GET
//! /api/stream` has its request head read and parsed here (with `httparse`), goes through the same
//! router as every other request (same extractors, same auth), and has its response written
//! straight to the socket, close-delimited (`Connection: close`, no length), each chunk of the
//! stream as it comes — by a task of its own, spawned once the head is written, so an idle stream
//! holds only what streaming needs and not the room its connection's first task kept for peeking,
//! reading the head, routing, a poll or hyper. A `GET /api/poll` is served the same way, but its
//! answer has a length and the connection is kept: the next request on it is looked at the same
//! way, so a long-polling client's polls all stay here on one connection. The first request that is
//! neither — and every request after it — is served by hyper's HTTP/1 connection, with upgrades for
//! the chat channel; nothing of it has been read, only peeked.
//!
//! With TLS on (`crate::tls`), a connection's bytes cannot be peeked at: its handshake must end
//! by the head's deadline, and then hyper serves every request on it, feeds and polls included.
//!
//! On shutdown the listener stops accepting; hyper connections finish the request in hand and
//! close; every connection still open when the drain deadline passes
//! (`AppState::connections_open`) is dropped.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, BodyDataStream, Bytes, HttpBody};
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, timeout, timeout_at};
use tower::ServiceExt;

use crate::app::AppState;
use crate::outlet::{Attached, Io, Outlet, backlog};
use crate::tls::Tls;

/// The request lines of a never-ending response (the feed, the chat channel's HTTP streams) and
/// of a long-poll; the next byte must be ` `, `?` or `/`.
const FEED_PREFIXES: [&[u8]; 2] = [b"GET /api/events", b"GET /api/stream"];
const POLL_PREFIX: &[u8] = b"GET /api/poll";
/// Bytes peeked to tell: the longest prefix and the byte after it.
const PEEK: usize = 16;
/// A request head larger than this is refused with 431.
const MAX_HEAD: usize = 16 * 1024;
/// Most request headers accepted.
const MAX_HEADERS: usize = 64;
/// A body with a length up to this is sent in one write with its head.
const COALESCED_BODY: usize = 16 * 1024;

/// Accepts connections on `listener` and serves each on a task of its own (tracked by
/// `state.tasks`) until the server starts shutting down.
pub async fn serve(listener: TcpListener, router: Router, state: AppState, tls: Option<Arc<Tls>>) {
    let heads = Arc::new(Semaphore::new(state.config.limits.max_pending_requests));
    loop {
        // A slot first: while every one is taken, new connections wait in the accept queue.
        let head = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            head = heads.clone().acquire_owned() => match head {
                Ok(head) => head,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
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
        let head = (!head_arrived(&stream)).then_some(head);
        let deadline = Instant::now() + state.config.limits.head_timeout;
        match &tls {
            Some(tls) => {
                let accept = tls.acceptor().accept(stream);
                let connection = secure(accept, router.clone(), state.clone(), head, deadline);
                state.connections_open.spawn(&state.tasks, connection);
            }
            None => {
                let connection = connection(stream, router.clone(), state.clone(), head, deadline);
                state.connections_open.spawn(&state.tasks, connection);
            }
        }
    }
}

/// Whether the request head of a connection just accepted is already there, whole: peeked,
/// without waiting. Heads larger than a peek are counted as waiting.
fn head_arrived(stream: &TcpStream) -> bool {
    let mut first = [0u8; 4096];
    let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
    match rustix::net::recv(stream, &mut first, flags) {
        Ok((n, _)) => first[..n].windows(4).any(|end| end == b"\r\n\r\n"),
        Err(_) => false,
    }
}

/// One accepted connection, until it ends or a shutdown's drain deadline passes (its task is
/// then aborted: `AppState::connections_open`).
async fn connection(
    stream: TcpStream,
    router: Router,
    state: AppState,
    head: Option<OwnedSemaphorePermit>,
    deadline: Instant,
) {
    serve_connection(stream, router, &state, head, deadline).await;
}

/// One accepted TLS connection: its handshake, by `deadline`, then hyper until it ends or a
/// shutdown's drain deadline passes.
async fn secure(
    accept: tokio_rustls::Accept<TcpStream>,
    router: Router,
    state: AppState,
    head: Option<OwnedSemaphorePermit>,
    deadline: Instant,
) {
    let stream = tokio::select! {
        _ = state.shutdown.cancelled() => return,
        accepted = timeout_at(deadline, accept) => match accepted {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => {
                tracing::debug!(%err, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!("no TLS handshake within the head timeout; closing");
                return;
            }
        },
    };
    Box::pin(serve_http(stream, router, &state, head, deadline)).await;
}

/// What a request about to be read is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Feed,
    Poll,
    /// Anything else, or too few bytes to tell: hyper serves it.
    Other,
    /// The connection closed (or broke) before a request.
    Gone,
}

/// Feeds and polls here, anything else for hyper. `head` (a place among the connections waiting
/// for their head, if it took one) is held until the first request head is complete, which must
/// be by `deadline`; each next request on a kept connection has `limits.head_timeout` from the
/// end of the answer before it.
async fn serve_connection(
    mut stream: TcpStream,
    router: Router,
    state: &AppState,
    mut head: Option<OwnedSemaphorePermit>,
    mut deadline: Instant,
) {
    loop {
        let kind = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            first = timeout_at(deadline, next_kind(&stream)) => match first {
                Ok(kind) => kind,
                Err(_) => {
                    tracing::debug!("no request within the head timeout; closing");
                    return;
                }
            },
        };
        match kind {
            Kind::Feed => return serve_feed(stream, router, state, head, deadline).await,
            Kind::Poll => {
                if !serve_poll(&mut stream, &router, state, head.take(), deadline).await {
                    let _ = timeout(state.config.chat.write_timeout, stream.shutdown()).await;
                    return;
                }
                deadline = Instant::now() + state.config.limits.head_timeout;
            }
            Kind::Other => {
                // Boxed: hyper's connection is far larger than a feed, and a future holds room
                // for its largest branch — every idle feed would carry it.
                return Box::pin(serve_http(stream, router, state, head, deadline)).await;
            }
            Kind::Gone => return,
        }
    }
}

/// Serves a connection with hyper's HTTP/1, upgrades included, until it closes; on shutdown it
/// finishes the request in hand and closes.
async fn serve_http<S>(
    stream: S,
    router: Router,
    state: &AppState,
    head: Option<OwnedSemaphorePermit>,
    deadline: Instant,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // hyper calls the service once the first request's head is complete: the permit goes back.
    let head = Mutex::new(head);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        head.lock().unwrap_or_else(PoisonError::into_inner).take();
        router.clone().oneshot(request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // Bounds the first head (what is left of the connection's deadline) and, on a kept-alive
        // connection, the wait for each next one.
        .header_read_timeout(deadline.saturating_duration_since(Instant::now()));
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        _ = state.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = ended {
        tracing::debug!(%err, "connection ended");
    }
}

/// What the next request is, from its first bytes, peeked (nothing is read). Waits for the
/// first bytes; a connection that sends too few to tell goes to hyper, which serves feeds and
/// polls too.
async fn next_kind(stream: &TcpStream) -> Kind {
    let mut first = [0u8; PEEK];
    let n = match stream.peek(&mut first).await {
        Ok(0) | Err(_) => return Kind::Gone,
        Ok(n) => n,
    };
    let first = &first[..n];
    let starts = |prefix: &[u8]| {
        first.starts_with(prefix) && matches!(first.get(prefix.len()), Some(b' ' | b'?' | b'/'))
    };
    if FEED_PREFIXES.iter().any(|prefix| starts(prefix)) {
        Kind::Feed
    } else if starts(POLL_PREFIX) && first.get(POLL_PREFIX.len()) != Some(&b'/') {
        Kind::Poll
    } else {
        Kind::Other
    }
}

/// Reads a poll, runs it through the router and writes its answer, with its length. Whether the
/// connection may carry the next request: not after an error, a client that went away or asked
/// to close, an HTTP/1.0 request, bytes sent after the head before the answer (pipelined: read
/// with the head, so not kept), or once the server is shutting down.
async fn serve_poll(
    stream: &mut TcpStream,
    router: &Router,
    state: &AppState,
    head: Option<OwnedSemaphorePermit>,
    deadline: Instant,
) -> bool {
    // Boxed, here and below: a task keeps room for its largest state for as long as it lives,
    // and a held poll or a feed lives long after these are done.
    let (request, pipelined) = match Box::pin(timeout_at(deadline, read_head(stream))).await {
        Ok(Ok(read)) => read,
        Ok(Err(status)) => {
            let _ = Box::pin(write_status(stream, status, state)).await;
            return false;
        }
        Err(_) => return false,
    };
    drop(head);
    let mut keep = !pipelined && request.version() == Version::HTTP_11 && !asks_to_close(&request);
    let call = router.clone().oneshot(request);
    tokio::pin!(call);
    // While the poll is held the client sends nothing: the socket turning readable says it has
    // gone (end of stream), or sent its next request early (not kept, then).
    let mut watching = true;
    let response = loop {
        let mut probe = [0u8; 1];
        tokio::select! {
            Ok(response) = call.as_mut() => break response,
            peeked = stream.peek(&mut probe), if watching => match peeked {
                Ok(0) | Err(_) => return false,
                Ok(_) => {
                    watching = false;
                    keep = false;
                }
            },
        }
    };
    keep &= !state.shutdown.is_cancelled();
    match write_response(stream, response, state, keep).await {
        Ok(kept) => kept,
        Err(err) => {
            tracing::debug!(%err, "poll connection ended");
            false
        }
    }
}

/// Whether a request's `Connection` header asks to close after the answer.
fn asks_to_close(request: &Request<Body>) -> bool {
    request
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("close"))
}

async fn write_status(
    stream: &mut TcpStream,
    status: StatusCode,
    state: &AppState,
) -> io::Result<bool> {
    let response = Response::builder()
        .status(status)
        .body(Body::empty())
        .unwrap_or_default();
    write_response(stream, response, state, false).await
}

/// Reads the request, runs it through the router and writes the response to the socket: its
/// head here, and its stream (the feed's events, for as long as it lasts) on a task of its own,
/// spawned once the head is written. The connection's task — room for peeking, reading the head,
/// routing, and a poll's and hyper's states — then ends, and an idle feed holds only what
/// streaming needs.
async fn serve_feed(
    mut stream: TcpStream,
    router: Router,
    state: &AppState,
    head: Option<OwnedSemaphorePermit>,
    deadline: Instant,
) {
    let mut request = match Box::pin(timeout_at(deadline, read_head(&mut stream))).await {
        Ok(Ok((request, _))) => request,
        Ok(Err(status)) => {
            let _ = Box::pin(write_status(&mut stream, status, state)).await;
            return;
        }
        Err(_) => return,
    };
    drop(head);
    // From here the socket is written through an outlet, which the fan-out writes the feed's
    // events to as well (see `crate::outlet`).
    let outlet = Arc::new(Outlet::new(stream));
    request
        .extensions_mut()
        .insert(Attached(Arc::clone(&outlet)));
    // Boxed: the router's future (extractors, the handler) is done once the response starts.
    let Ok(response) = Box::pin(router.oneshot(request)).await;
    let mut io = Io::new(Arc::clone(&outlet), &[]);
    let write_timeout = state.config.chat.write_timeout;
    match Box::pin(write_head(&mut io, response, write_timeout, false)).await {
        Ok(Rest::Stream(body)) => {
            let mut streaming = Streaming::new(io, body, write_timeout, Some(outlet));
            let task = async move {
                if let Err(err) = stream_body(&mut streaming).await {
                    tracing::debug!(%err, "feed connection ended");
                }
                let limit = streaming.write_timeout;
                let _ = Box::pin(timeout(limit, streaming.stream.shutdown())).await;
            };
            state.connections_open.spawn(&state.tasks, task);
            return;
        }
        Ok(Rest::Kept(_)) => {}
        Err(err) => tracing::debug!(%err, "feed connection ended"),
    }
    let _ = timeout(write_timeout, io.shutdown()).await;
}

/// Reads and parses the request head, and says whether bytes came after it (read with it, so
/// lost to the next request: a feed ignores them, a poll closes after its answer).
async fn read_head(stream: &mut TcpStream) -> Result<(Request<Body>, bool), StatusCode> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.reserve(1024);
        let n = stream
            .read_buf(&mut buf)
            .await
            .map_err(|_| StatusCode::BAD_REQUEST)?;
        if n == 0 {
            return Err(StatusCode::BAD_REQUEST);
        }
        if let Some((request, len)) = parse(&buf)? {
            return Ok((request, len < buf.len()));
        }
    }
}

/// Parses what has arrived of a request head: the request once it is complete, `None` while
/// more is needed, or the status to refuse it with (400 malformed, 431 too large).
pub fn parse_head(buf: &[u8]) -> Result<Option<Request<Body>>, StatusCode> {
    Ok(parse(buf)?.map(|(request, _)| request))
}

/// [`parse_head`], with the head's length.
fn parse(buf: &[u8]) -> Result<Option<(Request<Body>, usize)>, StatusCode> {
    if buf.len() > MAX_HEAD {
        return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            to_request(&parsed).map(|request| Some((request, len)))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Err(_) => Err(StatusCode::BAD_REQUEST),
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
/// stream yields them, until it ends, the client goes away or a write times out. The connection
/// is kept after the answer when `keep` asks it and the answer has a length; whether it is, is
/// returned.
async fn write_response<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    response: Response<Body>,
    state: &AppState,
    keep: bool,
) -> io::Result<bool> {
    let write_timeout = state.config.chat.write_timeout;
    match write_head(stream, response, write_timeout, keep).await? {
        Rest::Kept(kept) => Ok(kept),
        Rest::Stream(body) => {
            let mut streaming = Streaming::new(stream, body, write_timeout, None);
            stream_body(&mut streaming).await.map(|()| false)
        }
    }
}

/// What is left of a response once [`write_head`] is done.
enum Rest {
    /// Written whole; whether the connection is kept.
    Kept(bool),
    /// A body without a length, to stream ([`stream_body`]); the connection closes after it.
    Stream(Body),
}

/// Writes the head, and a body whose length is known with it.
async fn write_head<S: AsyncWrite + Unpin>(
    stream: &mut S,
    response: Response<Body>,
    write_timeout: Duration,
    keep: bool,
) -> io::Result<Rest> {
    let (parts, body) = response.into_parts();
    let exact = body.size_hint().exact();
    let keep = keep && exact.is_some();
    // Written into the head: a stream keeps nothing of them (the map alone is over half a KiB).
    let mut head = head_bytes(&parts, exact, keep);
    drop(parts);
    let Some(len) = exact else {
        write_within(stream, &head, write_timeout).await?;
        return Ok(Rest::Stream(body));
    };
    // A body with a length is in memory already (a poll's answer, a replay page of it included,
    // or an error): collected whole, its length is its limit.
    let len = usize::try_from(len).map_err(io::Error::other)?;
    let body = axum::body::to_bytes(body, len)
        .await
        .map_err(io::Error::other)?;
    if body.len() <= COALESCED_BODY {
        head.extend_from_slice(&body);
        write_within(stream, &head, write_timeout).await?;
    } else {
        write_within(stream, &head, write_timeout).await?;
        write_within(stream, &body, write_timeout).await?;
    }
    Ok(Rest::Kept(keep))
}

/// A response's head: its status line and headers, with `content-length` when `exact` gives
/// one and `connection: close` unless the connection is kept.
fn head_bytes(parts: &axum::http::response::Parts, exact: Option<u64>, keep: bool) -> Vec<u8> {
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
    if !keep {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Writes `bytes` and flushes (an outlet's backlog is written out too), within `limit`.
async fn write_within<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    limit: Duration,
) -> io::Result<()> {
    match crate::clock::within(limit, async {
        stream.write_all(bytes).await?;
        stream.flush().await
    })
    .await
    {
        Some(written) => written,
        None => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
    }
}

/// A body without a length, streamed to a socket by [`stream_body`]. Passed to it by reference,
/// in one piece, so that a streaming task's future holds one copy of it (an async fn keeps its
/// arguments apart from what it moves them into).
struct Streaming<S> {
    stream: S,
    chunks: BodyDataStream,
    write_timeout: Duration,
    /// The socket's outlet, whose backlog (what the fan-out left) is written as it drains.
    outlet: Option<Arc<Outlet>>,
}

impl<S> Streaming<S> {
    fn new(
        stream: S,
        body: Body,
        write_timeout: Duration,
        outlet: Option<Arc<Outlet>>,
    ) -> Streaming<S> {
        Streaming {
            stream,
            chunks: body.into_data_stream(),
            write_timeout,
            outlet,
        }
    }
}

/// Writes a body chunk by chunk as its stream yields them, until it ends, the client goes away
/// or a write times out. An idle stream waits here, so what it holds while waiting is kept
/// small: a write (with its timer) is boxed.
async fn stream_body<S: AsyncRead + AsyncWrite + Unpin>(
    streaming: &mut Streaming<S>,
) -> io::Result<()> {
    // The client sends nothing more; a read returning says it has gone (or broke the protocol).
    let mut sink = [0u8; 16];
    loop {
        let bytes = tokio::select! {
            // What there is to send first: a wake-up for an event looks at nothing else.
            biased;
            chunk = streaming.chunks.next() => match chunk {
                Some(Ok(bytes)) => bytes,
                Some(Err(err)) => return Err(io::Error::other(err)),
                None => return Ok(()),
            },
            read = streaming.stream.read(&mut sink) => match read {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => continue,
            },
            // The fan-out left events the socket could not take: written as it drains.
            () = backlog(streaming.outlet.as_deref()) => Bytes::new(),
        };
        let write = write_within(&mut streaming.stream, &bytes, streaming.write_timeout);
        Box::pin(write).await?;
    }
}
