-- Edits, deletions and reactions. A message row holds the message as it is now: its body after
-- the last edit (edited_at), or no body once deleted (deleted_at). Each change is also an entry of
-- the log, in message_changes: its id is taken from the messages' AUTOINCREMENT sequence (the
-- writer raises sqlite_sequence's counter), so messages and changes share one increasing id, the
-- cursor clients resume from, and a client that was away learns of a change as of a message.
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted_at INTEGER;

CREATE TABLE message_changes (
    id         INTEGER PRIMARY KEY,
    room_id    INTEGER NOT NULL REFERENCES rooms(id),
    message_id INTEGER NOT NULL REFERENCES messages(id),
    user_id    INTEGER NOT NULL REFERENCES users(id),
    kind       TEXT NOT NULL CHECK (kind IN ('edited', 'deleted', 'reacted')),
    at         INTEGER NOT NULL
) STRICT;
CREATE INDEX message_changes_room ON message_changes (room_id, id);

-- Who reacted to a message with what; a deleted message has none.
CREATE TABLE reactions (
    message_id INTEGER NOT NULL REFERENCES messages(id),
    emoji      TEXT NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    at         INTEGER NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
) STRICT, WITHOUT ROWID;
