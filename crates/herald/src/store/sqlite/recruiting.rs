//! Jobs, candidates, applications and step changes in SQLite; each change that emits an
//! event writes it in the same transaction.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::webhooks::insert_event;
use super::{CANDIDATE_COLUMNS, JOB_COLUMNS, STEP_COLUMNS, SqliteStore, conflict, fetch_limit, found};
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

fn job_on(conn: &Connection, account: i64, id: i64) -> rusqlite::Result<Option<Job>> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.account_id = ? AND j.id = ?");
    conn.prepare_cached(&sql)?
        .query_row([account, id], |r| job_from(r, 0))
        .optional()
}

fn candidate_on(conn: &Connection, account: i64, id: i64) -> rusqlite::Result<Option<Candidate>> {
    let sql = format!("SELECT {CANDIDATE_COLUMNS} FROM candidates c WHERE c.account_id = ? AND c.id = ?");
    conn.prepare_cached(&sql)?
        .query_row([account, id], |r| candidate_from(r, 0))
        .optional()
}

fn step_on(conn: &Connection, account: i64, id: i64) -> rusqlite::Result<Option<ProcessStep>> {
    let sql = format!("SELECT {STEP_COLUMNS} FROM process_steps s WHERE s.account_id = ? AND s.id = ?");
    conn.prepare_cached(&sql)?
        .query_row([account, id], |r| step_from(r, 0))
        .optional()
}

/// The application's current step, or `None` when there is no such application.
fn current_step_on(conn: &Connection, account: i64, application: i64) -> rusqlite::Result<Option<ProcessStep>> {
    let sql = format!(
        "SELECT {STEP_COLUMNS} FROM applications a JOIN process_steps s ON s.id = a.step_id
         WHERE a.account_id = ? AND a.id = ?"
    );
    conn.prepare_cached(&sql)?
        .query_row([account, application], |r| step_from(r, 0))
        .optional()
}

/// Appends a step change and makes it the application's current step; returns its id.
fn record_step(
    conn: &Connection,
    account: i64,
    application: i64,
    from: Option<i64>,
    to: i64,
    at: Micros,
) -> rusqlite::Result<i64> {
    conn.prepare_cached("UPDATE applications SET step_id = ?, step_date = ? WHERE account_id = ? AND id = ?")?
        .execute(params![to, at, account, application])?;
    conn.prepare_cached(
        "INSERT INTO step_changes (account_id, application_id, step_id, from_step_id, created_at)
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    )?
    .query_row(params![account, application, to, from, at], |r| r.get(0))
}

/// The application with every step it went through.
pub(super) fn application_on(conn: &Connection, account: i64, id: i64) -> StoreResult<Application> {
    let sql = format!("{APPLICATION_SELECT} WHERE a.account_id = ? AND a.id = ?");
    let application = conn
        .prepare_cached(&sql)?
        .query_row([account, id], |row| application_from(row))
        .optional()?;
    let mut application = found(application, "application")?;
    let mut visits = conn.prepare_cached(&format!(
        "SELECT {STEP_COLUMNS}, sc.created_at FROM step_changes sc JOIN process_steps s ON s.id = sc.step_id
         WHERE sc.account_id = ? AND sc.application_id = ? ORDER BY sc.id"
    ))?;
    let visits = visits.query_map([account, id], |r| {
        Ok(StepVisit {
            step: step_from(r, 0)?,
            date: r.get(4)?,
        })
    })?;
    application.history = visits.collect::<rusqlite::Result<_>>()?;
    Ok(application)
}

#[async_trait]
impl RecruitingStore for SqliteStore {
    async fn create_job(
        &self,
        account: &Account,
        job: &NewJob,
        at: Micros,
        once: Option<Once<Job>>,
    ) -> StoreResult<Job> {
        let (account_id, process_id, job) = (account.id, account.process_id, job.clone());
        self.db
            .write_once(once, move |conn| {
                let id: i64 = conn
                    .prepare_cached(
                        "INSERT INTO jobs (account_id, process_id, title, reference, status, created_at)
                     VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    )?
                    .query_row(
                        params![account_id, process_id, job.title, job.reference, job.status, at],
                        |r| r.get(0),
                    )?;
                Ok(Job {
                    id,
                    title: job.title,
                    reference: job.reference,
                    status: job.status,
                    process_id,
                    created_at: at,
                })
            })
            .await
    }

    async fn job(&self, account: i64, id: i64) -> StoreResult<Job> {
        self.db.read(move |conn| found(job_on(conn, account, id)?, "job")).await
    }

    async fn jobs(&self, account: i64, page: Page) -> StoreResult<Vec<Job>> {
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs j WHERE j.account_id = ?1
                     AND j.id > coalesce(?2, -1) AND j.id < coalesce(?3, 9223372036854775807) ORDER BY j.id DESC LIMIT ?4"
                ))?;
                let rows = statement.query_map(params![account, page.since, page.before, fetch_limit(page)], |r| {
                    job_from(r, 0)
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn create_candidate(
        &self,
        account: i64,
        candidate: &NewCandidate,
        at: Micros,
        once: Option<Once<Candidate>>,
    ) -> StoreResult<Candidate> {
        let candidate = candidate.clone();
        self.db
            .write_once(once, move |conn| {
                let id: i64 = conn
                    .prepare_cached(
                        "INSERT INTO candidates (account_id, first_name, last_name, email, created_at)
                         VALUES (?, ?, ?, ?, ?) RETURNING id",
                    )?
                    .query_row(
                        params![account, candidate.first_name, candidate.last_name, candidate.email, at],
                        |r| r.get(0),
                    )?;
                let NewCandidate {
                    first_name,
                    last_name,
                    email,
                } = candidate;
                Ok(Candidate {
                    id,
                    first_name,
                    last_name,
                    email,
                    created_at: at,
                })
            })
            .await
    }

    async fn candidate(&self, account: i64, id: i64) -> StoreResult<Candidate> {
        self.db
            .read(move |conn| found(candidate_on(conn, account, id)?, "candidate"))
            .await
    }

    async fn candidates(&self, account: i64, page: Page) -> StoreResult<Vec<Candidate>> {
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached(&format!(
                    "SELECT {CANDIDATE_COLUMNS} FROM candidates c WHERE c.account_id = ?1
                     AND c.id > coalesce(?2, -1) AND c.id < coalesce(?3, 9223372036854775807) ORDER BY c.id DESC LIMIT ?4"
                ))?;
                let rows = statement.query_map(params![account, page.since, page.before, fetch_limit(page)], |r| {
                    candidate_from(r, 0)
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn create_application(
        &self,
        account: i64,
        candidate_id: i64,
        job_id: i64,
        stamp: EventStamp,
        once: Option<Once<(Application, Event)>>,
    ) -> StoreResult<(Application, Event)> {
        let created =
            self.db
                .write_once(once, move |conn| {
                    candidate_on(conn, account, candidate_id)?
                        .ok_or_else(|| unknown("unknown_candidate", "candidate", candidate_id))?;
                    let job = job_on(conn, account, job_id)?.ok_or_else(|| unknown("unknown_job", "job", job_id))?;
                    let first = conn
                        .prepare_cached(&format!(
                            "SELECT {STEP_COLUMNS} FROM process_steps s WHERE s.account_id = ? AND s.process_id = ?
                         ORDER BY s.position LIMIT 1"
                        ))?
                        .query_row([account, job.process_id], |r| step_from(r, 0))?;
                    let id: i64 = conn
                    .prepare_cached(
                        "INSERT INTO applications (account_id, candidate_id, job_id, step_id, step_date, created_at)
                         VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    )?
                    .query_row(params![account, candidate_id, job_id, first.id, stamp.at, stamp.at], |r| r.get(0))
                    .map_err(conflict(format!("candidate {candidate_id} has already applied to job {job_id}")))?;
                    record_step(conn, account, id, None, first.id, stamp.at)?;
                    let application = application_on(conn, account, id)?;
                    let mut event = event::application_create(id, candidate_id, job_id, &first).stamp(stamp);
                    event.snapshot = Some(snapshot(&application));
                    insert_event(conn, account, &event, Fanout::Subscribers)?;
                    Ok((application, event))
                })
                .await?;
        Ok(created)
    }

    async fn application(&self, account: i64, id: i64) -> StoreResult<Application> {
        self.db.read(move |conn| application_on(conn, account, id)).await
    }

    async fn applications(&self, account: i64, of: ApplicationsOf, page: Page) -> StoreResult<Vec<Application>> {
        let (condition, value) = match of {
            ApplicationsOf::All => ("?2 IS NULL", None),
            ApplicationsOf::Job(id) => ("a.job_id = ?2", Some(id)),
            ApplicationsOf::Candidate(id) => ("a.candidate_id = ?2", Some(id)),
        };
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached(&format!(
                    "{APPLICATION_SELECT} WHERE a.account_id = ?1 AND {condition}
                     AND a.id > coalesce(?3, -1) AND a.id < coalesce(?4, 9223372036854775807) ORDER BY a.id DESC LIMIT ?5"
                ))?;
                let rows = statement.query_map(
                    params![account, value, page.since, page.before, fetch_limit(page)],
                    |row| application_from(row),
                )?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn delete_application(&self, account: i64, id: i64, stamp: EventStamp) -> StoreResult<Event> {
        let event = self
            .db
            .write(move |conn| {
                // The snapshot is the application as it was just before it went.
                let application = application_on(conn, account, id)?;
                conn.execute(
                    "DELETE FROM applications WHERE account_id = ? AND id = ?",
                    [account, id],
                )?;
                let mut event = event::application_delete(id, &application.current().step).stamp(stamp);
                event.snapshot = Some(snapshot(&application));
                insert_event(conn, account, &event, Fanout::Subscribers)?;
                Ok(event)
            })
            .await?;
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
        let moved = self
            .db
            .write_once(once, move |conn| {
                let from = current_step_on(conn, account, application_id)?
                    .ok_or_else(|| unknown("unknown_application", "application", application_id))?;
                let to = step_on(conn, account, step_id)?.ok_or_else(|| unknown("unknown_step", "step", step_id))?;
                check_move(&from, &to)?;
                let change_id = record_step(conn, account, application_id, Some(from.id), to.id, stamp.at)?;
                let mut event = event::process_step_change(application_id, &from, &to).stamp(stamp);
                event.snapshot = Some(snapshot(&application_on(conn, account, application_id)?));
                insert_event(conn, account, &event, Fanout::Subscribers)?;
                let change = StepChange {
                    change_id,
                    application_id,
                    step: to,
                    date: event.created_at,
                };
                Ok((change, event))
            })
            .await?;
        Ok(moved)
    }

    async fn step_changes(&self, account: i64, page: Page) -> StoreResult<Vec<StepChange>> {
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached(&format!(
                    "{STEP_CHANGE_SELECT} WHERE sc.account_id = ?1
                     AND sc.id > coalesce(?2, -1) AND sc.id < coalesce(?3, 9223372036854775807) ORDER BY sc.id DESC LIMIT ?4"
                ))?;
                let rows = statement.query_map(
                    params![account, page.since, page.before, fetch_limit(page)],
                    |row| step_change_from(row),
                )?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn step_change(&self, account: i64, change_id: i64) -> StoreResult<StepChange> {
        self.db
            .read(move |conn| {
                let sql = format!("{STEP_CHANGE_SELECT} WHERE sc.account_id = ? AND sc.id = ?");
                let row = conn
                    .prepare_cached(&sql)?
                    .query_row([account, change_id], |row| step_change_from(row))
                    .optional()?;
                found(row, "step change")
            })
            .await
    }
}
