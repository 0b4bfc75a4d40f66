-- What the owner manages: members they disabled, invites with a use count that can be revoked,
-- and the audit log of every administrative action.

-- A disabled member cannot log in; their sessions were revoked when they were disabled.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

-- An invite admits up to max_uses people until it expires or is revoked. It gets an id, so it
-- can be listed and revoked without its code, which only its hash stands for. An invite of
-- before had one use: uses is 1 where it was used.
CREATE TABLE invites_admin (
    id           INTEGER PRIMARY KEY,
    code_hash    BLOB NOT NULL UNIQUE CHECK (length(code_hash) = 32),
    created_by   INTEGER REFERENCES users(id),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    max_uses     INTEGER NOT NULL CHECK (max_uses >= 1),
    uses         INTEGER NOT NULL DEFAULT 0 CHECK (uses BETWEEN 0 AND max_uses),
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;
INSERT INTO invites_admin (code_hash, created_by, created_at, expires_at, max_uses, uses,
                           last_used_at)
    SELECT code_hash, created_by, created_at, expires_at, 1, used_at IS NOT NULL, used_at
    FROM invites ORDER BY created_at, code_hash;
DROP TABLE invites;
ALTER TABLE invites_admin RENAME TO invites;

-- Sessions revoked by another process (the host's command line while the server serves) are
-- found by when, as SQLite has no log shared between processes.
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Who did what, when. actor is NULL for the host at the server's command line. user_id is the
-- member acted on (for a message deleted, its author), invite_id and message_id what else was.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    actor      INTEGER REFERENCES users(id),
    action     TEXT NOT NULL,
    user_id    INTEGER REFERENCES users(id),
    invite_id  INTEGER REFERENCES invites(id),
    message_id INTEGER,
    detail     TEXT
) STRICT;
