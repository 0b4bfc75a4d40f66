//! The [`Client`]: one account on one server, online or not.
//!
//! A client owns its local store and, while it holds a token, two supervisor tasks: the chat
//! channel (`chat.rs`) and the event feed (`feed.rs`). Both reconnect by themselves with backoff;
//! either can lock the client when the server says the session ended. Locking cancels both and
//! drops the token; unlocking is a new login that starts them again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tidings_proto::v1::search::{DEFAULT_SEARCH_LIMIT, Query};
use tidings_proto::v1::{
    AdminOverview, CreateInvite, CreatedInvite, Me, MemberAction, MemberManaged, UserId,
};
use tidings_proto::v1::{
    Attachment, ErrorBody, ErrorCode, HistoryPage, Invite, Message, MessageId, Millis, Room,
    RoomId, RoomState, SearchHit, SearchResults, SessionId, SessionInfo, TransportKind, UserRef,
};
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::api::Api;
use crate::error::ClientError;
use crate::event::{ClientEvent, ConnectionState, LockCause};
use crate::notify::{Notifier, NotifyLevel, Policy};
use crate::store::{Account, Draft, LocalStore, Outgoing};
use crate::{chat, feed};

/// How a client is set up.
#[derive(Clone)]
pub struct ClientOptions {
    /// Shown in the server's sessions list ("laptop", "tidings-cli").
    pub device: String,
    /// Where OS notifications go; `None` raises none.
    pub notifier: Option<Arc<dyn Notifier>>,
    /// First reconnect delay ceiling; doubles per failure up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Carry the chat channel over this transport only; `None` climbs down the ladder from the
    /// WebSocket as far as the network needs (and back up when it allows).
    pub transport: Option<TransportKind>,
    /// Below the WebSocket, how often to try the transports above.
    pub probe_every: Duration,
    /// A transport that does not deliver its first frame within this does not get through.
    pub first_frame_timeout: Duration,
    /// The forward proxy (`http://host:port`) to reach the server through; `None` takes the
    /// one the environment names (`HTTP_PROXY`/`HTTPS_PROXY`, minus `NO_PROXY`), if any.
    pub proxy: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            device: "tidings".to_owned(),
            notifier: None,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            transport: None,
            probe_every: Duration::from_secs(60),
            first_frame_timeout: Duration::from_secs(10),
            proxy: None,
        }
    }
}

/// Frames the UI asks the live chat connection to send; dropped when offline.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    Typing(RoomId),
}

pub(crate) struct Inner {
    pub store: LocalStore,
    pub options: ClientOptions,
    events: broadcast::Sender<ClientEvent>,
    live: Mutex<Live>,
    /// Wakes the chat connection: the outbox has something new.
    pub outbox_wake: Notify,
    /// Wakes a waiting reconnect at once (the user asked to retry).
    pub reconnect_now: Notify,
    /// Ends the chat's connection so it picks its transport again (the setting changed).
    pub repick: Notify,
    pub policy: Mutex<Policy>,
    pub commands: Mutex<Option<mpsc::Sender<Command>>>,
    /// The chat channel carries what the feed would (on the HTTP transports): the feed waits.
    feed_rides_chat: watch::Sender<bool>,
    /// The chat's first sync has given the feed a cursor to start from.
    pub feed_cursor_started: Notify,
    /// The certificates the user pinned: server URL → fingerprint (as in the store).
    trusted: Mutex<HashMap<String, String>>,
    shutdown: CancellationToken,
}

#[derive(Default)]
struct Live {
    account: Option<Account>,
    session: Option<CancellationToken>,
    state: Option<ConnectionState>,
}

/// One account on one server. Cheap to clone; all clones are the same client.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

pub(crate) fn now_ms() -> Millis {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Millis::try_from(now.as_millis()).unwrap_or(Millis::MAX)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    pub fn emit(&self, event: ClientEvent) {
        // No subscriber is fine: events are for whoever listens.
        let _ = self.events.send(event);
    }

    pub fn set_feed_rides_chat(&self, rides: bool) {
        self.feed_rides_chat
            .send_if_modified(|now| std::mem::replace(now, rides) != rides);
    }

    /// Follows whether the chat carries the feed.
    pub fn feed_rides_chat(&self) -> watch::Receiver<bool> {
        self.feed_rides_chat.subscribe()
    }

    pub fn set_state(&self, state: ConnectionState) {
        let changed = {
            let mut live = lock(&self.live);
            if matches!(live.state, Some(ConnectionState::Locked))
                && state != ConnectionState::Locked
                && live.session.is_none()
            {
                // A task finishing after the lock must not report itself online again.
                return;
            }
            let changed = live.state.as_ref() != Some(&state);
            live.state = Some(state.clone());
            changed
        };
        if changed {
            self.emit(ClientEvent::State(state));
        }
    }

    pub fn state(&self) -> ConnectionState {
        lock(&self.live)
            .state
            .clone()
            .unwrap_or(ConnectionState::Offline {
                retry_at: 0,
                attempt: 0,
            })
    }

    pub fn me(&self) -> Option<UserRef> {
        lock(&self.live).account.as_ref().map(|a| a.user.clone())
    }

    /// Runs a local store call on the blocking pool.
    pub async fn local<T, F>(&self, f: F) -> Result<T, ClientError>
    where
        T: Send + 'static,
        F: FnOnce(&LocalStore) -> Result<T, crate::store::LocalError> + Send + 'static,
    {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || f(&store)).await??)
    }

    /// Ends the session locally: both tasks stop, the token is forgotten, the UI is told.
    pub async fn lock(self: &Arc<Self>, cause: LockCause) {
        let session = {
            let mut live = lock(&self.live);
            if let Some(account) = live.account.as_mut() {
                account.token = None;
                account.session = None;
            }
            live.state = Some(ConnectionState::Locked);
            live.session.take()
        };
        *lock(&self.commands) = None;
        let Some(session) = session else {
            return;
        };
        if let Err(err) = self.local(|s| s.forget_token()).await {
            tracing::error!(%err, "could not forget the token");
        }
        tracing::info!(?cause, "session locked");
        self.emit(ClientEvent::State(ConnectionState::Locked));
        self.emit(ClientEvent::Locked(cause));
        // Last: the lock may be running inside one of the session's own tasks (the chat channel
        // refreshing the room list got the 401), which stops at its next await once cancelled —
        // with this call unfinished, had it come first.
        session.cancel();
    }

    /// The API of `server`, through the configured proxy.
    pub fn api(&self, server: &str) -> Result<Api, ClientError> {
        let server = crate::api::normalize_server_url(server)?;
        let pinned = lock(&self.trusted).get(&server).cloned();
        Api::new(&server, self.options.proxy.as_deref(), pinned)
    }

    /// The token and API of the live session, or `Locked`.
    pub fn session(&self) -> Result<(Api, String), ClientError> {
        let live = lock(&self.live);
        let account = live.account.as_ref().ok_or(ClientError::NoAccount)?;
        let token = account.token.clone().ok_or(ClientError::Locked)?;
        Ok((self.api(&account.server)?, token))
    }

    /// Stops the chat and feed tasks and starts them again (with an `Api` made anew).
    fn restart(self: &Arc<Self>) -> Result<(), ClientError> {
        if let Some(session) = lock(&self.live).session.take() {
            session.cancel();
        }
        self.start()
    }

    /// Starts the chat and feed tasks for the account's token, unless they run already.
    fn start(self: &Arc<Self>) -> Result<(), ClientError> {
        let (api, token) = self.session()?;
        let cancel = {
            let mut live = lock(&self.live);
            if live.session.is_some() {
                return Ok(());
            }
            let cancel = self.shutdown.child_token();
            live.session = Some(cancel.clone());
            live.state = None;
            cancel
        };
        let (tx, rx) = mpsc::channel(64);
        *lock(&self.commands) = Some(tx);
        tokio::spawn(chat::run(
            self.clone(),
            api.clone(),
            token.clone(),
            cancel.clone(),
            rx,
        ));
        tokio::spawn(feed::run(self.clone(), api, token, cancel));
        Ok(())
    }

    /// Calls the server's API with the live session's token. Every call the client makes goes
    /// through here, so a 401 from any of them locks the client.
    pub async fn call<T, F, Fut>(self: &Arc<Self>, call: F) -> Result<T, ClientError>
    where
        F: FnOnce(Api, String) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let (api, token) = self.session()?;
        let result = call(api, token).await;
        if let Err(ClientError::Locked) = &result {
            self.lock(LockCause::Rejected).await;
        }
        result
    }

    /// Reloads the room list from the server into the cache, and tells the UI.
    pub async fn refresh_rooms(self: &Arc<Self>) -> Result<Vec<RoomState>, ClientError> {
        let rooms = self
            .call(|api, token| async move { api.rooms(&token).await })
            .await?;
        let saved = rooms.clone();
        self.local(move |s| s.replace_rooms(&saved)).await?;
        self.emit(ClientEvent::Rooms(rooms.clone()));
        Ok(rooms)
    }
}

impl Client {
    /// Opens the client whose local data lives in the SQLite file `path` (created if missing).
    /// If it holds a live token, the client connects at once; cached rooms and history are
    /// readable before the network answers. Must be called inside a tokio runtime.
    pub fn open(path: &Path, options: ClientOptions) -> Result<Client, ClientError> {
        Client::with_store(LocalStore::open(path)?, options)
    }

    /// Like [`Client::open`], over a local store the caller opened (one in memory, for a load
    /// generator that runs thousands of clients in one process).
    pub fn with_store(store: LocalStore, options: ClientOptions) -> Result<Client, ClientError> {
        let account = store.account()?;
        let trusted = store.trusted_certificates()?;
        let me = account.as_ref().map(|a| a.user.id).unwrap_or_default();
        let (events, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            store,
            options,
            events,
            live: Mutex::new(Live {
                account: account.clone(),
                session: None,
                state: None,
            }),
            outbox_wake: Notify::new(),
            reconnect_now: Notify::new(),
            repick: Notify::new(),
            policy: Mutex::new(Policy::new(me)),
            commands: Mutex::new(None),
            feed_rides_chat: watch::Sender::new(false),
            feed_cursor_started: Notify::new(),
            trusted: Mutex::new(trusted),
            shutdown: CancellationToken::new(),
        });
        match account {
            Some(account) if account.token.is_some() => inner.start()?,
            Some(_) => lock(&inner.live).state = Some(ConnectionState::Locked),
            None => {}
        }
        Ok(Client { inner })
    }

    /// Subscribes to the client's events. A subscriber that falls more than 1024 events behind
    /// gets `Lagged` and should reload what it shows from the cache.
    pub fn events(&self) -> broadcast::Receiver<ClientEvent> {
        self.inner.events.subscribe()
    }

    pub fn state(&self) -> ConnectionState {
        self.inner.state()
    }

    /// The account this client belongs to.
    pub fn account(&self) -> Option<Account> {
        lock(&self.inner.live).account.clone()
    }

    /// Logs in to `server` as `name` and connects. Logging in as another account than the one
    /// cached here clears the cache first.
    pub async fn login(
        &self,
        server: &str,
        name: &str,
        password: &str,
    ) -> Result<UserRef, ClientError> {
        let api = self.inner.api(server)?;
        let answer = api
            .login(name, password, &self.inner.options.device)
            .await?;
        self.adopt(api, answer).await
    }

    /// Believes `server`'s certificate from now on if its SHA-256 fingerprint is `fingerprint`:
    /// what a UI calls once the user compared the fingerprint of a
    /// [`ClientError::UntrustedCertificate`] with the one the host gave them. Kept in the local
    /// store, in place of a pin `server` had before.
    pub async fn trust_certificate(
        &self,
        server: &str,
        fingerprint: &str,
    ) -> Result<(), ClientError> {
        let server = crate::api::normalize_server_url(server)?;
        let fingerprint = fingerprint.trim().to_ascii_uppercase();
        let well_formed = fingerprint.len() == 32 * 3 - 1
            && fingerprint
                .split(':')
                .all(|byte| byte.len() == 2 && byte.chars().all(|c| c.is_ascii_hexdigit()));
        if !well_formed {
            return Err(ClientError::BadFingerprint(fingerprint));
        }
        let (kept_server, kept) = (server.clone(), fingerprint.clone());
        self.inner
            .local(move |s| s.trust_certificate(&kept_server, &kept))
            .await?;
        lock(&self.inner.trusted).insert(server.clone(), fingerprint);
        // A live session to that server connects again, with the pin.
        let live_there = lock(&self.inner.live)
            .account
            .as_ref()
            .is_some_and(|account| account.server == server && account.token.is_some());
        if live_there {
            self.inner.restart()?;
        }
        Ok(())
    }

    /// Creates an account with an invite code, logs in and connects.
    pub async fn register(
        &self,
        server: &str,
        invite: &str,
        name: &str,
        password: &str,
    ) -> Result<UserRef, ClientError> {
        let api = self.inner.api(server)?;
        let answer = api
            .register(invite, name, password, &self.inner.options.device)
            .await?;
        self.adopt(api, answer).await
    }

    async fn adopt(
        &self,
        api: Api,
        answer: tidings_proto::v1::LoginResponse,
    ) -> Result<UserRef, ClientError> {
        let account = Account {
            server: api.base().to_owned(),
            user: answer.user.clone(),
            token: Some(answer.token),
            session: Some(answer.session.id),
        };
        let previous = self.account();
        let same = previous
            .as_ref()
            .is_some_and(|p| p.server == account.server && p.user.id == account.user.id);
        // A new login replaces any live session of this client.
        self.inner.lock_quietly();
        let saved = account.clone();
        self.inner
            .local(move |s| {
                if !same {
                    s.replace_rooms(&[])?;
                }
                s.save_account(&saved)
            })
            .await?;
        {
            let mut live = lock(&self.inner.live);
            live.account = Some(account);
        }
        {
            let mut policy = lock(&self.inner.policy);
            *policy = Policy::new(answer.user.id);
        }
        self.inner.start()?;
        if previous.is_some_and(|p| p.token.is_none()) && same {
            self.inner.emit(ClientEvent::Unlocked);
        }
        Ok(answer.user)
    }

    /// Locks the client now: logs the session out on the server (best effort) and forgets the
    /// token. History, drafts and the outbox stay.
    pub async fn lock_now(&self) {
        if let Ok((api, token)) = self.inner.session() {
            self.inner.lock(LockCause::Manual).await;
            if let Err(err) = api.logout(&token).await {
                tracing::warn!(%err, "could not log the session out on the server");
            }
        }
    }

    /// Unlocks with the password of the account this client belongs to. Then the outbox drains
    /// and sync resumes.
    pub async fn unlock(&self, password: &str) -> Result<(), ClientError> {
        let account = self.account().ok_or(ClientError::NoAccount)?;
        let api = self.inner.api(&account.server)?;
        let answer = api
            .login(&account.user.name, password, &self.inner.options.device)
            .await?;
        if answer.user.id != account.user.id {
            return Err(ClientError::Protocol(
                "the server answered for another user".into(),
            ));
        }
        self.adopt(api, answer).await.map(|_| ())
    }

    /// The cached rooms (available offline).
    pub async fn rooms(&self) -> Result<Vec<RoomState>, ClientError> {
        self.inner.local(|s| s.rooms()).await
    }

    /// Reloads the room list from the server.
    pub async fn refresh_rooms(&self) -> Result<Vec<RoomState>, ClientError> {
        self.inner.refresh_rooms().await
    }

    /// Finds a cached room by `#name`, `name`, `@user` (a DM) or id.
    pub async fn find_room(&self, name: &str) -> Result<Option<RoomState>, ClientError> {
        let name = name.to_owned();
        self.inner
            .local(move |s| match name.parse::<RoomId>() {
                Ok(id) => s.room(id),
                Err(_) => s.room_by_name(&name),
            })
            .await
    }

    /// One page of a room's history from the cache only, oldest first (instant, and offline).
    pub async fn cached_history(
        &self,
        room: RoomId,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<HistoryPage, ClientError> {
        let messages = self
            .inner
            .local(move |s| s.history(room, before, limit))
            .await?;
        let has_more = messages.len() >= limit as usize;
        Ok(HistoryPage {
            room,
            messages,
            has_more,
        })
    }

    /// One page of a room's history, oldest first: from the cache, filled from the server when
    /// the cache has less than asked and the client is unlocked.
    pub async fn history(
        &self,
        room: RoomId,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<HistoryPage, ClientError> {
        let cached = self
            .inner
            .local(move |s| s.history(room, before, limit))
            .await?;
        if cached.len() >= limit as usize {
            return Ok(HistoryPage {
                room,
                messages: cached,
                has_more: true,
            });
        }
        if self.inner.session().is_err() {
            return Ok(HistoryPage {
                room,
                messages: cached,
                has_more: false,
            });
        }
        let fetched = self
            .inner
            .call(|api, token| async move { api.history(&token, room, before, limit).await })
            .await;
        match fetched {
            Ok(page) => {
                let me = self.inner.me().map(|u| u.id).unwrap_or_default();
                let messages = page.messages.clone();
                self.inner
                    .local(move |s| s.save_messages(&messages, me))
                    .await?;
                Ok(page)
            }
            // Offline: what the cache has is the best answer.
            Err(ClientError::Unreachable(_)) => Ok(HistoryPage {
                room,
                messages: cached,
                has_more: false,
            }),
            Err(err) => Err(err),
        }
    }

    /// Searches the user's rooms (or `room` alone) for messages with every word typed, newest
    /// first, older than `before` when set. The server is asked; when it cannot be (offline, or
    /// the session is locked) the cached messages are searched instead and the results say
    /// `cached`. A query that cannot be searched is refused here as the server would refuse it
    /// (`invalid`, saying why), without asking.
    pub async fn search(
        &self,
        typed: &str,
        room: Option<RoomId>,
        before: Option<MessageId>,
    ) -> Result<SearchResults, ClientError> {
        let query = Query::parse(typed).map_err(|err| {
            ClientError::Server(ErrorBody::new(ErrorCode::Invalid, err.to_string()))
        })?;
        if self.inner.session().is_ok() {
            let typed = typed.to_owned();
            let asked = self
                .inner
                .call(|api, token| async move {
                    api.search(&token, &typed, room, before, DEFAULT_SEARCH_LIMIT)
                        .await
                })
                .await;
            match asked {
                Err(ClientError::Unreachable(_) | ClientError::Locked) => {}
                answered => return answered,
            }
        }
        let fts5 = query.fts5();
        let mut found = self
            .inner
            .local(move |s| s.search(&fts5, room, before, DEFAULT_SEARCH_LIMIT + 1))
            .await?;
        let has_more = found.len() > DEFAULT_SEARCH_LIMIT as usize;
        found.truncate(DEFAULT_SEARCH_LIMIT as usize);
        Ok(SearchResults {
            hits: found
                .into_iter()
                .map(|message| SearchHit {
                    highlight: query.highlight(&message.body),
                    message,
                })
                .collect(),
            has_more,
            cached: true,
        })
    }

    /// Sends a message: it goes to the outbox first (durably), then out as soon as the chat
    /// channel is up; it survives restarts and is never stored twice by the server.
    pub async fn send(&self, room: RoomId, body: &str) -> Result<Outgoing, ClientError> {
        self.send_message(Draft::text(room, body)).await
    }

    /// Like [`Client::send`], for a message that may answer another or carry attachments.
    pub async fn send_message(&self, draft: Draft) -> Result<Outgoing, ClientError> {
        let outgoing = self
            .inner
            .local(move |s| s.enqueue(&draft, now_ms()))
            .await?;
        self.inner.outbox_wake.notify_one();
        Ok(outgoing)
    }

    /// Uploads a file to `room` for a message to carry (see [`Draft::attachments`]), calling
    /// `progress(sent, total)` as it goes out. Needs the server: an upload is not queued. Dropping
    /// the future cancels it, and the server keeps nothing of it; an upload no message carries
    /// is deleted by the server after a while.
    pub async fn upload(
        &self,
        room: RoomId,
        name: &str,
        content_type: &str,
        bytes: bytes::Bytes,
        progress: impl Fn(u64, u64) + Send + Sync + 'static,
    ) -> Result<Attachment, ClientError> {
        self.inner
            .call(|api, token| async move {
                api.upload(&token, room, name, content_type, bytes, progress)
                    .await
            })
            .await
    }

    /// The bytes of attachment `id` (or of its thumbnail), from the server.
    pub async fn attachment(&self, id: &str, thumbnail: bool) -> Result<bytes::Bytes, ClientError> {
        self.inner
            .call(|api, token| async move { api.download(&token, id, thumbnail).await })
            .await
    }

    /// Messages written but not yet stored by the server.
    pub async fn outbox(&self) -> Result<Vec<Outgoing>, ClientError> {
        self.inner.local(|s| s.outbox()).await
    }

    /// Moves the read marker of a room (locally at once, on the server when online).
    pub async fn mark_read(&self, room: RoomId, message_id: MessageId) -> Result<(), ClientError> {
        let me = self.inner.me().map(|u| u.id).unwrap_or_default();
        self.inner
            .local(move |s| s.set_read(room, message_id, me))
            .await?;
        self.inner
            .call(|api, token| async move { api.mark_read(&token, room, message_id).await })
            .await
            .map(drop)
    }

    /// Gives one's own message a new body; the change reaches this client (and every other in
    /// the room) as [`ClientEvent::Changed`]. Returns the message as it now is.
    pub async fn edit_message(
        &self,
        message_id: MessageId,
        body: &str,
    ) -> Result<Message, ClientError> {
        let body = body.to_owned();
        self.changed(
            self.inner
                .call(|api, token| async move { api.edit_message(&token, message_id, &body).await })
                .await?,
        )
        .await
    }

    /// Deletes a message: one's own, or as an owner anyone's.
    pub async fn delete_message(&self, message_id: MessageId) -> Result<Message, ClientError> {
        self.changed(
            self.inner
                .call(|api, token| async move { api.delete_message(&token, message_id).await })
                .await?,
        )
        .await
    }

    /// Adds (`on`) or takes back the user's reaction `emoji` to a message.
    pub async fn react(
        &self,
        message_id: MessageId,
        emoji: &str,
        on: bool,
    ) -> Result<Message, ClientError> {
        let emoji = emoji.to_owned();
        self.changed(
            self.inner
                .call(|api, token| async move { api.react(&token, message_id, &emoji, on).await })
                .await?,
        )
        .await
    }

    /// Keeps the cache as the server answered a change (the chat channel brings it too).
    async fn changed(&self, message: Message) -> Result<Message, ClientError> {
        let cached = message.clone();
        self.inner.local(move |s| s.apply_change(&cached)).await?;
        Ok(message)
    }

    /// Tells the room the user is typing (dropped when offline).
    pub fn typing(&self, room: RoomId) {
        if let Some(tx) = lock(&self.inner.commands).as_ref() {
            let _ = tx.try_send(Command::Typing(room));
        }
    }

    pub async fn set_draft(&self, room: RoomId, text: &str) -> Result<(), ClientError> {
        let text = text.to_owned();
        self.inner.local(move |s| s.set_draft(room, &text)).await
    }

    pub async fn draft(&self, room: RoomId) -> Result<Option<String>, ClientError> {
        self.inner.local(move |s| s.draft(room)).await
    }

    /// This account's live sessions.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, ClientError> {
        self.inner
            .call(|api, token| async move { api.sessions(&token).await })
            .await
    }

    pub async fn revoke(&self, session: SessionId) -> Result<(), ClientError> {
        self.inner
            .call(|api, token| async move { api.revoke(&token, session).await })
            .await
    }

    /// Revokes every session of this account but this one; returns how many.
    pub async fn revoke_others(&self) -> Result<usize, ClientError> {
        let revoked = self
            .inner
            .call(|api, token| async move { api.revoke_others(&token).await })
            .await?;
        Ok(revoked.revoked.len())
    }

    /// Creates a group room (the creator is its first member); the room list follows.
    pub async fn create_room(&self, name: &str) -> Result<RoomState, ClientError> {
        let room = self
            .inner
            .call(|api, token| async move { api.create_room(&token, name).await })
            .await?;
        self.inner.refresh_rooms().await?;
        Ok(room)
    }

    /// Opens (or finds) the direct conversation with `user`; the room list follows.
    pub async fn open_dm(&self, user: &str) -> Result<RoomState, ClientError> {
        let room = self
            .inner
            .call(|api, token| async move { api.open_dm(&token, user).await })
            .await?;
        self.inner.refresh_rooms().await?;
        Ok(room)
    }

    /// Joins a group room from the directory; the room list follows.
    pub async fn join_room(&self, room: RoomId) -> Result<RoomState, ClientError> {
        let room = self
            .inner
            .call(|api, token| async move { api.join(&token, room).await })
            .await?;
        self.inner.refresh_rooms().await?;
        Ok(room)
    }

    /// Every group room on the server, joined or not.
    pub async fn directory(&self) -> Result<Vec<Room>, ClientError> {
        self.inner
            .call(|api, token| async move { api.directory(&token).await })
            .await
    }

    /// Everyone with an account on the server.
    pub async fn users(&self) -> Result<Vec<UserRef>, ClientError> {
        self.inner
            .call(|api, token| async move { api.users(&token).await })
            .await
    }

    /// The members of a room the user is in, by name (for `@` completion).
    pub async fn members(&self, room: RoomId) -> Result<Vec<UserRef>, ClientError> {
        self.inner
            .call(|api, token| async move { api.members(&token, room).await })
            .await
    }

    /// A new invite code (the owner only).
    pub async fn invite(&self) -> Result<Invite, ClientError> {
        self.inner
            .call(|api, token| async move { api.invite(&token).await })
            .await
    }

    /// The signed-in user as the server now has them: their role included, which an owner may
    /// have changed since the login.
    pub async fn whoami(&self) -> Result<Me, ClientError> {
        self.inner
            .call(|api, token| async move { api.me(&token).await })
            .await
    }

    /// The group as its owners manage it (an owner only; `Forbidden` otherwise).
    pub async fn admin(&self) -> Result<AdminOverview, ClientError> {
        self.inner
            .call(|api, token| async move { api.admin(&token).await })
            .await
    }

    /// Disables, enables, promotes or demotes a member, or resets their password (an owner only).
    pub async fn manage_member(
        &self,
        user: UserId,
        action: MemberAction,
    ) -> Result<MemberManaged, ClientError> {
        self.inner
            .call(|api, token| async move { api.manage_member(&token, user, action).await })
            .await
    }

    /// A new invite on these terms (an owner only); its code is in the answer, this once.
    pub async fn create_invite(&self, terms: CreateInvite) -> Result<CreatedInvite, ClientError> {
        self.inner
            .call(|api, token| async move { api.create_invite(&token, &terms).await })
            .await
    }

    pub async fn revoke_invite(&self, invite: i64) -> Result<(), ClientError> {
        self.inner
            .call(|api, token| async move { api.revoke_invite(&token, invite).await })
            .await
    }

    /// Which room the user is looking at (open and focused): it raises no notifications.
    pub fn set_focused_room(&self, room: Option<RoomId>) {
        lock(&self.inner.policy).set_focused_room(room);
    }

    pub async fn set_do_not_disturb(&self, on: bool) -> Result<(), ClientError> {
        self.inner.local(move |s| s.set_do_not_disturb(on)).await?;
        lock(&self.inner.policy).set_do_not_disturb(on);
        Ok(())
    }

    pub async fn do_not_disturb(&self) -> Result<bool, ClientError> {
        self.inner.local(|s| s.do_not_disturb()).await
    }

    /// The transport pinned in the settings; `None` climbs the ladder.
    pub async fn transport(&self) -> Result<Option<TransportKind>, ClientError> {
        self.inner.local(|s| s.transport()).await
    }

    /// Pins the chat to one transport of the ladder, or (`None`) lets it find the best one; the
    /// connection moves over at once. The iframe is for browsers and cannot be pinned here.
    pub async fn set_transport(&self, kind: Option<TransportKind>) -> Result<(), ClientError> {
        if let Some(kind) = kind
            && !TransportKind::LADDER.contains(&kind)
        {
            return Err(ClientError::Protocol(format!(
                "{} is not a transport this client can use",
                kind.label()
            )));
        }
        self.inner.local(move |s| s.set_transport(kind)).await?;
        self.inner.repick.notify_one();
        self.inner.reconnect_now.notify_waiters();
        Ok(())
    }

    /// The notification level in force for a room (its own, else the default).
    pub async fn room_notify_level(&self, room: RoomId) -> Result<NotifyLevel, ClientError> {
        self.inner.local(move |s| s.notify_level(room)).await
    }

    pub async fn set_room_notify_level(
        &self,
        room: RoomId,
        level: Option<NotifyLevel>,
    ) -> Result<(), ClientError> {
        self.inner
            .local(move |s| s.set_notify_level(room, level))
            .await?;
        lock(&self.inner.policy).set_room_level(room, level);
        Ok(())
    }

    pub async fn set_default_notify_level(&self, level: NotifyLevel) -> Result<(), ClientError> {
        self.inner
            .local(move |s| s.set_default_notify_level(level))
            .await?;
        lock(&self.inner.policy).set_default_level(level);
        Ok(())
    }

    /// Retries the connection now instead of waiting for the backoff.
    pub fn reconnect_now(&self) {
        self.inner.reconnect_now.notify_waiters();
    }

    /// Stops every task of this client. The local data stays as it is.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }
}

impl Inner {
    /// Stops the live session's tasks without telling anyone (a new login replaces it).
    fn lock_quietly(&self) {
        let session = lock(&self.live).session.take();
        if let Some(session) = session {
            session.cancel();
        }
        *lock(&self.commands) = None;
    }
}
