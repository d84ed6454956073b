//! `…/webhook/task`: the call history, in exactly the seed's shape plus the spec's fields,
//! and `POST …/task/{id}/retry`. Served to the account and, per account, to support.

use std::collections::HashMap;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use super::envelope::{Link, Resource, ok, ok_answer};
use super::error::{ApiError, ApiResult};
use super::extract::{Paging, Path, path_id};
use super::idempotency::IdempotencyKey;
use super::scope::Scope;
use crate::clock::Clock;
use crate::domain::delivery::{DeliveryState, Task, TaskFilter};
use crate::domain::event::application_path;

/// One call in the history.
#[derive(Serialize, schemars::JsonSchema)]
pub struct TaskOut {
    /// The event type.
    event: String,
    /// When the call was made.
    datetime: String,
    /// At most 16 KiB of the answer, or why there was none.
    response_body: String,
    /// The answer's status; 0 when no HTTP answer came.
    response_status: u16,
    application: Option<Link>,
    #[serde(rename = "_self")]
    self_: String,
    id: i64,
    event_id: String,
    endpoint: EndpointRef,
    /// This call's number for its delivery, from 1.
    attempt: u32,
    duration_ms: i64,
    /// A stable code and a sentence, for calls that failed.
    error: Option<String>,
    /// Where this call's delivery stands now: `failed` once its retries are spent; `null`
    /// once it is gone (its endpoint was deleted).
    delivery: Option<DeliveryState>,
    /// Only on a single task: what was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<RequestOut>,
}

/// The endpoint called.
#[derive(Serialize, schemars::JsonSchema)]
pub struct EndpointRef {
    #[serde(rename = "_self")]
    self_: String,
    id: String,
    url: String,
}

/// The request as sent, credentials masked.
#[derive(Serialize, schemars::JsonSchema)]
pub struct RequestOut {
    method: String,
    url: String,
    headers: HashMap<String, String>,
    body: String,
}

impl TaskOut {
    fn new(task: Task, base: &str, clock: &Clock) -> TaskOut {
        let request = task.request.map(|(headers, body)| RequestOut {
            method: "POST".into(),
            url: task.url.clone(),
            headers: serde_json::from_str::<HashMap<String, Value>>(&headers)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
                .collect(),
            body,
        });
        TaskOut {
            event: task.event_type,
            datetime: clock.datetime(task.created_at),
            response_body: task.response_body,
            response_status: task.response_status,
            application: task.application_id.map(|id| Link::to(application_path(id))),
            self_: format!("{base}/webhook/task/{}", task.id),
            id: task.id,
            event_id: task.event_id,
            endpoint: EndpointRef {
                self_: format!("{base}/webhook/endpoint/{}", task.endpoint_id),
                id: task.endpoint_id,
                url: task.url,
            },
            attempt: task.attempt,
            duration_ms: task.duration_ms,
            error: task.error,
            delivery: task.delivery_state,
            request,
        }
    }
}

impl Resource for TaskOut {
    const SCHEMA: &'static str = "webhooktask";
    const COLLECTION: &'static str = "webhooktasks";
    fn self_path(&self) -> &str {
        &self.self_
    }
}

/// The task routes under `prefix`: the REST API's and the admin API's per account.
pub fn router(prefix: &str) -> Router<AppState> {
    Router::new()
        .route(&format!("{prefix}/webhook/task"), get(list))
        .route(&format!("{prefix}/webhook/task/{{id}}"), get(show))
        .route(&format!("{prefix}/webhook/task/{{id}}/retry"), post(retry))
}

fn filter(paging: &Paging, clock: &Clock) -> Result<TaskFilter, ApiError> {
    let time = |name: &str| {
        paging
            .param(name)
            .map(|text| {
                clock.parse_datetime(text).ok_or_else(|| {
                    ApiError::BadQuery(format!("{name}: expected \"YYYY-MM-DD HH:MM:SS\" or an RFC 3339 time"))
                })
            })
            .transpose()
    };
    let response_status = paging
        .param("response_status")
        .map(|s| {
            s.parse::<u16>()
                .map_err(|_| ApiError::BadQuery("response_status: expected an HTTP status".into()))
        })
        .transpose()?;
    Ok(TaskFilter {
        event: paging.param("event").map(str::to_owned),
        response_status,
        application: paging.id_param("application")?,
        endpoint: paging.param("endpoint").map(str::to_owned),
        from: time("from")?,
        to: time("to")?,
    })
}

async fn list(State(state): State<AppState>, scope: Scope, paging: Paging) -> ApiResult {
    let filter = filter(&paging, &state.clock)?;
    let rows = state.store.tasks(scope.account.id, &filter, paging.page()?).await?;
    Ok(paging.respond(rows, |t| t.id, |t| TaskOut::new(t, &scope.base, &state.clock)))
}

async fn show(State(state): State<AppState>, scope: Scope, Path(params): Path<HashMap<String, String>>) -> ApiResult {
    let id = path_id(params.get("id").map_or("", String::as_str), "task")?;
    let task = state.store.task(scope.account.id, id).await?;
    Ok(ok(TaskOut::new(task, &scope.base, &state.clock)))
}

/// Calls the task's endpoint again with its event, now; answers 200 with the task retried.
async fn retry(
    State(state): State<AppState>,
    scope: Scope,
    Path(params): Path<HashMap<String, String>>,
    key: IdempotencyKey,
) -> ApiResult {
    let id = path_id(params.get("id").map_or("", String::as_str), "task")?;
    let now = state.clock.now();
    let (base, clock) = (scope.base.clone(), state.clock.clone());
    let answer = move |task: &Task| ok_answer(TaskOut::new(task.clone(), &base, &clock));
    key.write(now, answer, |once| {
        state.store.retry_task(scope.account.id, id, now, once)
    })
    .await
}
