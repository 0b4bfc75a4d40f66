//! Databases for the server under test, written directly with SQLite before it starts.
//!
//! `tidings-server init` makes a template once (so the schema is always the server's own); each
//! scenario copies it and adds what it needs: users, rooms, memberships, sessions, and — for the
//! history benchmark — millions of messages in one transaction through one prepared statement.
//!
//! Sessions are written the way the server stores them (the SHA-256 of the token), so no login
//! and no argon2 hash is spent on the benchmark's users; they have no password at all.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use crate::persistence::Sender;
use crate::target::Access;

/// The database file inside a data dir, as the server names it.
pub const DATABASE: &str = "tidings.db";
/// What seeded users have instead of a password hash: nothing verifies against it.
const NO_PASSWORD: &str = "!benchmark user: no password";
/// How long seeded sessions last.
const SESSION_LIFETIME_MS: i64 = 24 * 3600 * 1000;

/// Runs `tidings-server init` into `dir` and returns its database.
pub fn init_template(server_bin: &Path, dir: &Path) -> Result<PathBuf> {
    let mut child = std::process::Command::new(server_bin)
        .arg("--data-dir")
        .arg(dir)
        .args(["init", "--owner", "owner", "--password-stdin"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {} init", server_bin.display()))?;
    // The owner is never used; its password only has to exist.
    let password = random_token()?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{password}")?;
    }
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr)?;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("tidings-server init failed ({status}): {stderr}");
    }
    // The server leaves its writes in the write-ahead log; fold them into the database file so
    // that copying the one file copies everything.
    let db = dir.join(DATABASE);
    let conn = Connection::open(&db)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        bail!("could not take the template out of WAL mode (mode is {mode})");
    }
    conn.close().map_err(|(_, err)| err)?;
    Ok(db)
}

/// A copy of the template being filled in before its server starts.
#[derive(Debug)]
pub struct Seeder {
    conn: Connection,
    now: i64,
}

impl Seeder {
    /// Copies the template database into `data_dir` and opens the copy.
    pub fn copy(template: &Path, data_dir: &Path) -> Result<Seeder> {
        std::fs::create_dir_all(data_dir)?;
        let db = data_dir.join(DATABASE);
        std::fs::copy(template, &db)
            .with_context(|| format!("copying the template database to {}", db.display()))?;
        let conn = Connection::open(&db)?;
        // This connection is the only one and its work is thrown away if the run dies: no journal
        // and no fsync, so millions of rows go in at the speed of the page cache.
        let mode: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("delete") {
            bail!("could not take the template out of WAL mode (mode is {mode})");
        }
        conn.pragma_update(None, "journal_mode", "OFF")?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        conn.pragma_update(None, "cache_size", -262_144)?;
        Ok(Seeder {
            conn,
            now: now_ms(),
        })
    }

    pub fn user(&self, name: &str) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO users (name, password_hash, role, created_at) \
             VALUES (?1, ?2, 'member', ?3)",
            params![name, NO_PASSWORD, self.now],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// A live session for `user`; returns its bearer token.
    pub fn session(&self, user: i64, device: &str) -> Result<String> {
        let token = random_token()?;
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.conn.execute(
            "INSERT INTO sessions \
             (user_id, token_hash, device, created_at, last_seen_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            params![user, hash, device, self.now, self.now + SESSION_LIFETIME_MS],
        )?;
        Ok(token)
    }

    /// A group room created by `creator`, with `members` in it.
    pub fn room(&self, name: &str, creator: i64, members: &[i64]) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO rooms (kind, name, created_by, created_at) VALUES ('group', ?1, ?2, ?3)",
            params![name, creator, self.now],
        )?;
        let room = self.conn.last_insert_rowid();
        let mut insert = self.conn.prepare(
            "INSERT INTO members (room_id, user_id, joined_at, last_read_id) \
             VALUES (?1, ?2, ?3, 0)",
        )?;
        for user in members {
            insert.execute(params![room, user, self.now])?;
        }
        Ok(room)
    }

    /// `count` messages by `author` in `room`, in one transaction. Returns the last id.
    pub fn messages(&mut self, room: i64, author: i64, count: u64) -> Result<i64> {
        self.messages_with(author, count, |i, body| {
            use std::fmt::Write as _;
            let _ = write!(body, "history message {i}: the quick brown fox");
            room
        })
    }

    /// `count` messages by `author`, one a millisecond, in one transaction through one prepared
    /// statement: `write(i, body)` writes the `i`th message's body into the empty `body` and
    /// says which room it goes to. Then indexes them for search. Returns the last id.
    pub fn messages_with(
        &mut self,
        author: i64,
        count: u64,
        mut write: impl FnMut(u64, &mut String) -> i64,
    ) -> Result<i64> {
        let tx = self.conn.transaction()?;
        let mut last = 0;
        {
            let mut insert = tx.prepare(
                "INSERT INTO messages (room_id, author_id, body, sent_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let start = self.now - i64::try_from(count).unwrap_or(i64::MAX / 2);
            let mut body = String::with_capacity(128);
            for i in 0..count {
                body.clear();
                let room = write(i, &mut body);
                let sent_at = start + i64::try_from(i).unwrap_or(0);
                insert.execute(params![room, author, body, sent_at])?;
            }
            if count > 0 {
                last = tx.last_insert_rowid();
            }
        }
        tx.commit()?;
        self.index_for_search()?;
        Ok(last)
    }

    /// Adds every message to the full-text index, as the server's store does in bulk (see
    /// `migrations/server/0006_search_in_bulk.sql`), so the server starts with nothing to index.
    fn index_for_search(&mut self) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO message_search (rowid, body) \
             SELECT id, body FROM messages WHERE id > (SELECT indexed_up_to FROM search_state)",
            [],
        )?;
        tx.execute(
            "UPDATE search_state SET indexed_up_to = (SELECT coalesce(max(id), 0) FROM messages)",
            [],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Bytes of the database's pages that the tables and indexes whose name is `LIKE` `pattern`
    /// hold (SQLite's `dbstat`): what a table or an index costs on disk.
    pub fn bytes_of(&self, pattern: &str) -> Result<u64> {
        let bytes: i64 = self.conn.query_row(
            "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name LIKE ?1",
            [pattern],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    /// `count` senders for the persistence benchmark, each a user alone in a room of its own
    /// with a session.
    pub fn senders(&self, count: usize) -> Result<Vec<Sender>> {
        (0..count)
            .map(|i| {
                let user = self.user(&format!("sender-{i}"))?;
                let token = self.session(user, "tidings-bench persistence")?;
                let room = self.room(&format!("persistence-{i}"), user, &[user])?;
                Ok(Sender { token, room })
            })
            .collect()
    }

    /// The fan-out's room: a subscriber user with `sessions` sessions and a publisher.
    pub fn fanout(&self, sessions: usize) -> Result<Access> {
        let subscriber = self.user("subscriber")?;
        let publisher = self.user("publisher")?;
        let access = Access {
            subscriber_tokens: (0..sessions.max(1))
                .map(|_| self.session(subscriber, "tidings-bench subscribers"))
                .collect::<Result<Vec<_>>>()?
                .into(),
            publisher_token: self.session(publisher, "tidings-bench publisher")?,
            room: self.room("fanout", publisher, &[publisher, subscriber])?,
        };
        Ok(access)
    }

    /// Puts the database back in WAL mode, as the server keeps it, and closes it.
    pub fn finish(self) -> Result<()> {
        let _: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        self.conn.close().map_err(|(_, err)| err)?;
        Ok(())
    }
}

/// A history room seeded for the history benchmark.
#[derive(Debug, Clone)]
pub struct SeededHistory {
    pub room: i64,
    pub token: String,
    pub rows: u64,
    pub last_id: i64,
    pub seconds: f64,
    pub database_bytes: u64,
}

/// Seeds `rows` messages into one room of a reader's, timing the insert.
pub fn history(template: &Path, data_dir: &Path, rows: u64) -> Result<SeededHistory> {
    let mut seeder = Seeder::copy(template, data_dir)?;
    let reader = seeder.user("reader")?;
    let writer = seeder.user("writer")?;
    let token = seeder.session(reader, "tidings-bench history")?;
    let room = seeder.room("history", writer, &[reader, writer])?;
    let started = Instant::now();
    let last_id = seeder.messages(room, writer, rows)?;
    seeder.finish()?;
    let seconds = started.elapsed().as_secs_f64();
    let database_bytes = std::fs::metadata(data_dir.join(DATABASE))
        .map(|m| m.len())
        .unwrap_or(0);
    Ok(SeededHistory {
        room,
        token,
        rows,
        last_id,
        seconds,
        database_bytes,
    })
}

/// 256 random bits, hex: the shape of a token that nobody can guess.
pub fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(hex::encode(bytes))
}

fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema is the server's; these tests apply its migration files in order the way
    /// SQLite would, to check the seeder's statements against the real tables.
    fn template(dir: &Path) -> PathBuf {
        let db = dir.join("template.db");
        let conn = Connection::open(&db).unwrap();
        for step in [
            include_str!("../../../migrations/server/0001_init.sql"),
            include_str!("../../../migrations/server/0002_everyone.sql"),
            include_str!("../../../migrations/server/0003_changes.sql"),
            include_str!("../../../migrations/server/0004_replies.sql"),
            include_str!("../../../migrations/server/0005_search.sql"),
            include_str!("../../../migrations/server/0006_search_in_bulk.sql"),
        ] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        db
    }

    #[test]
    fn seeds_users_sessions_rooms_and_messages_the_schema_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let template = template(dir.path());
        let seeded = history(&template, &dir.path().join("data"), 1000).unwrap();
        assert_eq!(seeded.rows, 1000);
        let conn = Connection::open(dir.path().join("data").join(DATABASE)).unwrap();
        let (count, max): (i64, i64) = conn
            .query_row(
                "SELECT count(*), max(id) FROM messages WHERE room_id = ?1",
                [seeded.room],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((count, max), (1000, seeded.last_id));
        let hash: [u8; 32] = Sha256::digest(seeded.token.as_bytes()).into();
        let user: String = conn
            .query_row(
                "SELECT u.name FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = ?1",
                [hash],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(user, "reader");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        // AUTOINCREMENT keeps counting after the seeded rows.
        let seq: i64 = conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'messages'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(seq, seeded.last_id);
        // And every message is in the search index, as the server's store would have it.
        let (indexed, found): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT indexed_up_to FROM search_state), \
                        (SELECT count(*) FROM message_search WHERE message_search MATCH 'fox')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((indexed, found), (seeded.last_id, 1000));
    }

    #[test]
    fn tokens_are_long_and_fresh() {
        let a = random_token().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_token().unwrap());
    }
}
