//! Retry and suspension arithmetic, pure and table-driven: when a failed delivery is tried
//! again, and how an endpoint's health changes with each call.

use std::time::Duration;

use crate::clock::Micros;
use crate::config::{DeliveryConfig, SuspensionConfig};
use crate::domain::delivery::{Next, Verdict};
use crate::domain::endpoint::{EndpointState, Health};

/// Longest wait a `Retry-After` may impose; beyond it the header is not trusted.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What becomes of a delivery after its `attempt`-th call (from 1) ended with `verdict`;
/// `own` is the endpoint's own retry schedule, if it has one.
pub fn after_attempt(
    config: &DeliveryConfig,
    own: Option<&[Duration]>,
    attempt: u32,
    verdict: Verdict,
    now: Micros,
    unit: f64,
) -> Next {
    match verdict {
        Verdict::Success => Next::Succeeded,
        // The endpoint is disabled; the delivery waits, due at once, for it to be resumed.
        Verdict::Gone => Next::RetryAt(now),
        Verdict::Failure { retry_after } => {
            let schedule = own.unwrap_or(&config.retry_schedule);
            next_retry(schedule, config.jitter, attempt, retry_after, now, unit)
        }
    }
}

/// When to try a delivery again after its `attempt`-th call (from 1) failed, on `schedule`.
/// `unit` is a uniform draw from [0, 1), which the `jitter` spreads the delay with.
pub fn next_retry(
    schedule: &[Duration],
    jitter: f64,
    attempt: u32,
    retry_after: Option<Duration>,
    now: Micros,
    unit: f64,
) -> Next {
    let Some(base) = schedule.get(attempt as usize - 1) else {
        return Next::Failed;
    };
    let delay = match retry_after {
        Some(asked) => asked.min(MAX_RETRY_AFTER),
        None => base.mul_f64(1.0 + jitter * (2.0 * unit - 1.0)),
    };
    Next::RetryAt(now + delay.as_micros() as Micros)
}

/// The endpoint's health after one call's verdict.
pub fn after_call(config: &SuspensionConfig, health: Health, verdict: Verdict, now: Micros) -> Health {
    match verdict {
        // A call in flight when the endpoint was disabled does not bring it back: only a
        // person resuming it does.
        Verdict::Success if health.state == EndpointState::Disabled => health,
        Verdict::Success => Health::default(),
        Verdict::Gone => Health {
            state: EndpointState::Disabled,
            suspended_until: None,
            ..health
        },
        Verdict::Failure { .. } => {
            let since = health.failing_since.unwrap_or(now);
            let mut next = Health {
                consecutive_failures: health.consecutive_failures.saturating_add(1),
                failing_since: Some(since),
                ..health
            };
            if Duration::from_micros((now - since).max(0) as u64) >= config.disable_after {
                return Health {
                    state: EndpointState::Disabled,
                    suspended_until: None,
                    ..next
                };
            }
            // A call that was already in flight when the endpoint was suspended fails without
            // renewing the suspension; only the probe, made once it is over, does.
            let suspend = match health.state {
                EndpointState::Active => next.consecutive_failures >= config.after_failures,
                EndpointState::Suspended => health.suspended_until.is_none_or(|until| now >= until),
                EndpointState::Disabled => false,
            };
            if suspend {
                let doubling = 2u32.saturating_pow(health.suspensions);
                let cool_down = config.first.saturating_mul(doubling).min(config.max);
                next.state = EndpointState::Suspended;
                next.suspended_until = Some(now + cool_down.as_micros() as Micros);
                next.suspensions = health.suspensions.saturating_add(1);
            }
            next
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const S: Micros = 1_000_000;

    #[test]
    fn retries_follow_the_schedule_within_the_jitter() {
        let config = Config::defaults().delivery;
        let expected = [5, 300, 1800, 7200, 18000, 36000, 36000];
        for (i, seconds) in expected.iter().enumerate() {
            let attempt = i as u32 + 1;
            assert_eq!(
                next_retry(&config.retry_schedule, config.jitter, attempt, None, 0, 0.5),
                Next::RetryAt(seconds * S),
                "attempt {attempt}"
            );
            let Next::RetryAt(low) = next_retry(&config.retry_schedule, config.jitter, attempt, None, 0, 0.0) else {
                panic!()
            };
            let Next::RetryAt(high) = next_retry(&config.retry_schedule, config.jitter, attempt, None, 0, 0.999_999)
            else {
                panic!()
            };
            assert_eq!(low, seconds * S * 8 / 10);
            assert!(high <= seconds * S * 12 / 10 && high > seconds * S * 119 / 100);
        }
        assert_eq!(
            next_retry(&config.retry_schedule, config.jitter, 8, None, 0, 0.5),
            Next::Failed
        );
    }

    #[test]
    fn retry_after_replaces_the_scheduled_delay_within_a_day() {
        let config = Config::defaults().delivery;
        assert_eq!(
            next_retry(
                &config.retry_schedule,
                config.jitter,
                1,
                Some(Duration::from_secs(120)),
                0,
                0.5
            ),
            Next::RetryAt(120 * S)
        );
        assert_eq!(
            next_retry(
                &config.retry_schedule,
                config.jitter,
                1,
                Some(Duration::from_secs(10 * 86400)),
                0,
                0.5
            ),
            Next::RetryAt(86400 * S)
        );
        assert_eq!(
            next_retry(
                &config.retry_schedule,
                config.jitter,
                8,
                Some(Duration::from_secs(1)),
                0,
                0.5
            ),
            Next::Failed
        );
    }

    fn fail(config: &SuspensionConfig, health: Health, now: Micros) -> Health {
        after_call(config, health, Verdict::Failure { retry_after: None }, now)
    }

    #[test]
    fn five_failures_suspend_for_a_minute_then_doubling_up_to_an_hour() {
        let config = Config::defaults().suspension;
        let mut health = Health::default();
        for i in 0..4 {
            health = fail(&config, health, i * S);
            assert_eq!(health.state, EndpointState::Active);
        }
        health = fail(&config, health, 4 * S);
        assert_eq!(
            (health.state, health.suspended_until),
            (EndpointState::Suspended, Some(64 * S))
        );
        // Each failed probe renews the suspension, twice as long, capped at the maximum.
        let mut now = 64 * S;
        for minutes in [2, 4, 8, 16, 32, 60, 60] {
            health = fail(&config, health, now);
            assert_eq!(health.suspended_until, Some(now + minutes * 60 * S));
            now += minutes * 60 * S;
        }
        assert_eq!(after_call(&config, health, Verdict::Success, now), Health::default());
    }

    #[test]
    fn calls_in_flight_when_suspended_do_not_renew_the_suspension() {
        let config = Config::defaults().suspension;
        let suspended = Health {
            state: EndpointState::Suspended,
            suspended_until: Some(60 * S),
            consecutive_failures: 5,
            failing_since: Some(0),
            suspensions: 1,
        };
        let straggler = fail(&config, suspended, 10 * S);
        assert_eq!(straggler.suspended_until, suspended.suspended_until);
        assert_eq!(straggler.consecutive_failures, 6);
    }

    #[test]
    fn failing_for_five_days_disables_and_gone_disables_at_once() {
        let config = Config::defaults().suspension;
        let health = fail(&config, Health::default(), 0);
        let later = fail(&config, health, 5 * 86400 * S);
        assert_eq!(later.state, EndpointState::Disabled);
        let gone = after_call(&config, Health::default(), Verdict::Gone, 0);
        assert_eq!(gone.state, EndpointState::Disabled);
        let straggler = after_call(&config, gone, Verdict::Success, 1);
        assert_eq!(straggler.state, EndpointState::Disabled, "until someone resumes it");
    }
}
