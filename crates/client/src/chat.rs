//! The chat channel, client side: one supervisor task per live session that keeps a transport
//! open to the server, reconnecting with backoff, and after every (re)connect syncs from the last
//! message id in the cache and sends the outbox.
//!
//! The transport is a rung of a ladder (`TransportKind::LADDER`): the WebSocket, then SSE, then
//! HTTP streaming, long-polling and short polling. A rung that cannot carry the channel here
//! (the upgrade refused, the first frame held back by a buffering proxy) sends the client one rung
//! down, as long as the server answers plain HTTP at all; while below the top, the client probes
//! the rungs above now and then and climbs back when one works. Every move resumes from the
//! cursor and resends the outbox under the same client ids, so it loses and duplicates nothing.
//! A pinned transport ([`ClientOptions::transport`](crate::ClientOptions)) is the whole ladder.
//!
//! A [`Transport`] only carries frames. Decoding what the frames mean, the cursor, the outbox and
//! the events the UI hears are this module's one loop, whatever the transport. On the HTTP rungs
//! the same loop also does what the event feed does over SSE (which such a network breaks too):
//! the session's status and lock arrive as frames, and new messages raise the notifications.
//!
//! Guarantees: an outbox message stays in the outbox until the server acks it (so it survives
//! any disconnect or restart) and carries its client id on every attempt (so the server stores it
//! once); messages are saved to the cache before the UI hears of them, and a message already in
//! the cache is not announced twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tidings_proto::v1::{
    ClientFrame, ErrorCode, Hello, LockReason, MessageAlert, ServerFrame, TransportKind, preview,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use crate::api::Api;
use crate::backoff::Backoff;
use crate::client::{Command, Inner, now_ms};
use crate::error::ClientError;
use crate::event::{ClientEvent, ConnectionState, LockCause};
use crate::transport::{AnyTransport, Ended, Transport};

/// Wait before resending after a transient refusal without a hint.
const TRANSIENT_RETRY: Duration = Duration::from_secs(1);

pub(crate) async fn run(
    inner: Arc<Inner>,
    api: Api,
    token: String,
    cancel: CancellationToken,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut backoff = Backoff::new(inner.options.backoff_base, inner.options.backoff_cap);
    let mut rung = 0;
    // The certificate last told to the UI as refused, so each is told once.
    let mut refused_told: Option<String> = None;
    loop {
        // Read anew for every connection: the user may pin a transport, or unpin it, meanwhile.
        let ladder = ladder(&inner).await;
        rung = rung.min(ladder.len() - 1);
        inner.set_state(ConnectionState::Connecting);
        let ended = tokio::select! {
            _ = cancel.cancelled() => return,
            ended = connection(&inner, &api, &token, &ladder, rung, &mut backoff, &mut commands) => ended,
        };
        match ended {
            Ended::Locked(cause) => {
                inner.lock(cause).await;
                return;
            }
            Ended::Climb(better) => {
                tracing::info!(
                    transport = ladder[better].label(),
                    "a better transport works; moving up"
                );
                rung = better;
                continue;
            }
            Ended::Broken if rung + 1 < ladder.len() => {
                // Move down only when the server answers at all: a server that is down breaks
                // every rung, and is waited for on this one.
                if api.transports().await.is_ok() {
                    rung += 1;
                    tracing::info!(
                        transport = ladder[rung].label(),
                        "transport does not get through; moving down"
                    );
                    continue;
                }
            }
            Ended::Broken | Ended::Retry => {}
        }
        // Refused for its certificate (changed since it was pinned, say): the UI shows it to
        // compare, and `Client::trust_certificate` reconnects with it.
        if let Some(ClientError::UntrustedCertificate {
            server,
            fingerprint,
            reason,
            pinned,
        }) = api.refused()
            && refused_told.as_ref() != Some(&fingerprint)
        {
            tracing::warn!(%server, %fingerprint, %reason, "the server's certificate is not trusted");
            refused_told = Some(fingerprint.clone());
            inner.emit(ClientEvent::Untrusted {
                server,
                fingerprint,
                reason,
                pinned,
            });
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

/// The rungs to try: the transport pinned by the options (a CLI flag) or in the settings, else
/// the whole ladder.
async fn ladder(inner: &Arc<Inner>) -> Vec<TransportKind> {
    let pinned = match inner.options.transport {
        Some(kind) => Some(kind),
        None => inner.local(|s| s.transport()).await.ok().flatten(),
    };
    match pinned.filter(|kind| TransportKind::LADDER.contains(kind)) {
        Some(kind) => vec![kind],
        None => TransportKind::LADDER.to_vec(),
    }
}

/// One connection on `ladder[rung]`, from opening to whatever ends it.
async fn connection(
    inner: &Arc<Inner>,
    api: &Api,
    token: &str,
    ladder: &[TransportKind],
    rung: usize,
    backoff: &mut Backoff,
    commands: &mut mpsc::Receiver<Command>,
) -> Ended {
    let kind = ladder[rung];
    let cursor = match inner.local(|s| s.cursor()).await {
        Ok(cursor) => cursor,
        Err(err) => {
            tracing::error!(%err, "local store failed");
            return Ended::Retry;
        }
    };
    let opened = timeout(inner.options.first_frame_timeout, async {
        let mut transport = AnyTransport::open(kind, api, token, cursor).await?;
        match transport.recv().await? {
            ServerFrame::Hello(hello) => Ok((transport, hello)),
            _ => Err(Ended::Retry),
        }
    })
    .await;
    let (mut transport, hello) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(ended)) => return ended,
        // Nothing within the time: held back on the way.
        Err(_) => return Ended::Broken,
    };
    transport.set_heartbeat(Duration::from_millis(hello.heartbeat_ms.max(100)));
    // Over HTTP the feed's SSE is as likely broken as the WebSocket: the chat takes its place.
    inner.set_feed_rides_chat(kind != TransportKind::WebSocket);
    let climb = climb(inner, api, token, &ladder[..rung]);
    serve(inner, transport, kind, hello, backoff, commands, climb).await
}

/// Resolves with the best rung of `above` that works, probing them now and then; never when
/// there is none.
async fn climb(inner: &Arc<Inner>, api: &Api, token: &str, above: &[TransportKind]) -> usize {
    if above.is_empty() {
        return std::future::pending().await;
    }
    loop {
        sleep(inner.options.probe_every).await;
        for (rung, kind) in above.iter().enumerate() {
            if probe(api, token, *kind, inner.options.first_frame_timeout).await {
                return rung;
            }
        }
    }
}

/// Whether `kind` delivers its first frame now. The probe is a real connection, closed again.
async fn probe(api: &Api, token: &str, kind: TransportKind, within: Duration) -> bool {
    let attempt = timeout(within, async {
        let mut transport = AnyTransport::open(kind, api, token, i64::MAX).await.ok()?;
        matches!(transport.recv().await, Ok(ServerFrame::Hello(_))).then_some(())
    });
    matches!(attempt.await, Ok(Some(())))
}

/// The one loop over a transport that has said hello: frames in, the outbox and commands out,
/// until it ends or `climb` finds a better transport.
async fn serve<T: Transport>(
    inner: &Arc<Inner>,
    transport: T,
    kind: TransportKind,
    hello: Hello,
    backoff: &mut Backoff,
    commands: &mut mpsc::Receiver<Command>,
    climb: impl Future<Output = usize>,
) -> Ended {
    backoff.reset();
    let mut conn = Conn {
        inner: inner.clone(),
        transport,
        alerts: kind != TransportKind::WebSocket,
        in_flight: HashSet::new(),
        retry_at: None,
        caught_up: false,
    };
    if let Err(ended) = conn.on_hello(hello).await {
        return ended;
    }
    inner.set_state(ConnectionState::Online { transport: kind });
    tokio::pin!(climb);
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
            better = &mut climb => return Ended::Climb(better),
            // The transport setting changed: start over at the top of the new ladder.
            _ = inner.repick.notified() => return Ended::Climb(0),
        };
        if let Err(ended) = result {
            return ended;
        }
    }
}

struct Conn<C> {
    inner: Arc<Inner>,
    transport: C,
    /// New messages raise notifications here (the feed is not running: see the module docs).
    alerts: bool,
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
                reply_to: outgoing.reply_to,
                attachments: outgoing.attachments.into_iter().map(|a| a.id).collect(),
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
                    let alert = self.alerts.then(|| message.clone());
                    self.inner.emit(ClientEvent::Message(message));
                    if let Some(message) = alert {
                        self.alert(&message, me).await;
                    }
                }
            }
            ServerFrame::Changed { id, message } => {
                let received = self.caught_up.then_some(id);
                let changed = message.clone();
                self.local(move |s| {
                    s.apply_change(&changed)?;
                    if let Some(id) = received {
                        s.set_cursor(id)?;
                    }
                    Ok(())
                })
                .await?;
                // On the HTTP rungs the chat channel does the feed's work.
                if self.alerts && message.deleted_at.is_some() {
                    crate::feed::withdraw(&self.inner, message.id).await;
                }
                self.inner.emit(ClientEvent::Changed(message));
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
                    self.local(move |s| s.start_feed_cursor(latest_id)).await?;
                    self.inner.feed_cursor_started.notify_waiters();
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
            ServerFrame::Session(status) => self.inner.emit(ClientEvent::Session(status)),
            ServerFrame::Lock(lock) => {
                return Err(Ended::Locked(match lock.reason {
                    LockReason::Expired => LockCause::Expired,
                    LockReason::Revoked => LockCause::Revoked,
                }));
            }
            ServerFrame::Hello(_) | ServerFrame::History(_) => {}
        }
        Ok(())
    }

    /// What the feed would have done for `message`: a notification (through the same policy),
    /// once, and the feed's cursor moved past it so that the feed, once back, does not raise it
    /// again.
    async fn alert(&self, message: &tidings_proto::v1::Message, me: i64) {
        let id = message.id;
        let seen = self
            .local(|s| s.feed_cursor())
            .await
            .ok()
            .flatten()
            .and_then(|c| c.split(':').next().and_then(|c| c.parse::<i64>().ok()));
        if seen.is_some_and(|seen| id <= seen) {
            return;
        }
        let alert = MessageAlert {
            room: message.room,
            id,
            author: message.author.clone(),
            preview: preview(&message.body),
            sent_at: message.sent_at,
            mentions_you: message.mentions.contains(&me),
        };
        let _ = self
            .local(move |s| s.set_feed_cursor(&id.to_string()))
            .await;
        crate::feed::notify(&self.inner, &alert).await;
    }
}
