//! How a failed request is answered: an HTTP status and an [`ErrorBody`] with a stable code.

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tidings_proto::v1::{ErrorBody, ErrorCode};
use tidings_store::StoreError;

/// An error on its way to a client. Built from a code; the status follows from the code.
#[derive(Debug)]
pub struct ApiError {
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            body: ErrorBody::new(code, message),
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(ErrorCode::Unauthorized, "no valid session: log in again")
    }

    pub fn rate_limited(wait: Duration) -> Self {
        let mut e = Self::new(
            ErrorCode::RateLimited,
            "sending too fast; slow down and retry",
        );
        e.body.retry_after_ms = Some(wait.as_millis().max(1) as u64);
        e
    }

    /// A 503 for a request the server has no room for now (a limit on work at once, a
    /// database out of reach), saying when to try again.
    pub fn overloaded(message: impl Into<String>, retry: Duration) -> Self {
        let mut e = Self::new(ErrorCode::Overloaded, message);
        e.body.retry_after_ms = Some(retry.as_millis().max(1) as u64);
        e
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(%err, "internal error");
        Self::new(ErrorCode::Internal, "internal server error")
    }

    pub fn status(&self) -> StatusCode {
        match self.body.code {
            ErrorCode::BadFrame | ErrorCode::UnknownType | ErrorCode::Invalid => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::SubprotocolRequired => StatusCode::BAD_REQUEST,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnknownRoom | ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::NotMember
            | ErrorCode::Forbidden
            | ErrorCode::OriginNotAllowed
            | ErrorCode::AccountDisabled
            | ErrorCode::CsrfHeaderRequired => StatusCode::FORBIDDEN,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unauthorized | ErrorCode::BadCredentials => StatusCode::UNAUTHORIZED,
            ErrorCode::InviteInvalid => StatusCode::FORBIDDEN,
            ErrorCode::NameTaken => StatusCode::CONFLICT,
            ErrorCode::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Storage => StatusCode::INSUFFICIENT_STORAGE,
            ErrorCode::Internal | ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.body.message)
    }
}

impl std::error::Error for ApiError {}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NameTaken => ApiError::new(ErrorCode::NameTaken, "that name is taken"),
            StoreError::InviteInvalid => ApiError::new(
                ErrorCode::InviteInvalid,
                "the invite code is unknown, used or expired",
            ),
            StoreError::NotFound => ApiError::new(ErrorCode::NotFound, "not found"),
            StoreError::QuotaExceeded { used, quota } => ApiError::new(
                ErrorCode::TooLarge,
                format!("upload quota reached: {used} of {quota} bytes used"),
            ),
            StoreError::TooMany(what) => {
                ApiError::new(ErrorCode::Invalid, format!("too many {what}"))
            }
            StoreError::NotAllowed => {
                ApiError::new(ErrorCode::Forbidden, "not allowed on this room")
            }
            StoreError::DiskFull => {
                tracing::error!("storage is full: refusing writes");
                ApiError::new(
                    ErrorCode::Storage,
                    "the server's disk is full; nothing was stored",
                )
            }
            StoreError::Unavailable(why) => {
                tracing::warn!(%why, "the database is unavailable");
                ApiError::overloaded(
                    "the database is unavailable; nothing was stored, try again",
                    Duration::from_secs(1),
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> Self {
        ApiError::internal(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry = self.body.retry_after_ms;
        let mut response = (status, axum::Json(self.body)).into_response();
        if let Some(ms) = retry {
            let secs = ms.div_ceil(1000).max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON request body whose rejections are answered with an [`ErrorBody`] like every other error.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

/// Path parameters, rejected with an [`ErrorBody`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// A query string, rejected with an [`ErrorBody`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::TooLarge, "request body too large")
        } else {
            ApiError::new(ErrorCode::BadFrame, rejection.body_text())
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(ErrorCode::Invalid, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(ErrorCode::Invalid, rejection.body_text())
    }
}
