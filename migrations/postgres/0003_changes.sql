-- Edits, deletions and reactions. A message row holds the message as it is now: its body after
-- the last edit (edited_at), or no body once deleted (deleted_at). Each change is also an entry
-- of the log, a row of log_changes numbered from log_head like every other, so a client that was
-- away learns of a change as of a message.
ALTER TABLE messages ADD COLUMN edited_at bigint;
ALTER TABLE messages ADD COLUMN deleted_at bigint;

ALTER TABLE log_changes DROP CONSTRAINT log_changes_kind_check;
ALTER TABLE log_changes ADD CONSTRAINT log_changes_kind_check CHECK (kind IN
    ('joined', 'left', 'session_ended', 'read_marker', 'edited', 'deleted', 'reacted'));
-- The changes to messages, for a replay of a user's rooms.
CREATE INDEX log_changes_messages ON log_changes (room_id, id)
    WHERE kind IN ('edited', 'deleted', 'reacted');

-- Who reacted to a message with what; a deleted message has none.
CREATE TABLE reactions (
    message_id bigint NOT NULL REFERENCES messages(id),
    emoji      text NOT NULL,
    user_id    bigint NOT NULL REFERENCES users(id),
    at         bigint NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);
