//! `/restapi/v1/application`: a candidate's application to a job, and where it stands.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Tenant;
use super::envelope::{Resource, created_answer, no_content, ok};
use super::error::ApiResult;
use super::extract::{Json, Paging, Path, path_id};
use super::idempotency::IdempotencyKey;
use crate::clock::rfc3339;
use crate::domain::event::{Event, application_path};
use crate::domain::recruiting::{Application, StepVisit};
use crate::store::ApplicationsOf;

/// A new application: who applies to what.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationIn {
    candidate_id: i64,
    job_id: i64,
}

/// An application as the API shows it.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ApplicationOut {
    #[serde(rename = "_self")]
    self_: String,
    id: i64,
    /// When it was made, RFC 3339 in UTC.
    date: String,
    candidate: CandidateRef,
    job: JobRef,
    /// The current step and when it was reached.
    step: StepDated,
    /// Every step it went through, oldest first; only on the application itself, not in lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    steps: Option<StepsDated>,
}

/// The candidate, with enough to show without another call.
#[derive(Serialize, schemars::JsonSchema)]
pub struct CandidateRef {
    #[serde(rename = "_self")]
    self_: String,
    id: i64,
    first_name: String,
    last_name: String,
    email: Option<String>,
}

/// The job, with enough to show without another call.
#[derive(Serialize, schemars::JsonSchema)]
pub struct JobRef {
    #[serde(rename = "_self")]
    self_: String,
    id: i64,
    title: String,
    reference: Option<String>,
    status: String,
}

/// A step and when the application reached it.
#[derive(Serialize, schemars::JsonSchema)]
pub struct StepDated {
    id: i64,
    name: String,
    status: String,
    date: String,
}

/// The history of steps.
#[derive(Serialize, schemars::JsonSchema)]
pub struct StepsDated {
    items: Vec<StepDated>,
}

fn dated(visit: &StepVisit) -> StepDated {
    StepDated {
        id: visit.step.id,
        name: visit.step.name.clone(),
        status: visit.step.status.as_str().into(),
        date: rfc3339(visit.date),
    }
}

impl ApplicationOut {
    /// The application with its history of steps.
    pub fn full(application: Application) -> ApplicationOut {
        let steps = StepsDated {
            items: application.history.iter().map(dated).collect(),
        };
        ApplicationOut {
            steps: Some(steps),
            ..ApplicationOut::summary(application)
        }
    }

    /// The application with its current step only, as lists show it.
    pub fn summary(application: Application) -> ApplicationOut {
        let step = dated(application.current());
        let (c, j) = (application.candidate, application.job);
        ApplicationOut {
            self_: application_path(application.id),
            id: application.id,
            date: rfc3339(application.created_at),
            candidate: CandidateRef {
                self_: format!("/restapi/v1/candidate/{}", c.id),
                id: c.id,
                first_name: c.first_name,
                last_name: c.last_name,
                email: c.email,
            },
            job: JobRef {
                self_: format!("/restapi/v1/job/{}", j.id),
                id: j.id,
                title: j.title,
                reference: j.reference,
                status: j.status,
            },
            step,
            steps: None,
        }
    }
}

impl Resource for ApplicationOut {
    const SCHEMA: &'static str = "application";
    const COLLECTION: &'static str = "applications";
    fn self_path(&self) -> &str {
        &self.self_
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/restapi/v1/application", get(list).post(create))
        .route("/restapi/v1/application/{id}", get(show).delete(delete))
}

async fn list(State(state): State<AppState>, Tenant(account): Tenant, paging: Paging) -> ApiResult {
    let rows = state
        .store
        .applications(account.id, ApplicationsOf::All, paging.page()?)
        .await?;
    Ok(paging.respond(rows, |a| a.id, ApplicationOut::summary))
}

async fn create(
    State(state): State<AppState>,
    Tenant(account): Tenant,
    key: IdempotencyKey,
    Json(input): Json<ApplicationIn>,
) -> ApiResult {
    let stamp = state.stamp();
    let answer =
        |(application, _event): &(Application, Event)| created_answer(ApplicationOut::full(application.clone()));
    key.write(stamp.at, answer, |once| {
        let store = &state.store;
        store.create_application(account.id, input.candidate_id, input.job_id, stamp, once)
    })
    .await
}

async fn show(State(state): State<AppState>, Tenant(account): Tenant, Path(id): Path<String>) -> ApiResult {
    let application = state
        .store
        .application(account.id, path_id(&id, "application")?)
        .await?;
    Ok(ok(ApplicationOut::full(application)))
}

/// Deletes the application and emits `ApplicationDelete`; answers 204.
async fn delete(State(state): State<AppState>, Tenant(account): Tenant, Path(id): Path<String>) -> ApiResult {
    state
        .store
        .delete_application(account.id, path_id(&id, "application")?, state.stamp())
        .await?;
    Ok(no_content())
}
