//! The schema: SQL migrations embedded at compile time and applied at open.
//!
//! The schema version is SQLite's `user_version`, which `rusqlite_migration` sets to the number
//! of migrations applied. All pending migrations run in one transaction, so a failed upgrade
//! leaves the database untouched.

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

use crate::StoreError;

/// The migrations, oldest first. Append only: an applied migration is never edited.
const STEPS: &[&str] = &[include_str!("../../../migrations/server/0001_init.sql")];

/// The schema version a fully migrated database has.
pub(crate) const SUPPORTED_VERSION: i64 = STEPS.len() as i64;

pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::new(STEPS.iter().map(|sql| M::up(sql)).collect())
}

/// The schema version recorded in the database; 0 for a new file.
pub(crate) fn version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

/// Brings the database up to the current schema, refusing one written by a newer build.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // Checked here rather than left to the migration library so the error names both versions.
    let found = version(conn)?;
    if found > SUPPORTED_VERSION {
        return Err(StoreError::TooNew {
            found,
            supported: SUPPORTED_VERSION,
        });
    }
    migrations().to_latest(conn)?;
    let now = version(conn)?;
    if now != found {
        tracing::info!(from = found, to = now, "migrated database schema");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(fresh_dump.iter().any(|(_, name, _, _)| name == "messages"));
        assert_eq!(fresh_dump, dump(&stepped));
    }

    #[test]
    fn newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("new.db")).unwrap();
        conn.pragma_update(None, "user_version", SUPPORTED_VERSION + 1)
            .unwrap();
        match migrate(&mut conn) {
            Err(StoreError::TooNew { found, supported }) => {
                assert_eq!(found, SUPPORTED_VERSION + 1);
                assert_eq!(supported, SUPPORTED_VERSION);
            }
            other => panic!("expected TooNew, got {other:?}"),
        }
    }
}
