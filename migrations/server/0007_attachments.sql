-- Files and images shared in a room. The bytes are not here: they are kept in the data dir (or an
-- object store) under the attachment's id, which is random and unguessable. An attachment belongs
-- to the room it was uploaded to, where its members may read it; message_id is set when a message
-- carries it. size counts towards the uploader's quota; width and height are set for an image the
-- server could open, which then also has a thumbnail.
CREATE TABLE attachments (
    id           TEXT PRIMARY KEY,
    room_id      INTEGER NOT NULL REFERENCES rooms(id),
    uploader_id  INTEGER NOT NULL REFERENCES users(id),
    message_id   INTEGER REFERENCES messages(id),
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    width        INTEGER,
    height       INTEGER,
    created_at   INTEGER NOT NULL,
    CHECK ((width IS NULL) = (height IS NULL))
) STRICT;
CREATE INDEX attachments_uploader ON attachments (uploader_id);
CREATE INDEX attachments_message ON attachments (message_id);
