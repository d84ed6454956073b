//! An axum extractor: `Verified<Event>` in a handler's arguments means the call was
//! verified, is not a duplicate, and parsed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::dedupe::{Deduplicate, MemoryDeduplicator};
use crate::event::Event;
use crate::verify::{VerifyError, Webhook};

/// What the extractor needs: put an `Arc<Receiver>` in the router's state.
pub struct Receiver {
    webhook: Webhook,
    dedupe: Arc<dyn Deduplicate>,
}

impl Receiver {
    /// Verifies with `secret` and drops duplicates in memory.
    pub fn new(secret: &str) -> Result<Receiver, VerifyError> {
        Ok(Receiver {
            webhook: Webhook::new(secret)?,
            dedupe: Arc::new(MemoryDeduplicator::default()),
        })
    }

    /// The same with your own record of handled ids.
    pub fn with_deduplicator(secret: &str, dedupe: Arc<dyn Deduplicate>) -> Result<Receiver, VerifyError> {
        Ok(Receiver {
            webhook: Webhook::new(secret)?,
            dedupe,
        })
    }

    /// The record of handled ids, to `forget` one whose processing failed.
    pub fn deduplicator(&self) -> &Arc<dyn Deduplicate> {
        &self.dedupe
    }
}

/// A verified, first-seen call, parsed as `T` (an [`Event`] unless you say otherwise).
pub struct Verified<T = Event>(pub T);

/// Why the extractor answered instead of the handler.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// 401: the signature or timestamp did not verify.
    #[error("not verified: {0}")]
    Unverified(#[from] VerifyError),
    /// 200: already handled; Herald can stop sending it.
    #[error("duplicate of a call already handled")]
    Duplicate,
    /// 400: verified, but the body is not the expected JSON.
    #[error("the body does not parse: {0}")]
    Payload(String),
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = match self {
            Rejection::Unverified(_) => StatusCode::UNAUTHORIZED,
            Rejection::Duplicate => StatusCode::OK,
            Rejection::Payload(_) => StatusCode::BAD_REQUEST,
        };
        (status, self.to_string()).into_response()
    }
}

impl<S, T> FromRequest<S> for Verified<T>
where
    Arc<Receiver>: FromRef<S>,
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Rejection> {
        let receiver = Arc::<Receiver>::from_ref(state);
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| Rejection::Payload(e.body_text()))?;
        receiver.webhook.verify(&body, &headers)?;
        let value = serde_json::from_slice::<T>(&body).map_err(|e| Rejection::Payload(e.to_string()))?;
        let id = headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !receiver.dedupe.first_time(id) {
            return Err(Rejection::Duplicate);
        }
        Ok(Verified(value))
    }
}
