//! The Tidings server's storage: users, invites, sessions, rooms and messages, behind one
//! interface over two backends.
//!
//! The store knows nothing of HTTP, WebSocket, the JSON wire types or cryptography: it stores the
//! hashes it is given and returns plain rows. Time is passed in by the caller as unix milliseconds
//! (`now`), so tests control it.
//!
//! Shape:
//! - [`Store`] — the interface the server uses: every call async, the same answers whichever
//!   backend is behind it. It dispatches to one of:
//! - `sqlite` — one SQLite file (the default): a writer thread group-commits every write, a pool
//!   of read connections serves reads on tokio's blocking pool;
//! - `postgres` — a PostgreSQL database that several server nodes share: a pool of connections,
//!   and on each node a writer task that group-commits messages, numbering them from one
//!   counter row so ids follow commit order across nodes.
//! - `account`, `room`, `message` — the rows both backends return.
//!
//! Invariant: message ids increase in commit order and are never reused; they are the clients'
//! resume cursor, and after-commit hooks (the server's fan-out) see them in ascending order.

/// A fieldless enum stored as TEXT: one fixed string per variant. Each backend maps it to its
/// own column type through `as_str` and `parse`.
macro_rules! text_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The variant's text in the database.
            pub(crate) fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text,)+
                }
            }

            /// The variant stored as `text`, or an error naming what was found.
            pub(crate) fn parse(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($ty::$variant),)+
                    other => Err(format!(concat!("unknown ", $what, " {:?}"), other)),
                }
            }
        }
    };
}

mod account;
mod attachment;
mod backup;
mod copy;
mod error;
mod message;
mod postgres;
mod queued;
mod room;
mod sqlite;

use std::path::Path;

pub use account::{
    AUDIT_PAGE, AuditAction, AuditEntry, Credentials, Invite, InviteId, Managed, Member,
    MemberAction, NewInvite, Role, Session, User,
};
pub use attachment::{Attachment, NewAttachment};
pub use backup::backup_sqlite;
pub use copy::{Copied, copy_sqlite_to_postgres};
pub use error::StoreError;
pub use message::{
    Author, Change, Changed, Inserted, MAX_REACTIONS_PER_MESSAGE, Message, MessageChange,
    NewMessage, Quote, Reaction, Replayed, SEARCH_TIME_LIMIT, Search, parse_mentions,
};
pub use queued::Queued;
pub use room::{Room, RoomKind, RoomSummary};

/// A user's id.
pub type UserId = i64;
/// A room's id.
pub type RoomId = i64;
/// A message's id: increasing in commit order, never reused.
pub type MessageId = i64;
/// A login session's id.
pub type SessionId = i64;
/// A point in time, in milliseconds since the unix epoch.
pub type Millis = i64;

/// One entry of the store's log, as its follower gets it (see [`Store::follow`]): a message, or a
/// change that decides who hears what from then on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEntry<'a> {
    /// A message was stored.
    Message(&'a Message),
    /// Entry `id` changed a message (an edit, a deletion, a reaction); `message` is as it now is.
    Changed { id: MessageId, message: &'a Message },
    /// `user` became a member of `room` (a join, a room's creation, a DM's opening).
    Joined { room: RoomId, user: UserId },
    /// `user` left `room`.
    Left { room: RoomId, user: UserId },
    /// A session was revoked.
    SessionEnded { user: UserId, session: SessionId },
    /// `user`'s read marker in `room` is now `message_id` (for their other devices).
    ReadMarker {
        room: RoomId,
        user: UserId,
        message_id: MessageId,
    },
}

/// One committed write transaction, as told to [`Store::observe_commits`].
#[derive(Debug, Clone, Copy)]
pub struct Commit {
    /// The writes committed together: every write on SQLite, the messages of one batch of the
    /// message log on PostgreSQL.
    pub writes: usize,
    /// From the transaction's start to its commit's return.
    pub took: std::time::Duration,
}

/// What a writer has committed: the count behind [`Store::commits`], and whoever observes.
#[derive(Default)]
pub(crate) struct Commits {
    count: std::sync::atomic::AtomicU64,
    observer: std::sync::OnceLock<Box<dyn Fn(Commit) + Send + Sync>>,
}

impl Commits {
    /// Counts one commit of `writes` that began at `started`.
    pub(crate) fn record(&self, writes: usize, started: std::time::Instant) {
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(observer) = self.observer.get() {
            observer(Commit {
                writes,
                took: started.elapsed(),
            });
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The log's follower: see [`Store::follow`].
pub(crate) type LogHandler = std::sync::Arc<dyn Fn(LogEntry<'_>) + Send + Sync>;

/// How often a PostgreSQL store's follower reads the log even without a notification.
pub const FOLLOW_TICK: std::time::Duration = std::time::Duration::from_millis(250);

/// Tuning for [`Store::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How many idle read connections are kept for reuse (more are opened when needed).
    pub read_connections: usize,
    /// The most writes committed in one transaction.
    pub max_batch: usize,
    /// For tests on a paused tokio clock: a write is waited for on the runtime's blocking pool,
    /// so the runtime counts it as work in flight and does not jump its paused clock ahead while
    /// the writer thread commits it (a paused runtime with nothing to do advances to its next
    /// timer). Costs a blocking thread per write in flight; off otherwise.
    pub paused_clock: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            read_connections: 4,
            max_batch: 512,
            paused_clock: false,
        }
    }
}

/// A handle on the database. Cheap to clone; every clone shares the backend's connections and
/// writer.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

/// Each method below awaits its backend's future inline, so a caller's future is as big as the
/// biggest backend's. PostgreSQL's futures (tokio-postgres queries, pool checkouts) run to
/// kilobytes where SQLite's (a turn to read and a blocking task's handle) are small, and a
/// connection's task that awaits a store call anywhere holds room for it for as long as it lives.
/// So the PostgreSQL branch boxes its future: one allocation per call there, none on SQLite.
#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    // Boxed: its pool, config and writer handle are far bigger than the SQLite handle.
    Postgres(std::sync::Arc<postgres::Postgres>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("commits", &self.commits())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`, migrates it to the current
    /// schema and starts the writer thread. Refuses a database written by a newer build with
    /// [`StoreError::TooNew`].
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::Sqlite(sqlite::Sqlite::open(path, options)?),
        })
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://user:password@host:port/db`),
    /// migrates it to the current schema (nodes starting together take turns) and starts this
    /// node's message writer. Refuses a database written by a newer build with
    /// [`StoreError::TooNew`]; an unreachable server is [`StoreError::Unavailable`].
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::Postgres(std::sync::Arc::new(
                postgres::Postgres::connect(url, options).await?,
            )),
        })
    }

    /// Stops the writer after it has committed everything queued; later writes get
    /// [`StoreError::WriterGone`]. Reads keep working.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(s) => s.close().await,
            Backend::Postgres(p) => Box::pin(p.close()).await,
        }
    }

    /// How many write transactions have been committed since open: a debug counter showing how
    /// well writes are being batched.
    pub fn commits(&self) -> u64 {
        match &self.backend {
            Backend::Sqlite(s) => s.commits(),
            Backend::Postgres(p) => p.commits(),
        }
    }

    /// Calls `observer` after each write transaction commits (on the writer's thread or task, so
    /// it must be quick): what the server's metrics make of commit latency and batch size. One
    /// observer per store; a second is refused with [`StoreError::NotAllowed`].
    pub fn observe_commits(
        &self,
        observer: impl Fn(Commit) + Send + Sync + 'static,
    ) -> Result<(), StoreError> {
        let commits = match &self.backend {
            Backend::Sqlite(s) => s.commit_log(),
            Backend::Postgres(p) => p.commit_log(),
        };
        commits
            .observer
            .set(Box::new(observer))
            .map_err(|_| StoreError::NotAllowed)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    // Accounts.
    pub async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.user(id).await,
            Backend::Postgres(p) => Box::pin(p.user(id)).await,
        }
    }

    /// The user with this name (compared case-insensitively), their password hash, and whether
    /// they are disabled.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<Credentials>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.user_by_name(name).await,
            Backend::Postgres(p) => Box::pin(p.user_by_name(name)).await,
        }
    }

    /// Every user, by id.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.users().await,
            Backend::Postgres(p) => Box::pin(p.users()).await,
        }
    }

    pub async fn has_owner(&self) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.has_owner().await,
            Backend::Postgres(p) => Box::pin(p.has_owner()).await,
        }
    }

    /// The session with this token hash, revoked or expired included: the caller decides.
    pub async fn session_by_token_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<Session>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.session_by_token_hash(hash).await,
            Backend::Postgres(p) => Box::pin(p.session_by_token_hash(hash)).await,
        }
    }

    pub async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.session(id).await,
            Backend::Postgres(p) => Box::pin(p.session(id)).await,
        }
    }

    /// The user's sessions that are not revoked, newest first. Expired ones are included; the
    /// caller filters by its clock.
    pub async fn sessions_of(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.sessions_of(user).await,
            Backend::Postgres(p) => Box::pin(p.sessions_of(user)).await,
        }
    }

    /// Creates a user. [`StoreError::NameTaken`] if the name is in use, in any letter case.
    pub async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        role: Role,
        now: Millis,
    ) -> Result<User, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.create_user(name, password_hash, role, now).await,
            Backend::Postgres(p) => Box::pin(p.create_user(name, password_hash, role, now)).await,
        }
    }

    /// Records an invite by the hash of its code, audited as made by its creator (`None`: the
    /// host at the command line); answers its id.
    pub async fn create_invite(&self, invite: NewInvite) -> Result<InviteId, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.create_invite(invite).await,
            Backend::Postgres(p) => Box::pin(p.create_invite(invite)).await,
        }
    }

    /// The latest invites (at most [`AUDIT_PAGE`]), newest first: spent, expired and revoked
    /// ones included.
    pub async fn invites(&self) -> Result<Vec<Invite>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.invites().await,
            Backend::Postgres(p) => Box::pin(p.invites()).await,
        }
    }

    /// Revokes an invite, audited; `Ok(false)` if it already was, [`StoreError::NotFound`] if
    /// there is no such invite.
    pub async fn revoke_invite(
        &self,
        actor: Option<UserId>,
        id: InviteId,
        now: Millis,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.revoke_invite(actor, id, now).await,
            Backend::Postgres(p) => Box::pin(p.revoke_invite(actor, id, now)).await,
        }
    }

    /// Every user with what the owner manages of them, by id.
    pub async fn members_for_admin(&self, now: Millis) -> Result<Vec<Member>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.members_for_admin(now).await,
            Backend::Postgres(p) => Box::pin(p.members_for_admin(now)).await,
        }
    }

    /// Does `action` to `user` on behalf of `actor` (`None`: the host at the command line), with
    /// its audit entry, in one transaction. The sessions it ends are in the log, so every node
    /// closes their connections. [`StoreError::NotAllowed`] for what would leave the group
    /// without an enabled owner, or an owner disabling, demoting or resetting themself;
    /// [`StoreError::NotFound`] for no such user.
    pub async fn manage_member(
        &self,
        actor: Option<UserId>,
        user: UserId,
        action: MemberAction,
        now: Millis,
    ) -> Result<Managed, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.manage_member(actor, user, action, now).await,
            Backend::Postgres(p) => Box::pin(p.manage_member(actor, user, action, now)).await,
        }
    }

    /// Every session revoked at or after `since` (by anyone's clock), as (user, session, when),
    /// oldest first. For a server on SQLite to hear of revocations another process made — the
    /// log reaches only the process that wrote it there.
    pub async fn sessions_revoked_since(
        &self,
        since: Millis,
    ) -> Result<Vec<(UserId, SessionId, Millis)>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.sessions_revoked_since(since).await,
            Backend::Postgres(p) => Box::pin(p.sessions_revoked_since(since)).await,
        }
    }

    /// The latest `limit` administrative actions, newest first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.audit_log(limit).await,
            Backend::Postgres(p) => Box::pin(p.audit_log(limit)).await,
        }
    }

    /// How many bytes the database takes.
    pub async fn size(&self) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.size().await,
            Backend::Postgres(p) => Box::pin(p.size()).await,
        }
    }

    /// Takes one use of an invite that is neither spent, expired nor revoked, and creates a
    /// member, atomically. [`StoreError::InviteInvalid`] if the invite is unknown, spent, expired
    /// or revoked;
    /// [`StoreError::NameTaken`] leaves the invite unused.
    pub async fn register_with_invite(
        &self,
        code_hash: [u8; 32],
        name: &str,
        password_hash: &str,
        now: Millis,
    ) -> Result<User, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.register_with_invite(code_hash, name, password_hash, now)
                    .await
            }
            Backend::Postgres(p) => {
                Box::pin(p.register_with_invite(code_hash, name, password_hash, now)).await
            }
        }
    }

    pub async fn create_session(
        &self,
        user: UserId,
        token_hash: [u8; 32],
        device: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<Session, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.create_session(user, token_hash, device, now, expires_at)
                    .await
            }
            Backend::Postgres(p) => {
                Box::pin(p.create_session(user, token_hash, device, now, expires_at)).await
            }
        }
    }

    /// Records use of a session. The last-seen time never moves backwards.
    pub async fn touch_session(&self, id: SessionId, now: Millis) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.touch_session(id, now).await,
            Backend::Postgres(p) => Box::pin(p.touch_session(id, now)).await,
        }
    }

    /// Revokes `id` if it belongs to `user` and is not revoked yet; `Ok(false)` otherwise.
    pub async fn revoke_session(
        &self,
        user: UserId,
        id: SessionId,
        now: Millis,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.revoke_session(user, id, now).await,
            Backend::Postgres(p) => Box::pin(p.revoke_session(user, id, now)).await,
        }
    }

    /// Revokes every live (not revoked, not expired) session of `user` except `keep`; returns the
    /// ids revoked, ascending.
    pub async fn revoke_other_sessions(
        &self,
        user: UserId,
        keep: SessionId,
        now: Millis,
    ) -> Result<Vec<SessionId>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.revoke_other_sessions(user, keep, now).await,
            Backend::Postgres(p) => Box::pin(p.revoke_other_sessions(user, keep, now)).await,
        }
    }

    // Rooms.
    pub async fn room(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.room(id).await,
            Backend::Postgres(p) => Box::pin(p.room(id)).await,
        }
    }

    /// Every room `user` is a member of, with its unread counts, by room id.
    pub async fn rooms_of(&self, user: UserId) -> Result<Vec<RoomSummary>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.rooms_of(user).await,
            Backend::Postgres(p) => Box::pin(p.rooms_of(user)).await,
        }
    }

    /// `room` as `user` sees it; `None` if the room is missing or `user` is not a member.
    pub async fn room_summary(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<RoomSummary>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.room_summary(room, user).await,
            Backend::Postgres(p) => Box::pin(p.room_summary(room, user)).await,
        }
    }

    /// The directory: every group room, by name.
    pub async fn group_rooms(&self) -> Result<Vec<Room>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.group_rooms().await,
            Backend::Postgres(p) => Box::pin(p.group_rooms()).await,
        }
    }

    pub async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.is_member(room, user).await,
            Backend::Postgres(p) => Box::pin(p.is_member(room, user)).await,
        }
    }

    /// The members of `room`, by name.
    pub async fn members(&self, room: RoomId) -> Result<Vec<User>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.members(room).await,
            Backend::Postgres(p) => Box::pin(p.members(room)).await,
        }
    }

    /// Every (room, user) membership, by room then user: what the server loads at start to know
    /// who hears what.
    pub async fn memberships(&self) -> Result<Vec<(RoomId, UserId)>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.memberships().await,
            Backend::Postgres(p) => Box::pin(p.memberships()).await,
        }
    }

    /// Creates a group room, which its creator joins. [`StoreError::NameTaken`] if a room has
    /// that name in any letter case.
    pub async fn create_room(
        &self,
        name: &str,
        creator: UserId,
        now: Millis,
    ) -> Result<Room, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.create_room(name, creator, now).await,
            Backend::Postgres(p) => Box::pin(p.create_room(name, creator, now)).await,
        }
    }

    /// A group room everyone is in: every user now, and each user made later as their account
    /// is (the log has each join). No one can leave it ([`StoreError::NotAllowed`]). A new group
    /// starts with one, `general`.
    pub async fn create_everyone_room(
        &self,
        name: &str,
        creator: UserId,
        now: Millis,
    ) -> Result<Room, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.create_everyone_room(name, creator, now).await,
            Backend::Postgres(p) => Box::pin(p.create_everyone_room(name, creator, now)).await,
        }
    }

    /// The DM between `a` and `b`, created with both as members if missing; the flag says whether
    /// it was created now. A DM with oneself is [`StoreError::NotAllowed`].
    pub async fn open_dm(
        &self,
        a: UserId,
        b: UserId,
        now: Millis,
    ) -> Result<(Room, bool), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.open_dm(a, b, now).await,
            Backend::Postgres(p) => Box::pin(p.open_dm(a, b, now)).await,
        }
    }

    /// Joins a group room; `Ok(true)` if newly joined. A DM is [`StoreError::NotAllowed`], a
    /// missing room or user [`StoreError::NotFound`].
    pub async fn join_room(
        &self,
        room: RoomId,
        user: UserId,
        now: Millis,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.join_room(room, user, now).await,
            Backend::Postgres(p) => Box::pin(p.join_room(room, user, now)).await,
        }
    }

    /// Leaves a group room; `Ok(true)` if `user` was a member. A DM or a room for everyone is
    /// [`StoreError::NotAllowed`], a missing room [`StoreError::NotFound`].
    pub async fn leave_room(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.leave_room(room, user).await,
            Backend::Postgres(p) => Box::pin(p.leave_room(room, user)).await,
        }
    }

    /// Moves `user`'s read marker in `room` forward only: to the larger of the old marker and
    /// `message_id`, capped at the room's newest message. Returns the marker now stored.
    /// [`StoreError::NotFound`] if `user` is not a member.
    pub async fn set_read_marker(
        &self,
        room: RoomId,
        user: UserId,
        message_id: MessageId,
    ) -> Result<MessageId, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.set_read_marker(room, user, message_id).await,
            Backend::Postgres(p) => Box::pin(p.set_read_marker(room, user, message_id)).await,
        }
    }

    // Attachments.
    /// Records an attachment uploaded to a room. A missing room is [`StoreError::NotFound`]; an
    /// uploader who is not a member, [`StoreError::NotAllowed`]; one whose attachments would add
    /// up to more than `quota` bytes, [`StoreError::QuotaExceeded`] (checked in the same
    /// transaction as the insert, so two uploads at once cannot both slip under it).
    pub async fn add_attachment(&self, new: NewAttachment) -> Result<Attachment, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.add_attachment(new).await,
            Backend::Postgres(p) => Box::pin(p.add_attachment(new)).await,
        }
    }

    /// The attachment `id`, unless its message was deleted.
    pub async fn attachment(&self, id: &str) -> Result<Option<Attachment>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.attachment(id).await,
            Backend::Postgres(p) => Box::pin(p.attachment(id)).await,
        }
    }

    /// Forgets at most `limit` attachments no one will read again: those of deleted messages,
    /// and uploads no message carried that were made before `unsent_before`. Returns their ids,
    /// whose bytes the caller then removes (a send cannot claim an attachment once forgotten).
    pub async fn forget_attachments(
        &self,
        unsent_before: Millis,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.forget_attachments(unsent_before, limit).await,
            Backend::Postgres(p) => Box::pin(p.forget_attachments(unsent_before, limit)).await,
        }
    }

    /// The bytes `user`'s attachments add up to.
    pub async fn attachment_usage(&self, user: UserId) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.attachment_usage(user).await,
            Backend::Postgres(p) => Box::pin(p.attachment_usage(user)).await,
        }
    }

    // Messages.
    /// Up to `limit` messages of `room` with id < `before` (or the newest when `None`), returned
    /// oldest first.
    pub async fn history(
        &self,
        room: RoomId,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.history(room, before, limit).await,
            Backend::Postgres(p) => Box::pin(p.history(room, before, limit)).await,
        }
    }

    /// The log after `after` in the rooms `user` is a member of, ascending, at most `limit`
    /// entries: the messages and the changes to messages (each with the message as it now is).
    pub async fn messages_since(
        &self,
        user: UserId,
        after: MessageId,
        limit: u32,
    ) -> Result<Vec<Replayed>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.messages_since(user, after, limit).await,
            Backend::Postgres(p) => Box::pin(p.messages_since(user, after, limit)).await,
        }
    }

    /// The messages of `search.user`'s rooms that have every word of the search, newest first, at
    /// most `search.limit`: never one of a room they are not in, never a deleted one (its words
    /// are gone from the index with its body). A search running past [`SEARCH_TIME_LIMIT`] is
    /// stopped with [`StoreError::TimedOut`].
    pub async fn search(&self, search: Search) -> Result<Vec<Message>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.search(search).await,
            Backend::Postgres(p) => Box::pin(p.search(search)).await,
        }
    }

    /// The message `author` stored with `client_id`, if any: lets a retried send be acknowledged
    /// without spending anything.
    pub async fn message_by_client_id(
        &self,
        author: UserId,
        client_id: &str,
    ) -> Result<Option<Message>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.message_by_client_id(author, client_id).await,
            Backend::Postgres(p) => Box::pin(p.message_by_client_id(author, client_id)).await,
        }
    }

    /// Changes a stored message: edits or deletes it, or adds or takes back a reaction. A change
    /// is an entry of the log with its own id (see [`Store::follow`]), so a client that was away
    /// learns of it in its replay; a change that changes nothing is [`Changed::Unchanged`] and
    /// logs nothing. A deletion empties the body and drops the mentions and reactions.
    ///
    /// A missing message is [`StoreError::NotFound`]. [`StoreError::NotAllowed`]: the user is not
    /// a member of its room, edits another's message, deletes another's without
    /// `may_delete_any`, or changes a deleted one. A new emoji past
    /// [`MAX_REACTIONS_PER_MESSAGE`] is [`StoreError::TooMany`].
    pub async fn change_message(&self, change: MessageChange) -> Result<Changed, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.change_message(change).await,
            Backend::Postgres(p) => Box::pin(p.change_message(change)).await,
        }
    }

    /// Whether the store takes writes now: on SQLite a transaction through the writer (its
    /// thread alive, the database's write lock to be had), on PostgreSQL a connection to a
    /// primary, not a read-only standby.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.check_writable().await,
            Backend::Postgres(p) => Box::pin(p.check_writable()).await,
        }
    }

    /// The head of the log: no message or change to one has a greater id, and every entry up to
    /// it is committed (on PostgreSQL, the log's other entries count too); 0 when it is empty.
    pub async fn latest_message_id(&self) -> Result<MessageId, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.latest_message_id().await,
            Backend::Postgres(p) => Box::pin(p.latest_message_id()).await,
        }
    }

    /// Stores a message. Idempotent on (author, client id): a second insert returns
    /// [`Inserted::Duplicate`] with the stored message and stores nothing. `@name` tokens in the
    /// body that match (case-insensitively) a member of the room are recorded as mentions. A new
    /// message reaches the log's follower (see [`Store::follow`]) once committed.
    ///
    /// The attachments it names become its own, in the same transaction.
    ///
    /// A missing room is [`StoreError::NotFound`]; an author who is not a member of the room,
    /// [`StoreError::NotAllowed`]; an attachment that is not the author's upload to the room, or
    /// is already carried, [`StoreError::AttachmentUnavailable`].
    pub async fn insert_message(&self, msg: NewMessage) -> Result<Inserted, StoreError> {
        self.queue_message(msg).await?.await
    }

    /// Like [`Store::insert_message`], in two steps: returns once the insert is queued, with a
    /// future of its result. Messages queued one after another by the same caller commit (and
    /// get their ids) in that order, however their results are awaited.
    pub async fn queue_message(&self, msg: NewMessage) -> Result<Queued<Inserted>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.queue_message(msg).await,
            Backend::Postgres(p) => Box::pin(p.queue_message(msg)).await,
        }
    }

    /// Hands `handler` the log from `after` on: every message committed, and every change to who
    /// hears what (joins, leaves, revoked sessions, read markers), once each and in commit order —
    /// including, on PostgreSQL, what every other node commits. The server feeds its fan-out from
    /// here, so a node applies a join before any message committed after it. One follower per
    /// store ([`StoreError::NotAllowed`] for a second); the handler must not block.
    ///
    /// SQLite calls it on the writer thread right after each commit, before the sender is
    /// answered. PostgreSQL calls it from a task that wakes on the commit's `NOTIFY`, on a
    /// reconnect of its `LISTEN` connection, and on a tick ([`FOLLOW_TICK`]), and reads every
    /// message after the last one it handed on: a lost notification delays a message by at most
    /// the tick and loses nothing.
    pub fn follow(
        &self,
        after: MessageId,
        handler: impl Fn(LogEntry<'_>) + Send + Sync + 'static,
    ) -> Result<(), StoreError> {
        let handler: LogHandler = std::sync::Arc::new(handler);
        match &self.backend {
            Backend::Sqlite(s) => s.follow(handler),
            Backend::Postgres(p) => p.follow(after, handler),
        }
    }
}
