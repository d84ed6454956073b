//! What both backends share in turning rows into Herald's types and back: the column lists
//! and selects the row readers of `rows` take in order, enums stored as bare words, values
//! stored as JSON text, "no row" as `NotFound`, and page sizes.

use std::time::Duration;

use super::{Page, StoreError, StoreResult};
use crate::clock::Micros;
use crate::domain::Invalid;
use crate::domain::endpoint::CallControls;
use crate::domain::event::{Event, EventStamp};
use crate::domain::operational;
use crate::domain::recruiting::Application;
use crate::domain::session::Permissions;
use crate::domain::snapshot::ApplicationView;
use crate::domain::version::WebhookVersion;

/// An account with its process, from `accounts a`.
pub(super) const ACCOUNT_COLUMNS: &str =
    "a.id, a.login, a.name, (SELECT p.id FROM processes p WHERE p.account_id = a.id), a.created_at, a.notify_email";
/// A step, from `process_steps s`.
pub(super) const STEP_COLUMNS: &str = "s.id, s.process_id, s.name, s.status";
/// A job, from `jobs j`.
pub(super) const JOB_COLUMNS: &str = "j.id, j.title, j.reference, j.status, j.process_id, j.created_at";
/// A candidate, from `candidates c`.
pub(super) const CANDIDATE_COLUMNS: &str = "c.id, c.first_name, c.last_name, c.email, c.created_at";

/// An application with its candidate, job and current step (`rows::application_from`).
pub(super) const APPLICATION_SELECT: &str = "SELECT a.id, a.created_at, a.step_date,
    c.id, c.first_name, c.last_name, c.email, c.created_at,
    j.id, j.title, j.reference, j.status, j.process_id, j.created_at,
    s.id, s.process_id, s.name, s.status
    FROM applications a
    JOIN candidates c ON c.account_id = a.account_id AND c.id = a.candidate_id
    JOIN jobs j ON j.account_id = a.account_id AND j.id = a.job_id
    JOIN process_steps s ON s.account_id = a.account_id AND s.id = a.step_id";
/// A step change with its step (`rows::step_change_from`).
pub(super) const STEP_CHANGE_SELECT: &str =
    "SELECT sc.id, sc.application_id, sc.created_at, s.id, s.process_id, s.name, s.status
    FROM step_changes sc JOIN process_steps s ON s.account_id = sc.account_id AND s.id = sc.step_id";
/// A task and its delivery's state, from `tasks t` (`rows::task_from`).
pub(super) const TASK_COLUMNS: &str =
    "t.id, t.endpoint_id, t.event_id, t.event_type, t.application_id, t.attempt, t.url,
    t.created_at, t.duration_ms, t.response_status, t.response_body, t.error,
    (SELECT d.state FROM deliveries d WHERE d.account_id = t.account_id AND d.id = t.delivery_id)";

/// The condition of the partial index of failed calls (`tasks_failed_by_status`), word for
/// word: a planner uses a partial index only for a query whose conditions include its own.
pub(super) const FAILED: &str = "t.response_status NOT BETWEEN 200 AND 299";

/// Maps "no row" to `NotFound(what)`.
pub(super) fn found<T>(row: Option<T>, what: &'static str) -> StoreResult<T> {
    row.ok_or(StoreError::NotFound(what))
}

/// A write refused because the `what` with this id, which its body names, does not exist: a
/// 422 with `code`, where `NotFound` would say the path's resource is missing.
pub(super) fn unknown(code: &'static str, what: &str, id: i64) -> StoreError {
    StoreError::Invalid(Invalid {
        code,
        message: format!("{what} {id} does not exist"),
    })
}

/// Rows to fetch for a page: one more than its limit, to tell whether a next page exists.
pub(super) fn fetch_limit(page: Page) -> i64 {
    i64::from(page.limit) + 1
}

/// Reads an enum stored as its bare word (`fifo`).
pub(super) fn decode_word<T: serde::de::DeserializeOwned>(column: &str, word: String) -> StoreResult<T> {
    serde_json::from_value(serde_json::Value::String(word))
        .map_err(|e| StoreError::Other(format!("{column}: {e}").into()))
}

/// Reads a value stored as JSON text; the store wrote it, so a failure is corruption.
pub(super) fn decode<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(format!("{column}: {e}").into()))
}

/// A value as the JSON text it is stored as.
pub(super) fn quoted<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

/// Turns an enum's JSON form (`"fifo"`) into its column text (`fifo`).
pub(super) fn column_text<T: serde::Serialize>(value: &T) -> String {
    quoted(value).trim_matches('"').to_owned()
}

/// The condition that keeps a replay (of events `ev`) to the events it sends again.
pub fn replayed_types() -> String {
    let excluded: Vec<String> = crate::domain::operational::not_replayed()
        .map(|name| format!("'{name}'"))
        .collect();
    format!("ev.event_type NOT IN ({})", excluded.join(", "))
}

/// An e-mail with what it tells (`rows::mail_from`), from `emails m`; the caller adds which.
pub(super) const MAIL_SELECT: &str = "SELECT m.id, m.kind, m.attempts, m.created_at, a.notify_email, ev.body,
    e.id, e.url, e.description, t.response_status, t.response_body, t.error
    FROM emails m JOIN accounts a ON a.id = m.account_id
    LEFT JOIN events ev ON ev.account_id = m.account_id AND ev.id = m.event_id
    LEFT JOIN endpoints e ON e.account_id = m.account_id AND e.seq = m.endpoint_seq
    LEFT JOIN tasks t ON t.account_id = m.account_id AND t.id = m.task_id";

/// An endpoint's call controls as stored: the headers (a JSON object), its own retry delays
/// (a JSON array of milliseconds, or NULL) and time-out (milliseconds, or NULL).
pub(super) struct StoredControls {
    pub headers: String,
    pub retry_schedule: Option<String>,
    pub timeout_ms: Option<i64>,
    pub rate_limit: Option<i64>,
}

impl StoredControls {
    pub fn of(controls: &CallControls) -> StoredControls {
        let millis = |d: &Duration| d.as_millis() as i64;
        StoredControls {
            headers: serde_json::to_string(&controls.headers).expect("strings always serialise"),
            retry_schedule: controls.retry_schedule.as_ref().map(|schedule| {
                serde_json::to_string(&schedule.iter().map(millis).collect::<Vec<_>>())
                    .expect("numbers always serialise")
            }),
            timeout_ms: controls.timeout.as_ref().map(millis),
            rate_limit: controls.rate_limit.map(i64::from),
        }
    }

    pub fn decode(self) -> StoreResult<CallControls> {
        let millis = |ms: i64| Duration::from_millis(ms.max(0) as u64);
        let schedule: Option<Vec<i64>> = self
            .retry_schedule
            .as_deref()
            .map(|text| decode("retry_schedule", text))
            .transpose()?;
        Ok(CallControls {
            headers: decode("headers", &self.headers)?,
            retry_schedule: schedule.map(|s| s.into_iter().map(millis).collect()),
            timeout: self.timeout_ms.map(millis),
            rate_limit: self.rate_limit.map(|r| u32::try_from(r).unwrap_or(u32::MAX)),
        })
    }
}

/// An application as version-2 calls carry it: what `GET /restapi/v1/application/{id}`
/// answers, without its envelope.
pub(super) fn snapshot(application: &Application) -> String {
    serde_json::to_string(&ApplicationView::full(application.clone())).expect("an application always serialises")
}

/// What a task's request body is made of: the event's stored body and snapshot, and the
/// version its call was sent in.
pub(super) struct SentBody {
    /// Empty once the event is purged.
    pub body: String,
    pub version: String,
    pub snapshot: Option<String>,
    pub event_at: Option<Micros>,
}

impl SentBody {
    /// The very body that was sent (see `WebhookVersion::body`).
    pub fn decode(self) -> StoreResult<String> {
        let version = decode_word::<WebhookVersion>("version", self.version)?;
        Ok(match self.event_at {
            Some(at) => version.body(&self.body, self.snapshot.as_deref(), at),
            None => self.body,
        })
    }
}

/// The `WebhookVersionDeprecated` events a deprecation of `version` until `sunset` gives:
/// one per account of the `(account, endpoint id)` rows (ordered by account), naming its
/// endpoints on the version, each stamped as `stamp` is with an id of its own.
pub(super) fn deprecation_news(
    version: WebhookVersion,
    sunset: &str,
    endpoints: Vec<(i64, String)>,
    stamp: &EventStamp,
) -> Vec<(i64, Event)> {
    let mut grouped: Vec<(i64, Vec<String>)> = Vec::new();
    for (account, id) in endpoints {
        match grouped.last_mut() {
            Some((last, ids)) if *last == account => ids.push(id),
            _ => grouped.push((account, vec![id])),
        }
    }
    grouped
        .into_iter()
        .map(|(account, ids)| {
            let stamp = EventStamp {
                id: crate::ids::event_id(),
                ..stamp.clone()
            };
            (
                account,
                operational::version_deprecated(version.as_str(), sunset, &ids, stamp),
            )
        })
        .collect()
}

/// A sunset day as stored, `YYYY-MM-DD`.
pub(super) fn decode_day(column: &str, text: &str) -> StoreResult<jiff::civil::Date> {
    jiff::civil::Date::strptime("%Y-%m-%d", text).map_err(|e| StoreError::Other(format!("{column}: {e}").into()))
}

/// The counters of `rows` (hour, kind, key, count) that this version knows.
pub(super) fn counters(rows: Vec<(Micros, String, String, i64)>) -> Vec<(Micros, crate::domain::stats::Counter, i64)> {
    rows.into_iter()
        .filter_map(|(hour, kind, key, count)| {
            crate::domain::stats::Counter::from_stored(&kind, &key).map(|counter| (hour, counter, count))
        })
        .collect()
}

/// Reads a session's or a portal link's stored permissions.
pub(super) fn decode_permissions(word: &str) -> StoreResult<Permissions> {
    Permissions::parse(word).ok_or_else(|| StoreError::Other(format!("permissions: {word:?}").into()))
}
