//! The Tidings server's storage: one SQLite file holding users, invites, sessions, rooms and
//! messages.
//!
//! The store knows nothing of HTTP, WebSocket, the JSON wire types or cryptography: it stores the
//! hashes it is given and returns plain rows. Time is passed in by the caller as unix milliseconds
//! (`now`), so tests control it.
//!
//! Shape:
//! - `schema` — SQL migrations from `migrations/server`, embedded at compile time and applied in
//!   one transaction at [`Store::open`]; a database from a newer build is refused.
//! - `writer` — one thread owns the only read-write connection. Every write is queued to it and
//!   committed in a group with whatever else is queued: one fsync per batch, each write in its own
//!   savepoint so it fails alone. A write is acknowledged only once its batch is durable.
//! - `pool` — read-only connections. Every read is async: it waits its turn for one of the
//!   pool's connections, then runs on tokio's blocking pool (SQLite calls block, and must not stall
//!   the runtime's few worker threads).
//! - `account`, `room`, `message` — the queries, by domain.
//!
//! Invariant: message ids increase in commit order and are never reused; they are the clients'
//! resume cursor, and after-commit hooks (the server's fan-out) see them in ascending order.

/// Stores a fieldless enum as TEXT: one fixed string per variant, and a clear error for any other
/// string found in the database.
macro_rules! text_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text,)+
                }
            }
        }

        impl rusqlite::ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
            }
        }

        impl rusqlite::types::FromSql for $ty {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                match value.as_str()? {
                    $($text => Ok($ty::$variant),)+
                    other => Err(rusqlite::types::FromSqlError::Other(
                        format!(concat!("unknown ", $what, " {:?}"), other).into(),
                    )),
                }
            }
        }
    };
}

mod account;
mod error;
mod message;
mod pool;
mod room;
mod schema;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::Semaphore;

pub use account::{Role, Session, User};
pub use error::StoreError;
pub use message::{Author, Inserted, Message, NewMessage, parse_mentions};
pub use room::{Room, RoomKind, RoomSummary};

use pool::{Pool, PooledConnection};
pub use writer::Queued;
use writer::Writer;

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

/// A handle on the database. Cheap to clone; every clone shares one writer and one read pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Writer,
    pool: Pool,
    /// Turns to read, one per pooled connection: a thousand long-polls coming back at once would
    /// otherwise each open a connection of its own and spend more time parsing the schema than
    /// reading.
    readers: Arc<Semaphore>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("commits", &self.commits())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, migrates it to the current schema and
    /// starts the writer thread. Refuses a database written by a newer build with
    /// [`StoreError::TooNew`].
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let mut conn = writer::open_connection(path)?;
        schema::migrate(&mut conn)?;
        let writer = Writer::spawn(conn, path, &options)?;
        let pool = Pool::new(path, options.read_connections);
        let readers = Arc::new(Semaphore::new(options.read_connections.max(1)));
        Ok(Store {
            inner: Arc::new(Inner {
                writer,
                pool,
                readers,
            }),
        })
    }

    /// Stops the writer after it has committed everything queued; later writes get
    /// [`StoreError::WriterGone`]. Reads keep working.
    pub async fn close(&self) {
        self.inner.writer.close().await;
    }

    /// How many write transactions have been committed since open: a debug counter showing how
    /// well writes are being batched.
    pub fn commits(&self) -> u64 {
        self.inner.writer.commits()
    }

    /// A pooled read-only connection.
    fn reader(&self) -> Result<PooledConnection<'_>, StoreError> {
        self.inner.pool.get()
    }

    /// Runs `work` on a pooled read connection, on the blocking pool, once a turn to read is free.
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        // The semaphore is never closed.
        let turn = self.inner.readers.clone().acquire_owned().await;
        let store = self.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let conn = store.reader()?;
            work(&conn)
        });
        match task.await {
            Ok(result) => result,
            // A read that panicked is a bug: let it go on to the caller's task.
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            // Only a runtime shutting down cancels a blocking task.
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    /// Runs `work` in the writer's next group commit; see the `writer` module.
    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.writer.write(work).await
    }
}

/// Settings every connection gets, reader or writer.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_millis(5000))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // FULL fsyncs the WAL at every commit: a message is acknowledged only once it is durable.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Room for every statement of the store, so `prepare_cached` never evicts.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}
