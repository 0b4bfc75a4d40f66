-- Replies: the message answered, as the server last described it (the wire's JSON quote), and
-- what an outbox message answers.
ALTER TABLE messages ADD COLUMN reply_to INTEGER;
ALTER TABLE messages ADD COLUMN quote TEXT;
ALTER TABLE outbox ADD COLUMN reply_to INTEGER;
