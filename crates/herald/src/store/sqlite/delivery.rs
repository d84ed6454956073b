//! Deliveries and the call history in SQLite: recording calls in batches, reading the
//! history, and the endpoint operations that make work due (claiming is in `claim`).

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::mail;
use super::webhooks::{endpoint_on, insert_event};
use super::{SqliteStore, column_text, decode_word, fetch_limit, found};
use crate::clock::Micros;
use crate::domain::delivery::{Backlog, CallRecord, Task, TaskFilter};
use crate::domain::endpoint::{Endpoint, EndpointState, Health, Ordering};
use crate::domain::event::{Event, EventDraft, EventStamp};
use crate::domain::operational::{FailureNotices, News, resumed_by_hand};
use crate::domain::stats;
use crate::domain::stats::Counter;
use crate::store::codec::{FAILED, SentBody, TASK_COLUMNS, counters, replayed_types};
use crate::store::fanout::Fanout;
use crate::store::filters;
use crate::store::recording::{self, Found, Healths};
use crate::store::rows::task_from;
use crate::store::{CallRules, Claim, ClaimRequest, DeliveryStore, Once, Page, StoreError, StoreResult};

fn health_from(row: &Row) -> rusqlite::Result<(String, Health)> {
    let state: String = row.get(0)?;
    let health = Health {
        state: EndpointState::Active,
        suspended_until: row.get(1)?,
        consecutive_failures: row.get::<_, i64>(2)? as u32,
        failing_since: row.get(3)?,
        suspensions: row.get::<_, i64>(4)? as u32,
    };
    Ok((state, health))
}

/// The health of every endpoint the calls went to (a deleted one is left out).
fn read_healths(conn: &Connection, calls: &[CallRecord]) -> StoreResult<Healths> {
    let mut read = conn.prepare_cached(
        "SELECT state, suspended_until, consecutive_failures, failing_since, suspensions
         FROM endpoints WHERE seq = ?",
    )?;
    let mut healths = Healths::new();
    for call in calls {
        let endpoint = recording::endpoint_of(call);
        if healths.contains_key(&endpoint) {
            continue;
        }
        if let Some((state, mut health)) = read.query_row([endpoint.0], health_from).optional()? {
            health.state = decode_word("state", state)?;
            healths.insert(endpoint, (health, health));
        }
    }
    Ok(healths)
}

/// Counts `failed` deliveries of an endpoint that used up their retries at `now`; returns
/// how many to tell of now, if a `DeliveryFailed` is due.
fn note_failures(conn: &Connection, seq: i64, failed: u32, now: Micros) -> StoreResult<Option<u32>> {
    let notices = conn
        .prepare_cached("SELECT failures_told_at, failures_untold FROM endpoints WHERE seq = ?")?
        .query_row([seq], |r| {
            Ok(FailureNotices {
                last_told: r.get(0)?,
                untold: r.get::<_, i64>(1)? as u32,
            })
        })?;
    let (tell, notices) = notices.after(failed, now);
    conn.prepare_cached("UPDATE endpoints SET failures_told_at = ?, failures_untold = ? WHERE seq = ?")?
        .execute(params![notices.last_told, i64::from(notices.untold), seq])?;
    Ok(tell)
}

/// One task with the request that was sent, on any connection.
fn task_on(conn: &Connection, account: i64, id: i64) -> StoreResult<Task> {
    let sql = format!(
        "SELECT {TASK_COLUMNS}, t.request_headers, coalesce(ev.body, ''), t.version, ev.snapshot, ev.created_at
         FROM tasks t LEFT JOIN events ev ON ev.id = t.event_id WHERE t.account_id = ? AND t.id = ?"
    );
    let row = conn
        .prepare_cached(&sql)?
        .query_row([account, id], |r| {
            let sent = SentBody {
                body: r.get(14)?,
                version: r.get(15)?,
                snapshot: r.get(16)?,
                event_at: r.get(17)?,
            };
            Ok((task_from(r)?, r.get::<_, String>(13)?, sent))
        })
        .optional()?;
    let (mut task, headers, sent) = found(row, "task")?;
    task.request = Some((headers, sent.decode()?));
    Ok(task)
}

/// A call's task, unless its account is gone. Its id is read back as the row id: `RETURNING`
/// would build a temporary table per call.
pub(super) const INSERT_TASK: &str =
    "INSERT INTO tasks (account_id, delivery_id, endpoint_id, event_id, event_type, application_id, attempt, url,
         created_at, duration_ms, response_status, response_body, error, request_headers, version)
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15
     WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?1)";

/// A delivery's state after a call.
pub(super) const RECORD_DELIVERY: &str =
    "UPDATE deliveries SET state = ?, attempts = ?, next_at = coalesce(?, next_at) WHERE id = ?";

#[async_trait]
impl DeliveryStore for SqliteStore {
    fn new_work(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    async fn forget_counters(&self, before: Micros, batch: u32) -> StoreResult<u64> {
        self.db
            .write(move |conn| {
                let gone = conn.execute(
                    "DELETE FROM endpoint_stats WHERE (endpoint_seq, hour, kind, key) IN (
                         SELECT endpoint_seq, hour, kind, key FROM endpoint_stats WHERE hour < ? LIMIT ?)",
                    params![before, i64::from(batch)],
                )?;
                Ok(gone as u64)
            })
            .await
    }

    async fn endpoint_counters(
        &self,
        account: i64,
        endpoint_id: &str,
        since: Micros,
    ) -> StoreResult<Vec<(Micros, Counter, i64)>> {
        let endpoint_id = endpoint_id.to_owned();
        self.db
            .read(move |conn| {
                let seq: Option<i64> = conn
                    .prepare_cached("SELECT seq FROM endpoints WHERE account_id = ? AND id = ?")?
                    .query_row(params![account, endpoint_id], |r| r.get(0))
                    .optional()?;
                let seq = found(seq, "endpoint")?;
                let rows = conn
                    .prepare_cached(
                        "SELECT hour, kind, key, count FROM endpoint_stats
                         WHERE endpoint_seq = ? AND account_id = ? AND hour >= ?",
                    )?
                    .query_map(params![seq, account, since], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(counters(rows))
            })
            .await
    }

    async fn claim_due(&self, request: &ClaimRequest) -> StoreResult<Claim> {
        let request = request.clone();
        let leases = self.leases.clone();
        let chosen = self
            .db
            .read(move |conn| super::claim::claim(conn, &request, &leases))
            .await?;
        if chosen.next_calls.is_empty() {
            return Ok(chosen.claim);
        }
        // The rate-limited endpoints' next free start times, written before the claim returns
        // so that the next claim reads them. Unsynced: a power cut that undoes one costs the
        // calls that start in the next quarter of a second being early by that much.
        let next_calls = chosen.next_calls;
        let paced = self
            .db
            .write_unsynced(move |conn| {
                let mut pace = conn.prepare_cached("UPDATE endpoints SET next_call_at = ? WHERE seq = ?")?;
                for (seq, at) in next_calls {
                    pace.execute([at, seq])?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = paced {
            // None of the calls is made: the claim is undone.
            for claimed in &chosen.claim.claimed {
                self.leases.give_back(claimed.delivery_id, claimed.leased_until);
            }
            return Err(e);
        }
        Ok(chosen.claim)
    }

    async fn record_calls(&self, calls: Arc<[CallRecord]>, rules: Arc<dyn CallRules>) -> StoreResult<()> {
        // A record that a power cut undoes leaves its delivery to be called again, as a kill
        // between the call and its record does (see `engine`).
        let leases = self.leases.clone();
        let recorded = calls.clone();
        self.db
            .write_unsynced(move |conn| {
                let mut healths = read_healths(conn, &calls)?;
                let mut news = recording::apply(&calls, &mut healths, rules.as_ref());
                let mut task = conn.prepare_cached(INSERT_TASK)?;
                let mut delivery = conn.prepare_cached(RECORD_DELIVERY)?;
                let mut task_ids = Vec::with_capacity(calls.len());
                for CallRecord { attempt: call, next } in calls.iter() {
                    let c = &call.claimed;
                    let written = task.execute(params![
                        c.account_id,
                        c.delivery_id,
                        c.endpoint_id,
                        c.event_id,
                        c.event_type,
                        c.application_id,
                        i64::from(c.attempt),
                        c.url,
                        call.started_at,
                        call.duration_ms,
                        i64::from(call.response_status),
                        call.response_body,
                        call.error(),
                        call.request_headers,
                        c.version.as_str()
                    ])?;
                    task_ids.push((written == 1).then(|| conn.last_insert_rowid()));
                    // Only while the call's own lease is held: a person's retry may have taken
                    // the delivery back from a call that outlived its lease.
                    if leases
                        .get(c.delivery_id)
                        .is_some_and(|lease| lease.until == c.leased_until)
                    {
                        let (state, next_at) = next.stored();
                        delivery.execute(params![state.as_str(), i64::from(c.attempt), next_at, c.delivery_id])?;
                    }
                }
                let mut update = conn.prepare_cached(
                    "UPDATE endpoints SET state = ?, suspended_until = ?, consecutive_failures = ?, failing_since = ?,
                         suspensions = ? WHERE seq = ?",
                )?;
                for ((seq, _), (before, health)) in &healths {
                    if before != health {
                        update.execute(params![
                            column_text(&health.state),
                            health.suspended_until,
                            i64::from(health.consecutive_failures),
                            health.failing_since,
                            i64::from(health.suspensions),
                            seq
                        ])?;
                    }
                }
                // The endpoints' counters; an endpoint deleted meanwhile counts nothing.
                let mut tally = conn.prepare_cached(
                    "INSERT INTO endpoint_stats (account_id, endpoint_seq, hour, kind, key, count)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM endpoints WHERE seq = ?2)
                     ON CONFLICT (endpoint_seq, hour, kind, key) DO UPDATE SET count = count + excluded.count",
                )?;
                for t in stats::tallies(&calls) {
                    let (kind, key) = t.counter.stored();
                    tally.execute(params![t.account_id, t.endpoint_seq, t.hour, kind, key, t.count])?;
                }
                for (endpoint, (count, call)) in recording::failed_deliveries(&calls) {
                    if let Some(health) = healths.get(&endpoint) {
                        let now = calls[call].attempt.ended_at();
                        if let Some(count) = note_failures(conn, endpoint.0, count, now)? {
                            let told = News::DeliveriesFailed(count);
                            news.push(Found {
                                endpoint,
                                news: told,
                                call,
                                health: health.1,
                            });
                        }
                    }
                }
                for found in news {
                    let (seq, account) = found.endpoint;
                    let (call, task_id) = (&calls[found.call], task_ids[found.call]);
                    let event = rules.tell(found.news, call, &found.health, task_id);
                    insert_event(conn, account, &event, Fanout::About(seq))?;
                    if let Some(mail) = found.mail(&event, task_id, &*rules) {
                        mail::queue(conn, &mail)?;
                    }
                }
                Ok(())
            })
            .await?;
        // Only now that the records have committed: a claim that read the deliveries before
        // would have found them pending.
        for call in recorded.iter() {
            let c = &call.attempt.claimed;
            self.leases.give_back(c.delivery_id, c.leased_until);
        }
        Ok(())
    }

    async fn tasks(&self, account: i64, filter: &TaskFilter, page: Page) -> StoreResult<Vec<Task>> {
        // Only the filters given become conditions, so that SQLite can use the index of the
        // endpoint or application filter and seek straight to the page's keyset.
        let mut conditions = vec!["t.account_id = ?".to_owned()];
        let mut values: Vec<Value> = vec![account.into()];
        let mut add = |condition: &str, value: Option<Value>| {
            if let Some(value) = value {
                conditions.push(condition.to_owned());
                values.push(value);
            }
        };
        add("t.event_type = ?", filter.event.clone().map(Value::Text));
        add(
            "t.response_status = ?",
            filter.response_status.map(|s| i64::from(s).into()),
        );

        add("t.application_id = ?", filter.application.map(Value::Integer));
        add("t.endpoint_id = ?", filter.endpoint.clone().map(Value::Text));
        add("t.created_at >= ?", filter.from.map(Value::Integer));
        add("t.created_at < ?", filter.to.map(Value::Integer));
        add("t.id > ?", page.since.map(Value::Integer));
        add("t.id < ?", page.before.map(Value::Integer));
        if filter.response_status.is_some_and(|s| !(200..300).contains(&s)) {
            // Implied by the status asked, and written as the partial index of failed calls
            // is, so that SQLite uses it (see `FAILED`).
            conditions.push(FAILED.to_owned());
        }
        values.push(fetch_limit(page).into());
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks t WHERE {} ORDER BY t.id DESC LIMIT ?",
            conditions.join(" AND ")
        );
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached(&sql)?;
                let rows = statement.query_map(rusqlite::params_from_iter(values), |row| task_from(row))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn task(&self, account: i64, id: i64) -> StoreResult<Task> {
        self.db.read(move |conn| task_on(conn, account, id)).await
    }

    async fn retry_task(&self, account: i64, id: i64, now: Micros, once: Option<Once<Task>>) -> StoreResult<Task> {
        let leases = self.leases.clone();
        self.db
            .write_once(once, move |conn| {
                let delivery: Option<i64> = conn
                    .query_row(
                        "SELECT delivery_id FROM tasks WHERE account_id = ? AND id = ?",
                        [account, id],
                        |r| r.get(0),
                    )
                    .optional()?;
                let delivery = found(delivery, "task")?;
                let exists = conn
                    .query_row(
                        "SELECT 1 FROM deliveries WHERE account_id = ? AND id = ?",
                        [account, delivery],
                        |_| Ok(()),
                    )
                    .optional()?;
                match (exists, leases.get(delivery)) {
                    (None, _) => Err(StoreError::Conflict(
                        "this task's delivery no longer exists (its endpoint was deleted or it was purged)".into(),
                    )),
                    (Some(()), Some(lease)) if lease.until > now => Err(StoreError::Conflict(
                        "a call for this delivery is in flight; retry once it ends".into(),
                    )),
                    (Some(()), lease) => {
                        conn.execute(
                            "UPDATE deliveries SET state = 'pending', next_at = ?,
                                 fifo = (SELECT e.ordering = 'fifo' FROM endpoints e WHERE e.seq = endpoint_seq)
                             WHERE id = ?",
                            [now, delivery],
                        )?;
                        // A call that outlived its lease no longer holds the delivery: its
                        // record will leave the delivery alone.
                        if lease.is_some() {
                            leases.drop_lease(delivery);
                        }
                        task_on(conn, account, id)
                    }
                }
            })
            .await
    }

    async fn resume_endpoint(
        &self,
        account: i64,
        id: &str,
        stamp: EventStamp,
        once: Option<Once<Endpoint>>,
    ) -> StoreResult<Endpoint> {
        let id = id.to_owned();
        let endpoint = self
            .db
            .write_once(once, move |conn| {
                let before = endpoint_on(conn, account, &id)?;
                conn.execute(
                    "UPDATE endpoints SET state = 'active', suspended_until = NULL, consecutive_failures = 0,
                         failing_since = NULL, suspensions = 0, updated_at = ? WHERE account_id = ? AND id = ?",
                    params![stamp.at, account, id],
                )?;
                let endpoint = endpoint_on(conn, account, &id)?;
                if let Some(event) = resumed_by_hand(before.state, &endpoint, stamp) {
                    insert_event(conn, account, &event, Fanout::About(endpoint.seq))?;
                }
                Ok(endpoint)
            })
            .await?;
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
        let endpoint_id = endpoint_id.to_owned();
        let count = self
            .db
            .write_once(once, move |conn| {
                let endpoint = endpoint_on(conn, account, &endpoint_id)?;
                let events = serde_json::to_string(&endpoint.events).expect("event names serialise");
                let replayed = format!(
                    "FROM events ev WHERE ev.account_id = ?1 AND ev.created_at >= ?2 AND {}
                       AND EXISTS (SELECT 1 FROM json_each(?3) j WHERE j.value IN ('*', ev.event_type))",
                    replayed_types()
                );
                // With a filter, the events it lets through, by seq.
                let chosen = match &endpoint.filter {
                    None => None,
                    Some(filter) => {
                        let candidates = conn
                            .prepare(&format!("SELECT ev.seq, ev.body {replayed}"))?
                            .query_map(params![account, since, events], |r| Ok((r.get(0)?, r.get(1)?)))?
                            .collect::<rusqlite::Result<Vec<(i64, String)>>>()?;
                        let passing = filters::let_through(&filter.to_string(), candidates);
                        Some(serde_json::to_string(&passing).expect("numbers always serialise"))
                    }
                };
                let sql = format!(
                    "INSERT INTO deliveries (account_id, endpoint_seq, event_seq, application_id, state, next_at, created_at,
                                             fifo)
                     SELECT ?1, ?4, ev.seq, ev.application_id, 'pending', ?5, ?5, ?7 {replayed}
                       AND (?6 IS NULL OR ev.seq IN (SELECT value FROM json_each(?6)))
                     ORDER BY ev.seq"
                );
                let count = conn.execute(&sql, params![
                        account,
                        since,
                        events,
                        endpoint.seq,
                        now,
                        chosen,
                        endpoint.ordering == Ordering::Fifo
                    ],
                )?;
                Ok(count as u64)
            })
            .await?;
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
        let endpoint_id = endpoint_id.to_owned();
        let event = self
            .db
            .write_once(once, move |conn| {
                let endpoint = endpoint_on(conn, account, &endpoint_id)?;
                let event = draft.stamp(stamp);
                insert_event(conn, account, &event, Fanout::Only(endpoint.seq))?;
                Ok(event)
            })
            .await?;
        Ok(event)
    }

    async fn purge(&self, before: Micros, batch: u32) -> StoreResult<u64> {
        self.db
            .write(move |conn| {
                let tasks = conn.execute(
                    "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE created_at < ? ORDER BY created_at LIMIT ?)",
                    params![before, i64::from(batch)],
                )?;
                // Deliveries that are done go with their event (ON DELETE CASCADE).
                let events = conn.execute(
                    "DELETE FROM events WHERE seq IN (
                         SELECT e.seq FROM events e WHERE e.created_at < ?
                           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.state = 'pending')
                         ORDER BY e.created_at LIMIT ?)",
                    params![before, i64::from(batch)],
                )?;
                let emails = conn.execute(
                    "DELETE FROM emails WHERE id IN (
                         SELECT id FROM emails WHERE created_at < ? AND (sent_at IS NOT NULL OR given_up_at IS NOT NULL)
                         LIMIT ?)",
                    params![before, i64::from(batch)],
                )?;
                Ok((tasks + events + emails) as u64)
            })
            .await
    }

    async fn backlog(&self, now: Micros) -> StoreResult<Backlog> {
        // The deliveries in flight, which are not waiting.
        let leased: Vec<i64> = self.leases.snapshot().into_keys().collect();
        let leased = serde_json::to_string(&leased).expect("numbers always serialise");
        self.db
            .read(move |conn| {
                let backlog = conn.query_row(
                    "SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending'),
                            (SELECT count(*) FROM endpoints WHERE state = 'suspended'),
                            (SELECT count(*) FROM endpoints WHERE state = 'disabled'),
                            (SELECT min((SELECT d.next_at FROM deliveries d
                                         WHERE d.endpoint_seq = e.seq AND d.state = 'pending' AND d.next_at <= ?1
                                           AND d.id NOT IN (SELECT value FROM json_each(?2))
                                         ORDER BY d.next_at LIMIT 1))
                             FROM endpoints e WHERE e.state = 'active')",
                    params![now, leased],
                    |r| {
                        Ok(Backlog {
                            deliveries_waiting: r.get(0)?,
                            endpoints_suspended: r.get(1)?,
                            endpoints_disabled: r.get(2)?,
                            oldest_due: r.get(3)?,
                        })
                    },
                )?;
                Ok(backlog)
            })
            .await
    }
}
