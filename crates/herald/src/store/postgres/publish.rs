//! Publishing events in groups: the events of concurrent requests are written by one
//! statement, in one transaction, and each request is answered once that transaction has
//! committed.
//!
//! On a durable PostgreSQL what an event costs is mostly not the rows it writes but the round
//! trips around them: a transaction of its own, the statement, the notification, the commit,
//! each a wake-up of a backend. Written in groups, a busy API pays them once per group. A
//! quiet one pays nothing extra: a writer that finds a single event waiting writes it at once,
//! without waiting for company. (SQLite's writer thread groups every write the same way.)

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::domain::Invalid;
use crate::domain::event::Event;
use crate::store::{StoreError, StoreResult};

/// Most events in one statement: enough to absorb every request of a busy API, few enough that
/// the arrays stay small.
const GROUP: usize = 256;
/// Writers running at once: while one waits for its commit, the next gathers and sends its group.
const WRITERS: usize = 2;

/// An event waiting to be written, and who waits for the answer.
struct Waiting {
    account: i64,
    event: Event,
    answer: oneshot::Sender<StoreResult<Event>>,
}

/// The queue of events to publish, and the writers that empty it.
#[derive(Clone)]
pub(super) struct Publisher {
    queue: mpsc::Sender<Waiting>,
}

impl Publisher {
    /// Starts the writers on `pool`; they stop once every `Publisher` is dropped.
    pub(super) fn start(pool: &PgPool) -> Publisher {
        let (queue, waiting) = mpsc::channel(GROUP * WRITERS);
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..WRITERS {
            tokio::spawn(write_groups(pool.clone(), waiting.clone()));
        }
        Publisher { queue }
    }

    /// Writes `event` to `account`'s log with a delivery for each subscribed endpoint; returns
    /// once it is committed. An event about an application the account does not have is
    /// `Invalid` and writes nothing.
    pub(super) async fn publish(&self, account: i64, event: Event) -> StoreResult<Event> {
        let (answer, answered) = oneshot::channel();
        let waiting = Waiting { account, event, answer };
        if self.queue.send(waiting).await.is_err() {
            return Err(StoreError::Other("the event writers have stopped".into()));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(StoreError::Other("an event writer stopped before answering".into())))
    }
}

/// One writer: takes whatever is waiting, up to a group, and writes it; again and again.
async fn write_groups(pool: PgPool, waiting: Arc<Mutex<mpsc::Receiver<Waiting>>>) {
    loop {
        let mut group = Vec::with_capacity(GROUP);
        {
            // Held while gathering only: the other writer gathers the next group while this
            // one's is being written.
            let mut waiting = waiting.lock().await;
            if waiting.recv_many(&mut group, GROUP).await == 0 {
                return;
            }
        }
        match write(&pool, &group).await {
            Ok(written) => {
                for (waiting, written) in group.into_iter().zip(written) {
                    let answer = if written {
                        Ok(waiting.event)
                    } else {
                        Err(unknown_application(waiting.event.application_id))
                    };
                    let _ = waiting.answer.send(answer);
                }
            }
            // One bad event (an id written twice, say) must not fail the others:
            // each is tried again alone, and gets its own answer.
            Err(_) if group.len() > 1 => {
                for waiting in group {
                    let answer = match write(&pool, std::slice::from_ref(&waiting)).await {
                        Ok(written) if written[0] => Ok(waiting.event),
                        Ok(_) => Err(unknown_application(waiting.event.application_id)),
                        Err(e) => Err(e.into()),
                    };
                    let _ = waiting.answer.send(answer);
                }
            }
            // A group of one: the error is its own.
            Err(e) => {
                if let Some(waiting) = group.pop() {
                    let _ = waiting.answer.send(Err(e.into()));
                }
            }
        }
    }
}

fn unknown_application(application: Option<i64>) -> StoreError {
    let application = application.unwrap_or_default();
    Invalid {
        code: "unknown_application",
        message: format!("application {application} does not exist"),
    }
    .into()
}

/// Writes a group's events, each with a delivery for every endpoint of its account that
/// subscribes to its type, in one statement and so in one transaction; tells, event by
/// event, which were written (an event naming an application its account lacks is not).
/// The events take their seqs in the group's order: one round trip for the whole group.
async fn write(pool: &PgPool, group: &[Waiting]) -> sqlx::Result<Vec<bool>> {
    let mut accounts = Vec::with_capacity(group.len());
    let mut ids = Vec::with_capacity(group.len());
    let mut types = Vec::with_capacity(group.len());
    let mut applications = Vec::with_capacity(group.len());
    let mut times = Vec::with_capacity(group.len());
    let mut bodies = Vec::with_capacity(group.len());
    for Waiting { account, event, .. } in group {
        accounts.push(*account);
        ids.push(event.id.as_str());
        types.push(event.event_type.as_str());
        applications.push(event.application_id);
        times.push(event.created_at);
        bodies.push(event.body.as_str());
    }
    let written: Vec<i64> = sqlx::query_scalar(
        "WITH given AS (
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[])
                 WITH ORDINALITY AS g (account_id, id, event_type, application_id, created_at, body, position)),
         accepted AS (
             SELECT * FROM given g
             WHERE g.application_id IS NULL OR EXISTS (
                 SELECT 1 FROM applications a WHERE a.account_id = g.account_id AND a.id = g.application_id)),
         event AS (
             INSERT INTO events (account_id, id, event_type, application_id, created_at, body)
             SELECT account_id, id, event_type, application_id, created_at, body FROM accepted ORDER BY position
             RETURNING account_id, seq, event_type, application_id, created_at),
         delivery AS (
             INSERT INTO deliveries (account_id, endpoint_seq, event_seq, application_id, state, next_at, created_at)
             SELECT event.account_id, e.seq, event.seq, event.application_id, 'pending', event.created_at,
                    event.created_at
             FROM event JOIN endpoints e
                  ON e.account_id = event.account_id AND e.events ?| ARRAY['*', event.event_type]
             ORDER BY event.seq, e.seq)
         -- An INSERT in WITH runs whether or not the statement reads it; its trigger
         -- announces the new work to every node (migration 0006).
         SELECT position FROM accepted",
    )
    .bind(&accounts)
    .bind(&ids)
    .bind(&types)
    .bind(&applications)
    .bind(&times)
    .bind(&bodies)
    .fetch_all(pool)
    .await?;
    let mut answers = vec![false; group.len()];
    for position in written {
        answers[(position - 1) as usize] = true;
    }
    Ok(answers)
}
