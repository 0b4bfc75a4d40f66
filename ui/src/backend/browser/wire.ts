// The protocol's names the browser backend needs, as the server spells them
// (`crates/proto/src/v1`). The shapes themselves are the generated types.

export const SUBPROTOCOL = 'tidings.v1';
export const CSRF_HEADER = 'x-tidings-csrf';
export const WS_PATH = '/api/ws';
export const FEED_PATH = '/api/events';
export const TRANSPORTS_PATH = '/api/transports';
export const POLL_PATH = '/api/poll';
export const STREAM_PATH = '/api/stream';
export const IFRAME_PATH = '/api/stream/iframe';
export const FRAMES_PATH = '/api/frames';
export const EVENT_BATCH = 'batch';
/** The global the iframe stream's scripts call: `parent.tidings(batch)`. */
export const IFRAME_CALLBACK = 'tidings';

/** WebSocket close codes that end the session (`v1/close.rs`). */
export const CLOSE_SESSION_EXPIRED = 4002;
export const CLOSE_SESSION_REVOKED = 4003;
