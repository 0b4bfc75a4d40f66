-- Attachments: what a cached message carries (the wire's JSON list, NULL when none), and what an
-- outbox message will carry (its uploads, already on the server).
ALTER TABLE messages ADD COLUMN attachments TEXT;
ALTER TABLE outbox ADD COLUMN attachments TEXT;
