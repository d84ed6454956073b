//! `/admin/v1/webhook-version`: the webhook format versions, and support deprecating one
//! (`POST …/{v}/deprecate` `{"sunset": "YYYY-MM-DD"}`) or undoing that (`DELETE` on the same
//! path). A deprecation tells the accounts concerned with `WebhookVersionDeprecated`, in its
//! own transaction, and from then on their calls carry `Deprecation` and `Sunset`.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Admin;
use super::envelope::{Resource, many, ok, ok_answer};
use super::error::{ApiError, ApiResult};
use super::extract::{Json, Path};
use super::idempotency::IdempotencyKey;
use crate::clock::{Clock, utc_day};
use crate::domain::version::{Deprecation, WebhookVersion, parse_sunset};

/// A deprecation asked for.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeprecationIn {
    /// The day the version is announced to end, `YYYY-MM-DD`.
    sunset: String,
}

/// A webhook format version and whether it is deprecated.
#[derive(Serialize, schemars::JsonSchema)]
pub struct WebhookVersionOut {
    #[serde(rename = "_self")]
    self_: String,
    version: WebhookVersion,
    /// When support deprecated it; `null` while it is not.
    deprecated: Option<String>,
    /// The day it is announced to end, `YYYY-MM-DD`; `null` while it is not deprecated.
    sunset: Option<String>,
}

impl WebhookVersionOut {
    fn new(version: WebhookVersion, deprecation: Option<&Deprecation>, clock: &Clock) -> WebhookVersionOut {
        WebhookVersionOut {
            self_: format!("/admin/v1/webhook-version/{}", version.as_str()),
            version,
            deprecated: deprecation.map(|d| clock.datetime(d.at)),
            sunset: deprecation.map(Deprecation::sunset_day),
        }
    }
}

impl Resource for WebhookVersionOut {
    const SCHEMA: &'static str = "webhookversion";
    const COLLECTION: &'static str = "webhookversions";
    fn self_path(&self) -> &str {
        &self.self_
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/webhook-version", get(list))
        .route("/admin/v1/webhook-version/{version}", get(show))
        .route(
            "/admin/v1/webhook-version/{version}/deprecate",
            post(deprecate).delete(undeprecate),
        )
}

/// The version a path names; another is not found.
fn named(word: &str) -> Result<WebhookVersion, ApiError> {
    WebhookVersion::parse(word)
        .ok_or_else(|| ApiError::NotFound(format!("no webhook version {word:?}; the versions are \"1\" and \"2\"")))
}

async fn list(State(state): State<AppState>, _: Admin) -> ApiResult {
    let deprecations = state.store.deprecations().await?;
    let items = WebhookVersion::ALL
        .into_iter()
        .map(|v| {
            let deprecation = deprecations.iter().find(|(d, _)| *d == v).map(|(_, d)| d);
            WebhookVersionOut::new(v, deprecation, &state.clock)
        })
        .collect();
    Ok(many("/admin/v1/webhook-version".into(), String::new(), items))
}

async fn show(State(state): State<AppState>, _: Admin, Path(word): Path<String>) -> ApiResult {
    let version = named(&word)?;
    let deprecations = state.store.deprecations().await?;
    let deprecation = deprecations.iter().find(|(d, _)| *d == version).map(|(_, d)| d);
    Ok(ok(WebhookVersionOut::new(version, deprecation, &state.clock)))
}

async fn deprecate(
    State(state): State<AppState>,
    _: Admin,
    Path(word): Path<String>,
    key: IdempotencyKey,
    Json(input): Json<DeprecationIn>,
) -> ApiResult {
    let version = named(&word)?;
    let stamp = state.stamp();
    let sunset = parse_sunset(&input.sunset, utc_day(stamp.at))?;
    let clock = state.clock.clone();
    let answer = move |deprecation: &Deprecation| ok_answer(WebhookVersionOut::new(version, Some(deprecation), &clock));
    key.write(stamp.at, answer, |once| {
        state.store.deprecate_version(version, sunset, stamp.clone(), once)
    })
    .await
}

async fn undeprecate(State(state): State<AppState>, _: Admin, Path(word): Path<String>) -> ApiResult {
    let version = named(&word)?;
    state.store.undeprecate_version(version).await?;
    Ok(ok(WebhookVersionOut::new(version, None, &state.clock)))
}
