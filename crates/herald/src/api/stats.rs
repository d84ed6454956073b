//! `…/webhook/endpoint/{id}/stats?window=24h|7d`: an endpoint's figures over its last day or
//! week (calls by outcome, success rate, latency, each hour, failures by status and by code),
//! read from the counters the recorder keeps by hour, never from the call history.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::routing::get;
use serde::Serialize;

use super::AppState;
use super::endpoints::EndpointId;
use super::envelope::{Link, Resource, ok};
use super::error::{ApiError, ApiResult};
use super::scope::Scope;
use crate::domain::stats::{Figures, HOUR};

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
    calls: i64,
    succeeded: i64,
    failed: i64,
    /// Succeeded calls over all calls; `null` without calls.
    success_rate: Option<f64>,
    /// Latency quantiles, in milliseconds.
    latency_ms: Latency,
    /// Each hour of the window, oldest first, empty ones included.
    hours: Vec<HourOut>,
    /// Failed calls by the HTTP status they got (0: no answer), most first.
    failures_by_status: Vec<StatusCount>,
    /// Failed calls by failure code (`timeout`, `http_status`, …), most first.
    failures_by_code: Vec<CodeCount>,
}

/// Latency quantiles: each is the upper bound of the histogram bucket that holds it (5, 10,
/// 25, 50, 100, 250, 500 ms, 1, 2.5, 5, 10, 15, 20, 30 s); `null` without calls, or when slower
/// than 30 s.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Latency {
    p50: Option<i64>,
    p95: Option<i64>,
}

/// One hour's figures.
#[derive(Serialize, schemars::JsonSchema)]
pub struct HourOut {
    /// The hour's start.
    hour: String,
    succeeded: i64,
    failed: i64,
    latency_ms: Latency,
}

/// How many failed calls got one HTTP status.
#[derive(Serialize, schemars::JsonSchema)]
pub struct StatusCount {
    status: u16,
    count: i64,
}

/// How many failed calls had one failure code.
#[derive(Serialize, schemars::JsonSchema)]
pub struct CodeCount {
    code: String,
    count: i64,
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

/// The window a query asks for: its name and its hours.
fn window(query: Option<&str>) -> Result<(&'static str, u32), ApiError> {
    let asked = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "window")
        .map(|(_, value)| value.into_owned());
    match asked.as_deref() {
        None | Some("24h") => Ok(("24h", 24)),
        Some("7d") => Ok(("7d", 7 * 24)),
        Some(other) => Err(ApiError::BadQuery(format!("window: give 24h or 7d, not {other:?}"))),
    }
}

async fn show(
    State(state): State<AppState>,
    scope: Scope,
    EndpointId(id): EndpointId,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let (name, hours) = window(query.as_deref())?;
    let now = state.clock.now();
    let first_hour = now - now.rem_euclid(HOUR) - i64::from(hours - 1) * HOUR;
    let counters = state.store.endpoint_counters(scope.account.id, &id, first_hour).await?;
    let figures = Figures::of(&counters, now, hours);
    let clock = &state.clock;
    let endpoint = format!("{}/webhook/endpoint/{id}", scope.base);
    Ok(ok(StatsOut {
        self_: format!("{endpoint}/stats?window={name}"),
        window: name.into(),
        from: clock.datetime(first_hour),
        to: clock.datetime(now),
        calls: figures.succeeded + figures.failed,
        succeeded: figures.succeeded,
        failed: figures.failed,
        success_rate: figures.success_rate(),
        latency_ms: Latency {
            p50: figures.p50_ms,
            p95: figures.p95_ms,
        },
        hours: figures
            .hours
            .iter()
            .map(|h| HourOut {
                hour: clock.datetime(h.hour),
                succeeded: h.succeeded,
                failed: h.failed,
                latency_ms: Latency {
                    p50: h.p50_ms,
                    p95: h.p95_ms,
                },
            })
            .collect(),
        failures_by_status: figures
            .by_status
            .iter()
            .map(|(status, count)| StatusCount {
                status: *status,
                count: *count,
            })
            .collect(),
        failures_by_code: figures
            .by_failure
            .iter()
            .map(|(code, count)| CodeCount {
                code: code.as_str().into(),
                count: *count,
            })
            .collect(),
        endpoint: Link::to(endpoint),
    }))
}
