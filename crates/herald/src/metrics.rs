//! Counters and histograms, rendered in Prometheus' text format at `GET /metrics`.
//!
//! A mutex-guarded map is plenty here: each request takes the lock once, briefly, and a few
//! thousand requests a second do not contend on it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::Micros;
use crate::domain::delivery::{Attempt, Backlog, Verdict};

/// Upper bounds, in seconds, of the latency buckets.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A latency histogram with fixed buckets.
#[derive(Default, Clone)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines of `name` with `labels`.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let (open, braced) = if labels.is_empty() {
            (String::new(), String::new())
        } else {
            (format!("{labels},"), format!("{{{labels}}}"))
        };
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{{open}le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{open}le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{braced} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braced} {}", self.count);
    }
}

#[derive(Default)]
struct Http {
    /// (method, route, status) → requests answered.
    answered: BTreeMap<(String, String, u16), u64>,
    /// (method, route) → latency.
    latency: BTreeMap<(String, String), Histogram>,
}

#[derive(Default)]
struct Calls {
    /// (outcome, failure code) → calls made.
    made: BTreeMap<(&'static str, &'static str), u64>,
    latency: Histogram,
    /// From a delivery's making to the start of its first call.
    lag: Histogram,
}

/// Herald's metrics.
#[derive(Default)]
pub struct Metrics {
    http: Mutex<Http>,
    calls: Mutex<Calls>,
    /// Claims that found work after the dispatcher's idle safety net, rather than a wake-up or
    /// a due time, ended its sleep: each one is work that waited for nothing.
    safety_net_claims: AtomicU64,
}

impl Metrics {
    /// Counts one answered HTTP request.
    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let mut http = self.http.lock().expect("the metrics lock is never poisoned");
        *http
            .answered
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        http.latency
            .entry((method.to_owned(), route.to_owned()))
            .or_default()
            .observe(elapsed);
    }

    /// Counts one call to an endpoint by outcome and error code.
    pub fn call(&self, attempt: &Attempt, elapsed: Duration) {
        let outcome = match attempt.verdict {
            Verdict::Success => "success",
            Verdict::Failure { .. } => "failure",
            Verdict::Gone => "gone",
        };
        let code = attempt.failure.as_ref().map_or("", |f| f.code.as_str());
        let mut calls = self.calls.lock().expect("the metrics lock is never poisoned");
        *calls.made.entry((outcome, code)).or_default() += 1;
        calls.latency.observe(elapsed);
        if attempt.claimed.attempt == 1 {
            let lag = (attempt.started_at - attempt.claimed.created_at).max(0);
            calls.lag.observe(Duration::from_micros(lag as u64));
        }
    }

    /// Counts a claim that found work once the idle safety net ended the dispatcher's sleep.
    pub fn safety_net_claim(&self) {
        self.safety_net_claims.fetch_add(1, Ordering::Relaxed);
    }

    /// Everything, in Prometheus' text exposition format, with the gauges read at `now`
    /// (`None`: the database did not answer, and only `herald_ready` says so).
    pub fn render(&self, backlog: Option<&Backlog>, now: Micros) -> String {
        let http = self.http.lock().expect("the metrics lock is never poisoned");
        let mut out = String::new();
        out.push_str("# HELP herald_http_requests_total HTTP requests answered, by method, route and status.\n");
        out.push_str("# TYPE herald_http_requests_total counter\n");
        for ((method, route, status), n) in &http.answered {
            let _ = writeln!(
                out,
                "herald_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP herald_http_request_duration_seconds Time to answer HTTP requests.\n");
        out.push_str("# TYPE herald_http_request_duration_seconds histogram\n");
        for ((method, route), histogram) in &http.latency {
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            histogram.render(&mut out, "herald_http_request_duration_seconds", &labels);
        }
        drop(http);
        let calls = self.calls.lock().expect("the metrics lock is never poisoned");
        out.push_str("# HELP herald_calls_total Calls made to endpoints, by outcome and error code.\n");
        out.push_str("# TYPE herald_calls_total counter\n");
        for ((outcome, code), n) in &calls.made {
            let _ = writeln!(out, "herald_calls_total{{outcome=\"{outcome}\",error=\"{code}\"}} {n}");
        }
        out.push_str("# HELP herald_call_duration_seconds Time from sending a call to its answer.\n");
        out.push_str("# TYPE herald_call_duration_seconds histogram\n");
        calls.latency.render(&mut out, "herald_call_duration_seconds", "");
        out.push_str(
            "# HELP herald_delivery_lag_seconds Time from a delivery's making (its event's commit) to the \
             start of its first call.\n",
        );
        out.push_str("# TYPE herald_delivery_lag_seconds histogram\n");
        calls.lag.render(&mut out, "herald_delivery_lag_seconds", "");
        drop(calls);
        out.push_str("# HELP herald_ready Whether the database answered this scrape in time (as /readyz).\n");
        out.push_str("# TYPE herald_ready gauge\n");
        let _ = writeln!(out, "herald_ready {}", u8::from(backlog.is_some()));
        if let Some(backlog) = backlog {
            render_backlog(&mut out, backlog, now);
        }
        out.push_str(
            "# HELP herald_dispatcher_safety_net_claims_total Claims that found work only when the idle \
             safety net woke the dispatcher (each is a missed wake-up).\n",
        );
        out.push_str("# TYPE herald_dispatcher_safety_net_claims_total counter\n");
        let _ = writeln!(
            out,
            "herald_dispatcher_safety_net_claims_total {}",
            self.safety_net_claims.load(Ordering::Relaxed)
        );
        out
    }
}

/// The gauges read from the database.
fn render_backlog(out: &mut String, backlog: &Backlog, now: Micros) {
    out.push_str("# HELP herald_deliveries_waiting Deliveries not yet succeeded nor given up.\n");
    out.push_str("# TYPE herald_deliveries_waiting gauge\n");
    let _ = writeln!(out, "herald_deliveries_waiting {}", backlog.deliveries_waiting);
    out.push_str(
        "# HELP herald_oldest_waiting_seconds Age of the oldest delivery that is due and not yet called, \
         of an active endpoint (0 when none).\n",
    );
    out.push_str("# TYPE herald_oldest_waiting_seconds gauge\n");
    let oldest = backlog.oldest_due.map_or(0, |due| (now - due).max(0));
    let _ = writeln!(out, "herald_oldest_waiting_seconds {}", oldest as f64 / 1e6);
    out.push_str("# HELP herald_endpoints_suspended Endpoints suspended or disabled, by state.\n");
    out.push_str("# TYPE herald_endpoints_suspended gauge\n");
    let _ = writeln!(
        out,
        "herald_endpoints_suspended{{state=\"suspended\"}} {}",
        backlog.endpoints_suspended
    );
    let _ = writeln!(
        out,
        "herald_endpoints_suspended{{state=\"disabled\"}} {}",
        backlog.endpoints_disabled
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(40));
        h.observe(Duration::from_secs(60));
        let mut out = String::new();
        h.render(&mut out, "x", "a=\"b\"");
        h.render(&mut out, "y", "");
        assert!(
            out.contains("y_bucket{le=\"+Inf\"} 3\n") && out.contains("y_count 3\n"),
            "{out}"
        );
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.05\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 3\n"), "{out}");
    }
}
