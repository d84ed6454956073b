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
    /// Calls that got this HTTP status (0: no answer), whatever their outcome.
    Answer(u16),
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
            Counter::Answer(status) => ("answer", status.to_string()),
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
            "answer" => key.parse().ok().map(Counter::Answer),
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
        add(Counter::Answer(attempt.response_status));
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

/// The windows the figures are read over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last 24 hours, hour by hour.
    Day,
    /// The last 7 days, by 6 hours.
    Week,
}

impl Window {
    /// The window a query names (`24h` or `7d`).
    pub fn parse(name: &str) -> Option<Window> {
        match name {
            "24h" => Some(Window::Day),
            "7d" => Some(Window::Week),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Window::Day => "24h",
            Window::Week => "7d",
        }
    }

    /// How many hours the window covers, the current one included.
    pub fn hours(self) -> u32 {
        match self {
            Window::Day => 24,
            Window::Week => 7 * 24,
        }
    }

    /// How many hours one item of the window's series covers.
    pub fn step_hours(self) -> u32 {
        match self {
            Window::Day => 1,
            Window::Week => 6,
        }
    }

    /// The start of the window's first hour, for a window that ends with the hour of `now`.
    pub fn first_hour(self, now: Micros) -> Micros {
        now - now.rem_euclid(HOUR) - Micros::from(self.hours() - 1) * HOUR
    }
}

/// An endpoint's figures over a window, from its counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub succeeded: i64,
    pub failed: i64,
    /// Latency quantiles in milliseconds: the upper bound of the bucket that holds them
    /// (`None` without calls, or above the last bound).
    pub latency: Quantiles,
    /// The window step by step (an hour, or 6 hours), oldest first, even the empty steps.
    pub series: Vec<Step>,
    /// Calls by the status they got (0: no answer), in status order.
    pub by_status: Vec<(u16, i64)>,
    /// Failed calls by the status they got (0: no answer), most first.
    pub failures_by_status: Vec<(u16, i64)>,
    /// Failed calls by failure code, most first.
    pub by_failure: Vec<(FailureCode, i64)>,
}

/// Latency quantiles, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quantiles {
    pub p50: Option<i64>,
    pub p95: Option<i64>,
    pub p99: Option<i64>,
}

impl Quantiles {
    fn of(counters: &[(Counter, i64)]) -> Quantiles {
        Quantiles {
            p50: quantile(counters, 0.5),
            p95: quantile(counters, 0.95),
            p99: quantile(counters, 0.99),
        }
    }
}

/// One step of a window's series.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The start of the step's first hour.
    pub from: Micros,
    pub succeeded: i64,
    pub failed: i64,
    pub latency: Quantiles,
}

impl Figures {
    /// The figures of `window`, which ends with the hour holding `now`, from counters
    /// `(hour, counter, count)`; counters of other hours are left out.
    pub fn of(counters: &[(Micros, Counter, i64)], now: Micros, window: Window) -> Figures {
        let first = window.first_hour(now);
        let step = Micros::from(window.step_hours()) * HOUR;
        let steps = window.hours() / window.step_hours();
        let mut by_step: BTreeMap<Micros, Vec<(Counter, i64)>> = (0..steps)
            .map(|i| (first + Micros::from(i) * step, Vec::new()))
            .collect();
        for (hour, counter, count) in counters {
            if *hour < first {
                continue;
            }
            let from = first + (hour - first) / step * step;
            if let Some(counted) = by_step.get_mut(&from) {
                counted.push((*counter, *count));
            }
        }
        let all: Vec<(Counter, i64)> = by_step.values().flatten().copied().collect();
        let count = |counters: &[(Counter, i64)], wanted: Counter| {
            counters
                .iter()
                .filter(|(c, _)| *c == wanted)
                .map(|(_, n)| n)
                .sum::<i64>()
        };
        let mut by_status: BTreeMap<u16, i64> = BTreeMap::new();
        let mut failures_by_status: BTreeMap<u16, i64> = BTreeMap::new();
        let mut by_failure: BTreeMap<FailureCode, i64> = BTreeMap::new();
        for (counter, n) in &all {
            match counter {
                Counter::Answer(status) => *by_status.entry(*status).or_default() += n,
                Counter::Status(status) => *failures_by_status.entry(*status).or_default() += n,
                Counter::Failure(code) => *by_failure.entry(*code).or_default() += n,
                _ => {}
            }
        }
        Figures {
            succeeded: count(&all, Counter::Succeeded),
            failed: count(&all, Counter::Failed),
            latency: Quantiles::of(&all),
            series: by_step
                .iter()
                .map(|(from, counted)| Step {
                    from: *from,
                    succeeded: count(counted, Counter::Succeeded),
                    failed: count(counted, Counter::Failed),
                    latency: Quantiles::of(counted),
                })
                .collect(),
            by_status: by_status.into_iter().collect(),
            failures_by_status: most_first(failures_by_status),
            by_failure: most_first(by_failure),
        }
    }

    pub fn calls(&self) -> i64 {
        self.succeeded + self.failed
    }

    /// Succeeded calls over all calls; `None` without calls.
    pub fn success_rate(&self) -> Option<f64> {
        (self.calls() > 0).then(|| self.succeeded as f64 / self.calls() as f64)
    }
}

/// Counts, the most first, then in key order.
fn most_first<K: Ord + Copy>(counts: BTreeMap<K, i64>) -> Vec<(K, i64)> {
    let mut counts: Vec<(K, i64)> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
    counts.sort_by_key(|(key, n)| (-n, *key));
    counts
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
        let now = 1_000 * HOUR + 60_000_000;
        let h = |i: i64| 1_000 * HOUR + i * HOUR;
        let counters = [
            (h(-2), Counter::Succeeded, 8),
            (h(-2), Counter::Failed, 2),
            (h(-2), Counter::Latency(bucket_of(3)), 9),
            (h(-2), Counter::Latency(bucket_of(400)), 1),
            (h(-2), Counter::Answer(200), 8),
            (h(-2), Counter::Answer(500), 1),
            (h(-2), Counter::Answer(0), 1),
            (h(-2), Counter::Status(500), 1),
            (h(-2), Counter::Status(0), 1),
            (h(-2), Counter::Failure(FailureCode::HttpStatus), 1),
            (h(-2), Counter::Failure(FailureCode::Timeout), 1),
            (h(0), Counter::Succeeded, 10),
            (h(0), Counter::Latency(bucket_of(40)), 10),
            (h(0), Counter::Answer(200), 10),
            (h(0), Counter::Status(503), 0),
            // Before the day's first hour, but inside the week.
            (h(-30), Counter::Succeeded, 1_000),
            (h(-30), Counter::Latency(bucket_of(40_000)), 1_000),
        ];
        let day = Figures::of(&counters, now, Window::Day);
        assert_eq!((day.succeeded, day.failed, day.calls()), (18, 2, 20));
        assert_eq!(day.success_rate(), Some(0.9));
        assert_eq!(day.series.len(), 24);
        assert_eq!(day.series[23].from, h(0), "the last step is now's hour");
        assert_eq!(day.series[0].from, h(-23));
        let succeeded: Vec<i64> = day.series.iter().map(|s| s.succeeded).collect();
        assert_eq!(succeeded[21..], [8, 0, 10]);
        assert_eq!(succeeded[..21].iter().sum::<i64>(), 0);
        let busy = &day.series[21].latency;
        assert_eq!((busy.p50, busy.p95, busy.p99), (Some(5), Some(500), Some(500)));
        assert_eq!(day.series[22].latency, Quantiles::default(), "an hour without calls");
        // 20 calls: 9 at ≤ 5 ms, 10 at ≤ 50 ms, 1 at ≤ 500 ms.
        assert_eq!(
            (day.latency.p50, day.latency.p95, day.latency.p99),
            (Some(50), Some(50), Some(500))
        );
        assert_eq!(day.by_status, [(0, 1), (200, 18), (500, 1)]);
        assert_eq!(day.failures_by_status, [(0, 1), (500, 1)], "no empty count");
        assert_eq!(day.by_failure.len(), 2);

        let week = Figures::of(&counters, now, Window::Week);
        assert_eq!(week.series.len(), 28, "by 6 hours");
        assert_eq!(week.series[27].from, week.series[26].from + 6 * HOUR);
        assert_eq!(week.series[27].from, h(-5), "the last step holds now's hour");
        assert_eq!(week.series[27].succeeded, 18);
        assert_eq!(week.series[22].from, h(-35));
        assert_eq!(week.series[22].succeeded, 1_000, "h(-30) is in the step from h(-35)");
        assert_eq!(week.calls(), 1_020);
        assert_eq!(week.latency.p50, None, "slower than the last bound");
        assert_eq!(Figures::of(&[], 0, Window::Day).success_rate(), None);
        assert_eq!(Window::parse("7d"), Some(Window::Week));
        assert_eq!(Window::parse("1y"), None);
    }

    #[test]
    fn counters_are_stored_as_words_and_read_back() {
        for counter in [
            Counter::Succeeded,
            Counter::Failed,
            Counter::Latency(3),
            Counter::Answer(200),
            Counter::Status(404),
            Counter::Failure(FailureCode::ConnectionReset),
        ] {
            let (kind, key) = counter.stored();
            assert_eq!(Counter::from_stored(kind, &key), Some(counter));
        }
        assert_eq!(Counter::from_stored("newer", "x"), None);
    }
}
