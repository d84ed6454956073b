//! Event types, the event log and endpoints in SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::recruiting::application_on;
use super::{SqliteStore, column_text, conflict, decode, decode_word, fetch_limit, found, quoted};
use crate::clock::Micros;
use crate::domain::endpoint::{Auth, Endpoint, EndpointSpec, EndpointState, Ordering};
use crate::domain::event::{Event, EventDraft, EventStamp, EventType};
use crate::store::codec::{self, StoredControls};
use crate::store::fanout::{Fanout, Narrowing};
use crate::store::filters;
use crate::store::{Once, Page, StoreError, StoreResult, WebhookStore};

/// An event's row. Its seq is read back as the row id: `RETURNING` would build a temporary
/// table per event.
pub(super) const INSERT_EVENT: &str =
    "INSERT INTO events (id, account_id, event_type, application_id, created_at, body, snapshot)
     VALUES (?, ?, ?, ?, ?, ?, ?)";

/// Appends an event to the log, and its deliveries, inside the caller's transaction.
pub(super) fn insert_event(conn: &Connection, account: i64, event: &Event, fanout: Fanout) -> rusqlite::Result<()> {
    conn.prepare_cached(INSERT_EVENT)?.execute(params![
        event.id,
        account,
        event.event_type,
        event.application_id,
        event.created_at,
        event.body,
        event.snapshot
    ])?;
    let seq = conn.last_insert_rowid();
    let Narrowing { only, named, except } = fanout.narrowing();
    let left_out = if fanout.filtered() {
        filters::left_out(&event.body, &filtered_endpoints(conn, account)?)
    } else {
        Vec::new()
    };
    conn.prepare_cached(
        "INSERT INTO deliveries (account_id, endpoint_seq, event_seq, application_id, state, next_at, created_at,
                                 fifo)
         SELECT ?1, e.seq, ?2, ?3, 'pending', ?4, ?4, e.ordering = 'fifo' FROM endpoints e
         WHERE e.account_id = ?1 AND CASE
             WHEN ?6 IS NOT NULL THEN e.seq = ?6
             WHEN ?7 THEN e.seq IS NOT ?9
                 AND EXISTS (SELECT 1 FROM json_each(e.events) j WHERE j.value = ?5)
             ELSE EXISTS (SELECT 1 FROM json_each(e.events) j WHERE j.value IN ('*', ?5)) END
           AND (?8 IS NULL OR e.seq NOT IN (SELECT value FROM json_each(?8)))",
    )?
    .execute(params![
        account,
        seq,
        event.application_id,
        event.created_at,
        event.event_type,
        only,
        named,
        // None when no filter leaves an endpoint out, the usual case, which then skips
        // building the list's lookup table.
        (!left_out.is_empty()).then(|| serde_json::to_string(&left_out).expect("numbers always serialise")),
        except
    ])?;
    Ok(())
}

/// The account's endpoints that have a filter, with it.
pub(super) fn filtered_endpoints(conn: &Connection, account: i64) -> rusqlite::Result<Vec<(i64, String)>> {
    conn.prepare_cached("SELECT seq, filter FROM endpoints WHERE account_id = ? AND filter IS NOT NULL")?
        .query_map([account], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

const ENDPOINT_COLUMNS: &str = "seq, id, url, description, events, ordering, auth, secret, state,
    suspended_until, consecutive_failures, created_at, updated_at, headers, retry_schedule, timeout_ms, filter, rate_limit, version";

/// An endpoint row, as [`endpoint_from`] decodes it.
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
    controls: StoredControls,
    filter: Option<String>,
    version: String,
}

fn endpoint_row(row: &Row) -> rusqlite::Result<EndpointRow> {
    Ok(EndpointRow {
        seq: row.get(0)?,
        id: row.get(1)?,
        url: row.get(2)?,
        description: row.get(3)?,
        events: row.get(4)?,
        ordering: row.get(5)?,
        auth: row.get(6)?,
        secret: row.get(7)?,
        state: row.get(8)?,
        suspended_until: row.get(9)?,
        consecutive_failures: row.get(10)?,
        created_at: row.get(11)?,
        updated_at: row.get(12)?,
        controls: StoredControls {
            headers: row.get(13)?,
            retry_schedule: row.get(14)?,
            timeout_ms: row.get(15)?,
            rate_limit: row.get(17)?,
        },
        filter: row.get(16)?,
        version: row.get(18)?,
    })
}

fn endpoint_from(row: EndpointRow) -> StoreResult<Endpoint> {
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
        controls: row.controls.decode()?,
        filter: row.filter.as_deref().map(|f| decode("filter", f)).transpose()?,
        version: decode_word("version", row.version)?,
    })
}

/// One endpoint of the account, on any connection.
pub(super) fn endpoint_on(conn: &Connection, account: i64, id: &str) -> StoreResult<Endpoint> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE account_id = ? AND id = ?");
    let row = conn
        .prepare_cached(&sql)?
        .query_row(params![account, id], endpoint_row)
        .optional()?;
    endpoint_from(found(row, "endpoint")?)
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn event_types(&self) -> StoreResult<Vec<EventType>> {
        self.db
            .read(|conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT name, description, schema, builtin FROM event_types ORDER BY builtin DESC, created_at, name",
                )?;
                let rows = statement.query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, bool>(3)?))
                })?;
                let mut types = Vec::new();
                for row in rows {
                    let (name, description, schema, builtin) = row?;
                    types.push(EventType { name, description, schema: decode("schema", &schema)?, builtin });
                }
                Ok(types)
            })
            .await
    }

    async fn create_event_type(&self, event_type: &EventType, at: Micros, once: Option<Once<()>>) -> StoreResult<()> {
        let event_type = event_type.clone();
        self.db
            .write_once(once, move |conn| {
                conn.execute(
                    "INSERT INTO event_types (name, description, schema, builtin, created_at) VALUES (?, ?, ?, 0, ?)",
                    params![
                        event_type.name,
                        event_type.description,
                        event_type.schema.to_string(),
                        at
                    ],
                )
                .map_err(conflict(format!("the event type {:?} exists", event_type.name)))?;
                Ok(())
            })
            .await
    }

    async fn publish_event(
        &self,
        account: i64,
        draft: EventDraft,
        stamp: EventStamp,
        once: Option<Once<Event>>,
    ) -> StoreResult<Event> {
        let event = self
            .db
            .write_once(once, move |conn| {
                // The application as this transaction sees it: the event's snapshot.
                let snapshot = match draft.application_id {
                    None => None,
                    Some(application) => match application_on(conn, account, application) {
                        Ok(found) => Some(codec::snapshot(&found)),
                        Err(StoreError::NotFound(_)) => {
                            return Err(codec::unknown("unknown_application", "application", application));
                        }
                        Err(e) => return Err(e),
                    },
                };
                let event = Event {
                    snapshot,
                    ..draft.stamp(stamp)
                };
                insert_event(conn, account, &event, Fanout::Subscribers)?;
                Ok(event)
            })
            .await?;
        Ok(event)
    }

    async fn event(&self, account: i64, id: &str) -> StoreResult<Event> {
        let id = id.to_owned();
        self.db
            .read(move |conn| {
                let row = conn
                    .prepare_cached(
                        "SELECT id, event_type, application_id, created_at, body, snapshot FROM events
                         WHERE account_id = ? AND id = ?",
                    )?
                    .query_row(params![account, id], |r| {
                        Ok(Event {
                            id: r.get(0)?,
                            event_type: r.get(1)?,
                            application_id: r.get(2)?,
                            created_at: r.get(3)?,
                            body: r.get(4)?,
                            snapshot: r.get(5)?,
                        })
                    })
                    .optional()?;
                found(row, "event")
            })
            .await
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
        let (spec, id, secret) = (spec.clone(), id.to_owned(), secret.to_owned());
        self.db
            .write_once(once, move |conn| {
                let controls = StoredControls::of(&spec.controls);
                conn.execute(
                    "INSERT INTO endpoints (id, account_id, url, description, events, ordering, auth, secret, state,
                         suspended_until, consecutive_failures, created_at, updated_at, headers, retry_schedule,
                         timeout_ms, filter, rate_limit, version)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', NULL, 0, ?, ?, ?, ?, ?, ?, ?, ?)",
                    params![
                        id,
                        account,
                        spec.url,
                        spec.description,
                        quoted(&spec.events),
                        column_text(&spec.ordering),
                        spec.auth.as_ref().map(quoted),
                        secret,
                        at,
                        at,
                        controls.headers,
                        controls.retry_schedule,
                        controls.timeout_ms,
                        spec.filter.as_ref().map(|f| f.to_string()),
                        controls.rate_limit,
                        spec.version.as_str()
                    ],
                )?;
                endpoint_on(conn, account, &id)
            })
            .await
    }

    async fn endpoint(&self, account: i64, id: &str) -> StoreResult<Endpoint> {
        let id = id.to_owned();
        self.db.read(move |conn| endpoint_on(conn, account, &id)).await
    }

    async fn endpoints(&self, account: i64, page: Page) -> StoreResult<Vec<Endpoint>> {
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached(&format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE account_id = ?1
                     AND seq > coalesce(?2, -1) AND seq < coalesce(?3, 9223372036854775807) ORDER BY seq DESC LIMIT ?4"
                ))?;
                let rows = statement.query_map(
                    params![account, page.since, page.before, fetch_limit(page)],
                    endpoint_row,
                )?;
                rows.map(|row| endpoint_from(row?)).collect()
            })
            .await
    }

    async fn update_endpoint(&self, account: i64, id: &str, spec: &EndpointSpec, at: Micros) -> StoreResult<Endpoint> {
        let (id, spec) = (id.to_owned(), spec.clone());
        self.db
            .write(move |conn| {
                let controls = StoredControls::of(&spec.controls);
                let changed = conn.execute(
                    "UPDATE endpoints SET url = ?, description = ?, events = ?, ordering = ?, auth = ?, updated_at = ?,
                         headers = ?, retry_schedule = ?, timeout_ms = ?, filter = ?, rate_limit = ?,
                         version = ?
                     WHERE account_id = ? AND id = ?",
                    params![
                        spec.url,
                        spec.description,
                        quoted(&spec.events),
                        column_text(&spec.ordering),
                        spec.auth.as_ref().map(quoted),
                        at,
                        controls.headers,
                        controls.retry_schedule,
                        controls.timeout_ms,
                        spec.filter.as_ref().map(|f| f.to_string()),
                        controls.rate_limit,
                        spec.version.as_str(),
                        account,
                        id
                    ],
                )?;
                if changed == 0 {
                    return Err(StoreError::NotFound("endpoint"));
                }
                let endpoint = endpoint_on(conn, account, &id)?;
                // The deliveries waiting for it keep their turns under the new ordering
                // (migration 0019).
                conn.execute(
                    "UPDATE deliveries SET fifo = ?1 WHERE endpoint_seq = ?2 AND state = 'pending' AND fifo <> ?1",
                    params![endpoint.ordering == Ordering::Fifo, endpoint.seq],
                )?;
                Ok(endpoint)
            })
            .await
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
        let (id, secret) = (id.to_owned(), secret.to_owned());
        self.db
            .write_once(once, move |conn| {
                let changed = conn.execute(
                    "UPDATE endpoints SET previous_secret = secret, previous_secret_until = ?, secret = ?, updated_at = ?
                     WHERE account_id = ? AND id = ?",
                    params![previous_until, secret, at, account, id],
                )?;
                if changed == 0 {
                    return Err(StoreError::NotFound("endpoint"));
                }
                endpoint_on(conn, account, &id)
            })
            .await
    }

    async fn delete_endpoint(&self, account: i64, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.db
            .write(move |conn| {
                match conn.execute(
                    "DELETE FROM endpoints WHERE account_id = ? AND id = ?",
                    params![account, id],
                )? {
                    0 => Err(StoreError::NotFound("endpoint")),
                    _ => Ok(()),
                }
            })
            .await
    }
}
