//! The one error type commands reject with: `{ "code": ..., "message": ... }`, where `code` is a
//! protocol error code or one of the shell's own (`unreachable`, `locked`, `internal`,
//! `untrusted_certificate` and `certificate_changed` — which also carry the certificate's
//! `fingerprint`, to show).

use serde::Serialize;
use tidings_client::ClientError;

#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[error("{message}")]
pub struct CommandError {
    pub code: String,
    pub message: String,
    /// With `untrusted_certificate` or `certificate_changed`: the SHA-256 fingerprint of the
    /// certificate the server showed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub fingerprint: Option<String>,
}

impl CommandError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        CommandError {
            code: code.to_owned(),
            message: message.into(),
            fingerprint: None,
        }
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(%err, "command failed");
        CommandError::new("internal", err.to_string())
    }
}

impl From<ClientError> for CommandError {
    fn from(err: ClientError) -> Self {
        let code = match &err {
            ClientError::BadUrl(_) => "bad_url".to_owned(),
            ClientError::Unreachable(_) => "unreachable".to_owned(),
            ClientError::Locked => "locked".to_owned(),
            ClientError::NoAccount => "no_account".to_owned(),
            ClientError::Server(body) => serde_json::to_value(body.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "unknown".to_owned()),
            ClientError::UntrustedCertificate { pinned: None, .. } => {
                "untrusted_certificate".to_owned()
            }
            ClientError::UntrustedCertificate {
                pinned: Some(_), ..
            } => "certificate_changed".to_owned(),
            ClientError::BadFingerprint(_) => "invalid".to_owned(),
            ClientError::Protocol(_) | ClientError::Local(_) => "internal".to_owned(),
        };
        let fingerprint = match &err {
            ClientError::UntrustedCertificate { fingerprint, .. } => Some(fingerprint.clone()),
            _ => None,
        };
        CommandError {
            code,
            message: err.to_string(),
            fingerprint,
        }
    }
}

impl From<tidings_server::ApiError> for CommandError {
    fn from(err: tidings_server::ApiError) -> Self {
        let code = serde_json::to_value(err.body.code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned());
        CommandError {
            code,
            message: err.body.message,
            fingerprint: None,
        }
    }
}

pub type CommandResult<T> = Result<T, CommandError>;
