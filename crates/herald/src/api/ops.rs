//! Operations: `GET /healthz` (the process is alive) and `GET /readyz` (it can serve: the
//! database answers) for load balancers and orchestrators, and `GET /metrics` for Prometheus.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::metrics::Format;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

/// How long `/readyz` waits for the database: an orchestrator's probe must hear "not ready"
/// well before its own time-out, rather than hang with the database.
const READY_WITHIN: Duration = Duration::from_secs(1);

/// Alive: answered by the process alone, so that a database outage does not get healthy
/// processes restarted.
async fn health() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok\n")
}

/// Ready when the database answers within [`READY_WITHIN`]; a 503 otherwise.
async fn ready(State(state): State<AppState>) -> ApiResult {
    match tokio::time::timeout(READY_WITHIN, state.store.ping()).await {
        Ok(Ok(())) => Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ready\n").into_response()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the database does not answer");
            Err(ApiError::Unavailable("not ready: the database does not answer".into()))
        }
        Err(_) => Err(ApiError::Unavailable(format!(
            "not ready: the database did not answer within {} s",
            READY_WITHIN.as_secs()
        ))),
    }
}

/// The counters always; the gauges read from the database when it answers in time, with
/// `herald_ready` saying whether it did (so that a scrape still works, and says so, while
/// the database is away).
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let now = state.clock.now();
    let backlog = match tokio::time::timeout(READY_WITHIN, state.store.backlog(now)).await {
        Ok(Ok(backlog)) => Some(backlog),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the metrics' gauges could not be read");
            None
        }
        Err(_) => None,
    };
    let format = Format::accepted(headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).unwrap_or(""));
    let text = state.metrics.render(backlog.as_ref(), now, format);
    Ok(([(header::CONTENT_TYPE, format.content_type())], text).into_response())
}
