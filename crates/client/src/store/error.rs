//! The one error type of the local store.

use rusqlite::ErrorCode;

/// Everything a local store call can fail with. None of them is expected in normal use: the UI
/// reports them, and a `TooNew` file is left alone rather than misread.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// SQLite reported an error not covered by a more specific variant, including a value on
    /// disk that does not fit its type.
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    /// Applying the embedded schema migrations failed; the file is left as it was.
    #[error("migrating the local store failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// The file was written by a newer build (its schema version is higher than any this build
    /// knows); it is refused rather than misread.
    #[error("local store schema version {found} is newer than the {supported} this build supports")]
    TooNew {
        /// The schema version recorded in the file (`user_version`).
        found: i64,
        /// The highest schema version this build can use.
        supported: i64,
    },
    /// The disk is full; the write was rolled back and nothing of it is stored.
    #[error("disk full")]
    DiskFull,
    /// Creating the directory the file lives in failed.
    #[error("creating the local store's directory failed: {0}")]
    CreateDir(#[source] std::io::Error),
}

impl From<rusqlite::Error> for LocalError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => LocalError::DiskFull,
            _ => LocalError::Sqlite(err),
        }
    }
}

impl From<tidings_schema::SchemaError> for LocalError {
    fn from(err: tidings_schema::SchemaError) -> Self {
        match err {
            tidings_schema::SchemaError::Sqlite(e) => e.into(),
            tidings_schema::SchemaError::Migration(e) => LocalError::Migration(e),
            tidings_schema::SchemaError::TooNew { found, supported } => {
                LocalError::TooNew { found, supported }
            }
        }
    }
}
