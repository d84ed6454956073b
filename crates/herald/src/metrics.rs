//! Herald's metrics, kept and written at `GET /metrics` by the Prometheus project's own client
//! (`prometheus-client`): in OpenMetrics for Prometheus, which asks for it, and in the classic
//! text format for everything else.
//!
//! Two registries: the counters and histograms, always written; and the gauges read from the
//! database at each scrape, written only when the database answered in time, so that a scrape
//! while it is away shows `herald_ready 0` rather than stale figures.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::clock::Micros;
use crate::domain::delivery::{Attempt, Backlog, Verdict};

/// The two exposition formats a scraper may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0, which Prometheus asks for (`Accept: application/openmetrics-text`).
    OpenMetrics,
    /// Prometheus' classic text format 0.0.4, for every other client (curl, `promtool check
    /// metrics`, older scrapers).
    Text,
}

impl Format {
    /// The format a request's `Accept` header asks for.
    pub fn accepted(accept: &str) -> Format {
        if accept.contains("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// Upper bounds, in seconds, of the latency buckets.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

fn latency() -> Histogram {
    Histogram::new(BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answered {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    method: String,
    route: String,
}

/// A call by its outcome and failure code (empty for a success).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    outcome: &'static str,
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Resting {
    state: &'static str,
}

/// The gauges read from the database at each scrape.
struct Gauges {
    registry: Registry,
    waiting: Gauge,
    oldest: Gauge<f64, AtomicU64>,
    resting: Family<Resting, Gauge>,
}

/// Herald's metrics.
pub struct Metrics {
    registry: Registry,
    answered: Family<Answered, Counter>,
    /// Error answers by their code (`storage_full`, `rate_limited`, …).
    errors: Family<ErrorLabel, Counter>,
    answer_latency: Family<Route, Histogram, fn() -> Histogram>,
    calls: Family<Call, Counter>,
    call_latency: Histogram,
    /// From a delivery's making to the start of its first call.
    lag: Histogram,
    /// Claims that found work after the dispatcher's idle safety net, rather than a wake-up or
    /// a due time, ended its sleep: each one is work that waited for nothing.
    safety_net_claims: Counter,
    ready: Gauge,
    gauges: Gauges,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::default();
        let answered = Family::<Answered, Counter>::default();
        registry.register(
            "herald_http_requests",
            "HTTP requests answered, by method, route and status",
            answered.clone(),
        );
        let errors = Family::<ErrorLabel, Counter>::default();
        registry.register(
            "herald_http_errors",
            "HTTP requests answered with an error, by the error's code",
            errors.clone(),
        );
        let answer_latency = Family::<Route, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        registry.register(
            "herald_http_request_duration_seconds",
            "Time to answer HTTP requests",
            answer_latency.clone(),
        );
        let calls = Family::<Call, Counter>::default();
        registry.register(
            "herald_calls",
            "Calls made to endpoints, by outcome and error code",
            calls.clone(),
        );
        let call_latency = latency();
        registry.register(
            "herald_call_duration_seconds",
            "Time from sending a call to its answer",
            call_latency.clone(),
        );
        let lag = latency();
        registry.register(
            "herald_delivery_lag_seconds",
            "Time from a delivery's making (its event's commit) to the start of its first call",
            lag.clone(),
        );
        let safety_net_claims = Counter::default();
        registry.register(
            "herald_dispatcher_safety_net_claims",
            "Claims that found work only when the idle safety net woke the dispatcher (each is a missed wake-up)",
            safety_net_claims.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "herald_ready",
            "Whether the database answered this scrape in time (as /readyz)",
            ready.clone(),
        );
        Metrics {
            registry,
            answered,
            errors,
            answer_latency,
            calls,
            call_latency,
            lag,
            safety_net_claims,
            ready,
            gauges: Gauges::default(),
        }
    }
}

impl Default for Gauges {
    fn default() -> Gauges {
        let mut registry = Registry::default();
        let waiting = Gauge::default();
        registry.register(
            "herald_deliveries_waiting",
            "Deliveries not yet succeeded nor given up",
            waiting.clone(),
        );
        let oldest = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "herald_oldest_waiting_seconds",
            "Age of the oldest delivery that is due and not yet called, of an active endpoint (0 when none)",
            oldest.clone(),
        );
        let resting = Family::<Resting, Gauge>::default();
        registry.register(
            "herald_endpoints_suspended",
            "Endpoints suspended or disabled, by state",
            resting.clone(),
        );
        Gauges {
            registry,
            waiting,
            oldest,
            resting,
        }
    }
}

impl Metrics {
    /// Counts one answered HTTP request.
    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let (method, route) = (method.to_owned(), route.to_owned());
        self.answer_latency
            .get_or_create(&Route {
                method: method.clone(),
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.answered.get_or_create(&Answered { method, route, status }).inc();
    }

    /// Counts one error answer by its code.
    pub fn http_error(&self, code: &str) {
        self.errors.get_or_create(&ErrorLabel { code: code.to_owned() }).inc();
    }

    /// Counts one call to an endpoint by outcome and error code.
    pub fn call(&self, attempt: &Attempt, elapsed: Duration) {
        let outcome = match attempt.verdict {
            Verdict::Success => "success",
            Verdict::Failure { .. } => "failure",
            Verdict::Gone => "gone",
        };
        let error = attempt.failure.as_ref().map_or("", |f| f.code.as_str());
        self.calls.get_or_create(&Call { outcome, error }).inc();
        self.call_latency.observe(elapsed.as_secs_f64());
        if attempt.claimed.attempt == 1 {
            let lag = (attempt.started_at - attempt.claimed.created_at).max(0);
            self.lag.observe(lag as f64 / 1e6);
        }
    }

    /// Counts a claim that found work once the idle safety net ended the dispatcher's sleep.
    pub fn safety_net_claim(&self) {
        self.safety_net_claims.inc();
    }

    /// Everything in `format`, with the gauges read at `now` (`None`: the database did not
    /// answer, and only `herald_ready` says so).
    pub fn render(&self, backlog: Option<&Backlog>, now: Micros, format: Format) -> String {
        let openmetrics = self.openmetrics(backlog, now);
        match format {
            Format::OpenMetrics => openmetrics,
            Format::Text => classic_text(&openmetrics),
        }
    }

    fn openmetrics(&self, backlog: Option<&Backlog>, now: Micros) -> String {
        self.ready.set(i64::from(backlog.is_some()));
        let mut out = String::new();
        encode_registry(&mut out, &self.registry).expect("writing to a String cannot fail");
        if let Some(backlog) = backlog {
            let gauges = &self.gauges;
            gauges.waiting.set(backlog.deliveries_waiting);
            let oldest = backlog.oldest_due.map_or(0, |due| (now - due).max(0));
            gauges.oldest.set(oldest as f64 / 1e6);
            gauges
                .resting
                .get_or_create(&Resting { state: "suspended" })
                .set(backlog.endpoints_suspended);
            gauges
                .resting
                .get_or_create(&Resting { state: "disabled" })
                .set(backlog.endpoints_disabled);
            encode_registry(&mut out, &gauges.registry).expect("writing to a String cannot fail");
        }
        encode_eof(&mut out).expect("writing to a String cannot fail");
        out
    }
}

/// OpenMetrics rewritten in the classic text format. The two differ, for what Herald writes,
/// in where a counter's `_total` goes (OpenMetrics names the family without it, the classic
/// format names it as its one series is named) and in the `# EOF` that ends OpenMetrics.
fn classic_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
            continue;
        }
        if let Some(family) = line.strip_prefix("# TYPE ").and_then(|t| t.strip_suffix(" counter")) {
            if let Some(help) = help.take() {
                let text = help.strip_prefix(family).unwrap_or(help);
                out.push_str(&format!("# HELP {family}_total{text}\n"));
            }
            out.push_str(&format!("# TYPE {family}_total counter\n"));
            continue;
        }
        if let Some(help) = help.take() {
            out.push_str(&format!("# HELP {help}\n"));
        }
        if line != "# EOF" && !line.starts_with("# UNIT ") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_counted_in_cumulative_buckets_and_gauges_wait_for_the_database() {
        let metrics = Metrics::default();
        for elapsed in [
            Duration::from_millis(3),
            Duration::from_millis(40),
            Duration::from_secs(60),
        ] {
            metrics.http_request("GET", "/restapi/v1", 200, elapsed);
        }
        let out = metrics.render(None, 0, Format::OpenMetrics);
        let series = r#"method="GET",route="/restapi/v1""#;
        for line in [
            format!("herald_http_request_duration_seconds_bucket{{le=\"0.005\",{series}}} 1\n"),
            format!("herald_http_request_duration_seconds_bucket{{le=\"0.05\",{series}}} 2\n"),
            format!("herald_http_request_duration_seconds_bucket{{le=\"10.0\",{series}}} 2\n"),
            format!("herald_http_request_duration_seconds_bucket{{le=\"+Inf\",{series}}} 3\n"),
            format!("herald_http_request_duration_seconds_count{{{series}}} 3\n"),
            format!("herald_http_requests_total{{{series},status=\"200\"}} 3\n"),
            "herald_ready 0\n".into(),
        ] {
            assert!(out.contains(&line), "{line:?} in\n{out}");
        }
        assert!(!out.contains("herald_deliveries_waiting"), "no stale gauges: {out}");
        assert!(out.ends_with("# EOF\n"));
        let backlog = Backlog {
            deliveries_waiting: 7,
            endpoints_suspended: 1,
            endpoints_disabled: 2,
            oldest_due: Some(1_000_000),
        };
        let out = metrics.render(Some(&backlog), 3_500_000, Format::OpenMetrics);
        for line in [
            "herald_ready 1\n",
            "herald_deliveries_waiting 7\n",
            "herald_oldest_waiting_seconds 2.5\n",
            "herald_endpoints_suspended{state=\"disabled\"} 2\n",
        ] {
            assert!(out.contains(line), "{line:?} in\n{out}");
        }
        assert_eq!(out.matches("# EOF").count(), 1, "{out}");
    }

    #[test]
    fn the_classic_format_names_counters_by_their_total() {
        let metrics = Metrics::default();
        metrics.safety_net_claim();
        let out = metrics.render(None, 0, Format::Text);
        let claims = "herald_dispatcher_safety_net_claims_total";
        assert!(
            out.contains(&format!("# HELP {claims} Claims that found work")),
            "{out}"
        );
        assert!(out.contains(&format!("# TYPE {claims} counter\n{claims} 1\n")), "{out}");
        assert!(out.contains("# TYPE herald_ready gauge\nherald_ready 0\n"), "{out}");
        assert!(!out.contains("# EOF"), "{out}");
    }
}
