//! `/restapi/v1/application`: a candidate's application to a job, and where it stands.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;

use super::AppState;
use super::auth::Tenant;
use super::envelope::{Resource, created_answer, no_content, ok};
use super::error::ApiResult;
use super::extract::{Json, Paging, Path, path_id};
use super::idempotency::IdempotencyKey;
use crate::domain::event::Event;
use crate::domain::recruiting::Application;
pub use crate::domain::snapshot::ApplicationView;
use crate::store::ApplicationsOf;

/// A new application: who applies to what.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationIn {
    candidate_id: i64,
    job_id: i64,
}

impl Resource for ApplicationView {
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
    Ok(paging.respond(rows, |a| a.id, ApplicationView::summary))
}

async fn create(
    State(state): State<AppState>,
    Tenant(account): Tenant,
    key: IdempotencyKey,
    Json(input): Json<ApplicationIn>,
) -> ApiResult {
    let stamp = state.stamp();
    let answer =
        |(application, _event): &(Application, Event)| created_answer(ApplicationView::full(application.clone()));
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
    Ok(ok(ApplicationView::full(application)))
}

/// Deletes the application and emits `ApplicationDelete`; answers 204.
async fn delete(State(state): State<AppState>, Tenant(account): Tenant, Path(id): Path<String>) -> ApiResult {
    state
        .store
        .delete_application(account.id, path_id(&id, "application")?, state.stamp())
        .await?;
    Ok(no_content())
}
