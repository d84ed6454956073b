//! The HTTP API: the REST API of an account (`/restapi/v1`, HTTP Basic), the admin API of
//! support (`/admin/v1`, bearer token), schemas and operations. Handlers are thin: they read
//! the request, ask the domain to check it, and call the store. No handler calls a customer's
//! endpoint; they write events, and the dispatcher calls.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::clock::Clock;
use crate::config::Config;
use crate::delivery::guard::Guard;
use crate::domain::Invalid;
use crate::domain::endpoint::ALL_EVENTS;
use crate::domain::event::EventStamp;
use crate::ids;
use crate::metrics::Metrics;
use crate::store::Store;
use error::ApiError;

mod accounts;
mod applications;
pub mod auth;
mod candidates;
pub mod catalogue;
mod endpoints;
pub mod envelope;
pub mod error;
mod events;
mod extract;
pub mod idempotency;
mod jobs;
mod openapi;
mod ops;
mod portal;
pub mod rate_limit;
mod root;
pub mod schemas;
mod scope;
mod stats;
mod steps;
mod tasks;
mod versions;

/// The largest request body accepted; larger ones get a 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler can reach: cheap handles, cloned per request.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub clock: Clock,
    pub logins: Arc<auth::LoginCache>,
    pub metrics: Arc<Metrics>,
    pub rate_limit: Arc<rate_limit::RateLimiter>,
    pub failed_logins: Arc<rate_limit::FailedLogins>,
    pub catalogue: Arc<catalogue::Catalogue>,
    /// The accounts admin requests named lately (see `scope`).
    pub admin_accounts: Arc<scope::AdminAccounts>,
    /// Which endpoint URLs may be saved: public addresses only, unless configured otherwise.
    pub guard: Guard,
    /// SHA-256 of the admin token.
    pub admin_digest: Arc<[u8; 32]>,
}

impl AppState {
    /// A fresh id and the current time for an event about to be written.
    pub fn stamp(&self) -> EventStamp {
        let at = self.clock.now();
        EventStamp {
            id: ids::event_id(),
            at,
            datetime: self.clock.datetime(at),
        }
    }

    /// Checks an endpoint's URL against the SSRF guard (its syntax was checked before).
    pub async fn check_target(&self, url: &str) -> Result<(), ApiError> {
        let Ok(url) = url::Url::parse(url) else { return Ok(()) };
        self.guard.check_url(&url).await.map_err(|refused| {
            ApiError::Invalid(Invalid {
                code: "forbidden_target",
                message: format!("url: {refused}"),
            })
        })
    }

    /// The names of the event types, to check a subscription to `wanted` against.
    pub async fn event_type_names(&self, wanted: &[String]) -> Result<Vec<String>, ApiError> {
        let wanted: Vec<&str> = wanted.iter().map(String::as_str).filter(|w| *w != ALL_EVENTS).collect();
        let types = self.catalogue.types(self.store.as_ref(), &wanted).await?;
        Ok(types.iter().map(|t| t.name.clone()).collect())
    }
}

/// The whole API as one router.
pub fn app(state: AppState) -> Router {
    if !state.config.role.serves_api() {
        return dispatcher_only(state);
    }
    let api = Router::new()
        .merge(root::router())
        .merge(jobs::router())
        .merge(candidates::router())
        .merge(applications::router())
        .merge(steps::router())
        .merge(endpoints::router("/restapi/v1"))
        .merge(endpoints::router("/admin/v1/account/{login}"))
        .merge(stats::router("/restapi/v1"))
        .merge(stats::router("/admin/v1/account/{login}"))
        .merge(tasks::router("/restapi/v1"))
        .merge(tasks::router("/admin/v1/account/{login}"))
        .merge(events::router())
        .merge(accounts::router())
        .merge(versions::router())
        .merge(portal::router())
        .merge(schemas::router())
        .merge(openapi::router())
        .merge(ops::router())
        .route_layer(middleware::from_fn(idempotency::fingerprint))
        .route_layer(middleware::from_fn_with_state(state.clone(), track))
        .fallback(|| async { ApiError::NotFound("no such path; GET /restapi/v1 lists the collections".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state.clone());
    if !state.config.ui.enabled {
        return api;
    }
    let ui = crate::ui::router(state.clone(), api.clone()).route_layer(middleware::from_fn_with_state(state, track));
    api.merge(ui)
}

/// A node with `role = "dispatcher"`: the probes and metrics only.
fn dispatcher_only(state: AppState) -> Router {
    ops::router()
        .route_layer(middleware::from_fn_with_state(state.clone(), track))
        .fallback(|| async {
            ApiError::NotFound(
                "this node only delivers (role = \"dispatcher\"); send API requests to an api node".into(),
            )
        })
        .with_state(state)
}

/// Counts each request by its route pattern (not its path, which would make a series per id).
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(String::new, |p| p.as_str().to_owned());
    let response = next.run(request).await;
    state
        .metrics
        .http_request(method.as_str(), &route, response.status().as_u16(), started.elapsed());
    if let Some(error::ErrorCode(code)) = response.extensions().get::<error::ErrorCode>() {
        state.metrics.http_error(code);
    }
    response
}
