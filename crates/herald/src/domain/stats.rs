//! An endpoint's figures: calls by outcome, latency, and failures by status and by failure
//! code, rolled up by hour as the recorder writes each batch of calls, so that showing an
//! endpoint's last day or week reads a few hundred counters, never the call history.

use std::collections::BTreeMap;

use super::delivery::{CallRecord, FailureCode, Verdict};
use crate::clock::Micros;

/// An hour, in stored form.
pub const HOUR: Micros = 3_600 * 1_000_000;

/// How long counters are kept at least, whatever the history's retention: the longest window
/// they are read for (a week), and a day to spare.
pub const KEPT: std::time::Duration = std::time::Duration::from_secs(8 * 24 * 3600);

/// The upper bounds, in milliseconds, of the latency histogram's buckets; a last bucket holds
/// what is slower than them all.
pub const LATENCY_BOUNDS_MS: [i64; 14] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 15_000, 20_000, 30_000,
];

/// What one counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Counter {
    Succeeded,
    Failed,
    /// Calls whose duration fell in this bucket of [`LATENCY_BOUNDS_MS`].
    Latency(u8),
    /// Failed calls that got this HTTP status (0: no answer).
    Status(u16),
    /// Failed calls with this failure code.
    Failure(FailureCode),
}

impl Counter {
    /// The counter as stored: a kind and a key.
    pub fn stored(self) -> (&'static str, String) {
        match self {
            Counter::Succeeded => ("succeeded", String::new()),
            Counter::Failed => ("failed", String::new()),
            Counter::Latency(bucket) => ("latency", bucket.to_string()),
            Counter::Status(status) => ("status", status.to_string()),
            Counter::Failure(code) => ("failure", code.as_str().to_owned()),
        }
    }

    /// The counter a stored kind and key name; `None` for one this version does not know.
    pub fn from_stored(kind: &str, key: &str) -> Option<Counter> {
        match kind {
            "succeeded" => Some(Counter::Succeeded),
            "failed" => Some(Counter::Failed),
            "latency" => key.parse().ok().map(Counter::Latency),
            "status" => key.parse().ok().map(Counter::Status),
            "failure" => FailureCode::parse(key).map(Counter::Failure),
            _ => None,
        }
    }
}

/// One counter of one endpoint in one hour, and how much to add to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub account_id: i64,
    pub endpoint_seq: i64,
    /// The start of the hour.
    pub hour: Micros,
    pub counter: Counter,
    pub count: i64,
}

/// The latency bucket of a call that took `ms`.
pub fn bucket_of(ms: i64) -> u8 {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|bound| ms <= *bound)
        .unwrap_or(LATENCY_BOUNDS_MS.len()) as u8
}

/// What a batch of calls adds to the counters, each counter once.
pub fn tallies(calls: &[CallRecord]) -> Vec<Tally> {
    let mut counts: BTreeMap<(i64, i64, Micros, Counter), i64> = BTreeMap::new();
    for call in calls {
        let attempt = &call.attempt;
        let claimed = &attempt.claimed;
        let hour = attempt.started_at - attempt.started_at.rem_euclid(HOUR);
        let mut add = |counter| {
            *counts
                .entry((claimed.account_id, claimed.endpoint_seq, hour, counter))
                .or_default() += 1
        };
        add(Counter::Latency(bucket_of(attempt.duration_ms)));
        match attempt.verdict {
            Verdict::Success => add(Counter::Succeeded),
            Verdict::Failure { .. } | Verdict::Gone => {
                add(Counter::Failed);
                add(Counter::Status(attempt.response_status));
                if let Some(failure) = &attempt.failure {
                    add(Counter::Failure(failure.code));
                }
            }
        }
    }
    counts
        .into_iter()
        .map(|((account_id, endpoint_seq, hour, counter), count)| Tally {
            account_id,
            endpoint_seq,
            hour,
            counter,
            count,
        })
        .collect()
}

/// An endpoint's figures over a window, from its counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub succeeded: i64,
    pub failed: i64,
    /// Latency quantiles in milliseconds: the upper bound of the bucket that holds them
    /// (`None` without calls, or above the last bound).
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
    /// Each hour of the window, oldest first, even the empty ones.
    pub hours: Vec<HourFigures>,
    /// Failed calls by status (0: no answer), most first.
    pub by_status: Vec<(u16, i64)>,
    /// Failed calls by failure code, most first.
    pub by_failure: Vec<(FailureCode, i64)>,
}

/// One hour's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct HourFigures {
    pub hour: Micros,
    pub succeeded: i64,
    pub failed: i64,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
}

impl Figures {
    /// The figures of the `hours` hours that end with the one holding `now`, from counters
    /// `(hour, counter, count)`.
    pub fn of(counters: &[(Micros, Counter, i64)], now: Micros, hours: u32) -> Figures {
        let last = now - now.rem_euclid(HOUR);
        let first = last - Micros::from(hours.saturating_sub(1)) * HOUR;
        let mut by_hour: BTreeMap<Micros, Vec<(Counter, i64)>> = (0..hours)
            .map(|i| (first + Micros::from(i) * HOUR, Vec::new()))
            .collect();
        for (hour, counter, count) in counters {
            if let Some(counted) = by_hour.get_mut(hour) {
                counted.push((*counter, *count));
            }
        }
        let all: Vec<(Counter, i64)> = by_hour.values().flatten().copied().collect();
        let count = |counters: &[(Counter, i64)], wanted: Counter| {
            counters
                .iter()
                .filter(|(c, _)| *c == wanted)
                .map(|(_, n)| n)
                .sum::<i64>()
        };
        let mut by_status: BTreeMap<u16, i64> = BTreeMap::new();
        let mut by_failure: BTreeMap<FailureCode, i64> = BTreeMap::new();
        for (counter, n) in &all {
            match counter {
                Counter::Status(status) => *by_status.entry(*status).or_default() += n,
                Counter::Failure(code) => *by_failure.entry(*code).or_default() += n,
                _ => {}
            }
        }
        let mut by_status: Vec<(u16, i64)> = by_status.into_iter().collect();
        by_status.sort_by_key(|(status, n)| (-n, *status));
        let mut by_failure: Vec<(FailureCode, i64)> = by_failure.into_iter().collect();
        by_failure.sort_by_key(|(code, n)| (-n, *code));
        Figures {
            succeeded: count(&all, Counter::Succeeded),
            failed: count(&all, Counter::Failed),
            p50_ms: quantile(&all, 0.5),
            p95_ms: quantile(&all, 0.95),
            hours: by_hour
                .iter()
                .map(|(hour, counted)| HourFigures {
                    hour: *hour,
                    succeeded: count(counted, Counter::Succeeded),
                    failed: count(counted, Counter::Failed),
                    p50_ms: quantile(counted, 0.5),
                    p95_ms: quantile(counted, 0.95),
                })
                .collect(),
            by_status,
            by_failure,
        }
    }

    /// Succeeded calls over all calls; `None` without calls.
    pub fn success_rate(&self) -> Option<f64> {
        let calls = self.succeeded + self.failed;
        (calls > 0).then(|| self.succeeded as f64 / calls as f64)
    }
}

/// The upper bound of the latency bucket that holds quantile `q` of the calls.
fn quantile(counters: &[(Counter, i64)], q: f64) -> Option<i64> {
    let mut buckets = [0i64; LATENCY_BOUNDS_MS.len() + 1];
    for (counter, n) in counters {
        if let Counter::Latency(bucket) = counter {
            if let Some(slot) = buckets.get_mut(usize::from(*bucket)) {
                *slot += n;
            }
        }
    }
    let total: i64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as i64;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return LATENCY_BOUNDS_MS.get(i).copied();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_hold_their_upper_bound() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(5), 0);
        assert_eq!(bucket_of(6), 1);
        assert_eq!(bucket_of(30_000), 13);
        assert_eq!(bucket_of(30_001), 14);
    }

    #[test]
    fn figures_add_the_hours_of_the_window_and_no_others() {
        let h = |i: i64| 100 * HOUR + i * HOUR;
        let counters = [
            (h(0), Counter::Succeeded, 8),
            (h(0), Counter::Failed, 2),
            (h(0), Counter::Latency(bucket_of(3)), 9),
            (h(0), Counter::Latency(bucket_of(400)), 1),
            (h(0), Counter::Status(500), 1),
            (h(0), Counter::Status(0), 1),
            (h(0), Counter::Failure(FailureCode::HttpStatus), 1),
            (h(0), Counter::Failure(FailureCode::Timeout), 1),
            (h(2), Counter::Succeeded, 10),
            (h(2), Counter::Latency(bucket_of(40)), 10),
            (h(2), Counter::Status(503), 0),
            // Outside a two-hour window that ends at h(2).
            (h(-5), Counter::Succeeded, 1_000),
        ];
        let figures = Figures::of(&counters, h(2) + 60_000_000, 3);
        assert_eq!((figures.succeeded, figures.failed), (18, 2));
        assert_eq!(figures.success_rate(), Some(0.9));
        assert_eq!(figures.hours.len(), 3);
        assert_eq!(
            figures.hours.iter().map(|h| h.succeeded).collect::<Vec<_>>(),
            [8, 0, 10]
        );
        assert_eq!((figures.hours[0].p50_ms, figures.hours[0].p95_ms), (Some(5), Some(500)));
        assert_eq!(figures.hours[1].p50_ms, None, "an hour without calls");
        // 20 calls: 9 at ≤ 5 ms, 10 at ≤ 50 ms, 1 at ≤ 500 ms.
        assert_eq!((figures.p50_ms, figures.p95_ms), (Some(50), Some(50)));
        assert_eq!(figures.by_status, [(0, 1), (500, 1), (503, 0)]);
        assert_eq!(figures.by_failure.len(), 2);
        assert_eq!(Figures::of(&[], 0, 24).success_rate(), None);
    }

    #[test]
    fn counters_are_stored_as_words_and_read_back() {
        for counter in [
            Counter::Succeeded,
            Counter::Failed,
            Counter::Latency(3),
            Counter::Status(404),
            Counter::Failure(FailureCode::ConnectionReset),
        ] {
            let (kind, key) = counter.stored();
            assert_eq!(Counter::from_stored(kind, &key), Some(counter));
        }
        assert_eq!(Counter::from_stored("newer", "x"), None);
    }
}
