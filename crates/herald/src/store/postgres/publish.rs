//! Publishing events in groups: the events of concurrent requests are written by one
//! statement, in one transaction, and each request is answered once that transaction has
//! committed.
//!
//! On a durable PostgreSQL what an event costs is mostly not the rows it writes but the round
//! trips around them: a transaction of its own, the statement, the notification, the commit,
//! each a wake-up of a backend. Written in groups, a busy API pays them once per group. A
//! quiet one pays nothing extra: a writer that finds a single event waiting writes it at once,
//! without waiting for company. (SQLite's writer thread groups every write the same way.)
//!
//! Which endpoints a filter leaves an event out of is decided here, in Rust, so the writer
//! must know the filters before it writes. It goes by the filters the last statement of its
//! accounts saw (`KnownFilters`, none for an account it has not seen): the statement writes
//! only if they are still the filters in the database, and hands back the ones it found
//! either way. When they changed, it wrote nothing, and the group is written again with the
//! new ones. So a group is one round trip, not one to read the filters and one to write.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{PgConnection, PgPool};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::kept::Kept;
use super::recruiting::application_on;
use crate::domain::event::Event;
use crate::store::once::{KEY_LIFETIME, KeyRow};
use crate::store::{StoreError, StoreResult};
use crate::store::{codec, filters};

/// Most events in one statement: enough to absorb every request of a busy API, few enough that
/// the arrays stay small.
const GROUP: usize = 256;
/// Writers running at once: while one waits for its commit, the next gathers and sends its group.
const WRITERS: usize = 2;
/// Times a group is written again because the filters it went by had changed: more means
/// they changed faster than round trips go, which a person editing endpoints cannot do.
const ATTEMPTS: usize = 4;

/// An event waiting to be written, and who waits for the answer.
struct Waiting {
    account: i64,
    /// The event as answered: its application's snapshot is read and written by the group's
    /// transaction, and is not in the answer.
    event: Event,
    /// The request's Idempotency-Key, to keep with the event.
    key: Option<KeyRow>,
    answer: oneshot::Sender<StoreResult<Event>>,
}

/// What became of one event of a group.
#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    Written,
    /// It names an application its account does not have.
    UnknownApplication,
    /// Its Idempotency-Key is kept already.
    KeyTaken,
}

impl Waiting {
    fn answer(self, outcome: Outcome) {
        let answer = match outcome {
            Outcome::Written => Ok(self.event),
            Outcome::UnknownApplication => Err(unknown_application(self.event.application_id)),
            Outcome::KeyTaken => Err(StoreError::KeyTaken),
        };
        let _ = self.answer.send(answer);
    }
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
        let known = Arc::new(KnownFilters::default());
        for _ in 0..WRITERS {
            tokio::spawn(write_groups(pool.clone(), waiting.clone(), known.clone()));
        }
        Publisher { queue }
    }

    /// Writes `event` to `account`'s log with a delivery for each subscribed endpoint, and
    /// the request's `key` if any; returns once it is committed. An event about an
    /// application the account does not have is `Invalid` and writes nothing; so is one whose
    /// key is taken (`KeyTaken`).
    pub(super) async fn publish(&self, account: i64, event: Event, key: Option<KeyRow>) -> StoreResult<Event> {
        let (answer, answered) = oneshot::channel();
        let waiting = Waiting {
            account,
            event,
            key,
            answer,
        };
        if self.queue.send(waiting).await.is_err() {
            return Err(StoreError::Other("the event writers have stopped".into()));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(StoreError::Other("an event writer stopped before answering".into())))
    }
}

/// One writer: takes whatever is waiting, up to a group, and writes it; again and again.
async fn write_groups(pool: PgPool, waiting: Arc<Mutex<mpsc::Receiver<Waiting>>>, known: Arc<KnownFilters>) {
    let mut kept = Kept::new(&pool);
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
        match write(&pool, &mut kept, &group, &known).await {
            Ok(outcomes) => {
                for (waiting, outcome) in group.into_iter().zip(outcomes) {
                    waiting.answer(outcome);
                }
            }
            // One bad event (an id written twice, or a key twice in the group, say) must not
            // fail the others: each is tried again alone, and gets its own answer.
            Err(_) if group.len() > 1 => {
                for waiting in group {
                    match write(&pool, &mut kept, std::slice::from_ref(&waiting), &known).await {
                        Ok(outcomes) => waiting.answer(outcomes[0]),
                        Err(e) => {
                            let _ = waiting.answer.send(Err(e));
                        }
                    }
                }
            }
            // A group of one: the error is its own.
            Err(e) => {
                if let Some(waiting) = group.pop() {
                    let _ = waiting.answer.send(Err(e));
                }
            }
        }
    }
}

fn unknown_application(application: Option<i64>) -> StoreError {
    codec::unknown("unknown_application", "application", application.unwrap_or_default())
}

/// Writes a group of events (`$1` to `$12`, `$16`: a column each), their deliveries and
/// their Idempotency-Keys (kept `$13`), leaving out the (event id, endpoint seq) pairs `$14`,
/// `$15` that the filters `$17` to `$19` (account, endpoint seq, filter) leave out, unless those
/// are no longer the filters of the group's accounts. Answers a row per event written, one per
/// filtered endpoint of the group's accounts, and one saying it wrote nothing when the filters
/// had changed (see `Answer`).
const PUBLISH_GROUP: &str = "WITH given AS (
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[],
                              $7::text[], $8::text[], $9::text[], $10::smallint[], $11::text[], $12::text[],
                              $16::text[])
             WITH ORDINALITY AS g (account_id, id, event_type, application_id, created_at, body,
                                   scope, key, fingerprint, status, location, answer, snapshot, position)),
     known AS (
         SELECT * FROM unnest($17::bigint[], $18::bigint[], $19::text[]) AS k (account_id, seq, filter)),
     found AS (
         SELECT e.account_id, e.seq, e.filter FROM endpoints e
         WHERE e.account_id = ANY($1) AND e.filter IS NOT NULL),
     -- Whether the filters that left events out ($14, $15) are no longer the endpoints'
     -- own: then nothing is written, and the writer tries again with those found.
     verdict AS (
         SELECT EXISTS (SELECT * FROM found EXCEPT SELECT * FROM known)
                OR EXISTS (SELECT * FROM known EXCEPT SELECT * FROM found) AS stale),
     accepted AS (
         SELECT * FROM given g
         WHERE NOT (SELECT stale FROM verdict)
           AND (g.application_id IS NULL OR EXISTS (
               SELECT 1 FROM applications a WHERE a.account_id = g.account_id AND a.id = g.application_id))),
     -- A key kept already, and not run out, keeps nothing: its event is not written.
     kept AS (
         INSERT INTO idempotency_keys (scope, key, fingerprint, status, location, body, created_at)
         SELECT scope, key, fingerprint, status, location, answer, created_at FROM accepted
         WHERE key IS NOT NULL
         ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint,
             status = excluded.status, location = excluded.location, body = excluded.body,
             created_at = excluded.created_at
         WHERE idempotency_keys.created_at < excluded.created_at - $13
         RETURNING scope, key),
     written AS (
         SELECT a.*, a.key IS NULL OR EXISTS (SELECT 1 FROM kept k WHERE k.scope = a.scope AND k.key = a.key)
             AS keyed
         FROM accepted a),
     event AS (
         INSERT INTO events (account_id, id, event_type, application_id, created_at, body, snapshot)
         SELECT account_id, id, event_type, application_id, created_at, body, snapshot FROM written
         WHERE keyed
         ORDER BY position
         RETURNING account_id, id, seq, event_type, application_id, created_at),
     -- The endpoints the group's events may go to, each locked once for the whole group
     -- so that it cannot be deleted before the deliveries to it are committed (it would
     -- leave them to nobody; migration 0020). Not a foreign key: that checked and locked
     -- the endpoint again for every delivery.
     subscribed AS (
         SELECT e.account_id, e.seq, e.events, e.ordering FROM endpoints e
         WHERE e.account_id = ANY($1) AND e.events ?| ($3 || '*'::text)
         FOR KEY SHARE),
     delivery AS (
         INSERT INTO deliveries (account_id, endpoint_seq, event_seq, application_id, state, next_at, created_at,
                                 fifo)
         SELECT event.account_id, e.seq, event.seq, event.application_id, 'pending', event.created_at,
                event.created_at, e.ordering = 'fifo'
         FROM event JOIN subscribed e
              ON e.account_id = event.account_id AND e.events ?| ARRAY['*', event.event_type]
         WHERE NOT EXISTS (SELECT 1 FROM unnest($14::text[], $15::bigint[]) AS out (event_id, seq)
                           WHERE out.event_id = event.id AND out.seq = e.seq)
         ORDER BY event.seq, e.seq)
     -- An INSERT in WITH runs whether or not the statement reads it; its trigger
     -- announces the new work to every node (migration 0006).
     SELECT 'written' AS kind, position, keyed, NULL::bigint AS account_id, NULL::bigint AS seq,
            NULL::text AS filter
     FROM written
     UNION ALL
     SELECT 'filter', NULL, NULL, account_id, seq, filter FROM found
     UNION ALL
     SELECT 'stale', NULL, NULL, NULL, NULL, NULL FROM verdict WHERE stale";

/// An endpoint's filter, as a statement found it: (account, endpoint seq, filter text).
type Filtered = (i64, i64, String);

/// The filtered endpoints of each account, as the last statement that wrote to it found them.
/// An account without any has no entry, so this holds no more than the database has filtered
/// endpoints.
#[derive(Default)]
struct KnownFilters(std::sync::Mutex<HashMap<i64, Vec<Filtered>>>);

impl KnownFilters {
    /// What is known of `accounts`' filters.
    fn of(&self, accounts: &[i64]) -> Vec<Filtered> {
        let known = self.lock();
        accounts
            .iter()
            .filter_map(|a| known.get(a))
            .flatten()
            .cloned()
            .collect()
    }

    /// Keeps what a statement `found` of `accounts`' filters, in place of what was known.
    fn found(&self, accounts: &[i64], found: &[Filtered]) {
        let mut known = self.lock();
        for account in accounts {
            known.remove(account);
        }
        for filtered in found {
            known.entry(filtered.0).or_default().push(filtered.clone());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Vec<Filtered>>> {
        // Nothing panics while holding it, but a poisoned map is still a valid map.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A row of the publishing statement's answer: its kind, then `written`: an event of the
/// group (its position, and whether its key was free); `filter`: a filtered endpoint of the
/// group's accounts (account, seq, filter); `stale`: the filters the statement was given were
/// not those, and it wrote nothing.
type Answer = (
    String,
    Option<i64>,
    Option<bool>,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

/// Writes a group's events, each with a delivery for every endpoint of its account that
/// subscribes to its type and with its request's Idempotency-Key, in one statement and so in
/// one transaction; tells, event by event, what became of it. An event naming an application
/// its account lacks is not written, nor one whose key is kept already. The events take their
/// seqs in the group's order: one round trip for the whole group (two when the filters it
/// went by had changed), besides reading the snapshots of the applications the events are
/// about.
async fn write(pool: &PgPool, kept: &mut Kept, group: &[Waiting], known: &KnownFilters) -> StoreResult<Vec<Outcome>> {
    let n = group.len();
    let (mut accounts, mut ids, mut types) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut applications, mut times, mut bodies) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut scopes, mut keys, mut fingerprints) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut statuses, mut locations, mut answers) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for Waiting {
        account, event, key, ..
    } in group
    {
        accounts.push(*account);
        ids.push(event.id.as_str());
        types.push(event.event_type.as_str());
        applications.push(event.application_id);
        times.push(event.created_at);
        bodies.push(event.body.as_str());
        scopes.push(key.as_ref().map(|k| k.key.scope.as_str()));
        keys.push(key.as_ref().map(|k| k.key.key.as_str()));
        fingerprints.push(key.as_ref().map(|k| k.key.fingerprint.as_str()));
        statuses.push(key.as_ref().map(|k| i16::try_from(k.answer.status).unwrap_or(i16::MAX)));
        locations.push(key.as_ref().and_then(|k| k.answer.location.as_deref()));
        answers.push(key.as_ref().map(|k| k.answer.body.as_str()));
    }
    let mut group_accounts = accounts.clone();
    group_accounts.sort_unstable();
    group_accounts.dedup();
    // The applications are read just before the statement that writes the events, on its
    // connection. An explicit transaction around both would add two round trips (BEGIN,
    // COMMIT) and no guarantee: under READ COMMITTED each statement sees what was committed
    // when it began, in a transaction or not, so an application changed between the read and
    // the write is missed either way, as if the event had been published a moment before the
    // change. The write itself is one statement, and so atomic; the filters it goes by are
    // checked by that statement itself.
    let mut conn = kept.take(pool).await?;
    let snapshots = snapshots(&mut conn, group).await?;
    let mut filters = known.of(&group_accounts);
    for _ in 0..ATTEMPTS {
        let (left_out_events, left_out_endpoints) = left_out(group, &filters);
        let mut filter_columns = (Vec::new(), Vec::new(), Vec::new());
        for (account, seq, filter) in &filters {
            filter_columns.0.push(*account);
            filter_columns.1.push(*seq);
            filter_columns.2.push(filter.as_str());
        }
        let rows: Vec<Answer> = sqlx::query_as(PUBLISH_GROUP)
            .bind(&accounts)
            .bind(&ids)
            .bind(&types)
            .bind(&applications)
            .bind(&times)
            .bind(&bodies)
            .bind(&scopes)
            .bind(&keys)
            .bind(&fingerprints)
            .bind(&statuses)
            .bind(&locations)
            .bind(&answers)
            .bind(KEY_LIFETIME)
            .bind(&left_out_events)
            .bind(&left_out_endpoints)
            .bind(&snapshots)
            .bind(&filter_columns.0)
            .bind(&filter_columns.1)
            .bind(&filter_columns.2)
            .fetch_all(&mut *conn)
            .await?;
        let mut outcomes = vec![Outcome::UnknownApplication; n];
        let (mut found, mut stale) = (Vec::new(), false);
        for row in rows {
            match row {
                (kind, Some(position), Some(keyed), ..) if kind == "written" => {
                    outcomes[(position - 1) as usize] = if keyed { Outcome::Written } else { Outcome::KeyTaken };
                }
                (kind, _, _, Some(account), Some(seq), Some(filter)) if kind == "filter" => {
                    found.push((account, seq, filter));
                }
                (kind, ..) => stale |= kind == "stale",
            }
        }
        known.found(&group_accounts, &found);
        if !stale {
            kept.keep(conn);
            return Ok(outcomes);
        }
        filters = found;
    }
    Err(StoreError::Unavailable(
        "the endpoints' filters kept changing while the events were written; nothing was written, try again".into(),
    ))
}

/// Each event's application as the group's transaction sees it, for the events about one
/// (`None` for an application the account lacks: the statement refuses that event).
async fn snapshots(conn: &mut PgConnection, group: &[Waiting]) -> StoreResult<Vec<Option<String>>> {
    let mut snapshots = Vec::with_capacity(group.len());
    for waiting in group {
        let snapshot = match waiting.event.application_id {
            None => None,
            Some(id) => match application_on(conn, waiting.account, id).await {
                Ok(application) => Some(codec::snapshot(&application)),
                Err(StoreError::NotFound(_)) => None,
                Err(e) => return Err(e),
            },
        };
        snapshots.push(snapshot);
    }
    Ok(snapshots)
}

/// The (event id, endpoint seq) pairs of a group whose endpoint's filter (of `filters`)
/// leaves the event out, as two columns.
fn left_out(group: &[Waiting], filters: &[Filtered]) -> (Vec<String>, Vec<i64>) {
    let (mut events, mut endpoints) = (Vec::new(), Vec::new());
    if filters.is_empty() {
        return (events, endpoints);
    }
    for waiting in group {
        let of_account: Vec<(i64, String)> = filters
            .iter()
            .filter(|(account, _, _)| *account == waiting.account)
            .map(|(_, seq, filter)| (*seq, filter.clone()))
            .collect();
        for seq in filters::left_out(&waiting.event.body, &of_account) {
            events.push(waiting.event.id.clone());
            endpoints.push(seq);
        }
    }
    (events, endpoints)
}
