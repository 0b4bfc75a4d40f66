-- The transport the user pinned in the settings (a `TransportKind` name such as 'long-polling');
-- NULL climbs the ladder from the WebSocket down as far as the network needs.
ALTER TABLE state ADD COLUMN transport TEXT;
