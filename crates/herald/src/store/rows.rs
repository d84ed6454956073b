//! Reading Herald's types from rows, written once for both backends: a reader takes any row
//! that gives its cells by position ([`Cells`], for a rusqlite `Row` and a sqlx `PgRow`), in
//! the order of the column lists and selects of `codec`.

use sqlx::Postgres;
use sqlx::postgres::PgRow;

use super::codec::decode_word;
use crate::domain::account::Account;
use crate::domain::delivery::Task;
use crate::domain::operational::{Mail, MailKind};
use crate::domain::recruiting::{Application, Candidate, Job, ProcessStep, StepChange, StepStatus, StepVisit};

/// A value both backends can read from a cell: the integers and texts Herald stores, and
/// their optional forms.
pub(super) trait Cell:
    rusqlite::types::FromSql + for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>
{
}

impl<T> Cell for T where T: rusqlite::types::FromSql + for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres> {}

/// A row, read cell by cell; errors stay the backend's own.
pub(super) trait Cells {
    type Error;

    fn cell<T: Cell>(&self, at: usize) -> Result<T, Self::Error>;
}

impl Cells for rusqlite::Row<'_> {
    type Error = rusqlite::Error;

    fn cell<T: Cell>(&self, at: usize) -> rusqlite::Result<T> {
        self.get(at)
    }
}

impl Cells for PgRow {
    type Error = sqlx::Error;

    fn cell<T: Cell>(&self, at: usize) -> sqlx::Result<T> {
        sqlx::Row::try_get(self, at)
    }
}

/// From [`ACCOUNT_COLUMNS`](super::codec::ACCOUNT_COLUMNS).
pub(super) fn account_from<R: Cells>(row: &R) -> Result<Account, R::Error> {
    Ok(Account {
        id: row.cell(0)?,
        login: row.cell(1)?,
        name: row.cell(2)?,
        process_id: row.cell(3)?,
        created_at: row.cell(4)?,
        notify_email: row.cell(5)?,
    })
}

/// From [`STEP_COLUMNS`](super::codec::STEP_COLUMNS), starting at `at`.
pub(super) fn step_from<R: Cells>(row: &R, at: usize) -> Result<ProcessStep, R::Error> {
    let status: String = row.cell(at + 3)?;
    Ok(ProcessStep {
        id: row.cell(at)?,
        process_id: row.cell(at + 1)?,
        name: row.cell(at + 2)?,
        status: StepStatus::parse(&status).unwrap_or(StepStatus::Current),
    })
}

/// From [`JOB_COLUMNS`](super::codec::JOB_COLUMNS), starting at `at`.
pub(super) fn job_from<R: Cells>(row: &R, at: usize) -> Result<Job, R::Error> {
    Ok(Job {
        id: row.cell(at)?,
        title: row.cell(at + 1)?,
        reference: row.cell(at + 2)?,
        status: row.cell(at + 3)?,
        process_id: row.cell(at + 4)?,
        created_at: row.cell(at + 5)?,
    })
}

/// From [`CANDIDATE_COLUMNS`](super::codec::CANDIDATE_COLUMNS), starting at `at`.
pub(super) fn candidate_from<R: Cells>(row: &R, at: usize) -> Result<Candidate, R::Error> {
    Ok(Candidate {
        id: row.cell(at)?,
        first_name: row.cell(at + 1)?,
        last_name: row.cell(at + 2)?,
        email: row.cell(at + 3)?,
        created_at: row.cell(at + 4)?,
    })
}

/// From [`APPLICATION_SELECT`](super::codec::APPLICATION_SELECT): the application with its
/// current step as its only visit (the caller reads the others).
pub(super) fn application_from<R: Cells>(row: &R) -> Result<Application, R::Error> {
    Ok(Application {
        id: row.cell(0)?,
        created_at: row.cell(1)?,
        candidate: candidate_from(row, 3)?,
        job: job_from(row, 8)?,
        history: vec![StepVisit {
            step: step_from(row, 14)?,
            date: row.cell(2)?,
        }],
    })
}

/// From [`STEP_CHANGE_SELECT`](super::codec::STEP_CHANGE_SELECT).
pub(super) fn step_change_from<R: Cells>(row: &R) -> Result<StepChange, R::Error> {
    Ok(StepChange {
        change_id: row.cell(0)?,
        application_id: row.cell(1)?,
        date: row.cell(2)?,
        step: step_from(row, 3)?,
    })
}

/// From [`TASK_COLUMNS`](super::codec::TASK_COLUMNS), without the request (read on its own).
pub(super) fn task_from<R: Cells>(row: &R) -> Result<Task, R::Error> {
    Ok(Task {
        id: row.cell(0)?,
        endpoint_id: row.cell(1)?,
        event_id: row.cell(2)?,
        event_type: row.cell(3)?,
        application_id: row.cell(4)?,
        attempt: row.cell::<i64>(5)? as u32,
        url: row.cell(6)?,
        created_at: row.cell(7)?,
        duration_ms: row.cell(8)?,
        response_status: row.cell::<i64>(9)? as u16,
        response_body: row.cell(10)?,
        error: row.cell(11)?,
        delivery_state: row
            .cell::<Option<String>>(12)?
            .and_then(|state| decode_word("state", state).ok()),
        request: None,
    })
}

/// From [`MAIL_SELECT`](super::codec::MAIL_SELECT). A kind this build does not know reads as
/// a disabling, the graver news.
pub(super) fn mail_from<R: Cells>(row: &R) -> Result<Mail, R::Error> {
    let endpoint_id: Option<String> = row.cell(6)?;
    let status: Option<i64> = row.cell(9)?;
    Ok(Mail {
        id: row.cell(0)?,
        kind: MailKind::parse(&row.cell::<String>(1)?).unwrap_or(MailKind::Disabled),
        attempts: row.cell::<i64>(2)? as u32,
        created_at: row.cell(3)?,
        to: row.cell(4)?,
        event_body: row.cell(5)?,
        endpoint: match endpoint_id {
            Some(id) => Some((id, row.cell(7)?, row.cell(8)?)),
            None => None,
        },
        call: match status {
            Some(status) => Some((status as u16, row.cell(10)?, row.cell(11)?)),
            None => None,
        },
    })
}
