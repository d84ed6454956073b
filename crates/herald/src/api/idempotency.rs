//! `Idempotency-Key` on every POST: a repeat of a write is answered with the first answer
//! (and `Idempotent-Replayed: true`) instead of writing again.
//!
//! Three parts, in the order a request meets them:
//! - [`fingerprint`], a middleware, checks the key and takes the fingerprint of what the
//!   request asks (method, path, body), before any handler reads the body;
//! - [`IdempotencyKey`], an extractor placed after the caller's credentials, finds the key in
//!   the caller's key space: a first answer kept under it is replayed (or the request refused,
//!   if it asks something else);
//! - [`IdempotencyKey::write`] hands the key to the store, which keeps it with the answer in
//!   the write's own transaction (see `store::once`). The database arbitrates: of two requests
//!   racing under one key, one commits and the other gets a 409.
//!
//! Only an answer that wrote is kept. A request that fails changes nothing, so its repeat
//! simply runs again.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};
use super::{AppState, MAX_BODY_BYTES};
use crate::clock::Micros;
use crate::domain::Invalid;
use crate::store::{Answer, KEY_LIFETIME, Once, RequestKey, StoreResult};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Who a request's credentials name: keys are kept per caller. Put in the request's
/// extensions by the extractors that check credentials.
#[derive(Debug, Clone, Copy)]
pub enum Caller {
    Account(i64),
    Support,
}

impl Caller {
    fn scope(self) -> String {
        match self {
            Caller::Account(id) => format!("account:{id}"),
            Caller::Support => "admin".into(),
        }
    }
}

/// A POST's key and the fingerprint of what it asks, found by [`fingerprint`].
#[derive(Debug, Clone)]
struct Asked {
    key: String,
    fingerprint: String,
}

/// Whether a key is 1 to 255 printable ASCII characters.
fn is_valid_key(key: &[u8]) -> bool {
    (1..=255).contains(&key.len()) && key.iter().all(|b| (0x20..0x7f).contains(b))
}

/// Checks the `Idempotency-Key` of a POST and notes it with the fingerprint of the request.
/// The body is read here, up to the API's limit, and handed on unchanged.
pub async fn fingerprint(request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(&IDEMPOTENCY_KEY) else {
        return next.run(request).await;
    };
    if !is_valid_key(key.as_bytes()) {
        let message = "Idempotency-Key: give 1 to 255 printable ASCII characters";
        return ApiError::BadHeader(message.into()).into_response();
    }
    let key = String::from_utf8_lossy(key.as_bytes()).into_owned();
    let (mut parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) => match crate::http::body_timeout(&e) {
            Some(limit) => return ApiError::BodyTimeout(limit).into_response(),
            None => return ApiError::TooLarge("the request body is over 1 MiB".into()).into_response(),
        },
    };
    let mut hash = Sha256::new();
    for piece in [
        parts.method.as_str().as_bytes(),
        b" ",
        parts.uri.path().as_bytes(),
        b"\n",
        &body,
    ] {
        hash.update(piece);
    }
    let fingerprint = STANDARD.encode(hash.finalize());
    parts.extensions.insert(Asked { key, fingerprint });
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// The request's key, if it sent one that nothing was kept under yet. Extracting it answers
/// a repeat: with the kept answer (as the rejection), or with a 422 if the repeat asks
/// something else. Place it after the extractor of the caller's credentials.
pub struct IdempotencyKey(Option<RequestKey>);

impl FromRequestParts<AppState> for IdempotencyKey {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(asked) = parts.extensions.get::<Asked>().cloned() else {
            return Ok(IdempotencyKey(None));
        };
        let Some(caller) = parts.extensions.get::<Caller>().copied() else {
            let bug = anyhow::anyhow!("an IdempotencyKey was extracted before the caller's credentials");
            return Err(ApiError::Internal(bug).into_response());
        };
        let scope = caller.scope();
        let since = state.clock.now() - KEY_LIFETIME;
        let kept = state
            .store
            .kept(&scope, &asked.key, since)
            .await
            .map_err(|e| ApiError::from(e).into_response())?;
        match kept {
            None => Ok(IdempotencyKey(Some(RequestKey {
                scope,
                key: asked.key,
                fingerprint: asked.fingerprint,
            }))),
            Some(kept) if kept.fingerprint == asked.fingerprint => {
                let mut replay = kept.answer.into_response();
                replay
                    .headers_mut()
                    .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
                Err(replay)
            }
            Some(_) => Err(ApiError::Invalid(Invalid {
                code: "idempotency_key_reused",
                message: "Idempotency-Key: this key was used in the last 24 hours for another request \
                          (another path or body); use a new key for a new request"
                    .into(),
            })
            .into_response()),
        }
    }
}

impl IdempotencyKey {
    /// Makes `write` (a store call given the key as its `once`) and answers with what
    /// `answer` renders of its result. Under a key, the answer sent is the very one the store
    /// kept, rendered once: a repeat gets the same bytes.
    pub async fn write<T, W, F>(
        self,
        at: Micros,
        answer: impl FnOnce(&T) -> Answer + Send + 'static,
        write: W,
    ) -> ApiResult
    where
        W: FnOnce(Option<Once<T>>) -> F,
        F: Future<Output = StoreResult<T>>,
    {
        let Some(key) = self.0 else {
            let written = write(None).await?;
            return Ok(answer(&written).into_response());
        };
        let kept = Arc::new(OnceLock::new());
        let keep = kept.clone();
        let once = Once::new(key, at, move |written: &T| keep.get_or_init(|| answer(written)).clone());
        write(Some(once)).await?;
        let answer = kept.get().cloned().ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "the store wrote under a key without keeping its answer"
            ))
        })?;
        Ok(answer.into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_1_to_255_printable_characters() {
        assert!(is_valid_key(b"a"));
        assert!(is_valid_key(b"order 42/retry #1"));
        assert!(is_valid_key(&[b'k'; 255]));
        assert!(!is_valid_key(b""));
        assert!(!is_valid_key(&[b'k'; 256]));
        assert!(!is_valid_key(b"tab\there"));
        assert!(!is_valid_key("clé".as_bytes()));
    }
}
