//! Event types and events: the catalogue (`GET /restapi/v1/webhook/event`), registering a
//! type (`POST /admin/v1/event-type`) and publishing an event of one
//! (`POST /admin/v1/account/{login}/event`), as a host product does.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::auth::{Admin, Tenant};
use super::envelope::{Link, Resource, created_answer, ok};
use super::error::{ApiError, ApiResult};
use super::extract::{Json, Paging, Path};
use super::idempotency::IdempotencyKey;
use super::scope::Scope;
use crate::domain::Invalid;
use crate::domain::event::{Event, EventDraft, EventType, check_schema, check_type_name};
use crate::domain::version::WebhookVersion;

/// The largest `data` a published event may carry.
pub const MAX_DATA_BYTES: usize = 256 * 1024;

/// A new event type.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTypeIn {
    name: String,
    description: String,
    /// The JSON Schema of the events' `data`.
    schema: Option<Value>,
}

/// An event type in the catalogue.
#[derive(Serialize, schemars::JsonSchema)]
pub struct EventTypeOut {
    #[serde(rename = "_self")]
    self_: String,
    name: String,
    description: String,
    /// The JSON Schema of the events' `data`.
    schema: Value,
    /// The JSON Schema of a whole call body, by webhook format version (`"1"`, `"2"`).
    schemas: BTreeMap<&'static str, Value>,
    /// Emitted by Herald itself rather than published by a host product.
    builtin: bool,
}

impl From<EventType> for EventTypeOut {
    fn from(t: EventType) -> EventTypeOut {
        EventTypeOut {
            self_: format!("/restapi/v1/webhook/event/{}", t.name),
            schemas: WebhookVersion::ALL.iter().map(|v| (v.as_str(), v.schema(&t))).collect(),
            name: t.name,
            description: t.description,
            schema: t.schema,
            builtin: t.builtin,
        }
    }
}

impl Resource for EventTypeOut {
    const SCHEMA: &'static str = "webhookevent";
    const COLLECTION: &'static str = "webhookevents";
    fn self_path(&self) -> &str {
        &self.self_
    }
}

/// An event published by a host product.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    event: String,
    /// The application it is about, if any.
    application: Option<i64>,
    data: Option<Value>,
}

/// An event, with the body every call carries.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventOut {
    #[serde(rename = "_self", default)]
    self_: String,
    id: String,
    event: String,
    datetime: String,
    application: Option<Link>,
    data: Value,
}

impl EventOut {
    fn new(event: &Event, base: &str) -> Result<EventOut, ApiError> {
        let mut out: EventOut = serde_json::from_str(&event.body).map_err(|e| ApiError::Internal(e.into()))?;
        out.self_ = format!("{base}/event/{}", event.id);
        Ok(out)
    }
}

impl Resource for EventOut {
    const SCHEMA: &'static str = "event";
    const COLLECTION: &'static str = "events";
    fn self_path(&self) -> &str {
        &self.self_
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/restapi/v1/webhook/event", get(catalogue))
        .route("/restapi/v1/webhook/event/{name}", get(show_type))
        .route("/admin/v1/event-type", get(admin_catalogue).post(register))
        .route("/admin/v1/account/{login}/event", post(publish))
        .route("/admin/v1/account/{login}/event/{id}", get(show_event))
}

async fn catalogue(State(state): State<AppState>, _: Tenant, paging: Paging) -> ApiResult {
    list_types(&state, paging).await
}

async fn admin_catalogue(State(state): State<AppState>, _: Admin, paging: Paging) -> ApiResult {
    list_types(&state, paging).await
}

/// The catalogue in its stored order (built-in types first, then by registration). It holds
/// tens of types, so it is paged in memory; types are only ever appended, so a type's place,
/// which keys the cursor, never changes. Keys count down so that "after the cursor" means
/// "a smaller key", as in every other collection.
async fn list_types(state: &AppState, paging: Paging) -> ApiResult {
    let page = paging.page()?;
    let types: Vec<(i64, EventType)> = state
        .store
        .event_types()
        .await?
        .into_iter()
        .enumerate()
        .map(|(i, t)| (-(i as i64) - 1, t))
        .filter(|(key, _)| page.before.is_none_or(|before| *key < before))
        .take(page.limit as usize + 1)
        .collect();
    Ok(paging.respond(types, |(key, _)| *key, |(_, t)| EventTypeOut::from(t)))
}

async fn show_type(State(state): State<AppState>, _: Tenant, Path(name): Path<String>) -> ApiResult {
    let types = state.store.event_types().await?;
    let found = types.into_iter().find(|t| t.name == name);
    let found = found.ok_or_else(|| ApiError::NotFound(format!("event type {name:?} not found")))?;
    Ok(ok(EventTypeOut::from(found)))
}

async fn register(
    State(state): State<AppState>,
    _: Admin,
    key: IdempotencyKey,
    Json(input): Json<EventTypeIn>,
) -> ApiResult {
    check_type_name(&input.name)?;
    crate::domain::text("description", &input.description, 1000)?;
    let schema = input.schema.unwrap_or_else(|| serde_json::json!({"type": "object"}));
    check_schema(&schema)?;
    let event_type = EventType {
        name: input.name,
        description: input.description,
        schema,
        builtin: false,
    };
    let now = state.clock.now();
    let out = event_type.clone();
    let answer = move |(): &()| created_answer(EventTypeOut::from(out.clone()));
    let written = key
        .write(now, answer, |once| {
            state.store.create_event_type(&event_type, now, once)
        })
        .await;
    state.catalogue.forget();
    written
}

async fn publish(
    State(state): State<AppState>,
    scope: Scope,
    key: IdempotencyKey,
    Json(input): Json<EventIn>,
) -> ApiResult {
    let types = state.catalogue.types(state.store.as_ref(), &[&input.event]).await?;
    let Some(event_type) = types.iter().find(|t| t.name == input.event) else {
        let message = format!("event: unknown event type {:?}; register it first", input.event);
        return Err(Invalid {
            code: "unknown_event_type",
            message,
        }
        .into());
    };
    if event_type.builtin {
        let message = format!(
            "event: {} is emitted by Herald itself and cannot be published",
            input.event
        );
        return Err(Invalid {
            code: "builtin_event_type",
            message,
        }
        .into());
    }
    let data = input.data.unwrap_or_else(|| serde_json::json!({}));
    if !data.is_object() {
        return Err(Invalid::field("data", "must be a JSON object").into());
    }
    if serde_json::to_string(&data).map_or(0, |s| s.len()) > MAX_DATA_BYTES {
        return Err(ApiError::TooLarge(format!(
            "data is over {} KiB",
            MAX_DATA_BYTES / 1024
        )));
    }
    let draft = EventDraft {
        event_type: input.event,
        application_id: input.application,
        data,
    };
    let stamp = state.stamp();
    let base = scope.base.clone();
    let answer = move |event: &Event| {
        let out = EventOut::new(event, &base).expect("an event's body is the JSON Herald wrote of it");
        created_answer(out)
    };
    key.write(stamp.at, answer, |once| {
        state.store.publish_event(scope.account.id, draft, stamp, once)
    })
    .await
}

async fn show_event(State(state): State<AppState>, scope: Scope, Path((_, id)): Path<(String, String)>) -> ApiResult {
    let event = state.store.event(scope.account.id, &id).await?;
    Ok(ok(EventOut::new(&event, &scope.base)?))
}
