-- Tidings server schema, version 1.
--
-- Every table is STRICT so a wrongly typed value is an error instead of silently stored.
-- Timestamps are unix milliseconds. Hashes are 32-byte blobs; the store never sees the secrets.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    created_at    INTEGER NOT NULL
) STRICT;

-- An invite is spent when used_by/used_at are set; both are set together.
CREATE TABLE invites (
    code_hash  BLOB PRIMARY KEY CHECK (length(code_hash) = 32),
    created_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    used_by    INTEGER REFERENCES users(id),
    used_at    INTEGER,
    CHECK ((used_by IS NULL) = (used_at IS NULL))
) STRICT, WITHOUT ROWID;

-- expires_at is absolute; revoked sessions are kept so a stale token is told apart from a bad one.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    token_hash   BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    device       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

-- A group room has a name; a DM has none and is found by dm_key ("<smaller id>:<larger id>"),
-- whose uniqueness makes opening the same DM twice yield one room.
CREATE TABLE rooms (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('group', 'dm')),
    name       TEXT UNIQUE COLLATE NOCASE,
    dm_key     TEXT UNIQUE,
    created_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    CHECK (CASE kind
        WHEN 'group' THEN name IS NOT NULL AND dm_key IS NULL
        ELSE name IS NULL AND dm_key IS NOT NULL
    END)
) STRICT;

CREATE TABLE members (
    room_id      INTEGER NOT NULL REFERENCES rooms(id),
    user_id      INTEGER NOT NULL REFERENCES users(id),
    joined_at    INTEGER NOT NULL,
    last_read_id INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX members_user ON members (user_id, room_id);

-- AUTOINCREMENT: ids are monotonic and never reused, because a message id is the clients' resume
-- cursor. (author_id, client_id) makes a retried send idempotent.
CREATE TABLE messages (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id   INTEGER NOT NULL REFERENCES rooms(id),
    author_id INTEGER NOT NULL REFERENCES users(id),
    client_id TEXT,
    body      TEXT NOT NULL,
    sent_at   INTEGER NOT NULL,
    UNIQUE (author_id, client_id)
) STRICT;
-- author_id is included so unread counts (id > marker, not one's own) are answered from the index.
CREATE INDEX messages_room ON messages (room_id, id, author_id);

CREATE TABLE mentions (
    user_id    INTEGER NOT NULL REFERENCES users(id),
    message_id INTEGER NOT NULL REFERENCES messages(id),
    PRIMARY KEY (user_id, message_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX mentions_message ON mentions (message_id, user_id);
