-- Tidings client local store, version 1: one file per account, holding a cache of what the server
-- said (rooms, messages) and what only this client knows (outbox, drafts, settings).
--
-- Every table is STRICT so a wrongly typed value is an error instead of silently stored.
-- Timestamps are unix milliseconds. Ids are the server's.

-- The account this file belongs to: at most one row. token is NULL while the session is locked.
CREATE TABLE account (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    server     TEXT NOT NULL,
    user_id    INTEGER NOT NULL,
    user_name  TEXT NOT NULL,
    token      TEXT,
    session_id INTEGER
) STRICT;

-- Client-wide state: exactly one row, created here so reads never have to handle its absence.
-- cursor is kept apart from max(messages.id) because messages are deleted with their room, and
-- the sync position must never move back.
CREATE TABLE state (
    singleton      INTEGER PRIMARY KEY CHECK (singleton = 1),
    cursor         INTEGER NOT NULL DEFAULT 0,
    feed_cursor    TEXT,
    default_notify TEXT NOT NULL DEFAULT 'all'
        CHECK (default_notify IN ('all', 'mentions', 'nothing')),
    do_not_disturb INTEGER NOT NULL DEFAULT 0 CHECK (do_not_disturb IN (0, 1))
) STRICT;
INSERT INTO state (singleton) VALUES (1);

-- The user's rooms as last seen from the server, with the read position and unread counts.
-- dm_peer_id/dm_peer_name are set together, for a DM seen by one of its members.
CREATE TABLE rooms (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('group', 'dm')),
    name            TEXT,
    dm_peer_id      INTEGER,
    dm_peer_name    TEXT,
    last_read_id    INTEGER NOT NULL DEFAULT 0,
    latest_id       INTEGER NOT NULL DEFAULT 0,
    unread          INTEGER NOT NULL DEFAULT 0 CHECK (unread >= 0),
    unread_mentions INTEGER NOT NULL DEFAULT 0 CHECK (unread_mentions >= 0),
    CHECK ((dm_peer_id IS NULL) = (dm_peer_name IS NULL))
) STRICT;
-- Looked up by name ("#ops", "@bo"), compared case-insensitively like the server compares them.
CREATE INDEX rooms_name ON rooms (name COLLATE NOCASE);
CREATE INDEX rooms_dm_peer_name ON rooms (dm_peer_name COLLATE NOCASE);

-- Cached messages. No foreign key to rooms: a message may arrive before the room list that
-- names its room; messages of rooms that leave the list are deleted explicitly.
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    room_id     INTEGER NOT NULL,
    author_id   INTEGER NOT NULL,
    author_name TEXT NOT NULL,
    body        TEXT NOT NULL,
    sent_at     INTEGER NOT NULL,
    client_id   TEXT
) STRICT;
-- author_id is included so unread counts (id > marker, not one's own) are answered from the index.
CREATE INDEX messages_room ON messages (room_id, id, author_id);

-- Users mentioned by a message; deleted with it.
CREATE TABLE mentions (
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL,
    PRIMARY KEY (message_id, user_id)
) STRICT, WITHOUT ROWID;

-- Messages written but not yet acknowledged by the server, in the order they were written (seq).
-- client_id makes a resend idempotent on the server. No foreign key to rooms: a pending message
-- outlives a room list that no longer names its room, and the server's answer settles it.
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id  TEXT NOT NULL UNIQUE,
    room_id    INTEGER NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error TEXT
) STRICT;

-- One unsent draft per room; an empty draft is no row. Kept when the room leaves the list: the
-- user's own text is never dropped silently.
CREATE TABLE drafts (
    room_id INTEGER PRIMARY KEY,
    text    TEXT NOT NULL CHECK (text <> '')
) STRICT;

-- Per-room notification level; a room without a row follows state.default_notify. Kept when the
-- room leaves the list, so rejoining keeps the user's choice.
CREATE TABLE notify_levels (
    room_id INTEGER PRIMARY KEY,
    level   TEXT NOT NULL CHECK (level IN ('all', 'mentions', 'nothing'))
) STRICT;
