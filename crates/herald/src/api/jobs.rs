//! `/restapi/v1/job`: job openings, and the applications to each.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::applications::ApplicationView;
use super::auth::Tenant;
use super::envelope::{IdLink, Link, Resource, created_answer, ok};
use super::error::ApiResult;
use super::extract::{Json, Paging, Path, path_id};
use super::idempotency::IdempotencyKey;
use crate::domain::recruiting::{Job, NewJob};
use crate::store::ApplicationsOf;

/// A new job.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobIn {
    title: String,
    reference: Option<String>,
    /// `"open"` (the default) or `"closed"`.
    status: Option<String>,
}

/// A job as the API shows it.
#[derive(Serialize, schemars::JsonSchema)]
pub struct JobOut {
    #[serde(rename = "_self")]
    self_: String,
    id: i64,
    title: String,
    reference: Option<String>,
    status: String,
    process: IdLink,
    applications: Link,
}

impl From<Job> for JobOut {
    fn from(job: Job) -> JobOut {
        let self_ = format!("/restapi/v1/job/{}", job.id);
        JobOut {
            applications: Link::to(format!("{self_}/application")),
            self_,
            id: job.id,
            title: job.title,
            reference: job.reference,
            status: job.status,
            process: IdLink {
                self_: format!("/restapi/v1/process/{}", job.process_id),
                id: job.process_id,
            },
        }
    }
}

impl Resource for JobOut {
    const SCHEMA: &'static str = "job";
    const COLLECTION: &'static str = "jobs";
    fn self_path(&self) -> &str {
        &self.self_
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/restapi/v1/job", get(list).post(create))
        .route("/restapi/v1/job/{id}", get(show))
        .route("/restapi/v1/job/{id}/application", get(applications))
}

async fn list(State(state): State<AppState>, Tenant(account): Tenant, paging: Paging) -> ApiResult {
    let rows = state.store.jobs(account.id, paging.page()?).await?;
    Ok(paging.respond(rows, |j| j.id, JobOut::from))
}

async fn create(
    State(state): State<AppState>,
    Tenant(account): Tenant,
    key: IdempotencyKey,
    Json(input): Json<JobIn>,
) -> ApiResult {
    let job = NewJob::new(input.title, input.reference, input.status)?;
    let now = state.clock.now();
    let answer = |job: &Job| created_answer(JobOut::from(job.clone()));
    key.write(now, answer, |once| state.store.create_job(&account, &job, now, once))
        .await
}

async fn show(State(state): State<AppState>, Tenant(account): Tenant, Path(id): Path<String>) -> ApiResult {
    let job = state.store.job(account.id, path_id(&id, "job")?).await?;
    Ok(ok(JobOut::from(job)))
}

async fn applications(
    State(state): State<AppState>,
    Tenant(account): Tenant,
    Path(id): Path<String>,
    paging: Paging,
) -> ApiResult {
    let job = state.store.job(account.id, path_id(&id, "job")?).await?;
    let rows = state
        .store
        .applications(account.id, ApplicationsOf::Job(job.id), paging.page()?)
        .await?;
    Ok(paging.respond(rows, |a| a.id, ApplicationView::summary))
}
