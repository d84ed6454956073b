//! Jobs, candidates, applications and step changes in SQLite; each change that emits an
//! event writes it in the same transaction.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::webhooks::{Fanout, insert_event};
use super::{SqliteStore, conflict, fetch_limit, found, step_from};
use crate::clock::Micros;
use crate::domain::Invalid;
use crate::domain::account::Account;
use crate::domain::event::{self, Event, EventStamp};
use crate::domain::recruiting::{
    Application, Candidate, Job, NewCandidate, NewJob, ProcessStep, StepChange, StepVisit, check_move,
};
use crate::store::{ApplicationsOf, Page, RecruitingStore, StoreError, StoreResult};

type JobRow = (i64, String, Option<String>, String, i64, Micros);
type CandidateRow = (i64, String, String, Option<String>, Micros);

const JOB_COLUMNS: &str = "id, title, reference, status, process_id, created_at";
const CANDIDATE_COLUMNS: &str = "id, first_name, last_name, email, created_at";
const STEP_COLUMNS: &str = "s.id, s.process_id, s.name, s.status";

fn job_from((id, title, reference, status, process_id, created_at): JobRow) -> Job {
    Job {
        id,
        title,
        reference,
        status,
        process_id,
        created_at,
    }
}

fn candidate_from((id, first_name, last_name, email, created_at): CandidateRow) -> Candidate {
    Candidate {
        id,
        first_name,
        last_name,
        email,
        created_at,
    }
}

async fn job_on(conn: &mut SqliteConnection, account: i64, id: i64) -> sqlx::Result<Option<Job>> {
    let row: Option<JobRow> = sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE account_id = ? AND id = ?"
    ))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(job_from))
}

async fn candidate_on(conn: &mut SqliteConnection, account: i64, id: i64) -> sqlx::Result<Option<Candidate>> {
    let row: Option<CandidateRow> = sqlx::query_as(&format!(
        "SELECT {CANDIDATE_COLUMNS} FROM candidates WHERE account_id = ? AND id = ?"
    ))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(candidate_from))
}

async fn step_on(conn: &mut SqliteConnection, account: i64, id: i64) -> sqlx::Result<Option<ProcessStep>> {
    let row = sqlx::query_as(&format!(
        "SELECT {STEP_COLUMNS} FROM process_steps s WHERE s.account_id = ? AND s.id = ?"
    ))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(step_from))
}

/// The application's current step, or `None` when there is no such application.
async fn current_step_on(
    conn: &mut SqliteConnection,
    account: i64,
    application: i64,
) -> sqlx::Result<Option<ProcessStep>> {
    let row = sqlx::query_as(&format!(
        "SELECT {STEP_COLUMNS} FROM applications a JOIN process_steps s ON s.id = a.step_id
         WHERE a.account_id = ? AND a.id = ?"
    ))
    .bind(account)
    .bind(application)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(step_from))
}

/// Appends a step change and makes it the application's current step; returns its id.
async fn record_step(
    conn: &mut SqliteConnection,
    account: i64,
    application: i64,
    from: Option<i64>,
    to: i64,
    at: Micros,
) -> sqlx::Result<i64> {
    sqlx::query("UPDATE applications SET step_id = ?, step_date = ? WHERE account_id = ? AND id = ?")
        .bind(to)
        .bind(at)
        .bind(account)
        .bind(application)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar(
        "INSERT INTO step_changes (account_id, application_id, step_id, from_step_id, created_at)
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(account)
    .bind(application)
    .bind(to)
    .bind(from)
    .bind(at)
    .fetch_one(conn)
    .await
}

/// Columns of an application with its candidate, job and current step, in the order
/// [`application_from`] reads them.
const APPLICATION_SELECT: &str = "SELECT a.id, a.created_at, a.step_date,
    c.id, c.first_name, c.last_name, c.email, c.created_at,
    j.id, j.title, j.reference, j.status, j.process_id, j.created_at,
    s.id, s.process_id, s.name, s.status
    FROM applications a
    JOIN candidates c ON c.id = a.candidate_id
    JOIN jobs j ON j.id = a.job_id
    JOIN process_steps s ON s.id = a.step_id";

fn application_from(row: &SqliteRow) -> Application {
    let candidate = candidate_from((row.get(3), row.get(4), row.get(5), row.get(6), row.get(7)));
    let job = job_from((
        row.get(8),
        row.get(9),
        row.get(10),
        row.get(11),
        row.get(12),
        row.get(13),
    ));
    let step = step_from((row.get(14), row.get(15), row.get(16), row.get(17)));
    Application {
        id: row.get(0),
        created_at: row.get(1),
        candidate,
        job,
        history: vec![StepVisit { step, date: row.get(2) }],
    }
}

impl SqliteStore {
    async fn application_on(conn: &mut SqliteConnection, account: i64, id: i64) -> StoreResult<Application> {
        let row = sqlx::query(&format!("{APPLICATION_SELECT} WHERE a.account_id = ? AND a.id = ?"))
            .bind(account)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        let mut application = application_from(&found(row, "application")?);
        let visits: Vec<(i64, i64, String, String, Micros)> = sqlx::query_as(&format!(
            "SELECT {STEP_COLUMNS}, sc.created_at FROM step_changes sc JOIN process_steps s ON s.id = sc.step_id
             WHERE sc.account_id = ? AND sc.application_id = ? ORDER BY sc.id"
        ))
        .bind(account)
        .bind(id)
        .fetch_all(conn)
        .await?;
        application.history = visits
            .into_iter()
            .map(|(id, process, name, status, date)| StepVisit {
                step: step_from((id, process, name, status)),
                date,
            })
            .collect();
        Ok(application)
    }
}

fn unknown(code: &'static str, what: &str, id: i64) -> StoreError {
    StoreError::Invalid(Invalid {
        code,
        message: format!("{what} {id} does not exist"),
    })
}

#[async_trait]
impl RecruitingStore for SqliteStore {
    async fn create_job(&self, account: &Account, job: &NewJob, at: Micros) -> StoreResult<Job> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO jobs (account_id, process_id, title, reference, status, created_at)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(account.id)
        .bind(account.process_id)
        .bind(&job.title)
        .bind(&job.reference)
        .bind(&job.status)
        .bind(at)
        .fetch_one(&self.write)
        .await?;
        let (title, reference, status) = (job.title.clone(), job.reference.clone(), job.status.clone());
        Ok(Job {
            id,
            title,
            reference,
            status,
            process_id: account.process_id,
            created_at: at,
        })
    }

    async fn job(&self, account: i64, id: i64) -> StoreResult<Job> {
        found(job_on(&mut *self.read.acquire().await?, account, id).await?, "job")
    }

    async fn jobs(&self, account: i64, page: Page) -> StoreResult<Vec<Job>> {
        let rows: Vec<JobRow> = sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE account_id = ?1
             AND (?2 IS NULL OR id > ?2) AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4"
        ))
        .bind(account)
        .bind(page.since)
        .bind(page.before)
        .bind(fetch_limit(page))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(job_from).collect())
    }

    async fn create_candidate(&self, account: i64, candidate: &NewCandidate, at: Micros) -> StoreResult<Candidate> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO candidates (account_id, first_name, last_name, email, created_at)
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(account)
        .bind(&candidate.first_name)
        .bind(&candidate.last_name)
        .bind(&candidate.email)
        .bind(at)
        .fetch_one(&self.write)
        .await?;
        let NewCandidate {
            first_name,
            last_name,
            email,
        } = candidate.clone();
        Ok(Candidate {
            id,
            first_name,
            last_name,
            email,
            created_at: at,
        })
    }

    async fn candidate(&self, account: i64, id: i64) -> StoreResult<Candidate> {
        found(
            candidate_on(&mut *self.read.acquire().await?, account, id).await?,
            "candidate",
        )
    }

    async fn candidates(&self, account: i64, page: Page) -> StoreResult<Vec<Candidate>> {
        let rows: Vec<CandidateRow> = sqlx::query_as(&format!(
            "SELECT {CANDIDATE_COLUMNS} FROM candidates WHERE account_id = ?1
             AND (?2 IS NULL OR id > ?2) AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4"
        ))
        .bind(account)
        .bind(page.since)
        .bind(page.before)
        .bind(fetch_limit(page))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(candidate_from).collect())
    }

    async fn create_application(
        &self,
        account: i64,
        candidate_id: i64,
        job_id: i64,
        stamp: EventStamp,
    ) -> StoreResult<(Application, Event)> {
        let mut tx = self.write.begin().await?;
        let candidate = candidate_on(&mut tx, account, candidate_id).await?;
        candidate.ok_or_else(|| unknown("unknown_candidate", "candidate", candidate_id))?;
        let job = job_on(&mut tx, account, job_id)
            .await?
            .ok_or_else(|| unknown("unknown_job", "job", job_id))?;
        let first: (i64, i64, String, String) = sqlx::query_as(&format!(
            "SELECT {STEP_COLUMNS} FROM process_steps s WHERE s.account_id = ? AND s.process_id = ?
             ORDER BY s.position LIMIT 1"
        ))
        .bind(account)
        .bind(job.process_id)
        .fetch_one(&mut *tx)
        .await?;
        let first = step_from(first);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO applications (account_id, candidate_id, job_id, step_id, step_date, created_at)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(account)
        .bind(candidate_id)
        .bind(job_id)
        .bind(first.id)
        .bind(stamp.at)
        .bind(stamp.at)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict(format!(
            "candidate {candidate_id} has already applied to job {job_id}"
        )))?;
        record_step(&mut tx, account, id, None, first.id, stamp.at).await?;
        let event = event::application_create(id, candidate_id, job_id, &first).stamp(stamp);
        insert_event(&mut tx, account, &event, Fanout::Subscribers).await?;
        let application = Self::application_on(&mut tx, account, id).await?;
        tx.commit().await?;
        self.wake.notify_one();
        Ok((application, event))
    }

    async fn application(&self, account: i64, id: i64) -> StoreResult<Application> {
        Self::application_on(&mut *self.read.acquire().await?, account, id).await
    }

    async fn applications(&self, account: i64, of: ApplicationsOf, page: Page) -> StoreResult<Vec<Application>> {
        let (condition, value) = match of {
            ApplicationsOf::All => ("?2 IS NULL", None),
            ApplicationsOf::Job(id) => ("a.job_id = ?2", Some(id)),
            ApplicationsOf::Candidate(id) => ("a.candidate_id = ?2", Some(id)),
        };
        let rows = sqlx::query(&format!(
            "{APPLICATION_SELECT} WHERE a.account_id = ?1 AND {condition}
             AND (?3 IS NULL OR a.id > ?3) AND (?4 IS NULL OR a.id < ?4) ORDER BY a.id DESC LIMIT ?5"
        ))
        .bind(account)
        .bind(value)
        .bind(page.since)
        .bind(page.before)
        .bind(fetch_limit(page))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(application_from).collect())
    }

    async fn delete_application(&self, account: i64, id: i64, stamp: EventStamp) -> StoreResult<Event> {
        let mut tx = self.write.begin().await?;
        let step = found(current_step_on(&mut tx, account, id).await?, "application")?;
        sqlx::query("DELETE FROM applications WHERE account_id = ? AND id = ?")
            .bind(account)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let event = event::application_delete(id, &step).stamp(stamp);
        insert_event(&mut tx, account, &event, Fanout::Subscribers).await?;
        tx.commit().await?;
        self.wake.notify_one();
        Ok(event)
    }

    async fn move_application(
        &self,
        account: i64,
        application_id: i64,
        step_id: i64,
        stamp: EventStamp,
    ) -> StoreResult<(StepChange, Event)> {
        let mut tx = self.write.begin().await?;
        let from = current_step_on(&mut tx, account, application_id).await?;
        let from = from.ok_or_else(|| unknown("unknown_application", "application", application_id))?;
        let to = step_on(&mut tx, account, step_id)
            .await?
            .ok_or_else(|| unknown("unknown_step", "step", step_id))?;
        check_move(&from, &to)?;
        let change_id = record_step(&mut tx, account, application_id, Some(from.id), to.id, stamp.at).await?;
        let event = event::process_step_change(application_id, &from, &to).stamp(stamp);
        insert_event(&mut tx, account, &event, Fanout::Subscribers).await?;
        tx.commit().await?;
        self.wake.notify_one();
        Ok((
            StepChange {
                change_id,
                application_id,
                step: to,
                date: event.created_at,
            },
            event,
        ))
    }

    async fn step_changes(&self, account: i64, page: Page) -> StoreResult<Vec<StepChange>> {
        let rows: Vec<(i64, i64, Micros, i64, i64, String, String)> = sqlx::query_as(&format!(
            "SELECT sc.id, sc.application_id, sc.created_at, {STEP_COLUMNS}
             FROM step_changes sc JOIN process_steps s ON s.id = sc.step_id WHERE sc.account_id = ?1
             AND (?2 IS NULL OR sc.id > ?2) AND (?3 IS NULL OR sc.id < ?3) ORDER BY sc.id DESC LIMIT ?4"
        ))
        .bind(account)
        .bind(page.since)
        .bind(page.before)
        .bind(fetch_limit(page))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(step_change_from).collect())
    }

    async fn step_change(&self, account: i64, change_id: i64) -> StoreResult<StepChange> {
        let row = sqlx::query_as(&format!(
            "SELECT sc.id, sc.application_id, sc.created_at, {STEP_COLUMNS}
             FROM step_changes sc JOIN process_steps s ON s.id = sc.step_id WHERE sc.account_id = ? AND sc.id = ?"
        ))
        .bind(account)
        .bind(change_id)
        .fetch_optional(&self.read)
        .await?;
        found(row, "step change").map(step_change_from)
    }
}

fn step_change_from(
    (change_id, application_id, date, id, process_id, name, status): (i64, i64, Micros, i64, i64, String, String),
) -> StepChange {
    StepChange {
        change_id,
        application_id,
        step: step_from((id, process_id, name, status)),
        date,
    }
}
