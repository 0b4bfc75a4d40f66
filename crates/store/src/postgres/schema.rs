//! The server's schema on PostgreSQL: the SQL files in `migrations/postgres/`, applied in order at
//! connect, each in one transaction with its version recorded in `schema_version`.

use tokio_postgres::Client;

use crate::StoreError;

/// The migrations, oldest first. Append only: an applied migration is never edited.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../../migrations/postgres/0001_init.sql"),
    include_str!("../../../../migrations/postgres/0002_everyone.sql"),
    include_str!("../../../../migrations/postgres/0003_changes.sql"),
    include_str!("../../../../migrations/postgres/0004_replies.sql"),
    include_str!("../../../../migrations/postgres/0005_search.sql"),
    include_str!("../../../../migrations/postgres/0006_attachments.sql"),
    include_str!("../../../../migrations/postgres/0007_attachment_order.sql"),
    include_str!("../../../../migrations/postgres/0008_admin.sql"),
];

/// The schema version a fully migrated database has.
const SUPPORTED_VERSION: i64 = MIGRATIONS.len() as i64;

/// A number every Tidings node takes as its advisory lock while migrating ("tidings" in ASCII).
const MIGRATION_LOCK: i64 = 0x74_69_64_69_6e_67_73;

/// Brings the database up to the current schema, refusing one written by a newer build. Nodes
/// starting at once take turns on an advisory lock, so each migration runs once.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    // Looked for first: `IF NOT EXISTS` would log a notice at every start.
    let exists: bool = tx
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        tx.batch_execute("CREATE TABLE schema_version (version bigint NOT NULL)")
            .await?;
    }
    let found: i64 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await?
        .get(0);
    if found > SUPPORTED_VERSION {
        return Err(StoreError::TooNew {
            found,
            supported: SUPPORTED_VERSION,
        });
    }
    for (version, sql) in (1_i64..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(found).unwrap_or(0))
    {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    tx.commit().await?;
    if found != SUPPORTED_VERSION {
        tracing::info!(
            from = found,
            to = SUPPORTED_VERSION,
            "migrated database schema"
        );
    }
    Ok(())
}
