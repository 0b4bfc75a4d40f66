//! The SQLite backend: one file, one writer thread, a pool of readers.
//!
//! - `schema` — SQL migrations from `migrations/server`, embedded at compile time and applied in
//!   one transaction at open; a database from a newer build is refused.
//! - `writer` — one thread owns the only read-write connection. Every write is queued to it and
//!   committed in a group with whatever else is queued: one fsync per batch, each write in its own
//!   savepoint so it fails alone. A write is acknowledged only once its batch is durable.
//! - `pool` — read-only connections. Every read waits its turn for one of the pool's
//!   connections, then runs on tokio's blocking pool (SQLite calls block, and must not stall the
//!   runtime's few worker threads).
//! - `account`, `room`, `message` — the queries, by domain.

mod account;
pub(crate) mod attachment;
mod message;
mod pool;
mod room;
mod schema;
pub(crate) use schema::SUPPORTED_VERSION;
pub(crate) mod writer;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use tokio::sync::Semaphore;

use crate::{AuditAction, LogEntry, LogHandler, Role, RoomKind, StoreError, StoreOptions};
use pool::{Pool, PooledConnection};
use writer::Writer;

/// A fieldless enum of the store as a TEXT column.
macro_rules! sql_text {
    ($($ty:ident),+) => {$(
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                $ty::parse(value.as_str()?).map_err(|err| FromSqlError::Other(err.into()))
            }
        }
    )+};
}

sql_text!(AuditAction, Role, RoomKind);

/// The SQLite backend. Cheap to clone; every clone shares one writer and one read pool.
#[derive(Clone)]
pub(crate) struct Sqlite {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Writer,
    pool: Pool,
    /// Turns to read, one per pooled connection: a thousand long-polls coming back at once would
    /// otherwise each open a connection of its own and spend more time parsing the schema than
    /// reading.
    readers: Arc<Semaphore>,
    /// Who follows the log (see [`crate::Store::follow`]): called on the writer thread after each
    /// commit, with each of its entries in order.
    log: Arc<OnceLock<LogHandler>>,
}

impl Sqlite {
    pub(crate) fn open(path: &Path, options: StoreOptions) -> Result<Sqlite, StoreError> {
        let mut conn = writer::open_connection(path)?;
        schema::migrate(&mut conn)?;
        let writer = Writer::spawn(conn, path, &options)?;
        let pool = Pool::new(path, options.read_connections);
        let readers = Arc::new(Semaphore::new(options.read_connections.max(1)));
        Ok(Sqlite {
            inner: Arc::new(Inner {
                writer,
                pool,
                readers,
                log: Arc::new(OnceLock::new()),
            }),
        })
    }

    /// The writer runs in commit order, so calling the handler after each commit is following
    /// the log; there is nothing before `after` to catch up on once the server writes only here.
    pub(crate) fn follow(&self, handler: LogHandler) -> Result<(), StoreError> {
        self.inner
            .log
            .set(handler)
            .map_err(|_| StoreError::NotAllowed)
    }

    pub(crate) async fn close(&self) {
        self.inner.writer.close().await;
    }

    pub(crate) fn commit_log(&self) -> &crate::Commits {
        self.inner.writer.commits()
    }

    pub(crate) fn commits(&self) -> u64 {
        self.inner.writer.commits().count()
    }

    /// The database's size in bytes, as of now.
    pub(crate) async fn size(&self) -> Result<u64, StoreError> {
        let bytes: i64 = self
            .read(|conn| {
                Ok(conn.query_row(
                    "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                    [],
                    |row| row.get(0),
                )?)
            })
            .await?;
        Ok(u64::try_from(bytes).unwrap_or(0))
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

    /// Like [`Sqlite::write`], and once committed — on the writer thread, in commit order, before
    /// the caller is answered — hands the log's follower the entries `log` makes of the result.
    async fn write_logged<T, F, L>(&self, work: F, log: L) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        L: FnOnce(&T) -> Vec<LogEntry<'static>> + Send + 'static,
    {
        let follower = Arc::clone(&self.inner.log);
        let hook = move |result: &T| {
            if let Some(follow) = follower.get() {
                for entry in log(result) {
                    follow(entry);
                }
            }
        };
        self.inner.writer.enqueue(work, Some(hook)).await?.await
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
