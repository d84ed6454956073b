//! Writes made once per `Idempotency-Key`. The key and the first answer are kept in the
//! transaction of the write itself, so a crash between the write and its answer leaves both
//! or neither: a repeat finds the answer and writes nothing, or finds nothing and writes.
//! Two writes under one key cannot both commit; the second rolls back (`KeyTaken`).

use async_trait::async_trait;

use super::StoreResult;
use crate::clock::Micros;

/// How long a key is kept: a repeat after this writes again.
pub const KEY_LIFETIME: Micros = 24 * 3_600 * 1_000_000;

/// A request's key in its caller's key space, and the fingerprint of what it asked (method,
/// path and body), which a repeat must match.
#[derive(Debug, Clone)]
pub struct RequestKey {
    /// Whose keys these are: `admin` for support, `account:{id}` for an account.
    pub scope: String,
    pub key: String,
    pub fingerprint: String,
}

/// An answer as it was given, to be given again byte for byte.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// What a repeat finds under its key.
#[derive(Debug, Clone)]
pub struct Kept {
    pub fingerprint: String,
    pub answer: Answer,
}

/// A write's key, and how to answer the write: the store renders the answer from the value
/// written and keeps it with the key before the commit.
pub struct Once<T> {
    key: RequestKey,
    at: Micros,
    answer: Box<dyn FnOnce(&T) -> Answer + Send>,
}

/// The row a key becomes.
pub(super) struct KeyRow {
    pub key: RequestKey,
    pub answer: Answer,
    pub at: Micros,
}

impl KeyRow {
    /// A key kept before this time has run out, and may be taken again.
    pub fn expired_before(&self) -> Micros {
        self.at - KEY_LIFETIME
    }
}

impl<T> Once<T> {
    pub fn new(key: RequestKey, at: Micros, answer: impl FnOnce(&T) -> Answer + Send + 'static) -> Once<T> {
        Once {
            key,
            at,
            answer: Box::new(answer),
        }
    }

    /// The row to keep for the value written.
    pub(super) fn row(self, written: &T) -> KeyRow {
        KeyRow {
            answer: (self.answer)(written),
            key: self.key,
            at: self.at,
        }
    }
}

/// The keys kept.
#[async_trait]
pub trait KeyStore {
    /// What is kept under `key` in `scope` since `since`, if anything.
    async fn kept(&self, scope: &str, key: &str, since: Micros) -> StoreResult<Option<Kept>>;
    /// Forgets up to `batch` keys kept before `before`; returns how many went.
    async fn forget_keys(&self, before: Micros, batch: u32) -> StoreResult<u64>;
}
