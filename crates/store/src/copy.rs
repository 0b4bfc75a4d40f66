//! Moving a group up: copies a SQLite database into an empty PostgreSQL one, ids and all.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use tokio_postgres::types::ToSql;

use crate::{Store, StoreError, StoreOptions};

/// How many rows go in one statement.
const BATCH: usize = 2000;

/// What [`copy_sqlite_to_postgres`] copied, table by table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    pub users: usize,
    pub invites: usize,
    pub sessions: usize,
    pub rooms: usize,
    pub members: usize,
    pub messages: usize,
    pub mentions: usize,
    /// Edits, deletions and reactions: entries of the log.
    pub changes: usize,
    pub reactions: usize,
    /// Administrative actions.
    pub audit: usize,
    /// What is known of uploaded files (their bytes are not in the database).
    pub attachments: usize,
}

/// One table: its name, its columns, and each column's PostgreSQL type (for `unnest`).
struct Table {
    name: &'static str,
    /// Its name in SQLite, when not the same.
    source: Option<&'static str>,
    columns: &'static [(&'static str, &'static str)],
}

const TABLES: &[Table] = &[
    Table {
        source: None,
        name: "users",
        columns: &[
            ("id", "bigint"),
            ("name", "text"),
            ("password_hash", "text"),
            ("role", "text"),
            ("created_at", "bigint"),
            ("disabled_at", "bigint"),
        ],
    },
    Table {
        source: None,
        name: "invites",
        columns: &[
            ("id", "bigint"),
            ("code_hash", "bytea"),
            ("created_by", "bigint"),
            ("created_at", "bigint"),
            ("expires_at", "bigint"),
            ("max_uses", "bigint"),
            ("uses", "bigint"),
            ("last_used_at", "bigint"),
            ("revoked_at", "bigint"),
        ],
    },
    Table {
        source: None,
        name: "sessions",
        columns: &[
            ("id", "bigint"),
            ("user_id", "bigint"),
            ("token_hash", "bytea"),
            ("device", "text"),
            ("created_at", "bigint"),
            ("last_seen_at", "bigint"),
            ("expires_at", "bigint"),
            ("revoked_at", "bigint"),
        ],
    },
    Table {
        source: None,
        name: "rooms",
        columns: &[
            ("id", "bigint"),
            ("kind", "text"),
            ("name", "text"),
            ("dm_key", "text"),
            ("created_by", "bigint"),
            ("created_at", "bigint"),
            ("everyone", "boolean"),
        ],
    },
    Table {
        source: None,
        name: "members",
        columns: &[
            ("room_id", "bigint"),
            ("user_id", "bigint"),
            ("joined_at", "bigint"),
            ("last_read_id", "bigint"),
        ],
    },
    Table {
        source: None,
        name: "messages",
        columns: &[
            ("id", "bigint"),
            ("room_id", "bigint"),
            ("author_id", "bigint"),
            ("client_id", "text"),
            ("body", "text"),
            ("sent_at", "bigint"),
            ("edited_at", "bigint"),
            ("deleted_at", "bigint"),
            ("reply_to", "bigint"),
        ],
    },
    Table {
        source: None,
        name: "mentions",
        columns: &[("user_id", "bigint"), ("message_id", "bigint")],
    },
    Table {
        source: None,
        name: "reactions",
        columns: &[
            ("message_id", "bigint"),
            ("emoji", "text"),
            ("user_id", "bigint"),
            ("at", "bigint"),
        ],
    },
    // What is known of each upload; the bytes stay where the server keeps them.
    Table {
        source: None,
        name: "attachments",
        columns: &[
            ("id", "text"),
            ("room_id", "bigint"),
            ("uploader_id", "bigint"),
            ("message_id", "bigint"),
            ("name", "text"),
            ("content_type", "text"),
            ("size", "bigint"),
            ("width", "bigint"),
            ("height", "bigint"),
            ("created_at", "bigint"),
            ("position", "bigint"),
        ],
    },
    Table {
        source: None,
        name: "audit",
        columns: &[
            ("id", "bigint"),
            ("at", "bigint"),
            ("actor", "bigint"),
            ("action", "text"),
            ("user_id", "bigint"),
            ("invite_id", "bigint"),
            ("message_id", "bigint"),
            ("detail", "text"),
        ],
    },
    // PostgreSQL keeps every entry of the log but the messages in one table.
    Table {
        source: Some("message_changes"),
        name: "log_changes",
        columns: &[
            ("id", "bigint"),
            ("kind", "text"),
            ("room_id", "bigint"),
            ("user_id", "bigint"),
            ("message_id", "bigint"),
        ],
    },
];

/// One column's values of a batch, typed for PostgreSQL.
enum Column {
    Int(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Text(Vec<Option<String>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

impl Column {
    fn new(pg_type: &str) -> Column {
        match pg_type {
            "bigint" => Column::Int(Vec::new()),
            "boolean" => Column::Bool(Vec::new()),
            "bytea" => Column::Bytes(Vec::new()),
            _ => Column::Text(Vec::new()),
        }
    }

    fn push(&mut self, row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<()> {
        match self {
            Column::Int(values) => values.push(row.get(at)?),
            Column::Bool(values) => values.push(row.get(at)?),
            Column::Text(values) => values.push(row.get(at)?),
            Column::Bytes(values) => values.push(row.get(at)?),
        }
        Ok(())
    }

    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Column::Int(values) => values,
            Column::Bool(values) => values,
            Column::Text(values) => values,
            Column::Bytes(values) => values,
        }
    }
}

/// Copies the SQLite database at `from` (read-only; a server must not be writing it) into the
/// PostgreSQL database at `to`, which is migrated first and must hold no users yet. Everything
/// is copied in one transaction, ids included, so clients' cursors stay valid; the log's head
/// and the id sequences continue after the copied rows. A database from a newer build is
/// refused on either side.
pub async fn copy_sqlite_to_postgres(from: &Path, to: &str) -> Result<Copied, StoreError> {
    // Opening through the store migrates an older SQLite file and refuses a newer one.
    Store::open(from, StoreOptions::default())?.close().await;
    let target = Store::connect(to, StoreOptions::default()).await?;
    if !target.users().await?.is_empty() {
        return Err(StoreError::NotAllowed);
    }
    target.close().await;

    let source = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let (mut client, connection) = tokio_postgres::connect(to, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let tx = client.transaction().await?;
    let mut copied = Copied::default();
    for table in TABLES {
        let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
        let insert = format!(
            "INSERT INTO {} ({}) SELECT * FROM unnest({})",
            table.name,
            names.join(", "),
            table
                .columns
                .iter()
                .enumerate()
                .map(|(i, (_, ty))| format!("${}::{ty}[]", i + 1))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let insert = tx.prepare(&insert).await?;
        let mut stmt = source
            .prepare(&format!(
                "SELECT {} FROM {} ORDER BY rowid",
                names.join(", "),
                table.source.unwrap_or(table.name)
            ))
            .or_else(|_| {
                // WITHOUT ROWID tables: their primary key orders them.
                source.prepare(&format!(
                    "SELECT {} FROM {}",
                    names.join(", "),
                    table.source.unwrap_or(table.name)
                ))
            })?;
        let mut rows = stmt.query([])?;
        let mut count = 0;
        loop {
            let mut columns: Vec<Column> = table
                .columns
                .iter()
                .map(|(_, ty)| Column::new(ty))
                .collect();
            let mut in_batch = 0;
            while in_batch < BATCH {
                let Some(row) = rows.next()? else { break };
                for (at, column) in columns.iter_mut().enumerate() {
                    column.push(row, at)?;
                }
                in_batch += 1;
            }
            if in_batch == 0 {
                break;
            }
            let params: Vec<&(dyn ToSql + Sync)> = columns.iter().map(Column::as_sql).collect();
            tx.execute(&insert, &params).await?;
            count += in_batch;
        }
        match table.name {
            "users" => copied.users = count,
            "invites" => copied.invites = count,
            "sessions" => copied.sessions = count,
            "rooms" => copied.rooms = count,
            "members" => copied.members = count,
            "messages" => copied.messages = count,
            "mentions" => copied.mentions = count,
            "reactions" => copied.reactions = count,
            "audit" => copied.audit = count,
            "attachments" => copied.attachments = count,
            _ => copied.changes = count,
        }
    }
    // New rows continue after the copied ones: the identity columns, and the log.
    tx.batch_execute(
        "SELECT setval(pg_get_serial_sequence('users', 'id'), coalesce(max(id), 0) + 1, false) FROM users;
         SELECT setval(pg_get_serial_sequence('sessions', 'id'), coalesce(max(id), 0) + 1, false) FROM sessions;
         SELECT setval(pg_get_serial_sequence('rooms', 'id'), coalesce(max(id), 0) + 1, false) FROM rooms;
         SELECT setval(pg_get_serial_sequence('invites', 'id'), coalesce(max(id), 0) + 1, false) FROM invites;
         SELECT setval(pg_get_serial_sequence('audit', 'id'), coalesce(max(id), 0) + 1, false) FROM audit;
         UPDATE log_head SET last_id = greatest((SELECT coalesce(max(id), 0) FROM messages),
                                                (SELECT coalesce(max(id), 0) FROM log_changes));",
    )
    .await?;
    tx.commit().await?;
    drop(client);
    let _ = driver.await;
    Ok(copied)
}
