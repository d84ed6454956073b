//! Jobs, candidates, applications and step changes in PostgreSQL; each change that emits an
//! event writes it in the same transaction.

use async_trait::async_trait;
use sqlx::{PgConnection, Row};

use super::keys::commit_once;
use super::order::Listed;
use super::webhooks::insert_event;
use super::{CANDIDATE_COLUMNS, JOB_COLUMNS, PostgresStore, STEP_COLUMNS, account_page, conflict, fetch_limit, found};
use crate::clock::Micros;
use crate::domain::account::Account;
use crate::domain::event::{self, Event, EventStamp};
use crate::domain::recruiting::{
    Application, Candidate, Job, NewCandidate, NewJob, ProcessStep, StepChange, StepVisit, check_move,
};
use crate::store::codec::{APPLICATION_SELECT, STEP_CHANGE_SELECT, snapshot, unknown};
use crate::store::fanout::Fanout;
use crate::store::rows::{application_from, candidate_from, job_from, step_change_from, step_from};
use crate::store::{ApplicationsOf, Once, Page, RecruitingStore, StoreResult};

async fn job_on(conn: &mut PgConnection, account: i64, id: i64) -> sqlx::Result<Option<Job>> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.account_id = $1 AND j.id = $2");
    let row = sqlx::query(&sql).bind(account).bind(id).fetch_optional(conn).await?;
    row.map(|r| job_from(&r, 0)).transpose()
}

async fn candidate_on(conn: &mut PgConnection, account: i64, id: i64) -> sqlx::Result<Option<Candidate>> {
    let sql = format!("SELECT {CANDIDATE_COLUMNS} FROM candidates c WHERE c.account_id = $1 AND c.id = $2");
    let row = sqlx::query(&sql).bind(account).bind(id).fetch_optional(conn).await?;
    row.map(|r| candidate_from(&r, 0)).transpose()
}

async fn step_on(conn: &mut PgConnection, account: i64, id: i64) -> sqlx::Result<Option<ProcessStep>> {
    let sql = format!("SELECT {STEP_COLUMNS} FROM process_steps s WHERE s.account_id = $1 AND s.id = $2");
    let row = sqlx::query(&sql).bind(account).bind(id).fetch_optional(conn).await?;
    row.map(|r| step_from(&r, 0)).transpose()
}

/// The application's current step, or `None` when there is no such application. The row is
/// locked, so that two moves of one application happen one after the other.
async fn current_step_on(conn: &mut PgConnection, account: i64, application: i64) -> sqlx::Result<Option<ProcessStep>> {
    let sql = format!(
        "SELECT {STEP_COLUMNS} FROM applications a JOIN process_steps s ON s.account_id = a.account_id AND s.id = a.step_id
         WHERE a.account_id = $1 AND a.id = $2 FOR UPDATE OF a"
    );
    let row = sqlx::query(&sql)
        .bind(account)
        .bind(application)
        .fetch_optional(conn)
        .await?;
    row.map(|r| step_from(&r, 0)).transpose()
}

/// Appends a step change and makes it the application's current step; returns its id.
async fn record_step(
    conn: &mut PgConnection,
    account: i64,
    application: i64,
    from: Option<i64>,
    to: i64,
    at: Micros,
) -> sqlx::Result<i64> {
    sqlx::query("UPDATE applications SET step_id = $1, step_date = $2 WHERE account_id = $3 AND id = $4")
        .bind(to)
        .bind(at)
        .bind(account)
        .bind(application)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar(
        "INSERT INTO step_changes (account_id, application_id, step_id, from_step_id, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(account)
    .bind(application)
    .bind(to)
    .bind(from)
    .bind(at)
    .fetch_one(conn)
    .await
}

/// The application with every step it went through.
pub(super) async fn application_on(conn: &mut PgConnection, account: i64, id: i64) -> StoreResult<Application> {
    let row = sqlx::query(&format!("{APPLICATION_SELECT} WHERE a.account_id = $1 AND a.id = $2"))
        .bind(account)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let mut application = application_from(&found(row, "application")?)?;
    let visits = sqlx::query(&format!(
        "SELECT {STEP_COLUMNS}, sc.created_at FROM step_changes sc
         JOIN process_steps s ON s.account_id = sc.account_id AND s.id = sc.step_id
         WHERE sc.account_id = $1 AND sc.application_id = $2 ORDER BY sc.id"
    ))
    .bind(account)
    .bind(id)
    .fetch_all(conn)
    .await?;
    application.history = visits
        .iter()
        .map(|r| {
            Ok(StepVisit {
                step: step_from(r, 0)?,
                date: r.try_get(4)?,
            })
        })
        .collect::<sqlx::Result<_>>()?;
    Ok(application)
}

#[async_trait]
impl RecruitingStore for PostgresStore {
    async fn create_job(
        &self,
        account: &Account,
        job: &NewJob,
        at: Micros,
        once: Option<Once<Job>>,
    ) -> StoreResult<Job> {
        let (_turn, mut tx) = self.turns.begin(&self.pool, Listed::AccountData, account.id).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO jobs (account_id, process_id, title, reference, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(account.id)
        .bind(account.process_id)
        .bind(&job.title)
        .bind(&job.reference)
        .bind(&job.status)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        let job = Job {
            id,
            title: job.title.clone(),
            reference: job.reference.clone(),
            status: job.status.clone(),
            process_id: account.process_id,
            created_at: at,
        };
        commit_once(tx, once, &job).await?;
        Ok(job)
    }

    async fn job(&self, account: i64, id: i64) -> StoreResult<Job> {
        let mut conn = self.pool.acquire().await?;
        found(job_on(&mut conn, account, id).await?, "job")
    }

    async fn jobs(&self, account: i64, page: Page) -> StoreResult<Vec<Job>> {
        let from = format!("SELECT {JOB_COLUMNS} FROM jobs j");
        let rows = account_page(&self.pool, &from, "j", "id", account, page).await?;
        Ok(rows.iter().map(|r| job_from(r, 0)).collect::<sqlx::Result<_>>()?)
    }

    async fn create_candidate(
        &self,
        account: i64,
        candidate: &NewCandidate,
        at: Micros,
        once: Option<Once<Candidate>>,
    ) -> StoreResult<Candidate> {
        let (_turn, mut tx) = self.turns.begin(&self.pool, Listed::AccountData, account).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO candidates (account_id, first_name, last_name, email, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(account)
        .bind(&candidate.first_name)
        .bind(&candidate.last_name)
        .bind(&candidate.email)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        let candidate = Candidate {
            id,
            first_name: candidate.first_name.clone(),
            last_name: candidate.last_name.clone(),
            email: candidate.email.clone(),
            created_at: at,
        };
        commit_once(tx, once, &candidate).await?;
        Ok(candidate)
    }

    async fn candidate(&self, account: i64, id: i64) -> StoreResult<Candidate> {
        let mut conn = self.pool.acquire().await?;
        found(candidate_on(&mut conn, account, id).await?, "candidate")
    }

    async fn candidates(&self, account: i64, page: Page) -> StoreResult<Vec<Candidate>> {
        let from = format!("SELECT {CANDIDATE_COLUMNS} FROM candidates c");
        let rows = account_page(&self.pool, &from, "c", "id", account, page).await?;
        Ok(rows.iter().map(|r| candidate_from(r, 0)).collect::<sqlx::Result<_>>()?)
    }

    async fn create_application(
        &self,
        account: i64,
        candidate_id: i64,
        job_id: i64,
        stamp: EventStamp,
        once: Option<Once<(Application, Event)>>,
    ) -> StoreResult<(Application, Event)> {
        let (_turn, mut tx) = self.turns.begin(&self.pool, Listed::AccountData, account).await?;
        candidate_on(&mut tx, account, candidate_id)
            .await?
            .ok_or_else(|| unknown("unknown_candidate", "candidate", candidate_id))?;
        let job = job_on(&mut tx, account, job_id)
            .await?
            .ok_or_else(|| unknown("unknown_job", "job", job_id))?;
        let first = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM process_steps s WHERE s.account_id = $1 AND s.process_id = $2
             ORDER BY s.position LIMIT 1"
        ))
        .bind(account)
        .bind(job.process_id)
        .fetch_one(&mut *tx)
        .await?;
        let first = step_from(&first, 0)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO applications (account_id, candidate_id, job_id, step_id, step_date, created_at)
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(account)
        .bind(candidate_id)
        .bind(job_id)
        .bind(first.id)
        .bind(stamp.at)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict(format!(
            "candidate {candidate_id} has already applied to job {job_id}"
        )))?;
        record_step(&mut tx, account, id, None, first.id, stamp.at).await?;
        let application = application_on(&mut tx, account, id).await?;
        let mut event = event::application_create(id, candidate_id, job_id, &first).stamp(stamp);
        event.snapshot = Some(snapshot(&application));
        insert_event(&mut tx, account, &event, Fanout::Subscribers).await?;
        let created = (application, event);
        commit_once(tx, once, &created).await?;
        Ok(created)
    }

    async fn application(&self, account: i64, id: i64) -> StoreResult<Application> {
        let mut conn = self.pool.acquire().await?;
        application_on(&mut conn, account, id).await
    }

    async fn applications(&self, account: i64, of: ApplicationsOf, page: Page) -> StoreResult<Vec<Application>> {
        let (condition, value) = match of {
            ApplicationsOf::All => ("$2::bigint IS NULL", None),
            ApplicationsOf::Job(id) => ("a.job_id = $2", Some(id)),
            ApplicationsOf::Candidate(id) => ("a.candidate_id = $2", Some(id)),
        };
        let rows = sqlx::query(&format!(
            "{APPLICATION_SELECT} WHERE a.account_id = $1 AND {condition}
             AND a.id > coalesce($3, -1) AND a.id < coalesce($4, 9223372036854775807) ORDER BY a.id DESC LIMIT $5"
        ))
        .bind(account)
        .bind(value)
        .bind(page.since)
        .bind(page.before)
        .bind(fetch_limit(page))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(application_from).collect::<sqlx::Result<_>>()?)
    }

    async fn delete_application(&self, account: i64, id: i64, stamp: EventStamp) -> StoreResult<Event> {
        let mut tx = self.pool.begin().await?;
        // The snapshot is the application as it was just before it went.
        let application = application_on(&mut tx, account, id).await?;
        sqlx::query("DELETE FROM applications WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let mut event = event::application_delete(id, &application.current().step).stamp(stamp);
        event.snapshot = Some(snapshot(&application));
        insert_event(&mut tx, account, &event, Fanout::Subscribers).await?;
        tx.commit().await?;
        Ok(event)
    }

    async fn move_application(
        &self,
        account: i64,
        application_id: i64,
        step_id: i64,
        stamp: EventStamp,
        once: Option<Once<(StepChange, Event)>>,
    ) -> StoreResult<(StepChange, Event)> {
        let (_turn, mut tx) = self.turns.begin(&self.pool, Listed::AccountData, account).await?;
        let from = current_step_on(&mut tx, account, application_id)
            .await?
            .ok_or_else(|| unknown("unknown_application", "application", application_id))?;
        let to = step_on(&mut tx, account, step_id)
            .await?
            .ok_or_else(|| unknown("unknown_step", "step", step_id))?;
        check_move(&from, &to)?;
        let change_id = record_step(&mut tx, account, application_id, Some(from.id), to.id, stamp.at).await?;
        let mut event = event::process_step_change(application_id, &from, &to).stamp(stamp);
        event.snapshot = Some(snapshot(&application_on(&mut tx, account, application_id).await?));
        insert_event(&mut tx, account, &event, Fanout::Subscribers).await?;
        let change = StepChange {
            change_id,
            application_id,
            step: to,
            date: event.created_at,
        };
        let moved = (change, event);
        commit_once(tx, once, &moved).await?;
        Ok(moved)
    }

    async fn step_changes(&self, account: i64, page: Page) -> StoreResult<Vec<StepChange>> {
        let rows = account_page(&self.pool, STEP_CHANGE_SELECT, "sc", "id", account, page).await?;
        Ok(rows.iter().map(step_change_from).collect::<sqlx::Result<_>>()?)
    }

    async fn step_change(&self, account: i64, change_id: i64) -> StoreResult<StepChange> {
        let row = sqlx::query(&format!("{STEP_CHANGE_SELECT} WHERE sc.account_id = $1 AND sc.id = $2"))
            .bind(account)
            .bind(change_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(step_change_from(&found(row, "step change")?)?)
    }
}
