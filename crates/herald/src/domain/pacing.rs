//! An endpoint's rate limit, as start times for its calls: calls are spaced evenly rather than
//! sent in bursts, and the next free start time is kept with the endpoint, so every node that
//! claims its deliveries draws on the one budget.
//!
//! Spacing is 2 % wider than `1 s / limit`: then `limit + 1` consecutive starts span 1.02 s,
//! and a call that starts up to 20 ms after its time (a busy runtime, a slow timer) still
//! leaves no one-second window holding more starts than the limit.

use crate::clock::Micros;

/// The highest rate limit an endpoint may have, in calls per second.
pub const MAX_RATE: u32 = 10_000;

/// The start times one claim gives an endpoint's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    /// The first call's start time; the others follow at `interval`.
    pub first: Micros,
    pub interval: Micros,
    /// How many calls may start no later than the claim's horizon.
    pub count: u32,
}

impl Slots {
    /// Start times for calls at `limit` per second, from `next_free` (the endpoint's first
    /// free start time, or none yet) but never before `now`, up to `now + ahead`.
    pub fn open(limit: u32, next_free: Option<Micros>, now: Micros, ahead: Micros) -> Slots {
        let interval = interval(limit);
        let first = next_free.map_or(now, |free| free.max(now));
        let horizon = now + ahead;
        let count = if first > horizon {
            0
        } else {
            u32::try_from((horizon - first) / interval + 1).unwrap_or(u32::MAX)
        };
        Slots { first, interval, count }
    }

    /// The `i`th call's start time.
    pub fn start(&self, i: u32) -> Micros {
        self.first + Micros::from(i) * self.interval
    }

    /// The first free start time once `taken` calls have theirs: what the endpoint keeps.
    pub fn next_free(&self, taken: u32) -> Micros {
        self.start(taken)
    }

    /// When a claim that looks `ahead` should come back, once `taken` calls have their start
    /// times: when half its horizon is free again. (It could give one call a start time as
    /// soon as `next_free - ahead`, but a fast limit would then take a claim per call.)
    pub fn reopens(&self, taken: u32, ahead: Micros) -> Micros {
        self.next_free(taken) - ahead / 2
    }
}

/// The earlier of the time a claim must come back by so far (if any) and another.
pub fn earliest(kept: Option<Micros>, other: Micros) -> Option<Micros> {
    Some(kept.map_or(other, |kept| kept.min(other)))
}

/// The space between two calls at `limit` per second, with the 2 % margin.
fn interval(limit: u32) -> Micros {
    let limit = Micros::from(limit.clamp(1, MAX_RATE));
    (1_020_000 + limit - 1) / limit
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Micros = 1_000_000;

    #[test]
    fn an_idle_endpoint_starts_now_and_spaces_the_rest() {
        let slots = Slots::open(10, None, 5 * SECOND, SECOND / 4);
        assert_eq!(slots.first, 5 * SECOND);
        assert_eq!(slots.interval, 102_000);
        // now, +102 ms, +204 ms: the next, at +306 ms, is past the horizon.
        assert_eq!(slots.count, 3);
        assert_eq!(slots.next_free(3), 5 * SECOND + 306_000);
        assert_eq!(slots.reopens(3, SECOND / 4), 5 * SECOND + 306_000 - 125_000);
    }

    #[test]
    fn a_start_time_in_the_past_is_not_caught_up() {
        // The endpoint was idle: its old free time gives no burst of back calls.
        let slots = Slots::open(10, Some(0), 5 * SECOND, 0);
        assert_eq!((slots.first, slots.count), (5 * SECOND, 1));
    }

    #[test]
    fn a_budget_spent_ahead_gives_nothing_until_it_reopens() {
        let slots = Slots::open(1, Some(3 * SECOND), SECOND, SECOND / 4);
        assert_eq!(slots.count, 0);
        assert_eq!(slots.reopens(0, SECOND / 4), 3 * SECOND - SECOND / 8);
        // Without looking ahead, a call may start exactly at its time.
        assert_eq!(Slots::open(1, Some(3 * SECOND), 3 * SECOND, 0).count, 1);
    }

    #[test]
    fn no_second_holds_more_starts_than_the_limit_even_when_a_call_starts_late() {
        for limit in [1, 3, 7, 10, 99, 1000, MAX_RATE] {
            let slots = Slots::open(limit, None, 0, 4 * SECOND);
            let n = limit as usize * 3;
            assert!(slots.count as usize >= n, "{limit}");
            let mut starts: Vec<Micros> = (0..n as u32).map(|i| slots.start(i)).collect();
            // Every call a little late, and one as late as the margin allows but for a hair.
            for (i, s) in starts.iter_mut().enumerate() {
                *s += if i == limit as usize / 2 {
                    19_999
                } else {
                    (i as Micros * 7919) % 1_000
                };
            }
            starts.sort();
            let crowded = (0..n).map(|i| starts[i..].iter().take_while(|&&s| s < starts[i] + SECOND).count());
            assert!(crowded.max().unwrap() <= limit as usize, "limit {limit}");
        }
    }
}
