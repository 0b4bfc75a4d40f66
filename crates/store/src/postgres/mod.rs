//! The PostgreSQL backend, for groups that run several server nodes on one database.
//!
//! - `schema` — SQL migrations from `migrations/postgres`, applied at connect under an advisory
//!   lock (nodes starting together migrate once); a database from a newer build is refused.
//! - `writer` — the message log. One task per node group-commits the messages queued to it in one
//!   transaction, taking their ids from the `log_head` row it updates in that same transaction,
//!   so ids follow commit order across every node with no gap; see the module.
//! - `follower` — follows the log for this node's fan-out: `LISTEN`s for the writers' `NOTIFY`,
//!   and reads every message after the last one handed on, on each wake-up and each tick.
//! - `account`, `room`, `message` — the queries, by domain. Reads, and every write but a
//!   message, run on a pooled connection of their own; PostgreSQL orders them.

mod account;
mod attachment;
mod follower;
mod message;
mod room;
mod schema;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::Row;

use crate::{
    LogEntry, LogHandler, MessageId, Role, RoomId, RoomKind, SessionId, StoreError, StoreOptions,
    UserId,
};
use writer::Writer;

/// How long a caller waits for a pooled connection, and a new connection for its server.
const PATIENCE: Duration = Duration::from_secs(10);

/// The PostgreSQL backend, shared by every clone of its `Store`.
pub(crate) struct Postgres {
    config: tokio_postgres::Config,
    pool: Pool,
    writer: Writer,
    /// Set at close: the follower stops.
    closed: tokio::sync::watch::Sender<bool>,
    /// Whether a follower was started (one per store).
    following: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Postgres {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`),
    /// migrates it and starts the message writer.
    pub(crate) async fn connect(url: &str, options: StoreOptions) -> Result<Postgres, StoreError> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|err| StoreError::Unavailable(format!("bad database URL: {err}")))?;
        let pool = pool(config.clone(), options.read_connections.max(1) + 4)?;
        schema::migrate(&mut *pool.get().await?).await?;
        // The writer's connection is its own, so reads never keep a batch waiting.
        let writer = Writer::spawn(pool_of_one(config.clone())?, options.max_batch.max(1));
        Ok(Postgres {
            config,
            pool,
            writer,
            closed: tokio::sync::watch::Sender::new(false),
            following: std::sync::Arc::default(),
        })
    }

    pub(crate) fn follow(&self, after: MessageId, handler: LogHandler) -> Result<(), StoreError> {
        if self
            .following
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(StoreError::NotAllowed);
        }
        tokio::spawn(follower::run(
            self.config.clone(),
            self.pool.clone(),
            after,
            handler,
            self.closed.subscribe(),
        ));
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.writer.close().await;
        self.closed.send_replace(true);
    }

    pub(crate) fn commit_log(&self) -> &crate::Commits {
        self.writer.commits()
    }

    pub(crate) fn commits(&self) -> u64 {
        self.writer.commits().count()
    }

    /// A pooled connection for a write: refused once the store is closed, as the SQLite
    /// backend's writer refuses.
    async fn writable(&self) -> Result<Object, StoreError> {
        if self.writer.is_closed() {
            return Err(StoreError::WriterGone);
        }
        self.client().await
    }

    /// A pooled connection.
    async fn client(&self) -> Result<Object, StoreError> {
        Ok(self.pool.get().await?)
    }
}

fn pool(mut config: tokio_postgres::Config, size: usize) -> Result<Pool, StoreError> {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(PATIENCE);
    }
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            // A connection that died is found out by the query that uses it, which fails with
            // `Unavailable`; checking each one before use would cost a round trip per query.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(PATIENCE))
        .create_timeout(Some(PATIENCE))
        .build()
        .map_err(|err| StoreError::Unavailable(err.to_string()))
}

fn pool_of_one(config: tokio_postgres::Config) -> Result<Pool, StoreError> {
    pool(config, 1)
}

/// Appends `entry` to the log inside `tx` (see `log_entry`).
async fn log_change(
    tx: &deadpool_postgres::Transaction<'_>,
    entry: LogEntry<'_>,
) -> Result<(), StoreError> {
    let (kind, room, user, session, message): (&str, Option<RoomId>, UserId, _, _) = match entry {
        LogEntry::Joined { room, user } => ("joined", Some(room), user, None, None),
        LogEntry::Left { room, user } => ("left", Some(room), user, None, None),
        LogEntry::SessionEnded { user, session } => {
            ("session_ended", None, user, Some(session), None)
        }
        LogEntry::ReadMarker {
            room,
            user,
            message_id,
        } => ("read_marker", Some(room), user, None, Some(message_id)),
        // Messages are the writer's (see `writer`), and changes to them `change_message`'s.
        LogEntry::Message(_) | LogEntry::Changed { .. } => return Err(StoreError::NotAllowed),
    };
    log_entry(tx, kind, room, user, session, message).await?;
    Ok(())
}

/// Appends a row of `log_changes` inside `tx` and returns its id: the next from `log_head`,
/// whose row lock (held until commit) keeps the log in commit order. The followers are woken at
/// commit.
async fn log_entry(
    tx: &deadpool_postgres::Transaction<'_>,
    kind: &str,
    room: Option<RoomId>,
    user: UserId,
    session: Option<SessionId>,
    message: Option<MessageId>,
) -> Result<MessageId, StoreError> {
    let stmt = tx
        .prepare_cached(
            "WITH head AS (UPDATE log_head SET last_id = last_id + 1 RETURNING last_id) \
             INSERT INTO log_changes (id, kind, room_id, user_id, session_id, message_id) \
             SELECT last_id, $1, $2, $3, $4, $5 FROM head RETURNING id",
        )
        .await?;
    let id = get(
        &tx.query_one(&stmt, &[&kind, &room, &user, &session, &message])
            .await?,
        0,
    )?;
    tx.execute("SELECT pg_notify($1, '')", &[&writer::LOG_CHANNEL])
        .await?;
    Ok(id)
}

/// A change of the log from its row in `log_changes` (id, kind, room_id, user_id, session_id,
/// message_id).
fn change_from(row: &Row) -> Result<LogEntry<'static>, StoreError> {
    let kind: &str = get(row, 1)?;
    let room: Option<RoomId> = get(row, 2)?;
    let user: UserId = get(row, 3)?;
    let session: Option<SessionId> = get(row, 4)?;
    let message: Option<MessageId> = get(row, 5)?;
    let unreadable = || StoreError::Unreadable(format!("log change {kind:?} without its ids"));
    Ok(match kind {
        "joined" => LogEntry::Joined {
            room: room.ok_or_else(unreadable)?,
            user,
        },
        "left" => LogEntry::Left {
            room: room.ok_or_else(unreadable)?,
            user,
        },
        "session_ended" => LogEntry::SessionEnded {
            user,
            session: session.ok_or_else(unreadable)?,
        },
        "read_marker" => LogEntry::ReadMarker {
            room: room.ok_or_else(unreadable)?,
            user,
            message_id: message.ok_or_else(unreadable)?,
        },
        other => return Err(StoreError::Unreadable(format!("log change kind {other:?}"))),
    })
}

/// Column `at` of `row`, converted.
fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    at: usize,
) -> Result<T, StoreError> {
    Ok(row.try_get(at)?)
}

fn role(row: &Row, at: usize) -> Result<Role, StoreError> {
    Role::parse(row.try_get(at)?).map_err(StoreError::Unreadable)
}

fn room_kind(row: &Row, at: usize) -> Result<RoomKind, StoreError> {
    RoomKind::parse(row.try_get(at)?).map_err(StoreError::Unreadable)
}

/// A `count(*)` column (bigint, never negative).
fn count(row: &Row, at: usize) -> Result<u64, StoreError> {
    Ok(u64::try_from(row.try_get::<_, i64>(at)?).unwrap_or(0))
}
