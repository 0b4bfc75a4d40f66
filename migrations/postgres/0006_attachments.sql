-- Files and images shared in a room (see the SQLite store's 0007_attachments.sql): the bytes are
-- kept elsewhere under the random id; size counts towards the uploader's quota; width and height
-- are set for an image the server could open, which then also has a thumbnail.
CREATE TABLE attachments (
    id           text PRIMARY KEY,
    room_id      bigint NOT NULL REFERENCES rooms(id),
    uploader_id  bigint NOT NULL REFERENCES users(id),
    message_id   bigint REFERENCES messages(id),
    name         text NOT NULL,
    content_type text NOT NULL,
    size         bigint NOT NULL CHECK (size >= 0),
    width        integer,
    height       integer,
    created_at   bigint NOT NULL,
    CHECK ((width IS NULL) = (height IS NULL))
);
CREATE INDEX attachments_uploader ON attachments (uploader_id);
CREATE INDEX attachments_message ON attachments (message_id);
