//! The headers every dashboard answer carries: a `Content-Security-Policy` that runs only
//! Herald's own script file (never inline script, so an endpoint's answer shown on a page
//! cannot run), and framing refused but for portal sessions, from the origins in
//! `[ui] frame_ancestors`.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::UiState;

/// Put in a response's extensions by a page of a portal session: it may be framed.
#[derive(Clone, Copy)]
pub struct Framable;

pub async fn secure(State(state): State<UiState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let framable = response.extensions().get::<Framable>().is_some();
    let ancestors = &state.app.config.ui.frame_ancestors;
    let frame_ancestors = if framable && !ancestors.is_empty() {
        ancestors.join(" ")
    } else {
        "'none'".to_owned()
    };
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         form-action 'self'; base-uri 'none'; frame-ancestors {frame_ancestors}"
    );
    let headers = response.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    if frame_ancestors == "'none'" {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
