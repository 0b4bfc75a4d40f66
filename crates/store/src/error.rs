//! The one error type of the store.

use rusqlite::ErrorCode;
use rusqlite::ffi;
use tokio_postgres::error::SqlState;

/// Everything a store call can fail with. Callers match on the domain variants (`NameTaken`,
/// `InviteInvalid`, `NotFound`, `NotAllowed`) and treat the rest as internal failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error not covered by a more specific variant.
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    /// PostgreSQL reported an error not covered by a more specific variant.
    #[error("postgres: {0}")]
    Postgres(#[source] tokio_postgres::Error),
    /// No connection to the database could be had, or it was lost before the outcome of a write
    /// was known; the write may be retried (message inserts are idempotent on their client id).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database holds a value this build cannot read (an unknown role, say).
    #[error("unreadable value in the database: {0}")]
    Unreadable(String),
    /// Applying the embedded schema migrations failed; the database is left as it was.
    #[error("migrating the database failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// The database was written by a newer build (its schema version is higher than any this
    /// build knows); it is refused rather than misread.
    #[error("database schema version {found} is newer than the {supported} this build supports")]
    TooNew {
        /// The schema version recorded in the database (`user_version`).
        found: i64,
        /// The highest schema version this build can use.
        supported: i64,
    },
    /// A user or room with that name (compared case-insensitively) already exists.
    #[error("name already taken")]
    NameTaken,
    /// The invite does not exist, was already used or has expired.
    #[error("invite is invalid, used or expired")]
    InviteInvalid,
    /// A user, room, session or membership the call refers to does not exist.
    #[error("not found")]
    NotFound,
    /// The operation is not allowed on this target, for instance joining or leaving a DM, opening a
    /// DM with oneself, or posting to a room one is not a member of.
    #[error("not allowed")]
    NotAllowed,
    /// A reply to a message that is not one of the same room (or is deleted).
    #[error("the message replied to is not in this room")]
    NotInRoom,
    /// A message names an attachment that is not its author's upload to the same room, or one
    /// another message already carries, or one no longer kept.
    #[error("an attachment is not your unsent upload to this room")]
    AttachmentUnavailable,
    /// A limit on what one thing may hold was reached (the reactions of a message).
    #[error("too many {0}")]
    TooMany(&'static str),
    /// The user's attachments would add up to more than their quota: `used` bytes are taken.
    #[error("upload quota reached: {used} of {quota} bytes used")]
    QuotaExceeded { used: u64, quota: u64 },
    /// A read ran past its time limit and was stopped (a search, see
    /// [`crate::SEARCH_TIME_LIMIT`]).
    #[error("the query took too long and was stopped")]
    TimedOut,
    /// The writer thread has stopped (the store was closed), so the write was not performed.
    #[error("the store writer has stopped")]
    WriterGone,
    /// The disk (or the database's size limit) is full; the write was rolled back and nothing of it
    /// is stored.
    #[error("disk full")]
    DiskFull,
    /// The code of a write panicked. It was rolled back alone; this is a bug in the store.
    #[error("a write panicked and was rolled back")]
    WritePanicked,
    /// Starting the writer thread failed.
    #[error("starting the writer thread failed: {0}")]
    Thread(#[source] std::io::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            _ => StoreError::Sqlite(err),
        }
    }
}

impl StoreError {
    /// An equivalent error, for handing one failure (a failed COMMIT) to every write of a batch.
    /// `rusqlite::Error` is not `Clone`, so SQLite failures are rebuilt from their codes.
    pub(crate) fn replicate(&self) -> StoreError {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(code, message)) => {
                StoreError::Sqlite(rusqlite::Error::SqliteFailure(*code, message.clone()))
            }
            StoreError::TooNew { found, supported } => StoreError::TooNew {
                found: *found,
                supported: *supported,
            },
            StoreError::NameTaken => StoreError::NameTaken,
            StoreError::InviteInvalid => StoreError::InviteInvalid,
            StoreError::NotFound => StoreError::NotFound,
            StoreError::NotAllowed => StoreError::NotAllowed,
            StoreError::AttachmentUnavailable => StoreError::AttachmentUnavailable,
            StoreError::WriterGone => StoreError::WriterGone,
            StoreError::DiskFull => StoreError::DiskFull,
            StoreError::WritePanicked => StoreError::WritePanicked,
            StoreError::Postgres(err) => StoreError::Unavailable(err.to_string()),
            StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
            StoreError::Unreadable(what) => StoreError::Unreadable(what.clone()),
            other => StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                ffi::Error::new(ffi::SQLITE_ERROR),
                Some(other.to_string()),
            )),
        }
    }
}

/// Whether `err` is a UNIQUE (or PRIMARY KEY) constraint violation.
/// A unique key already in use (a user's or a room's name) is [`StoreError::NameTaken`]; any
/// other error stays what it is.
pub(crate) fn name_taken_or(err: rusqlite::Error) -> StoreError {
    if is_unique_violation(&err) {
        StoreError::NameTaken
    } else {
        err.into()
    }
}

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

impl From<tidings_schema::SchemaError> for StoreError {
    fn from(err: tidings_schema::SchemaError) -> Self {
        match err {
            tidings_schema::SchemaError::Sqlite(e) => e.into(),
            tidings_schema::SchemaError::Migration(e) => StoreError::Migration(e),
            tidings_schema::SchemaError::TooNew { found, supported } => {
                StoreError::TooNew { found, supported }
            }
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(err: tokio_postgres::Error) -> Self {
        match err.code() {
            Some(&SqlState::DISK_FULL) => StoreError::DiskFull,
            Some(_) => StoreError::Postgres(err),
            None if err.is_closed() => StoreError::Unavailable(err.to_string()),
            None => StoreError::Postgres(err),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        // Only making (or checking) a connection fails with the pool's own errors.
        StoreError::Unavailable(err.to_string())
    }
}

/// Whether `err` is PostgreSQL's unique violation.
/// [`name_taken_or`], for PostgreSQL's errors.
pub(crate) fn pg_name_taken_or(err: tokio_postgres::Error) -> StoreError {
    if is_pg_unique_violation(&err) {
        StoreError::NameTaken
    } else {
        err.into()
    }
}

fn is_pg_unique_violation(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&SqlState::UNIQUE_VIOLATION)
}
