//! Close codes of the chat channel, and what a client should do on each.
//!
//! 1005, 1006 and 1015 are never sent on the wire (RFC 6455 §7.4.1); a client sees 1006 when the
//! connection dropped without a close frame and should reconnect with backoff.

/// The client or the server is done; do not reconnect.
pub const NORMAL: u16 = 1000;
/// The server is shutting down. Reconnect with backoff, then `sync`.
pub const GOING_AWAY: u16 = 1001;
/// The client's frames broke RFC 6455: unmasked, a reserved bit or opcode, a fragmented or
/// oversize control frame, a continuation of nothing, a close code not to be sent.
pub const PROTOCOL_ERROR: u16 = 1002;
/// The client sent a binary frame; the protocol is JSON text only.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// A text frame was not valid UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// The connection broke a policy of the server. Tidings servers end a session with
/// [`SESSION_EXPIRED`] or [`SESSION_REVOKED`] instead; a client that gets 1008 should still lock,
/// not knowing which.
pub const POLICY: u16 = 1008;
/// A frame was larger than the server's frame limit.
pub const TOO_BIG: u16 = 1009;
/// The server failed unexpectedly. Reconnect with backoff.
pub const INTERNAL_ERROR: u16 = 1011;
/// The server is at its connection limit. Reconnect later, with backoff.
pub const OVERLOADED: u16 = 1013;
/// The client fell behind: its send queue reached the cap. Nothing was silently dropped; reconnect
/// and `sync` from the last message id seen.
pub const LAGGING: u16 = 4000;
/// The client missed the heartbeat: no pong (nor any frame) within two heartbeat intervals.
pub const HEARTBEAT_TIMEOUT: u16 = 4001;
/// The session reached its lifetime or idle timeout while connected. Do not reconnect with this
/// token: lock, telling the user the session expired, and ask for the password again.
pub const SESSION_EXPIRED: u16 = 4002;
/// The session was revoked (from another device, or by logging out) while connected. Do not
/// reconnect with this token: lock, telling the user it was revoked.
pub const SESSION_REVOKED: u16 = 4003;
