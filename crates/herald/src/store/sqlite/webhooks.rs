//! Event types, the event log and endpoints in SQLite.

use async_trait::async_trait;
use sqlx::SqliteConnection;

use super::{SqliteStore, conflict, decode_word, fetch_limit, found};
use crate::clock::Micros;
use crate::domain::Invalid;
use crate::domain::endpoint::{Auth, Endpoint, EndpointSpec, EndpointState, Ordering};
use crate::domain::event::{Event, EventDraft, EventStamp, EventType};
use crate::store::{Page, StoreError, StoreResult, WebhookStore};

/// Who gets deliveries of an event being written.
#[derive(Clone, Copy)]
pub(super) enum Fanout {
    /// Every endpoint of the account that subscribes to the event's type.
    Subscribers,
    /// This endpoint (by seq) alone, whatever it subscribes to: a test event.
    Only(i64),
}

/// Appends an event to the log, and its deliveries, inside the caller's transaction.
pub(super) async fn insert_event(
    conn: &mut SqliteConnection,
    account: i64,
    event: &Event,
    fanout: Fanout,
) -> sqlx::Result<()> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO events (id, account_id, event_type, application_id, created_at, body) VALUES (?, ?, ?, ?, ?, ?)
         RETURNING seq",
    )
    .bind(&event.id)
    .bind(account)
    .bind(&event.event_type)
    .bind(event.application_id)
    .bind(event.created_at)
    .bind(&event.body)
    .fetch_one(&mut *conn)
    .await?;
    let only = match fanout {
        Fanout::Subscribers => None,
        Fanout::Only(endpoint) => Some(endpoint),
    };
    sqlx::query(
        "INSERT INTO deliveries (account_id, endpoint_seq, event_seq, application_id, state, next_at, created_at)
         SELECT ?1, e.seq, ?2, ?3, 'pending', ?4, ?4 FROM endpoints e
         WHERE e.account_id = ?1 AND CASE WHEN ?6 IS NULL
             THEN EXISTS (SELECT 1 FROM json_each(e.events) j WHERE j.value IN ('*', ?5))
             ELSE e.seq = ?6 END",
    )
    .bind(account)
    .bind(seq)
    .bind(event.application_id)
    .bind(event.created_at)
    .bind(&event.event_type)
    .bind(only)
    .execute(conn)
    .await?;
    Ok(())
}

const ENDPOINT_COLUMNS: &str = "seq, id, url, description, events, ordering, auth, secret, state,
    suspended_until, consecutive_failures, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct EndpointRow {
    seq: i64,
    id: String,
    url: String,
    description: String,
    events: String,
    ordering: String,
    auth: Option<String>,
    secret: String,
    state: String,
    suspended_until: Option<Micros>,
    consecutive_failures: i64,
    created_at: Micros,
    updated_at: Micros,
}

/// Reads a value stored as JSON text; the store wrote it, so a failure is corruption.
fn decode<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(sqlx::Error::Decode(format!("{column}: {e}").into())))
}

fn quoted<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("a plain enum serialises")
}

impl TryFrom<EndpointRow> for Endpoint {
    type Error = StoreError;

    fn try_from(row: EndpointRow) -> StoreResult<Endpoint> {
        Ok(Endpoint {
            seq: row.seq,
            id: row.id,
            url: row.url,
            description: row.description,
            events: decode("events", &row.events)?,
            ordering: decode_word::<Ordering>("ordering", row.ordering)?,
            auth: row.auth.as_deref().map(|a| decode::<Auth>("auth", a)).transpose()?,
            secret: row.secret,
            state: decode_word::<EndpointState>("state", row.state)?,
            suspended_until: row.suspended_until,
            consecutive_failures: u32::try_from(row.consecutive_failures).unwrap_or(u32::MAX),
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Turns an enum's JSON form (`"fifo"`) into its column text (`fifo`).
pub(super) fn column_text<T: serde::Serialize>(value: &T) -> String {
    quoted(value).trim_matches('"').to_owned()
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn event_types(&self) -> StoreResult<Vec<EventType>> {
        let rows: Vec<(String, String, String, bool)> = sqlx::query_as(
            "SELECT name, description, schema, builtin FROM event_types ORDER BY builtin DESC, created_at, name",
        )
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|(name, description, schema, builtin)| {
                Ok(EventType {
                    name,
                    description,
                    schema: decode("schema", &schema)?,
                    builtin,
                })
            })
            .collect()
    }

    async fn create_event_type(&self, event_type: &EventType, at: Micros) -> StoreResult<()> {
        sqlx::query("INSERT INTO event_types (name, description, schema, builtin, created_at) VALUES (?, ?, ?, 0, ?)")
            .bind(&event_type.name)
            .bind(&event_type.description)
            .bind(event_type.schema.to_string())
            .bind(at)
            .execute(&self.write)
            .await
            .map_err(conflict(format!("the event type {:?} exists", event_type.name)))?;
        Ok(())
    }

    async fn publish_event(&self, account: i64, draft: EventDraft, stamp: EventStamp) -> StoreResult<Event> {
        let mut tx = self.write.begin().await?;
        if let Some(application) = draft.application_id {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM applications WHERE account_id = ? AND id = ?")
                .bind(account)
                .bind(application)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                let message = format!("application {application} does not exist");
                return Err(Invalid {
                    code: "unknown_application",
                    message,
                }
                .into());
            }
        }
        let event = draft.stamp(stamp);
        insert_event(&mut tx, account, &event, Fanout::Subscribers).await?;
        tx.commit().await?;
        self.wake.notify_one();
        Ok(event)
    }

    async fn event(&self, account: i64, id: &str) -> StoreResult<Event> {
        let row: Option<(String, String, Option<i64>, Micros, String)> = sqlx::query_as(
            "SELECT id, event_type, application_id, created_at, body FROM events WHERE account_id = ? AND id = ?",
        )
        .bind(account)
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        let (id, event_type, application_id, created_at, body) = found(row, "event")?;
        Ok(Event {
            id,
            event_type,
            application_id,
            created_at,
            body,
        })
    }

    async fn create_endpoint(
        &self,
        account: i64,
        spec: &EndpointSpec,
        id: &str,
        secret: &str,
        at: Micros,
    ) -> StoreResult<Endpoint> {
        sqlx::query(
            "INSERT INTO endpoints (id, account_id, url, description, events, ordering, auth, secret, state,
                 suspended_until, consecutive_failures, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', NULL, 0, ?, ?)",
        )
        .bind(id)
        .bind(account)
        .bind(&spec.url)
        .bind(&spec.description)
        .bind(quoted(&spec.events))
        .bind(column_text(&spec.ordering))
        .bind(spec.auth.as_ref().map(quoted))
        .bind(secret)
        .bind(at)
        .bind(at)
        .execute(&self.write)
        .await?;
        self.endpoint_from(&self.write, account, id).await
    }

    async fn endpoint(&self, account: i64, id: &str) -> StoreResult<Endpoint> {
        self.endpoint_from(&self.read, account, id).await
    }

    async fn endpoints(&self, account: i64, page: Page) -> StoreResult<Vec<Endpoint>> {
        let rows: Vec<EndpointRow> = sqlx::query_as(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE account_id = ?1
             AND (?2 IS NULL OR seq > ?2) AND (?3 IS NULL OR seq < ?3) ORDER BY seq DESC LIMIT ?4"
        ))
        .bind(account)
        .bind(page.since)
        .bind(page.before)
        .bind(fetch_limit(page))
        .fetch_all(&self.read)
        .await?;
        rows.into_iter().map(Endpoint::try_from).collect()
    }

    async fn update_endpoint(&self, account: i64, id: &str, spec: &EndpointSpec, at: Micros) -> StoreResult<Endpoint> {
        let done = sqlx::query(
            "UPDATE endpoints SET url = ?, description = ?, events = ?, ordering = ?, auth = ?, updated_at = ?
             WHERE account_id = ? AND id = ?",
        )
        .bind(&spec.url)
        .bind(&spec.description)
        .bind(quoted(&spec.events))
        .bind(column_text(&spec.ordering))
        .bind(spec.auth.as_ref().map(quoted))
        .bind(at)
        .bind(account)
        .bind(id)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("endpoint"));
        }
        self.endpoint_from(&self.write, account, id).await
    }

    async fn delete_endpoint(&self, account: i64, id: &str) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM endpoints WHERE account_id = ? AND id = ?")
            .bind(account)
            .bind(id)
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("endpoint"));
        }
        Ok(())
    }
}

impl SqliteStore {
    /// Reads an endpoint through `pool`: the writer right after a write, so that the answer
    /// shows it.
    pub(super) async fn endpoint_from(&self, pool: &sqlx::SqlitePool, account: i64, id: &str) -> StoreResult<Endpoint> {
        let row: Option<EndpointRow> = sqlx::query_as(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE account_id = ? AND id = ?"
        ))
        .bind(account)
        .bind(id)
        .fetch_optional(pool)
        .await?;
        found(row, "endpoint")?.try_into()
    }
}
