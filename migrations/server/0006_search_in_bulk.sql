-- Indexing each message in the transaction that stores it (0005) wrote a segment of the
-- full-text index with every commit, and durable sends lost about 40 % of their rate. Messages are
-- indexed in bulk instead: search_state.indexed_up_to is the newest message id the index holds
-- (every message up to it is in it); the store's writer indexes the messages after it once enough
-- have accumulated, and before every search, so a search sees every message committed before it.
-- An edit or a deletion changes the index only for a message it already holds; a later message is
-- indexed as it then is.
DROP TRIGGER message_search_insert;
DROP TRIGGER message_search_update;
DROP TRIGGER message_search_delete;

CREATE TABLE search_state (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    indexed_up_to INTEGER NOT NULL
) STRICT;
INSERT INTO search_state (singleton, indexed_up_to)
    VALUES (1, (SELECT coalesce(max(id), 0) FROM messages));

CREATE TRIGGER message_search_update AFTER UPDATE OF body ON messages
WHEN old.id <= (SELECT indexed_up_to FROM search_state) BEGIN
    INSERT INTO message_search (message_search, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO message_search (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER message_search_delete AFTER DELETE ON messages
WHEN old.id <= (SELECT indexed_up_to FROM search_state) BEGIN
    INSERT INTO message_search (message_search, rowid, body) VALUES ('delete', old.id, old.body);
END;
