//! `…/webhook/endpoint`: the URLs an account's events are sent to. The same handlers serve
//! the account itself (`/restapi/v1/webhook/endpoint`) and support
//! (`/admin/v1/account/{login}/webhook/endpoint`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::envelope::{Link, Resource, created_answer, no_content, ok, ok_answer};
use super::error::{ApiError, ApiResult};
use super::extract::{Json, Paging, Path, present};
use super::idempotency::IdempotencyKey;
use super::scope::Scope;
use crate::clock::Clock;
use crate::config::{format_duration, parse_duration};
use crate::domain::Invalid;
use crate::domain::endpoint::{Auth, CallControls, Endpoint, EndpointSpec, EndpointState, Ordering, check_secret};
use crate::domain::event::{Event, webhook_test};
use crate::domain::version::WebhookVersion;
use crate::ids;
use crate::store::{Answer, StoreError};

/// A new endpoint.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointIn {
    url: String,
    events: Vec<String>,
    description: Option<String>,
    ordering: Option<Ordering>,
    auth: Option<Auth>,
    /// `whsec_…`; generated when absent.
    secret: Option<String>,
    /// Extra headers sent on every call.
    headers: Option<BTreeMap<String, String>>,
    /// The endpoint's own delays between retries, such as `["10s", "1m", "1h"]`.
    retry_schedule: Option<Vec<String>>,
    /// The endpoint's own time-out, such as `"10s"`.
    timeout: Option<String>,
    /// Only events whose call body passes it are delivered.
    filter: Option<Value>,
    /// At most this many calls per second.
    rate_limit: Option<u32>,
    /// The webhook format, `"1"` (the default) or `"2"`.
    version: Option<String>,
}

/// Changes to an endpoint; absent fields stay as they are, `"auth": null` removes the
/// credentials.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    url: Option<String>,
    events: Option<Vec<String>>,
    description: Option<String>,
    ordering: Option<Ordering>,
    #[serde(default, deserialize_with = "present")]
    auth: Option<Option<Auth>>,
    headers: Option<BTreeMap<String, String>>,
    /// `null` goes back to the server's schedule.
    #[serde(default, deserialize_with = "present")]
    retry_schedule: Option<Option<Vec<String>>>,
    /// `null` goes back to the server's time-out.
    #[serde(default, deserialize_with = "present")]
    timeout: Option<Option<String>>,
    /// `null` delivers every event it subscribes to again.
    #[serde(default, deserialize_with = "present")]
    filter: Option<Option<Value>>,
    /// `null` lifts the limit.
    #[serde(default, deserialize_with = "present")]
    rate_limit: Option<Option<u32>>,
    version: Option<String>,
}

/// A webhook format version from the API's word.
fn version(word: &str) -> Result<WebhookVersion, Invalid> {
    WebhookVersion::parse(word).ok_or_else(|| Invalid::field("version", "must be \"1\" or \"2\""))
}

/// An endpoint's call controls from the API's words: durations as `"10s"`.
fn controls(
    headers: BTreeMap<String, String>,
    retry_schedule: Option<Vec<String>>,
    timeout: Option<String>,
    rate_limit: Option<u32>,
) -> Result<CallControls, Invalid> {
    let duration = |at: String, text: &str| parse_duration(text).map_err(|problem| Invalid::field(&at, &problem));
    let retry_schedule = retry_schedule
        .map(|delays| {
            delays
                .iter()
                .enumerate()
                .map(|(i, d)| duration(format!("retry_schedule[{i}]"), d))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let timeout = timeout.map(|t| duration("timeout".into(), &t)).transpose()?;
    CallControls::new(headers, retry_schedule, timeout, rate_limit)
}

/// An endpoint as the API shows it: credentials masked, the secret only when just made.
#[derive(Serialize, schemars::JsonSchema)]
pub struct EndpointOut {
    #[serde(rename = "_self")]
    self_: String,
    id: String,
    url: String,
    description: String,
    events: Vec<String>,
    ordering: Ordering,
    auth: Option<Auth>,
    /// Shown only in the answer to the creation or a rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    state: EndpointState,
    suspended_until: Option<String>,
    consecutive_failures: u32,
    created: String,
    updated: String,
    /// Extra headers sent on every call.
    headers: BTreeMap<String, String>,
    /// The endpoint's own delays between retries; `null`: the server's.
    retry_schedule: Option<Vec<String>>,
    /// The endpoint's own time-out; `null`: the server's.
    timeout: Option<String>,
    /// Only events whose call body passes it are delivered; `null`: every one it subscribes to.
    filter: Option<Value>,
    /// At most this many calls start per second, spaced evenly; `null`: no limit.
    rate_limit: Option<u32>,
    /// The format of the calls it receives: `"1"`, the seed's, or `"2"`, Standard Webhooks'.
    version: WebhookVersion,
}

impl EndpointOut {
    fn new(endpoint: Endpoint, base: &str, clock: &Clock) -> EndpointOut {
        EndpointOut {
            self_: format!("{base}/webhook/endpoint/{}", endpoint.id),
            id: endpoint.id,
            url: endpoint.url,
            description: endpoint.description,
            events: endpoint.events,
            ordering: endpoint.ordering,
            auth: endpoint.auth.as_ref().map(Auth::masked),
            secret: None,
            state: endpoint.state,
            suspended_until: endpoint.suspended_until.map(|t| clock.datetime(t)),
            consecutive_failures: endpoint.consecutive_failures,
            created: clock.datetime(endpoint.created_at),
            updated: clock.datetime(endpoint.updated_at),
            retry_schedule: endpoint
                .controls
                .retry_schedule
                .map(|schedule| schedule.into_iter().map(format_duration).collect()),
            timeout: endpoint.controls.timeout.map(format_duration),
            rate_limit: endpoint.controls.rate_limit,
            version: endpoint.version,
            headers: endpoint.controls.headers,
            filter: endpoint.filter,
        }
    }
}

impl Resource for EndpointOut {
    const SCHEMA: &'static str = "webhookendpoint";
    const COLLECTION: &'static str = "webhookendpoints";
    fn self_path(&self) -> &str {
        &self.self_
    }
}

/// The `{id}` of an endpoint's path, under either prefix (the admin's also holds `{login}`).
pub(super) struct EndpointId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for EndpointId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(parts, state).await?;
        params
            .remove("id")
            .map(EndpointId)
            .ok_or_else(|| ApiError::NotFound("endpoint not found".into()))
    }
}

/// The endpoint routes under `prefix`: the REST API's and the admin API's per account.
pub fn router(prefix: &str) -> Router<AppState> {
    Router::new()
        .route(&format!("{prefix}/webhook/endpoint"), get(list).post(create))
        .route(
            &format!("{prefix}/webhook/endpoint/{{id}}"),
            get(show).patch(update).delete(delete),
        )
        .route(&format!("{prefix}/webhook/endpoint/{{id}}/resume"), post(resume))
        .route(
            &format!("{prefix}/webhook/endpoint/{{id}}/secret/rotate"),
            post(rotate_secret),
        )
        .route(&format!("{prefix}/webhook/endpoint/{{id}}/test"), post(send_test))
        .route(&format!("{prefix}/webhook/endpoint/{{id}}/replay"), post(replay))
}

async fn list(State(state): State<AppState>, scope: Scope, paging: Paging) -> ApiResult {
    let since = match paging.param("since") {
        Some(id) => match state.store.endpoint(scope.account.id, id).await {
            Ok(endpoint) => Some(endpoint.seq),
            Err(StoreError::NotFound(_)) => {
                return Err(ApiError::BadQuery(format!(
                    "since: no endpoint {id:?}; give an endpoint id"
                )));
            }
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let rows = state
        .store
        .endpoints(scope.account.id, paging.page_since(since))
        .await?;
    Ok(paging.respond(rows, |e| e.seq, |e| EndpointOut::new(e, &scope.base, &state.clock)))
}

async fn create(
    State(state): State<AppState>,
    scope: Scope,
    key: IdempotencyKey,
    Json(input): Json<EndpointIn>,
) -> ApiResult {
    let spec = EndpointSpec {
        url: input.url,
        description: input.description.unwrap_or_default(),
        events: input.events,
        ordering: input.ordering.unwrap_or(Ordering::Parallel),
        auth: input.auth,
        controls: controls(
            input.headers.unwrap_or_default(),
            input.retry_schedule,
            input.timeout,
            input.rate_limit,
        )?,
        filter: input.filter,
        version: input.version.as_deref().map(version).transpose()?.unwrap_or_default(),
    };
    spec.check(&state.event_type_names(&spec.events).await?)?;
    state.check_target(&spec.url).await?;
    let secret = match input.secret {
        Some(secret) => {
            check_secret(&secret)?;
            secret
        }
        None => ids::webhook_secret(),
    };
    let id = ids::endpoint_id();
    let now = state.clock.now();
    let answer = endpoint_answer(&scope, &state.clock, Some(secret.clone()), created_answer);
    key.write(now, answer, |once| {
        state
            .store
            .create_endpoint(scope.account.id, &spec, &id, &secret, now, once)
    })
    .await
}

/// How to answer a write with the endpoint written, `secret` shown (a new one) or not.
fn endpoint_answer(
    scope: &Scope,
    clock: &Clock,
    secret: Option<String>,
    answer: fn(EndpointOut) -> Answer,
) -> impl FnOnce(&Endpoint) -> Answer + Send + 'static {
    let (base, clock) = (scope.base.clone(), clock.clone());
    move |endpoint| {
        let mut out = EndpointOut::new(endpoint.clone(), &base, &clock);
        out.secret = secret;
        answer(out)
    }
}

async fn show(State(state): State<AppState>, scope: Scope, EndpointId(id): EndpointId) -> ApiResult {
    let endpoint = state.store.endpoint(scope.account.id, &id).await?;
    Ok(ok(EndpointOut::new(endpoint, &scope.base, &state.clock)))
}

async fn update(
    State(state): State<AppState>,
    scope: Scope,
    EndpointId(id): EndpointId,
    Json(patch): Json<EndpointPatch>,
) -> ApiResult {
    let current = state.store.endpoint(scope.account.id, &id).await?;
    let now = &current.controls;
    let shown = |d: &Duration| format_duration(*d);
    let spec = EndpointSpec {
        url: patch.url.unwrap_or(current.url),
        description: patch.description.unwrap_or(current.description),
        events: patch.events.unwrap_or(current.events),
        ordering: patch.ordering.unwrap_or(current.ordering),
        auth: patch.auth.unwrap_or(current.auth),
        controls: controls(
            patch.headers.unwrap_or_else(|| now.headers.clone()),
            patch
                .retry_schedule
                .unwrap_or_else(|| now.retry_schedule.as_ref().map(|s| s.iter().map(shown).collect())),
            patch.timeout.unwrap_or_else(|| now.timeout.as_ref().map(shown)),
            patch.rate_limit.unwrap_or(now.rate_limit),
        )?,
        filter: patch.filter.unwrap_or(current.filter),
        version: patch
            .version
            .as_deref()
            .map(version)
            .transpose()?
            .unwrap_or(current.version),
    };
    spec.check(&state.event_type_names(&spec.events).await?)?;
    state.check_target(&spec.url).await?;
    let endpoint = state
        .store
        .update_endpoint(scope.account.id, &id, &spec, state.clock.now())
        .await?;
    Ok(ok(EndpointOut::new(endpoint, &scope.base, &state.clock)))
}

async fn delete(State(state): State<AppState>, scope: Scope, EndpointId(id): EndpointId) -> ApiResult {
    state.store.delete_endpoint(scope.account.id, &id).await?;
    Ok(no_content())
}

/// Makes a suspended or disabled endpoint active, with its `EndpointResumed`; its waiting
/// deliveries go out at once.
async fn resume(
    State(state): State<AppState>,
    scope: Scope,
    EndpointId(id): EndpointId,
    key: IdempotencyKey,
) -> ApiResult {
    let stamp = state.stamp();
    let answer = endpoint_answer(&scope, &state.clock, None, ok_answer);
    key.write(stamp.at, answer, |once| {
        state.store.resume_endpoint(scope.account.id, &id, stamp, once)
    })
    .await
}

/// Gives the endpoint a new secret, shown in this answer only; the old one keeps signing
/// calls (a second signature) for `delivery.secret_rotation_grace`.
async fn rotate_secret(
    State(state): State<AppState>,
    scope: Scope,
    EndpointId(id): EndpointId,
    key: IdempotencyKey,
) -> ApiResult {
    let secret = ids::webhook_secret();
    let now = state.clock.now();
    let grace = state.config.delivery.secret_rotation_grace.as_micros() as i64;
    let answer = endpoint_answer(&scope, &state.clock, Some(secret.clone()), ok_answer);
    key.write(now, answer, |once| {
        let store = &state.store;
        store.rotate_secret(scope.account.id, &id, &secret, now + grace, now, once)
    })
    .await
}

/// What a test call or a replay set in motion (the calls happen after the answer).
#[derive(Serialize, schemars::JsonSchema)]
pub struct DispatchOut {
    #[serde(rename = "_self")]
    self_: String,
    endpoint: Link,
    /// The test event's id, for a test call.
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<String>,
    /// How many events will be delivered again, for a replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    deliveries: Option<u64>,
    /// The calls, as they are made.
    tasks: Link,
}

impl Resource for DispatchOut {
    const SCHEMA: &'static str = "webhookdispatch";
    const COLLECTION: &'static str = "webhookdispatches";
    fn self_path(&self) -> &str {
        &self.self_
    }
}

/// The answer to a test call or a replay of the endpoint `id` of the account at `base`.
fn dispatch_out(base: &str, id: &str, action: &str, event_id: Option<String>, deliveries: Option<u64>) -> Answer {
    let endpoint = format!("{base}/webhook/endpoint/{id}");
    let out = DispatchOut {
        self_: format!("{endpoint}/{action}"),
        endpoint: Link::to(endpoint),
        event_id,
        deliveries,
        tasks: Link::to(format!("{base}/webhook/task?endpoint={id}")),
    };
    ok_answer(out)
}

/// Sends the endpoint a `WebhookTest` event, whatever it subscribes to.
async fn send_test(
    State(state): State<AppState>,
    scope: Scope,
    EndpointId(id): EndpointId,
    key: IdempotencyKey,
) -> ApiResult {
    let stamp = state.stamp();
    let (base, endpoint) = (scope.base.clone(), id.clone());
    let answer = move |event: &Event| dispatch_out(&base, &endpoint, "test", Some(event.id.clone()), None);
    key.write(stamp.at, answer, |once| {
        state
            .store
            .send_test(scope.account.id, &id, webhook_test(), stamp, once)
    })
    .await
}

/// `{"since": "YYYY-MM-DD HH:MM:SS"}` (or RFC 3339).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    since: String,
}

/// Delivers again every event since a date-time that the endpoint subscribes to.
async fn replay(
    State(state): State<AppState>,
    scope: Scope,
    EndpointId(id): EndpointId,
    key: IdempotencyKey,
    Json(input): Json<ReplayIn>,
) -> ApiResult {
    let since = state.clock.parse_datetime(&input.since).ok_or_else(|| {
        Invalid::field(
            "since",
            "must be a date-time such as \"2021-04-01 12:13:14\" or RFC 3339",
        )
    })?;
    let now = state.clock.now();
    let (base, endpoint) = (scope.base.clone(), id.clone());
    let answer = move |count: &u64| dispatch_out(&base, &endpoint, "replay", None, Some(*count));
    key.write(now, answer, |once| {
        state.store.replay(scope.account.id, &id, since, now, once)
    })
    .await
}
