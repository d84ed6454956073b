//! What applications are made of: the process and its steps, jobs, candidates, and the
//! applications that move through the steps.

use super::{Invalid, text};
use crate::clock::Micros;

/// Where a step stands in its process: the first is `START`, the last two `END`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Start,
    Current,
    End,
}

impl StepStatus {
    /// The status of the step at `position` (from 0) in a process of `count` steps.
    pub fn at(position: usize, count: usize) -> StepStatus {
        if position == 0 {
            StepStatus::Start
        } else if position + 2 >= count {
            StepStatus::End
        } else {
            StepStatus::Current
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Start => "START",
            StepStatus::Current => "CURRENT",
            StepStatus::End => "END",
        }
    }

    pub fn parse(text: &str) -> Option<StepStatus> {
        match text {
            "START" => Some(StepStatus::Start),
            "CURRENT" => Some(StepStatus::Current),
            "END" => Some(StepStatus::End),
            _ => None,
        }
    }
}

/// One step of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessStep {
    pub id: i64,
    pub process_id: i64,
    pub name: String,
    pub status: StepStatus,
}

/// An account's hiring process, its steps in order.
#[derive(Debug, Clone)]
pub struct Process {
    pub id: i64,
    pub name: String,
    pub steps: Vec<ProcessStep>,
}

/// Whether a job takes applications.
pub const JOB_STATUSES: [&str; 2] = ["open", "closed"];

/// A job opening.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub title: String,
    pub reference: Option<String>,
    pub status: String,
    pub process_id: i64,
    pub created_at: Micros,
}

/// A validated new job.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub title: String,
    pub reference: Option<String>,
    pub status: String,
}

impl NewJob {
    pub fn new(title: String, reference: Option<String>, status: Option<String>) -> Result<NewJob, Invalid> {
        text("title", &title, 300)?;
        if let Some(reference) = &reference {
            text("reference", reference, 100)?;
        }
        let status = status.unwrap_or_else(|| "open".into());
        if !JOB_STATUSES.contains(&status.as_str()) {
            return Err(Invalid::field("status", "must be \"open\" or \"closed\""));
        }
        Ok(NewJob {
            title,
            reference,
            status,
        })
    }
}

/// A person who applies.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub created_at: Micros,
}

/// A validated new candidate.
#[derive(Debug, Clone)]
pub struct NewCandidate {
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
}

impl NewCandidate {
    pub fn new(first_name: String, last_name: String, email: Option<String>) -> Result<NewCandidate, Invalid> {
        text("first_name", &first_name, 200)?;
        text("last_name", &last_name, 200)?;
        if let Some(email) = &email {
            let plausible = email.len() <= 254
                && email
                    .split_once('@')
                    .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
                && !email.contains(char::is_whitespace);
            if !plausible {
                return Err(Invalid::field("email", "must be an address such as ada@example.com"));
            }
        }
        Ok(NewCandidate {
            first_name,
            last_name,
            email,
        })
    }
}

/// A step an application reached, and when.
#[derive(Debug, Clone)]
pub struct StepVisit {
    pub step: ProcessStep,
    pub date: Micros,
}

/// A candidate's application to a job, with the steps it went through (oldest first; the
/// last is the current step).
#[derive(Debug, Clone)]
pub struct Application {
    pub id: i64,
    pub created_at: Micros,
    pub candidate: Candidate,
    pub job: Job,
    pub history: Vec<StepVisit>,
}

impl Application {
    /// The step the application is at.
    pub fn current(&self) -> &StepVisit {
        self.history.last().expect("an application always has its first step")
    }
}

/// One move of one application to a step: an item of `GET /restapi/v1/step`.
#[derive(Debug, Clone)]
pub struct StepChange {
    pub change_id: i64,
    pub application_id: i64,
    pub step: ProcessStep,
    pub date: Micros,
}

/// Checks that `to` can become the current step of an application at `from`.
pub fn check_move(from: &ProcessStep, to: &ProcessStep) -> Result<(), Invalid> {
    if to.process_id != from.process_id {
        return Err(Invalid {
            code: "step_of_another_process",
            message: format!("step {} belongs to another process than the application's job", to.id),
        });
    }
    if to.id == from.id {
        return Err(Invalid {
            code: "already_at_step",
            message: format!("the application is already at step {}", to.id),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_step_starts_and_the_last_two_end() {
        let statuses: Vec<_> = (0..6).map(|i| StepStatus::at(i, 6).as_str()).collect();
        assert_eq!(statuses, ["START", "CURRENT", "CURRENT", "CURRENT", "END", "END"]);
        assert_eq!(
            [StepStatus::at(0, 2), StepStatus::at(1, 2)],
            [StepStatus::Start, StepStatus::End]
        );
    }

    #[test]
    fn emails_must_look_like_addresses() {
        assert!(NewCandidate::new("Ada".into(), "Lovelace".into(), Some("ada@example.com".into())).is_ok());
        for bad in ["ada", "@example.com", "ada@localhost", "a da@example.com"] {
            assert!(
                NewCandidate::new("Ada".into(), "L".into(), Some(bad.into())).is_err(),
                "{bad}"
            );
        }
    }
}
