//! Operations: `GET /healthz` for load balancers and `GET /metrics` for Prometheus.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;
use super::error::ApiResult;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
}

/// Healthy when the database answers.
async fn health(State(state): State<AppState>) -> ApiResult {
    state.store.event_types().await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok\n").into_response())
}

async fn metrics(State(state): State<AppState>) -> ApiResult {
    let backlog = state.store.backlog().await?;
    let text = state.metrics.render(&backlog);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response())
}
