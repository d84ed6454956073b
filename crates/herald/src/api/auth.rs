//! Who is calling: an account by HTTP Basic on the REST API, support by bearer token on the
//! admin API.
//!
//! Passwords are argon2 hashes, which cost tens of milliseconds of CPU and 19 MiB each by
//! design; a verified login is remembered for a minute (as a SHA-256 digest of the
//! credentials, never the password) so that a busy client pays that cost once, not on every
//! request. Requests that bring the same credentials at once wait for one check rather than
//! each making its own, and no more checks run at once than the machine has cores: a burst
//! of logins queues for the CPU instead of starving the requests already in flight (and, on
//! one machine, the database) of it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::AppState;
use super::error::ApiError;
use super::idempotency::Caller;
use crate::domain::account::Account;
use crate::store::{Store, StoreError};

/// How long a verified login is trusted without hashing again.
const LOGIN_TTL: Duration = Duration::from_secs(60);
/// Past this many remembered logins the cache starts over, bounding its memory.
const LOGIN_CACHE_CAP: usize = 10_000;

/// The account behind a REST call.
pub struct Tenant(pub Arc<Account>);

/// Proof that the caller holds the admin token.
pub struct Admin;

/// Marks a request the server makes to its own admin API (the dashboard's, once it has
/// checked its visitor's session). Only server code can put a value in a request's
/// extensions, so no client can claim it.
#[derive(Clone, Copy)]
pub struct InProcess;

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |message| ApiError::Unauthorized { message, basic: true };
        let (login, password) = basic_credentials(&parts.headers)
            .ok_or(unauthorized("send the account's login and password with HTTP Basic"))?;
        let (address, now) = (client_address(parts), Instant::now());
        state.failed_logins.check(Some(&login), address, now)?;
        let Some(account) = state.logins.verify(state.store.as_ref(), &login, &password).await? else {
            state.failed_logins.failed(Some(&login), address, now);
            return Err(unauthorized("wrong login or password"));
        };
        state.rate_limit.check(&account.id, now)?;
        parts.extensions.insert(Caller::Account(account.id));
        Ok(Tenant(account))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.extensions.get::<InProcess>().is_some() {
            parts.extensions.insert(Caller::Support);
            return Ok(Admin);
        }
        let unauthorized = |message| ApiError::Unauthorized { message, basic: false };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(unauthorized("send the admin token as Authorization: Bearer"))?;
        let (address, now) = (client_address(parts), Instant::now());
        state.failed_logins.check(None, address, now)?;
        if constant_time_eq(&sha256(token.trim().as_bytes()), &state.admin_digest[..]) {
            parts.extensions.insert(Caller::Support);
            Ok(Admin)
        } else {
            state.failed_logins.failed(None, address, now);
            Err(unauthorized("wrong admin token"))
        }
    }
}

/// The peer's address, when the server was started with it (not in router-only tests).
fn client_address(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (login, password) = decoded.split_once(':')?;
    Some((login.to_owned(), password.to_owned()))
}

/// A fresh random token (256 bits, URL-safe) and its SHA-256, which is what is stored.
pub fn new_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the system has randomness");
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = sha256(token.as_bytes());
    (token, hash)
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Compares without an early exit, so that timing tells nothing of where bytes differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A turn to run argon2: one per core. Each hash is a blocking thread with 19 MiB of its own,
/// and tokio would start hundreds of them for a burst of logins, all sharing the cores with
/// the async threads (and with a database on the same machine); a request holding a pooled
/// connection would wait its turn among them, and others would time out waiting for it.
async fn argon2_turn() -> anyhow::Result<SemaphorePermit<'static>> {
    static CORES: OnceLock<Semaphore> = OnceLock::new();
    let cores = CORES.get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));
    Ok(cores.acquire().await?)
}

/// Hashes a password with argon2id and a random salt, off the async threads.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    let _turn = argon2_turn().await?;
    tokio::task::spawn_blocking(move || {
        let salt =
            SaltString::encode_b64(&crate::ids::random_bytes::<16>()).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
        Ok(hash.to_string())
    })
    .await?
}

/// Checks a password against its hash, off the async threads.
async fn verify_password(password: String, hash: String) -> anyhow::Result<bool> {
    let _turn = argon2_turn().await?;
    Ok(tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await?)
}

/// A hash no password matches, checked for unknown logins so that they take as long to
/// refuse as known ones.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::encode_b64(&[7u8; 16]).expect("a 16-byte salt encodes");
        Argon2::default()
            .hash_password(b"decoy", &salt)
            .expect("argon2 hashes a constant")
            .to_string()
    })
}

struct Remembered {
    digest: [u8; 32],
    account: Arc<Account>,
    until: Instant,
}

/// Logins verified recently.
#[derive(Default)]
pub struct LoginCache {
    entries: Mutex<HashMap<String, Remembered>>,
    /// The credentials being checked now (by digest), each with the queue of requests that
    /// brought them: the first checks, the others wait and then find the login remembered.
    /// Credentials are in this map only while some request holds their queue.
    checking: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    /// Passwords checked with argon2 so far.
    checks: AtomicU64,
}

/// A request's place in its credentials' queue; leaving it forgets the queue once nobody is
/// in it.
struct Queued<'a> {
    cache: &'a LoginCache,
    digest: [u8; 32],
    queue: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        let mut checking = self
            .cache
            .checking
            .lock()
            .expect("the login queue lock is never poisoned");
        // The map's reference and this one: nobody else queues (queues are handed out under
        // this lock, so the count cannot grow meanwhile).
        if Arc::strong_count(&self.queue) == 2 {
            checking.remove(&self.digest);
        }
    }
}

impl LoginCache {
    /// The account if `password` is its password; `None` if not or if there is no such login.
    pub async fn verify(
        &self,
        store: &dyn Store,
        login: &str,
        password: &str,
    ) -> Result<Option<Arc<Account>>, ApiError> {
        let digest = sha256(format!("{login}\0{password}").as_bytes());
        if let Some(account) = self.recall(login, &digest) {
            return Ok(Some(account));
        }
        let queued = self.queue(digest);
        let _turn = queued.queue.lock().await;
        // The request ahead in the queue may have checked these very credentials.
        if let Some(account) = self.recall(login, &digest) {
            return Ok(Some(account));
        }
        self.checks.fetch_add(1, Ordering::Relaxed);
        let (account, hash) = match store.account_credentials(login).await {
            Ok(found) => (Some(found.0), found.1),
            Err(StoreError::NotFound(_)) => (None, decoy_hash().to_owned()),
            Err(e) => return Err(e.into()),
        };
        let matches = verify_password(password.to_owned(), hash)
            .await
            .map_err(ApiError::Internal)?;
        let Some(account) = account.filter(|_| matches) else {
            return Ok(None);
        };
        let account = Arc::new(account);
        let mut entries = self.entries.lock().expect("the login cache lock is never poisoned");
        if entries.len() >= LOGIN_CACHE_CAP {
            entries.clear();
        }
        let until = Instant::now() + LOGIN_TTL;
        entries.insert(
            login.to_owned(),
            Remembered {
                digest,
                account: account.clone(),
                until,
            },
        );
        Ok(Some(account))
    }

    /// Passwords checked with argon2 so far (those answered from memory are not counted).
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    fn queue(&self, digest: [u8; 32]) -> Queued<'_> {
        let mut checking = self.checking.lock().expect("the login queue lock is never poisoned");
        let queue = checking.entry(digest).or_default().clone();
        Queued {
            cache: self,
            digest,
            queue,
        }
    }

    fn recall(&self, login: &str, digest: &[u8; 32]) -> Option<Arc<Account>> {
        let entries = self.entries.lock().expect("the login cache lock is never poisoned");
        let entry = entries.get(login)?;
        (entry.until > Instant::now() && constant_time_eq(&entry.digest, digest)).then(|| entry.account.clone())
    }

    /// Forgets a login at once, when its account is deleted.
    pub fn forget(&self, login: &str) {
        self.entries
            .lock()
            .expect("the login cache lock is never poisoned")
            .remove(login);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    /// A store with one account, `acme`, whose password is `correct horse`.
    async fn store_with_acme() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("herald.db").display());
        let store = crate::store::open(&url, 1).await.unwrap();
        let new = crate::domain::account::NewAccount::new("acme".into(), "correct horse".into(), None, None).unwrap();
        let hash = hash_password(new.password.clone()).await.unwrap();
        store.create_account(&new, &hash, 0, None).await.unwrap();
        (dir, store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_bringing_one_login_at_once_check_it_once() {
        let (_dir, store) = store_with_acme().await;
        let cache = Arc::new(LoginCache::default());
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (cache, store) = (cache.clone(), store.clone());
            requests.spawn(async move { cache.verify(store.as_ref(), "acme", "correct horse").await });
        }
        for verified in requests.join_all().await {
            assert_eq!(verified.unwrap().unwrap().login, "acme");
        }
        assert_eq!(
            cache.checks(),
            1,
            "the first checked; the others waited and found it remembered"
        );
        assert!(cache.checking.lock().unwrap().is_empty(), "no queue is left behind");

        // Wrong passwords are not remembered: each is checked.
        let mut requests = tokio::task::JoinSet::new();
        for n in 0..3 {
            let (cache, store) = (cache.clone(), store.clone());
            requests.spawn(async move { cache.verify(store.as_ref(), "acme", &format!("guess {n}")).await });
        }
        for verified in requests.join_all().await {
            assert!(verified.unwrap().is_none());
        }
        assert_eq!(cache.checks(), 4);
        assert!(cache.checking.lock().unwrap().is_empty());
    }

    #[test]
    fn basic_credentials_are_decoded() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Basic YWNtZTpzM2NyZXQ6eA==".parse().unwrap());
        assert_eq!(basic_credentials(&headers), Some(("acme".into(), "s3cret:x".into())));
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(basic_credentials(&headers), None);
    }
}
