//! The local store's schema: the SQL files in `migrations/client/`, applied at open by the shared
//! runner in `tidings-schema` (one transaction, `user_version`, a newer file refused).

use rusqlite::Connection;
use tidings_schema::Schema;

use super::LocalError;

/// The migrations, oldest first. Append only: an applied migration is never edited.
const SCHEMA: Schema = Schema::new(&[
    include_str!("../../../../migrations/client/0001_init.sql"),
    include_str!("../../../../migrations/client/0002_transport.sql"),
    include_str!("../../../../migrations/client/0003_changes.sql"),
    include_str!("../../../../migrations/client/0004_replies.sql"),
    include_str!("../../../../migrations/client/0005_search.sql"),
    include_str!("../../../../migrations/client/0006_attachments.sql"),
    include_str!("../../../../migrations/client/0007_trusted_certificates.sql"),
]);

/// The schema version a fully migrated file has.
pub(super) const SUPPORTED_VERSION: i64 = SCHEMA.supported();

/// Brings the file up to the current schema, refusing one written by a newer build.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), LocalError> {
    let found = SCHEMA.migrate(conn)?;
    if found != SUPPORTED_VERSION {
        tracing::info!(
            from = found,
            to = SUPPORTED_VERSION,
            "migrated the local store's schema"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;
    use crate::store::fixture::{group, message};

    fn version(conn: &Connection) -> rusqlite::Result<i64> {
        tidings_schema::version(conn)
    }

    #[test]
    fn fresh_schema_equals_one_migrated_step_by_step() {
        let dir = tempfile::tempdir().unwrap();
        let mut fresh = Connection::open(dir.path().join("fresh.db")).unwrap();
        let mut stepped = Connection::open(dir.path().join("stepped.db")).unwrap();
        let paths = SCHEMA.upgrade_paths(&mut fresh, &mut stepped).unwrap();
        let every_step: Vec<i64> = (1..=SUPPORTED_VERSION).collect();
        assert_eq!(paths.step_versions, every_step);
        assert_eq!(paths.fresh_version, SUPPORTED_VERSION);
        assert!(paths.fresh.iter().any(|(_, name, _, _)| name == "outbox"));
        assert_eq!(paths.fresh, paths.stepped);
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
            store.set_cursor(5).unwrap();
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
