//! `/restapi/v1/candidate`: the people who apply, and their applications.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::applications::ApplicationView;
use super::auth::Tenant;
use super::envelope::{Link, Resource, created_answer, ok};
use super::error::ApiResult;
use super::extract::{Json, Paging, Path, path_id};
use super::idempotency::IdempotencyKey;
use crate::domain::recruiting::{Candidate, NewCandidate};
use crate::store::ApplicationsOf;

/// A new candidate.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CandidateIn {
    first_name: String,
    last_name: String,
    email: Option<String>,
}

/// A candidate as the API shows it.
#[derive(Serialize, schemars::JsonSchema)]
pub struct CandidateOut {
    #[serde(rename = "_self")]
    self_: String,
    id: i64,
    first_name: String,
    last_name: String,
    email: Option<String>,
    applications: Link,
}

impl From<Candidate> for CandidateOut {
    fn from(c: Candidate) -> CandidateOut {
        let self_ = format!("/restapi/v1/candidate/{}", c.id);
        CandidateOut {
            applications: Link::to(format!("{self_}/application")),
            self_,
            id: c.id,
            first_name: c.first_name,
            last_name: c.last_name,
            email: c.email,
        }
    }
}

impl Resource for CandidateOut {
    const SCHEMA: &'static str = "candidate";
    const COLLECTION: &'static str = "candidates";
    fn self_path(&self) -> &str {
        &self.self_
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/restapi/v1/candidate", get(list).post(create))
        .route("/restapi/v1/candidate/{id}", get(show))
        .route("/restapi/v1/candidate/{id}/application", get(applications))
}

async fn list(State(state): State<AppState>, Tenant(account): Tenant, paging: Paging) -> ApiResult {
    let rows = state.store.candidates(account.id, paging.page()?).await?;
    Ok(paging.respond(rows, |c| c.id, CandidateOut::from))
}

async fn create(
    State(state): State<AppState>,
    Tenant(account): Tenant,
    key: IdempotencyKey,
    Json(input): Json<CandidateIn>,
) -> ApiResult {
    let candidate = NewCandidate::new(input.first_name, input.last_name, input.email)?;
    let now = state.clock.now();
    let answer = |candidate: &Candidate| created_answer(CandidateOut::from(candidate.clone()));
    key.write(now, answer, |once| {
        state.store.create_candidate(account.id, &candidate, now, once)
    })
    .await
}

async fn show(State(state): State<AppState>, Tenant(account): Tenant, Path(id): Path<String>) -> ApiResult {
    let candidate = state.store.candidate(account.id, path_id(&id, "candidate")?).await?;
    Ok(ok(CandidateOut::from(candidate)))
}

async fn applications(
    State(state): State<AppState>,
    Tenant(account): Tenant,
    Path(id): Path<String>,
    paging: Paging,
) -> ApiResult {
    let candidate = state.store.candidate(account.id, path_id(&id, "candidate")?).await?;
    let rows = state
        .store
        .applications(account.id, ApplicationsOf::Candidate(candidate.id), paging.page()?)
        .await?;
    Ok(paging.respond(rows, |a| a.id, ApplicationView::summary))
}
