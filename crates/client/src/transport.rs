//! The ways of carrying the chat channel: the WebSocket, and the HTTP transports for networks
//! that break it (SSE or JSON-lines streaming, long-polling, short polling). Each only carries
//! frames — sends `ClientFrame`s, hands over the `ServerFrame`s it receives, says how it ended —
//! so the chat's one loop (`chat.rs`) runs over any of them.
//!
//! The HTTP transports resume from a cursor: every batch the server sends ends with the id up to
//! which the client has everything, and the next request starts there. A reader task turns
//! polls or stream chunks into frames on a bounded channel; sends go up one `POST /api/frames`
//! each, in order, and their answers (`ack`, `error`, `history`) come back through `recv`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use tidings_proto::v1::{
    ClientFrame, ErrorBody, FRAMES_PATH, MessageId, POLL_PATH, STREAM_PATH, SUBPROTOCOL,
    ServerFrame, TransportKind, Transports, close,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout, timeout_at};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::api::Api;
use crate::event::LockCause;

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Try again after a backoff delay.
    Retry,
    /// This transport does not get through (a proxy refused or buffered it): try the next
    /// one down, if the server is reachable at all.
    Broken,
    /// A better transport works now: reconnect on it.
    Climb(usize),
    /// The session is over: lock.
    Locked(LockCause),
}

/// A way of carrying the chat channel.
pub(crate) trait Transport: Send {
    /// Sends one frame.
    fn send(&mut self, frame: &ClientFrame) -> impl Future<Output = Result<(), Ended>> + Send;
    /// The next frame from the server; how the transport ended when it has. Frames this client
    /// does not know (from a newer server) are skipped, never an end.
    fn recv(&mut self) -> impl Future<Output = Result<ServerFrame, Ended>> + Send;
}

/// Any transport, so the chat's loop is one function whatever the rung.
pub(crate) enum AnyTransport {
    /// Boxed: the socket's state is three times the HTTP transport's.
    WebSocket(Box<WebSocketTransport>),
    Http(HttpTransport),
}

impl AnyTransport {
    /// Opens a transport of `kind` whose first frame is the hello. `cursor` is where the client
    /// stands (the HTTP transports start their replay there).
    pub async fn open(
        kind: TransportKind,
        api: &Api,
        token: &str,
        cursor: MessageId,
    ) -> Result<AnyTransport, Ended> {
        match kind {
            TransportKind::WebSocket => WebSocketTransport::connect(api, token)
                .await
                .map(|ws| AnyTransport::WebSocket(Box::new(ws))),
            kind => HttpTransport::open(kind, api, token, cursor)
                .await
                .map(AnyTransport::Http),
        }
    }

    /// The server pings this often (from its hello): the WebSocket's liveness check.
    pub fn set_heartbeat(&mut self, heartbeat: Duration) {
        if let AnyTransport::WebSocket(ws) = self {
            ws.heartbeat = heartbeat;
        }
    }
}

impl Transport for AnyTransport {
    async fn send(&mut self, frame: &ClientFrame) -> Result<(), Ended> {
        match self {
            AnyTransport::WebSocket(t) => t.send(frame).await,
            AnyTransport::Http(t) => t.send(frame).await,
        }
    }

    async fn recv(&mut self) -> Result<ServerFrame, Ended> {
        match self {
            AnyTransport::WebSocket(t) => t.recv().await,
            AnyTransport::Http(t) => t.recv().await,
        }
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long the WebSocket handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The WebSocket transport (`/api/ws`, subprotocol `tidings.v1`).
pub(crate) struct WebSocketTransport {
    socket: Socket,
    /// The server pings this often; two silent intervals mean the connection is dead.
    heartbeat: Duration,
    /// When anything (pings included) was last heard.
    last_heard: Instant,
}

/// The chat URL of a server: `ws(s)://host/api/ws`.
fn chat_url(api: &Api) -> String {
    let base = api.base();
    let rest = base
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| base.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .unwrap_or_else(|| base.to_owned());
    format!("{rest}/api/ws")
}

impl WebSocketTransport {
    /// Opens the WebSocket. Until the hello says otherwise, the connection counts as dead after
    /// `CONNECT_TIMEOUT` of silence.
    async fn connect(api: &Api, token: &str) -> Result<WebSocketTransport, Ended> {
        let mut request = chat_url(api)
            .into_client_request()
            .map_err(|_| Ended::Retry)?;
        let headers = request.headers_mut();
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| Ended::Retry)?;
        headers.insert("authorization", bearer);
        // `wss://` as every other connection to the server: the same roots and pin.
        let tls = Connector::Rustls(api.tls());
        let handshake = async {
            match api.proxy() {
                // Through a forward proxy, as browsers do: a `CONNECT` tunnel, then the upgrade
                // inside it. A proxy that refuses the tunnel breaks this rung.
                Some(proxy) => {
                    let tunnel = tunnel(proxy, &api.authority()).await?;
                    Ok::<_, Ended>(
                        tokio_tungstenite::client_async_tls_with_config(
                            request,
                            tunnel,
                            None,
                            Some(tls),
                        )
                        .await,
                    )
                }
                None => Ok(tokio_tungstenite::connect_async_tls_with_config(
                    request,
                    None,
                    false,
                    Some(tls),
                )
                .await),
            }
        };
        // Both waits in one deadline: the tunnel's and the upgrade's.
        let outcome = match timeout(CONNECT_TIMEOUT, handshake).await {
            Ok(Err(ended)) => return Err(ended),
            Ok(Ok(done)) => Ok(done),
            Err(elapsed) => Err(elapsed),
        };
        match outcome {
            Ok(Ok((socket, _))) => Ok(WebSocketTransport {
                socket,
                heartbeat: CONNECT_TIMEOUT / 2,
                last_heard: Instant::now(),
            }),
            Ok(Err(WsError::Http(response))) => Err(match response.status().as_u16() {
                401 => Ended::Locked(LockCause::Rejected),
                // The server is there but busy: the same rung, later.
                429 | 503 => Ended::Retry,
                // Anything else in place of the upgrade: a proxy (or the server) that does not
                // speak WebSocket here.
                _ => Ended::Broken,
            }),
            // Not even a connection: the server is not there (no reason to move down).
            Ok(Err(WsError::Io(err))) => {
                tracing::debug!(%err, "chat connect failed");
                Err(Ended::Retry)
            }
            // A certificate this client does not believe: every transport would meet it.
            Ok(Err(err)) if api.has_refused() => {
                tracing::warn!(%err, "the server's certificate is not trusted");
                Err(Ended::Retry)
            }
            // A connection, but no WebSocket over it: something in between does not pass it on.
            Ok(Err(err)) => {
                tracing::debug!(%err, "chat handshake failed");
                Err(Ended::Broken)
            }
            Err(_) => Err(Ended::Broken),
        }
    }
}

impl Transport for WebSocketTransport {
    async fn send(&mut self, frame: &ClientFrame) -> Result<(), Ended> {
        let text = serde_json::to_string(frame).map_err(|_| Ended::Retry)?;
        self.socket
            .send(WsMessage::text(text))
            .await
            .map_err(|_| Ended::Retry)
    }

    async fn recv(&mut self) -> Result<ServerFrame, Ended> {
        loop {
            let silent_until = self.last_heard + self.heartbeat * 2;
            let Ok(incoming) = timeout_at(silent_until, self.socket.next()).await else {
                tracing::debug!("chat channel silent for two heartbeats; reconnecting");
                return Err(Ended::Retry);
            };
            self.last_heard = Instant::now();
            match incoming {
                Some(Ok(WsMessage::Text(text))) => {
                    if let Some(frame) = decode(text.as_bytes()) {
                        return Ok(frame);
                    }
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    return Err(closed(
                        frame.map(|f| u16::from(f.code)).unwrap_or(close::NORMAL),
                    ));
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    tracing::debug!(%err, "chat channel failed");
                    return Err(Ended::Retry);
                }
                None => return Err(Ended::Retry),
            }
        }
    }
}

/// Opens a `CONNECT` tunnel to `authority` (`host:port`) through the forward proxy at `proxy`
/// (`http://host:port`), as RFC 9110 (9.3.6) describes.
async fn tunnel(proxy: &str, authority: &str) -> Result<TcpStream, Ended> {
    let address = proxy
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    // Credentials in the proxy's URL are not supported: the address is what follows them.
    let address = address.rsplit('@').next().unwrap_or(address);
    let mut stream = TcpStream::connect(address).await.map_err(|err| {
        tracing::debug!(%err, proxy, "proxy unreachable");
        Ended::Retry
    })?;
    let request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|_| Ended::Retry)?;
    // The proxy's answer: a status line and headers, nothing after them until we speak.
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= 8 * 1024 || stream.read(&mut byte).await.map_err(|_| Ended::Retry)? == 0 {
            return Err(Ended::Broken);
        }
        head.push(byte[0]);
    }
    let status = head
        .split(|b| *b == b' ')
        .nth(1)
        .and_then(|code| std::str::from_utf8(code).ok());
    match status {
        Some(code) if code.starts_with('2') => Ok(stream),
        other => {
            tracing::debug!(status = ?other, "the proxy refused the tunnel");
            Err(Ended::Broken)
        }
    }
}

/// A server frame, or `None` for one this client does not know (from a newer server): skipped
/// rather than a reason to drop the connection.
fn decode(bytes: &[u8]) -> Option<ServerFrame> {
    accept(serde_json::from_slice(bytes))
}

/// A frame already parsed as JSON (in a batch), as [`decode`].
fn decode_value(value: serde_json::Value) -> Option<ServerFrame> {
    accept(serde_json::from_value(value))
}

fn accept(decoded: serde_json::Result<ServerFrame>) -> Option<ServerFrame> {
    match decoded {
        Ok(frame) => Some(frame),
        Err(err) => {
            tracing::debug!(%err, "skipping a frame this client does not know");
            None
        }
    }
}

/// What a close code means for the client.
pub(crate) fn closed(code: u16) -> Ended {
    match code {
        close::SESSION_EXPIRED => Ended::Locked(LockCause::Expired),
        close::SESSION_REVOKED => Ended::Locked(LockCause::Revoked),
        // The session ended, but the server did not say how.
        close::POLICY => Ended::Locked(LockCause::Rejected),
        _ => Ended::Retry,
    }
}

/// A batch as it arrives: the frames are decoded one by one, so one this client does not know
/// is skipped instead of failing the batch.
#[derive(serde::Deserialize)]
struct RawBatch {
    cursor: MessageId,
    frames: Vec<serde_json::Value>,
}

/// Frames buffered between the reader and the chat's loop.
const FRAME_BUFFER: usize = 256;

/// The HTTP transports: a reader task for what comes down, `POST /api/frames` for what goes up.
pub(crate) struct HttpTransport {
    api: Api,
    token: String,
    frames: mpsc::Receiver<Result<ServerFrame, Ended>>,
    /// Where the reader's next request starts; a `sync` moves it forward.
    cursor: Arc<AtomicI64>,
    reader: JoinHandle<()>,
    /// Answers to sends, handed out before anything else.
    replies: VecDeque<ServerFrame>,
}

impl Drop for HttpTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl HttpTransport {
    async fn open(
        kind: TransportKind,
        api: &Api,
        token: &str,
        cursor: MessageId,
    ) -> Result<HttpTransport, Ended> {
        // What the server offers and its timeouts; failing this, the server is not reachable
        // (or not over HTTP either), which is no reason to move down.
        let offered = match api.transports().await {
            Ok(offered) => offered,
            Err(err) => {
                tracing::debug!(%err, "could not ask the server for its transports");
                return Err(Ended::Retry);
            }
        };
        if !offered.transports.contains(&kind) {
            return Err(Ended::Broken);
        }
        let cursor = Arc::new(AtomicI64::new(cursor.max(0)));
        let (tx, frames) = mpsc::channel(FRAME_BUFFER);
        let reader = Reader {
            kind,
            api: api.clone(),
            token: token.to_owned(),
            cursor: cursor.clone(),
            offered,
            tx,
        };
        Ok(HttpTransport {
            api: api.clone(),
            token: token.to_owned(),
            frames,
            cursor,
            reader: tokio::spawn(reader.run()),
            replies: VecDeque::new(),
        })
    }
}

impl Transport for HttpTransport {
    async fn send(&mut self, frame: &ClientFrame) -> Result<(), Ended> {
        if let ClientFrame::Sync { since } = frame {
            // The reader's cursor is the sync: it only moves forward.
            self.cursor.fetch_max(*since, Ordering::SeqCst);
            return Ok(());
        }
        let answer = self
            .api
            .http()
            .post(format!("{}{FRAMES_PATH}", self.api.base()))
            .bearer_auth(&self.token)
            .json(frame)
            .send()
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(err) => {
                tracing::debug!(%err, "a send over HTTP failed");
                return Err(Ended::Retry);
            }
        };
        let status = response.status();
        let Ok(bytes) = response.bytes().await else {
            return Err(Ended::Retry);
        };
        if status == StatusCode::UNAUTHORIZED {
            return Err(Ended::Locked(LockCause::Rejected));
        }
        if status.is_success() {
            let frames: Vec<serde_json::Value> =
                serde_json::from_slice(&bytes).map_err(|_| Ended::Retry)?;
            self.replies
                .extend(frames.into_iter().filter_map(decode_value));
            return Ok(());
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            // Refused as the WebSocket would have refused it: the same error frame.
            Ok(body) if status.is_client_error() => {
                self.replies.push_back(ServerFrame::Error(body));
                Ok(())
            }
            _ => Err(Ended::Retry),
        }
    }

    async fn recv(&mut self) -> Result<ServerFrame, Ended> {
        if let Some(reply) = self.replies.pop_front() {
            return Ok(reply);
        }
        self.frames.recv().await.unwrap_or(Err(Ended::Retry))
    }
}

/// The reader task of an HTTP transport.
struct Reader {
    kind: TransportKind,
    api: Api,
    token: String,
    cursor: Arc<AtomicI64>,
    offered: Transports,
    tx: mpsc::Sender<Result<ServerFrame, Ended>>,
}

/// How one request of a reader went.
enum Step {
    /// Go on; `news` when the batch held more than the session's status.
    Next { news: bool },
    /// The transport has ended (the end was sent on, or the loop is gone).
    Stop,
}

impl Reader {
    async fn run(self) {
        let mut hello = true;
        loop {
            let step = match self.kind {
                TransportKind::LongPolling | TransportKind::ShortPolling => self.poll(hello).await,
                _ => self.stream(hello).await,
            };
            hello = false;
            match step {
                Step::Stop => return,
                Step::Next { news } => {
                    if self.kind == TransportKind::ShortPolling && !news {
                        sleep(Duration::from_millis(self.offered.short_poll_interval_ms)).await;
                    }
                }
            }
        }
    }

    fn url(&self, path: &str, hello: bool, extra: &str) -> String {
        let cursor = self.cursor.load(Ordering::SeqCst);
        let hello = if hello { "&hello=1" } else { "" };
        format!("{}{path}?cursor={cursor}{hello}{extra}", self.api.base())
    }

    /// Ends the transport with `ended`.
    async fn end(&self, ended: Ended) -> Step {
        let _ = self.tx.send(Err(ended)).await;
        Step::Stop
    }

    /// Hands on a batch's frames; moves the cursor once they are all handed on.
    async fn deliver(&self, batch: RawBatch) -> Step {
        let mut news = false;
        for raw in batch.frames {
            let Some(frame) = decode_value(raw) else {
                continue;
            };
            let lock = matches!(frame, ServerFrame::Lock(_));
            news |= !matches!(frame, ServerFrame::Session(_));
            if self.tx.send(Ok(frame)).await.is_err() {
                return Step::Stop;
            }
            if lock {
                return Step::Stop;
            }
        }
        self.cursor.fetch_max(batch.cursor, Ordering::SeqCst);
        Step::Next { news }
    }

    async fn poll(&self, hello: bool) -> Step {
        let wait = if self.kind == TransportKind::ShortPolling {
            0
        } else {
            self.offered.poll_timeout_ms.div_ceil(1000)
        };
        let url = self.url(POLL_PATH, hello, &format!("&timeout={wait}"));
        let request = self
            .api
            .http()
            .get(url)
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(wait) + FIRST_BYTES);
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                tracing::debug!(%err, "poll failed");
                return self.end(failed(hello)).await;
            }
        };
        if let Some(ended) = refused(response.status(), hello) {
            return self.end(ended).await;
        }
        match response
            .bytes()
            .await
            .map(|b| serde_json::from_slice::<RawBatch>(&b))
        {
            Ok(Ok(batch)) => self.deliver(batch).await,
            _ => self.end(failed(hello)).await,
        }
    }

    /// One stream, until it ends (the server's size cut: go on from the cursor) or fails.
    async fn stream(&self, hello: bool) -> Step {
        let sse = self.kind == TransportKind::Sse;
        let mut request = self
            .api
            .streaming()
            .get(self.url(STREAM_PATH, hello, ""))
            .bearer_auth(&self.token);
        if sse {
            request = request.header("accept", "text/event-stream");
        }
        let response = match timeout(FIRST_BYTES, request.send()).await {
            Ok(Ok(response)) => response,
            _ => return self.end(failed(hello)).await,
        };
        if let Some(ended) = refused(response.status(), hello) {
            return self.end(ended).await;
        }
        // A stream that sends nothing for two heartbeats is dead (or held back by a proxy).
        let silence = Duration::from_millis(self.offered.heartbeat_ms) * 2 + FIRST_BYTES;
        let mut body = response.bytes_stream();
        let mut pending: Vec<u8> = Vec::new();
        let mut delivered_any = false;
        loop {
            let wait = if delivered_any { silence } else { FIRST_BYTES };
            let chunk = match timeout(wait, body.next()).await {
                Ok(Some(Ok(chunk))) => chunk,
                // The server ended it after its size cut: reopen from the cursor.
                Ok(None) => return Step::Next { news: true },
                Ok(Some(Err(_))) | Err(_) => {
                    return self.end(failed(hello && !delivered_any)).await;
                }
            };
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let line = &line[..line.len() - 1];
                let json = if sse {
                    // One `data:` line per event; the `id:` and `event:` lines say nothing the
                    // batch does not.
                    match line.strip_prefix(b"data: ") {
                        Some(json) => json,
                        None => continue,
                    }
                } else if line.is_empty() {
                    continue;
                } else {
                    line
                };
                let Ok(batch) = serde_json::from_slice::<RawBatch>(json) else {
                    return self.end(Ended::Retry).await;
                };
                delivered_any = true;
                if let Step::Stop = self.deliver(batch).await {
                    return Step::Stop;
                }
            }
        }
    }
}

/// How long the first bytes of an answer may take before the transport counts as not getting
/// through (a buffering proxy holds them back).
const FIRST_BYTES: Duration = Duration::from_secs(6);

/// A request that failed: before the hello, the transport is broken here; after, try again.
fn failed(before_hello: bool) -> Ended {
    if before_hello {
        Ended::Broken
    } else {
        Ended::Retry
    }
}

/// What a status other than 200 means.
fn refused(status: StatusCode, before_hello: bool) -> Option<Ended> {
    match status.as_u16() {
        200 => None,
        401 => Some(Ended::Locked(LockCause::Rejected)),
        429 | 503 => Some(Ended::Retry),
        _ => Some(failed(before_hello)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause(code: u16) -> Option<LockCause> {
        match closed(code) {
            Ended::Locked(cause) => Some(cause),
            _ => None,
        }
    }

    #[test]
    fn each_way_a_session_ends_locks_with_its_own_cause() {
        assert_eq!(cause(close::SESSION_EXPIRED), Some(LockCause::Expired));
        assert_eq!(cause(close::SESSION_REVOKED), Some(LockCause::Revoked));
        assert_eq!(cause(close::POLICY), Some(LockCause::Rejected));
    }

    #[test]
    fn every_other_close_reconnects() {
        for code in [
            close::NORMAL,
            close::GOING_AWAY,
            close::INTERNAL_ERROR,
            close::OVERLOADED,
            close::LAGGING,
            close::HEARTBEAT_TIMEOUT,
        ] {
            assert_eq!(cause(code), None, "{code}");
        }
    }

    #[test]
    fn a_batch_with_a_frame_from_a_newer_server_keeps_the_rest() {
        let raw: RawBatch = serde_json::from_str(
            r#"{"cursor":7,"frames":[{"type":"hologram"},{"type":"synced","latest_id":7,"has_more":false}]}"#,
        )
        .unwrap();
        let frames: Vec<ServerFrame> = raw.frames.into_iter().filter_map(decode_value).collect();
        assert_eq!(raw.cursor, 7);
        assert_eq!(
            frames,
            [ServerFrame::Synced {
                latest_id: 7,
                has_more: false
            }]
        );
    }
}
