//! SQL migrations embedded at compile time and applied at open: the one migration runner behind
//! both SQLite files Tidings keeps — the server's store and each client's local store.
//!
//! The schema version is SQLite's `user_version`, which `rusqlite_migration` sets to the number of
//! migrations applied. All pending migrations run in one transaction, so a failed upgrade leaves
//! the file untouched; a file written by a newer build (a higher version than this build knows) is
//! refused rather than misread.
//!
//! Invariant: knows nothing of what the tables mean; each store owns its SQL files.

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

/// Why a schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// The file was written by a newer build of Tidings.
    #[error("the database is at schema version {found}; this build supports up to {supported}")]
    TooNew { found: i64, supported: i64 },
}

/// A schema: its migrations, oldest first. Append only: an applied migration is never edited.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    steps: &'static [&'static str],
}

impl Schema {
    pub const fn new(steps: &'static [&'static str]) -> Schema {
        Schema { steps }
    }

    /// The version a fully migrated file has.
    pub const fn supported(&self) -> i64 {
        self.steps.len() as i64
    }

    fn migrations(&self) -> Migrations<'static> {
        Migrations::new(self.steps.iter().map(|sql| M::up(sql)).collect())
    }

    /// Checks the migrations (valid SQL, in order), then brings `fresh` to the latest version in
    /// one go and `stepped` one migration at a time: for each store's test that both paths agree.
    pub fn upgrade_paths(
        &self,
        fresh: &mut Connection,
        stepped: &mut Connection,
    ) -> Result<Upgrades, SchemaError> {
        self.migrations().validate()?;
        self.migrate(fresh)?;
        let mut step_versions = Vec::with_capacity(self.steps.len());
        for step in 1..=self.steps.len() {
            self.migrations().to_version(stepped, step)?;
            step_versions.push(version(stepped)?);
        }
        Ok(Upgrades {
            fresh_version: version(fresh)?,
            fresh: dump(fresh)?,
            step_versions,
            stepped: dump(stepped)?,
        })
    }

    /// Brings the file up to this schema, refusing one written by a newer build. Returns the
    /// version found before (0 for a new file).
    pub fn migrate(&self, conn: &mut Connection) -> Result<i64, SchemaError> {
        // Checked here rather than left to the migration library so the error names both versions.
        let found = version(conn)?;
        if found > self.supported() {
            return Err(SchemaError::TooNew {
                found,
                supported: self.supported(),
            });
        }
        self.migrations().to_latest(conn)?;
        Ok(found)
    }
}

/// What [`Schema::upgrade_paths`] found.
#[derive(Debug)]
pub struct Upgrades {
    /// The version of the file migrated in one go, and its schema objects.
    pub fresh_version: i64,
    pub fresh: Vec<SchemaObject>,
    /// The version recorded after each single step, and the schema objects at the end.
    pub step_versions: Vec<i64>,
    pub stepped: Vec<SchemaObject>,
}

/// The schema version recorded in the file; 0 for a new one.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// One schema object as SQLite records it: type, name, table, and the SQL that made it.
pub type SchemaObject = (String, String, String, Option<String>);

/// Every schema object, in a stable order: for tests that compare two files' schemas.
pub fn dump(conn: &Connection) -> rusqlite::Result<Vec<SchemaObject>> {
    let mut stmt =
        conn.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")?;
    stmt.query_map([], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
    })?
    .collect()
}
