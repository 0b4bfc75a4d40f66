//! Backups of a SQLite store while it serves. SQLite's online backup API copies the database as
//! one read transaction sees it: in WAL mode the server's writer goes on committing meanwhile,
//! and the copy holds exactly what was committed when the copy began.

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::sqlite::{SUPPORTED_VERSION, attachment};
use crate::{Attachment, StoreError};

/// Copies the SQLite database at `from` (which a server may be writing to) into the new file
/// `to`, as of one moment, and checks the copy. Returns the attachments that copy shows in a
/// message or waiting to be sent, whose bytes the caller keeps beside it. Blocking.
///
/// Refuses a database a newer build wrote ([`StoreError::TooNew`]) and, with
/// [`StoreError::NotFound`], a path with no database.
pub fn backup_sqlite(from: &Path, to: &Path) -> Result<Vec<Attachment>, StoreError> {
    // Never created here: a mistyped data dir is an error, not an empty backup.
    let source = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| match err {
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::CannotOpen => {
            StoreError::NotFound
        }
        other => other.into(),
    })?;
    source.busy_timeout(Duration::from_secs(5))?;
    let found: i64 = source.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > SUPPORTED_VERSION {
        return Err(StoreError::TooNew {
            found,
            supported: SUPPORTED_VERSION,
        });
    }

    let mut target = Connection::open(to)?;
    {
        let backup = Backup::new(&source, &mut target)?;
        // Every page in one step, so in one read transaction: stepping in pieces would start over
        // each time the server commits in between, and a busy server commits all the time.
        match backup.step(-1)? {
            StepResult::Done => {}
            // More cannot follow a step of every page; Busy and Locked outlasted the timeout.
            _ => {
                return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some("the database stayed locked during the backup".to_owned()),
                )));
            }
        }
    }
    // One self-contained file, not a database waiting for its write-ahead log.
    let _: String =
        target.pragma_update_and_check(None, "journal_mode", "DELETE", |row| row.get(0))?;
    let check: String = target.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if check != "ok" {
        return Err(StoreError::Unreadable(format!(
            "the copy's check says: {check}"
        )));
    }
    attachment::kept(&target)
}
