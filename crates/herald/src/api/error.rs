//! The one error type at the HTTP edge. Each variant's doc names its status; internal
//! errors are logged and never shown.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

use super::envelope::schema_path;
use crate::domain::Invalid;
use crate::store::StoreError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a query parameter that cannot be read.
    #[error("{0}")]
    BadQuery(String),
    /// 400: an `Idempotency-Key` that is not 1 to 255 printable characters.
    #[error("{0}")]
    BadHeader(String),
    /// 400: a body that is not JSON.
    #[error("{0}")]
    MalformedJson(String),
    /// 401, with `WWW-Authenticate: Basic` on the REST API.
    #[error("{message}")]
    Unauthorized { message: &'static str, basic: bool },
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405.
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    /// 409: clashes with what exists.
    #[error("{0}")]
    Conflict(String),
    /// 409, with `Retry-After: 1`: another request with the same `Idempotency-Key` was being
    /// answered; this one wrote nothing.
    #[error(
        "a request with this Idempotency-Key was being answered at the same time; this one wrote nothing: \
         repeat it to get the first one's answer"
    )]
    KeyInFlight,
    /// 408: the body did not arrive by its deadline (`[http] body_timeout`).
    #[error("the request body did not arrive within {0:?}; send it whole, at once")]
    BodyTimeout(std::time::Duration),
    /// 413.
    #[error("{0}")]
    TooLarge(String),
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: JSON of the wrong shape (missing field, wrong type, unknown field).
    #[error("{0}")]
    InvalidBody(String),
    /// 422: a value that breaks a rule.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// 429, with `Retry-After` in seconds.
    #[error("too many requests; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// 503, with `Retry-After: 5`: the database's disk is full; nothing was written.
    #[error(
        "the server's storage is full, so nothing was written; reads still work, and writes will once space is freed: try again later"
    )]
    StorageFull,
    /// 503, with `Retry-After: 1`: the database does not answer (or, for `/readyz`, not in
    /// time).
    #[error("{0}")]
    Unavailable(String),
    /// 500: logged, shown only as "internal error".
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The result of a handler.
pub type ApiResult = Result<Response, ApiError>;

/// `"INVALID"`: the `_status` of every error.
#[derive(Serialize, JsonSchema)]
pub enum InvalidStatus {
    #[serde(rename = "INVALID")]
    Invalid,
}

/// The error envelope.
#[derive(Serialize, JsonSchema)]
pub struct ErrorBody {
    #[serde(rename = "_status")]
    pub status: InvalidStatus,
    #[serde(rename = "_schema")]
    pub schema: String,
    pub error: ErrorDetail,
}

/// A stable machine `code` and a `message` for people.
#[derive(Serialize, JsonSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
            ApiError::BadHeader(_) => (StatusCode::BAD_REQUEST, "invalid_idempotency_key"),
            ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            ApiError::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::KeyInFlight => (StatusCode::CONFLICT, "idempotency_key_in_flight"),
            ApiError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::InvalidBody(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            ApiError::Invalid(invalid) => (StatusCode::UNPROCESSABLE_ENTITY, invalid.code),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::StorageFull => (StatusCode::SERVICE_UNAVAILABLE, "storage_full"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The code of an error answer, kept with the response for the metrics.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        let (status, code) = self.status_and_code();
        let body = ErrorBody {
            status: InvalidStatus::Invalid,
            schema: schema_path("error"),
            error: ErrorDetail {
                code: code.into(),
                message: self.to_string(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        // For the metrics: errors are counted by code (`herald_http_errors_total`).
        response.extensions_mut().insert(ErrorCode(code));
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthorized { basic: true, .. } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"herald\""),
                );
            }
            ApiError::Unauthorized { basic: false, .. } => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            ApiError::Unavailable(_) | ApiError::KeyInFlight => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1));
            }
            ApiError::StorageFull => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(5));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Conflict(message) => ApiError::Conflict(message),
            StoreError::Invalid(invalid) => ApiError::Invalid(invalid),
            StoreError::KeyTaken => ApiError::KeyInFlight,
            StoreError::Unavailable(why) => {
                tracing::warn!(error = %why, "the database cannot be reached");
                ApiError::Unavailable("the database cannot be reached; try again shortly".into())
            }
            StoreError::Full(why) => {
                tracing::error!(error = %why, "a write was refused: the database's disk is full");
                ApiError::StorageFull
            }
            StoreError::Other(e) => ApiError::Internal(anyhow::anyhow!(e)),
        }
    }
}
