//! Receive Herald's webhooks, the way its documentation tells you to: verify that a call is
//! genuine, answer at once, drop duplicates, then do the work.
//!
//! ```
//! use herald_receiver::Webhook;
//!
//! let webhook = Webhook::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
//! let body = br#"{"email":"test@example.com","username":"test_user"}"#;
//! let mut headers = http::HeaderMap::new();
//! headers.insert("webhook-id", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk".parse().unwrap());
//! headers.insert("webhook-timestamp", "1649367553".parse().unwrap());
//! headers.insert("webhook-signature", "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=".parse().unwrap());
//! assert!(webhook.verify_at(body, &headers, 1649367553).is_ok());
//! ```
//!
//! [`Webhook`] verifies Standard Webhooks v1 signatures (any of several, as sent while a
//! secret is rotated; timestamps within 5 minutes; comparison in constant time).
//! [`Deduplicate`] remembers the `webhook-id`s already handled, [`MemoryDeduplicator`] in
//! memory, bounded and expiring. With the `axum` feature, [`Verified`] is an extractor that
//! hands a handler the verified, typed [`Event`].

mod dedupe;
mod event;
mod verify;

#[cfg(feature = "axum")]
mod extract;

pub use dedupe::{Deduplicate, MemoryDeduplicator};
pub use event::{Event, Link, Payload, StepRef};
pub use verify::{TOLERANCE_SECONDS, VerifyError, Webhook};

#[cfg(feature = "axum")]
pub use extract::{Receiver, Rejection, Verified};
