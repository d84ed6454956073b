//! `rate_limit_per_minute`: each account's REST calls are counted in one-minute windows; past
//! the limit, calls get a 429 with `Retry-After` until the window ends.
//!
//! Fixed windows are the simplest limiter that bounds a client; the counts live in memory, so
//! with several nodes each enforces the limit on its own share of the traffic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::ApiError;

const WINDOW: Duration = Duration::from_secs(60);

/// Per-account call counts for the current window.
pub struct RateLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<i64, (Instant, u32)>>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` calls per account; 0 allows every call.
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            windows: Mutex::default(),
        }
    }

    /// Counts one call of `account`, or refuses it with the seconds left in the window.
    pub fn check(&self, account: i64, now: Instant) -> Result<(), ApiError> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let mut windows = self.windows.lock().expect("the rate limiter lock is never poisoned");
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let (start, count) = windows.entry(account).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            (*start, *count) = (now, 0);
        }
        if *count >= self.per_minute {
            let left = WINDOW.saturating_sub(now.duration_since(*start));
            return Err(ApiError::RateLimited {
                retry_after: left.as_secs().max(1),
            });
        }
        *count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_past_the_limit_wait_for_the_next_window() {
        let limiter = RateLimiter::new(2);
        let t0 = Instant::now();
        assert!(limiter.check(1, t0).is_ok());
        assert!(limiter.check(1, t0).is_ok());
        match limiter.check(1, t0 + Duration::from_secs(20)) {
            Err(ApiError::RateLimited { retry_after }) => assert_eq!(retry_after, 40),
            other => panic!("expected a 429, got {other:?}"),
        }
        assert!(limiter.check(2, t0).is_ok(), "accounts are counted apart");
        assert!(limiter.check(1, t0 + WINDOW).is_ok(), "a new window starts afresh");
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limiter = RateLimiter::new(0);
        assert!((0..1000).all(|_| limiter.check(1, Instant::now()).is_ok()));
    }
}
