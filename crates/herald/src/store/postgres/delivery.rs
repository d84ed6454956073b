//! Deliveries and the call history in PostgreSQL: recording calls in batches, reading the
//! history, and the endpoint operations that make work due (claiming is in `claim`).

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder, Row};

use super::keys::commit_once;
use super::mail;
use super::order::{Listed, in_id_order_from_start};
use super::webhooks::{endpoint_on, insert_event};
use super::{PostgresStore, column_text, decode_word, fetch_limit, found};
use crate::clock::Micros;
use crate::domain::delivery::{Backlog, CallRecord, Task, TaskFilter};
use crate::domain::endpoint::{Endpoint, Health, Ordering};
use crate::domain::event::{Event, EventDraft, EventStamp};
use crate::domain::operational::{FailureNotices, News, resumed_by_hand};
use crate::domain::stats;
use crate::domain::stats::Counter;
use crate::store::codec::{FAILED, SentBody, TASK_COLUMNS, counters, replayed_types};
use crate::store::fanout::Fanout;
use crate::store::filters;
use crate::store::recording::{self, EndpointKey, Found, Healths};
use crate::store::rows::task_from;
use crate::store::{CallRules, Claim, ClaimRequest, DeliveryStore, Once, Page, StoreError, StoreResult};

fn health_from(row: &PgRow) -> StoreResult<Health> {
    Ok(Health {
        state: decode_word("state", row.try_get(1)?)?,
        suspended_until: row.try_get(2)?,
        consecutive_failures: row.try_get::<i64, _>(3)? as u32,
        failing_since: row.try_get(4)?,
        suspensions: row.try_get::<i64, _>(5)? as u32,
    })
}

/// Whether reading health locks the endpoints' rows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lock {
    None,
    ForUpdate,
}

/// Reads the health of `endpoints` (seq, account), locking their rows in seq order if asked.
async fn read_healths(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    endpoints: &BTreeSet<(i64, i64)>,
    lock: Lock,
) -> StoreResult<Healths> {
    let (seqs, accounts): (Vec<i64>, Vec<i64>) = endpoints.iter().copied().unzip();
    let locking = if lock == Lock::ForUpdate {
        "FOR NO KEY UPDATE"
    } else {
        ""
    };
    let rows = sqlx::query(&format!(
        "SELECT seq, state, suspended_until, consecutive_failures, failing_since, suspensions, account_id
         FROM endpoints WHERE (seq, account_id) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))
         ORDER BY seq {locking}"
    ))
    .bind(&seqs)
    .bind(&accounts)
    .fetch_all(&mut **tx)
    .await?;
    let mut healths = Healths::new();
    for row in &rows {
        let health = health_from(row)?;
        healths.insert((row.try_get(0)?, row.try_get(6)?), (health, health));
    }
    Ok(healths)
}

/// Counts `failed` deliveries of an endpoint (locked already) that used up their retries at
/// `now`; returns how many to tell of now, if a `DeliveryFailed` is due.
async fn note_failures(
    conn: &mut PgConnection,
    (seq, account): EndpointKey,
    failed: u32,
    now: Micros,
) -> StoreResult<Option<u32>> {
    let row = sqlx::query("SELECT failures_told_at, failures_untold FROM endpoints WHERE account_id = $1 AND seq = $2")
        .bind(account)
        .bind(seq)
        .fetch_one(&mut *conn)
        .await?;
    let notices = FailureNotices {
        last_told: row.try_get(0)?,
        untold: row.try_get::<i64, _>(1)? as u32,
    };
    let (tell, notices) = notices.after(failed, now);
    sqlx::query("UPDATE endpoints SET failures_told_at = $1, failures_untold = $2 WHERE account_id = $3 AND seq = $4")
        .bind(notices.last_told)
        .bind(i64::from(notices.untold))
        .bind(account)
        .bind(seq)
        .execute(conn)
        .await?;
    Ok(tell)
}

/// The task a recorded call became (none if its account was deleted meanwhile).
async fn task_of(conn: &mut PgConnection, call: &CallRecord) -> StoreResult<Option<i64>> {
    let c = &call.attempt.claimed;
    let id = sqlx::query_scalar(
        "SELECT id FROM tasks WHERE account_id = $1 AND endpoint_id = $2 AND delivery_id = $3 AND attempt = $4
         ORDER BY id DESC LIMIT 1",
    )
    .bind(c.account_id)
    .bind(&c.endpoint_id)
    .bind(c.delivery_id)
    .bind(i64::from(c.attempt))
    .fetch_optional(conn)
    .await?;
    Ok(id)
}

/// A batch of calls as columns, so that each write of `record_calls` is one statement.
#[derive(Default)]
struct Columns {
    account: Vec<i64>,
    delivery: Vec<i64>,
    endpoint: Vec<String>,
    event: Vec<String>,
    event_type: Vec<String>,
    application: Vec<Option<i64>>,
    attempt: Vec<i64>,
    url: Vec<String>,
    started_at: Vec<i64>,
    duration_ms: Vec<i64>,
    status: Vec<i64>,
    body: Vec<String>,
    error: Vec<Option<String>>,
    headers: Vec<String>,
    state: Vec<&'static str>,
    next_at: Vec<Option<i64>>,
    lease: Vec<i64>,
    endpoint_seq: Vec<i64>,
    version: Vec<&'static str>,
}

impl Columns {
    fn of(calls: &[CallRecord]) -> Columns {
        let mut columns = Columns::default();
        // In delivery order, so that concurrent recorders lock rows in the same order.
        let mut sorted: Vec<&CallRecord> = calls.iter().collect();
        sorted.sort_by_key(|call| (call.attempt.claimed.account_id, call.attempt.claimed.delivery_id));
        for CallRecord { attempt: call, next } in sorted {
            let c = &call.claimed;
            columns.account.push(c.account_id);
            columns.delivery.push(c.delivery_id);
            columns.endpoint.push(c.endpoint_id.clone());
            columns.event.push(c.event_id.clone());
            columns.event_type.push(c.event_type.clone());
            columns.application.push(c.application_id);
            columns.attempt.push(i64::from(c.attempt));
            columns.url.push(c.url.clone());
            columns.started_at.push(call.started_at);
            columns.duration_ms.push(call.duration_ms);
            columns.status.push(i64::from(call.response_status));
            columns.body.push(call.response_body.clone());
            columns.error.push(call.error());
            columns.headers.push(call.request_headers.clone());
            let (state, next_at) = next.stored();
            columns.state.push(state.as_str());
            columns.next_at.push(next_at);
            columns.lease.push(c.leased_until);
            columns.endpoint_seq.push(c.endpoint_seq);
            columns.version.push(c.version.as_str());
        }
        columns
    }
}

/// Makes the open transaction's commit return before its WAL is on disk: for the dispatcher's
/// own writes (leases, and the records of calls made). A crash of the database may undo the
/// last of them, which costs a call made again, as a node killed between a call and its
/// record does; a later commit that does wait (every API write) flushes them with it, since
/// the WAL is written in order.
pub(super) const UNSYNCED: &str = "SET LOCAL synchronous_commit = off";

/// The shards of an endpoint's counters: a batch adds to one of them, chosen at random
/// (migration 0016), so that two nodes' recorders seldom update the same row.
const SHARDS: u8 = 8;

/// A batch of calls as additions to their endpoints' counters, as columns sorted (account,
/// endpoint, hour, counter), so that concurrent recorders lock the rows in one order.
#[derive(Default)]
struct Tallies {
    account: Vec<i64>,
    endpoint_seq: Vec<i64>,
    hour: Vec<i64>,
    kind: Vec<&'static str>,
    key: Vec<String>,
    count: Vec<i64>,
}

impl Tallies {
    fn of(calls: &[CallRecord]) -> Tallies {
        let mut columns = Tallies::default();
        for t in stats::tallies(calls) {
            let (kind, key) = t.counter.stored();
            columns.account.push(t.account_id);
            columns.endpoint_seq.push(t.endpoint_seq);
            columns.hour.push(t.hour);
            columns.kind.push(kind);
            columns.key.push(key);
            columns.count.push(t.count);
        }
        columns
    }
}

/// One task with the request that was sent, on any connection.
async fn task_on(conn: &mut PgConnection, account: i64, id: i64) -> StoreResult<Task> {
    let row = sqlx::query(&format!(
        "SELECT {TASK_COLUMNS}, t.request_headers, coalesce(ev.body, ''), t.version, ev.snapshot, ev.created_at
         FROM tasks t LEFT JOIN events ev ON ev.account_id = t.account_id AND ev.id = t.event_id
         WHERE t.account_id = $1 AND t.id = $2"
    ))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    let row = found(row, "task")?;
    let mut task = task_from(&row)?;
    let sent = SentBody {
        body: row.try_get(14)?,
        version: row.try_get(15)?,
        snapshot: row.try_get(16)?,
        event_at: row.try_get(17)?,
    };
    task.request = Some((row.try_get(13)?, sent.decode()?));
    Ok(task)
}

#[async_trait]
impl DeliveryStore for PostgresStore {
    fn new_work(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    async fn forget_counters(&self, before: Micros, batch: u32) -> StoreResult<u64> {
        let gone = sqlx::query(
            "DELETE FROM endpoint_stats WHERE (account_id, endpoint_seq, hour, kind, key) IN (
                 SELECT account_id, endpoint_seq, hour, kind, key FROM endpoint_stats WHERE hour < $1 LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(batch))
        .execute(&self.pool)
        .await?;
        Ok(gone.rows_affected())
    }

    async fn endpoint_counters(
        &self,
        account: i64,
        endpoint_id: &str,
        since: Micros,
    ) -> StoreResult<Vec<(Micros, Counter, i64)>> {
        let rows: Vec<(Micros, String, String, i64)> = sqlx::query_as(
            "SELECT s.hour, s.kind, s.key, sum(s.count)::bigint FROM endpoints e
             JOIN endpoint_stats s ON s.account_id = e.account_id AND s.endpoint_seq = e.seq AND s.hour >= $3
             WHERE e.account_id = $1 AND e.id = $2
             GROUP BY s.hour, s.kind, s.key",
        )
        .bind(account)
        .bind(endpoint_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            // No counters yet, or no such endpoint: only the latter is an error.
            let known: Option<i64> = sqlx::query_scalar("SELECT seq FROM endpoints WHERE account_id = $1 AND id = $2")
                .bind(account)
                .bind(endpoint_id)
                .fetch_optional(&self.pool)
                .await?;
            found(known, "endpoint")?;
        }
        Ok(counters(rows))
    }

    async fn claim_due(&self, request: &ClaimRequest) -> StoreResult<Claim> {
        super::claim::claim(&self.pool, &mut *self.claims.lock().await, request).await
    }

    async fn record_calls(&self, calls: Arc<[CallRecord]>, rules: Arc<dyn CallRules>) -> StoreResult<()> {
        // The tasks' ids must become visible in order (see `order`): the lock is taken with
        // the transaction's start, in the same round trip.
        let begin = in_id_order_from_start(Listed::Tasks, 0);
        // The recorder writes one batch after another, on the connection it keeps.
        let mut kept = self.records.lock().await;
        let mut conn = kept.take(&self.pool).await?;
        let mut tx = conn.begin_with(format!("{begin}; {UNSYNCED}")).await?;
        // Each endpoint is named with its account, as every query of account data is.
        let endpoints: BTreeSet<(i64, i64)> = calls
            .iter()
            .map(|c| (c.attempt.claimed.endpoint_seq, c.attempt.claimed.account_id))
            .collect();
        // Most calls change nothing (a healthy endpoint answering 200), so health is read
        // without a lock, which would wait for claims holding the endpoint. Only endpoints
        // whose health changes, or whose deliveries failed, are locked (in seq order, as every
        // recorder does) and read again, so that two nodes recording calls of one endpoint
        // apply the rule one after the other, and one of them only tells each piece of news.
        let mut healths = read_healths(&mut tx, &endpoints, Lock::None).await?;
        recording::apply(&calls, &mut healths, rules.as_ref());
        let failed = recording::failed_deliveries(&calls);
        let changing: BTreeSet<EndpointKey> = healths
            .iter()
            .filter(|(_, (before, after))| before != after)
            .map(|(key, _)| *key)
            .chain(failed.keys().copied())
            .collect();
        let mut news = Vec::new();
        if !changing.is_empty() {
            let mut locked = read_healths(&mut tx, &changing, Lock::ForUpdate).await?;
            news = recording::apply(&calls, &mut locked, rules.as_ref());
            healths.extend(locked);
        }
        let c = Columns::of(&calls);
        let tallies = Tallies::of(&calls);
        let shard = (crate::ids::unit_random() * f64::from(SHARDS)) as i16;
        // One statement: each call becomes a task, unless its account was deleted meanwhile;
        // a delivery changes only while it still holds this call's lease: if the lease ran
        // out and another node took the delivery, that node's call decides what becomes of it;
        // and the calls are added to their endpoints' counters (an endpoint deleted meanwhile
        // counts nothing).
        sqlx::query(
            "WITH call AS (
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                     $7::bigint[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[], $12::text[], $13::text[],
                     $14::text[], $15::text[], $16::bigint[], $17::bigint[], $18::bigint[], $19::text[])
                     WITH ORDINALITY
                     AS c (account_id, delivery_id, endpoint_id, event_id, event_type, application_id, attempt, url,
                         created_at, duration_ms, response_status, response_body, error, request_headers,
                         state, next_at, lease, endpoint_seq, version, position)),
             task AS (
                 INSERT INTO tasks (account_id, delivery_id, endpoint_id, event_id, event_type, application_id,
                     attempt, url, created_at, duration_ms, response_status, response_body, error, request_headers,
                     version)
                 SELECT account_id, delivery_id, endpoint_id, event_id, event_type, application_id, attempt, url,
                     created_at, duration_ms, response_status, response_body, error, request_headers, version
                 FROM call WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.id = call.account_id)
                 ORDER BY position),
             tally AS (
                 INSERT INTO endpoint_stats (account_id, endpoint_seq, hour, kind, key, count, shard)
                 SELECT t.account_id, t.endpoint_seq, t.hour, t.kind, t.key, t.count, $26
                 FROM unnest($20::bigint[], $21::bigint[], $22::bigint[], $23::text[], $24::text[], $25::bigint[])
                     WITH ORDINALITY AS t(account_id, endpoint_seq, hour, kind, key, count, position)
                 WHERE EXISTS (SELECT 1 FROM endpoints e WHERE e.account_id = t.account_id AND e.seq = t.endpoint_seq)
                 ORDER BY position
                 ON CONFLICT (account_id, endpoint_seq, hour, kind, key, shard)
                 DO UPDATE SET count = endpoint_stats.count + excluded.count),
             -- Each released lease carries its call's decision, so that the update below joins
             -- nothing but the deliveries (a join of two CTEs is a nested loop: quadratic in
             -- the batch). The endpoint makes every index of the leases an exact match.
             released AS (
                 DELETE FROM leases l USING call
                 WHERE l.account_id = call.account_id AND l.delivery_id = call.delivery_id
                   AND l.endpoint_seq = call.endpoint_seq AND l.until = call.lease
                 RETURNING l.account_id, l.delivery_id, call.state, call.attempt, call.next_at)
             UPDATE deliveries d SET state = released.state, attempts = released.attempt,
                 next_at = coalesce(released.next_at, d.next_at)
             FROM released
             WHERE d.account_id = released.account_id AND d.id = released.delivery_id",
        )
        .bind(&c.account)
        .bind(&c.delivery)
        .bind(&c.endpoint)
        .bind(&c.event)
        .bind(&c.event_type)
        .bind(&c.application)
        .bind(&c.attempt)
        .bind(&c.url)
        .bind(&c.started_at)
        .bind(&c.duration_ms)
        .bind(&c.status)
        .bind(&c.body)
        .bind(&c.error)
        .bind(&c.headers)
        .bind(&c.state)
        .bind(&c.next_at)
        .bind(&c.lease)
        .bind(&c.endpoint_seq)
        .bind(&c.version)
        .bind(&tallies.account)
        .bind(&tallies.endpoint_seq)
        .bind(&tallies.hour)
        .bind(&tallies.kind)
        .bind(&tallies.key)
        .bind(&tallies.count)
        .bind(shard)
        .execute(&mut *tx)
        .await?;
        for (&(seq, account), (before, health)) in &healths {
            if before != health {
                sqlx::query(
                    "UPDATE endpoints SET state = $1, suspended_until = $2, consecutive_failures = $3,
                         failing_since = $4, suspensions = $5 WHERE account_id = $6 AND seq = $7",
                )
                .bind(column_text(&health.state))
                .bind(health.suspended_until)
                .bind(i64::from(health.consecutive_failures))
                .bind(health.failing_since)
                .bind(i64::from(health.suspensions))
                .bind(account)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
            }
        }
        for (endpoint, (count, call)) in failed {
            let Some(&(_, health)) = healths.get(&endpoint) else {
                continue;
            };
            let now = calls[call].attempt.ended_at();
            if let Some(count) = note_failures(&mut tx, endpoint, count, now).await? {
                let news_told = News::DeliveriesFailed(count);
                news.push(Found {
                    endpoint,
                    news: news_told,
                    call,
                    health,
                });
            }
        }
        for found in news {
            let (seq, account) = found.endpoint;
            let call = &calls[found.call];
            let task_id = task_of(&mut tx, call).await?;
            let event = rules.tell(found.news, call, &found.health, task_id);
            insert_event(&mut tx, account, &event, Fanout::About(seq)).await?;
            if let Some(mail) = found.mail(&event, task_id, &*rules) {
                mail::queue(&mut tx, &mail).await?;
            }
        }
        tx.commit().await?;
        kept.keep(conn);
        Ok(())
    }

    async fn tasks(&self, account: i64, filter: &TaskFilter, page: Page) -> StoreResult<Vec<Task>> {
        // Only the filters given become conditions, so that the planner can use the index of
        // the endpoint or application filter and seek straight to the page's keyset.
        let mut query: QueryBuilder<Postgres> =
            QueryBuilder::new(format!("SELECT {TASK_COLUMNS} FROM tasks t WHERE t.account_id = "));
        query.push_bind(account);
        if let Some(event) = &filter.event {
            query.push(" AND t.event_type = ").push_bind(event.clone());
        }
        if let Some(status) = filter.response_status {
            query.push(" AND t.response_status = ").push_bind(i64::from(status));
            if !(200..300).contains(&status) {
                // Implied by the status asked, and written as the partial index of failed
                // calls is, so that even a generic plan uses it (see `FAILED`).
                query.push(" AND ").push(FAILED);
            }
        }
        if let Some(application) = filter.application {
            query.push(" AND t.application_id = ").push_bind(application);
        }
        if let Some(endpoint) = &filter.endpoint {
            query.push(" AND t.endpoint_id = ").push_bind(endpoint.clone());
        }
        if let Some(from) = filter.from {
            query.push(" AND t.created_at >= ").push_bind(from);
        }
        if let Some(to) = filter.to {
            query.push(" AND t.created_at < ").push_bind(to);
        }
        if let Some(since) = page.since {
            query.push(" AND t.id > ").push_bind(since);
        }
        if let Some(before) = page.before {
            query.push(" AND t.id < ").push_bind(before);
        }
        query.push(" ORDER BY t.id DESC LIMIT ").push_bind(fetch_limit(page));
        let rows = query.build().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(task_from).collect::<sqlx::Result<_>>()?)
    }

    async fn task(&self, account: i64, id: i64) -> StoreResult<Task> {
        let mut conn = self.pool.acquire().await?;
        task_on(&mut conn, account, id).await
    }

    async fn retry_task(&self, account: i64, id: i64, now: Micros, once: Option<Once<Task>>) -> StoreResult<Task> {
        let mut tx = self.pool.begin().await?;
        let delivery: Option<i64> =
            sqlx::query_scalar("SELECT delivery_id FROM tasks WHERE account_id = $1 AND id = $2")
                .bind(account)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let delivery = found(delivery, "task")?;
        // Locks in the order every writer of a delivery takes them, so that none waits for
        // another in turn. The endpoint first, shared, as every write of a delivery to it holds
        // it: a change of its ordering waits for this retry, or this retry reads the new one
        // (migration 0022). Then the lease, as a recorder deletes it before it updates the
        // delivery: a record of the delivery's last call that holds it is waited for (taken
        // the other way round, the two deadlocked). Then the delivery.
        let fifo: Option<bool> = sqlx::query_scalar(
            "SELECT e.ordering = 'fifo' FROM deliveries d
             JOIN endpoints e ON e.account_id = d.account_id AND e.seq = d.endpoint_seq
             WHERE d.account_id = $1 AND d.id = $2 FOR KEY SHARE OF e",
        )
        .bind(account)
        .bind(delivery)
        .fetch_optional(&mut *tx)
        .await?;
        // A lease that ran out (its node died) goes; one still running means a call is in flight.
        let lease: Option<Micros> =
            sqlx::query_scalar("DELETE FROM leases WHERE account_id = $1 AND delivery_id = $2 RETURNING until")
                .bind(account)
                .bind(delivery)
                .fetch_optional(&mut *tx)
                .await?;
        if lease.is_some_and(|until| until > now) {
            return Err(StoreError::Conflict(
                "a call for this delivery is in flight; retry once it ends".into(),
            ));
        }
        let exists = sqlx::query("SELECT 1 FROM deliveries WHERE account_id = $1 AND id = $2 FOR UPDATE")
            .bind(account)
            .bind(delivery)
            .fetch_optional(&mut *tx)
            .await?;
        let (Some(fifo), Some(_)) = (fifo, exists) else {
            return Err(StoreError::Conflict(
                "this task's delivery no longer exists (its endpoint was deleted or it was purged)".into(),
            ));
        };
        sqlx::query(
            "UPDATE deliveries SET state = 'pending', next_at = $1, fifo = $4 WHERE account_id = $2 AND id = $3",
        )
        .bind(now)
        .bind(account)
        .bind(delivery)
        .bind(fifo)
        .execute(&mut *tx)
        .await?;
        let task = task_on(&mut tx, account, id).await?;
        commit_once(tx, once, &task).await?;
        Ok(task)
    }

    async fn resume_endpoint(
        &self,
        account: i64,
        id: &str,
        stamp: EventStamp,
        once: Option<Once<Endpoint>>,
    ) -> StoreResult<Endpoint> {
        let mut tx = self.pool.begin().await?;
        // The state it had, read under the row's lock: of two nodes resuming it at once, one
        // only finds it resting and tells.
        let before: Option<String> = sqlx::query_scalar(
            "WITH before AS (
                 SELECT state FROM endpoints WHERE account_id = $2 AND id = $3 FOR NO KEY UPDATE)
             UPDATE endpoints SET state = 'active', suspended_until = NULL, consecutive_failures = 0,
                 failing_since = NULL, suspensions = 0, updated_at = $1
             FROM before WHERE account_id = $2 AND id = $3
             RETURNING before.state",
        )
        .bind(stamp.at)
        .bind(account)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let before = decode_word("state", found(before, "endpoint")?)?;
        let endpoint = endpoint_on(&mut tx, account, id).await?;
        if let Some(event) = resumed_by_hand(before, &endpoint, stamp) {
            insert_event(&mut tx, account, &event, Fanout::About(endpoint.seq)).await?;
        }
        commit_once(tx, once, &endpoint).await?;
        Ok(endpoint)
    }

    async fn replay(
        &self,
        account: i64,
        endpoint_id: &str,
        since: Micros,
        now: Micros,
        once: Option<Once<u64>>,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let endpoint = endpoint_on(&mut tx, account, endpoint_id).await?;
        // Held until the commit, so that the endpoint is not deleted under the deliveries
        // written to it (migration 0020); one deleted since it was read is not found.
        // Its ordering is read from the locked row: a change of it committed meanwhile is seen.
        let held: Option<String> =
            sqlx::query_scalar("SELECT ordering FROM endpoints WHERE account_id = $1 AND seq = $2 FOR KEY SHARE")
                .bind(account)
                .bind(endpoint.seq)
                .fetch_optional(&mut *tx)
                .await?;
        let fifo = found(held, "endpoint")? == column_text(&Ordering::Fifo);
        let events = serde_json::to_string(&endpoint.events).expect("event names serialise");
        let replayed = format!(
            "FROM events ev WHERE ev.account_id = $1 AND ev.created_at >= $2 AND {}
               AND $3::jsonb ?| ARRAY['*', ev.event_type]",
            replayed_types()
        );
        // With a filter, the events it lets through, by seq.
        let chosen = match &endpoint.filter {
            None => None,
            Some(filter) => {
                let candidates: Vec<(i64, String)> = sqlx::query_as(&format!("SELECT ev.seq, ev.body {replayed}"))
                    .bind(account)
                    .bind(since)
                    .bind(&events)
                    .fetch_all(&mut *tx)
                    .await?;
                Some(filters::let_through(&filter.to_string(), candidates))
            }
        };
        let sql = format!(
            "INSERT INTO deliveries (account_id, endpoint_seq, event_seq, application_id, state, next_at, created_at,
                                     fifo)
             SELECT $1, $4, ev.seq, ev.application_id, 'pending', $5, $5, $7 {replayed}
               AND ($6::bigint[] IS NULL OR ev.seq = ANY($6))
             ORDER BY ev.seq"
        );
        let count = sqlx::query(&sql)
            .bind(account)
            .bind(since)
            .bind(events)
            .bind(endpoint.seq)
            .bind(now)
            .bind(chosen)
            .bind(fifo)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        commit_once(tx, once, &count).await?;
        Ok(count)
    }

    async fn send_test(
        &self,
        account: i64,
        endpoint_id: &str,
        draft: EventDraft,
        stamp: EventStamp,
        once: Option<Once<Event>>,
    ) -> StoreResult<Event> {
        let mut tx = self.pool.begin().await?;
        let endpoint = endpoint_on(&mut tx, account, endpoint_id).await?;
        let event = draft.stamp(stamp);
        insert_event(&mut tx, account, &event, Fanout::Only(endpoint.seq)).await?;
        commit_once(tx, once, &event).await?;
        Ok(event)
    }

    async fn purge(&self, before: Micros, batch: u32) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let tasks = sqlx::query(
            "DELETE FROM tasks WHERE (account_id, id) IN (
                 SELECT account_id, id FROM tasks WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(batch))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // Deliveries that are done go with their event (a cascade written out: migration 0007).
        let events: i64 = sqlx::query_scalar(
            "WITH gone AS (
                 DELETE FROM events WHERE (account_id, seq) IN (
                     SELECT e.account_id, e.seq FROM events e WHERE e.created_at < $1
                       AND NOT EXISTS (SELECT 1 FROM deliveries d
                                       WHERE d.account_id = e.account_id AND d.event_seq = e.seq AND d.state = 'pending')
                     ORDER BY e.created_at LIMIT $2)
                 RETURNING account_id, seq),
             done AS (
                 DELETE FROM deliveries d USING gone WHERE d.account_id = gone.account_id AND d.event_seq = gone.seq)
             SELECT count(*) FROM gone",
        )
        .bind(before)
        .bind(i64::from(batch))
        .fetch_one(&mut *tx)
        .await?;
        let emails = sqlx::query(
            "DELETE FROM emails WHERE id IN (
                 SELECT id FROM emails WHERE created_at < $1 AND (sent_at IS NOT NULL OR given_up_at IS NOT NULL)
                 LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(batch))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(tasks + events as u64 + emails)
    }

    async fn backlog(&self, now: Micros) -> StoreResult<Backlog> {
        // The oldest due delivery is looked up endpoint by endpoint (an index probe each), so
        // that a resting endpoint's backlog, however large, is never scanned.
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending'),
                    (SELECT count(*) FROM endpoints WHERE state = 'suspended'),
                    (SELECT count(*) FROM endpoints WHERE state = 'disabled'),
                    (SELECT min((SELECT d.next_at FROM deliveries d
                                 WHERE d.endpoint_seq = e.seq AND d.state = 'pending' AND d.next_at <= $1
                                   AND NOT EXISTS (SELECT 1 FROM leases l
                                                   WHERE l.account_id = d.account_id AND l.delivery_id = d.id
                                                     AND l.until > $1)
                                 ORDER BY d.next_at LIMIT 1))
                     FROM endpoints e WHERE e.state = 'active')",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(Backlog {
            deliveries_waiting: row.try_get(0)?,
            endpoints_suspended: row.try_get(1)?,
            endpoints_disabled: row.try_get(2)?,
            oldest_due: row.try_get(3)?,
        })
    }
}
