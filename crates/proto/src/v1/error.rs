//! Error codes shared by the HTTP API, the chat channel and the feed.

use serde::{Deserialize, Serialize};

/// What went wrong, as a stable machine-readable code. The message beside it is for people and may
/// change; clients branch on the code only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame or body is not valid JSON, or does not have the fields its type needs.
    BadFrame,
    /// The frame's `type` is not one this server knows.
    UnknownType,
    /// A value is out of range: an empty body, a bad name, a client id too long.
    Invalid,
    /// The message body or the request is larger than the server accepts.
    TooLarge,
    /// The room does not exist.
    UnknownRoom,
    /// The room exists but the user is not a member (or may not do this there).
    NotMember,
    /// The user is sending faster than the per-user rate limit; retry after `retry_after_ms`.
    RateLimited,
    /// No session token, or one that is unknown, expired or revoked. The client must log in.
    Unauthorized,
    /// Logged in, but not allowed to do this (for example: only the owner can invite).
    Forbidden,
    /// The request came from an Origin that is not allowed to use cookie authentication.
    OriginNotAllowed,
    /// A request authenticated by the session cookie that changes something lacks the
    /// `x-tidings-csrf` header.
    CsrfHeaderRequired,
    /// The WebSocket upgrade offered none of the server's subprotocols.
    SubprotocolRequired,
    /// Wrong user name or password.
    BadCredentials,
    /// The right password, but the group's owner has disabled the account.
    AccountDisabled,
    /// The invite code is unknown, used or expired.
    InviteInvalid,
    /// The name (of a user or a room) is already taken.
    NameTaken,
    /// The thing asked for does not exist.
    NotFound,
    /// The server is at capacity; try again later.
    Overloaded,
    /// The server's storage failed (for example the disk is full); nothing was stored.
    Storage,
    /// A bug or an unexpected failure on the server.
    Internal,
    /// A code this client does not know yet (sent by a newer server). Never sent; a TypeScript
    /// client meets such a code as a string outside the union.
    #[serde(other)]
    #[cfg_attr(feature = "typescript", ts(skip))]
    Unknown,
}

/// An error as it travels: in an HTTP response body, or in an `error` frame on the chat channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "typescript", ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// A sentence for people.
    pub message: String,
    /// On the chat channel: the `type` of the frame this error answers, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<String>,
    /// On the chat channel: the `client_id` of the `send` this error answers, so the client can
    /// match it to its outbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// With `rate_limited` and `overloaded`: when to try again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            frame: None,
            client_id: None,
            retry_after_ms: None,
        }
    }
}
