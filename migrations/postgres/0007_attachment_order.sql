-- A message shows its attachments in the order its author put them: their place in the message,
-- set when a message takes them (NULL while none does).
ALTER TABLE attachments ADD COLUMN position integer;
