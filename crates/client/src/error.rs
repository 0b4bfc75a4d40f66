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
    /// The server's TLS certificate is not one this client believes: no root the system trusts
    /// vouches for it, and it is not the one pinned for this server. Show `fingerprint` to the
    /// user to compare with the host's; if it is the same, [`crate::Client::trust_certificate`]
    /// pins it. With `pinned`, the server showed another certificate than the one pinned before.
    #[error("{}", untrusted_message(.server, .fingerprint, .reason, .pinned.as_deref()))]
    UntrustedCertificate {
        server: String,
        fingerprint: String,
        reason: String,
        pinned: Option<String>,
    },
    /// What was given as a certificate's fingerprint is not one.
    #[error("not a SHA-256 fingerprint (32 hex bytes, colon-separated): {0:?}")]
    BadFingerprint(String),
    /// The server said something this client cannot read.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// The local cache failed.
    #[error("local storage: {0}")]
    Local(#[from] LocalError),
}

fn untrusted_message(
    server: &str,
    fingerprint: &str,
    reason: &str,
    pinned: Option<&str>,
) -> String {
    match pinned {
        Some(pinned) => format!(
            "the certificate of {server} changed since you trusted it: it was {pinned}, it is now \
             {fingerprint} ({reason}); trust the new one only if the host says it changed"
        ),
        None => format!(
            "the certificate of {server} is not trusted ({reason}); its SHA-256 fingerprint is \
             {fingerprint}: trust it only if it is the one the host gave you"
        ),
    }
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
