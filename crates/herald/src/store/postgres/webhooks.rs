//! Event types, the event log and endpoints in PostgreSQL.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::keys::commit_once;
use super::order::Listed;
use super::{PostgresStore, account_page, column_text, conflict, decode, decode_word, found, quoted};
use crate::clock::Micros;
use crate::domain::endpoint::{Auth, Endpoint, EndpointSpec, EndpointState, Ordering};
use crate::domain::event::{Event, EventDraft, EventStamp, EventType};
use crate::store::codec::StoredControls;
use crate::store::fanout::{Fanout, Narrowing};
use crate::store::filters;
use crate::store::{Once, Page, StoreResult, WebhookStore};

/// Appends an event to the log, and its deliveries, inside the caller's transaction.
pub(super) async fn insert_event(
    conn: &mut PgConnection,
    account: i64,
    event: &Event,
    fanout: Fanout,
) -> sqlx::Result<()> {
    let Narrowing { only, named, except } = fanout.narrowing();
    let left_out = if fanout.filtered() {
        let filtered = filtered_endpoints(&mut *conn, &[account]).await?;
        let filtered: Vec<(i64, String)> = filtered.into_iter().map(|(_, seq, f)| (seq, f)).collect();
        filters::left_out(&event.body, &filtered)
    } else {
        Vec::new()
    };
    // One statement: the event, then a delivery for each endpoint it goes to.
    sqlx::query(
        "WITH event AS (
             INSERT INTO events (account_id, id, event_type, application_id, created_at, body, snapshot)
             VALUES ($1, $2, $3, $4, $5, $6, $10) RETURNING seq)
         INSERT INTO deliveries (account_id, endpoint_seq, event_seq, application_id, state, next_at, created_at, fifo)
         SELECT $1, e.seq, event.seq, $4, 'pending', $5, $5, e.ordering = 'fifo' FROM endpoints e, event
         WHERE e.account_id = $1 AND CASE
             WHEN $7::bigint IS NOT NULL THEN e.seq = $7
             WHEN $8 THEN e.seq IS DISTINCT FROM $11::bigint AND e.events ? $3
             ELSE e.events ?| ARRAY['*', $3] END
           AND NOT (e.seq = ANY($9))
         -- Kept until the commit, in place of a foreign key (migration 0020).
         FOR KEY SHARE OF e",
    )
    .bind(account)
    .bind(&event.id)
    .bind(&event.event_type)
    .bind(event.application_id)
    .bind(event.created_at)
    .bind(&event.body)
    .bind(only)
    .bind(named)
    .bind(&left_out)
    .bind(&event.snapshot)
    .bind(except)
    .execute(conn)
    .await?;
    Ok(())
}

/// The endpoints of `accounts` that have a filter: (account, seq, filter).
async fn filtered_endpoints(conn: &mut PgConnection, accounts: &[i64]) -> sqlx::Result<Vec<(i64, i64, String)>> {
    sqlx::query_as("SELECT account_id, seq, filter FROM endpoints WHERE account_id = ANY($1) AND filter IS NOT NULL")
        .bind(accounts)
        .fetch_all(conn)
        .await
}

const ENDPOINT_COLUMNS: &str = "seq, id, url, description, events::text, ordering, auth, secret, state,
    suspended_until, consecutive_failures, created_at, updated_at, headers, retry_schedule, timeout_ms, filter, rate_limit, version";

fn endpoint_from(row: &PgRow) -> StoreResult<Endpoint> {
    let events: String = row.try_get(4)?;
    let auth: Option<String> = row.try_get(6)?;
    let consecutive_failures: i64 = row.try_get(10)?;
    let filter: Option<String> = row.try_get(16)?;
    Ok(Endpoint {
        seq: row.try_get(0)?,
        id: row.try_get(1)?,
        url: row.try_get(2)?,
        description: row.try_get(3)?,
        events: decode("events", &events)?,
        ordering: decode_word::<Ordering>("ordering", row.try_get(5)?)?,
        auth: auth.as_deref().map(|a| decode::<Auth>("auth", a)).transpose()?,
        secret: row.try_get(7)?,
        state: decode_word::<EndpointState>("state", row.try_get(8)?)?,
        suspended_until: row.try_get(9)?,
        consecutive_failures: u32::try_from(consecutive_failures).unwrap_or(u32::MAX),
        created_at: row.try_get(11)?,
        updated_at: row.try_get(12)?,
        controls: StoredControls {
            headers: row.try_get(13)?,
            retry_schedule: row.try_get(14)?,
            timeout_ms: row.try_get(15)?,
            rate_limit: row.try_get(17)?,
        }
        .decode()?,
        filter: filter.as_deref().map(|f| decode("filter", f)).transpose()?,
        version: decode_word("version", row.try_get(18)?)?,
    })
}

/// One endpoint of the account, on any connection.
pub(super) async fn endpoint_on(conn: &mut PgConnection, account: i64, id: &str) -> StoreResult<Endpoint> {
    let row = sqlx::query(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE account_id = $1 AND id = $2"
    ))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    endpoint_from(&found(row, "endpoint")?)
}

#[async_trait]
impl WebhookStore for PostgresStore {
    async fn event_types(&self) -> StoreResult<Vec<EventType>> {
        let rows = sqlx::query(
            "SELECT name, description, schema, builtin FROM event_types ORDER BY builtin DESC, created_at, name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let schema: String = r.try_get(2)?;
                Ok(EventType {
                    name: r.try_get(0)?,
                    description: r.try_get(1)?,
                    schema: decode("schema", &schema)?,
                    builtin: r.try_get(3)?,
                })
            })
            .collect()
    }

    async fn create_event_type(&self, event_type: &EventType, at: Micros, once: Option<Once<()>>) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO event_types (name, description, schema, builtin, created_at) VALUES ($1, $2, $3, false, $4)",
        )
        .bind(&event_type.name)
        .bind(&event_type.description)
        .bind(event_type.schema.to_string())
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(conflict(format!("the event type {:?} exists", event_type.name)))?;
        commit_once(tx, once, &()).await
    }

    async fn publish_event(
        &self,
        account: i64,
        draft: EventDraft,
        stamp: EventStamp,
        once: Option<Once<Event>>,
    ) -> StoreResult<Event> {
        let event = draft.stamp(stamp);
        // The answer is the event itself, known before it is written.
        let key = once.map(|once| once.row(&event));
        self.publisher.publish(account, event, key).await
    }

    async fn event(&self, account: i64, id: &str) -> StoreResult<Event> {
        let row = sqlx::query(
            "SELECT id, event_type, application_id, created_at, body, snapshot FROM events
             WHERE account_id = $1 AND id = $2",
        )
        .bind(account)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let row = found(row, "event")?;
        Ok(Event {
            id: row.try_get(0)?,
            event_type: row.try_get(1)?,
            application_id: row.try_get(2)?,
            created_at: row.try_get(3)?,
            body: row.try_get(4)?,
            snapshot: row.try_get(5)?,
        })
    }

    async fn create_endpoint(
        &self,
        account: i64,
        spec: &EndpointSpec,
        id: &str,
        secret: &str,
        at: Micros,
        once: Option<Once<Endpoint>>,
    ) -> StoreResult<Endpoint> {
        let controls = StoredControls::of(&spec.controls);
        let (_turn, mut tx) = self.turns.begin(&self.pool, Listed::AccountData, account).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO endpoints (account_id, id, url, description, events, ordering, auth, secret, state,
                 consecutive_failures, created_at, updated_at, headers, retry_schedule, timeout_ms, filter, rate_limit,
                 version)
             VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, 'active', 0, $9, $9, $10, $11, $12, $13, $14, $15)
             RETURNING {ENDPOINT_COLUMNS}"
        ))
        .bind(account)
        .bind(id)
        .bind(&spec.url)
        .bind(&spec.description)
        .bind(quoted(&spec.events))
        .bind(column_text(&spec.ordering))
        .bind(spec.auth.as_ref().map(quoted))
        .bind(secret)
        .bind(at)
        .bind(&controls.headers)
        .bind(&controls.retry_schedule)
        .bind(controls.timeout_ms)
        .bind(spec.filter.as_ref().map(|f| f.to_string()))
        .bind(controls.rate_limit)
        .bind(spec.version.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let endpoint = endpoint_from(&row)?;
        commit_once(tx, once, &endpoint).await?;
        Ok(endpoint)
    }

    async fn endpoint(&self, account: i64, id: &str) -> StoreResult<Endpoint> {
        let mut conn = self.pool.acquire().await?;
        endpoint_on(&mut conn, account, id).await
    }

    async fn endpoints(&self, account: i64, page: Page) -> StoreResult<Vec<Endpoint>> {
        let from = format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints e");
        let rows = account_page(&self.pool, &from, "e", "seq", account, page).await?;
        rows.iter().map(endpoint_from).collect()
    }

    async fn update_endpoint(&self, account: i64, id: &str, spec: &EndpointSpec, at: Micros) -> StoreResult<Endpoint> {
        let controls = StoredControls::of(&spec.controls);
        let mut tx = self.pool.begin().await?;
        // Locked against every write of a delivery to it (they hold it `FOR KEY SHARE`): those
        // under way commit first, so that the update of its deliveries below sees them, and
        // those to come read the new ordering (migration 0022).
        let before: Option<String> =
            sqlx::query_scalar("SELECT ordering FROM endpoints WHERE account_id = $1 AND id = $2 FOR UPDATE")
                .bind(account)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let before = found(before, "endpoint")?;
        let row = sqlx::query(&format!(
            "UPDATE endpoints SET url = $1, description = $2, events = $3::jsonb, ordering = $4, auth = $5,
                 updated_at = $6, headers = $9, retry_schedule = $10, timeout_ms = $11, filter = $12,
                 rate_limit = $13, version = $14
             WHERE account_id = $7 AND id = $8 RETURNING {ENDPOINT_COLUMNS}"
        ))
        .bind(&spec.url)
        .bind(&spec.description)
        .bind(quoted(&spec.events))
        .bind(column_text(&spec.ordering))
        .bind(spec.auth.as_ref().map(quoted))
        .bind(at)
        .bind(account)
        .bind(id)
        .bind(&controls.headers)
        .bind(&controls.retry_schedule)
        .bind(controls.timeout_ms)
        .bind(spec.filter.as_ref().map(|f| f.to_string()))
        .bind(controls.rate_limit)
        .bind(spec.version.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let endpoint = endpoint_from(&row)?;
        if before != column_text(&endpoint.ordering) {
            // The deliveries waiting for it keep their turns under the new ordering.
            sqlx::query(
                "UPDATE deliveries SET fifo = $3 WHERE account_id = $1 AND endpoint_seq = $2 AND state = 'pending'",
            )
            .bind(account)
            .bind(endpoint.seq)
            .bind(endpoint.ordering == Ordering::Fifo)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(endpoint)
    }

    async fn rotate_secret(
        &self,
        account: i64,
        id: &str,
        secret: &str,
        previous_until: Micros,
        at: Micros,
        once: Option<Once<Endpoint>>,
    ) -> StoreResult<Endpoint> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE endpoints SET previous_secret = secret, previous_secret_until = $1, secret = $2, updated_at = $3
             WHERE account_id = $4 AND id = $5 RETURNING {ENDPOINT_COLUMNS}"
        ))
        .bind(previous_until)
        .bind(secret)
        .bind(at)
        .bind(account)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let endpoint = endpoint_from(&found(row, "endpoint")?)?;
        commit_once(tx, once, &endpoint).await?;
        Ok(endpoint)
    }

    async fn delete_endpoint(&self, account: i64, id: &str) -> StoreResult<()> {
        // The row first, then what refers to it (migrations 0007 and 0020), in a statement of
        // its own: deleting the row waits for the publishing groups that locked it, and the
        // second statement, seeing what committed since the first began, finds their
        // deliveries too.
        let mut tx = self.pool.begin().await?;
        let seq: Option<i64> =
            sqlx::query_scalar("DELETE FROM endpoints WHERE account_id = $1 AND id = $2 RETURNING seq")
                .bind(account)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let seq = found(seq, "endpoint")?;
        sqlx::query(
            "WITH deliveries AS (DELETE FROM deliveries WHERE account_id = $1 AND endpoint_seq = $2),
             leases AS (DELETE FROM leases WHERE account_id = $1 AND endpoint_seq = $2)
             DELETE FROM endpoint_stats WHERE account_id = $1 AND endpoint_seq = $2",
        )
        .bind(account)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
