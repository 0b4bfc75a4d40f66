//! The schema: SQL migrations embedded at compile time and applied at open.
//!
//! The schema version is SQLite's `user_version`, which `rusqlite_migration` sets to the number
//! of migrations applied. All pending migrations run in one transaction, so a failed upgrade
//! leaves the file untouched.

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

use super::LocalError;

/// The migrations, oldest first. Append only: an applied migration is never edited.
const STEPS: &[&str] = &[include_str!("../../../../migrations/client/0001_init.sql")];

/// The schema version a fully migrated file has.
pub(super) const SUPPORTED_VERSION: i64 = STEPS.len() as i64;

fn migrations() -> Migrations<'static> {
    Migrations::new(STEPS.iter().map(|sql| M::up(sql)).collect())
}

/// The schema version recorded in the file; 0 for a new one.
fn version(conn: &Connection) -> Result<i64, LocalError> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

/// Brings the file up to the current schema, refusing one written by a newer build.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), LocalError> {
    // Checked here rather than left to the migration library so the error names both versions.
    let found = version(conn)?;
    if found > SUPPORTED_VERSION {
        return Err(LocalError::TooNew {
            found,
            supported: SUPPORTED_VERSION,
        });
    }
    migrations().to_latest(conn)?;
    let now = version(conn)?;
    if now != found {
        tracing::info!(from = found, to = now, "migrated the local store's schema");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;
    use crate::store::fixture::{group, message};

    /// Every schema object, as SQLite records it, in a stable order.
    fn dump(conn: &Connection) -> Vec<(String, String, String, Option<String>)> {
        let mut stmt = conn
            .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
            .unwrap();
        stmt.query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn fresh_schema_equals_one_migrated_step_by_step() {
        let dir = tempfile::tempdir().unwrap();

        let mut fresh = Connection::open(dir.path().join("fresh.db")).unwrap();
        migrate(&mut fresh).unwrap();

        let mut stepped = Connection::open(dir.path().join("stepped.db")).unwrap();
        for step in 1..=STEPS.len() {
            migrations().to_version(&mut stepped, step).unwrap();
            assert_eq!(version(&stepped).unwrap(), step as i64);
        }

        assert_eq!(version(&fresh).unwrap(), SUPPORTED_VERSION);
        assert_eq!(version(&stepped).unwrap(), SUPPORTED_VERSION);
        let fresh_dump = dump(&fresh);
        assert!(fresh_dump.iter().any(|(_, name, _, _)| name == "outbox"));
        assert_eq!(fresh_dump, dump(&stepped));
    }

    #[test]
    fn newer_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SUPPORTED_VERSION + 1)
                .unwrap();
        }
        match LocalStore::open(&path) {
            Err(LocalError::TooNew { found, supported }) => {
                assert_eq!(found, SUPPORTED_VERSION + 1);
                assert_eq!(supported, SUPPORTED_VERSION);
            }
            other => panic!("expected TooNew, got {other:?}"),
        }
        // Refused, not rewritten.
        let conn = Connection::open(&path).unwrap();
        assert_eq!(version(&conn).unwrap(), SUPPORTED_VERSION + 1);
    }

    #[test]
    fn open_creates_directories_and_reopen_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts").join("alice").join("local.db");
        {
            let store = LocalStore::open(&path).unwrap();
            store.upsert_room(&group(1, "ops")).unwrap();
            store.save_messages(&[message(5, 1, 2, "hi")], 1).unwrap();
            store.set_draft(1, "half a thought").unwrap();
        }
        let store = LocalStore::open(&path).unwrap();
        assert_eq!(
            version(&store.conn.lock().unwrap()).unwrap(),
            SUPPORTED_VERSION
        );
        assert_eq!(store.rooms().unwrap().len(), 1);
        assert_eq!(
            store.history(1, None, 10).unwrap(),
            vec![message(5, 1, 2, "hi")]
        );
        assert_eq!(store.cursor().unwrap(), 5);
        assert_eq!(store.draft(1).unwrap().as_deref(), Some("half a thought"));
    }
}
