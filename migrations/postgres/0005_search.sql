-- Full-text search over message bodies: a GIN index of each body's words under the 'simple'
-- configuration (lower case, no stemming, no stop words), which a search's to_tsquery('simple', …)
-- is matched against. A deleted message's body is empty, so it has no words left to be found by.
CREATE INDEX messages_search ON messages USING gin (to_tsvector('simple', body));
