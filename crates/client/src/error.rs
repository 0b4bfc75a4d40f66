//! What can go wrong talking to a server, as one documented enum.

use tidings_proto::v1::{ErrorBody, ErrorCode};

use crate::store::LocalError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL is not a usable `http://` or `https://` URL.
    #[error("not a server URL: {0}")]
    BadUrl(String),
    /// The server could not be reached (refused, unresolvable, timed out).
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    /// The server answered with an error; match on [`ClientError::code`].
    #[error("{}", .0.message)]
    Server(ErrorBody),
    /// The session is locked: log in again (unlock) before talking to the server.
    #[error("the session is locked; log in again")]
    Locked,
    /// No account is set up in this client's data yet.
    #[error("not logged in to any server")]
    NoAccount,
    /// The server said something this client cannot read.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// The local cache failed.
    #[error("local storage: {0}")]
    Local(#[from] LocalError),
}

impl ClientError {
    /// The server's error code, when the server refused something.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server(body) => Some(body.code),
            ClientError::Locked => Some(ErrorCode::Unauthorized),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(err: reqwest::Error) -> Self {
        if err.is_builder() {
            ClientError::BadUrl(err.to_string())
        } else if err.is_decode() {
            ClientError::Protocol(err.to_string())
        } else {
            ClientError::Unreachable(err.to_string())
        }
    }
}

impl From<tokio::task::JoinError> for ClientError {
    fn from(err: tokio::task::JoinError) -> Self {
        ClientError::Protocol(format!("background task failed: {err}"))
    }
}
