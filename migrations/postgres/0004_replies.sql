-- Replies: a message may answer another of the same room. Its author counts as mentioned by the
-- reply (a row of mentions), so a reply to you notifies and counts like an @mention.
ALTER TABLE messages ADD COLUMN reply_to bigint REFERENCES messages(id);
