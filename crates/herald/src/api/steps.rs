//! `/restapi/v1/step` (moving applications through the process, and the history of moves)
//! and `/restapi/v1/process/{id}` (the steps themselves).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Tenant;
use super::envelope::{IdLink, Resource, created_answer, ok};
use super::error::ApiResult;
use super::extract::{Json, Paging, Path, path_id};
use super::idempotency::IdempotencyKey;
use crate::clock::rfc3339;
use crate::domain::event::{Event, application_path};
use crate::domain::recruiting::{Process, StepChange};

/// A move: make `process_step_id` the application's current step.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepChangeIn {
    application_id: i64,
    process_step_id: i64,
}

/// One step change, as `GET /restapi/v1/step` lists them.
#[derive(Serialize, schemars::JsonSchema)]
pub struct StepChangeOut {
    #[serde(rename = "_self")]
    self_: String,
    change_id: i64,
    /// The step reached.
    id: i64,
    name: String,
    status: String,
    /// When, RFC 3339 in UTC.
    date: String,
    application: IdLink,
}

impl From<StepChange> for StepChangeOut {
    fn from(change: StepChange) -> StepChangeOut {
        StepChangeOut {
            self_: format!("/restapi/v1/step/{}", change.change_id),
            change_id: change.change_id,
            id: change.step.id,
            name: change.step.name,
            status: change.step.status.as_str().into(),
            date: rfc3339(change.date),
            application: IdLink {
                self_: application_path(change.application_id),
                id: change.application_id,
            },
        }
    }
}

impl Resource for StepChangeOut {
    const SCHEMA: &'static str = "step";
    const COLLECTION: &'static str = "steps";
    fn self_path(&self) -> &str {
        &self.self_
    }
}

/// A hiring process and its steps in order.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ProcessOut {
    #[serde(rename = "_self")]
    self_: String,
    id: i64,
    name: String,
    steps: ProcessSteps,
}

/// The steps of a process.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ProcessSteps {
    items: Vec<ProcessStepOut>,
}

/// One step: `START` for the first, `END` for the last ones, `CURRENT` between.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ProcessStepOut {
    id: i64,
    name: String,
    status: String,
}

impl From<Process> for ProcessOut {
    fn from(process: Process) -> ProcessOut {
        let items = process
            .steps
            .into_iter()
            .map(|s| ProcessStepOut {
                id: s.id,
                name: s.name,
                status: s.status.as_str().into(),
            })
            .collect();
        ProcessOut {
            self_: format!("/restapi/v1/process/{}", process.id),
            id: process.id,
            name: process.name,
            steps: ProcessSteps { items },
        }
    }
}

impl Resource for ProcessOut {
    const SCHEMA: &'static str = "process";
    const COLLECTION: &'static str = "processes";
    fn self_path(&self) -> &str {
        &self.self_
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/restapi/v1/step", get(list).post(move_application))
        .route("/restapi/v1/step/{id}", get(show))
        .route("/restapi/v1/process/{id}", get(process))
}

async fn list(State(state): State<AppState>, Tenant(account): Tenant, paging: Paging) -> ApiResult {
    let rows = state.store.step_changes(account.id, paging.page()?).await?;
    Ok(paging.respond(rows, |c| c.change_id, StepChangeOut::from))
}

/// Moves an application; its `ProcessStepChange` is written in the same transaction.
async fn move_application(
    State(state): State<AppState>,
    Tenant(account): Tenant,
    key: IdempotencyKey,
    Json(input): Json<StepChangeIn>,
) -> ApiResult {
    let stamp = state.stamp();
    let answer = |(change, _event): &(StepChange, Event)| created_answer(StepChangeOut::from(change.clone()));
    key.write(stamp.at, answer, |once| {
        let store = &state.store;
        store.move_application(account.id, input.application_id, input.process_step_id, stamp, once)
    })
    .await
}

async fn show(State(state): State<AppState>, Tenant(account): Tenant, Path(id): Path<String>) -> ApiResult {
    let change = state
        .store
        .step_change(account.id, path_id(&id, "step change")?)
        .await?;
    Ok(ok(StepChangeOut::from(change)))
}

async fn process(State(state): State<AppState>, Tenant(account): Tenant, Path(id): Path<String>) -> ApiResult {
    let process = state.store.process(account.id, path_id(&id, "process")?).await?;
    Ok(ok(ProcessOut::from(process)))
}
