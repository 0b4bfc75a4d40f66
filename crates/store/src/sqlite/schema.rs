//! The server's schema: the SQL files in `migrations/server/`, applied at open by the shared
//! runner in `tidings-schema` (one transaction, `user_version`, a newer file refused).

use rusqlite::Connection;
use tidings_schema::Schema;

use crate::StoreError;

/// The migrations, oldest first. Append only: an applied migration is never edited.
const SCHEMA_FILES: &[&str] = &[
    include_str!("../../../../migrations/server/0001_init.sql"),
    include_str!("../../../../migrations/server/0002_everyone.sql"),
    include_str!("../../../../migrations/server/0003_changes.sql"),
    include_str!("../../../../migrations/server/0004_replies.sql"),
    include_str!("../../../../migrations/server/0005_search.sql"),
    include_str!("../../../../migrations/server/0006_search_in_bulk.sql"),
    include_str!("../../../../migrations/server/0007_attachments.sql"),
    include_str!("../../../../migrations/server/0008_attachment_order.sql"),
    include_str!("../../../../migrations/server/0009_admin.sql"),
];

const SCHEMA: Schema = Schema::new(SCHEMA_FILES);

/// The schema version a fully migrated database has.
pub(crate) const SUPPORTED_VERSION: i64 = SCHEMA.supported();

/// Brings the database up to the current schema, refusing one written by a newer build.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found = SCHEMA.migrate(conn)?;
    if found != SUPPORTED_VERSION {
        tracing::info!(
            from = found,
            to = SUPPORTED_VERSION,
            "migrated database schema"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_schema_equals_one_migrated_step_by_step() {
        let dir = tempfile::tempdir().unwrap();
        let mut fresh = Connection::open(dir.path().join("fresh.db")).unwrap();
        let mut stepped = Connection::open(dir.path().join("stepped.db")).unwrap();
        let paths = SCHEMA.upgrade_paths(&mut fresh, &mut stepped).unwrap();
        let every_step: Vec<i64> = (1..=SUPPORTED_VERSION).collect();
        assert_eq!(paths.step_versions, every_step);
        assert_eq!(paths.fresh_version, SUPPORTED_VERSION);
        assert!(paths.fresh.iter().any(|(_, name, _, _)| name == "messages"));
        assert_eq!(paths.fresh, paths.stepped);
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

    /// Invites from before they had a use count: a used one has used its one use, an unused one
    /// still admits one person, and both get an id.
    #[test]
    fn invites_from_before_use_counts_keep_what_they_admit() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("old.db")).unwrap();
        Schema::new(&SCHEMA_FILES[..8]).migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, name, password_hash, role, created_at) \
                 VALUES (1, 'ana', 'x', 'owner', 0), (2, 'bo', 'x', 'member', 5);
             INSERT INTO invites (code_hash, created_by, created_at, expires_at, used_by, used_at) \
                 VALUES (zeroblob(32), 1, 1, NULL, 2, 5), \
                        (x'0101010101010101010101010101010101010101010101010101010101010101', \
                         NULL, 2, 100, NULL, NULL);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let invites: Vec<String> = conn
            .prepare(
                "SELECT format('%d by %s: %d of %d, last %s, expires %s', id, created_by, uses, \
                 max_uses, last_used_at, expires_at) FROM invites ORDER BY id",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            invites,
            [
                "1 by 1: 1 of 1, last 5, expires ",
                "2 by : 0 of 1, last , expires 100"
            ]
        );
    }

    /// A database from before search has its messages indexed by the migration that adds it.
    #[test]
    fn messages_stored_before_search_existed_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("old.db")).unwrap();
        const BEFORE_SEARCH: Schema = Schema::new(&[
            include_str!("../../../../migrations/server/0001_init.sql"),
            include_str!("../../../../migrations/server/0002_everyone.sql"),
            include_str!("../../../../migrations/server/0003_changes.sql"),
            include_str!("../../../../migrations/server/0004_replies.sql"),
        ]);
        BEFORE_SEARCH.migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, name, password_hash, role, created_at) \
                 VALUES (1, 'ana', 'x', 'owner', 0);
             INSERT INTO rooms (id, kind, name, created_by, created_at) \
                 VALUES (1, 'group', 'ops', 1, 0);
             INSERT INTO messages (room_id, author_id, body, sent_at) \
                 VALUES (1, 1, 'an old needle', 0), (1, 1, 'hay', 0);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let found: Vec<String> = conn
            .prepare(
                "SELECT body FROM messages WHERE id IN \
                      (SELECT rowid FROM message_search WHERE message_search MATCH 'needle')",
            )
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(found, ["an old needle"]);
    }
}
