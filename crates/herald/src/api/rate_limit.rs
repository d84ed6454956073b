//! Limits counted in one-minute windows: `rate_limit_per_minute` for each account's REST
//! calls, and failed logins per login and per client address. Past a limit, calls get a 429
//! with `Retry-After` until the window ends.
//!
//! Fixed windows are the simplest limiter that bounds a client; the counts live in memory, so
//! with several nodes each enforces the limits on its own share of the traffic.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::ApiError;

const WINDOW: Duration = Duration::from_secs(60);

/// Counts per key (an account, a login, an address) in the current window.
pub struct RateLimiter<K = i64> {
    per_minute: u32,
    windows: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter allowing `per_minute` per key; 0 allows everything.
    pub fn new(per_minute: u32) -> RateLimiter<K> {
        RateLimiter {
            per_minute,
            windows: Mutex::default(),
        }
    }

    /// Counts one for `key`, or refuses it with the seconds left in the window.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), ApiError> {
        self.count(key, now, 1)
    }

    /// Refuses `key` if it has reached its limit, without counting.
    pub fn peek(&self, key: &K, now: Instant) -> Result<(), ApiError> {
        self.count(key, now, 0)
    }

    fn count(&self, key: &K, now: Instant, add: u32) -> Result<(), ApiError> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let mut windows = self.windows.lock().expect("the rate limiter lock is never poisoned");
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let (start, count) = windows.entry(key.clone()).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            (*start, *count) = (now, 0);
        }
        if *count >= self.per_minute {
            let left = WINDOW.saturating_sub(now.duration_since(*start));
            return Err(ApiError::RateLimited {
                retry_after: left.as_secs().max(1),
            });
        }
        *count += add;
        Ok(())
    }
}

/// Failed logins allowed per login and minute.
pub const FAILED_LOGINS_PER_LOGIN: u32 = 10;
/// Failed logins (and wrong admin tokens) allowed per client address and minute.
pub const FAILED_LOGINS_PER_ADDRESS: u32 = 50;

/// Failed logins, counted per login and per client address: past either limit, every try of
/// that login or from that address gets a 429 until the window ends, right password or not.
pub struct FailedLogins {
    per_login: RateLimiter<String>,
    per_address: RateLimiter<IpAddr>,
}

impl Default for FailedLogins {
    fn default() -> FailedLogins {
        FailedLogins {
            per_login: RateLimiter::new(FAILED_LOGINS_PER_LOGIN),
            per_address: RateLimiter::new(FAILED_LOGINS_PER_ADDRESS),
        }
    }
}

impl FailedLogins {
    /// Refuses a try when its login or its address has failed too often.
    pub fn check(&self, login: Option<&str>, address: Option<IpAddr>, now: Instant) -> Result<(), ApiError> {
        if let Some(login) = login {
            self.per_login.peek(&login.to_owned(), now)?;
        }
        address.map_or(Ok(()), |address| self.per_address.peek(&address, now))
    }

    /// Counts a failed try.
    pub fn failed(&self, login: Option<&str>, address: Option<IpAddr>, now: Instant) {
        if let Some(login) = login {
            let _ = self.per_login.check(&login.to_owned(), now);
        }
        if let Some(address) = address {
            let _ = self.per_address.check(&address, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_past_the_limit_wait_for_the_next_window() {
        let limiter = RateLimiter::new(2);
        let t0 = Instant::now();
        assert!(limiter.check(&1, t0).is_ok());
        assert!(limiter.check(&1, t0).is_ok());
        match limiter.check(&1, t0 + Duration::from_secs(20)) {
            Err(ApiError::RateLimited { retry_after }) => assert_eq!(retry_after, 40),
            other => panic!("expected a 429, got {other:?}"),
        }
        assert!(limiter.check(&2, t0).is_ok(), "accounts are counted apart");
        assert!(limiter.check(&1, t0 + WINDOW).is_ok(), "a new window starts afresh");
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limiter = RateLimiter::new(0);
        assert!((0..1000).all(|_| limiter.check(&1, Instant::now()).is_ok()));
    }

    #[test]
    fn failed_logins_lock_the_login_and_the_address() {
        let failed = FailedLogins::default();
        let t0 = Instant::now();
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..FAILED_LOGINS_PER_LOGIN {
            assert!(failed.check(Some("acme"), Some(here), t0).is_ok());
            failed.failed(Some("acme"), Some(here), t0);
        }
        assert!(failed.check(Some("acme"), None, t0).is_err(), "the login is locked");
        assert!(
            failed.check(Some("globex"), Some(here), t0).is_ok(),
            "the address is not, yet"
        );
        for _ in FAILED_LOGINS_PER_LOGIN..FAILED_LOGINS_PER_ADDRESS {
            failed.failed(Some("globex"), Some(here), t0);
        }
        assert!(
            failed.check(Some("initech"), Some(here), t0).is_err(),
            "the address is locked"
        );
        assert!(
            failed.check(Some("acme"), None, t0 + WINDOW).is_ok(),
            "until the window ends"
        );
    }
}
