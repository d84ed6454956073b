//! Deliveries and the call history in SQLite: claiming due work, recording calls in batches,
//! and reading the history.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::webhooks::{Fanout, insert_event};
use super::{SqliteStore, decode_word, found};
use crate::clock::Micros;
use crate::domain::delivery::{Backlog, CallRecord, Claimed, Next, Task, TaskFilter};
use crate::domain::endpoint::{Auth, Endpoint, EndpointState, Health};
use crate::domain::event::{Event, EventDraft, EventStamp};
use crate::store::{ClaimRequest, DeliveryStore, HealthRule, Page, StoreError, StoreResult};

/// The columns [`claimed_from`] reads, in order.
const CLAIM_SELECT: &str = "SELECT d.id, d.account_id, d.attempts + 1, e.seq, e.id, e.url, e.auth, e.secret,
        ev.id, ev.event_type, ev.application_id, ev.body, e.state
    FROM deliveries d
    JOIN endpoints e ON e.seq = d.endpoint_seq
    JOIN events ev ON ev.seq = d.event_seq";

fn claimed_from(row: &SqliteRow) -> StoreResult<(Claimed, String)> {
    let auth: Option<String> = row.get(6);
    let auth = auth
        .map(|a| serde_json::from_str::<Auth>(&a))
        .transpose()
        .map_err(|e| StoreError::Other(sqlx::Error::Decode(format!("endpoints.auth: {e}").into())))?;
    let claimed = Claimed {
        delivery_id: row.get(0),
        account_id: row.get(1),
        attempt: row.get::<i64, _>(2) as u32,
        endpoint_seq: row.get(3),
        endpoint_id: row.get(4),
        url: row.get(5),
        auth,
        secret: row.get(7),
        event_id: row.get(8),
        event_type: row.get(9),
        application_id: row.get(10),
        body: row.get(11),
    };
    Ok((claimed, row.get(12)))
}

type HealthRow = (String, Option<Micros>, i64, Option<Micros>, i64);

fn health_from((state, suspended_until, failures, failing_since, suspensions): HealthRow) -> StoreResult<Health> {
    Ok(Health {
        state: decode_word::<EndpointState>("state", state)?,
        suspended_until,
        consecutive_failures: failures as u32,
        failing_since,
        suspensions: suspensions as u32,
    })
}

/// The columns [`task_from`] reads, in order.
const TASK_COLUMNS: &str = "t.id, t.endpoint_id, t.event_id, t.event_type, t.application_id, t.attempt, t.url,
    t.created_at, t.duration_ms, t.response_status, t.response_body, t.error,
    (SELECT d.state FROM deliveries d WHERE d.id = t.delivery_id)";

fn task_from(row: &SqliteRow) -> Task {
    Task {
        id: row.get(0),
        endpoint_id: row.get(1),
        event_id: row.get(2),
        event_type: row.get(3),
        application_id: row.get(4),
        attempt: row.get::<i64, _>(5) as u32,
        url: row.get(6),
        created_at: row.get(7),
        duration_ms: row.get(8),
        response_status: row.get::<i64, _>(9) as u16,
        response_body: row.get(10),
        error: row.get(11),
        delivery_state: row
            .get::<Option<String>, _>(12)
            .and_then(|state| decode_word("state", state).ok()),
        request: None,
    }
}

#[async_trait]
impl DeliveryStore for SqliteStore {
    fn new_work(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    async fn claim_due(&self, request: &ClaimRequest) -> StoreResult<Vec<Claimed>> {
        let full: Vec<i64> = request
            .room
            .iter()
            .filter(|(_, room)| *room == 0)
            .map(|(seq, _)| *seq)
            .collect();
        let mut tx = self.write.begin().await?;
        let rows = sqlx::query(&format!(
            "{CLAIM_SELECT}
             WHERE d.state = 'pending' AND d.next_at <= ?1 AND (d.leased_until IS NULL OR d.leased_until < ?1)
               AND (e.state = 'active' OR (e.state = 'suspended' AND e.suspended_until <= ?1))
               AND d.endpoint_seq NOT IN (SELECT value FROM json_each(?2))
               AND (e.ordering = 'parallel' OR NOT EXISTS (
                    SELECT 1 FROM deliveries o
                    WHERE o.endpoint_seq = d.endpoint_seq AND o.application_id IS d.application_id
                      AND o.state = 'pending' AND o.id < d.id))
             ORDER BY d.next_at, d.id LIMIT ?3"
        ))
        .bind(request.now)
        .bind(serde_json::to_string(&full).expect("ids serialise"))
        .bind(i64::from(request.limit))
        .fetch_all(&mut *tx)
        .await?;
        // Each endpoint gets at most its room: the cap less its calls in flight, and a
        // suspended endpoint one probe call, only when none is in flight.
        let mut room: HashMap<i64, u32> = request.room.iter().copied().collect();
        let mut chosen = Vec::with_capacity(rows.len());
        for row in &rows {
            let (claimed, state) = claimed_from(row)?;
            let busy = request.room.iter().any(|(seq, _)| *seq == claimed.endpoint_seq);
            let default = if state == "suspended" {
                u32::from(!busy)
            } else {
                request.per_endpoint
            };
            let left = room.entry(claimed.endpoint_seq).or_insert(default);
            if state == "suspended" && busy {
                *left = 0;
            }
            if *left > 0 {
                *left -= 1;
                chosen.push(claimed);
            }
        }
        if !chosen.is_empty() {
            let ids: Vec<i64> = chosen.iter().map(|c| c.delivery_id).collect();
            sqlx::query("UPDATE deliveries SET leased_until = ? WHERE id IN (SELECT value FROM json_each(?))")
                .bind(request.lease_until)
                .bind(serde_json::to_string(&ids).expect("ids serialise"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(chosen)
    }

    async fn next_due(&self) -> StoreResult<Option<Micros>> {
        let now = jiff::Timestamp::now().as_microsecond();
        let next: Option<Micros> = sqlx::query_scalar(
            "SELECT min(t) FROM (
                 SELECT min(next_at) AS t FROM deliveries WHERE state = 'pending' AND next_at > ?1
                 UNION ALL
                 SELECT min(suspended_until) FROM endpoints WHERE state = 'suspended' AND suspended_until > ?1)",
        )
        .bind(now)
        .fetch_one(&self.read)
        .await?;
        Ok(next)
    }

    async fn record_calls(&self, calls: &[CallRecord], rule: HealthRule<'_>) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let mut healths: HashMap<i64, (Health, Health)> = HashMap::new();
        for call in calls {
            let c = &call.claimed;
            sqlx::query(
                "INSERT INTO tasks (account_id, delivery_id, endpoint_id, event_id, event_type, application_id,
                     attempt, url, created_at, duration_ms, response_status, response_body, error, request_headers)
                 SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?)",
            )
            .bind(c.account_id)
            .bind(c.delivery_id)
            .bind(&c.endpoint_id)
            .bind(&c.event_id)
            .bind(&c.event_type)
            .bind(c.application_id)
            .bind(i64::from(c.attempt))
            .bind(&c.url)
            .bind(call.started_at)
            .bind(call.duration_ms)
            .bind(i64::from(call.response_status))
            .bind(&call.response_body)
            .bind(&call.error)
            .bind(&call.request_headers)
            .bind(c.account_id)
            .execute(&mut *tx)
            .await?;
            let (state, next_at) = match call.next {
                Next::Succeeded => ("succeeded", None),
                Next::RetryAt(at) => ("pending", Some(at)),
                Next::Failed => ("failed", None),
            };
            sqlx::query(
                "UPDATE deliveries SET state = ?, attempts = ?, next_at = coalesce(?, next_at), leased_until = NULL
                 WHERE id = ?",
            )
            .bind(state)
            .bind(i64::from(c.attempt))
            .bind(next_at)
            .bind(c.delivery_id)
            .execute(&mut *tx)
            .await?;
            let entry = match healths.entry(c.endpoint_seq) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let row: Option<HealthRow> = sqlx::query_as(
                        "SELECT state, suspended_until, consecutive_failures, failing_since, suspensions
                         FROM endpoints WHERE seq = ?",
                    )
                    .bind(c.endpoint_seq)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else { continue };
                    let health = health_from(row)?;
                    e.insert((health, health))
                }
            };
            entry.1 = rule(entry.1, call);
        }
        for (seq, (before, after)) in healths {
            if before == after {
                continue;
            }
            sqlx::query(
                "UPDATE endpoints SET state = ?, suspended_until = ?, consecutive_failures = ?, failing_since = ?,
                     suspensions = ? WHERE seq = ?",
            )
            .bind(super::webhooks::column_text(&after.state))
            .bind(after.suspended_until)
            .bind(i64::from(after.consecutive_failures))
            .bind(after.failing_since)
            .bind(i64::from(after.suspensions))
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.wake.notify_one();
        Ok(())
    }

    async fn release_leases(&self) -> StoreResult<()> {
        sqlx::query("UPDATE deliveries SET leased_until = NULL WHERE leased_until IS NOT NULL")
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn tasks(&self, account: i64, filter: &TaskFilter, page: Page) -> StoreResult<Vec<Task>> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks t WHERE t.account_id = ?1
               AND (?2 IS NULL OR t.event_type = ?2) AND (?3 IS NULL OR t.response_status = ?3)
               AND (?4 IS NULL OR t.application_id = ?4) AND (?5 IS NULL OR t.endpoint_id = ?5)
               AND (?6 IS NULL OR t.created_at >= ?6) AND (?7 IS NULL OR t.created_at < ?7)
               AND (?8 IS NULL OR t.id > ?8) AND (?9 IS NULL OR t.id < ?9)
             ORDER BY t.id DESC LIMIT ?10"
        ))
        .bind(account)
        .bind(&filter.event)
        .bind(filter.response_status.map(i64::from))
        .bind(filter.application)
        .bind(&filter.endpoint)
        .bind(filter.from)
        .bind(filter.to)
        .bind(page.since)
        .bind(page.before)
        .bind(super::fetch_limit(page))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(task_from).collect())
    }

    async fn task(&self, account: i64, id: i64) -> StoreResult<Task> {
        let row = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS}, t.request_headers, coalesce(ev.body, '') FROM tasks t
             LEFT JOIN events ev ON ev.id = t.event_id WHERE t.account_id = ? AND t.id = ?"
        ))
        .bind(account)
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        let row = found(row, "task")?;
        let mut task = task_from(&row);
        task.request = Some((row.get(13), row.get(14)));
        Ok(task)
    }

    async fn resume_endpoint(&self, account: i64, id: &str, at: Micros) -> StoreResult<Endpoint> {
        let done = sqlx::query(
            "UPDATE endpoints SET state = 'active', suspended_until = NULL, consecutive_failures = 0,
                 failing_since = NULL, suspensions = 0, updated_at = ? WHERE account_id = ? AND id = ?",
        )
        .bind(at)
        .bind(account)
        .bind(id)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("endpoint"));
        }
        self.wake.notify_one();
        self.endpoint_from(&self.write, account, id).await
    }

    async fn replay(&self, account: i64, endpoint_id: &str, since: Micros, now: Micros) -> StoreResult<u64> {
        let endpoint = self.endpoint_from(&self.write, account, endpoint_id).await?;
        let done = sqlx::query(
            "INSERT INTO deliveries (account_id, endpoint_seq, event_seq, application_id, state, next_at, created_at)
             SELECT ?1, ?2, ev.seq, ev.application_id, 'pending', ?3, ?3 FROM events ev
             WHERE ev.account_id = ?1 AND ev.created_at >= ?4
               AND EXISTS (SELECT 1 FROM json_each(?5) j WHERE j.value IN ('*', ev.event_type))
             ORDER BY ev.seq",
        )
        .bind(account)
        .bind(endpoint.seq)
        .bind(now)
        .bind(since)
        .bind(serde_json::to_string(&endpoint.events).expect("event names serialise"))
        .execute(&self.write)
        .await?;
        self.wake.notify_one();
        Ok(done.rows_affected())
    }

    async fn send_test(
        &self,
        account: i64,
        endpoint_id: &str,
        draft: EventDraft,
        stamp: EventStamp,
    ) -> StoreResult<Event> {
        let endpoint = self.endpoint_from(&self.write, account, endpoint_id).await?;
        let event = draft.stamp(stamp);
        let mut tx = self.write.begin().await?;
        insert_event(&mut tx, account, &event, Fanout::Only(endpoint.seq)).await?;
        tx.commit().await?;
        self.wake.notify_one();
        Ok(event)
    }

    async fn purge(&self, before: Micros, batch: u32) -> StoreResult<u64> {
        let tasks = sqlx::query(
            "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE created_at < ? ORDER BY created_at LIMIT ?)",
        )
        .bind(before)
        .bind(i64::from(batch))
        .execute(&self.write)
        .await?;
        // Deliveries that are done go with their event (ON DELETE CASCADE).
        let events = sqlx::query(
            "DELETE FROM events WHERE seq IN (
                 SELECT e.seq FROM events e WHERE e.created_at < ?
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.state = 'pending')
                 ORDER BY e.created_at LIMIT ?)",
        )
        .bind(before)
        .bind(i64::from(batch))
        .execute(&self.write)
        .await?;
        Ok(tasks.rows_affected() + events.rows_affected())
    }

    async fn backlog(&self) -> StoreResult<Backlog> {
        let (deliveries_waiting, endpoints_suspended, endpoints_disabled): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending'),
                    (SELECT count(*) FROM endpoints WHERE state = 'suspended'),
                    (SELECT count(*) FROM endpoints WHERE state = 'disabled')",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(Backlog {
            deliveries_waiting,
            endpoints_suspended,
            endpoints_disabled,
        })
    }

    async fn retry_task(&self, account: i64, id: i64, now: Micros) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let delivery: Option<i64> = sqlx::query_scalar("SELECT delivery_id FROM tasks WHERE account_id = ? AND id = ?")
            .bind(account)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let delivery = found(delivery, "task")?;
        let leased: Option<Option<Micros>> =
            sqlx::query_scalar("SELECT leased_until FROM deliveries WHERE account_id = ? AND id = ?")
                .bind(account)
                .bind(delivery)
                .fetch_optional(&mut *tx)
                .await?;
        match leased {
            None => {
                return Err(StoreError::Conflict(
                    "this task's delivery no longer exists (its endpoint was deleted or it was purged)".into(),
                ));
            }
            Some(Some(until)) if until > now => {
                return Err(StoreError::Conflict(
                    "a call for this delivery is in flight; retry once it ends".into(),
                ));
            }
            Some(_) => {}
        }
        sqlx::query("UPDATE deliveries SET state = 'pending', next_at = ?, leased_until = NULL WHERE id = ?")
            .bind(now)
            .bind(delivery)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.wake.notify_one();
        Ok(())
    }
}
