//! An application as `GET /restapi/v1/application/{id}` shows it: the REST API's answer, and
//! the snapshot that a version-2 call carries in `data.application`, taken in the event's own
//! transaction.

use serde::Serialize;

use super::event::application_path;
use super::recruiting::{Application, StepVisit};
use crate::clock::rfc3339;

/// An application as the API shows it; without `steps`, as lists show it.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ApplicationView {
    #[serde(rename = "_self")]
    pub self_: String,
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

impl ApplicationView {
    /// The application with its history of steps.
    pub fn full(application: Application) -> ApplicationView {
        let steps = StepsDated {
            items: application.history.iter().map(dated).collect(),
        };
        ApplicationView {
            steps: Some(steps),
            ..ApplicationView::summary(application)
        }
    }

    /// The application with its current step only, as lists show it.
    pub fn summary(application: Application) -> ApplicationView {
        let step = dated(application.current());
        let (c, j) = (application.candidate, application.job);
        ApplicationView {
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
