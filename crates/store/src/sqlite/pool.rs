//! Read connections: read-only SQLite connections handed out one per read and kept for reuse.
//!
//! In WAL mode readers never block the writer nor each other, so a read needs no coordination
//! beyond having a connection of its own. The pool opens one when none is idle and keeps at most
//! `max_idle` for reuse, which bounds the file handles held while quiet without ever making a read
//! wait for another.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

pub(crate) struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl Pool {
    pub(crate) fn new(path: &Path, max_idle: usize) -> Pool {
        Pool {
            path: path.to_owned(),
            idle: Mutex::new(Vec::with_capacity(max_idle)),
            max_idle,
        }
    }

    /// A read connection, idle or newly opened.
    pub(crate) fn get(&self) -> Result<PooledConnection<'_>, StoreError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        Ok(PooledConnection {
            pool: self,
            conn: Some(conn),
        })
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        super::configure(&conn)?;
        // Belt and braces on top of the read-only open: a read path can never write.
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }
}

/// A read connection on loan; it goes back to the pool when dropped.
pub(crate) struct PooledConnection<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
}

impl Deref for PooledConnection<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        // Only `drop` takes the connection out.
        self.conn
            .as_ref()
            .expect("pooled connection present until drop")
    }
}

impl Drop for PooledConnection<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // A connection left inside a transaction would pin an old snapshot; close it instead.
        if !conn.is_autocommit() {
            return;
        }
        let mut idle = self
            .pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.pool.max_idle {
            idle.push(conn);
        }
    }
}
