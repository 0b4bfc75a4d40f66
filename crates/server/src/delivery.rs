//! The one delivery path: what a connection is sent, whatever transport carries it.
//!
//! A [`Subscription`] is a connection's place in the hub together with the rules every transport
//! follows, kept here once instead of in each transport:
//!
//! - it registers with the hub *before* anything is read for the connection, so nothing
//!   committed from then on can be missed — it is either in a replay or in the queue;
//! - [`Subscription::replay`] reads the messages after a cursor from the store (the chat's
//!   `sync`, the feed's `Last-Event-ID`), and [`Subscription::next`] hands out the hub's live
//!   events; between them every message goes out at most once and in id order (`high_water`);
//! - it watches the session: a push from the hub when it is revoked, a timer at its nearest
//!   deadline (expiry, idle timeout), and, for transports that show it, a status every
//!   `feed_interval` — handed out as [`Event::Status`] and [`Event::Lock`];
//! - a full queue ends it as [`Event::Lagging`]: the client resumes from its cursor.
//!
//! What the hub queues is transport-neutral ([`Live`]) and encoded once for everyone: a message
//! carries its chat frame, its two feed alerts (with and without `mentions_you`) and, made when
//! a stream first asks, its chunk in each stream format, so each transport's encoder only picks
//! bytes.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use tidings_proto::v1::{
    EVENT_MESSAGE, EVENT_RETRACT, LockReason, Message, MessageAlert, MessageId, Retract,
    ServerFrame, SessionState, SessionStatus, UserId, preview,
};
use tidings_store::{Session, StoreError};
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep, interval_at, sleep_until};
use tungstenite::Utf8Bytes;
use tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::app::AppState;
use crate::auth;
use crate::batch::Format;
use crate::error::ApiError;
use crate::hub::{Kick, Lane, Listener, Presence, Registration};
use crate::metrics::Counted;
use crate::outlet::Outlet;
use crate::{sse, wire, ws};

/// An item of a connection's queue, shared by every recipient.
// Each lives in an `Arc` of its own: boxing the message would cost an allocation per message to
// save a signal's few hundred bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Live {
    /// A committed message.
    Message(Published),
    /// Presence, typing or a read marker: for the chat transports only.
    Signal(ChatFrame),
}

impl Live {
    /// The message's id; `None` for a signal.
    pub fn message_id(&self) -> Option<MessageId> {
        match self {
            Live::Message(published) => Some(published.id()),
            Live::Signal(_) => None,
        }
    }

    /// The chat frame.
    pub fn chat(&self) -> &ChatFrame {
        match self {
            Live::Message(published) => &published.frame,
            Live::Signal(frame) => frame,
        }
    }

    /// The chat frame's JSON.
    pub fn text(&self) -> &Utf8Bytes {
        &self.chat().text
    }

    /// The chat frame as a whole WebSocket frame.
    pub fn wire(&self) -> &Bytes {
        &self.chat().wire
    }
}

/// What a connection's socket is sent of a live item, written straight to it (see
/// [`crate::outlet`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The chat frame, as a WebSocket frame.
    Chat,
    /// A message's feed event for this user (the feed takes no signals).
    Alert(UserId),
    /// A batch of the chat's HTTP stream in this format: a message's, shared, or a signal's,
    /// made for the connection, as its batch carries the connection's cursor.
    Stream(Format),
}

impl Form {
    /// The bytes of `live` in this form shared by every connection, if it has any (none for
    /// what is made for each connection: [`Form::made`]).
    #[inline]
    pub fn bytes<'a>(&self, live: &'a Live) -> Option<&'a Bytes> {
        match (self, live) {
            (Form::Chat, live) => Some(live.wire()),
            (Form::Alert(user), Live::Message(published)) => Some(published.alert_for(*user)),
            (Form::Stream(format), Live::Message(published)) => Some(published.stream(*format)),
            (Form::Alert(_) | Form::Stream(_), Live::Signal(_)) => None,
        }
    }

    /// Whether any of `items` has bytes made for each connection in this form: a signal's
    /// batch on a stream, which carries the connection's cursor ([`Form::made`]).
    #[inline]
    pub fn makes_any(&self, items: &[Arc<Live>]) -> bool {
        match self {
            Form::Stream(_) => items.iter().any(|item| item.message_id().is_none()),
            Form::Chat | Form::Alert(_) => false,
        }
    }

    /// `live`'s bytes made for a connection whose cursor (every message up to it written) is
    /// `cursor`, if this form makes them per connection.
    pub fn made(&self, live: &Live, cursor: MessageId) -> Option<Bytes> {
        match (self, live) {
            (Form::Stream(format), Live::Signal(frame)) => {
                Some(format.encode(cursor, std::slice::from_ref(&frame.text)))
            }
            _ => None,
        }
    }
}

/// A server frame of the chat, encoded once: its JSON (the WebSocket's text payload, and what
/// the HTTP transports carry) within the whole WebSocket frame that carries it, ready for a
/// socket (see [`crate::outlet`]).
#[derive(Debug)]
pub struct ChatFrame {
    pub text: Utf8Bytes,
    pub wire: Bytes,
}

impl ChatFrame {
    pub fn new(frame: &ServerFrame) -> ChatFrame {
        let text = encode(frame);
        let wire = Bytes::from(ws::encode(OpCode::Data(Data::Text), text.as_bytes()));
        let head = wire.len() - text.len();
        // The payload is the JSON, valid UTF-8 as it was.
        let text = Utf8Bytes::try_from(wire.slice(head..)).unwrap_or_default();
        ChatFrame { text, wire }
    }
}

/// A committed message (or a change to one), encoded once for every transport.
#[derive(Debug)]
pub struct Published {
    id: MessageId,
    /// Who it mentions, ascending.
    mentions: Vec<UserId>,
    /// The chat frame (`ServerFrame::Message`).
    pub frame: ChatFrame,
    /// The feed's `message` event, without and with `mentions_you` (for a change: its `retract`
    /// when it deleted the message, else nothing).
    alerts: [Bytes; 2],
    /// Its batch in each stream format (`Format as usize`), its id the cursor: made when a
    /// stream's outlet first takes it.
    streams: [OnceLock<Bytes>; 3],
}

impl Published {
    pub fn new(message: Message) -> Published {
        let alert = |mentions_you| {
            let alert = MessageAlert {
                room: message.room,
                id: message.id,
                author: message.author.clone(),
                preview: preview(&message.body),
                sent_at: message.sent_at,
                mentions_you,
            };
            sse::event(EVENT_MESSAGE, Some(message.id), &alert)
        };
        let alerts = [alert(false), alert(true)];
        let (id, mentions) = (message.id, message.mentions.clone());
        Published {
            id,
            mentions,
            frame: ChatFrame::new(&ServerFrame::Message(message)),
            alerts,
            streams: Default::default(),
        }
    }

    /// Entry `id` of the log changed `message` (now as given). The feed hears of a deletion
    /// only, as a `retract` of its alert.
    pub fn changed(id: MessageId, message: Message) -> Published {
        let retract = if message.deleted_at.is_some() {
            let retract = Retract {
                room: message.room,
                id: message.id,
            };
            sse::event(EVENT_RETRACT, Some(id), &retract)
        } else {
            Bytes::new()
        };
        Published {
            id,
            mentions: Vec::new(),
            frame: ChatFrame::new(&ServerFrame::Changed { id, message }),
            alerts: [retract.clone(), retract],
            streams: Default::default(),
        }
    }

    /// A replayed entry of the log.
    pub fn replayed(entry: tidings_store::Replayed) -> Published {
        match entry {
            tidings_store::Replayed::Message(message) => Published::new(wire::message(message)),
            tidings_store::Replayed::Changed { id, message } => {
                Published::changed(id, wire::message(message))
            }
        }
    }

    pub fn id(&self) -> MessageId {
        self.id
    }

    /// Its batch in `format`, alone, with its id as the cursor.
    pub fn stream(&self, format: Format) -> &Bytes {
        self.streams[format as usize]
            .get_or_init(|| format.encode(self.id, std::slice::from_ref(&self.frame.text)))
    }

    /// The feed event for `user`: with `mentions_you` when the message mentions them.
    pub fn alert_for(&self, user: UserId) -> &Bytes {
        &self.alerts[usize::from(self.mentions.contains(&user))]
    }
}

/// Encodes a server frame as JSON: the WebSocket's text payload.
pub fn encode(frame: &ServerFrame) -> Utf8Bytes {
    // Serializing these types cannot fail: no maps with non-string keys, no fallible Serialize.
    Utf8Bytes::from(serde_json::to_string(frame).unwrap_or_default())
}

/// What a subscription hands its transport.
#[derive(Debug)]
pub enum Event {
    /// A message newer than everything handed out before, or a signal.
    Live(Arc<Live>),
    /// The session's status (on `feed_interval`, and when a deadline passes without ending it).
    Status(SessionStatus),
    /// The session has ended; nothing follows.
    Lock(LockReason),
    /// The connection fell too far behind and must end; the client resumes from its cursor.
    Lagging,
    /// A newer connection of the session took this one's place (a newer poll).
    Superseded,
}

/// What a transport wants from its subscription.
#[derive(Debug, Clone, Copy)]
pub struct Wants {
    /// Presence, typing and read markers.
    pub signals: bool,
    /// How it counts for its user's presence.
    pub presence: Presence,
    /// At most this many of the session's connections in the lane at once.
    pub per_session: Option<(Lane, usize)>,
    /// The session's status this often.
    pub status_every: Option<Duration>,
    /// How it is counted in `tidings_connections`: `websocket`, `feed`, `stream` or `poll`.
    pub transport: &'static str,
}

/// The messages after a cursor, from the store.
#[derive(Debug)]
pub struct Replay {
    /// Ascending; at most the limit asked for.
    pub messages: Vec<Arc<Live>>,
    /// The newest message id when the replay was read.
    pub latest_id: MessageId,
    /// More messages follow the last one.
    pub has_more: bool,
    /// The cursor is not one this server can resume from: negative (unreadable), or past its
    /// newest message (another server's).
    pub out_of_reach: bool,
}

impl Replay {
    /// The id the client has everything up to once it has this replay: the last message's when
    /// more follow, else the newest on the server.
    pub fn synced_to(&self) -> MessageId {
        match self.messages.last().and_then(|m| m.message_id()) {
            Some(last) if self.has_more => last,
            Some(last) => last.max(self.latest_id),
            None => self.latest_id,
        }
    }
}

/// A read of the session from the store, in flight.
type SessionRead = Pin<Box<dyn Future<Output = Result<Option<Session>, StoreError>> + Send>>;

/// A connection's subscription: see the module documentation.
pub struct Subscription {
    state: AppState,
    user: UserId,
    session: Session,
    registration: Registration,
    /// Every message up to here has been handed out (or the client has it); live messages at or
    /// below it are skipped.
    high_water: MessageId,
    /// The session's status this often (`Wants::status_every`), next at `status_at`.
    status_every: Option<Duration>,
    status_at: Instant,
    /// Fires at the sooner of the session's nearest deadline and the next status: one timer
    /// per connection, however many reasons it has to look at the session.
    timer: Pin<Box<Sleep>>,
    /// The session's read the timer started, until it answers.
    reading: Option<SessionRead>,
    /// Counted as an open connection while it lives.
    _counted: Counted,
}

impl Subscription {
    /// Registers `session`'s connection with the hub; with the outlet of its socket, the
    /// fan-out writes live items to it itself, in `form`, while the outlet lets it.
    pub fn open(
        state: &AppState,
        user: &tidings_store::User,
        session: Session,
        wants: Wants,
        outlet: Option<(Arc<Outlet>, Form)>,
    ) -> Self {
        let listener = Listener {
            signals: wants.signals,
            presence: wants.presence,
            per_session: wants.per_session,
        };
        let registration = state
            .hub
            .register(&wire::user_ref(user), session.id, listener, outlet);
        let now = Instant::now();
        let mut subscription = Subscription {
            _counted: state.metrics.connection(wants.transport),
            state: state.clone(),
            user: user.id,
            session,
            registration,
            high_water: 0,
            status_every: wants.status_every,
            status_at: wants.status_every.map_or(now, |every| now + every),
            timer: Box::pin(sleep_until(now)),
            reading: None,
        };
        let status =
            auth::session_status(&subscription.session, state.now_ms(), &state.config.session);
        subscription.arm(&status);
        subscription
    }

    pub fn user(&self) -> UserId {
        self.user
    }

    /// The session, as last read (the status reads it again).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session, to record activity in (`auth::touch`).
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Every message up to here has been handed out, or the client had it: its cursor.
    pub fn high_water(&self) -> MessageId {
        self.high_water
    }

    /// Up to `limit` messages after `cursor` in the user's rooms. Everything up to the last one
    /// (and up to `cursor`) then counts as handed out.
    pub async fn replay(&mut self, cursor: MessageId, limit: u32) -> Result<Replay, ApiError> {
        // A client that has everything up to the newest message published needs no read: the
        // store has nothing newer that will not also reach the queue (this subscription was
        // registered first, and publishing follows every commit).
        let known = self.state.hub.latest_id();
        if cursor == known {
            self.high_water = self.high_water.max(cursor);
            return Ok(Replay {
                messages: Vec::new(),
                latest_id: known,
                has_more: false,
                out_of_reach: false,
            });
        }
        let user = self.user;
        // The newest id first: ids are assigned in commit order, so every message up to it is
        // committed and the page read after it sees them all. (The other order could claim an id
        // committed between the two reads that the page lacks.)
        let store = &self.state.store;
        let latest_id = store.latest_message_id().await?;
        let rows = if cursor < 0 || cursor > latest_id {
            Vec::new()
        } else {
            store.messages_since(user, cursor, limit + 1).await?
        };
        let out_of_reach = cursor < 0 || cursor > latest_id;
        let has_more = rows.len() > limit as usize;
        let messages: Vec<Arc<Live>> = rows
            .into_iter()
            .take(limit as usize)
            .map(|row| Arc::new(Live::Message(Published::replayed(row))))
            .collect();
        let last = messages.last().and_then(|m| m.message_id()).unwrap_or(0);
        if !out_of_reach {
            self.high_water = self.high_water.max(cursor).max(last);
        }
        Ok(Replay {
            messages,
            latest_id,
            has_more,
            out_of_reach,
        })
    }

    /// Skips every message up to `latest`: the client starts over from there (the feed's
    /// `reset`).
    pub fn skip_to(&mut self, latest: MessageId) {
        self.high_water = self.high_water.max(latest);
    }

    /// The next event, or `None` once the server is shutting down (and what was queued before
    /// has been handed out).
    pub async fn next(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// [`Subscription::next`] as a poll: a connection's select loop then holds no future of its
    /// own for it, only a reference (every idle connection's state holds that loop).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        // A status read the timer started: its answer first.
        if let Some(reading) = &mut self.reading {
            let read = ready!(reading.as_mut().poll(cx));
            self.reading = None;
            return Poll::Ready(Some(self.status_of(read)));
        }
        // What is queued first, then the rest, in this order: a wake-up for a delivery then
        // looks at nothing else. The queue is bounded, so nothing behind it waits long; what it
        // holds was queued in order before any kick, so handing it out first loses nothing.
        while let Poll::Ready(live) = self.registration.queue().poll_pop(cx) {
            if self.fresh(&live) {
                return Poll::Ready(Some(Event::Live(live)));
            }
        }
        if let Poll::Ready(kick) = self.registration.kick().poll_kicked(cx) {
            return Poll::Ready(match kick {
                Kick::Locked(reason) => Some(Event::Lock(reason)),
                Kick::Lagging => {
                    self.state.metrics.queue_kicks.inc();
                    Some(Event::Lagging)
                }
                Kick::Superseded => Some(Event::Superseded),
                Kick::ShuttingDown => None,
            });
        }
        // A deadline or the status: either way the session is read, and the timer set again.
        // The read is kept here until it answers, so a caller that stops polling meanwhile (its
        // select took another branch) gets it next time.
        ready!(self.timer.as_mut().poll(cx));
        self.status_due();
        let mut reading = self.read_session();
        match reading.as_mut().poll(cx) {
            Poll::Ready(read) => Poll::Ready(Some(self.status_of(read))),
            Poll::Pending => {
                self.reading = Some(reading);
                Poll::Pending
            }
        }
    }

    /// The newest message id published, then everything queued up to `max` items: when the
    /// queue is emptied, the subscription (and so its client) has every message of its user up
    /// to that id — a cursor that may pass messages of other rooms.
    pub fn drain(&mut self, max: usize) -> (Vec<Arc<Live>>, Option<MessageId>) {
        let known = self.state.hub.latest_id();
        let mut drained = Vec::new();
        while drained.len() < max {
            match self.try_next() {
                Some(live) => drained.push(live),
                // A kicked connection may have lost a message to its full queue, and one whose
                // items go through a fan-out task may not have them queued yet: no claim.
                None if self.registration.kick().is_kicked() || self.registration.fanned_out() => {
                    return (drained, None);
                }
                None => {
                    self.high_water = self.high_water.max(known);
                    return (drained, Some(known));
                }
            }
        }
        (drained, None)
    }

    /// Whether nothing is queued.
    pub fn queue_is_empty(&self) -> bool {
        self.registration.queue().is_empty()
    }

    /// A live item already queued, if any (for writing a batch at once).
    pub fn try_next(&mut self) -> Option<Arc<Live>> {
        while let Some(live) = self.registration.queue().try_pop() {
            if self.fresh(&live) {
                return Some(live);
            }
        }
        None
    }

    /// Whether `live` goes out: a message only when newer than everything handed out before.
    fn fresh(&mut self, live: &Live) -> bool {
        match live.message_id() {
            Some(id) if id <= self.high_water => false,
            Some(id) => {
                self.high_water = id;
                true
            }
            None => true,
        }
    }

    /// Whether the status is due (`Wants::status_every`), the next one then set a period on:
    /// for a transport that looks between other work, as [`Subscription::next`] hands out the
    /// queue first. [`Subscription::status`] reads it. As tokio's `Interval` with
    /// `MissedTickBehavior::Delay`: a status that comes late (by more than a few milliseconds)
    /// moves the ones after it.
    pub fn status_due(&mut self) -> bool {
        let now = Instant::now();
        match self.status_every {
            Some(every) if self.status_at <= now => {
                let late = now > self.status_at + Duration::from_millis(5);
                self.status_at = if late { now } else { self.status_at } + every;
                true
            }
            _ => false,
        }
    }

    /// Reads the session: its status, or the lock when it has ended.
    pub async fn status(&mut self) -> Event {
        let read = self.read_session().await;
        self.status_of(read)
    }

    /// The store's read of the session, owning what it needs.
    fn read_session(&self) -> SessionRead {
        let state = self.state.clone();
        let id = self.session.id;
        Box::pin(async move { state.store.session(id).await })
    }

    /// The status (or the lock) the store's read of the session comes to.
    fn status_of(&mut self, read: Result<Option<Session>, StoreError>) -> Event {
        let session = match read {
            Ok(Some(session)) => session,
            Ok(None) => return Event::Lock(LockReason::Revoked),
            Err(err) => {
                tracing::warn!(%err, "could not read the session; keeping the last status");
                let status = auth::session_status(
                    &self.session,
                    self.state.now_ms(),
                    &self.state.config.session,
                );
                self.arm(&status);
                return Event::Status(status);
            }
        };
        self.session = session;
        let status = auth::session_status(
            &self.session,
            self.state.now_ms(),
            &self.state.config.session,
        );
        match status.state {
            SessionState::Expired => Event::Lock(LockReason::Expired),
            SessionState::Revoked => Event::Lock(LockReason::Revoked),
            SessionState::Active | SessionState::Expiring => {
                self.arm(&status);
                Event::Status(status)
            }
        }
    }

    /// Sets the timer to the session's nearest deadline, or to the next status if sooner.
    fn arm(&mut self, status: &SessionStatus) {
        let deadline = status.expires_at.min(status.idle_expires_at);
        let wait = u64::try_from(deadline - status.now).unwrap_or(0);
        let mut at = Instant::now() + Duration::from_millis(wait);
        if self.status_every.is_some() {
            at = at.min(self.status_at);
        }
        self.timer.as_mut().reset(at);
    }
}

/// Ticks every `period`, the first a period from now; a tick missed comes late, and the next a
/// period after it.
pub fn every(period: Duration) -> Interval {
    let mut ticks = interval_at(Instant::now() + period, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks
}

/// A keepalive every `keepalive` for a stream that sends the session's status every
/// `status_every`: none when the status comes as often, as it keeps proxies from closing the
/// stream by itself (an idle stream then holds one timer fewer).
pub fn keepalive(keepalive: Duration, status_every: Duration) -> Option<Interval> {
    (keepalive < status_every).then(|| every(keepalive))
}

/// Resolves at the next tick, or never without ticks.
pub async fn tick(ticks: &mut Option<Interval>) {
    match ticks {
        Some(ticks) => {
            ticks.tick().await;
        }
        None => std::future::pending().await,
    }
}
