//! The client's local store: one SQLite file per account in the user's data directory.
//!
//! It holds a cache of what the server said — the user's rooms with their read markers and unread
//! counts, and messages — so the client can show them offline and at start-up before the network
//! answers; and what only this client knows: the account and its token, the sync cursors, the
//! outbox, drafts and notification settings.
//!
//! The store is small and single-user, so it is one [`rusqlite::Connection`] behind a mutex. Calls
//! are synchronous and short; async callers wrap them in `spawn_blocking`. Every call that writes
//! more than one statement does so in one transaction, and `synchronous=FULL` makes each commit
//! durable before the call returns — above all [`LocalStore::enqueue`]: a message is on disk before
//! anything is sent.
//!
//! Shape:
//! - `schema` — SQL migrations from `migrations/client`, embedded at compile time and applied in
//!   one transaction at open; a file from a newer build is refused ([`LocalError::TooNew`]).
//! - `account` — the account this file belongs to; `cursor` — where `sync` and the feed resume.
//! - `room`, `message` — the cache and its unread bookkeeping.
//! - `outbox`, `draft`, `settings` — the client's own data.
//! - `trust` — the certificates the user pinned, per server.

mod account;
mod cursor;
mod draft;
mod error;
mod message;
mod outbox;
mod room;
mod schema;
mod settings;
mod trust;

#[cfg(test)]
mod fixture;

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use account::Account;
pub use error::LocalError;
pub use outbox::{Draft, Outgoing};
pub use settings::NotifyLevel;

/// A handle on one account's local database. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct LocalStore {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore").finish_non_exhaustive()
    }
}

impl LocalStore {
    /// Opens the database at `path`, creating its parent directories and the file if needed, and
    /// migrates it to the current schema. A file written by a newer build is refused with
    /// [`LocalError::TooNew`].
    pub fn open(path: &Path) -> Result<LocalStore, LocalError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(LocalError::CreateDir)?;
        }
        let conn = Connection::open(path)?;
        // WAL: a commit appends to the log instead of rewriting pages, and readers of another
        // process (a second client on the same account) are not blocked by it.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "the local store could not switch to WAL");
        }
        LocalStore::start(conn)
    }

    /// An empty store that lives in memory only, for tests.
    pub fn open_in_memory() -> Result<LocalStore, LocalError> {
        LocalStore::start(Connection::open_in_memory()?)
    }

    fn start(mut conn: Connection) -> Result<LocalStore, LocalError> {
        conn.busy_timeout(Duration::from_millis(5000))?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // FULL fsyncs at every commit: what `enqueue` wrote survives a crash right after it.
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Room for every statement of the store, so `prepare_cached` never evicts.
        conn.set_prepared_statement_cache_capacity(64);
        schema::migrate(&mut conn)?;
        Ok(LocalStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `work` on the connection in autocommit mode: each statement is its own transaction,
    /// enough for reads and single-statement writes.
    fn run<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, LocalError>,
    ) -> Result<T, LocalError> {
        // A panic while the lock was held cannot have left a transaction open (dropping a
        // `Transaction` rolls it back), so the connection is still good.
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        work(&conn)
    }

    /// Runs `work` in one transaction, committed if it returns `Ok` and rolled back otherwise.
    fn write<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, LocalError>,
    ) -> Result<T, LocalError> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        // IMMEDIATE takes the write lock up front, so a transaction that reads then writes never
        // fails half-way because another process on the same file wrote in between.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = work(&tx)?;
        tx.commit()?;
        Ok(value)
    }
}

/// A conversion failure for a value read from disk that does not fit its Rust type.
fn bad_value(column: usize, stored: rusqlite::types::Type, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, stored, what.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_durable_wal_with_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("local.db")).unwrap();
        let conn = store.conn.lock().unwrap();
        let pragma = |name: &str| -> String {
            conn.query_row(&format!("PRAGMA {name}"), [], |row| {
                row.get::<_, rusqlite::types::Value>(0)
            })
            .map(|value| format!("{value:?}"))
            .unwrap()
        };
        assert_eq!(pragma("journal_mode"), "Text(\"wal\")");
        // 2 is FULL.
        assert_eq!(pragma("synchronous"), "Integer(2)");
        assert_eq!(pragma("foreign_keys"), "Integer(1)");
    }

    #[test]
    fn clones_share_one_database() {
        let store = LocalStore::open_in_memory().unwrap();
        let other = store.clone();
        other.set_draft(1, "shared").unwrap();
        assert_eq!(store.draft(1).unwrap().as_deref(), Some("shared"));
    }
}
