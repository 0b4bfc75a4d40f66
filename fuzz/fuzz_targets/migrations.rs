//! The migration runner on a damaged database file: whatever the bytes, opening and migrating
//! either succeeds or fails with an error — never a panic — for both of Tidings' schemas.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusqlite::Connection;
use tidings_schema::Schema;

const SERVER: Schema = Schema::new(&[include_str!("../../migrations/server/0001_init.sql")]);
const CLIENT: Schema = Schema::new(&[include_str!("../../migrations/client/0001_init.sql")]);

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, schema) in [("server.db", SERVER), ("client.db", CLIENT)] {
        let path = dir.path().join(name);
        std::fs::write(&path, data).expect("write the damaged file");
        let Ok(mut conn) = Connection::open(&path) else {
            continue;
        };
        if let Ok(version) = schema.migrate(&mut conn) {
            // Migrated (or already current): the file now reads as the current version.
            assert!(version <= schema.supported());
            assert_eq!(tidings_schema::version(&conn).ok(), Some(schema.supported()));
        }
    }
});
