-- Edits, deletions and reactions, as the server last said: a cached message is kept as it now is.
-- reactions is the wire's JSON list ([{"emoji": …, "users": […]}, …]); NULL when there are none.
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted_at INTEGER;
ALTER TABLE messages ADD COLUMN reactions TEXT;
