//! `…/webhook/endpoint/{id}/stats?window=24h|7d`: an endpoint's figures over its last day or
//! week (calls by outcome, success rate, latency, each hour, failures by status and by code),
//! read from the counters the recorder keeps by hour, never from the call history.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::routing::get;
use serde::Serialize;

use super::AppState;
use super::endpoints::EndpointId;
use super::envelope::{Link, Resource, ok};
use super::error::{ApiError, ApiResult};
use super::scope::Scope;
use crate::domain::stats::{Figures, Window};

/// An endpoint's figures over a window.
#[derive(Serialize, schemars::JsonSchema)]
pub struct StatsOut {
    #[serde(rename = "_self")]
    self_: String,
    endpoint: Link,
    /// `24h` or `7d`.
    window: String,
    /// The start of the window's first hour, and now.
    from: String,
    to: String,
    /// Calls made in the window: succeeded and failed.
    calls: i64,
    succeeded: i64,
    failed: i64,
    /// Succeeded calls over all calls, from 0 to 1; `null` without calls.
    success_rate: Option<f64>,
    /// Latency quantiles of the window's calls.
    latency_ms: Latency,
    /// Calls by the HTTP status they got (`"0"`: no answer).
    by_status: BTreeMap<String, i64>,
    /// Failed calls by failure code (`timeout`, `http_status`, …).
    by_failure: BTreeMap<String, i64>,
    /// The window step by step, oldest first, empty steps included: each hour over 24h, each
    /// 6 hours over 7d.
    series: Vec<StepOut>,
}

/// Latency quantiles in milliseconds: each is the upper bound of the histogram bucket that
/// holds it (5, 10, 25, 50, 100, 250, 500 ms, 1, 2.5, 5, 10, 15, 20, 30 s); `null` without
/// calls, or when slower than 30 s.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Latency {
    p50: Option<i64>,
    p95: Option<i64>,
    p99: Option<i64>,
}

/// One step of the series: an hour, or 6 hours.
#[derive(Serialize, schemars::JsonSchema)]
pub struct StepOut {
    /// The step's start.
    from: String,
    calls: i64,
    succeeded: i64,
    failed: i64,
    /// Latency quantiles of the step's calls, as in `latency_ms`.
    p50_ms: Option<i64>,
    p95_ms: Option<i64>,
}

impl Resource for StatsOut {
    const SCHEMA: &'static str = "webhookendpointstats";
    const COLLECTION: &'static str = "webhookendpointstatslist";
    fn self_path(&self) -> &str {
        &self.self_
    }
}

/// The stats route under `prefix`: the REST API's and the admin API's per account.
pub fn router(prefix: &str) -> Router<AppState> {
    Router::new().route(&format!("{prefix}/webhook/endpoint/{{id}}/stats"), get(show))
}

/// The window a query asks for: 24h when it names none.
fn window(query: Option<&str>) -> Result<Window, ApiError> {
    let asked = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "window")
        .map(|(_, value)| value.into_owned());
    match asked {
        None => Ok(Window::Day),
        Some(name) => {
            Window::parse(&name).ok_or_else(|| ApiError::BadQuery(format!("window: give 24h or 7d, not {name:?}")))
        }
    }
}

async fn show(
    State(state): State<AppState>,
    scope: Scope,
    EndpointId(id): EndpointId,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let window = window(query.as_deref())?;
    let now = state.clock.now();
    let first_hour = window.first_hour(now);
    let counters = state.store.endpoint_counters(scope.account.id, &id, first_hour).await?;
    let figures = Figures::of(&counters, now, window);
    let clock = &state.clock;
    let endpoint = format!("{}/webhook/endpoint/{id}", scope.base);
    Ok(ok(StatsOut {
        self_: format!("{endpoint}/stats?window={}", window.name()),
        window: window.name().into(),
        from: clock.datetime(first_hour),
        to: clock.datetime(now),
        calls: figures.calls(),
        succeeded: figures.succeeded,
        failed: figures.failed,
        success_rate: figures.success_rate(),
        latency_ms: Latency {
            p50: figures.latency.p50,
            p95: figures.latency.p95,
            p99: figures.latency.p99,
        },
        by_status: figures
            .by_status
            .iter()
            .map(|(status, n)| (status.to_string(), *n))
            .collect(),
        by_failure: figures
            .by_failure
            .iter()
            .map(|(code, n)| (code.as_str().to_owned(), *n))
            .collect(),
        series: figures
            .series
            .iter()
            .map(|step| StepOut {
                from: clock.datetime(step.from),
                calls: step.succeeded + step.failed,
                succeeded: step.succeeded,
                failed: step.failed,
                p50_ms: step.latency.p50,
                p95_ms: step.latency.p95,
            })
            .collect(),
        endpoint: Link::to(endpoint),
    }))
}
