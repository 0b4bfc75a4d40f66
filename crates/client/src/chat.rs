//! The chat channel, client side: one supervisor task per live session that keeps a transport
//! open to the server, reconnecting with backoff, and after every (re)connect syncs from the last
//! message id in the cache and sends the outbox.
//!
//! A [`Transport`] only carries frames: it sends `ClientFrame`s, hands over the `ServerFrame`s it
//! receives, and says how it ended. Decoding what the frames mean, the cursor, the outbox and the
//! events the UI hears are this module's one loop, whatever the transport (the WebSocket today).
//!
//! Guarantees: an outbox message stays in the outbox until the server acks it (so it survives
//! any disconnect or restart) and carries its client id on every attempt (so the server stores it
//! once); messages are saved to the cache before the UI hears of them, and a message already in
//! the cache is not announced twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tidings_proto::v1::{ClientFrame, ErrorCode, Hello, SUBPROTOCOL, ServerFrame, close};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use crate::api::Api;
use crate::backoff::Backoff;
use crate::client::{Command, Inner, now_ms};
use crate::event::{ClientEvent, ConnectionState, LockCause};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A way of carrying the chat channel.
trait Transport: Send {
    /// Sends one frame.
    fn send(&mut self, frame: &ClientFrame) -> impl Future<Output = Result<(), Ended>> + Send;
    /// The next frame from the server; how the transport ended when it has. Frames this client
    /// does not know (from a newer server) are skipped, never an end.
    fn recv(&mut self) -> impl Future<Output = Result<ServerFrame, Ended>> + Send;
}

/// The WebSocket transport (`/api/ws`, subprotocol `tidings.v1`).
struct WebSocketTransport {
    socket: Socket,
    /// The server pings this often; two silent intervals mean the connection is dead.
    heartbeat: Duration,
    /// When anything (pings included) was last heard.
    last_heard: Instant,
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
                Some(Ok(WsMessage::Text(text))) => match serde_json::from_str(text.as_str()) {
                    Ok(frame) => return Ok(frame),
                    Err(err) => {
                        // A frame from a newer server: skip it rather than drop the connection.
                        tracing::debug!(%err, "skipping a frame this client does not know");
                    }
                },
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

/// How long the handshake and the hello may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait before resending after a transient refusal without a hint.
const TRANSIENT_RETRY: Duration = Duration::from_secs(1);

/// How one connection ended.
enum Ended {
    /// Try again after a backoff delay.
    Retry,
    /// The session is over: lock.
    Locked(LockCause),
}

pub(crate) async fn run(
    inner: Arc<Inner>,
    api: Api,
    token: String,
    cancel: CancellationToken,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut backoff = Backoff::new(inner.options.backoff_base, inner.options.backoff_cap);
    loop {
        inner.set_state(ConnectionState::Connecting);
        let ended = tokio::select! {
            _ = cancel.cancelled() => return,
            ended = connection(&inner, &api, &token, &mut backoff, &mut commands) => ended,
        };
        match ended {
            Ended::Locked(cause) => {
                inner.lock(cause).await;
                return;
            }
            Ended::Retry => {}
        }
        let delay = backoff.next_delay();
        let retry_at = now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        inner.set_state(ConnectionState::Offline {
            retry_at,
            attempt: backoff.attempts(),
        });
        tracing::debug!(?delay, "chat channel down; retrying");
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = sleep(delay) => {}
            _ = inner.reconnect_now.notified() => {}
        }
    }
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

/// Opens the WebSocket transport. Until the hello says otherwise, the connection counts as dead
/// after `CONNECT_TIMEOUT` of silence.
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
    match timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request)).await {
        Ok(Ok((socket, _))) => Ok(WebSocketTransport {
            socket,
            heartbeat: CONNECT_TIMEOUT / 2,
            last_heard: Instant::now(),
        }),
        Ok(Err(WsError::Http(response))) if response.status() == 401 => {
            Err(Ended::Locked(LockCause::Rejected))
        }
        Ok(Err(err)) => {
            tracing::debug!(%err, "chat connect failed");
            Err(Ended::Retry)
        }
        Err(_) => Err(Ended::Retry),
    }
}

/// One connection, from handshake to whatever ends it.
async fn connection(
    inner: &Arc<Inner>,
    api: &Api,
    token: &str,
    backoff: &mut Backoff,
    commands: &mut mpsc::Receiver<Command>,
) -> Ended {
    let mut transport = match connect(api, token).await {
        Ok(transport) => transport,
        Err(ended) => return ended,
    };
    let hello = match transport.recv().await {
        Ok(ServerFrame::Hello(hello)) => hello,
        Ok(_) => return Ended::Retry,
        Err(ended) => return ended,
    };
    transport.heartbeat = Duration::from_millis(hello.heartbeat_ms.max(100));
    serve(inner, transport, hello, backoff, commands).await
}

/// The one loop over a transport that has said hello: frames in, the outbox and commands out.
async fn serve<T: Transport>(
    inner: &Arc<Inner>,
    transport: T,
    hello: Hello,
    backoff: &mut Backoff,
    commands: &mut mpsc::Receiver<Command>,
) -> Ended {
    backoff.reset();
    let mut conn = Conn {
        inner: inner.clone(),
        transport,
        in_flight: HashSet::new(),
        retry_at: None,
        caught_up: false,
    };
    if let Err(ended) = conn.on_hello(hello).await {
        return ended;
    }
    inner.set_state(ConnectionState::Online);
    loop {
        let retry_at = conn.retry_at;
        let result = tokio::select! {
            received = conn.transport.recv() => match received {
                Ok(frame) => conn.on_frame(frame).await,
                Err(ended) => return ended,
            },
            _ = inner.outbox_wake.notified() => conn.send_outbox().await,
            _ = sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {
                conn.retry_at = None;
                conn.send_outbox().await
            }
            Some(command) = commands.recv() => match command {
                Command::Typing(room) => conn.send(&ClientFrame::Typing { room }).await,
            },
        };
        if let Err(ended) = result {
            return ended;
        }
    }
}

/// What a close code means for the client.
fn closed(code: u16) -> Ended {
    match code {
        close::SESSION_EXPIRED => Ended::Locked(LockCause::Expired),
        close::SESSION_REVOKED => Ended::Locked(LockCause::Revoked),
        // The session ended, but the server did not say how.
        close::POLICY => Ended::Locked(LockCause::Rejected),
        _ => Ended::Retry,
    }
}

struct Conn<C> {
    inner: Arc<Inner>,
    transport: C,
    /// Outbox entries sent on this connection and not yet answered.
    in_flight: HashSet<String>,
    /// When to resend after a rate limit or a transient refusal.
    retry_at: Option<Instant>,
    /// The `sync` of this connection has been answered to the end. From then on the server sends
    /// every new message of the user's rooms in id order, so each one received means everything
    /// up to it has been; before that, a live message can be far ahead of the sync's pages and
    /// must not move the cursor.
    caught_up: bool,
}

impl<C: Transport> Conn<C> {
    async fn send(&mut self, frame: &ClientFrame) -> Result<(), Ended> {
        self.transport.send(frame).await
    }

    async fn on_hello(&mut self, hello: Hello) -> Result<(), Ended> {
        let rooms = hello.rooms.clone();
        let saved = rooms.clone();
        self.local(move |s| s.replace_rooms(&saved)).await?;
        self.inner.emit(ClientEvent::Rooms(rooms));
        self.inner.emit(ClientEvent::Online(hello.online));
        let since = self.local(|s| s.cursor()).await?;
        self.send(&ClientFrame::Sync { since }).await?;
        self.send_outbox().await
    }

    async fn local<T, F>(&self, f: F) -> Result<T, Ended>
    where
        T: Send + 'static,
        F: FnOnce(&crate::store::LocalStore) -> Result<T, crate::store::LocalError>
            + Send
            + 'static,
    {
        self.inner.local(f).await.map_err(|err| {
            tracing::error!(%err, "local store failed; reconnecting");
            Ended::Retry
        })
    }

    /// Sends every outbox entry not already in flight on this connection, oldest first.
    async fn send_outbox(&mut self) -> Result<(), Ended> {
        if self.retry_at.is_some() {
            return Ok(());
        }
        let outbox = self.local(|s| s.outbox()).await?;
        for outgoing in outbox {
            if self.in_flight.contains(&outgoing.client_id) {
                continue;
            }
            self.send(&ClientFrame::Send {
                room: outgoing.room,
                client_id: outgoing.client_id.clone(),
                body: outgoing.body,
            })
            .await?;
            self.in_flight.insert(outgoing.client_id);
        }
        Ok(())
    }

    async fn on_frame(&mut self, frame: ServerFrame) -> Result<(), Ended> {
        let me = self.inner.me().map(|u| u.id).unwrap_or_default();
        match frame {
            ServerFrame::Message(message) => {
                let room = message.room;
                let saved = message.clone();
                let known = self.local(move |s| Ok(s.room(room)?.is_some())).await?;
                if !known {
                    // A room we did not know: someone opened a DM with us, or we joined
                    // elsewhere. Learn it before saving its messages.
                    if let Err(err) = self.inner.refresh_rooms().await {
                        tracing::warn!(%err, "could not refresh rooms");
                    }
                }
                let received = self.caught_up.then_some(message.id);
                let new = self
                    .local(move |s| {
                        let new = s.save_messages(&[saved], me)?;
                        if let Some(id) = received {
                            s.set_cursor(id)?;
                        }
                        Ok(new)
                    })
                    .await?;
                if new > 0 {
                    self.inner.emit(ClientEvent::Message(message));
                }
            }
            ServerFrame::Ack {
                client_id,
                id,
                room,
            } => {
                self.in_flight.remove(&client_id);
                let removed = client_id.clone();
                self.local(move |s| s.remove_outgoing(&removed)).await?;
                self.inner.emit(ClientEvent::Sent {
                    client_id,
                    room,
                    message_id: id,
                });
            }
            ServerFrame::Error(error) => {
                let Some(client_id) = error.client_id.clone() else {
                    tracing::warn!(code = ?error.code, message = %error.message, "server error");
                    return Ok(());
                };
                self.in_flight.remove(&client_id);
                match error.code {
                    ErrorCode::RateLimited
                    | ErrorCode::Overloaded
                    | ErrorCode::Storage
                    | ErrorCode::Internal
                    | ErrorCode::Unknown => {
                        let wait = error
                            .retry_after_ms
                            .map(Duration::from_millis)
                            .unwrap_or(TRANSIENT_RETRY);
                        let noted = client_id.clone();
                        let why = error.message.clone();
                        self.local(move |s| s.note_attempt(&noted, Some(&why)))
                            .await?;
                        self.retry_at = Some(Instant::now() + wait);
                    }
                    ErrorCode::Unauthorized => return Err(Ended::Locked(LockCause::Rejected)),
                    _ => {
                        // Refused for good: keeping it would resend it forever.
                        let removed = client_id.clone();
                        let outgoing = self
                            .local(move |s| {
                                let room = s
                                    .outbox()?
                                    .into_iter()
                                    .find(|o| o.client_id == removed)
                                    .map(|o| o.room);
                                s.remove_outgoing(&removed)?;
                                Ok(room)
                            })
                            .await?;
                        self.inner.emit(ClientEvent::SendFailed {
                            client_id,
                            room: outgoing.unwrap_or_default(),
                            error,
                        });
                    }
                }
            }
            ServerFrame::Synced {
                latest_id,
                has_more,
            } => {
                // Everything up to `latest_id` has now been sent: this page and the ones before
                // it, from the cursor the sync started at.
                self.local(move |s| s.set_cursor(latest_id)).await?;
                if has_more {
                    self.send(&ClientFrame::Sync { since: latest_id }).await?;
                } else {
                    self.caught_up = true;
                    self.inner.emit(ClientEvent::Synced { latest_id });
                }
            }
            ServerFrame::Typing { room, user } => {
                if user.id != me {
                    self.inner.emit(ClientEvent::Typing { room, user });
                }
            }
            ServerFrame::Presence { user, status } => {
                self.inner.emit(ClientEvent::Presence { user, status });
            }
            ServerFrame::Read {
                room, message_id, ..
            } => {
                self.local(move |s| s.set_read(room, message_id, me))
                    .await?;
                self.inner.emit(ClientEvent::Read { room, message_id });
            }
            ServerFrame::Hello(_) | ServerFrame::History(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause(code: u16) -> Option<LockCause> {
        match closed(code) {
            Ended::Locked(cause) => Some(cause),
            Ended::Retry => None,
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
}
